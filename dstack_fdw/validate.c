/*
 * validate.c: the allow-list a dstack_run() query must pass
 * (docs/output-guard.md).
 *
 * dstack_run() parses and analyses the analyst's text itself, then hands
 * the analysed Query here.  Everything that is not explicitly allowed is
 * refused, by OID, never by name:
 *
 *   A2  one plain SELECT: no sub-select, CTE, set operation, HAVING, window,
 *       set-returning function, DISTINCT, ORDER BY, LIMIT, FOR UPDATE,
 *       grouping sets (the caller post-processes the released table)
 *   A3  FROM holds sealed foreign tables of one consortium only, joined by
 *       inner joins (no function, VALUES, subquery, view or plain table)
 *   A4  expressions over columns: columns, constants, AND/OR/NOT, CASE,
 *       COALESCE, IS [NOT] NULL, IS [NOT] TRUE..., IN (...), and built-in
 *       comparisons and widening casts from an explicit list of functions
 *       that cannot raise an error whatever value they get
 *   A5  the select list: GROUP BY keys (plain columns) and this extension's
 *       DP aggregates, at least one of those
 *   A6  a DP aggregate's epsilon, bounds and quantile are constants, checked
 *       here, before anything runs; no FILTER, DISTINCT, ORDER BY
 *   A7  every sealed table has the policy's privacy-unit column and all are
 *       joined by equality of it (contributions can then be bounded)
 *
 * A refusal names its rule.  Nothing here reads a sealed row.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include <math.h>

#include "catalog/pg_aggregate.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "foreign/foreign.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parsetree.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"

#include "dstack_fdw.h"

/*
 * Built-in functions that may touch sealed values: comparisons of integer,
 * float, numeric, text, char(n), bool, date and timestamp values, LIKE on
 * text, and casts that widen without failing.  None of them can raise an
 * error that depends on the values it compares (no overflow, no parse), so
 * neither its message nor whether it failed says anything about the data.
 * Arithmetic is not here: it overflows.  numeric -> float8 is not here
 * either: it fails on numerics beyond float8's range.
 */
static const Oid safe_functions[] = {
	F_INT2EQ, F_INT2NE, F_INT2LT, F_INT2LE, F_INT2GT, F_INT2GE,
	F_INT4EQ, F_INT4NE, F_INT4LT, F_INT4LE, F_INT4GT, F_INT4GE,
	F_INT8EQ, F_INT8NE, F_INT8LT, F_INT8LE, F_INT8GT, F_INT8GE,
	F_INT24EQ, F_INT24NE, F_INT24LT, F_INT24LE, F_INT24GT, F_INT24GE,
	F_INT42EQ, F_INT42NE, F_INT42LT, F_INT42LE, F_INT42GT, F_INT42GE,
	F_INT28EQ, F_INT28NE, F_INT28LT, F_INT28LE, F_INT28GT, F_INT28GE,
	F_INT82EQ, F_INT82NE, F_INT82LT, F_INT82LE, F_INT82GT, F_INT82GE,
	F_INT48EQ, F_INT48NE, F_INT48LT, F_INT48LE, F_INT48GT, F_INT48GE,
	F_INT84EQ, F_INT84NE, F_INT84LT, F_INT84LE, F_INT84GT, F_INT84GE,
	F_FLOAT4EQ, F_FLOAT4NE, F_FLOAT4LT, F_FLOAT4LE, F_FLOAT4GT, F_FLOAT4GE,
	F_FLOAT8EQ, F_FLOAT8NE, F_FLOAT8LT, F_FLOAT8LE, F_FLOAT8GT, F_FLOAT8GE,
	F_FLOAT48EQ, F_FLOAT48NE, F_FLOAT48LT, F_FLOAT48LE, F_FLOAT48GT, F_FLOAT48GE,
	F_FLOAT84EQ, F_FLOAT84NE, F_FLOAT84LT, F_FLOAT84LE, F_FLOAT84GT, F_FLOAT84GE,
	F_NUMERIC_EQ, F_NUMERIC_NE, F_NUMERIC_LT, F_NUMERIC_LE, F_NUMERIC_GT, F_NUMERIC_GE,
	F_TEXTEQ, F_TEXTNE, F_TEXT_LT, F_TEXT_LE, F_TEXT_GT, F_TEXT_GE, F_TEXTLIKE, F_TEXTNLIKE,
	F_BPCHAREQ, F_BPCHARNE, F_BPCHARLT, F_BPCHARLE, F_BPCHARGT, F_BPCHARGE,
	F_BOOLEQ, F_BOOLNE, F_BOOLLT, F_BOOLLE, F_BOOLGT, F_BOOLGE,
	F_DATE_EQ, F_DATE_NE, F_DATE_LT, F_DATE_LE, F_DATE_GT, F_DATE_GE,
	F_TIMESTAMP_EQ, F_TIMESTAMP_NE, F_TIMESTAMP_LT, F_TIMESTAMP_LE, F_TIMESTAMP_GT, F_TIMESTAMP_GE,
	F_TIMESTAMPTZ_EQ, F_TIMESTAMPTZ_NE, F_TIMESTAMPTZ_LT, F_TIMESTAMPTZ_LE, F_TIMESTAMPTZ_GT,
	F_TIMESTAMPTZ_GE,
	/* widening casts */
	F_INT4_INT2, F_INT8_INT2, F_INT8_INT4, F_FLOAT8_INT2, F_FLOAT8_INT4, F_FLOAT8_INT8,
	F_FLOAT8_FLOAT4, F_NUMERIC_INT2, F_NUMERIC_INT4, F_NUMERIC_INT8, F_TEXT_BPCHAR,
};

