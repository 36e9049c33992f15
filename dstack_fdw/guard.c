/*
 * guard.c: the output boundary's hooks (docs/output-guard.md).
 *
 * The boundary itself is at execution: a sealed scan starts only as part
 * of the plan that dstack_run() validated and planned in the same call
 * (dfdw_check_sealed_scan, called by the foreign scan and by gpu_scan's
 * batch interface).  Whatever planned a plan -- EXPLAIN, PREPARE, a cursor,
 * SPI inside a function, a cached plan, a function folded at plan time --
 * its sealed scans are refused unless dstack_run() is executing that very
 * plan.
 *
 * The hooks here add:
 *   - the early, friendly refusal: the planner hook refuses a query that
 *     mentions a sealed table unless dstack_run() is planning it (plain
 *     EXPLAIN may plan it: it shows a plan and reads no row);
 *   - the nesting of the current top-level statement (executor, utility,
 *     planner), so dstack_run() can insist on being the top-level statement;
 *   - silence while sealed rows flow: NOTICE, WARNING and the like raised
 *     during the validated plan's execution are neither sent nor logged
 *     (errors are replaced by run.c).
 * With dstack_fdw.output_guard off (superuser only, for tests of the scan
 * itself) none of this applies.
 */
#include "postgres.h"

#include "access/parallel.h"
#include "catalog/pg_class.h"
#include "commands/defrem.h"
#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/planner.h"
#include "tcop/utility.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "dstack_fdw.h"

bool		dfdw_guc_output_guard = true;

static planner_hook_type prev_planner_hook = NULL;
static ProcessUtility_hook_type prev_utility_hook = NULL;
static ExecutorRun_hook_type prev_executor_run = NULL;
static ExecutorFinish_hook_type prev_executor_finish = NULL;
static emit_log_hook_type prev_emit_log_hook = NULL;

static int	planner_depth = 0;
static int	utility_depth = 0;
static int	exec_depth = 0;
/* The plan of the top-level statement being executed (exec_depth >= 1). */
static PlannedStmt *top_plan = NULL;
/* Set during a plain EXPLAIN (no ANALYZE): it plans, shows, and runs nothing. */
static bool explaining = false;

int
dfdw_exec_depth(void)
{
	return exec_depth;
}

int
dfdw_utility_depth(void)
{
	return utility_depth;
}

int
dfdw_planner_depth(void)
{
	return planner_depth;
}

/* ---- recognising things ------------------------------------------------- */

/* Is relid a foreign table of this FDW? */
bool
dfdw_is_sealed_rel(Oid relid)
{
	FdwRoutine *r;

	if (get_rel_relkind(relid) != RELKIND_FOREIGN_TABLE)
		return false;
	r = GetFdwRoutineByRelId(relid);
	return r->GetForeignRelSize == dfdwGetForeignRelSize;
}

/* Does a query (or any query below it) mention a sealed table? */
static bool
mentions_sealed_walker(Node *node, void *unused)
{
	if (node == NULL)
		return false;
	if (IsA(node, Query))
	{
		ListCell   *lc;

		foreach(lc, ((Query *) node)->rtable)
		{
			RangeTblEntry *rte = lfirst(lc);

			if (rte->rtekind == RTE_RELATION && dfdw_is_sealed_rel(rte->relid))
				return true;
		}
		return query_tree_walker((Query *) node, mentions_sealed_walker, unused, 0);
	}
	return expression_tree_walker(node, mentions_sealed_walker, unused);
}

/* ---- the boundary at execution ------------------------------------------ */

void
dfdw_check_sealed_scan(EState *estate, Relation rel)
{
	if (!dfdw_guc_output_guard)
		return;
	/*
	 * A parallel worker gets the data key only from its leader's shared
	 * memory, which the leader fills after passing this check itself.
	 */
	if (IsParallelWorker())
		return;
	if (dfdw_run != NULL && dfdw_run->phase == DFDW_RUN_EXECUTING && estate != NULL &&
		estate->es_plannedstmt == dfdw_run->plan)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("sealed table \"%s\" can be read only by the query dstack_run() validated",
					RelationGetRelationName(rel)),
			 errdetail("Output rule R3: sealed rows are read only while dstack_run() executes the plan it "
					   "checked, charged and planned itself; prepared statements, cursors, functions and "
					   "cached plans cannot read them."),
			 errhint("SELECT dstack_run($$SELECT dp_count(patient_id, 0.5) FROM ehr$$);")));
}

bool
dfdw_sealed_execution(void)
{
	return dfdw_run != NULL && dfdw_run->phase == DFDW_RUN_EXECUTING;
}

/* ---- hooks ---------------------------------------------------------------- */

static PlannedStmt *
guard_planner(Query *parse, const char *query_string, int cursorOptions, ParamListInfo boundParams)
{
	PlannedStmt *result;

	if (dfdw_guc_output_guard && !explaining && parse->commandType != CMD_UTILITY &&
		!(dfdw_run != NULL && dfdw_run->phase == DFDW_RUN_PLANNING && planner_depth == 0) &&
		mentions_sealed_walker((Node *) parse, NULL))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("sealed tables can be read only through dstack_run()"),
				 errdetail("Output rule R3: every answer over sealed data is checked, charged to the privacy "
						   "budget and leaves with a signed receipt."),
				 errhint("SELECT dstack_run($$SELECT dp_count(patient_id, 0.5) FROM ehr$$);")));
	planner_depth++;
	PG_TRY();
	{
		if (prev_planner_hook)
			result = prev_planner_hook(parse, query_string, cursorOptions, boundParams);
		else
			result = standard_planner(parse, query_string, cursorOptions, boundParams);
	}
	PG_FINALLY();
	{
		planner_depth--;
	}
	PG_END_TRY();
	return result;
}

