/*
 * run.c: dstack_run(query) -- the only way an answer over sealed data leaves
 * the CVM (docs/output-guard.md, docs/receipts.md).
 *
 *   1. it is the top-level statement: not in a transaction block, function,
 *      DO, pipeline or another statement's planning; once per statement
 *   2. parse the text (exactly one SELECT) and analyse it under the pinned
 *      search_path; validate it against the allow-list (validate.c)
 *   3. read the consortium's policy and chain state; check the unit joins;
 *      mount every dataset (approval, keys) before anything is charged
 *   4. plan it; charge the whole run -- every DP aggregate times the
 *      contribution bound, plus partition selection -- and commit the charge
 *      and an audit row in their own transaction (ledger.c); a spent budget
 *      refuses here, before any row is read
 *   5. execute the validated plan: only this plan's sealed scans may start
 *      (guard.c); any error becomes one fixed error, messages are withheld,
 *      and the run is marked failed (its charge stays)
 *   6. release groups by DP partition selection on their noisy row count
 *   7. build the receipt body, sign it, attach a quote, commit it with the
 *      run's audit row (ledger.c), return it
 */
#include "postgres.h"

#include <math.h>

#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "executor/tstoreReceiver.h"
#include "jit/jit.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgtime.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "dp.h"
#include "dstack_fdw.h"
#include "keycache.h"
#include "guest_agent.h"
#include "hex.h"
#include "pg_common.h"
#include "receipt.h"

PG_FUNCTION_INFO_V1(dstack_run);

/* The dstack_run() in progress (NULL when none); only this file writes it. */
DfdwRun    *dfdw_run = NULL;

/* Sign the body hash with the guest agent's receipt key and get a quote over it. */
static char *
sign_and_quote(const DfdwServerOptions *sopts, const DfdwChainFacts *f, const char *canon,
			   const uint8 body_hash[DC_SHA256_LEN])
{
	DReceiptParts p;
	GaKey		key;
	GaQuote		quote;
	uint8		digest[32];
	uint8		kms_root[DC_PUBKEY_LEN];
	DErr		err;
	char	   *out;
	char	   *result;

	memset(&p, 0, sizeof(p));
	memset(&key, 0, sizeof(key));
	memset(&quote, 0, sizeof(quote));
	derr_clear(&err);
	if (!dhex_decode_exact(sopts->kms_root_pubkey, kms_root, DC_PUBKEY_LEN, "kms_root_pubkey", &err))
		derr_ereport(&err, ERRCODE_FDW_INVALID_OPTION_NAME, NULL);
	if (!dfdw_agent_key(sopts->guest_agent, DRECEIPT_PURPOSE, DRECEIPT_PURPOSE, kms_root, f->app_id,
							 &key, &err))
		derr_ereport(&err, 0, "The receipt key comes from the dstack guest agent; check that it runs and "
					 "that the consortium still allows this CVM.");
	dreceipt_digest(body_hash, digest);
	if (!dc_sign_recoverable(key.key, digest, p.signature, &err))
	{
		ga_key_scrub(&key);
		derr_ereport(&err, 0, NULL);
	}
	memcpy(p.public_key, key.pub, DC_PUBKEY_LEN);
	memcpy(p.chain, key.chain, sizeof(p.chain));
	ga_key_scrub(&key);

	dreceipt_report_data(body_hash, p.report_data);
	if (!ga_get_quote(sopts->guest_agent, p.report_data, 64, &quote, &err))
		derr_ereport(&err, 0, "The quote comes from the dstack guest agent; check that it runs.");
	p.canon_body = canon;
	memcpy(p.body_hash, body_hash, DC_SHA256_LEN);
	p.quote = quote.quote;
	p.quote_len = quote.quote_len;
	p.event_log = quote.event_log;
	p.simulated = quote.simulated;	/* common/tdx_quote.h: the one definition of the simulator's marker */
	if (!dreceipt_assemble(&p, &out, &err))
	{
		ga_quote_free(&quote);
		derr_ereport(&err, 0, NULL);
	}
	ga_quote_free(&quote);
	result = pstrdup(out);
	free(out);
	return result;
}