static bool
safe_function(Oid fn)
{
	for (int i = 0; i < (int) lengthof(safe_functions); i++)
		if (safe_functions[i] == fn)
			return true;
	return false;
}

static void
refuse(const char *rule, const char *msg, const char *detail, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("%s", msg),
			 errdetail("Rule %s of dstack_run(): %s", rule, detail),
			 errhint("%s", hint)));
}

/* ---- A4: expressions ---------------------------------------------------- */

/* A name for a refused node, for the message. */
static const char *
node_name(Node *node)
{
	switch (nodeTag(node))
	{
		case T_SubLink:
		case T_SubPlan:
			return "a sub-select";
		case T_Aggref:
			return "an aggregate";
		case T_WindowFunc:
			return "a window function";
		case T_Param:
			return "a parameter";
		case T_CoerceViaIO:
		case T_ArrayCoerceExpr:
			return "a cast through the text form";
		case T_CoerceToDomain:
			return "a cast to a domain";
		case T_CollateExpr:
			return "COLLATE";
		case T_FieldSelect:
		case T_FieldStore:
		case T_RowExpr:
		case T_RowCompareExpr:
			return "a row expression";
		case T_MinMaxExpr:
			return "GREATEST or LEAST";
		case T_SQLValueFunction:
			return "a SQL value function";
		case T_XmlExpr:
			return "an XML expression";
		case T_GroupingFunc:
			return "GROUPING()";
		case T_SubscriptingRef:
			return "a subscript";
		default:
			return "this kind of expression";
	}
}

static bool check_expr_walker(Node *node, Query *q);
static bool const_arg_walker(Node *node, void *unused);

/* Refuse a function that is not on the list. */
static void
refuse_function(Oid fn)
{
	refuse("A4", psprintf("function %s is not allowed in a dstack_run() query", format_procedure(fn)),
		   "only built-in comparisons and widening casts that cannot fail on any value may touch sealed "
		   "data; any other function could reveal a value through its error, its side effects or its timing.",
		   "Compare columns with constants of their own type (=, <>, <, <=, >, >=, LIKE, IN, BETWEEN, IS NULL).");
}

/*
 * A LIKE pattern that cannot fail on any row.  PostgreSQL raises "LIKE
 * pattern must not end with escape character" only when the match gets
 * that far, that is, only for a value that matches the pattern's start:
 * evaluated per row, that error would say whether some row begins so.
 * The pattern must therefore be a constant, checked here, and not too
 * long (each '%' is a level of recursion as a value matches).
 */
#define DFDW_LIKE_MAX_PATTERN 1024

