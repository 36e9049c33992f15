/*
 * ledger.c: the privacy-budget ledger and the run history, written durably
 * in transactions of their own (docs/output-guard.md, "Accounting").
 *
 * dstack_run() must not let an answer out unless its charge is committed,
 * whatever the caller does afterwards (ROLLBACK, an error later in the
 * statement, a pipeline, a hang-up).  So every write goes through a
 * short-lived background worker: it connects to the same database as the
 * owner of the ledger tables, runs one fixed operation in its own
 * transaction, commits, and reports back through a dynamic shared memory
 * segment; dstack_run() waits for it.  Three operations:
 *
 *   charge  before any sealed row is read: add the run's epsilon to the
 *           consortium's spend unless that would pass the total, and insert
 *           the run's audit row (status 'charged', or 'refused' when the
 *           budget is spent, which is then raised here)
 *   record  after the answer is built: insert the receipt and mark the run
 *           'answered'
 *   fail    when execution failed: mark the run 'failed' (the charge stays)
 *
 * The worker's SQL is fixed here, schema-qualified, under search_path
 * pg_catalog: nothing of the caller's session (search_path, functions,
 * operators) reaches it, so it cannot be used to run an analyst's code with
 * the owner's rights.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/dsm.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "dstack_fdw.h"
#include "ledger_int.h"

typedef enum LedgerOp
{
	LEDGER_CHARGE = 1,
	LEDGER_RECORD,
	LEDGER_FAIL
} LedgerOp;

typedef enum LedgerResult
{
	LEDGER_PENDING = 0,
	LEDGER_OK,
	LEDGER_SPENT,
	LEDGER_ERROR
} LedgerResult;

/* The request and the reply, in one DSM segment; texts follow the struct. */
typedef struct LedgerMsg
{
	/* request */
	LedgerOp	op;
	Oid			dbid;
	Oid			roleid;
	Oid			nspid;
	int64		run_id;
	int64		seq;
	int64		epsilon_micro;
	int64		total_micro;
	char		app_id[64];
	char		delta[40];
	char		body_sha256[72];
	char		prev_hash[72];
	char		error_class[8];
	Size		query_len;		/* texts in data[]: query, datasets, receipt */
	Size		datasets_len;
	Size		receipt_len;
	/* reply */
	LedgerResult result;
	int64		out_run_id;
	int64		out_spent;
	int64		out_total;
	int			sqlerrcode;
	char		message[512];
	char		data[FLEXIBLE_ARRAY_MEMBER];
} LedgerMsg;

/* Owner of the ledger tables: the role that created the extension. */
Oid
dfdw_ledger_owner(void)
{
	Oid			relid = get_relname_relid("dstack_budget", dfdw_extension_schema());
	HeapTuple	tp;
	Oid			owner;

	tp = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tp))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("the ledger table dstack_budget of dstack_fdw is missing"),
				 errhint("Reinstall the extension: DROP EXTENSION dstack_fdw; CREATE EXTENSION dstack_fdw;")));
	owner = ((Form_pg_class) GETSTRUCT(tp))->relowner;
	ReleaseSysCache(tp);
	return owner;
}

/* A ledger worker (one-shot or kept: fn), notifying this backend. */
void
dfdw_ledger_worker_spec(BackgroundWorker *w, const char *fn, Datum arg)
{
	memset(w, 0, sizeof(*w));
	snprintf(w->bgw_name, BGW_MAXLEN, "dstack_fdw ledger");
	snprintf(w->bgw_type, BGW_MAXLEN, "dstack_fdw ledger");
	w->bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	w->bgw_start_time = BgWorkerStart_RecoveryFinished;
	w->bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(w->bgw_library_name, BGW_MAXLEN, "dstack_fdw");
	snprintf(w->bgw_function_name, BGW_MAXLEN, "%s", fn);
	w->bgw_main_arg = arg;
	w->bgw_notify_pid = MyProcPid;
}

/*
 * Run one request in a background worker and wait for it; raises on failure.
 * A kept worker of the pool (ledger_pool.c) when there is one, else a
 * worker started for this request alone.
 */