static void
refuse_a1(const char *msg, const char *detail, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("%s", msg),
			 errdetail("Rule A1 of dstack_run(): %s", detail),
			 errhint("%s", hint)));
}

/*
 * Rule A1: dstack_run() is the top-level statement, once.  Its charge is
 * committed on its own whatever happens around it, but a call inside a
 * function, DO block or another statement's planning would hand the answer
 * to code that can act on it before the client sees anything, and two
 * calls in one statement would be two releases under one request.
 */
static void
check_top_level(FunctionCallInfo fcinfo)
{
	static LocalTransactionId last_lxid = InvalidLocalTransactionId;
	static TimestampTz last_stmt = 0;

	if (dfdw_run != NULL)
		refuse_a1("dstack_run() cannot be nested", "a dstack_run() query cannot call dstack_run().",
				  "Call dstack_run() once, from the top-level statement.");
	if (IsTransactionBlock() || IsSubTransaction())
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("dstack_run() cannot run inside a transaction block"),
				 errdetail("Rule A1 of dstack_run(): its answer leaves with its own committed charge; inside "
						   "BEGIN ... COMMIT, a savepoint or an exception block the caller could act on the "
						   "answer before anything is final."),
				 errhint("Call it as a statement of its own, outside BEGIN ... COMMIT: SELECT dstack_run($$...$$);")));
	if (dfdw_exec_depth() != 1 || dfdw_utility_depth() != 0 || dfdw_planner_depth() != 0 ||
		!dfdw_called_by_top_level_select(fcinfo->flinfo->fn_expr))
		refuse_a1("dstack_run() must be called by the top-level statement",
				  "called from a function, a DO block, EXPLAIN, COPY, CREATE TABLE AS, a data-modifying "
				  "statement or while another statement is planned, its answer would reach code before it "
				  "reaches the client.",
				  "Call it directly: SELECT dstack_run($$...$$);");
	if (last_lxid == MyProc->lxid && last_stmt == GetCurrentStatementStartTimestamp())
		refuse_a1("dstack_run() may be called once per statement",
				  "each call is a release of its own, with its own charge and receipt.",
				  "Send one statement per query: SELECT dstack_run($$...$$);");
	last_lxid = MyProc->lxid;
	last_stmt = GetCurrentStatementStartTimestamp();
	/* not in a pipeline, and committed right after this statement */
	PreventInTransactionBlock(true, "dstack_run()");
}

/* A parse or analysis error points into the dstack_run() text, not the caller's statement. */
static void
analyse_error_callback(void *arg)
{
	int			pos = geterrposition();

	if (pos > 0)
	{
		errposition(0);
		internalerrposition(pos);
		internalerrquery((const char *) arg);
	}
}

/* Parse and analyse the text: exactly one SELECT (rule A1). */
static Query *
analyse(const char *query)
{
	ErrorContextCallback cb = {error_context_stack, analyse_error_callback, unconstify(char *, query)};
	List	   *raw;
	RawStmt    *rs;
	List	   *qs;
	Query	   *q;

	error_context_stack = &cb;
	raw = pg_parse_query(query);

	if (list_length(raw) != 1)
		refuse_a1("dstack_run() runs exactly one statement",
				  psprintf("the text holds %d statements.", list_length(raw)),
				  "Pass one SELECT; run further queries in further dstack_run() calls.");
	rs = linitial_node(RawStmt, raw);
	if (!IsA(rs->stmt, SelectStmt))
		refuse_a1("dstack_run() runs one SELECT", "nothing else reads sealed data.",
				  "Pass one SELECT of DP aggregates over sealed tables.");
	qs = pg_analyze_and_rewrite_fixedparams(rs, query, NULL, 0, NULL);
	if (list_length(qs) != 1)
		refuse_a1("dstack_run() runs one SELECT", "the query was rewritten into several.",
				  "Pass one SELECT of DP aggregates over sealed tables.");
	q = linitial_node(Query, qs);
	q->queryId = UINT64CONST(0);	/* no statistics extension counts its rows */
	error_context_stack = cb.previous;
	return q;
}

