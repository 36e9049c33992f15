/*
 * gs_plan.c: gpu_scan's paths and plans.
 *
 * GpuPreAgg (create_upper_paths_hook, UPPERREL_GROUP_AGG): when the query
 * groups and aggregates one sealed table and every qual, key and aggregate
 * compiles (gs_compile.c), offer Finalize Agg <- GpuPreAgg.  The custom
 * node's target list holds the group keys and the *partial* Aggrefs
 * (AGGSPLIT_INITIAL_SERIAL), exactly what a Partial Aggregate would emit,
 * so PostgreSQL's own combine, deserialise and final functions finish the
 * job (and DP noise is drawn once, on the CPU, in the final function).
 *
 * GpuScan (set_rel_pathlist_hook): a sealed table with quals the kernels
 * can evaluate gets a scan that filters a row group at a time; the quals
 * the kernels cannot evaluate stay on the node as ordinary quals.
 *
 * Both hooks chain to the previous ones.  Without a GPU the paths are
 * offered only when gpu_scan.host_path is on.  gpu_scan.debug_planner says
 * what was offered, or why not.
 */
#include "postgres.h"

#include "catalog/pg_class.h"
#include "foreign/fdwapi.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/paths.h"
#include "optimizer/planner.h"
#include "optimizer/prep.h"
#include "optimizer/restrictinfo.h"
#include "optimizer/tlist.h"
#include "parser/parsetree.h"
#include "rewrite/rewriteManip.h"
#include "utils/lsyscache.h"
#include "utils/ruleutils.h"
#include "utils/selfuncs.h"

#include "dstack_fdw.h"
#include "gpu_scan.h"

static create_upper_paths_hook_type prev_upper_paths_hook = NULL;
static set_rel_pathlist_hook_type prev_rel_pathlist_hook = NULL;

/* Per-row kernel cost, in units of cpu_operator_cost per instruction. */
#define GS_GPU_ROW_FACTOR	0.01
#define GS_HOST_ROW_FACTOR	0.25

static Plan *plan_preagg(PlannerInfo *root, RelOptInfo *rel, CustomPath *best_path, List *tlist,
						 List *clauses, List *custom_plans);
static Plan *plan_filter(PlannerInfo *root, RelOptInfo *rel, CustomPath *best_path, List *tlist,
						 List *clauses, List *custom_plans);

static const CustomPathMethods preagg_path_methods = {
	.CustomName = "GpuPreAgg",
	.PlanCustomPath = plan_preagg,
};

static const CustomPathMethods filter_path_methods = {
	.CustomName = "GpuScan",
	.PlanCustomPath = plan_filter,
};

/* The sealed table a base rel scans, or InvalidOid. */
static Oid
sealed_relid(PlannerInfo *root, RelOptInfo *rel)
{
	RangeTblEntry *rte;

	if (rel->reloptkind != RELOPT_BASEREL || rel->rtekind != RTE_RELATION)
		return InvalidOid;
	rte = planner_rt_fetch(rel->relid, root);
	if (rte->relkind != RELKIND_FOREIGN_TABLE || !dfdw_is_sealed_rel(rte->relid))
		return InvalidOid;
	return rte->relid;
}

/* Plan for the GPU, or for the host build when allowed?  false: neither. */
static bool
target_device(const char *node, const char *table, bool *gpu)
{
	*gpu = gs_device_available();
	if (*gpu || gs_guc_host_path)
		return true;
	gs_debug("%s over %s not offered: no usable GPU (%s), and gpu_scan.host_path is off",
			 node, table, gs_device_unavailable_reason());
	return false;
}

/* Kernel cost per row for a program of n instructions. */
static Cost
kernel_row_cost(bool gpu, int n)
{
	return cpu_operator_cost * (gpu ? GS_GPU_ROW_FACTOR : GS_HOST_ROW_FACTOR) * Max(n, 1);
}

/* ---- GpuPreAgg ------------------------------------------------------------- */

/* Aggrefs of the grouping target and HAVING, without duplicates. */
static List *
collect_aggrefs(PathTarget *target, Node *having)
{
	List	   *vars = pull_var_clause((Node *) target->exprs,
									   PVC_INCLUDE_AGGREGATES | PVC_RECURSE_WINDOWFUNCS |
									   PVC_RECURSE_PLACEHOLDERS);
	List	   *aggs = NIL;
	ListCell   *lc;

	vars = list_concat(vars, pull_var_clause(having, PVC_INCLUDE_AGGREGATES | PVC_RECURSE_WINDOWFUNCS |
											 PVC_RECURSE_PLACEHOLDERS));
	foreach(lc, vars)
		if (IsA(lfirst(lc), Aggref))
			aggs = list_append_unique(aggs, lfirst(lc));
	return aggs;
}