static void
check_like_pattern(Node *pat)
{
	const char *s;
	int			len;

	while (pat && IsA(pat, RelabelType))
		pat = (Node *) ((RelabelType *) pat)->arg;
	if (pat == NULL || !IsA(pat, Const))
		refuse("A4", "a LIKE pattern must be a constant",
			   "a pattern taken from a column could fail on some rows and not on others, and so reveal them.",
			   "Write col LIKE 'prefix%' with a literal pattern.");
	if (((Const *) pat)->constisnull)
		return;
	s = VARDATA_ANY(DatumGetPointer(((Const *) pat)->constvalue));
	len = VARSIZE_ANY_EXHDR(DatumGetPointer(((Const *) pat)->constvalue));
	if (len > DFDW_LIKE_MAX_PATTERN)
		refuse("A4", "a LIKE pattern is too long",
			   psprintf("patterns of at most %d bytes are allowed; this one has %d.", DFDW_LIKE_MAX_PATTERN, len),
			   "Shorten the pattern.");
	for (int i = 0; i < len;)
	{
		if (s[i] == '\\')
		{
			if (i + 1 >= len)
				refuse("A4", "a LIKE pattern must not end with an escape character",
					   "PostgreSQL raises this error only for values that match the rest of the pattern, "
					   "so whether it was raised would say whether such a value exists.",
					   "Remove the trailing backslash, or double it to match a backslash.");
			i += 1 + pg_mblen(s + i + 1);
		}
		else
			i += pg_mblen(s + i);
	}
}

