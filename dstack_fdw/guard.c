/*
 * guard.c: the output guard (DESIGN.md section 5).
 *
 * A query that reads a sealed table may return only differentially private
 * aggregates and their group keys, and only through dstack_run(), which
 * charges the privacy budget and signs a receipt.  The guard runs in the
 * planner hook, on the query after rewriting (so a view cannot hide a sealed
 * table), before anything executes, and refuses with an error that names the
 * rule.  A utility hook marks the statements whose rows would go somewhere
 * else than a DP answer (COPY, CREATE TABLE AS, SELECT INTO, materialized
 * views, EXPLAIN ANALYZE, which prints true row counts).
 *
 * Rules, in the order they are checked:
 *   R1 sealed tables appear only in the FROM clause of the outermost query
 *      (no subquery, CTE, view or sub-select over them)
 *   R2 the statement is a plain SELECT, not part of COPY / CREATE TABLE AS /
 *      SELECT INTO / materialized view / EXPLAIN ANALYZE, not INSERT/UPDATE/
 *      DELETE/MERGE ... SELECT, without FOR UPDATE, set operations, window
 *      functions or set-returning functions
 *   R3 the answer leaves through dstack_run()
 *   R4 every output column is a DP aggregate or a GROUP BY key; at least one
 *      DP aggregate; no other aggregate anywhere
 *   R5 expressions over sealed columns use only built-in leakproof functions
 *      and operators (no user-defined or volatile function, no cast or
 *      operator that can raise an error revealing a value)
 *   R6 a DP aggregate's epsilon is a positive constant; the sum of the
 *      query's epsilons is what the ledger charges
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "commands/defrem.h"
#include "catalog/pg_proc.h"
#include "commands/extension.h"
#include "foreign/fdwapi.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "optimizer/planner.h"
#include "parser/parsetree.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "foreign/foreign.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/syscache.h"

#include "dstack_fdw.h"

bool		dfdw_guc_output_guard = true;
DfdwRun    *dfdw_run = NULL;

static planner_hook_type prev_planner_hook = NULL;
static ProcessUtility_hook_type prev_utility_hook = NULL;

/* Set while a utility statement that would divert rows is running (R2). */
static const char *diverting_statement = NULL;
/* Set during a plain EXPLAIN: it shows a plan, never a value, so no rule applies. */
static bool explaining = false;
/* Depth of planner calls that went through the guard (see dfdw_guard_check_planned). */
static int	guarded_planning = 0;

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

/* Is fn one of this extension's DP aggregates (dp_count, dp_sum, dp_avg, ...)? */
bool
dfdw_is_dp_aggregate(Oid fn)
{
	return dfdw_dp_is_dp_aggregate(fn);
}

/* Does a range table entry list (and its subqueries) mention a sealed table? */
typedef struct SealedScan
{
	bool		nested;			/* found below the top level */
	List	   *top_relids;		/* sealed relids in the top-level range table */
} SealedScan;

static bool find_sealed_walker(Node *node, SealedScan *ss);

static bool
find_sealed_in_query(Query *q, SealedScan *ss, bool top)
{
	ListCell   *lc;

	foreach(lc, q->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);

		if (rte->rtekind == RTE_RELATION && dfdw_is_sealed_rel(rte->relid))
		{
			if (top)
				ss->top_relids = list_append_unique_oid(ss->top_relids, rte->relid);
			else
				ss->nested = true;
		}
	}
	return query_tree_walker(q, find_sealed_walker, ss, 0);
}

static bool
find_sealed_walker(Node *node, SealedScan *ss)
{
	if (node == NULL)
		return false;
	if (IsA(node, Query))
		return find_sealed_in_query((Query *) node, ss, false);
	return expression_tree_walker(node, find_sealed_walker, ss);
}

static void
refuse(const char *rule, const char *msg, const char *detail, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("%s", msg),
			 errdetail("Output rule %s: %s", rule, detail),
			 errhint("%s", hint)));
}

static void check_units(Query *q, const char *unit);

/* ---- R5: expressions over sealed data ----------------------------------- */

typedef struct ExprCheck
{
	Query	   *q;
	List	   *sealed_varnos;	/* range table indexes of sealed tables */
	bool		allow_dp_agg;
} ExprCheck;