/*
 * The input of a GpuPreAgg: one sealed table, or an inner join of two whose
 * clauses include an integer equality to hash on.  Fills gc's tables and
 * join (the smaller table is the inner one, loaded whole) and *quals with
 * the conditions the kernel must evaluate; false, with *why, when it cannot.
 */
static bool
preagg_input(PlannerInfo *root, RelOptInfo *input_rel, GsCompiled *gc, char **table, List **quals,
			 const char **why)
{
	Oid			relid = sealed_relid(root, input_rel);
	int			r1,
				r2;
	RelOptInfo *outer,
			   *inner;
	List	   *clauses;
	ListCell   *lc;
	bool		have_hash = false;

	gs_compiled_init(gc, InvalidOid, 0);	/* the caller reads gc->relid on failure too */
	if (OidIsValid(relid))
	{
		gs_compiled_init(gc, relid, input_rel->relid);
		*table = get_rel_name(relid);
		foreach(lc, input_rel->baserestrictinfo)
			*quals = lappend(*quals, ((RestrictInfo *) lfirst(lc))->clause);
		return true;
	}
	*table = "a join";
	if (input_rel->reloptkind != RELOPT_JOINREL || bms_num_members(input_rel->relids) != 2)
	{
		*why = "the input is not one sealed table or a join of two";
		return false;
	}
	r1 = bms_next_member(input_rel->relids, -1);
	r2 = bms_next_member(input_rel->relids, r1);
	outer = find_base_rel(root, r1);
	inner = find_base_rel(root, r2);
	if (!OidIsValid(sealed_relid(root, outer)) || !OidIsValid(sealed_relid(root, inner)))
	{
		*why = "a joined relation is not a sealed table";
		return false;
	}
	if (root->join_info_list != NIL)
	{
		*why = "the query has an outer, semi or anti join (GpuPreAgg joins are inner joins)";
		return false;
	}
	if (inner->tuples > outer->tuples)
	{
		RelOptInfo *t = outer;

		outer = inner;
		inner = t;
	}
	*table = psprintf("%s join %s", get_rel_name(sealed_relid(root, outer)), get_rel_name(sealed_relid(root, inner)));
	gs_compiled_init(gc, sealed_relid(root, outer), outer->relid);
	gc->inner_relid = sealed_relid(root, inner);
	gc->inner_scanrelid = inner->relid;
	if (inner->tuples > gs_guc_join_max_inner_rows)
	{
		*why = psprintf("the smaller table has %.0f rows, more than gpu_scan.join_max_inner_rows (%d)",
						inner->tuples, gs_guc_join_max_inner_rows);
		return false;
	}
	/* the join clauses: implied by equivalence classes, and the others */
	clauses = generate_join_implied_equalities(root, input_rel->relids, outer->relids, inner);
	foreach(lc, outer->joininfo)
	{
		RestrictInfo *ri = lfirst(lc);

		if (bms_is_subset(ri->required_relids, input_rel->relids))
			clauses = list_append_unique_ptr(clauses, ri);
	}
	foreach(lc, clauses)
	{
		Expr	   *c = ((RestrictInfo *) lfirst(lc))->clause;
		const char *jwhy = NULL;

		if (!have_hash && gs_compile_join(gc, gc->inner_relid, gc->inner_scanrelid, c, &jwhy))
			have_hash = true;
		else
			*quals = lappend(*quals, c);
	}
	if (!have_hash)
	{
		*why = "no join clause is an integer equality between the two tables";
		return false;
	}
	foreach(lc, outer->baserestrictinfo)
		*quals = lappend(*quals, ((RestrictInfo *) lfirst(lc))->clause);
	foreach(lc, inner->baserestrictinfo)
		*quals = lappend(*quals, ((RestrictInfo *) lfirst(lc))->clause);
	return true;
}