/* The elements of an IN list or ANY(array) given to LIKE, each checked. */
static void
check_like_patterns(Node *arr)
{
	while (arr && IsA(arr, RelabelType))
		arr = (Node *) ((RelabelType *) arr)->arg;
	if (arr && IsA(arr, ArrayExpr))
	{
		ListCell   *lc;

		foreach(lc, ((ArrayExpr *) arr)->elements)
			check_like_pattern((Node *) lfirst(lc));
		return;
	}
	if (arr && IsA(arr, Const) && !((Const *) arr)->constisnull)
	{
		Datum	   *elems;
		bool	   *nulls;
		int			n;
		ArrayType  *a = DatumGetArrayTypeP(((Const *) arr)->constvalue);

		deconstruct_array(a, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
		for (int i = 0; i < n; i++)
			if (!nulls[i])
				check_like_pattern((Node *) makeConst(TEXTOID, -1, DEFAULT_COLLATION_OID, -1, elems[i],
													  false, false));
		return;
	}
	if (arr && IsA(arr, Const))
		return;
	check_like_pattern(arr);	/* refuses: not a constant */
}

/*
 * A comparison of collatable values fails at run time, on the first row
 * that reaches it, if its collation is unknown ("could not determine which
 * collation to use"); LIKE fails the same way under a nondeterministic
 * collation.  Both are refused here, before anything runs.
 */
static void
check_collation(Node *node, Oid fn, List *args)
{
	Oid			coll = exprInputCollation(node);
	ListCell   *lc;
	bool		collatable = false;

	foreach(lc, args)
		if (type_is_collatable(exprType((Node *) lfirst(lc))))
			collatable = true;
	if (!collatable)
		return;
	if (!OidIsValid(coll))
		refuse("A4", "a comparison of text values has no collation",
			   "its operands have different collations, so it would fail on the first row it compared.",
			   "Compare columns of the same collation, or a column with a constant.");
	if ((fn == F_TEXTLIKE || fn == F_TEXTNLIKE) && !get_collation_isdeterministic(coll))
		refuse("A4", "LIKE under a nondeterministic collation is not allowed",
			   "PostgreSQL refuses it on the first row it compares, so whether it failed would say "
			   "whether any row got that far.",
			   "Compare with = under that collation, or with LIKE under a deterministic one.");
}

/* Is every node of an expression allowed?  Raises at the first that is not. */
static bool
check_expr_walker(Node *node, Query *q)
{
	if (node == NULL)
		return false;

	/*
	 * A built-in immutable function of constants only (the implicit cast in
	 * egfr > 60.5, say) reads no row: the planner folds it into a constant
	 * before anything runs, so whatever it raises it raises for every
	 * dataset alike.
	 */
	if (IsA(node, FuncExpr) && !const_arg_walker(node, NULL))
		return false;
	switch (nodeTag(node))
	{
		case T_Var:
			{
				Var		   *v = (Var *) node;
				RangeTblEntry *rte;

				if (v->varlevelsup != 0 || v->varattno <= 0)
					refuse("A4", "only plain columns of sealed tables may be referenced",
						   "whole-row references and system columns are not columns of a dataset.",
						   "Name the columns you need.");
				rte = rt_fetch(v->varno, q->rtable);
				if (rte->rtekind != RTE_RELATION && rte->rtekind != RTE_JOIN)
					refuse("A4", "only columns of sealed tables may be referenced",
						   "every column must come from a sealed table in FROM.", "Name a sealed table's column.");
				return false;
			}
		case T_Const:
		case T_CaseTestExpr:
			return false;
		case T_RelabelType:
		case T_BoolExpr:
		case T_CaseExpr:
		case T_CaseWhen:
		case T_CoalesceExpr:
		case T_BooleanTest:
		case T_List:
			break;
		case T_NullTest:
			if (((NullTest *) node)->argisrow)
				refuse("A4", "IS NULL on a row is not allowed", "only columns may be tested for NULL.",
					   "Test a column: col IS NULL.");
			break;
		case T_ArrayExpr:
			if (((ArrayExpr *) node)->multidims)
				refuse("A4", "multidimensional arrays are not allowed", "IN lists are one-dimensional.",
					   "Write col IN (1, 2, 3).");
			break;
		case T_OpExpr:
		case T_DistinctExpr:
		case T_NullIfExpr:
			{
				OpExpr	   *op = (OpExpr *) node;

				set_opfuncid(op);
				if (!safe_function(op->opfuncid))
					refuse_function(op->opfuncid);
				check_collation(node, op->opfuncid, op->args);
				if (op->opfuncid == F_TEXTLIKE || op->opfuncid == F_TEXTNLIKE)
					check_like_pattern(lsecond(op->args));
				break;
			}
		case T_ScalarArrayOpExpr:
			{
				ScalarArrayOpExpr *sa = (ScalarArrayOpExpr *) node;

				set_sa_opfuncid(sa);
				if (!safe_function(sa->opfuncid))
					refuse_function(sa->opfuncid);
				check_collation(node, sa->opfuncid, sa->args);
				if (sa->opfuncid == F_TEXTLIKE || sa->opfuncid == F_TEXTNLIKE)
					check_like_patterns(lsecond(sa->args));
				break;
			}
		case T_FuncExpr:
			{
				FuncExpr   *fe = (FuncExpr *) node;

				if (fe->funcretset || !safe_function(fe->funcid))
					refuse_function(fe->funcid);
				check_collation(node, fe->funcid, fe->args);
				if ((fe->funcid == F_TEXTLIKE || fe->funcid == F_TEXTNLIKE) && list_length(fe->args) == 2)
					check_like_pattern(lsecond(fe->args));
				break;
			}
		default:
			refuse("A4", psprintf("%s is not allowed in a dstack_run() query", node_name(node)),
				   "only columns, constants, AND/OR/NOT, CASE, COALESCE, IS NULL, IN lists and built-in "
				   "comparisons may appear; anything else could return or reveal a value.",
				   "Simplify the expression, and post-process the released answer outside dstack_run().");
	}
	return expression_tree_walker(node, check_expr_walker, q);
}

static void
check_expr(Node *node, Query *q)
{
	(void) check_expr_walker(node, q);
}

/* ---- A6: DP aggregates -------------------------------------------------- */

/*
 * A constant argument (epsilon, a bound, the quantile): constants and
 * built-in immutable casts of constants only, folded to one Const.
 */
static bool
const_arg_walker(Node *node, void *unused)
{
	if (node == NULL)
		return false;
	if (IsA(node, Const) || IsA(node, RelabelType) || IsA(node, List))
		return expression_tree_walker(node, const_arg_walker, unused);
	if (IsA(node, FuncExpr))
	{
		Oid			fn = ((FuncExpr *) node)->funcid;

		if (fn < FirstGenbkiObjectId && func_volatile(fn) == PROVOLATILE_IMMUTABLE &&
			!((FuncExpr *) node)->funcretset)
			return expression_tree_walker(node, const_arg_walker, unused);
	}
	return true;
}

static Const *
const_arg(Aggref *a, int argno, const char *what)
{
	TargetEntry *tle = list_nth(a->args, argno);
	Node	   *e;

	if (const_arg_walker((Node *) tle->expr, NULL))
		refuse("A6", psprintf("the %s of %s must be a constant", what, format_procedure(a->aggfnoid)),
			   "the noise is calibrated and the budget charged before any row is read, so these "
			   "parameters cannot depend on the data.",
			   "Write it as a number literal, e.g. dp_avg(egfr, 0, 150, 0.5).");
	e = eval_const_expressions(NULL, (Node *) tle->expr);
	if (!IsA(e, Const) || ((Const *) e)->constisnull)
		refuse("A6", psprintf("the %s of %s must not be NULL", what, format_procedure(a->aggfnoid)),
			   "the noise is calibrated to it.", "Write it as a number literal.");
	tle->expr = (Expr *) e;		/* the executor uses exactly the value checked here */
	return (Const *) e;
}

static double
const_float8(Aggref *a, int argno, const char *what)
{
	Const	   *c = const_arg(a, argno, what);

	if (c->consttype != FLOAT8OID)
		elog(ERROR, "DP aggregate argument %d is not float8", argno);
	return DatumGetFloat8(c->constvalue);
}

/* Check one DP aggregate; returns its epsilon in millionths. */
static int64
check_dp_aggregate(Aggref *a, Query *q)
{
	DfdwDpKind	kind = dfdw_dp_kind(a->aggfnoid);
	DfdwDpArgs	args;
	const char *fn = get_func_name(a->aggfnoid);

	if (kind == DFDW_DP_NONE)
		refuse("A5", psprintf("aggregate %s is not one of dstack_fdw's DP aggregates", format_procedure(a->aggfnoid)),
			   "a dstack_run() query may compute only dp_count, dp_sum, dp_avg and dp_quantile of the "
			   "dstack_fdw extension: any other aggregate returns an exact value.",
			   "Use dp_count(col, epsilon), dp_sum(col, lower, upper, epsilon), dp_avg(col, lower, upper, "
			   "epsilon) or dp_quantile(col, q, lower, upper, epsilon).");
	if (a->aggfilter || a->aggorder || a->aggdistinct || a->aggstar || a->aggvariadic ||
		a->aggdirectargs || a->agglevelsup != 0 || a->aggkind != AGGKIND_NORMAL)
		refuse("A6", "DP aggregates take no FILTER, ORDER BY, DISTINCT or VARIADIC",
			   "these clauses change the sensitivity the noise is calibrated for.",
			   "Move the condition into WHERE.");
	/* the value: an allowed expression over columns */
	check_expr((Node *) ((TargetEntry *) linitial(a->args))->expr, q);
	switch (kind)
	{
		case DFDW_DP_COUNT:
			dfdw_dp_check_args(fn, 'c', false, const_float8(a, 1, "epsilon"), true, 0, true, 0, &args);
			break;
		case DFDW_DP_SUM_INT8:
			{
				Const	   *lo = const_arg(a, 1, "lower bound");
				Const	   *hi = const_arg(a, 2, "upper bound");

				dfdw_dp_check_args(fn, 'i', false, const_float8(a, 3, "epsilon"), false, lo->constvalue,
								   false, hi->constvalue, &args);
				break;
			}
		case DFDW_DP_SUM_FLOAT8:
		case DFDW_DP_AVG:
			{
				Const	   *lo = const_arg(a, 1, "lower bound");
				Const	   *hi = const_arg(a, 2, "upper bound");

				dfdw_dp_check_args(fn, 'f', false, const_float8(a, 3, "epsilon"), false, lo->constvalue,
								   false, hi->constvalue, &args);
				break;
			}
		case DFDW_DP_QUANTILE:
			{
				double		qv = const_float8(a, 1, "quantile");
				double		lo = const_float8(a, 2, "lower bound");
				double		hi = const_float8(a, 3, "upper bound");

				if (!(qv >= 0 && qv <= 1))
					refuse("A6", "the quantile of dp_quantile must be between 0 and 1",
						   "q is the fraction of values below the answer.", "Use 0.5 for the median.");
				if (!isfinite(lo) || !isfinite(hi) || !(lo < hi) || !isfinite(hi - lo))
					refuse("A6", "the bounds of dp_quantile must be finite, with lower < upper and a finite range",
						   "the answer is one of 1024 buckets of [lower, upper].",
						   "Give the range the values are known to lie in.");
				args.eps_micro = dfdw_dp_epsilon_micro(const_float8(a, 4, "epsilon"));
				break;
			}
		default:
			elog(ERROR, "unexpected DP aggregate kind %d", (int) kind);
	}
	return args.eps_micro;
}

/* ---- A2, A3, A5: the query ---------------------------------------------- */

static void
check_shape(Query *q)
{
	if (q->commandType != CMD_SELECT || q->utilityStmt != NULL)
		refuse("A2", "dstack_run() runs one SELECT", "nothing else reads sealed data.",
			   "Pass one SELECT of DP aggregates over sealed tables.");
	if (q->hasSubLinks || q->cteList != NIL)
		refuse("A2", "sub-selects and WITH are not allowed in a dstack_run() query",
			   "a query over sealed tables is one flat SELECT.", "Join the sealed tables in FROM instead.");
	if (q->setOperations != NULL)
		refuse("A2", "UNION, INTERSECT and EXCEPT are not allowed in a dstack_run() query",
			   "each branch would be another release.", "Run one query per dstack_run() call.");
	if (q->havingQual != NULL)
		refuse("A2", "HAVING is not allowed in a dstack_run() query",
			   "a condition on an aggregate decides which groups appear from exact values.",
			   "Filter the released answer after dstack_run() returns it.");
	if (q->hasWindowFuncs || q->windowClause != NIL)
		refuse("A2", "window functions are not allowed in a dstack_run() query",
			   "a window function returns one value per row.", "Use a DP aggregate with GROUP BY.");
	if (q->hasTargetSRFs)
		refuse("A2", "set-returning functions are not allowed in a dstack_run() query",
			   "they multiply rows.", "Remove the function.");
	if (q->distinctClause != NIL || q->hasDistinctOn || q->groupDistinct)
		refuse("A2", "DISTINCT is not allowed in a dstack_run() query",
			   "the groups are the GROUP BY keys.", "Remove DISTINCT.");
	if (q->sortClause != NIL || q->limitCount != NULL || q->limitOffset != NULL)
		refuse("A2", "ORDER BY, LIMIT and OFFSET are not allowed in a dstack_run() query",
			   "ordering and cutting happen on the released answer.",
			   "Sort or cut the receipt's result after dstack_run() returns it.");
	if (q->rowMarks != NIL || q->hasForUpdate)
		refuse("A2", "FOR UPDATE and FOR SHARE are not allowed in a dstack_run() query",
			   "sealed tables are read-only.", "Remove the locking clause.");
	if (q->groupingSets != NIL)
		refuse("A2", "GROUPING SETS, CUBE and ROLLUP are not allowed in a dstack_run() query",
			   "each grouping set is another release.", "Run one grouping per dstack_run() call.");
	if (q->hasRecursive || q->hasModifyingCTE || q->returningList != NIL || q->onConflict != NULL)
		refuse("A2", "dstack_run() runs one plain SELECT", "nothing else reads sealed data.",
			   "Pass one SELECT of DP aggregates over sealed tables.");
}

/* A3: the range table and the join tree. */
static void
check_from(Query *q, DfdwValidated *v)
{
	ListCell   *lc;
	int			rti = 0;

	foreach(lc, q->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);

		rti++;
		if (rte->rtekind == RTE_JOIN)
		{
			if (rte->jointype != JOIN_INNER)
				refuse("A3", "only inner joins are allowed in a dstack_run() query",
					   "an outer join adds rows that no unit contributed.", "Use JOIN ... USING (unit).");
			check_expr((Node *) rte->joinaliasvars, q);
			continue;
		}
		if (rte->rtekind != RTE_RELATION || !dfdw_is_sealed_rel(rte->relid))
			refuse("A3", "a dstack_run() query may read only sealed tables",
				   "functions, VALUES, subqueries, views and ordinary tables in FROM could multiply a unit's "
				   "rows or carry values in and out.",
				   "List only dstack_fdw foreign tables in FROM.");
		if (rte->tablesample != NULL)
			refuse("A3", "TABLESAMPLE is not allowed in a dstack_run() query",
				   "sampling changes the sensitivity.", "Remove TABLESAMPLE.");
		if (!OidIsValid(v->serverid))
			v->serverid = GetForeignTable(rte->relid)->serverid;
		else if (GetForeignTable(rte->relid)->serverid != v->serverid)
			refuse("A3", "a dstack_run() query may read datasets of one consortium only",
				   "one answer is charged to one consortium's budget.",
				   "Put tables of different consortia (servers) in different queries.");
		rte->inh = false;		/* no inheritance children: the table itself */
		v->sealed_relids = list_append_unique_oid(v->sealed_relids, rte->relid);
		v->sealed_rtis = lappend_int(v->sealed_rtis, rti);
		v->sealed_scans++;
	}
	if (v->sealed_relids == NIL)
		refuse("A3", "dstack_run() answers only queries over sealed tables",
			   "other queries are not its business.", "Query the dstack_fdw foreign tables of a consortium.");
	/* join tree: only table references and inner joins, their conditions allowed expressions */
	check_expr(q->jointree->quals, q);
	foreach(lc, q->jointree->fromlist)
	{
		Node	   *n = lfirst(lc);
		List	   *todo = list_make1(n);

		while (todo != NIL)
		{
			Node	   *item = linitial(todo);

			todo = list_delete_first(todo);
			if (IsA(item, RangeTblRef))
				continue;
			if (!IsA(item, JoinExpr) || ((JoinExpr *) item)->jointype != JOIN_INNER)
				refuse("A3", "only inner joins are allowed in a dstack_run() query",
					   "an outer join adds rows that no unit contributed.", "Use JOIN ... USING (unit).");
			check_expr(((JoinExpr *) item)->quals, q);
			todo = lappend(todo, ((JoinExpr *) item)->larg);
			todo = lappend(todo, ((JoinExpr *) item)->rarg);
		}
	}
}

