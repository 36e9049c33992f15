/*
 * dstack_fdw.c: module init, GUCs and the FDW routine table.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "fmgr.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "foreign/fdwapi.h"
#include "utils/guc.h"

#include "dstack_fdw.h"
#include "gpu_scan.h"
#include "guest_agent.h"

PG_MODULE_MAGIC;

bool		dfdw_guc_explain_stable = false;
bool		dfdw_guc_analyze = false;
bool		dfdw_guc_verify_before_scan = false;
bool		dfdw_guc_key_cache = true;
int			dfdw_guc_read_ahead = DFDW_READ_AHEAD_ON;
int			dfdw_guc_ledger_idle_ms = 3000;

void		_PG_init(void);

static const struct config_enum_entry read_ahead_options[] = {
	{"off", DFDW_READ_AHEAD_OFF, false},
	{"on", DFDW_READ_AHEAD_ON, false},
	{"always", DFDW_READ_AHEAD_ALWAYS, false},
	{"false", DFDW_READ_AHEAD_OFF, true},
	{"true", DFDW_READ_AHEAD_ON, true},
	{"no", DFDW_READ_AHEAD_OFF, true},
	{"yes", DFDW_READ_AHEAD_ON, true},
	{"0", DFDW_READ_AHEAD_OFF, true},
	{"1", DFDW_READ_AHEAD_ON, true},
	{NULL, 0, false}
};

/*
 * Every behaviour that a test or an operator may want to see or change is a
 * GUC.  ANALYZE is off by default because pg_stats would publish most common
 * values and histograms of sealed columns to anyone with SELECT on the view.
 */
void
_PG_init(void)
{
	DefineCustomBoolVariable("dstack_fdw.allow_analyze",
							 "Allow ANALYZE to sample sealed foreign tables.",
							 "Off by default: statistics of sealed data (most common values, "
							 "histograms) would leak through pg_stats. Row counts always come "
							 "from the signed manifest.",
							 &dfdw_guc_analyze, false, PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("dstack_fdw.verify_before_scan",
							 "Check the signed hash of every chunk a scan needs before it returns a row.",
							 "Off by default: each chunk's GCM tag (signed in the manifest) "
							 "authenticates it when it is read, and dstack_run() releases no "
							 "answer unless every chunk it read authenticated. On, a tampered "
							 "file fails a scan with the guard off before its first row, at the "
							 "cost of reading the needed chunks twice.",
							 &dfdw_guc_verify_before_scan, false, PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomEnumVariable("dstack_fdw.read_ahead",
							 "Read, decrypt and decompress the next row group on a second thread.",
							 "While the executor works through one row group of a sealed table, "
							 "a thread of the same backend prepares the next; memory is two row "
							 "groups of the scanned columns instead of one. In a parallel scan only "
							 "when each participant has a core to spare for its thread; always: "
							 "in a parallel scan too (tests).",
							 &dfdw_guc_read_ahead, DFDW_READ_AHEAD_ON, read_ahead_options,
							 PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("dstack_fdw.ledger_worker_idle",
							"How long a ledger worker of dstack_run() stays for the next request.",
							"dstack_run() commits its charge and its receipt through a background "
							"worker; with dstack_fdw preloaded, one per database stays this long "
							"after its last request instead of starting twice per run. 0 starts one "
							"per request. Keep it under 5 s: DROP DATABASE waits that long for it.",
							&dfdw_guc_ledger_idle_ms, 3000, 0, 60000, PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("dstack_fdw.key_cache",
							 "Keep the guest agent's verified keys for the life of the backend.",
							 "What GetKey answers is fixed while the CVM runs (derived from the app key "
							 "the KMS released at boot), so each key and its signature chain, once "
							 "verified to kms_root_pubkey, are kept per agent socket, path, root and app "
							 "id. The consortium is still read every statement. Off: GetKey every time.",
							 &dfdw_guc_key_cache, true, PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("dstack_fdw.explain_stable",
							 "Show only stable facts in EXPLAIN (file names, not paths; no chain block).",
							 "For regression tests.",
							 &dfdw_guc_explain_stable, false, PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("dstack_fdw.output_guard",
							 "Allow only DP aggregates over sealed tables, and only through dstack_run().",
							 "The CVM image sets it on in postgresql.conf; analysts are not superusers. "
							 "Off is for tests of the scan itself.",
							 &dfdw_guc_output_guard, true, PGC_SUSET, 0, NULL, NULL, NULL);
	dfdw_dp_init_gucs();
	MarkGUCPrefixReserved("dstack_fdw");
	dfdw_guard_init();
	dfdw_ledger_pool_init();

	/* every guest-agent call of this backend ends at once on a query cancel */
	{
		HttpOptions hopt;

		http_options_default(&hopt);
		hopt.timeout_ms = 30000;	/* a TDX quote can take seconds */
		hopt.should_abort = dfdw_should_abort;
		ga_set_http_options(&hopt);
	}
	gpu_scan_init();			/* ../gpu_scan: its GUCs and planner hooks; no CUDA until first use */
}

PG_FUNCTION_INFO_V1(dstack_fdw_handler);

/* The routine table; every callback lives in plan.c, exec.c or import.c. */
Datum
dstack_fdw_handler(PG_FUNCTION_ARGS)
{
	FdwRoutine *r = makeNode(FdwRoutine);

	r->GetForeignRelSize = dfdwGetForeignRelSize;
	r->GetForeignPaths = dfdwGetForeignPaths;
	r->GetForeignPlan = dfdwGetForeignPlan;
	r->BeginForeignScan = dfdwBeginForeignScan;
	r->IterateForeignScan = dfdwIterateForeignScan;
	r->ReScanForeignScan = dfdwReScanForeignScan;
	r->EndForeignScan = dfdwEndForeignScan;
	r->ExplainForeignScan = dfdwExplainForeignScan;
	r->AnalyzeForeignTable = dfdwAnalyzeForeignTable;
	r->ImportForeignSchema = dfdwImportForeignSchema;
	r->IsForeignScanParallelSafe = dfdwIsForeignScanParallelSafe;
	r->EstimateDSMForeignScan = dfdwEstimateDSMForeignScan;
	r->InitializeDSMForeignScan = dfdwInitializeDSMForeignScan;
	r->ReInitializeDSMForeignScan = dfdwReInitializeDSMForeignScan;
	r->InitializeWorkerForeignScan = dfdwInitializeWorkerForeignScan;
	r->ShutdownForeignScan = dfdwShutdownForeignScan;
	PG_RETURN_POINTER(r);
}

/*
 * Schema of this extension (PostgreSQL 15 has no get_extension_schema()).
 * Cached: the extension is not relocatable, so the schema cannot change
 * while it exists.
 */
Oid
dfdw_extension_schema(void)
{
	static Oid	cached_ext = InvalidOid;
	static Oid	cached_nsp = InvalidOid;
	Oid			ext = get_extension_oid("dstack_fdw", true);
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;

	if (!OidIsValid(ext))
		return InvalidOid;
	if (ext == cached_ext)
		return cached_nsp;
	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(ext));
	scan = systable_beginscan(rel, ExtensionOidIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	cached_nsp = HeapTupleIsValid(tup) ? ((Form_pg_extension) GETSTRUCT(tup))->extnamespace : InvalidOid;
	cached_ext = ext;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return cached_nsp;
}