static void
offer_preagg(PlannerInfo *root, RelOptInfo *input_rel, RelOptInfo *output_rel, GroupPathExtraData *extra)
{
	Query	   *parse = root->parse;
	char	   *table = NULL;
	GsCompiled	gc;
	const char *why = NULL;
	PathTarget *target = root->upper_targets[UPPERREL_GROUP_AGG];
	PathTarget *partial;
	List	   *quals = NIL;
	List	   *aggs;
	List	   *group_exprs = NIL;
	ListCell   *lc;
	CustomPath *cp;
	Cost		read_startup = 0,
				read_run = 0;
	AggClauseCosts final_costs;
	double		ngroups;
	bool		gpu;
	int			x = -1;

	if (!preagg_input(root, input_rel, &gc, &table, &quals, &why))
	{
		if (input_rel->reloptkind == RELOPT_JOINREL || OidIsValid(gc.relid))
			gs_debug("GpuPreAgg over %s not offered: %s", table ? table : "a join", why);
		return;
	}
	if (parse->groupingSets != NIL || !parse->hasAggs)
	{
		gs_debug("GpuPreAgg over %s not offered: %s", table,
				 parse->groupingSets ? "GROUPING SETS" : "the query has no aggregates");
		return;
	}
	if (parse->groupClause != NIL && !grouping_is_hashable(parse->groupClause))
	{
		gs_debug("GpuPreAgg over %s not offered: a GROUP BY key cannot be hashed", table);
		return;
	}
	if (!target_device("GpuPreAgg", table, &gpu))
		return;
	foreach(lc, quals)
		if (!gs_compile_qual(&gc, lfirst(lc), &why))
		{
			gs_debug("GpuPreAgg over %s not offered: a condition has no kernel: %s", table, why);
			return;
		}
	foreach(lc, parse->groupClause)
	{
		SortGroupClause *sgc = lfirst(lc);
		Expr	   *e = (Expr *) get_sortgroupclause_expr(sgc, parse->targetList);

		if (!gs_compile_key(&gc, e, sgc->eqop, &why))
		{
			gs_debug("GpuPreAgg over %s not offered: %s", table, why);
			return;
		}
		group_exprs = lappend(group_exprs, e);
	}
	aggs = collect_aggrefs(target, extra->havingQual);
	foreach(lc, aggs)
	{
		why = NULL;
		if (!gs_compile_aggref(&gc, lfirst(lc), &why))
		{
			gs_debug("GpuPreAgg over %s not offered: %s", table, why);
			return;
		}
	}

	/* the partial target: keys, then the partial states, in the order gs_exec.c emits them */
	partial = create_empty_pathtarget();
	foreach(lc, parse->groupClause)
		add_column_to_pathtarget(partial, list_nth(group_exprs, foreach_current_index(lc)),
								 ((SortGroupClause *) lfirst(lc))->tleSortGroupRef);
	foreach(lc, aggs)
	{
		Aggref	   *pa = copyObject((Aggref *) lfirst(lc));

		mark_partial_aggref(pa, AGGSPLIT_INITIAL_SERIAL);
		add_column_to_pathtarget(partial, (Expr *) pa, 0);
	}
	partial = set_pathtarget_cost_width(root, partial);

	ngroups = parse->groupClause == NIL ? 1 :
		estimate_num_groups(root, group_exprs, input_rel->rows, NULL, NULL);
	while ((x = bms_next_member(input_rel->relids, x)) >= 0)
	{
		Cost		s,
					r;

		dfdw_read_cost(root, find_base_rel(root, x), &s, &r);
		read_startup += s;
		read_run += r;
	}

	/*
	 * Under dstack_run() the group limit must be out of reach: its error
	 * would say whether the rows hold more groups than gpu_scan.max_groups.
	 * GpuPreAgg is offered only when the tables cannot hold that many: the
	 * larger table's rows, times the rows a unit keeps when tables are
	 * joined (a join on the unit matches each row at most that often).
	 */
	if (dfdw_run != NULL && parse->groupClause != NIL)
	{
		double		most = 0;
		int			r = -1;

		while ((r = bms_next_member(input_rel->relids, r)) >= 0)
			most = Max(most, find_base_rel(root, r)->tuples);
		if (bms_num_members(input_rel->relids) > 1)
			most *= Max(dfdw_run->rows_per_unit, 1);
		if (most > gs_guc_max_groups)
		{
			gs_debug("GpuPreAgg over %s not offered: under dstack_run() it could reach gpu_scan.max_groups "
					 "(%d; up to %.0f groups)", table, gs_guc_max_groups, most);
			return;
		}
	}
	cp = makeNode(CustomPath);
	cp->path.pathtype = T_CustomScan;
	cp->path.parent = input_rel;
	cp->path.pathtarget = partial;
	cp->path.rows = ngroups;
	cp->path.startup_cost = read_startup + read_run +
		kernel_row_cost(gpu, gc.nprog + gc.nkeys + gc.naggs) * Max(input_rel->rows, 1) +
		(OidIsValid(gc.inner_relid) ? cpu_operator_cost * find_base_rel(root, gc.inner_scanrelid)->tuples : 0);
	cp->path.total_cost = cp->path.startup_cost + cpu_tuple_cost * ngroups;
	cp->methods = &preagg_path_methods;
	cp->custom_private = list_make3(gs_compiled_to_list(&gc), makeInteger((int) Min(ngroups, INT_MAX)),
									gc.filter_quals);

	MemSet(&final_costs, 0, sizeof(final_costs));
	get_agg_clause_costs(root, AGGSPLIT_FINAL_DESERIAL, &final_costs);
	add_path(output_rel, (Path *)
			 create_agg_path(root, output_rel, &cp->path, target,
							 parse->groupClause ? AGG_HASHED : AGG_PLAIN, AGGSPLIT_FINAL_DESERIAL,
							 parse->groupClause, (List *) extra->havingQual, &final_costs, ngroups));
	gs_debug("GpuPreAgg over %s offered on the %s: %d filter instructions, %d keys, %d partial aggregates, "
			 "%.0f groups estimated, cost %.2f (reading and decrypting %.2f of it)",
			 table, gpu ? "GPU" : "CPU (host build)", gc.nprog, gc.nkeys, gc.naggs, ngroups,
			 cp->path.total_cost, read_startup + read_run);
}