/* A built-in function that cannot leak a value through an error or side effect. */
static bool
leakproof_builtin(Oid fn)
{
	HeapTuple	tp;
	bool		ok;

	if (fn >= FirstNormalObjectId)
		return false;
	tp = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
	if (!HeapTupleIsValid(tp))
		return false;
	ok = ((Form_pg_proc) GETSTRUCT(tp))->proleakproof &&
		((Form_pg_proc) GETSTRUCT(tp))->provolatile == PROVOLATILE_IMMUTABLE;
	ReleaseSysCache(tp);
	return ok;
}

static bool check_expr_walker(Node *node, ExprCheck *ec);

/* Does an expression read a sealed column? */
static bool
reads_sealed(Node *node, ExprCheck *ec)
{
	Relids		varnos = pull_varnos(NULL, node);
	ListCell   *lc;

	foreach(lc, ec->sealed_varnos)
		if (bms_is_member(lfirst_int(lc), varnos))
			return true;
	return false;
}

static void
refuse_function(Oid fn, const char *kind)
{
	refuse("R5", psprintf("%s %s is not allowed on sealed columns", kind, format_procedure(fn)),
		   "only built-in leakproof functions and operators may touch sealed values: others can "
		   "reveal a value through an error message or a side effect.",
		   "Compare sealed columns with constants of the same type, or aggregate them with dp_count, dp_sum or dp_avg.");
}

/* Check one node of an expression that reads sealed columns. */
static bool
check_expr_walker(Node *node, ExprCheck *ec)
{
	if (node == NULL)
		return false;
	if (IsA(node, Aggref))
	{
		Aggref	   *a = (Aggref *) node;

		if (!ec->allow_dp_agg || !dfdw_is_dp_aggregate(a->aggfnoid))
			refuse("R4", psprintf("aggregate %s is not differentially private", format_procedure(a->aggfnoid)),
				   "a query over sealed tables may compute only DP aggregates (dp_count, dp_sum, dp_avg): "
				   "any other aggregate returns an exact value.",
				   "Use dp_count(col, epsilon) instead of count(), dp_sum(col, lower, upper, epsilon) instead of sum(), "
				   "dp_avg(col, lower, upper, epsilon) instead of avg().");
		if (a->aggfilter || a->aggorder || a->aggdistinct)
			refuse("R4", "DP aggregates over sealed tables take no FILTER, ORDER BY or DISTINCT",
				   "these clauses change the sensitivity the noise was calibrated for.",
				   "Move the condition into WHERE.");
		/* the arguments: sealed columns through leakproof expressions only */
		ec->allow_dp_agg = false;
		(void) expression_tree_walker((Node *) a->args, check_expr_walker, ec);
		ec->allow_dp_agg = true;
		return false;
	}
	if (IsA(node, WindowFunc))
		refuse("R2", "window functions are not allowed over sealed tables",
			   "a window function returns one value per input row.", "Use a DP aggregate with GROUP BY.");
	if (IsA(node, SubLink) || IsA(node, SubPlan))
		refuse("R1", "sub-selects are not allowed in a query over sealed tables",
			   "sealed tables may appear only in the FROM clause of the outermost query.",
			   "Join the tables in the FROM clause instead.");
	if (!reads_sealed(node, ec))
		return false;			/* constants, non-sealed columns: anything goes */
	switch (nodeTag(node))
	{
		case T_Var:
		case T_Const:
		case T_Param:
		case T_RelabelType:
		case T_BoolExpr:
		case T_NullTest:
		case T_BooleanTest:
		case T_CaseExpr:
		case T_CaseWhen:
		case T_CaseTestExpr:
		case T_CoalesceExpr:
		case T_List:
		case T_TargetEntry:
		case T_FromExpr:
		case T_JoinExpr:
		case T_RangeTblRef:
			break;
		case T_FuncExpr:
			if (!leakproof_builtin(((FuncExpr *) node)->funcid))
				refuse_function(((FuncExpr *) node)->funcid,
								((FuncExpr *) node)->funcformat == COERCE_EXPLICIT_CALL ? "function" : "cast");
			break;
		case T_OpExpr:
		case T_DistinctExpr:
		case T_NullIfExpr:
			set_opfuncid((OpExpr *) node);
			if (!leakproof_builtin(((OpExpr *) node)->opfuncid))
				refuse_function(((OpExpr *) node)->opfuncid, "operator function");
			break;
		case T_CoerceViaIO:
		case T_ArrayCoerceExpr:
			refuse("R5", psprintf("cast of a sealed column to %s through its text form is not allowed",
								  format_type_be(exprType(node))),
				   "a cast through text raises an error that quotes the value when the value does not fit.",
				   "Compare the column with a constant of its own type instead of casting it.");
			break;
		case T_ScalarArrayOpExpr:
			set_sa_opfuncid((ScalarArrayOpExpr *) node);
			if (!leakproof_builtin(((ScalarArrayOpExpr *) node)->opfuncid))
				refuse_function(((ScalarArrayOpExpr *) node)->opfuncid, "operator function");
			break;
		default:
			refuse("R5", psprintf("expression of type %d is not allowed on sealed columns", (int) nodeTag(node)),
				   "only columns, constants, boolean logic, CASE, COALESCE and leakproof built-in operators "
				   "may touch sealed values.",
				   "Simplify the expression over the sealed column.");
	}
	return expression_tree_walker(node, check_expr_walker, ec);
}