/* A5: output columns and GROUP BY. */
static void
check_output(Query *q, DfdwValidated *v)
{
	ListCell   *lc;

	foreach(lc, q->groupClause)
	{
		SortGroupClause *sgc = lfirst(lc);
		TargetEntry *tle = get_sortgroupclause_tle(sgc, q->targetList);
		Node	   *e = (Node *) tle->expr;

		if (!IsA(e, Var))
			refuse("A5", "GROUP BY may name only plain columns in a dstack_run() query",
				   "a computed key could carry any function of the data.", "Group by the column itself.");
		check_expr(e, q);
		if (!safe_function(get_opcode(sgc->eqop)))
			refuse("A5", psprintf("GROUP BY on type %s is not allowed", format_type_be(exprType(e))),
				   "grouping compares keys with their type's equality, which must be a built-in one that "
				   "cannot fail.",
				   "Group by an integer, text, boolean, date or timestamp column.");
		v->grouped = true;
	}
	foreach(lc, q->targetList)
	{
		TargetEntry *tle = lfirst(lc);
		bool		is_key = tle->ressortgroupref != 0 &&
			get_sortgroupref_clause_noerr(tle->ressortgroupref, q->groupClause) != NULL;

		if (IsA(tle->expr, Aggref))
		{
			v->epsilon_micro += check_dp_aggregate((Aggref *) tle->expr, q);
			v->n_dp++;
		}
		else if (!(is_key && IsA(tle->expr, Var)))
			refuse("A5", psprintf("output column \"%s\" is neither a GROUP BY key nor a DP aggregate",
								  tle->resname ? tle->resname : "?column?"),
				   "a dstack_run() query returns only DP aggregates and the keys of the groups they describe.",
				   "Aggregate the column with a DP aggregate, or group by it; compute anything else from "
				   "the released answer.");
		if (!tle->resjunk)
			v->n_out++;
	}
	if (v->n_dp == 0)
		refuse("A5", "a dstack_run() query must compute at least one DP aggregate",
			   "group keys alone would reveal which values occur in the data.",
			   "Add dp_count(<privacy unit>, epsilon) to the select list.");
}