static void
gs_upper_paths(PlannerInfo *root, UpperRelationKind stage, RelOptInfo *input_rel,
			   RelOptInfo *output_rel, void *extra)
{
	if (prev_upper_paths_hook)
		prev_upper_paths_hook(root, stage, input_rel, output_rel, extra);
	if (stage != UPPERREL_GROUP_AGG || !gs_guc_enabled)
		return;
	if (!gs_guc_enable_preagg)
	{
		if (OidIsValid(sealed_relid(root, input_rel)))
			gs_debug("GpuPreAgg not offered: gpu_scan.enable_preagg is off");
		return;
	}
	offer_preagg(root, input_rel, output_rel, (GroupPathExtraData *) extra);
}

/* CustomScan with no scan relation: it emits groups, described by custom_scan_tlist. */
static Plan *
plan_preagg(PlannerInfo *root, RelOptInfo *rel, CustomPath *best_path, List *tlist,
			List *clauses, List *custom_plans)
{
	CustomScan *cs = makeNode(CustomScan);
	List	   *quals = lthird(best_path->custom_private);
	List	   *scan_tlist = copyObject(tlist);
	ListCell   *lc;

	/*
	 * The kernel's conditions go into custom_exprs, for EXPLAIN; setrefs
	 * resolves their Vars through custom_scan_tlist, so each Var they use is
	 * appended there as a junk column (emitted as NULL, never read).
	 */
	foreach(lc, pull_var_clause((Node *) quals, 0))
		if (!tlist_member(lfirst(lc), scan_tlist))
			scan_tlist = lappend(scan_tlist, makeTargetEntry(copyObject(lfirst(lc)), list_length(scan_tlist) + 1,
															 NULL, true));
	cs->scan.plan.targetlist = tlist;
	cs->scan.plan.qual = NIL;	/* every condition is in the kernel's program */
	cs->scan.scanrelid = 0;
	cs->custom_scan_tlist = scan_tlist;
	cs->custom_exprs = copyObject(quals);
	cs->custom_relids = bms_copy(rel->relids);
	cs->custom_private = list_make2(linitial(best_path->custom_private), lsecond(best_path->custom_private));
	cs->methods = &gs_preagg_scan_methods;
	return &cs->scan.plan;
}

/* ---- GpuScan --------------------------------------------------------------- */

