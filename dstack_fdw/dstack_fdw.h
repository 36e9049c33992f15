/*
 * dstack_fdw.h: map of the CVM-side foreign data wrapper.
 *
 *   dstack_fdw.c  module init, GUCs, the FDW handler (routine table)
 *   options.c     option validator; server and table options resolved to structs
 *   mount.c       the mount rule: on-chain approval, guest-agent identity and
 *                 keys, unwrap of a dataset's data key; cached for one statement
 *   identity.c    which CVM this is: the guest agent's Info, checked, kept per
 *                 backend and agent socket
 *   plan.c        relation size from the signed manifest, paths (serial and
 *                 partial), the plan (columns to decrypt), EXPLAIN
 *   exec.c        the columnar scan, serial and parallel (row groups handed
 *                 out through shared memory), released on abort; the batch
 *                 interface for gpu_scan
 *   bound.c       contribution bounding: rows kept per privacy unit
 *   import.c      IMPORT FOREIGN SCHEMA from a directory of manifests
 *   consortia.c   the dstack_consortia view
 *
 * The output boundary (docs/output-guard.md):
 *   run.c         dstack_run(): the only way out; checks, charge, plan,
 *                 sealed execution, partition selection, receipt
 *   validate.c    the allow-list the analysed query must pass, by OID
 *   guard.c       the early refusal in the planner hook; statement nesting;
 *                 messages withheld while sealed rows flow
 *   ledger.c      the budget ledger and audit rows, committed by a
 *                 background worker in their own transactions
 *   ledger_pool.c the ledger workers kept between requests
 *   dp_agg.c      dp_count, dp_sum, dp_avg; dp_quantile.c: dp_quantile
 *
 * gpu_scan (../gpu_scan, built into this library) adds CustomScans over
 * sealed tables; it reads them through the batch interface of exec.c.
 *
 * Format and crypto come from ../common (no PostgreSQL), chain and guest
 * agent clients too; Datum conversion and the DErr -> ereport boundary from
 * ../pg_common.  Nothing below planner level leaks into those.
 */
#ifndef DSTACK_FDW_H
#define DSTACK_FDW_H

#include "postgres.h"

#include "foreign/fdwapi.h"
#include "foreign/foreign.h"
#include "nodes/pathnodes.h"

#include "dp.h"
#include "dseal.h"
#include "http.h"

/* ---- GUCs (dstack_fdw.c) ---- */
extern bool dfdw_guc_explain_stable;	/* test aid: no paths or timings in EXPLAIN */
extern bool dfdw_guc_analyze;	/* ANALYZE of sealed tables; off: stats would leak */
extern bool dfdw_guc_verify_before_scan;	/* hash every needed chunk before the first row */
extern bool dfdw_guc_key_cache;	/* keep verified GetKey answers per backend (keycache.c) */
typedef enum DfdwReadAhead
{
	DFDW_READ_AHEAD_OFF,
	DFDW_READ_AHEAD_ON,			/* in a parallel scan only with a core to spare */
	DFDW_READ_AHEAD_ALWAYS
} DfdwReadAhead;
extern int	dfdw_guc_read_ahead;	/* decode the next row group on a second thread */
extern int	dfdw_guc_ledger_idle_ms;	/* a kept ledger worker's idle time; 0: one per request */

/* ---- dstack_fdw.c ---- */
extern Oid	dfdw_extension_schema(void);