/* Mount every dataset before anything is charged: approval, keys, types. */
static void
premount(DfdwRun *run, const DfdwValidated *v, const DfdwChainFacts *facts)
{
	ListCell   *lc;

	foreach(lc, v->sealed_relids)
	{
		Oid			relid = lfirst_oid(lc);
		Relation	rel = table_open(relid, AccessShareLock);
		MemoryContext mc = AllocSetContextCreate(CurrentMemoryContext, "dstack_run mount", ALLOCSET_SMALL_SIZES);
		DfdwTableOptions topts;
		DsealReader *reader;
		const DsealManifest *m;
		DfdwMount	mount;
		DfdwDatasetRef *d;
		MemoryContext old;

		dfdw_table_options(relid, &topts);
		reader = dfdw_open_dataset(topts.path, mc);
		m = dseal_reader_manifest(reader);
		dfdw_check_declared_types(rel, m, topts.path);
		dfdw_mount(v->serverid, relid, reader, &mount);
		dfdw_mount_scrub(&mount);
		old = MemoryContextSwitchTo(run->cxt);
		d = palloc0(sizeof(DfdwDatasetRef));
		d->relid = relid;
		d->serverid = v->serverid;
		d->table = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
											  RelationGetRelationName(rel));
		memcpy(d->owner, m->owner_id, DC_ADDR_LEN);
		memcpy(d->dataset_id, m->dataset_id, DSEAL_DATASET_ID_LEN);
		memcpy(d->manifest_hash, m->manifest_hash, DC_SHA256_LEN);
		run->datasets = lappend(run->datasets, d);
		MemoryContextSwitchTo(old);
		MemoryContextDelete(mc);
		table_close(rel, NoLock);
		/* ledger 'chain': only a registered, current version is read */
		dfdw_chain_check_dataset(v->serverid, facts, d);
	}
}

/* The datasets as a JSON array (ledger row and receipt). */
static char *
datasets_json(const DfdwRun *run)
{
	StringInfoData b;
	ListCell   *lc;

	initStringInfo(&b);
	appendStringInfoChar(&b, '[');
	foreach(lc, run->datasets)
	{
		DfdwDatasetRef *d = lfirst(lc);

		appendStringInfoString(&b, foreach_current_index(lc) ? ",{\"table\":" : "{\"table\":");
		escape_json(&b, d->table);
		appendStringInfo(&b, ",\"owner\":\"%s\",\"dataset_id\":\"%s\",\"manifest_hash\":\"%s\"}",
						 dpg_hex(d->owner, DC_ADDR_LEN, true), dpg_hex(d->dataset_id, DSEAL_DATASET_ID_LEN, false),
						 dpg_hex(d->manifest_hash, DC_SHA256_LEN, false));
	}
	appendStringInfoChar(&b, ']');
	return b.data;
}

/*
 * Partition selection (docs/output-guard.md): a unit adds at most k rows to
 * the answer, across all groups.  A group's row count c gets discrete
 * Laplace noise of scale k / eps_sel and the group is released only if
 * c + noise >= tau, with
 *     tau = max(k + (k/eps) ln(1/delta), 1 + (k/eps) ln(k/delta)),
 * so a group that exists only because of one unit (at most k such groups,
 * their counts adding up to at most k) is released with probability at most
 * delta; the policy's minimum group size raises tau further.
 */
typedef struct Selection
{
	bool		on;
	int64		k;
	int64		eps_micro;
	double		tau;
	int64		tau_int;		/* ceil(tau) */
} Selection;