/* ---- R4/R6: output columns and epsilon ---------------------------------- */

/* Sum of the DP aggregates' epsilons, in millionths; refuses a non-constant one. */
static bool
sum_epsilon_walker(Node *node, int64 *micro)
{
	if (node == NULL)
		return false;
	if (IsA(node, Aggref) && dfdw_is_dp_aggregate(((Aggref *) node)->aggfnoid))
	{
		Aggref	   *a = (Aggref *) node;
		TargetEntry *last = llast(a->args);
		Node	   *e = eval_const_expressions(NULL, (Node *) last->expr);
		double		eps;

		if (!IsA(e, Const) || ((Const *) e)->constisnull || ((Const *) e)->consttype != FLOAT8OID)
			refuse("R6", psprintf("the epsilon of %s must be a constant", format_procedure(a->aggfnoid)),
				   "the privacy budget is charged before the query runs, so every epsilon must be known then.",
				   "Write epsilon as a number literal, e.g. dp_count(patient_id, 0.5).");
		eps = DatumGetFloat8(((Const *) e)->constvalue);
		if (!(eps > 0 && eps <= 100))
			refuse("R6", "epsilon must be greater than 0 and at most 100",
				   psprintf("got %g.", eps), "Use a small positive epsilon such as 0.1 to 1.");
		*micro += (int64) (eps * 1e6 + 0.5);
		return false;
	}
	return expression_tree_walker(node, sum_epsilon_walker, micro);
}

static bool
contains_dp_aggregate(Node *node, void *unused)
{
	if (node == NULL)
		return false;
	if (IsA(node, Aggref) && dfdw_is_dp_aggregate(((Aggref *) node)->aggfnoid))
		return true;
	return expression_tree_walker(node, contains_dp_aggregate, unused);
}

