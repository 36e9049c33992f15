/*
 * run.c: dstack_run(query) -- the only way an answer over sealed data leaves
 * the CVM (DESIGN.md section 5, docs/receipts.md).
 *
 *   1. plan the query; the output guard (guard.c) refuses anything but DP
 *      aggregates and group keys and adds up the query's epsilon
 *   2. run it; the scans apply the mount rule and record each dataset
 *   3. charge the consortium's budget (total epsilon from the contract's
 *      policy) before anything is released; refuse when it is spent
 *   4. drop groups whose noisy dp_count is below the policy's minimum
 *      group size
 *   5. build the receipt body, sign its hash with the guest agent's receipt
 *      key, attach a TDX quote over it, append it to the hash-chained audit
 *      table, return it
 * dstack_run() must be its own top-level transaction, so that the charge, the
 * audit row and the answer commit together.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/syscache.h"
#include "access/htup_details.h"
#include "catalog/pg_class.h"
#include "pgtime.h"
#include "utils/timestamp.h"

#include "dstack_fdw.h"
#include "guest_agent.h"
#include "hex.h"
#include "pg_common.h"
#include "receipt.h"

PG_FUNCTION_INFO_V1(dstack_run);

static char *
hex0x(const uint8 *b, size_t n)
{
	char	   *h = palloc(2 * n + 3);

	h[0] = '0';
	h[1] = 'x';
	dhex_encode(b, n, h + 2);
	return h;
}

static char *
hexs(const uint8 *b, size_t n)
{
	char	   *h = palloc(2 * n + 1);

	dhex_encode(b, n, h);
	return h;
}

/* "1.500" from millionths, exact. */
static char *
eps_text(int64 micro)
{
	return psprintf("%lld.%06lld", (long long) (micro / 1000000), (long long) (micro % 1000000));
}

/*
 * The output column of the first dp_count (-1: none): its noisy value decides
 * whether a group is released.
 */
static int
count_column(SPIPlanPtr plan)
{
	CachedPlanSource *src = linitial(SPI_plan_get_plan_sources(plan));
	Query	   *q = linitial_node(Query, src->query_list);
	ListCell   *lc;
	int			i = 0;

	foreach(lc, q->targetList)
	{
		TargetEntry *tle = lfirst(lc);

		if (tle->resjunk)
			continue;
		if (IsA(tle->expr, Aggref) && dfdw_is_dp_aggregate(((Aggref *) tle->expr)->aggfnoid) &&
			strcmp(get_func_name(((Aggref *) tle->expr)->aggfnoid), "dp_count") == 0)
			return i;
		i++;
	}
	return -1;
}

/* The extension's schema, quoted, for the ledger statements. */
static const char *
ext_schema(void)
{
	return quote_identifier(get_namespace_name(dfdw_extension_schema()));
}

/* Owner of the ledger tables: the role that created the extension. */
static Oid
ledger_owner(void)
{
	Oid			nsp = dfdw_extension_schema();
	Oid			relid = get_relname_relid("dstack_budget", nsp);
	HeapTuple	tp;
	Oid			owner;

	tp = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tp))
		elog(ERROR, "ledger table dstack_budget is missing");
	owner = ((Form_pg_class) GETSTRUCT(tp))->relowner;
	ReleaseSysCache(tp);
	return owner;
}

/*
 * Run SQL on the extension's own tables with the rights of their owner: the
 * analyst may read them but never write them.  "@S@" stands for the schema.
 */
static void
ledger_exec(const char *sql_tmpl, int nargs, Oid *types, Datum *values, int expect)
{
	Oid			saved_user;
	int			saved_sec;
	Oid			owner = ledger_owner();
	int			rc;
	StringInfoData sql;
	const char *p;

	initStringInfo(&sql);
	for (p = sql_tmpl; *p; p++)
	{
		if (strncmp(p, "@S@", 3) == 0)
		{
			appendStringInfoString(&sql, ext_schema());
			p += 2;
		}
		else
			appendStringInfoChar(&sql, *p);
	}

	GetUserIdAndSecContext(&saved_user, &saved_sec);
	SetUserIdAndSecContext(owner, saved_sec | SECURITY_LOCAL_USERID_CHANGE);
	PG_TRY();
	{
		rc = SPI_execute_with_args(sql.data, nargs, types, values, NULL, false, 0);
		if (rc != expect)
			elog(ERROR, "ledger statement failed: %s", SPI_result_code_string(rc));
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(saved_user, saved_sec);
	}
	PG_END_TRY();
}