/* ---- options.c ---- */
typedef struct DfdwServerOptions
{
	char	   *rpc_url;		/* JSON-RPC node(s) of the chain the consortium lives on, comma-separated */
	int			rpc_quorum;		/* nodes that must agree (0: all of them) */
	char	   *chain_id;		/* decimal chain id the nodes must serve (required to mount) */
	char	   *kms_contract;	/* dstack's KMS contract (DstackKms) address (required to mount) */
	char	   *app_contract;	/* optional: must equal the guest agent's app id */
	uint8		app_contract_id[DC_ADDR_LEN];	/* app_contract decoded (when set) */
	char	   *guest_agent;	/* Unix socket of the dstack guest agent (NULL: default) */
	char	   *kms_root_pubkey;	/* hex, the KMS root the key chains must end at */
	uint8		kms_root[DC_PUBKEY_LEN];	/* kms_root_pubkey decoded */
	int			confirmations;	/* read chain state this many blocks below the head */
	int			connect_timeout_ms;
	int			timeout_ms;
	int			retries;
	bool		chain_ledger;	/* ledger 'chain' (default): charges on the consortium contract */
} DfdwServerOptions;

typedef struct DfdwTableOptions
{
	char	   *path;			/* absolute path of the .dseal file */
	char	   *owner;			/* 0x address of the owner who sealed it */
	uint8		owner_id[DC_ADDR_LEN];	/* owner decoded */
} DfdwTableOptions;

/*
 * Both resolve the options and decode the hex ones (options.c: hex_option(),
 * the one decoder, which the validator uses too); read the decoded bytes
 * instead of decoding the text again.
 */

extern void dfdw_server_options(ForeignServer *server, DfdwServerOptions *opts);
/* The chain_id option as a number (opts->chain_id must be set); errors as at CREATE SERVER. */
extern uint64 dfdw_chain_id(const DfdwServerOptions *opts);
/* Raise "server lacks option" unless kms_contract and chain_id are both set. */
extern void dfdw_require_chain_options(ForeignServer *server, const DfdwServerOptions *opts);
/* rpc_url's value: one to DFDW_MAX_RPC_NODES http(s) URLs, comma-separated, no duplicate (mount.c). */
#define DFDW_MAX_RPC_NODES 8
extern void dfdw_validate_rpc_url(const char *value);
extern void dfdw_table_options(Oid relid, DfdwTableOptions *opts);

/* ---- mount.c ---- */

/* What a scan needs once the mount rule has passed. */
typedef struct DfdwMount
{
	uint8		data_key[DSEAL_DATA_KEY_LEN];	/* scrubbed by dfdw_mount_scrub() */
	uint64		block_number;	/* chain state the decision was read at */
	uint64		approvals;
	uint64		threshold;
} DfdwMount;

/*
 * Apply the mount rule to an open dataset of table relid on server: chain
 * approved (>= k, not revoked, pinned compose-hash equals the running CVM's),
 * table owner among the approvers, manifest signed by that owner, recipe of
 * the file equal to the CVM's; then GetKey and unwrap.  Raises a distinct
 * error for each failure.
 */
extern void dfdw_mount(Oid serverid, Oid relid, DsealReader *reader, DfdwMount *mount);
/* The HTTP clients' cancel check (a query cancel or a shutdown is pending), and a server's options with it. */
extern bool dfdw_should_abort(void *arg);
extern void dfdw_http_options(const DfdwServerOptions *opts, HttpOptions *hopt);
extern void dfdw_mount_scrub(DfdwMount *mount);

/* The identity and chain facts of the current statement (for receipts and views). */
typedef struct DfdwChainFacts
{
	uint8		app_id[DC_ADDR_LEN];	/* from the guest agent */
	uint8		compose_hash[32];	/* from the guest agent */
	char		instance_id[80];	/* hex, from the guest agent */
	uint64		chain_id;
	uint64		block_number;
	uint8		block_hash[32];
	uint64		approvals;
	uint64		threshold;
	/* the analysis policy (see DfdwPolicy) */
	uint64		epsilon_milli;	/* policy: total privacy budget, in thousandths */
	uint32		min_group_size; /* policy: floor of the partition-selection threshold */
	char		privacy_unit[64];	/* policy: column that identifies one person / account */
	int64		epsilon_select_micro;	/* policy: epsilon of DP partition selection per grouped query */
	double		delta;			/* policy: delta of DP partition selection per grouped query */
	char		delta_text[32]; /* the same, as the policy writes it (for receipts) */
	int			max_rows_per_unit;	/* policy: rows one unit may contribute per sealed table */
	bool		policy_from_compose;	/* read from the measured app-compose (else: contract only) */
} DfdwChainFacts;
extern bool dfdw_statement_chain_facts(Oid serverid, DfdwChainFacts *facts);