/*
 * A2-A6 on the analysed query.  Folds the DP aggregates' constant arguments
 * in place, so the plan uses exactly the values checked.
 */
void
dfdw_validate_query(Query *q, DfdwValidated *v)
{
	memset(v, 0, sizeof(*v));
	check_shape(q);
	check_from(q, v);
	check_output(q, v);
}

/* ---- A7: every sealed table joined on the privacy unit -------------------- */

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

/* A Var of a sealed table's unit column (through join aliases): its rti, else 0. */
static int
unit_var(Node *node, UnitJoins *uj)
{
	RangeTblEntry *rte;
	Var		   *v;

	for (;;)
	{
		while (node && IsA(node, RelabelType))
			node = (Node *) ((RelabelType *) node)->arg;
		if (node == NULL || !IsA(node, Var))
			return 0;
		v = (Var *) node;
		rte = rt_fetch(v->varno, uj->q->rtable);
		if (rte->rtekind != RTE_JOIN)
			break;
		node = list_nth(rte->joinaliasvars, v->varattno - 1);
	}
	if (rte->rtekind != RTE_RELATION || v->varattno != get_attnum(rte->relid, uj->unit))
		return 0;
	return v->varno;
}

/* Union the tables that an equality of unit columns, under AND only, joins. */
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

		if (name && strcmp(name, "=") == 0 && op->opno < FirstGenbkiObjectId && a && b)
			uj->parent[uf_find(uj->parent, a)] = uf_find(uj->parent, b);
		return false;
	}
	if (IsA(node, BoolExpr) && ((BoolExpr *) node)->boolop != AND_EXPR)
		return false;			/* an equality under OR or NOT does not join */
	if (IsA(node, RangeTblRef) || IsA(node, FromExpr) || IsA(node, JoinExpr) || IsA(node, BoolExpr) ||
		IsA(node, List))
		return expression_tree_walker(node, unit_join_walker, uj);
	return false;
}