static void
selection_init(Selection *sel, const DfdwChainFacts *f, int64 k, bool grouped)
{
	double		eps = (double) f->epsilon_select_micro / 1e6;

	memset(sel, 0, sizeof(*sel));
	sel->on = grouped;
	sel->k = k;
	sel->eps_micro = f->epsilon_select_micro;
	if (!grouped)
		return;
	if (!(f->delta > 0 && f->delta < 1) || f->epsilon_select_micro <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the consortium's policy has no usable delta and epsilon_select for grouped queries"),
				 errdetail("Group keys are released by DP partition selection, which needs 0 < delta < 1 "
						   "and epsilon_select > 0."),
				 errhint("Ask without GROUP BY, or have the owners fix the policy in the recipe.")));
	sel->tau = Max((double) k + ((double) k / eps) * log(1.0 / f->delta),
				   1.0 + ((double) k / eps) * log((double) k / f->delta));
	sel->tau = Max(sel->tau, (double) f->min_group_size);
	sel->tau_int = (int64) ceil(sel->tau);
}

static bool
selection_release(const Selection *sel, int64 count)
{
	dp_i128		noisy = (dp_i128) count + dfdw_dp_laplace((dp_u128) sel->k, sel->eps_micro);

	return noisy >= (dp_i128) sel->tau_int;
}

/* The released rows as JSON (every value as text): the analyst's columns only. */
static void
result_json(StringInfo buf, Tuplestorestate *ts, TupleDesc desc, int n_out, const Selection *sel)
{
	TupleTableSlot *slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	bool		first = true;

	appendStringInfoString(buf, "{\"columns\":[");
	for (int c = 0; c < n_out; c++)
	{
		if (c)
			appendStringInfoChar(buf, ',');
		escape_json(buf, NameStr(TupleDescAttr(desc, c)->attname));
	}
	appendStringInfoString(buf, "],\"rows\":[");
	while (tuplestore_gettupleslot(ts, true, false, slot))
	{
		slot_getallattrs(slot);
		if (sel->on && (slot->tts_isnull[n_out] ||
						!selection_release(sel, DatumGetInt64(slot->tts_values[n_out]))))
			continue;
		appendStringInfoString(buf, first ? "[" : ",[");
		first = false;
		for (int c = 0; c < n_out; c++)
		{
			Oid			typout;
			bool		isvarlena;

			if (c)
				appendStringInfoChar(buf, ',');
			if (slot->tts_isnull[c])
			{
				appendStringInfoString(buf, "null");
				continue;
			}
			getTypeOutputInfo(TupleDescAttr(desc, c)->atttypid, &typout, &isvarlena);
			escape_json(buf, OidOutputFunctionCall(typout, slot->tts_values[c]));
		}
		appendStringInfoChar(buf, ']');
	}
	appendStringInfoString(buf, "]}");
	ExecDropSingleTupleTableSlot(slot);
}

/*
 * Run fn(arg) in a subtransaction of its own.  On error the subtransaction
 * is rolled back cleanly (locks, buffers, executor state) and a copy of the
 * error is returned, so the caller can still write the ledger before it
 * raises; NULL on success.
 */
static ErrorData *
in_subtransaction(void (*fn) (void *), void *arg)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		fn(arg);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	return edata;
}

/* What the sealed part needs, and what it produces. */
typedef struct SealedExec
{
	PlannedStmt *plan;
	const char *query;
	int			n_out;
	const Selection *sel;
	Tuplestorestate *ts;
	StringInfoData res;
} SealedExec;

static void
sealed_exec(void *arg)
{
	SealedExec *x = arg;
	MemoryContext cxt = CurrentMemoryContext;
	DestReceiver *dest = CreateDestReceiver(DestTuplestore);
	QueryDesc  *qd;

	SetTuplestoreDestReceiverParams(dest, x->ts, cxt, false, NULL, NULL);
	qd = CreateQueryDesc(x->plan, x->query, GetActiveSnapshot(), InvalidSnapshot, dest, NULL, NULL, 0);
	ExecutorStart(qd, 0);
	ExecutorRun(qd, ForwardScanDirection, 0, true);
	ExecutorFinish(qd);
	MemoryContextSwitchTo(cxt);
	result_json(&x->res, x->ts, qd->tupDesc, x->n_out, x->sel);
	ExecutorEnd(qd);
	FreeQueryDesc(qd);
	dest->rDestroy(dest);
}