typedef struct DfdwConsortiumStatus
{
	DfdwChainFacts facts;
	uint8		pinned_compose_hash[32];
	bool		kms_allowed;	/* DstackKms.isAppAllowed of this CVM's boot, at the same block */
	bool		revoked;
	int			n_approvers;
	uint8		(*approvers)[DC_ADDR_LEN];
	int			n_owners;
} DfdwConsortiumStatus;
extern void dfdw_consortium_status(Oid serverid, DfdwConsortiumStatus *st);

/* ---- guard.c: the early, friendly refusal and the statement's nesting ---- */
extern bool dfdw_guc_output_guard;

extern void dfdw_guard_init(void);
extern void dfdw_guard_check_planned(void);
extern bool dfdw_is_sealed_rel(Oid relid);
/* executor, utility and planner nesting of the current top-level statement */
extern int	dfdw_exec_depth(void);
extern int	dfdw_utility_depth(void);
extern int	dfdw_planner_depth(void);
extern bool dfdw_called_by_top_level_select(Node *fn_expr);

/* ---- run.c: the one dstack_run() in progress ---- */

/* A dataset read by the current dstack_run() (for the ledger and the receipt). */
typedef struct DfdwDatasetRef
{
	Oid			relid;
	Oid			serverid;
	char	   *table;			/* qualified name in the CVM */
	uint8		owner[DC_ADDR_LEN];
	uint8		dataset_id[DSEAL_DATASET_ID_LEN];
	uint8		manifest_hash[DC_SHA256_LEN];
} DfdwDatasetRef;

typedef enum DfdwRunPhase
{
	DFDW_RUN_CHECKING,			/* parsing, validating, mounting, charging */
	DFDW_RUN_PLANNING,			/* planning the validated query */
	DFDW_RUN_EXECUTING,			/* running the validated plan: sealed rows flow */
	DFDW_RUN_RELEASING			/* building the receipt */
} DfdwRunPhase;

/*
 * State of the dstack_run() in progress (NULL when none).  Written by run.c
 * only; the scans read it to know whether they are part of the validated
 * plan and how to bound contributions.
 */
typedef struct DfdwRun
{
	DfdwRunPhase phase;
	PlannedStmt *plan;			/* the one plan whose sealed scans may run */
	MemoryContext cxt;
	List	   *datasets;		/* DfdwDatasetRef *, one per sealed table */
	char	   *privacy_unit;	/* policy: the unit column */
	int			rows_per_unit;	/* policy: rows a unit keeps per sealed table */
} DfdwRun;
extern DfdwRun *dfdw_run;

/*
 * The execution-time boundary: may a sealed scan of rel start in the plan
 * being executed by estate?  Only inside the plan dstack_run() validated and
 * planned in this call; raises otherwise.
 */
extern void dfdw_check_sealed_scan(EState *estate, Relation rel);
/* During a validated plan's execution messages below ERROR are not sent (guard.c). */
extern bool dfdw_sealed_execution(void);

/* ---- bound.c: contribution bounding on the privacy unit ---- */
typedef struct DfdwBound DfdwBound;
extern DfdwBound *dfdw_bound_begin(MemoryContext cxt, uint64 row_count, int rows_per_unit);
/* Decide a row group's rows in order: keep[] (LSB first) marks the rows kept. */
extern void dfdw_bound_row_group(DfdwBound *b, const DsealColBuf *unit, uint8 *keep);
extern DsealBound *dfdw_bound_table(DfdwBound *b);
extern void dfdw_bound_reset(DfdwBound *b);