/* Apply R2-R6 to the outermost query, which reads sealed tables. */
static void
check_top_query(Query *q, List *sealed_relids)
{
	ExprCheck	ec = {q, NIL, true};
	ListCell   *lc;
	int			rti = 0;
	int64		eps_micro = 0;
	bool		any_dp = false;

	if (diverting_statement)
		refuse("R2", psprintf("%s over sealed tables is not allowed", diverting_statement),
			   "rows read from sealed tables may leave the CVM only as a signed DP answer.",
			   "Run the aggregate through dstack_run() and keep its receipt.");
	if (q->commandType != CMD_SELECT)
		refuse("R2", "only SELECT may read sealed tables",
			   "INSERT, UPDATE, DELETE and MERGE would copy sealed values into other tables.",
			   "Run the aggregate through dstack_run() and keep its receipt.");
	if (q->rowMarks || q->setOperations || q->hasTargetSRFs || q->hasRecursive)
		refuse("R2", "FOR UPDATE/SHARE, set operations, recursion and set-returning functions are not allowed over sealed tables",
			   "each of them can return or compare individual rows.",
			   "Write one SELECT of DP aggregates grouped by columns.");
	if (q->hasWindowFuncs)
		refuse("R2", "window functions are not allowed over sealed tables",
			   "a window function returns one value per input row.", "Use a DP aggregate with GROUP BY.");

	foreach(lc, q->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);

		rti++;
		if (rte->rtekind == RTE_RELATION && dfdw_is_sealed_rel(rte->relid))
			ec.sealed_varnos = lappend_int(ec.sealed_varnos, rti);
	}

	/* R4: output columns */
	foreach(lc, q->targetList)
	{
		TargetEntry *tle = lfirst(lc);
		bool		is_key = tle->ressortgroupref != 0 &&
			get_sortgroupref_clause_noerr(tle->ressortgroupref, q->groupClause) != NULL;

		(void) check_expr_walker((Node *) tle->expr, &ec);
		if (IsA(tle->expr, Aggref) && dfdw_is_dp_aggregate(((Aggref *) tle->expr)->aggfnoid))
			any_dp = true;
		else if (!is_key && reads_sealed((Node *) tle->expr, &ec) && !contains_dp_aggregate((Node *) tle->expr, NULL))
			refuse("R4", psprintf("output column \"%s\" reads sealed data without a DP aggregate",
								  tle->resname ? tle->resname : "?"),
				   "a query over sealed tables may return only DP aggregates and GROUP BY keys.",
				   "Aggregate the column with dp_count, dp_sum or dp_avg, or group by it.");
		else if (!is_key && contains_dp_aggregate((Node *) tle->expr, NULL))
			refuse("R4", "a DP aggregate must be an output column by itself",
				   "arithmetic on a noisy answer is allowed only outside the query, on the receipt.",
				   "Return the DP aggregate as it is.");
	}
	if (!any_dp)
		refuse("R4", "a query over sealed tables must compute at least one DP aggregate",
			   "group keys or rows alone would reveal which values occur in the data.",
			   "Add dp_count(<privacy unit>, epsilon) to the select list.");
	if (q->groupClause != NIL)
	{
		bool		has_count = false;

		foreach(lc, q->targetList)
		{
			TargetEntry *tle = lfirst(lc);

			if (IsA(tle->expr, Aggref) && dfdw_is_dp_aggregate(((Aggref *) tle->expr)->aggfnoid) &&
				strcmp(get_func_name(((Aggref *) tle->expr)->aggfnoid), "dp_count") == 0)
				has_count = true;
		}
		if (!has_count)
			refuse("R4", "a grouped query over sealed tables must return a dp_count",
				   "groups whose noisy count is below the policy's minimum group size are dropped, "
				   "and the noisy count is what decides.",
				   "Add dp_count(<privacy unit>, epsilon) to the select list.");
	}
	if (q->groupingSets)
		refuse("R4", "GROUPING SETS, CUBE and ROLLUP are not allowed over sealed tables",
			   "each grouping set is another release that the budget would have to pay for.",
			   "Run one grouping per dstack_run() call.");

	/* R5 on quals, join conditions and HAVING */
	(void) check_expr_walker((Node *) q->jointree, &ec);
	(void) check_expr_walker(q->havingQual, &ec);
	foreach(lc, q->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);

		if (rte->rtekind == RTE_JOIN)
			(void) check_expr_walker((Node *) rte->joinaliasvars, &ec);
	}

	/* R6 */
	(void) sum_epsilon_walker((Node *) q->targetList, &eps_micro);
	if (dfdw_run == NULL)
		refuse("R3", "sealed tables can be read only through dstack_run()",
			   "every answer over sealed data is charged to the privacy budget and leaves with a signed receipt.",
			   "SELECT dstack_run($$SELECT dp_count(patient_id, 0.5) FROM ehr$$);");
	/* R7, with the policy of the consortium the first sealed table belongs to */
	{
		DfdwConsortiumStatus st;

		dfdw_consortium_status(GetForeignTable(linitial_oid(sealed_relids))->serverid, &st);
		if (st.facts.privacy_unit[0] != '\0')
		{
			dfdw_run->privacy_unit = MemoryContextStrdup(dfdw_run->cxt, st.facts.privacy_unit);
			dfdw_run->rows_per_unit = dfdw_guc_max_rows_per_unit;
			check_units(q, dfdw_run->privacy_unit);
		}
	}
	dfdw_run->epsilon_micro += eps_micro;
	foreach(lc, sealed_relids)
		dfdw_run->sealed_relids = list_append_unique_oid(dfdw_run->sealed_relids, lfirst_oid(lc));
}