/*
 * Charge epsilon to the consortium's budget.  The row is created on first use
 * with the contract's total; an UPDATE that would overspend matches nothing.
 */
static void
charge_budget(const DfdwChainFacts *f, int64 micro, int64 *spent, int64 *total)
{
	char	   *app = hex0x(f->app_id, DC_ADDR_LEN);
	int64		contract_total = (int64) f->epsilon_milli * 1000;
	Oid			types[3] = {TEXTOID, INT8OID, INT8OID};
	Datum		vals[3] = {CStringGetTextDatum(app), Int64GetDatum(contract_total), Int64GetDatum(micro)};
	bool		isnull;

	ledger_exec("INSERT INTO @S@.dstack_budget (app_id, total_micro, spent_micro) "
				"VALUES ($1, $2, 0) ON CONFLICT (app_id) DO NOTHING", 2, types, vals, SPI_OK_INSERT);
	types[1] = INT8OID;
	vals[1] = Int64GetDatum(micro);
	ledger_exec("UPDATE @S@.dstack_budget SET spent_micro = spent_micro + $2, updated_at = now() "
				"WHERE app_id = $1 AND spent_micro + $2 <= total_micro RETURNING spent_micro, total_micro",
				2, types, vals, SPI_OK_UPDATE_RETURNING);
	if (SPI_processed == 0)
	{
		ledger_exec("SELECT spent_micro, total_micro FROM @S@.dstack_budget WHERE app_id = $1",
					1, types, vals, SPI_OK_SELECT);
		*spent = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		*total = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("privacy budget of consortium %s is spent", app),
				 errdetail("The query needs epsilon %s; %s of %s is left.", eps_text(micro),
						   eps_text(*total - *spent), eps_text(*total)),
				 errhint("Ask with a smaller epsilon, or have the owners approve a new consortium with a new budget.")));
	}
	*spent = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	*total = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
}

/*
 * The answer rows as JSON (every value as text), minus suppressed groups: a
 * group is released only when its noisy dp_count reaches the policy's
 * minimum group size (thresholding a noisy value keeps the decision inside
 * the differential-privacy accounting).
 */
static void
result_json(StringInfo buf, int count_col, uint32 min_group, int *suppressed)
{
	TupleDesc	desc = SPI_tuptable->tupdesc;

	appendStringInfoString(buf, "{\"columns\":[");
	for (int c = 0; c < desc->natts; c++)
	{
		if (c)
			appendStringInfoChar(buf, ',');
		escape_json(buf, NameStr(TupleDescAttr(desc, c)->attname));
	}
	appendStringInfoString(buf, "],\"rows\":[");
	*suppressed = 0;
	for (uint64 r = 0, emitted = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];

		if (count_col >= 0)
		{
			bool		isnull;
			Datum		n = SPI_getbinval(tup, desc, count_col + 1, &isnull);

			if (isnull || DatumGetInt64(n) < (int64) min_group)
			{
				(*suppressed)++;	/* the group and its key do not leave */
				continue;
			}
		}
		appendStringInfoString(buf, emitted++ ? ",[" : "[");
		for (int c = 0; c < desc->natts; c++)
		{
			char	   *v = SPI_getvalue(tup, desc, c + 1);

			if (c)
				appendStringInfoChar(buf, ',');
			if (v == NULL)
				appendStringInfoString(buf, "null");
			else
				escape_json(buf, v);
		}
		appendStringInfoChar(buf, ']');
	}
	appendStringInfoString(buf, "]}");
}