static void
ledger_call(LedgerMsg *req, const char *query, const char *datasets, const char *receipt)
{
	Size		ql = query ? strlen(query) : 0;
	Size		dl = datasets ? strlen(datasets) : 0;
	Size		rl = receipt ? strlen(receipt) : 0;
	dsm_segment *seg = dsm_create(offsetof(LedgerMsg, data) + ql + dl + rl + 3, 0);
	LedgerMsg  *m = dsm_segment_address(seg);
	BackgroundWorker w;
	BackgroundWorkerHandle *handle;
	BgwHandleStatus status;
	pid_t		pid;
	bool		answered;

	memcpy(m, req, offsetof(LedgerMsg, data));
	m->dbid = MyDatabaseId;
	m->roleid = dfdw_ledger_owner();
	m->nspid = dfdw_extension_schema();
	m->query_len = ql;
	m->datasets_len = dl;
	m->receipt_len = rl;
	memcpy(m->data, query ? query : "", ql + 1);
	memcpy(m->data + ql + 1, datasets ? datasets : "", dl + 1);
	memcpy(m->data + ql + dl + 2, receipt ? receipt : "", rl + 1);
	m->result = LEDGER_PENDING;

	if (dfdw_ledger_pool_call(seg, m->dbid, m->roleid, &answered))
	{
		if (!answered)
			m->result = LEDGER_PENDING;
		goto reply;
	}
	dfdw_ledger_worker_spec(&w, "dfdw_ledger_worker_main", UInt32GetDatum(dsm_segment_handle(seg)));
	if (!RegisterDynamicBackgroundWorker(&w, &handle))
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not start the ledger worker of dstack_run()"),
				 errdetail("Every charge is committed by a background worker before the query reads a row."),
				 errhint("Raise max_worker_processes, or wait for other background work to finish.")));
	status = WaitForBackgroundWorkerStartup(handle, &pid);
	if (status == BGWH_STARTED)
		status = WaitForBackgroundWorkerShutdown(handle);
	if (status == BGWH_POSTMASTER_DIED)
		ereport(FATAL,
				(errcode(ERRCODE_ADMIN_SHUTDOWN),
				 errmsg("postmaster exited while dstack_run() waited for its ledger worker")));
reply:
	req->result = m->result;
	req->out_run_id = m->out_run_id;
	req->out_spent = m->out_spent;
	req->out_total = m->out_total;
	req->sqlerrcode = m->sqlerrcode;
	strlcpy(req->message, m->message, sizeof(req->message));
	dsm_detach(seg);
	if (req->result == LEDGER_PENDING || req->result == LEDGER_ERROR)
		ereport(ERROR,
				(errcode(req->result == LEDGER_ERROR && req->sqlerrcode ? req->sqlerrcode : ERRCODE_INTERNAL_ERROR),
				 errmsg("the ledger of dstack_run() could not be written"),
				 errdetail("%s", req->result == LEDGER_PENDING ? "The ledger worker exited without an answer." :
						   req->message),
				 errhint("Nothing was released. Check the server log, and that the extension's ledger tables exist.")));
}

/* "1.500000" from millionths. */
static char *
eps_text(int64 micro)
{
	return psprintf("%lld.%06lld", (long long) (micro / 1000000), (long long) (micro % 1000000));
}

void
dfdw_ledger_charge(DfdwCharge *c)
{
	LedgerMsg	m;

	memset(&m, 0, sizeof(m));
	m.op = LEDGER_CHARGE;
	strlcpy(m.app_id, c->app_id, sizeof(m.app_id));
	strlcpy(m.delta, c->delta, sizeof(m.delta));
	m.epsilon_micro = c->epsilon_micro;
	m.total_micro = c->total_micro;
	ledger_call(&m, c->query, c->datasets_json, NULL);
	c->run_id = m.out_run_id;
	c->spent_micro = m.out_spent;
	c->total_micro_out = m.out_total;
	if (m.result == LEDGER_SPENT)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("privacy budget of consortium %s is spent", c->app_id),
				 errdetail("The query needs epsilon %s; %s of %s is left. Nothing was read (run %lld, refused).",
						   eps_text(c->epsilon_micro), eps_text(m.out_total - m.out_spent),
						   eps_text(m.out_total), (long long) m.out_run_id),
				 errhint("Ask with a smaller epsilon, or have the owners approve a new consortium with a new budget.")));
}