/* ---- R7: contribution bounding on the privacy unit ------------------------ */

/* Attribute number of column `name` in relid, or InvalidAttrNumber. */
static AttrNumber
unit_attno(Oid relid, const char *name)
{
	return get_attnum(relid, name);
}

/* Union-find over range table indexes. */
static int
uf_find(int *parent, int x)
{
	while (parent[x] != x)
		x = parent[x] = parent[parent[x]];
	return x;
}

typedef struct UnitJoins
{
	Query	   *q;
	const char *unit;
	int		   *parent;
} UnitJoins;

/* Is node a Var of the unit column of a sealed table? Returns its varno or 0. */
static int
unit_var(Node *node, UnitJoins *uj)
{
	Var		   *v;
	RangeTblEntry *rte;

	while (node && IsA(node, RelabelType))
		node = (Node *) ((RelabelType *) node)->arg;
	if (node == NULL || !IsA(node, Var) || ((Var *) node)->varlevelsup != 0)
		return 0;
	v = (Var *) node;
	rte = rt_fetch(v->varno, uj->q->rtable);
	if (rte->rtekind != RTE_RELATION || !dfdw_is_sealed_rel(rte->relid) ||
		v->varattno != unit_attno(rte->relid, uj->unit))
		return 0;
	return v->varno;
}

/* Join every pair of sealed tables that an equality of unit columns connects. */
static bool
unit_join_walker(Node *node, UnitJoins *uj)
{
	if (node == NULL)
		return false;
	if (IsA(node, OpExpr) && list_length(((OpExpr *) node)->args) == 2)
	{
		OpExpr	   *op = (OpExpr *) node;
		char	   *name = get_opname(op->opno);
		int			a = unit_var(linitial(op->args), uj);
		int			b = unit_var(lsecond(op->args), uj);

		if (name && strcmp(name, "=") == 0 && a && b)
			uj->parent[uf_find(uj->parent, a)] = uf_find(uj->parent, b);
		return false;
	}
	if (IsA(node, BoolExpr) && ((BoolExpr *) node)->boolop != AND_EXPR)
		return false;			/* an equality under OR or NOT does not join */
	return expression_tree_walker(node, unit_join_walker, uj);
}

/*
 * R7: inside dstack_run(), every sealed table has the policy's privacy-unit
 * column and all of them are joined on it, so that bounding each table's
 * rows per unit bounds each unit's rows in the join.
 */
static void
check_units(Query *q, const char *unit)
{
	UnitJoins	uj = {q, unit, NULL};
	int			n = list_length(q->rtable);
	int			root = 0;
	int			rti = 0;
	int			sealed = 0;
	ListCell   *lc;

	uj.parent = palloc(sizeof(int) * (n + 1));
	for (int i = 0; i <= n; i++)
		uj.parent[i] = i;
	foreach(lc, q->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);

		rti++;
		if (rte->rtekind != RTE_RELATION || !dfdw_is_sealed_rel(rte->relid))
			continue;
		sealed++;
		if (unit_attno(rte->relid, unit) == InvalidAttrNumber)
			refuse("R7", psprintf("sealed table \"%s\" has no privacy-unit column \"%s\"",
								  get_rel_name(rte->relid), unit),
				   "the consortium's policy bounds what each privacy unit contributes, so every sealed "
				   "table must carry the unit's column.",
				   "Ask the owner to seal the table with its privacy-unit column.");
	}
	(void) unit_join_walker((Node *) q->jointree, &uj);
	rti = 0;
	foreach(lc, q->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);

		rti++;
		if (rte->rtekind != RTE_RELATION || !dfdw_is_sealed_rel(rte->relid))
			continue;
		if (root == 0)
			root = uf_find(uj.parent, rti);
		else if (uf_find(uj.parent, rti) != root)
			refuse("R7", psprintf("sealed tables must be joined on the privacy unit \"%s\"", unit),
				   "a join on anything else lets one unit contribute an unbounded number of rows, "
				   "which the noise was not calibrated for.",
				   psprintf("Join the sealed tables with USING (%s).", quote_identifier(unit)));
	}
	dfdw_run->sealed_scans += sealed;
}