void
dfdw_validate_units(Query *q, const char *unit, DfdwValidated *v)
{
	UnitJoins	uj = {q, unit, NULL};
	int			n = list_length(q->rtable);
	int			root = 0;
	ListCell   *lc;

	if (unit == NULL || unit[0] == '\0')
		refuse("A7", "the consortium's policy names no privacy unit",
			   "without a unit column no contribution can be bounded, so no sensitivity is known.",
			   "Ask the owners for a recipe whose policy names the privacy unit (e.g. patient_id).");
	uj.parent = palloc(sizeof(int) * (n + 1));
	for (int i = 0; i <= n; i++)
		uj.parent[i] = i;
	foreach(lc, v->sealed_rtis)
	{
		RangeTblEntry *rte = rt_fetch(lfirst_int(lc), q->rtable);

		if (get_attnum(rte->relid, unit) == InvalidAttrNumber)
			refuse("A7", psprintf("sealed table \"%s\" has no privacy-unit column \"%s\"",
								  get_rel_name(rte->relid), unit),
				   "the consortium's policy bounds what each privacy unit contributes, so every sealed "
				   "table must carry the unit's column.",
				   "Ask the owner to seal the table with its privacy-unit column.");
	}
	(void) unit_join_walker((Node *) q->jointree, &uj);
	foreach(lc, v->sealed_rtis)
	{
		int			r = uf_find(uj.parent, lfirst_int(lc));

		if (root == 0)
			root = r;
		else if (r != root)
			refuse("A7", psprintf("sealed tables must be joined on the privacy unit \"%s\"", unit),
				   "a join on anything else lets one unit contribute an unbounded number of rows, "
				   "which the noise was not calibrated for.",
				   psprintf("Join the sealed tables with USING (%s).", quote_identifier(unit)));
	}
}

