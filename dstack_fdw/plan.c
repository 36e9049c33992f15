/*
 * plan.c: planning a scan of a sealed dataset.
 *
 * Sizes come from the signed manifest (row count, bytes per column), never
 * from ANALYZE (see dstack_fdw.allow_analyze).  The plan records which columns the
 * query needs, from the target list and the quals, so that the scan decrypts
 * only those chunks.  Partial paths let row groups go to parallel workers.
 */
#include "postgres.h"

#include "access/sysattr.h"
#include "access/table.h"
#include "commands/explain.h"
#include "foreign/fdwapi.h"
#include "nodes/makefuncs.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"
#include "parser/parsetree.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "dstack_fdw.h"
#include "hex.h"
#include "pg_common.h"

/* What planning learned; kept in baserel->fdw_private. */
typedef struct DfdwPlanState
{
	char	   *path;
	char	   *owner;
	uint64		rows;
	uint32		nrowgroups;
	uint64		bytes_per_col_total;	/* sum over chunks of all columns */
	int			ncols;
	Bitmapset  *attrs;			/* needed attnos, offset by FirstLowInvalidHeapAttributeNumber */
} DfdwPlanState;

/* Open the dataset (signature checked) just long enough to read its manifest. */
static void
read_manifest_facts(DfdwPlanState *ps)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "dstack_fdw plan",
											  ALLOCSET_SMALL_SIZES);
	DsealReader *r = dfdw_open_dataset(ps->path, cxt);
	const DsealManifest *m = dseal_reader_manifest(r);

	ps->rows = m->row_count;
	ps->nrowgroups = m->nrowgroups;
	ps->ncols = m->ncols;
	ps->bytes_per_col_total = 0;
	for (uint32 g = 0; g < m->nrowgroups; g++)
		for (int c = 0; c < m->ncols; c++)
			ps->bytes_per_col_total += m->rowgroups[g].chunks[c].length;
	MemoryContextDelete(cxt);	/* closes the reader */
}

void
dfdwGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	DfdwPlanState *ps = palloc0(sizeof(DfdwPlanState));
	DfdwTableOptions topts;
	ListCell   *lc;

	dfdw_guard_check_planned();
	dfdw_table_options(foreigntableid, &topts);
	ps->path = topts.path;
	{
		char		hex[2 * DC_ADDR_LEN + 1];

		/* shown in EXPLAIN in one canonical (lower-case) form */
		dhex_encode(topts.owner_id, DC_ADDR_LEN, hex);
		ps->owner = psprintf("0x%s", hex);
	}
	read_manifest_facts(ps);

	/* columns needed by the target list and by the quals */
	pull_varattnos((Node *) baserel->reltarget->exprs, baserel->relid, &ps->attrs);
	foreach(lc, baserel->baserestrictinfo)
	{
		RestrictInfo *ri = lfirst(lc);

		pull_varattnos((Node *) ri->clause, baserel->relid, &ps->attrs);
	}

	baserel->tuples = (double) ps->rows;
	baserel->rows = clamp_row_est(ps->rows *
								  clauselist_selectivity(root, baserel->baserestrictinfo, 0,
														 JOIN_INNER, NULL));
	baserel->fdw_private = ps;
}

/* Attribute numbers needed, or all user columns when a whole-row var appears. */
static List *
needed_attnos(Relation rel, Bitmapset *attrs)
{
	List	   *out = NIL;
	int			natts = RelationGetDescr(rel)->natts;
	bool		all = bms_is_member(0 - FirstLowInvalidHeapAttributeNumber, attrs);

	for (int a = 1; a <= natts; a++)
	{
		if (TupleDescAttr(RelationGetDescr(rel), a - 1)->attisdropped)
			continue;
		if (all || bms_is_member(a - FirstLowInvalidHeapAttributeNumber, attrs))
			out = lappend_int(out, a);
	}
	return out;
}

/*
 * Cost: decrypting and decoding is roughly linear in the bytes of the needed
 * chunks, which the manifest knows; a row costs cpu_tuple_cost as usual.
 */
static void
estimate_costs(PlannerInfo *root, RelOptInfo *baserel, DfdwPlanState *ps, int nneeded,
			   Cost *startup, Cost *total)
{
	double		frac = ps->ncols > 0 ? (double) Max(nneeded, 1) / ps->ncols : 1.0;
	double		pages = (ps->bytes_per_col_total * frac) / BLCKSZ;
	Cost		run;

	*startup = baserel->baserestrictcost.startup + 10.0;	/* chain check, key, manifest */
	run = seq_page_cost * pages + 2.0 * cpu_operator_cost * pages * (BLCKSZ / 64);
	run += (cpu_tuple_cost + baserel->baserestrictcost.per_tuple) * ps->rows;
	*total = *startup + run;
}