/* ---- hooks ---------------------------------------------------------------- */

static PlannedStmt *
guard_planner(Query *parse, const char *query_string, int cursorOptions, ParamListInfo boundParams)
{
	PlannedStmt *result;

	if (dfdw_guc_output_guard && !explaining && parse->commandType != CMD_UTILITY)
	{
		SealedScan	ss = {false, NIL};

		(void) find_sealed_in_query(parse, &ss, true);
		if (ss.nested)
			refuse("R1", "sealed tables may be read only in the FROM clause of the outermost query",
				   "a subquery, CTE, view or sub-select over a sealed table could return its rows.",
				   "Join the sealed tables directly in the FROM clause, and do not put them behind views.");
		if (ss.top_relids != NIL)
			check_top_query(parse, ss.top_relids);
	}
	guarded_planning++;
	PG_TRY();
	{
		if (prev_planner_hook)
			result = prev_planner_hook(parse, query_string, cursorOptions, boundParams);
		else
			result = standard_planner(parse, query_string, cursorOptions, boundParams);
	}
	PG_FINALLY();
	{
		guarded_planning--;
	}
	PG_END_TRY();
	return result;
}

/*
 * Called when a sealed table is planned.  The hooks exist only once the
 * library is loaded; loaded on demand, it arrives in the middle of planning
 * the first query that touches a sealed table, after the planner hook was
 * looked up, and that query would escape the guard.  So the library must be
 * preloaded, and a query the guard did not see is refused.
 */
void
dfdw_guard_check_planned(void)
{
	if (dfdw_guc_output_guard && guarded_planning == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("dstack_fdw must be loaded at server start"),
				 errdetail("The output guard inspects every query before it is planned; a query planned "
						   "before the library was loaded could not be checked."),
				 errhint("Add dstack_fdw to shared_preload_libraries in postgresql.conf and restart the server.")));
}

/* The statements that would send query rows somewhere else than the client. */
static const char *
diverting_kind(Node *stmt)
{
	switch (nodeTag(stmt))
	{
		case T_CopyStmt:
			return ((CopyStmt *) stmt)->query ? "COPY" : NULL;
		case T_CreateTableAsStmt:
			return ((CreateTableAsStmt *) stmt)->objtype == OBJECT_MATVIEW ? "CREATE MATERIALIZED VIEW"
				: "CREATE TABLE AS / SELECT INTO";
		case T_RefreshMatViewStmt:
			return "REFRESH MATERIALIZED VIEW";
		case T_ExplainStmt:
			{
				ListCell   *lc;

				foreach(lc, ((ExplainStmt *) stmt)->options)
				{
					DefElem    *opt = lfirst(lc);

					if (strcmp(opt->defname, "analyze") == 0 && defGetBoolean(opt))
						return "EXPLAIN ANALYZE";
				}
				return NULL;
			}
		default:
			return NULL;
	}
}

static void
guard_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
			  ProcessUtilityContext context, ParamListInfo params, QueryEnvironment *queryEnv,
			  DestReceiver *dest, QueryCompletion *qc)
{
	const char *kind = dfdw_guc_output_guard ? diverting_kind(pstmt->utilityStmt) : NULL;
	const char *saved = diverting_statement;
	bool		saved_explaining = explaining;

	if (kind)
		diverting_statement = kind;
	else if (IsA(pstmt->utilityStmt, ExplainStmt))
		explaining = true;
	PG_TRY();
	{
		if (prev_utility_hook)
			prev_utility_hook(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	}
	PG_FINALLY();
	{
		diverting_statement = saved;
		explaining = saved_explaining;
	}
	PG_END_TRY();
}

/* Install the hooks, chained to whatever was installed before us. */
void
dfdw_guard_init(void)
{
	prev_planner_hook = planner_hook;
	planner_hook = guard_planner;
	prev_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = guard_utility;
}