/*
 * Run the validated plan and build the released rows.  Everything that can
 * see a sealed value happens here, inside a subtransaction: any error is
 * rolled back cleanly (while messages are still withheld), recorded as the
 * run's failure, and replaced by one fixed error that keeps only the
 * SQLSTATE class.
 */
static char *
execute_sealed(DfdwRun *run, PlannedStmt *plan, const char *query, int n_out, const Selection *sel,
			   int64 run_id)
{
	SealedExec	x = {plan, query, n_out, sel, tuplestore_begin_heap(false, false, work_mem)};
	ErrorData  *edata;

	initStringInfo(&x.res);
	run->plan = plan;
	run->phase = DFDW_RUN_EXECUTING;
	edata = in_subtransaction(sealed_exec, &x);
	run->phase = DFDW_RUN_RELEASING;
	run->plan = NULL;
	tuplestore_end(x.ts);
	if (edata != NULL)
	{
		int			cls = ERRCODE_TO_CATEGORY(edata->sqlerrcode);
		char	   *cls_text = pstrdup(unpack_sql_state(cls));

		dfdw_ledger_fail(run_id, cls_text);
		ereport(ERROR,
				(errcode(cls),
				 errmsg("query over sealed data failed"),
				 errdetail("Its error is withheld, because it could describe sealed values; only its class "
						   "%s is given. The run's charge stands (run %lld, marked failed).",
						   cls_text, (long long) run_id),
				 errhint("Check the query's constants and types; a query that passes dstack_run()'s rules "
						 "fails only on resource limits, cancellation or damaged datasets.")));
	}
	return x.res.data;
}

/* The arguments of dfdw_chain_charge(), for in_subtransaction(). */
typedef struct ChainChargeArgs
{
	DfdwRun    *run;
	const DfdwValidated *v;
	const DfdwChainFacts *f;
	const char *query;
	const DfdwCharge *charge;
	double		delta;
	DfdwChainCharge *out;
} ChainChargeArgs;

static void
chain_charge(void *arg)
{
	ChainChargeArgs *a = arg;

	dfdw_chain_charge(a->v->serverid, a->f, a->query, a->charge->epsilon_micro, a->delta, a->run->datasets, a->out);
}

/*
 * The charge on the consortium contract (ledger 'chain'), after the local
 * audit row exists: a refusal (a dataset's budget spent on chain, by any CVM
 * or database) marks the run failed and is raised as it is -- it says
 * nothing about sealed rows, none was read.
 */
static void
charge_on_chain(DfdwRun *run, const DfdwValidated *v, const DfdwChainFacts *f, const char *query,
				const DfdwCharge *charge, double delta, DfdwChainCharge *out)
{
	ChainChargeArgs a = {run, v, f, query, charge, delta, out};
	ErrorData  *edata = in_subtransaction(chain_charge, &a);

	if (edata != NULL)
	{
		dfdw_ledger_fail(charge->run_id, pstrdup(unpack_sql_state(ERRCODE_TO_CATEGORY(edata->sqlerrcode))));
		ReThrowError(edata);
	}
}