void
dfdw_ledger_record(int64 run_id, int64 seq, const char *body_sha256, const char *prev_hash,
				   int64 epsilon_micro, const char *receipt_json)
{
	LedgerMsg	m;

	memset(&m, 0, sizeof(m));
	m.op = LEDGER_RECORD;
	m.run_id = run_id;
	m.seq = seq;
	m.epsilon_micro = epsilon_micro;
	strlcpy(m.body_sha256, body_sha256, sizeof(m.body_sha256));
	strlcpy(m.prev_hash, prev_hash, sizeof(m.prev_hash));
	ledger_call(&m, NULL, NULL, receipt_json);
}

void
dfdw_ledger_fail(int64 run_id, const char *sqlstate_class)
{
	LedgerMsg	m;

	memset(&m, 0, sizeof(m));
	m.op = LEDGER_FAIL;
	m.run_id = run_id;
	strlcpy(m.error_class, sqlstate_class, sizeof(m.error_class));
	ledger_call(&m, NULL, NULL, NULL);
}

/* ---- the worker ------------------------------------------------------------ */

/* SPI with arguments; "@S@" in the template is the extension's schema. */
static void
worker_exec(const LedgerMsg *m, const char *tmpl, int nargs, Oid *types, Datum *values, int expect)
{
	const char *schema = quote_identifier(get_namespace_name(m->nspid));
	StringInfoData sql;
	int			rc;

	initStringInfo(&sql);
	for (const char *p = tmpl; *p; p++)
	{
		if (strncmp(p, "@S@", 3) == 0)
		{
			appendStringInfoString(&sql, schema);
			p += 2;
		}
		else
			appendStringInfoChar(&sql, *p);
	}
	rc = SPI_execute_with_args(sql.data, nargs, types, values, NULL, false, 0);
	if (rc != expect)
		elog(ERROR, "ledger statement failed: %s", SPI_result_code_string(rc));
}

static int64
worker_int8(int col)
{
	bool		isnull;

	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col, &isnull));
}

static void
worker_charge(LedgerMsg *m)
{
	const char *query = m->data;
	const char *datasets = m->data + m->query_len + 1;
	Oid			t2[2] = {TEXTOID, INT8OID};
	Datum		v2[2] = {CStringGetTextDatum(m->app_id), Int64GetDatum(m->total_micro)};
	Oid			t5[5] = {TEXTOID, TEXTOID, INT8OID, TEXTOID, TEXTOID};
	Datum		v5[5];

	worker_exec(m, "INSERT INTO @S@.dstack_budget (app_id, total_micro, spent_micro) "
				"VALUES ($1, $2, 0) ON CONFLICT (app_id) DO NOTHING", 2, t2, v2, SPI_OK_INSERT);
	v2[1] = Int64GetDatum(m->epsilon_micro);
	worker_exec(m, "UPDATE @S@.dstack_budget SET spent_micro = spent_micro OPERATOR(pg_catalog.+) $2, "
				"updated_at = pg_catalog.now() WHERE app_id OPERATOR(pg_catalog.=) $1 "
				"AND spent_micro OPERATOR(pg_catalog.+) $2 OPERATOR(pg_catalog.<=) total_micro "
				"RETURNING spent_micro, total_micro", 2, t2, v2, SPI_OK_UPDATE_RETURNING);
	if (SPI_processed == 0)
	{
		worker_exec(m, "SELECT spent_micro, total_micro FROM @S@.dstack_budget "
					"WHERE app_id OPERATOR(pg_catalog.=) $1", 1, t2, v2, SPI_OK_SELECT);
		m->result = LEDGER_SPENT;
	}
	else
		m->result = LEDGER_OK;
	m->out_spent = worker_int8(1);
	m->out_total = worker_int8(2);
	v5[0] = CStringGetTextDatum(m->app_id);
	v5[1] = CStringGetTextDatum(query);
	v5[2] = Int64GetDatum(m->result == LEDGER_OK ? m->epsilon_micro : 0);
	v5[3] = CStringGetTextDatum(m->delta);
	v5[4] = CStringGetTextDatum(datasets);
	if (m->result == LEDGER_OK)
		worker_exec(m, "INSERT INTO @S@.dstack_runs (app_id, query, epsilon_micro, delta, datasets, status) "
					"VALUES ($1, $2, $3, $4, $5::pg_catalog.jsonb, 'charged') RETURNING id",
					5, t5, v5, SPI_OK_INSERT_RETURNING);
	else
		worker_exec(m, "INSERT INTO @S@.dstack_runs (app_id, query, epsilon_micro, delta, datasets, status, "
					"finished_at) VALUES ($1, $2, $3, $4, $5::pg_catalog.jsonb, 'refused', pg_catalog.now()) "
					"RETURNING id", 5, t5, v5, SPI_OK_INSERT_RETURNING);
	m->out_run_id = worker_int8(1);
}