/*
 * Partition selection needs each group's row count (after bounding): add
 * count(<unit>) as an output column after the analyst's, before any junk
 * column.  run.c reads it, noises it and never releases it.
 */
void
dfdw_add_selection_count(Query *q, const char *unit, DfdwValidated *v)
{
	int			rti = linitial_int(v->sealed_rtis);
	RangeTblEntry *rte = rt_fetch(rti, q->rtable);
	AttrNumber	att = get_attnum(rte->relid, unit);
	Oid			typid;
	int32		typmod;
	Oid			collid;
	Var		   *var;
	Aggref	   *agg = makeNode(Aggref);
	TargetEntry *tle;
	List	   *tl = NIL;
	ListCell   *lc;
	bool		placed = false;
	AttrNumber	resno = 1;

	get_atttypetypmodcoll(rte->relid, att, &typid, &typmod, &collid);
	var = makeVar(rti, att, typid, typmod, collid, 0);
	agg->aggfnoid = F_COUNT_ANY;
	agg->aggtype = INT8OID;
	agg->aggargtypes = list_make1_oid(typid);
	agg->args = list_make1(makeTargetEntry((Expr *) var, 1, NULL, false));
	agg->aggkind = AGGKIND_NORMAL;
	agg->aggsplit = AGGSPLIT_SIMPLE;
	agg->aggno = -1;
	agg->aggtransno = -1;
	agg->location = -1;
	tle = makeTargetEntry((Expr *) agg, 0, pstrdup("dstack_selection_count"), false);
	foreach(lc, q->targetList)
	{
		TargetEntry *t = lfirst(lc);

		if (t->resjunk && !placed)
		{
			tle->resno = resno++;
			tl = lappend(tl, tle);
			placed = true;
		}
		t->resno = resno++;
		tl = lappend(tl, t);
	}
	if (!placed)
	{
		tle->resno = resno;
		tl = lappend(tl, tle);
	}
	q->targetList = tl;
	q->hasAggs = true;
}