/*
 * What reading and decrypting the needed chunks costs, without handing
 * rows up: gpu_scan's custom scans pay this too, then their own per-row
 * kernel cost.  The foreign path may be gone from the pathlist by then.
 */
void
dfdw_read_cost(PlannerInfo *root, RelOptInfo *baserel, Cost *startup, Cost *run)
{
	DfdwPlanState *ps = baserel->fdw_private;
	Cost		total;

	estimate_costs(root, baserel, ps, bms_num_members(ps->attrs), startup, &total);
	*run = total - *startup - (cpu_tuple_cost + baserel->baserestrictcost.per_tuple) * ps->rows;
}

void
dfdwGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	DfdwPlanState *ps = baserel->fdw_private;
	Cost		startup,
				total;
	int			nneeded = bms_num_members(ps->attrs);

	estimate_costs(root, baserel, ps, nneeded, &startup, &total);
	add_path(baserel, (Path *) create_foreignscan_path(root, baserel, NULL, baserel->rows,
													   startup, total, NIL, baserel->lateral_relids,
													   NULL, NIL));

	/*
	 * Row groups are the unit of parallelism; not inside a dstack_run() that
	 * bounds contributions, where one scan must see every row of a unit.
	 */
	if (baserel->consider_parallel && ps->nrowgroups > 1 && max_parallel_workers_per_gather > 0 &&
		(dfdw_run == NULL || dfdw_run->privacy_unit == NULL))
	{
		int			workers = Min((int) ps->nrowgroups - 1, max_parallel_workers_per_gather);
		ForeignPath *pp;

		if (baserel->rel_parallel_workers > 0)
			workers = Min(workers, baserel->rel_parallel_workers);
		pp = create_foreignscan_path(root, baserel, NULL, baserel->rows / (workers + 1),
									 startup, startup + (total - startup) / (workers + 1),
									 NIL, baserel->lateral_relids, NULL, NIL);
		pp->path.parallel_aware = true;
		pp->path.parallel_safe = true;
		pp->path.parallel_workers = workers;
		add_partial_path(baserel, (Path *) pp);
	}
}

bool
dfdwIsForeignScanParallelSafe(PlannerInfo *root, RelOptInfo *rel, RangeTblEntry *rte)
{
	return true;
}

/*
 * fdw_private of the plan: (path, owner, needed attnos, row groups).  All
 * quals are checked locally (nothing can be pushed into a sealed file).
 */
ForeignScan *
dfdwGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid,
				   ForeignPath *best_path, List *tlist, List *scan_clauses, Plan *outer_plan)
{
	DfdwPlanState *ps = baserel->fdw_private;
	RangeTblEntry *rte = planner_rt_fetch(baserel->relid, root);
	Relation	rel = table_open(rte->relid, NoLock);
	List	   *attnos = needed_attnos(rel, ps->attrs);
	List	   *priv;

	table_close(rel, NoLock);
	scan_clauses = extract_actual_clauses(scan_clauses, false);
	priv = list_make4(makeString(ps->path), makeString(ps->owner), attnos,
					  makeInteger((int) ps->nrowgroups));
	return make_foreignscan(tlist, scan_clauses, baserel->relid, NIL, priv, NIL, NIL, outer_plan);
}

/* The dataset, its owner, row groups and the columns the scan decrypts. */
void
dfdwExplainForeignScan(ForeignScanState *node, ExplainState *es)
{
	ForeignScan *plan = (ForeignScan *) node->ss.ps.plan;
	char	   *path = strVal(linitial(plan->fdw_private));
	char	   *owner = strVal(lsecond(plan->fdw_private));
	List	   *attnos = lthird(plan->fdw_private);
	int			nrg = intVal(lfourth(plan->fdw_private));
	TupleDesc	desc = RelationGetDescr(node->ss.ss_currentRelation);
	List	   *names = NIL;
	ListCell   *lc;

	if (dfdw_guc_explain_stable)
	{
		const char *slash = strrchr(path, '/');

		path = slash ? (char *) slash + 1 : path;
	}
	ExplainPropertyText("Sealed Dataset", path, es);
	ExplainPropertyText("Owner", owner, es);
	ExplainPropertyInteger("Row Groups", NULL, nrg, es);
	foreach(lc, attnos)
		names = lappend(names, NameStr(TupleDescAttr(desc, lfirst_int(lc) - 1)->attname));
	if (names == NIL)
		names = list_make1("(none: row count only)");
	ExplainPropertyList("Columns Decrypted", names, es);
}