/* Previous receipt of this database: sequence and body hash (zeros when none). */
static void
previous_receipt(int64 *seq, char **prev_hash)
{
	ledger_exec("LOCK TABLE @S@.dstack_receipts IN EXCLUSIVE MODE", 0, NULL, NULL, SPI_OK_UTILITY);
	ledger_exec("SELECT seq, body_sha256 FROM @S@.dstack_receipts ORDER BY seq DESC LIMIT 1",
				0, NULL, NULL, SPI_OK_SELECT);
	if (SPI_processed == 0)
	{
		*seq = 0;
		*prev_hash = pstrdup("0000000000000000000000000000000000000000000000000000000000000000");
	}
	else
	{
		bool		isnull;

		*seq = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		*prev_hash = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	}
}

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
	if (!ga_get_key_verified(sopts->guest_agent, DRECEIPT_PURPOSE, DRECEIPT_PURPOSE, kms_root, f->app_id,
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
	p.simulated = quote.quote_len >= 9 && memmem(quote.quote, quote.quote_len, "SIMULATED", 9) != NULL;
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

Datum
dstack_run(PG_FUNCTION_ARGS)
{
	char	   *query = text_to_cstring(PG_GETARG_TEXT_PP(0));
	DfdwRun		run;
	SPIPlanPtr	plan;
	DfdwChainFacts facts;
	DfdwServerOptions sopts;
	DfdwDatasetRef *first;
	StringInfoData body;
	StringInfoData resbuf;
	ListCell   *lc;
	int64		spent = 0,
				total = 0,
				seq;
	char	   *prev_hash;
	char	   *canon;
	uint8		body_hash[DC_SHA256_LEN];
	char	   *receipt;
	int			suppressed;
	int			count_col;
	DErr		err;
	int			rc;
	MemoryContext outer;
	Datum		result;

	if (IsTransactionBlock() || GetCurrentTransactionNestLevel() > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("dstack_run() must run as its own transaction"),
				 errdetail("The budget charge, the audit record and the answer must commit together; "
						   "inside a transaction block or a subtransaction they could be rolled back "
						   "after the answer was seen."),
				 errhint("Call it outside BEGIN ... COMMIT and outside exception blocks: "
						 "SELECT dstack_run($$...$$);")));
	if (dfdw_run != NULL)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("dstack_run() cannot be nested")));

	memset(&run, 0, sizeof(run));
	run.cxt = CurrentMemoryContext;
	outer = CurrentMemoryContext;
	dfdw_run = &run;
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		plan = SPI_prepare(query, 0, NULL);	/* the guard runs here */
		if (plan == NULL)
			elog(ERROR, "could not prepare the query: %s", SPI_result_code_string(SPI_result));
		/* planned (and guarded) here, then run */
		rc = SPI_execute_plan(plan, NULL, NULL, true, 0);
		if (rc != SPI_OK_SELECT)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("dstack_run() runs one SELECT"),
					 errhint("Pass a single SELECT of DP aggregates over sealed tables.")));
		if (run.sealed_relids == NIL || run.datasets == NIL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("dstack_run() answers only queries over sealed tables"),
					 errhint("Query the dstack_fdw foreign tables of a consortium.")));
		count_col = count_column(plan);
		initStringInfo(&resbuf);
		result_json(&resbuf, count_col, run.min_group_size, &suppressed);
	}
	PG_FINALLY();
	{
		dfdw_run = NULL;
	}
	PG_END_TRY();

	/* one consortium per answer: all datasets on one server */
	first = linitial(run.datasets);
	foreach(lc, run.datasets)
		if (((DfdwDatasetRef *) lfirst(lc))->serverid != first->serverid)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("a dstack_run() query may read datasets of one consortium only"),
					 errhint("Put tables of different consortia in different queries.")));
	if (!dfdw_statement_chain_facts(first->serverid, &facts))
		elog(ERROR, "chain facts of the statement are missing");
	dfdw_server_options(GetForeignServer(first->serverid), &sopts);

	/*
	 * Each unit contributes at most rows_per_unit rows per sealed table and
	 * the tables are joined on the unit, so at most rows_per_unit^tables rows
	 * of the answer: the privacy loss is epsilon times that.
	 */
	run.sensitivity = 1;
	if (run.privacy_unit)
		for (int i = 0; i < run.sealed_scans; i++)
			run.sensitivity *= run.rows_per_unit;
	if (run.sensitivity > 1000)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a unit could contribute %lld rows to this answer", (long long) run.sensitivity),
				 errhint("Lower dstack_fdw.max_rows_per_unit or join fewer sealed tables.")));
	run.epsilon_micro *= run.sensitivity;

	/* charged before anything is released */
	charge_budget(&facts, run.epsilon_micro, &spent, &total);
	previous_receipt(&seq, &prev_hash);

	initStringInfo(&body);
	appendStringInfo(&body, "{\"format\":\"%s\",\"query\":", DRECEIPT_FORMAT);
	escape_json(&body, query);
	appendStringInfo(&body, ",\"result\":%s,\"min_group_size\":%u,\"suppressed_groups\":%d,\"datasets\":[",
					 resbuf.data, run.min_group_size, suppressed);
	foreach(lc, run.datasets)
	{
		DfdwDatasetRef *d = lfirst(lc);

		appendStringInfoString(&body, foreach_current_index(lc) ? ",{\"table\":" : "{\"table\":");
		escape_json(&body, d->table);
		appendStringInfo(&body, ",\"owner\":\"%s\",\"dataset_id\":\"%s\",\"manifest_hash\":\"%s\"}",
						 hex0x(d->owner, DC_ADDR_LEN), hexs(d->dataset_id, DSEAL_DATASET_ID_LEN),
						 hexs(d->manifest_hash, DC_SHA256_LEN));
	}
	appendStringInfo(&body, "],\"epsilon\":{\"charged\":\"%s\",\"spent\":\"%s\",\"left\":\"%s\",\"total\":\"%s\"}",
					 eps_text(run.epsilon_micro), eps_text(spent), eps_text(total - spent), eps_text(total));
	appendStringInfoString(&body, ",\"contribution\":{\"privacy_unit\":");
	if (run.privacy_unit)
		escape_json(&body, run.privacy_unit);
	else
		appendStringInfoString(&body, "null");
	appendStringInfo(&body, ",\"rows_per_unit\":%d,\"sensitivity\":%lld}",
					 run.rows_per_unit, (long long) run.sensitivity);
	appendStringInfo(&body, ",\"app_id\":\"%s\",\"compose_hash\":\"%s\",\"instance_id\":\"%s\"",
					 hex0x(facts.app_id, DC_ADDR_LEN), hexs(facts.compose_hash, 32), facts.instance_id);
	appendStringInfo(&body, ",\"chain\":{\"chain_id\":%llu,\"block_number\":%llu,\"block_hash\":\"%s\","
					 "\"approvals\":%llu,\"threshold\":%llu}",
					 (unsigned long long) facts.chain_id, (unsigned long long) facts.block_number,
					 hex0x(facts.block_hash, 32), (unsigned long long) facts.approvals,
					 (unsigned long long) facts.threshold);
	{
		pg_time_t	t = timestamptz_to_time_t(GetCurrentTransactionStartTimestamp());
		char		iso[32];

		pg_strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", pg_gmtime(&t));
		appendStringInfo(&body, ",\"issued_at\":\"%s\",\"sequence\":%lld,\"prev_receipt_hash\":\"%s\"}",
						 iso, (long long) (seq + 1), prev_hash);
	}

	derr_clear(&err);
	if (!dreceipt_canonical(body.data, &canon, body_hash, &err))
		derr_ereport(&err, ERRCODE_INTERNAL_ERROR, NULL);
	{
		char	   *canon_p = pstrdup(canon);	/* palloc'd: freed on error too */

		free(canon);
		receipt = sign_and_quote(&sopts, &facts, canon_p, body_hash);
	}

	{
		Oid			types[5] = {INT8OID, TEXTOID, TEXTOID, INT8OID, JSONBOID};
		Datum		vals[5];
		MemoryContext old = MemoryContextSwitchTo(outer);

		/* the answer outlives SPI_finish(): build it in the caller's context */
		result = DirectFunctionCall1(jsonb_in, CStringGetDatum(receipt));
		MemoryContextSwitchTo(old);
		vals[0] = Int64GetDatum(seq + 1);
		vals[1] = CStringGetTextDatum(hexs(body_hash, 32));
		vals[2] = CStringGetTextDatum(prev_hash);
		vals[3] = Int64GetDatum(run.epsilon_micro);
		vals[4] = result;
		ledger_exec("INSERT INTO @S@.dstack_receipts (seq, body_sha256, prev_hash, epsilon_micro, receipt) "
					"VALUES ($1, $2, $3, $4, $5)", 5, types, vals, SPI_OK_INSERT);
	}
	SPI_finish();
	PG_RETURN_DATUM(result);
}