/* Previous receipt of this database: sequence and body hash (zeros when none). */
static void
previous_receipt(int64 *seq, char **prev_hash)
{
	Oid			nsp = dfdw_extension_schema();
	const char *schema = quote_identifier(get_namespace_name(nsp));
	MemoryContext cxt = CurrentMemoryContext;
	SPIPlanPtr	plan;

	/* one release at a time appends to the chain; analysts cannot take this lock */
	LockRelationOid(get_relname_relid("dstack_receipts", nsp), ShareUpdateExclusiveLock);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	plan = SPI_prepare(psprintf("SELECT seq, body_sha256 FROM %s.dstack_receipts ORDER BY seq DESC LIMIT 1", schema),
					   0, NULL);
	/*
	 * The latest committed receipt, whatever the caller's isolation level:
	 * under REPEATABLE READ the transaction's snapshot predates the receipts
	 * other sessions' workers committed since.
	 */
	if (plan == NULL ||
		SPI_execute_snapshot(plan, NULL, NULL, GetLatestSnapshot(), InvalidSnapshot, true, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the last receipt");
	if (SPI_processed == 0)
	{
		*seq = 0;
		*prev_hash = MemoryContextStrdup(cxt, "0000000000000000000000000000000000000000000000000000000000000000");
	}
	else
	{
		bool		isnull;

		*seq = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		*prev_hash = MemoryContextStrdup(cxt, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2));
	}
	SPI_finish();
}

/* The receipt body's datasets, from the run's (palloc'd array). */
static DReceiptDataset *
receipt_datasets(const DfdwRun *run)
{
	DReceiptDataset *ds = palloc0(sizeof(DReceiptDataset) * Max(list_length(run->datasets), 1));
	ListCell   *lc;

	foreach(lc, run->datasets)
	{
		DfdwDatasetRef *d = lfirst(lc);
		DReceiptDataset *r = &ds[foreach_current_index(lc)];

		r->table = d->table;
		memcpy(r->owner, d->owner, DC_ADDR_LEN);
		memcpy(r->dataset_id, d->dataset_id, DSEAL_DATASET_ID_LEN);
		memcpy(r->manifest_hash, d->manifest_hash, DC_SHA256_LEN);
	}
	return ds;
}

static Datum
run_query(DfdwRun *run, const char *query)
{
	Query	   *q;
	DfdwValidated v;
	DfdwConsortiumStatus st;
	DfdwServerOptions sopts;
	PlannedStmt *plan;
	Selection	sel;
	DfdwCharge	charge;
	DfdwChainCharge onchain;
	DReceiptBody rb;
	char	   *result;
	char	   *prev_hash;
	char		issued_at[32];
	int64		k = 1;
	char	   *canon;
	uint8		body_hash[DC_SHA256_LEN];
	char	   *receipt;
	DErr		err;

	/* 2. the query, by the allow-list */
	q = analyse(query);
	dfdw_validate_query(q, &v);
	(void) ExecCheckRTPerms(q->rtable, true);

	/* 3. policy and chain; unit joins; every dataset mounted */
	dfdw_consortium_status(v.serverid, &st);
	dfdw_server_options(GetForeignServer(v.serverid), &sopts);
	dfdw_validate_units(q, st.facts.privacy_unit, &v);
	run->privacy_unit = pstrdup(st.facts.privacy_unit);
	run->rows_per_unit = Max(st.facts.max_rows_per_unit, 1);
	premount(run, &v, &st.facts);
	for (int i = 0; i < v.sealed_scans; i++)
	{
		k *= run->rows_per_unit;
		if (k > 1000)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("a unit could contribute more than 1000 rows to this answer"),
					 errdetail("Each of the %d sealed table references keeps up to %d rows per unit.",
							   v.sealed_scans, run->rows_per_unit),
					 errhint("Join fewer sealed tables.")));
	}
	selection_init(&sel, &st.facts, k, v.grouped);
	if (v.grouped)
		dfdw_add_selection_count(q, run->privacy_unit, &v);

	/* 4. plan, then charge durably before any row is read */
	run->phase = DFDW_RUN_PLANNING;
	plan = pg_plan_query(q, query, 0, NULL);
	run->phase = DFDW_RUN_CHECKING;
	plan->queryId = UINT64CONST(0);
	/* compiling expressions costs more than these plans ever save (hundreds of ms per sealed scan) */
	plan->jitFlags = PGJIT_NONE;
	memset(&charge, 0, sizeof(charge));
	charge.app_id = dpg_hex(st.facts.app_id, DC_ADDR_LEN, true);
	charge.total_micro = (int64) st.facts.epsilon_milli * 1000;
	charge.epsilon_micro = v.epsilon_micro * k + (sel.on ? sel.eps_micro : 0);
	charge.delta = sel.on ? st.facts.delta_text : "0";
	charge.query = query;
	charge.datasets_json = datasets_json(run);
	dfdw_ledger_charge(&charge);
	charge_on_chain(run, &v, &st.facts, query, &charge, sel.on ? st.facts.delta : 0, &onchain);

	/* 5, 6. the sealed part */
	result = execute_sealed(run, plan, query, v.n_out, &sel, charge.run_id);

	/* 7. the receipt */
	memset(&rb, 0, sizeof(rb));
	rb.query = query;
	rb.result_json = result;
	rb.datasets = receipt_datasets(run);
	rb.n_datasets = list_length(run->datasets);
	rb.eps_charged = charge.epsilon_micro;
	rb.eps_aggregates = v.epsilon_micro * k;
	rb.eps_selection = sel.on ? sel.eps_micro : 0;
	rb.eps_spent = charge.spent_micro;
	rb.eps_total = charge.total_micro_out;
	rb.delta = charge.delta;
	rb.selection = sel.on;
	rb.selection_k = k;
	rb.selection_threshold = sel.tau_int;
	rb.pol_epsilon_total = (int64) st.facts.epsilon_milli * 1000;
	rb.pol_delta = st.facts.delta_text;
	rb.pol_epsilon_select = st.facts.epsilon_select_micro;
	rb.pol_min_group_size = st.facts.min_group_size;
	rb.pol_privacy_unit = st.facts.privacy_unit;
	rb.pol_max_rows_per_unit = st.facts.max_rows_per_unit;
	rb.rows_per_unit = run->rows_per_unit;
	rb.sensitivity = k;
	rb.seeded = dfdw_dp_seeded();
	rb.run_id = charge.run_id;
	memcpy(rb.app_id, st.facts.app_id, DC_ADDR_LEN);
	memcpy(rb.compose_hash, st.facts.compose_hash, 32);
	rb.instance_id = st.facts.instance_id;
	rb.chain_id = st.facts.chain_id;
	rb.block_number = st.facts.block_number;
	memcpy(rb.block_hash, st.facts.block_hash, 32);
	rb.approvals = st.facts.approvals;
	rb.threshold = st.facts.threshold;
	{
		pg_time_t	t = timestamptz_to_time_t(GetCurrentTransactionStartTimestamp());

		pg_strftime(issued_at, sizeof(issued_at), "%Y-%m-%dT%H:%M:%SZ", pg_gmtime(&t));
	}
	rb.issued_at = issued_at;
	rb.onchain = onchain.on_chain;
	memcpy(rb.charge_tx, onchain.tx_hash, 32);
	rb.charge_block = onchain.block_number;
	rb.charge_log_index = onchain.log_index;
	rb.charge_index = onchain.index;
	memcpy(rb.charge_nonce, onchain.nonce, 32);
	memcpy(rb.charge_query_hash, onchain.query_hash, 32);
	rb.charge_delta_pico = onchain.delta_pico;
	memcpy(rb.charge_account, onchain.ledger_address, DC_ADDR_LEN);
	previous_receipt(&rb.sequence, &prev_hash);
	rb.sequence++;
	rb.prev_receipt_hash = prev_hash;
	derr_clear(&err);
	if (!dreceipt_body(&rb, &canon, body_hash, &err))
		derr_ereport(&err, ERRCODE_INTERNAL_ERROR, NULL);
	{
		char	   *canon_p = pstrdup(canon);	/* palloc'd: freed on error too */

		free(canon);
		receipt = sign_and_quote(&sopts, &st.facts, canon_p, body_hash);
	}
	dfdw_ledger_record(charge.run_id, rb.sequence, dpg_hex(body_hash, 32, false), prev_hash, charge.epsilon_micro, receipt);
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(receipt));
}

Datum
dstack_run(PG_FUNCTION_ARGS)
{
	char	   *query = text_to_cstring(PG_GETARG_TEXT_PP(0));
	DfdwRun		run;
	Datum		result;

	check_top_level(fcinfo);
	memset(&run, 0, sizeof(run));
	run.phase = DFDW_RUN_CHECKING;
	run.cxt = CurrentMemoryContext;
	dfdw_run = &run;
	PG_TRY();
	{
		result = run_query(&run, query);
	}
	PG_FINALLY();
	{
		dfdw_run = NULL;
	}
	PG_END_TRY();
	PG_RETURN_DATUM(result);
}