/* ---- validate.c: the allow-list of dstack_run() ---- */
typedef struct DfdwValidated
{
	Oid			serverid;		/* the one consortium (server) the query reads */
	List	   *sealed_relids;	/* distinct sealed tables, range-table order */
	List	   *sealed_rtis;	/* range-table indexes of sealed tables */
	int			sealed_scans;	/* sealed range-table entries (a self-join counts twice) */
	int64		epsilon_micro;	/* sum of the DP aggregates' epsilons */
	int			n_dp;			/* DP aggregates */
	bool		grouped;		/* GROUP BY present: keys need partition selection */
	int			n_out;			/* output columns the analyst asked for */
} DfdwValidated;

extern void dfdw_validate_query(Query *q, DfdwValidated *v);
extern void dfdw_validate_units(Query *q, const char *unit, DfdwValidated *v);
extern void dfdw_add_selection_count(Query *q, const char *unit, DfdwValidated *v);

/* ---- ledger.c: the durable ledger, written by a background worker ---- */
typedef struct DfdwCharge
{
	/* in */
	const char *app_id;			/* 0x hex */
	int64		total_micro;	/* the policy's total, for the first charge */
	int64		epsilon_micro;	/* this run's charge */
	const char *delta;			/* this run's delta, as text ("0" when none) */
	const char *query;
	const char *datasets_json;
	/* out */
	int64		run_id;
	int64		spent_micro;	/* after the charge */
	int64		total_micro_out;
} DfdwCharge;
extern void dfdw_ledger_charge(DfdwCharge *c);
extern void dfdw_ledger_record(int64 run_id, int64 seq, const char *body_sha256, const char *prev_hash,
							   int64 epsilon_micro, const char *receipt_json);
extern void dfdw_ledger_fail(int64 run_id, const char *sqlstate_class);
extern Oid	dfdw_ledger_owner(void);
extern PGDLLEXPORT void dfdw_ledger_worker_main(Datum arg);
/* ledger_pool.c: ledger workers kept between requests (when preloaded) */
extern void dfdw_ledger_pool_init(void);
extern PGDLLEXPORT void dfdw_ledger_pool_main(Datum arg);

/* ---- chain_ledger.c: the ledger of record on chain ---- */
typedef struct DfdwChainCharge
{
	bool		on_chain;		/* false: the server keeps a local ledger only */
	uint8		tx_hash[32];
	uint64		block_number;
	uint64		log_index;
	uint64		index;			/* the contract's charge index */
	uint8		nonce[32];
	uint8		query_hash[32];
	uint64		delta_pico;
	uint8		ledger_address[DC_ADDR_LEN];	/* the CVM account that sent it */
} DfdwChainCharge;
extern void dfdw_chain_check_dataset(Oid serverid, const DfdwChainFacts *f, const DfdwDatasetRef *d);
extern void dfdw_chain_charge(Oid serverid, const DfdwChainFacts *f, const char *query, int64 epsilon_micro,
							  double delta, List *datasets, DfdwChainCharge *out);

/* ---- dp_agg.c ---- */
typedef enum DfdwDpKind
{
	DFDW_DP_NONE = 0,
	DFDW_DP_COUNT,
	DFDW_DP_SUM_INT8,
	DFDW_DP_SUM_FLOAT8,
	DFDW_DP_AVG,
	DFDW_DP_QUANTILE
} DfdwDpKind;
extern void dfdw_dp_init_gucs(void);
extern DfdwDpKind dfdw_dp_kind(Oid aggfnoid);
extern bool dfdw_dp_is_dp_aggregate(Oid aggfnoid);
extern bool dfdw_dp_const_args(FunctionCallInfo fcinfo, Datum *vals, bool *nulls, int n);
extern void dfdw_dp_apply_seed(void);
extern bool dfdw_dp_seeded(void);
extern int64 dfdw_dp_epsilon_micro(double eps);
extern dp_i128 dfdw_dp_laplace(dp_u128 sensitivity, int64 eps_micro);