static void
worker_record(LedgerMsg *m)
{
	const char *receipt = m->data + m->query_len + m->datasets_len + 2;
	Oid			t5[5] = {INT8OID, TEXTOID, TEXTOID, INT8OID, TEXTOID};
	Datum		v5[5] = {Int64GetDatum(m->seq), CStringGetTextDatum(m->body_sha256),
	CStringGetTextDatum(m->prev_hash), Int64GetDatum(m->epsilon_micro), CStringGetTextDatum(receipt)};
	Oid			t2[2] = {INT8OID, INT8OID};
	Datum		v2[2] = {Int64GetDatum(m->run_id), Int64GetDatum(m->seq)};

	worker_exec(m, "INSERT INTO @S@.dstack_receipts (seq, body_sha256, prev_hash, epsilon_micro, receipt) "
				"VALUES ($1, $2, $3, $4, $5::pg_catalog.jsonb)", 5, t5, v5, SPI_OK_INSERT);
	worker_exec(m, "UPDATE @S@.dstack_runs SET status = 'answered', receipt_seq = $2, "
				"finished_at = pg_catalog.now() WHERE id OPERATOR(pg_catalog.=) $1", 2, t2, v2, SPI_OK_UPDATE);
	m->result = LEDGER_OK;
}

static void
worker_fail(LedgerMsg *m)
{
	Oid			t2[2] = {INT8OID, TEXTOID};
	Datum		v2[2] = {Int64GetDatum(m->run_id), CStringGetTextDatum(m->error_class)};

	worker_exec(m, "UPDATE @S@.dstack_runs SET status = 'failed', error_class = $2, "
				"finished_at = pg_catalog.now() WHERE id OPERATOR(pg_catalog.=) $1 "
				"AND status OPERATOR(pg_catalog.=) 'charged'", 2, t2, v2, SPI_OK_UPDATE);
	m->result = LEDGER_OK;
}

/* One request, in a transaction of its own; the reply (or the error) goes into m. */
static void
run_request(LedgerMsg *m)
{
	StartTransactionCommand();
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		PushActiveSnapshot(GetTransactionSnapshot());
		switch (m->op)
		{
			case LEDGER_CHARGE:
				worker_charge(m);
				break;
			case LEDGER_RECORD:
				worker_record(m);
				break;
			case LEDGER_FAIL:
				worker_fail(m);
				break;
		}
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		MemoryContext cxt = MemoryContextSwitchTo(TopMemoryContext);
		ErrorData  *e = CopyErrorData();

		FlushErrorState();
		AbortCurrentTransaction();
		m->sqlerrcode = e->sqlerrcode;
		strlcpy(m->message, e->message ? e->message : "unknown error", sizeof(m->message));
		m->result = LEDGER_ERROR;
		FreeErrorData(e);
		MemoryContextSwitchTo(cxt);
	}
	PG_END_TRY();
}

/* A kept worker's request (ledger_pool.c): gone when its requester gave up before. */
void
dfdw_ledger_serve(dsm_handle h)
{
	dsm_segment *seg = dsm_attach(h);

	if (seg == NULL)
		return;
	run_request(dsm_segment_address(seg));
	dsm_detach(seg);
}

/* The worker started for one request. */
void
dfdw_ledger_worker_main(Datum arg)
{
	dsm_segment *seg;
	LedgerMsg  *m;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	seg = dsm_attach(DatumGetUInt32(arg));
	if (seg == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("dstack_fdw ledger worker: the request is gone")));
	m = dsm_segment_address(seg);
	BackgroundWorkerInitializeConnectionByOid(m->dbid, m->roleid, 0);
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
	pgstat_report_appname("dstack_fdw ledger");
	run_request(m);
	dsm_detach(seg);
	proc_exit(0);
}
