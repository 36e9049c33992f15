/*
 * gpu_scan.h: map of gpu_scan, the CustomScan provider over sealed tables
 * (docs/gpu_scan.md).  Built into dstack_fdw.so: its scans go through the
 * FDW's batch interface (../dstack_fdw/exec.c), so the mount rule, receipts
 * and contribution bounding are the FDW's own, not a second copy.
 *
 *   kernels/gs_logic.h   per-row logic (filter, grouping, partial aggregates),
 *                        compiled by nvcc for the GPU and by cc for the host
 *   kernels/gs_kernels.cu  the CUDA kernels around it (fatbin, embedded)
 *   gs_host.c/.h         the kernels on the CPU; the host group table (no PostgreSQL)
 *   gs_cuda.c/.h         libcuda through dlopen, pinned staging, streams (no PostgreSQL)
 *   gs_pg.c              GUCs, hooks, the lazy device probe and its log line
 *   gs_compile.c         quals, group keys and aggregates to kernel parameters
 *   gs_plan.c            paths and plans: GpuPreAgg (upper hook), GpuScan (rel hook)
 *   gs_exec.c            execution of both nodes, EXPLAIN
 *
 * Two nodes:
 *   GpuPreAgg  scan + filter + partial aggregation of one sealed table, or of
 *              an inner hash join of two (the smaller loaded whole, hashed on
 *              the host, probed by the kernel); a Finalize Agg above combines
 *              the partial states and runs the final functions, so DP noise is
 *              drawn once, on the CPU.
 *   GpuScan    scan + filter; rows that pass go up as tuples.
 */
#ifndef GPU_SCAN_H
#define GPU_SCAN_H

#include "postgres.h"

#include "nodes/extensible.h"
#include "nodes/pathnodes.h"

#include "gs_host.h"

/* ---- GUCs (gs_pg.c) ---- */
extern bool gs_guc_enabled;
extern bool gs_guc_enable_preagg;
extern bool gs_guc_enable_scan;
extern bool gs_guc_host_path;
extern bool gs_guc_use_gpu;
extern bool gs_guc_debug_planner;
extern int	gs_guc_join_max_inner_rows;
extern int	gs_guc_device_table_slots;
extern int	gs_guc_max_groups;
extern char *gs_guc_libcuda;
extern bool gs_guc_require_cc;
extern char *gs_guc_libnvml;

/* ---- gs_pg.c ---- */
extern void gpu_scan_init(void);
/* Is a GPU usable in this backend?  Probes once; logs one line when not. */
extern bool gs_device_available(void);
extern const char *gs_device_unavailable_reason(void);
/* Planner debug output: a NOTICE when gpu_scan.debug_planner is on. */
extern void gs_debug(const char *fmt,...) pg_attribute_printf(1, 2);

/* ---- gs_compile.c ---- */

/* How a kernel reads a column. */
typedef enum GsColMode
{
	GS_COL_VALUE,				/* its values, as stored (fixed-width types) */
	GS_COL_DICT,				/* text/varchar/bytea group key: int32 codes built on the host */
	GS_COL_NULLS,				/* only its NULLs (count(x) of any type) */
	GS_COL_CHARS,				/* length(x) of a text column: int32 character counts built on the host */
	GS_COL_OCTETS,				/* octet_length(x) of a text column: int32 byte counts */
	GS_COL_TEXT					/* a text column the host folds itself (GS_AGG_HOST); kernels read only its NULLs */
} GsColMode;

/* One input column of a kernel. */
typedef struct GsInputCol
{
	AttrNumber	attno;
	Oid			typid;			/* base type */
	int32		kind;			/* GsKind the kernel reads */
	GsColMode	mode;
	int			side;			/* 0: the streamed table, 1: the join's inner table */
} GsInputCol;

/* What planning compiled; serialised into custom_private (gs_plan.c). */
typedef struct GsCompiled
{
	Oid			relid;			/* the streamed (outer) table */
	Index		scanrelid;
	Oid			inner_relid;	/* a join's inner table, loaded whole; InvalidOid: no join */
	Index		inner_scanrelid;
	int			join_outer_keycol;	/* kernel columns of the hash-join key */
	int			join_inner_keycol;
	int			ncols;
	GsInputCol	cols[GS_MAX_COLS];
	int			nprog;
	GsInstr		prog[GS_MAX_PROG];
	int			nkeys;
	int			keycol[GS_MAX_KEYS];
	Oid			keytype[GS_MAX_KEYS];
	int			naggs;
	GsAgg		aggs[GS_MAX_AGGS];
	Oid			aggouttype[GS_MAX_AGGS];	/* type of the partial value emitted */
	Oid			aggcoll[GS_MAX_AGGS];	/* min/max of text (GS_AGG_HOST): the collation they order by */
	char		dpkind[GS_MAX_AGGS];	/* 'c', 'i', 'f' for DP aggregates, else 0 */
	List	   *dpargs;			/* per aggregate: NIL or list(eps, lo, hi) Consts */
	List	   *aggnames;		/* String per aggregate, for EXPLAIN */
	List	   *keynames;		/* String per key */
	char	   *join_text;		/* "a.x = b.y", the hash-join clause, for EXPLAIN */
	List	   *filter_quals;	/* the quals in the program (planning only; plans keep them in custom_exprs) */
} GsCompiled;

extern void gs_compiled_init(GsCompiled *gc, Oid relid, Index scanrelid);
/* Make it a join: inner table, and the equality the hash join uses; false, with *why, when it cannot. */
extern bool gs_compile_join(GsCompiled *gc, Oid inner_relid, Index inner_scanrelid, Expr *clause,
							const char **why);
/* Add a qual to the filter program (ANDed); false, with *why, when unsupported. */
extern bool gs_compile_qual(GsCompiled *gc, Expr *qual, const char **why);
extern bool gs_compile_key(GsCompiled *gc, Expr *key, Oid eqop, const char **why);
extern bool gs_compile_aggref(GsCompiled *gc, Aggref *agg, const char **why);
/* Column index of attno in gc, added if new; -1 when GS_MAX_COLS is reached. */
extern int	gs_input_col(GsCompiled *gc, AttrNumber attno, Oid typid, GsColMode mode, int side);

extern List *gs_compiled_to_list(const GsCompiled *gc);
extern void gs_compiled_from_list(List *l, GsCompiled *gc);

/* ---- gs_plan.c ---- */
extern void gs_plan_init(void);

/* ---- gs_exec.c ---- */
extern CustomScanMethods gs_preagg_scan_methods;
extern CustomScanMethods gs_filter_scan_methods;
extern void gs_exec_init(void);

#endif							/* GPU_SCAN_H */