/*
 * Called when a sealed table is planned.  The hooks exist only once the
 * library is loaded; loaded on demand, it arrives in the middle of planning
 * the first query that touches a sealed table, after the planner hook was
 * looked up.  So the library must be preloaded (the execution check would
 * refuse the scan anyway; this says why).
 */
void
dfdw_guard_check_planned(void)
{
	if (dfdw_guc_output_guard && planner_depth == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("dstack_fdw must be loaded at server start"),
				 errdetail("The output guard inspects every query before it is planned; a query planned "
						   "before the library was loaded could not be checked."),
				 errhint("Add dstack_fdw to shared_preload_libraries in postgresql.conf and restart the server.")));
}

/* Is stmt an EXPLAIN without ANALYZE? */
static bool
plain_explain(Node *stmt)
{
	ListCell   *lc;

	if (!IsA(stmt, ExplainStmt))
		return false;
	foreach(lc, ((ExplainStmt *) stmt)->options)
	{
		DefElem    *opt = lfirst(lc);

		if (strcmp(opt->defname, "analyze") == 0 && defGetBoolean(opt))
			return false;
	}
	return true;
}

static void
guard_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
			  ProcessUtilityContext context, ParamListInfo params, QueryEnvironment *queryEnv,
			  DestReceiver *dest, QueryCompletion *qc)
{
	bool		saved_explaining = explaining;

	if (plain_explain(pstmt->utilityStmt))
		explaining = true;
	utility_depth++;
	PG_TRY();
	{
		if (prev_utility_hook)
			prev_utility_hook(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	}
	PG_FINALLY();
	{
		utility_depth--;
		explaining = saved_explaining;
	}
	PG_END_TRY();
}

/* Is target (a node pointer) somewhere in an expression tree? */
static bool
contains_node_walker(Node *node, Node *target)
{
	if (node == NULL)
		return false;
	if (node == target)
		return true;
	return expression_tree_walker(node, contains_node_walker, target);
}

/* Is target in the expressions of plan p or of any plan below it? */
static bool
plan_contains(Plan *p, Node *target)
{
	ListCell   *lc;

	if (p == NULL)
		return false;
	if (contains_node_walker((Node *) p->targetlist, target) || contains_node_walker((Node *) p->qual, target))
		return true;
	switch (nodeTag(p))
	{
		case T_Result:
			if (contains_node_walker(((Result *) p)->resconstantqual, target))
				return true;
			break;
		case T_FunctionScan:
			if (contains_node_walker((Node *) ((FunctionScan *) p)->functions, target))
				return true;
			break;
		case T_SubqueryScan:
			if (plan_contains(((SubqueryScan *) p)->subplan, target))
				return true;
			break;
		case T_Append:
			foreach(lc, ((Append *) p)->appendplans)
				if (plan_contains(lfirst(lc), target))
					return true;
			break;
		default:
			break;
	}
	return plan_contains(p->lefttree, target) || plan_contains(p->righttree, target);
}

/*
 * Is fn_expr (a function call's expression node) part of the plan of the
 * top-level statement being executed, a SELECT?  A call made by PL/pgSQL,
 * a SQL function that was not inlined, a trigger or a DO block evaluates an
 * expression of its own, which is not in that plan.
 */
bool
dfdw_called_by_top_level_select(Node *fn_expr)
{
	ListCell   *lc;

	if (top_plan == NULL || fn_expr == NULL || exec_depth != 1 || top_plan->commandType != CMD_SELECT ||
		top_plan->hasModifyingCTE)
		return false;
	if (plan_contains(top_plan->planTree, fn_expr))
		return true;
	foreach(lc, top_plan->subplans)
		if (plan_contains(lfirst(lc), fn_expr))
			return true;
	return false;
}

static void
guard_executor_run(QueryDesc *queryDesc, ScanDirection direction, uint64 count, bool execute_once)
{
	PlannedStmt *saved_top = top_plan;

	if (exec_depth == 0)
		top_plan = queryDesc->plannedstmt;
	exec_depth++;
	PG_TRY();
	{
		if (prev_executor_run)
			prev_executor_run(queryDesc, direction, count, execute_once);
		else
			standard_ExecutorRun(queryDesc, direction, count, execute_once);
	}
	PG_FINALLY();
	{
		exec_depth--;
		top_plan = saved_top;
	}
	PG_END_TRY();
}

static void
guard_executor_finish(QueryDesc *queryDesc)
{
	exec_depth++;
	PG_TRY();
	{
		if (prev_executor_finish)
			prev_executor_finish(queryDesc);
		else
			standard_ExecutorFinish(queryDesc);
	}
	PG_FINALLY();
	{
		exec_depth--;
	}
	PG_END_TRY();
}

/*
 * While the validated plan runs, a message below ERROR (a NOTICE from
 * anywhere, a WARNING) could carry a value: neither the client nor the
 * server log gets it.  Errors are caught and replaced by run.c.
 */
static void
guard_emit_log(ErrorData *edata)
{
	if (dfdw_sealed_execution() && edata->elevel < ERROR)
	{
		edata->output_to_client = false;
		edata->output_to_server = false;
	}
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

/* Install the hooks, chained to whatever was installed before us. */
void
dfdw_guard_init(void)
{
	prev_planner_hook = planner_hook;
	planner_hook = guard_planner;
	prev_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = guard_utility;
	prev_executor_run = ExecutorRun_hook;
	ExecutorRun_hook = guard_executor_run;
	prev_executor_finish = ExecutorFinish_hook;
	ExecutorFinish_hook = guard_executor_finish;
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = guard_emit_log;
}