/* A DP aggregate's constant arguments in state units (gpu_scan, validate.c). */
typedef struct DfdwDpArgs
{
	int64		eps_micro;
	int64		lower;			/* int8 value, or float bound in 1e-6 units */
	int64		upper;
	double		lower_f;
	double		upper_f;
} DfdwDpArgs;
extern void dfdw_dp_check_args(const char *fn, char kind, bool eps_null, double eps, bool lo_null, Datum lo,
							   bool hi_null, Datum hi, DfdwDpArgs *out);
extern bytea *dfdw_dp_partial_state(int64 count, int64 sum_hi, uint64 sum_lo, const DfdwDpArgs *args,
									bool has_bounds);

/* ---- plan.c ---- */
extern void dfdwGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid);
extern void dfdwGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid);
extern ForeignScan *dfdwGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid,
									   ForeignPath *best_path, List *tlist, List *scan_clauses,
									   Plan *outer_plan);
extern void dfdwExplainForeignScan(ForeignScanState *node, struct ExplainState *es);
extern bool dfdwIsForeignScanParallelSafe(PlannerInfo *root, RelOptInfo *rel, RangeTblEntry *rte);
extern void dfdw_read_cost(PlannerInfo *root, RelOptInfo *baserel, Cost *startup, Cost *run);

/* ---- exec.c ---- */
extern void dfdwBeginForeignScan(ForeignScanState *node, int eflags);
extern TupleTableSlot *dfdwIterateForeignScan(ForeignScanState *node);
extern void dfdwReScanForeignScan(ForeignScanState *node);
extern void dfdwEndForeignScan(ForeignScanState *node);
extern Size dfdwEstimateDSMForeignScan(ForeignScanState *node, ParallelContext *pcxt);
extern void dfdwInitializeDSMForeignScan(ForeignScanState *node, ParallelContext *pcxt, void *coordinate);
extern void dfdwReInitializeDSMForeignScan(ForeignScanState *node, ParallelContext *pcxt, void *coordinate);
extern void dfdwInitializeWorkerForeignScan(ForeignScanState *node, shm_toc *toc, void *coordinate);
extern void dfdwShutdownForeignScan(ForeignScanState *node);
extern bool dfdwAnalyzeForeignTable(Relation relation, AcquireSampleRowsFunc *func, BlockNumber *totalpages);

/* Open a dataset so that it is closed when cxt is reset or deleted (abort too). */
extern DsealReader *dfdw_open_dataset(const char *path, MemoryContext cxt);
/* Every column of rel is declared with exactly the type its dataset was sealed as. */
extern void dfdw_check_declared_types(Relation rel, const DsealManifest *m, const char *path);

/*
 * The columnar batch interface (exec.c), for gpu_scan: the same mount rule,
 * receipt record and contribution bounding as the foreign scan, a row group
 * at a time.
 */
typedef struct DfdwScan DfdwScan;
typedef struct DfdwBatch
{
	uint32		nrows;
	int			ncols;
	const DsealColBuf *cols;	/* one per attno given to dfdw_batch_begin, in order */
	const uint8 *keep;			/* rows kept by contribution bounding (LSB first), or NULL: all */
} DfdwBatch;
extern DfdwScan *dfdw_batch_begin(EState *estate, Relation rel, List *attnos, MemoryContext parent);
extern bool dfdw_batch_next(DfdwScan *s, DfdwBatch *b);
extern void dfdw_batch_fill_slot(DfdwScan *s, TupleTableSlot *slot, uint32 row);
extern MemoryContext dfdw_batch_memory(DfdwScan *s);
extern uint64 dfdw_batch_row_count(DfdwScan *s);
extern void dfdw_batch_rescan(DfdwScan *s);
extern void dfdw_batch_end(DfdwScan *s);

/* ---- import.c ---- */
extern List *dfdwImportForeignSchema(ImportForeignSchemaStmt *stmt, Oid serverOid);

#endif							/* DSTACK_FDW_H */