static void
offer_filter(PlannerInfo *root, RelOptInfo *rel, Oid relid)
{
	char	   *table = get_rel_name(relid);
	GsCompiled	gc;
	const char *why = NULL;
	ListCell   *lc;
	int			compiled = 0;
	Cost		read_startup,
				read_run;
	CustomPath *cp;
	bool		gpu;
	Selectivity sel = 1.0;
	QualCost	rest;

	if (rel->baserestrictinfo == NIL)
	{
		gs_debug("GpuScan over %s not offered: no WHERE condition to filter by", table);
		return;
	}
	if (!target_device("GpuScan", table, &gpu))
		return;
	gs_compiled_init(&gc, relid, rel->relid);
	rest.startup = rest.per_tuple = 0;
	foreach(lc, rel->baserestrictinfo)
	{
		RestrictInfo *ri = lfirst(lc);

		if (gs_compile_qual(&gc, ri->clause, &why))
		{
			compiled++;
			sel *= clauselist_selectivity(root, list_make1(ri), rel->relid, JOIN_INNER, NULL);
		}
		else
		{
			QualCost	qc;

			gs_debug("GpuScan over %s: condition stays on the CPU: %s", table, why);
			cost_qual_eval_node(&qc, (Node *) ri->clause, root);
			rest.startup += qc.startup;
			rest.per_tuple += qc.per_tuple;
		}
	}
	if (compiled == 0)
	{
		gs_debug("GpuScan over %s not offered: no condition the kernels can evaluate", table);
		return;
	}
	cp = makeNode(CustomPath);
	cp->path.pathtype = T_CustomScan;
	cp->path.parent = rel;
	cp->path.pathtarget = rel->reltarget;
	cp->path.rows = rel->rows;
	dfdw_read_cost(root, rel, &read_startup, &read_run);
	cp->path.startup_cost = read_startup + rest.startup;
	cp->path.total_cost = cp->path.startup_cost + read_run + kernel_row_cost(gpu, gc.nprog) * rel->tuples +
		(cpu_tuple_cost + rest.per_tuple) * rel->tuples * sel;
	cp->methods = &filter_path_methods;
	cp->custom_private = list_make2(gs_compiled_to_list(&gc), gc.filter_quals);
	add_path(rel, &cp->path);
	gs_debug("GpuScan over %s offered on the %s: %d of %d conditions in the kernel, cost %.2f "
			 "(reading and decrypting %.2f of it)", table, gpu ? "GPU" : "CPU (host build)", compiled,
			 list_length(rel->baserestrictinfo), cp->path.total_cost, read_startup + read_run);
}

static void
gs_rel_pathlist(PlannerInfo *root, RelOptInfo *rel, Index rti, RangeTblEntry *rte)
{
	Oid			relid;

	if (prev_rel_pathlist_hook)
		prev_rel_pathlist_hook(root, rel, rti, rte);
	if (!gs_guc_enabled || !OidIsValid(relid = sealed_relid(root, rel)))
		return;
	if (!gs_guc_enable_scan)
	{
		gs_debug("GpuScan over %s not offered: gpu_scan.enable_scan is off", get_rel_name(relid));
		return;
	}
	offer_filter(root, rel, relid);
}

/*
 * The scan's plan: the conditions in the kernel program leave the qual list,
 * the others stay (by equality with the compiled ones); the columns to
 * decrypt are those of the target list and every condition.
 */
static Plan *
plan_filter(PlannerInfo *root, RelOptInfo *rel, CustomPath *best_path, List *tlist,
			List *clauses, List *custom_plans)
{
	CustomScan *cs = makeNode(CustomScan);
	GsCompiled	gc;
	List	   *quals = NIL;
	List	   *attnos = NIL;
	Bitmapset  *attrs = NULL;
	ListCell   *lc;
	int			x = -1;

	gs_compiled_from_list(linitial(best_path->custom_private), &gc);
	gc.filter_quals = lsecond(best_path->custom_private);
	foreach(lc, extract_actual_clauses(clauses, false))
		if (!list_member(gc.filter_quals, lfirst(lc)))
			quals = lappend(quals, lfirst(lc));
	pull_varattnos((Node *) tlist, rel->relid, &attrs);
	pull_varattnos((Node *) quals, rel->relid, &attrs);
	while ((x = bms_next_member(attrs, x)) >= 0)
	{
		AttrNumber	a = x + FirstLowInvalidHeapAttributeNumber;

		if (a > 0)
			attnos = lappend_int(attnos, a);
	}
	cs->scan.plan.targetlist = tlist;
	cs->scan.plan.qual = quals;
	cs->scan.scanrelid = rel->relid;
	cs->custom_relids = bms_copy(rel->relids);
	cs->custom_exprs = copyObject(gc.filter_quals);	/* for EXPLAIN; setrefs keeps their Vars right */
	cs->custom_private = list_make2(linitial(best_path->custom_private), attnos);
	cs->methods = &gs_filter_scan_methods;
	return &cs->scan.plan;
}

void
gs_plan_init(void)
{
	prev_upper_paths_hook = create_upper_paths_hook;
	create_upper_paths_hook = gs_upper_paths;
	prev_rel_pathlist_hook = set_rel_pathlist_hook;
	set_rel_pathlist_hook = gs_rel_pathlist;
}
