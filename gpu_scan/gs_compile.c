/*
 * gs_compile.c: from planner expressions to kernel parameters.
 *
 * What the kernels can do is small on purpose, and everything else is
 * refused here with a reason (gpu_scan.debug_planner prints it), so the
 * query runs on PostgreSQL's own nodes instead:
 *   filters   comparisons of integer, float, bool and same-type date/time
 *             values (btree operator families integer_ops, float_ops,
 *             bool_ops, datetime_ops), column or constant operands, widening
 *             casts, AND / OR / NOT, IS [NOT] NULL, IN (constant list)
 *   keys      columns of those types, and text/varchar/bytea columns with a
 *             deterministic collation (dictionary-coded on the host)
 *   partials  count(*), count(x) (any type: only its NULLs are read), sum(int2|int4), sum(float8),
 *             min/max(int2|int4|int8|float4|float8|date|timestamp[tz]),
 *             avg(int2|int4) (int8[] {count, sum}, as int4_avg_accum builds it),
 *             avg(float4|float8) (float8[] {N, Sx, Sxx}, as float8_accum does:
 *             its overflow error included), dp_count, dp_sum(int8),
 *             dp_sum(float8), dp_avg(float8) (avg and the DP aggregates
 *             recognised by their support functions, not their names); never an
 *             aggregate the Finalize Agg could not finish (no combine
 *             function, or an internal state without serial/deserial)
 * Every one of these has the same semantics in gs_logic.h as in PostgreSQL;
 * the regression suite gpu_scan compares the two.
 */
#include "postgres.h"

#include "catalog/pg_aggregate.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_language.h"
#include "catalog/pg_opfamily.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/syscache.h"

#include "dstack_fdw.h"
#include "gpu_scan.h"
#include "pg_common.h"

/* btree operator families without a symbol in pg_opfamily_d.h */
#define GS_FLOAT_BTREE_FAM		1970	/* float_ops */
#define GS_DATETIME_BTREE_FAM	434 /* datetime_ops */

static int32 kernel_cmp(Oid opno, bool *isf);
static Var *column_of(GsCompiled *gc, Expr *e);
static int	side_of(GsCompiled *gc, Var *v);
static char *column_name(GsCompiled *gc, Var *v);
static Expr *strip_widening(Expr *e);
static int32 kind_of_type(Oid typid);

void
gs_compiled_init(GsCompiled *gc, Oid relid, Index scanrelid)
{
	memset(gc, 0, sizeof(*gc));
	gc->relid = relid;
	gc->scanrelid = scanrelid;
	gc->join_outer_keycol = gc->join_inner_keycol = -1;
}

/*
 * The hash-join clause: outer column = inner column, an integer (or bool,
 * or same-type date/time) equality, so keys compare as int64 exactly as the
 * operator compares them.
 */
bool
gs_compile_join(GsCompiled *gc, Oid inner_relid, Index inner_scanrelid, Expr *clause, const char **why)
{
	OpExpr	   *op = (OpExpr *) clause;
	bool		isf = false;
	Var		   *a,
			   *b;

	gc->inner_relid = inner_relid;
	gc->inner_scanrelid = inner_scanrelid;
	if (!IsA(clause, OpExpr) || list_length(op->args) != 2 || kernel_cmp(op->opno, &isf) != GS_EQ || isf)
	{
		*why = "not an integer equality";
		return false;
	}
	a = column_of(gc, strip_widening(linitial(op->args)));
	b = column_of(gc, strip_widening(lsecond(op->args)));
	if (a == NULL || b == NULL || side_of(gc, a) == side_of(gc, b))
	{
		*why = "not a comparison of a column of each table";
		return false;
	}
	if (side_of(gc, a) == 1)
	{
		Var		   *t = a;

		a = b;
		b = t;
	}
	if (kind_of_type(getBaseType(a->vartype)) == 0 || kind_of_type(getBaseType(b->vartype)) == 0)
	{
		*why = "a join key of a type the kernels do not read";
		return false;
	}
	gc->join_outer_keycol = gs_input_col(gc, a->varattno, getBaseType(a->vartype), GS_COL_VALUE, 0);
	gc->join_inner_keycol = gs_input_col(gc, b->varattno, getBaseType(b->vartype), GS_COL_VALUE, 1);
	if (gc->join_outer_keycol < 0 || gc->join_inner_keycol < 0)
	{
		*why = "the query reads more than 16 columns";
		return false;
	}
	gc->join_text = psprintf("%s = %s", column_name(gc, a), column_name(gc, b));
	return true;
}

/* The kernel kind of a stored encoding, 0 when the kernels cannot read it (uuid, variable width). */
static int32
kind_of_enc(DsealEnc enc)
{
	switch (enc)
	{
		case DSEAL_ENC_BOOL:
			return GS_BOOL;
		case DSEAL_ENC_I16:
			return GS_I16;
		case DSEAL_ENC_I32:
			return GS_I32;
		case DSEAL_ENC_I64:
			return GS_I64;
		case DSEAL_ENC_F32:
			return GS_F32;
		case DSEAL_ENC_F64:
			return GS_F64;
		default:
			return 0;
	}
}

/*
 * The kernel kind of a (base) type: its column arrays are what the scan
 * decrypts, so the kind follows the type's stored encoding
 * (dseal_type_storage(), the one map).
 */
static int32
kind_of_type(Oid typid)
{
	DsealRepr	repr;

	return kind_of_enc(dseal_type_storage(typid, &repr));
}

int
gs_input_col(GsCompiled *gc, AttrNumber attno, Oid typid, GsColMode mode, int side)
{
	for (int i = 0; i < gc->ncols; i++)
		if (gc->cols[i].attno == attno && gc->cols[i].mode == mode && gc->cols[i].side == side)
			return i;
	if (gc->ncols == GS_MAX_COLS)
		return -1;
	gc->cols[gc->ncols].attno = attno;
	gc->cols[gc->ncols].typid = typid;
	gc->cols[gc->ncols].kind = mode == GS_COL_VALUE ? kind_of_type(typid)
		: (mode == GS_COL_DICT || mode == GS_COL_CHARS || mode == GS_COL_OCTETS) ? GS_I32 : GS_BOOL;
	gc->cols[gc->ncols].mode = mode;
	gc->cols[gc->ncols].side = side;
	return gc->ncols++;
}

/* A plain column of the scanned relation (or of the join's inner one), or NULL. */
static Var *
column_of(GsCompiled *gc, Expr *e)
{
	Var		   *v;

	while (e != NULL && IsA(e, RelabelType))
		e = ((RelabelType *) e)->arg;
	if (e == NULL || !IsA(e, Var))
		return NULL;
	v = (Var *) e;
	if (v->varlevelsup != 0 || v->varattno <= 0 ||
		!(v->varno == gc->scanrelid || (gc->inner_scanrelid != 0 && v->varno == gc->inner_scanrelid)))
		return NULL;
	return v;
}

/* Which side a column of column_of() is on. */
static int
side_of(GsCompiled *gc, Var *v)
{
	return v->varno == gc->scanrelid ? 0 : 1;
}

/* Name of a column, qualified by its table in a join (for EXPLAIN). */
static char *
column_name(GsCompiled *gc, Var *v)
{
	Oid			relid = side_of(gc, v) ? gc->inner_relid : gc->relid;
	char	   *att = get_attname(relid, v->varattno, false);

	return OidIsValid(gc->inner_relid) ? psprintf("%s.%s", get_rel_name(relid), att) : att;
}

/* Widening casts the loaders do by themselves: int -> int8, int/float4 -> float8. */
static Expr *
strip_widening(Expr *e)
{
	if (e != NULL && IsA(e, FuncExpr) && list_length(((FuncExpr *) e)->args) == 1)
	{
		switch (((FuncExpr *) e)->funcid)
		{
			case F_INT8_INT4:
			case F_INT8_INT2:
			case F_FLOAT8_INT4:
			case F_FLOAT8_INT2:
			case F_FLOAT8_INT8:
			case F_FLOAT8_FLOAT4:
				return (Expr *) linitial(((FuncExpr *) e)->args);
			default:
				break;
		}
	}
	return e;
}

/* A column (through widening casts) with a fixed-width kind: its input index, or -1. */
static int
value_column(GsCompiled *gc, Expr *e, const char **why)
{
	Var		   *v = column_of(gc, strip_widening(e));
	int			c;

	if (v == NULL)
	{
		*why = "an operand is neither a column of the sealed table nor a constant";
		return -1;
	}
	if (kind_of_type(getBaseType(v->vartype)) == 0)
	{
		*why = psprintf("column type %s is not one the kernels read (integers, floats, bool, date, "
						"timestamp)", format_type_be(v->vartype));
		return -1;
	}
	c = gs_input_col(gc, v->varattno, getBaseType(v->vartype), GS_COL_VALUE, side_of(gc, v));
	if (c < 0)
		*why = "the query reads more than 16 columns";
	return c;
}

static bool
emit(GsCompiled *gc, int32 op, int32 a, int32 isf, int64 ival, double fval, const char **why)
{
	if (gc->nprog == GS_MAX_PROG)
	{
		*why = "the filter needs more than 64 kernel instructions";
		return false;
	}
	gc->prog[gc->nprog++] = (GsInstr) {op, a, isf, 0, ival, fval};
	return true;
}

/* Push a constant of a kernel type. */
static bool
emit_const(GsCompiled *gc, Const *c, bool isf, const char **why)
{
	int64		i = 0;
	double		f = 0;
	DsealEnc	enc;
	DsealRepr	repr;

	if (c->constisnull)
	{
		*why = "a NULL constant in a comparison";
		return false;
	}
	enc = dseal_type_storage(getBaseType(c->consttype), &repr);
	switch (kind_of_enc(enc))
	{
		case GS_BOOL:
			i = DatumGetBool(c->constvalue);
			break;
		case GS_I16:
			i = DatumGetInt16(c->constvalue);
			break;
		case GS_I32:
			i = DatumGetInt32(c->constvalue);
			break;
		case GS_I64:
			i = DatumGetInt64(c->constvalue);
			break;
		case GS_F32:
			f = DatumGetFloat4(c->constvalue);
			break;
		case GS_F64:
			f = DatumGetFloat8(c->constvalue);
			break;
		default:
			*why = psprintf("a constant of type %s", format_type_be(c->consttype));
			return false;
	}
	if (isf && !gs_kind_is_float(kind_of_enc(enc)))
		f = (double) i;
	return emit(gc, GS_OP_CONST, 0, isf, i, f, why);
}

/* Push a comparison operand: a column or a constant. */
static bool
emit_operand(GsCompiled *gc, Expr *e, bool isf, const char **why)
{
	int			c;

	if (IsA(e, Const))
		return emit_const(gc, (Const *) e, isf, why);
	c = value_column(gc, e, why);
	return c >= 0 && emit(gc, GS_OP_COL, c, isf, 0, 0, why);
}

/*
 * The kernel comparison of a btree operator in a family the kernels
 * implement; 0 when there is none.  *isf: compare as doubles.
 */
static int32
kernel_cmp(Oid opno, bool *isf)
{
	List	   *interps = get_op_btree_interpretation(opno);
	ListCell   *lc;

	foreach(lc, interps)
	{
		OpBtreeInterpretation *bi = lfirst(lc);
		Oid			fam = bi->opfamily_id;

		if (fam != INTEGER_BTREE_FAM_OID && fam != GS_FLOAT_BTREE_FAM && fam != BOOL_BTREE_FAM_OID &&
			!(fam == GS_DATETIME_BTREE_FAM && bi->oplefttype == bi->oprighttype))
			continue;
		*isf = fam == GS_FLOAT_BTREE_FAM;
		switch (bi->strategy)
		{
			case BTLessStrategyNumber:
				return GS_LT;
			case BTLessEqualStrategyNumber:
				return GS_LE;
			case BTEqualStrategyNumber:
				return GS_EQ;
			case BTGreaterEqualStrategyNumber:
				return GS_GE;
			case BTGreaterStrategyNumber:
				return GS_GT;
			case ROWCOMPARE_NE:
				return GS_NE;
			default:
				break;
		}
	}
	return 0;
}

static bool compile_bool(GsCompiled *gc, Expr *e, const char **why);

/* x IN (c1, c2, ...) / x <> ALL (...): a chain of comparisons. */
static bool
compile_array_op(GsCompiled *gc, ScalarArrayOpExpr *sa, const char **why)
{
	bool		isf = false;
	int32		cmp = kernel_cmp(sa->opno, &isf);
	Const	   *arr = lsecond(sa->args);
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int16		typlen;
	bool		typbyval;
	char		typalign;

	if (cmp == 0 || !IsA(arr, Const) || arr->constisnull)
	{
		*why = "an IN list that is not a constant list of integers, floats, dates or timestamps";
		return false;
	}
	get_typlenbyvalalign(ARR_ELEMTYPE(DatumGetArrayTypeP(arr->constvalue)), &typlen, &typbyval, &typalign);
	deconstruct_array(DatumGetArrayTypeP(arr->constvalue), ARR_ELEMTYPE(DatumGetArrayTypeP(arr->constvalue)),
					  typlen, typbyval, typalign, &elems, &nulls, &n);
	if (n == 0 || n > 16)
	{
		*why = "an IN list of more than 16 values";
		return false;
	}
	for (int i = 0; i < n; i++)
	{
		Const	   *c = makeConst(ARR_ELEMTYPE(DatumGetArrayTypeP(arr->constvalue)), -1, InvalidOid,
								  typlen, elems[i], nulls[i], typbyval);

		if (!emit_operand(gc, linitial(sa->args), isf, why))
			return false;
		if (nulls[i])
		{
			/* x = NULL is unknown: compare a constant with itself under a NULL column */
			*why = "an IN list with a NULL";
			return false;
		}
		if (!emit_const(gc, c, isf, why) || !emit(gc, GS_OP_CMP, cmp, isf, 0, 0, why))
			return false;
		if (i > 0 && !emit(gc, sa->useOr ? GS_OP_OR : GS_OP_AND, 0, 0, 0, 0, why))
			return false;
	}
	return true;
}

/* Push the truth value of a boolean expression. */
static bool
compile_bool(GsCompiled *gc, Expr *e, const char **why)
{
	check_stack_depth();
	if (IsA(e, OpExpr) && list_length(((OpExpr *) e)->args) == 2)
	{
		OpExpr	   *op = (OpExpr *) e;
		bool		isf = false;
		int32		cmp = kernel_cmp(op->opno, &isf);

		if (cmp == 0)
		{
			*why = psprintf("operator %s is not an integer, float, bool or same-type date/time comparison",
							get_opname(op->opno) ? get_opname(op->opno) : "?");
			return false;
		}
		return emit_operand(gc, linitial(op->args), isf, why) &&
			emit_operand(gc, lsecond(op->args), isf, why) &&
			emit(gc, GS_OP_CMP, cmp, isf, 0, 0, why);
	}
	if (IsA(e, BoolExpr))
	{
		BoolExpr   *b = (BoolExpr *) e;
		ListCell   *lc;

		foreach(lc, b->args)
		{
			if (!compile_bool(gc, lfirst(lc), why))
				return false;
			if (b->boolop == NOT_EXPR)
				return emit(gc, GS_OP_NOT, 0, 0, 0, 0, why);
			if (foreach_current_index(lc) > 0 &&
				!emit(gc, b->boolop == AND_EXPR ? GS_OP_AND : GS_OP_OR, 0, 0, 0, 0, why))
				return false;
		}
		return true;
	}
	if (IsA(e, NullTest) && !((NullTest *) e)->argisrow)
	{
		int			c = value_column(gc, ((NullTest *) e)->arg, why);

		return c >= 0 && emit(gc, GS_OP_COL, c, 0, 0, 0, why) &&
			emit(gc, ((NullTest *) e)->nulltesttype == IS_NULL ? GS_OP_ISNULL : GS_OP_ISNOTNULL, 0, 0, 0, 0, why);
	}
	if (IsA(e, ScalarArrayOpExpr))
		return compile_array_op(gc, (ScalarArrayOpExpr *) e, why);
	if (column_of(gc, e) != NULL && getBaseType(exprType((Node *) e)) == BOOLOID)
	{
		int			c = value_column(gc, e, why);

		return c >= 0 && emit(gc, GS_OP_COL, c, 0, 0, 0, why) && emit(gc, GS_OP_ISTRUE, 0, 0, 0, 0, why);
	}
	*why = "a condition that is not a comparison, AND/OR/NOT, IS [NOT] NULL or a constant IN list";
	return false;
}

/* The stack depth the program needs; GS_STACK + 1 when it would underflow or exceed. */
static int
program_depth(const GsCompiled *gc)
{
	int			sp = 0,
				max = 0;

	for (int k = 0; k < gc->nprog; k++)
	{
		switch (gc->prog[k].op)
		{
			case GS_OP_COL:
			case GS_OP_CONST:
				sp++;
				break;
			case GS_OP_CMP:
			case GS_OP_AND:
			case GS_OP_OR:
				if (sp < 2)
					return GS_STACK + 1;
				sp--;
				break;
			default:
				if (sp < 1)
					return GS_STACK + 1;
				break;
		}
		max = Max(max, sp);
	}
	return sp == 1 || gc->nprog == 0 ? max : GS_STACK + 1;
}

bool
gs_compile_qual(GsCompiled *gc, Expr *qual, const char **why)
{
	int			nprog = gc->nprog;
	int			ncols = gc->ncols;

	if (compile_bool(gc, qual, why) && (nprog == 0 || emit(gc, GS_OP_AND, 0, 0, 0, 0, why)))
	{
		if (program_depth(gc) <= GS_STACK)
		{
			gc->filter_quals = lappend(gc->filter_quals, qual);
			return true;
		}
		*why = "the filter nests deeper than the kernel's stack";
	}
	gc->nprog = nprog;			/* roll back: the qual stays on the CPU */
	gc->ncols = ncols;
	return false;
}

bool
gs_compile_key(GsCompiled *gc, Expr *key, Oid eqop, const char **why)
{
	Var		   *v = column_of(gc, key);
	Oid			typid;
	bool		dict;
	int			c;

	if (v == NULL)
	{
		*why = "a GROUP BY key is not a plain column of the sealed table";
		return false;
	}
	if (gc->nkeys == GS_MAX_KEYS)
	{
		*why = "more than 4 GROUP BY keys";
		return false;
	}
	typid = getBaseType(v->vartype);
	dict = typid == TEXTOID || typid == VARCHAROID || typid == BYTEAOID;
	if (!dict && kind_of_type(typid) == 0)
	{
		*why = psprintf("GROUP BY key of type %s", format_type_be(v->vartype));
		return false;
	}
	if (dict && OidIsValid(v->varcollid) && !get_collation_isdeterministic(v->varcollid))
	{
		*why = "a GROUP BY key with a nondeterministic collation (equal strings may differ in bytes)";
		return false;
	}
	if (!dict)
	{
		bool		isf;

		if (kernel_cmp(eqop, &isf) != GS_EQ)
		{
			*why = "a GROUP BY key compared with an equality other than its type's";
			return false;
		}
	}
	else if (get_opcode(eqop) != F_TEXTEQ && get_opcode(eqop) != F_BYTEAEQ)
	{
		*why = "a text GROUP BY key compared with an equality other than texteq";
		return false;
	}
	c = gs_input_col(gc, v->varattno, typid, dict ? GS_COL_DICT : GS_COL_VALUE, side_of(gc, v));
	if (c < 0)
	{
		*why = "the query reads more than 16 columns";
		return false;
	}
	gc->keycol[gc->nkeys] = c;
	gc->keytype[gc->nkeys] = v->vartype;
	gc->keynames = lappend(gc->keynames, makeString(column_name(gc, v)));
	gc->nkeys++;
	return true;
}

/* The argument expressions of an Aggref. */
static Expr *
agg_arg(Aggref *agg, int i)
{
	return ((TargetEntry *) list_nth(agg->args, i))->expr;
}

/*
 * Can the aggregate be split into a partial step (GpuPreAgg) and a Finalize
 * Agg?  That needs a combine function, and for an internal state serial and
 * deserial functions, exactly as for PostgreSQL's own partial aggregation
 * (which never splits other aggregates).  Planning one anyway built a
 * Finalize Agg that failed with "cache lookup failed for function 0".
 */
static bool
agg_is_splittable(Oid aggfnoid, const char **why)
{
	HeapTuple	tup = SearchSysCache1(AGGFNOID, ObjectIdGetDatum(aggfnoid));
	Form_pg_aggregate a;
	bool		ok = true;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for aggregate %u", aggfnoid);
	a = (Form_pg_aggregate) GETSTRUCT(tup);
	if (!OidIsValid(a->aggcombinefn))
	{
		*why = psprintf("aggregate %s has no combine function", format_procedure(aggfnoid));
		ok = false;
	}
	else if (a->aggtranstype == INTERNALOID && (!OidIsValid(a->aggserialfn) || !OidIsValid(a->aggdeserialfn)))
	{
		*why = psprintf("aggregate %s has an internal state without serial and deserial functions",
						format_procedure(aggfnoid));
		ok = false;
	}
	ReleaseSysCache(tup);
	return ok;
}

/* Is fn the C function symbol of this library (MODULE_PATHNAME)?  Only superusers create C functions. */
static bool
is_dfdw_c_function(Oid fn, const char *symbol)
{
	HeapTuple	tup;
	bool		ok = false;

	if (!OidIsValid(fn))
		return false;
	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
	if (!HeapTupleIsValid(tup))
		return false;
	if (((Form_pg_proc) GETSTRUCT(tup))->prolang == ClanguageId)
	{
		bool		isnull;
		Datum		src = SysCacheGetAttr(PROCOID, tup, Anum_pg_proc_prosrc, &isnull);
		Datum		bin = SysCacheGetAttr(PROCOID, tup, Anum_pg_proc_probin, &isnull);

		if (!isnull)
		{
			char	   *binstr = TextDatumGetCString(bin);
			size_t		n = strlen(binstr);

			ok = strcmp(TextDatumGetCString(src), symbol) == 0 &&
				n >= 10 && strcmp(binstr + n - 10, "dstack_fdw") == 0;
		}
	}
	ReleaseSysCache(tup);
	return ok;
}

/*
 * Map a DP aggregate to the kernel state it needs; 0 when it is not one the
 * kernels do.  The kernels emit states in dp_serialize()'s format, which
 * the Finalize Agg hands to the aggregate's deserial and final functions, so
 * the name is not enough: an aggregate called dp_count in the extension's
 * schema but with other support functions (or another signature) would be
 * fed a state it does not understand.  The transition, combine, serial and
 * deserial functions must be this library's, and the argument count the
 * kernel's.
 */
static char
dp_kind(Aggref *agg, const char **why)
{
	char	   *name = get_func_name(agg->aggfnoid);
	HeapTuple	tup;
	Form_pg_aggregate a;
	char		kind = 0;
	int			nargs = 0;

	if (!dfdw_dp_is_dp_aggregate(agg->aggfnoid) || name == NULL)
		return 0;
	if (strcmp(name, "dp_quantile") == 0)
	{
		*why = psprintf("%s keeps a histogram the kernels do not build", name);
		return 0;
	}
	tup = SearchSysCache1(AGGFNOID, ObjectIdGetDatum(agg->aggfnoid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for aggregate %u", agg->aggfnoid);
	a = (Form_pg_aggregate) GETSTRUCT(tup);
	if (is_dfdw_c_function(a->aggtransfn, "dfdw_dp_count_trans"))
		kind = 'c';
	else if (is_dfdw_c_function(a->aggtransfn, "dfdw_dp_sum_int8_trans"))
		kind = 'i';
	else if (is_dfdw_c_function(a->aggtransfn, "dfdw_dp_sum_float8_trans"))
		kind = 'f';
	nargs = kind == 'c' ? 2 : 4;
	if (kind == 0 || list_length(agg->args) != nargs || a->aggtranstype != INTERNALOID ||
		!is_dfdw_c_function(a->aggcombinefn, "dfdw_dp_combine") ||
		!is_dfdw_c_function(a->aggserialfn, "dfdw_dp_serialize") ||
		!is_dfdw_c_function(a->aggdeserialfn, "dfdw_dp_deserialize"))
	{
		*why = psprintf("aggregate %s is named like a DP aggregate but is not one of dstack_fdw's",
						format_procedure(agg->aggfnoid));
		kind = 0;
	}
	ReleaseSysCache(tup);
	return kind;
}

/*
 * Is the aggregate avg over integers ('i': int2_avg_accum or int4_avg_accum,
 * int4_avg_combine, int8_avg: an int8[] {count, sum}) or over floats ('f':
 * float4_accum or float8_accum, float8_combine, float8_avg: a float8[]
 * {N, Sx, Sxx})?  0 when not.  By the support functions and the initial
 * state, not the name: the kernels build exactly those states, which the
 * Finalize Agg combines and finishes with the aggregate's own functions.
 */
static char
avg_kind(Aggref *agg, const char **why)
{
	HeapTuple	tup = SearchSysCache1(AGGFNOID, ObjectIdGetDatum(agg->aggfnoid));
	Form_pg_aggregate a;
	char		kind = 0;
	const char *init = NULL;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for aggregate %u", agg->aggfnoid);
	a = (Form_pg_aggregate) GETSTRUCT(tup);
	if ((a->aggtransfn == F_INT2_AVG_ACCUM || a->aggtransfn == F_INT4_AVG_ACCUM) &&
		a->aggcombinefn == F_INT4_AVG_COMBINE && a->aggfinalfn == F_INT8_AVG && a->aggtranstype == INT8ARRAYOID)
	{
		kind = 'i';
		init = "{0,0}";
	}
	else if ((a->aggtransfn == F_FLOAT4_ACCUM || a->aggtransfn == F_FLOAT8_ACCUM) &&
			 a->aggcombinefn == F_FLOAT8_COMBINE && a->aggfinalfn == F_FLOAT8_AVG &&
			 a->aggtranstype == FLOAT8ARRAYOID)
	{
		kind = 'f';
		init = "{0,0,0}";
	}
	if (kind != 0)
	{
		bool		isnull;
		Datum		iv = SysCacheGetAttr(AGGFNOID, tup, Anum_pg_aggregate_agginitval, &isnull);

		if (isnull || strcmp(TextDatumGetCString(iv), init) != 0 || list_length(agg->args) != 1)
		{
			*why = psprintf("aggregate %s has avg's support functions but not its initial state %s",
							format_procedure(agg->aggfnoid), init);
			kind = 0;
		}
	}
	ReleaseSysCache(tup);
	return kind;
}

/*
 * Is the aggregate sum(int8) or avg(int8) as PostgreSQL builds it: an
 * int8_avg_accum state (a count and an int128 sum) that int8_avg_serialize
 * writes as the count then the sum as numericvar_serialize writes a number?
 * The kernels build that state (GS_AGG_SUM_I128) and gs_exec.c writes it in
 * that format, which sql/gpu_scan.sql checks against PostgreSQL 15's own
 * deserial function; on another major version the planner leaves these
 * aggregates to PostgreSQL until that is checked there.
 */
static bool
is_int8_poly_sum(Oid aggfnoid)
{
	HeapTuple	tup = SearchSysCache1(AGGFNOID, ObjectIdGetDatum(aggfnoid));
	Form_pg_aggregate a;
	bool		ok;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for aggregate %u", aggfnoid);
	a = (Form_pg_aggregate) GETSTRUCT(tup);
	ok = PG_VERSION_NUM < 160000 && a->aggtransfn == F_INT8_AVG_ACCUM && a->aggcombinefn == F_INT8_AVG_COMBINE &&
		a->aggserialfn == F_INT8_AVG_SERIALIZE && a->aggdeserialfn == F_INT8_AVG_DESERIALIZE &&
		a->aggtranstype == INTERNALOID;
	ReleaseSysCache(tup);
	return ok;
}

/* A text or varchar column (through its domain), or NULL. */
static Var *
text_column(GsCompiled *gc, Expr *e)
{
	Var		   *v = column_of(gc, e);
	Oid			t;

	if (v == NULL)
		return NULL;
	t = getBaseType(v->vartype);
	return (t == TEXTOID || t == VARCHAROID) ? v : NULL;
}

/*
 * Is e length(x), char_length(x), character_length(x) or octet_length(x) of
 * a text column of the streamed table?  Then *col is the column and *mode
 * GS_COL_CHARS or GS_COL_OCTETS, the int32 column the host builds for the
 * kernels.
 */
static bool
text_length_arg(GsCompiled *gc, Expr *e, Var **col, GsColMode *mode)
{
	FuncExpr   *f = (FuncExpr *) e;
	Var		   *v;

	if (e == NULL || !IsA(e, FuncExpr) || list_length(f->args) != 1)
		return false;
	if (f->funcid != F_LENGTH_TEXT && f->funcid != F_CHAR_LENGTH_TEXT && f->funcid != F_CHARACTER_LENGTH_TEXT &&
		f->funcid != F_OCTET_LENGTH_TEXT)
		return false;
	v = text_column(gc, linitial(f->args));
	if (v == NULL || side_of(gc, v) != 0)
		return false;
	*col = v;
	*mode = f->funcid == F_OCTET_LENGTH_TEXT ? GS_COL_OCTETS : GS_COL_CHARS;
	return true;
}

bool
gs_compile_aggref(GsCompiled *gc, Aggref *agg, const char **why)
{
	GsAgg	   *g = &gc->aggs[gc->naggs];
	Oid			fn = agg->aggfnoid;
	char		dk,
				ak;
	Var		   *v = NULL;
	Oid			argtype = InvalidOid;
	List	   *dpargs = NIL;
	GsColMode	lenmode = GS_COL_VALUE;
	bool		is_length = false;

	if (gc->naggs == GS_MAX_AGGS)
	{
		*why = "more than 16 aggregates";
		return false;
	}
	if (agg->aggdistinct || agg->aggorder || agg->aggfilter || agg->agglevelsup != 0 ||
		agg->aggkind != AGGKIND_NORMAL)
	{
		*why = "an aggregate with DISTINCT, ORDER BY or FILTER";
		return false;
	}
	if (!agg_is_splittable(fn, why))
		return false;
	memset(g, 0, sizeof(*g));
	g->col = -1;
	if (list_length(agg->args) >= 1 &&
		(is_length = text_length_arg(gc, strip_widening(agg_arg(agg, 0)), &v, &lenmode)))
	{
		/* an aggregate of length(x): the host counts, the kernels read int4 */
		argtype = INT4OID;
		g->col = gs_input_col(gc, v->varattno, INT4OID, lenmode, 0);
		if (g->col < 0)
		{
			*why = "the query reads more than 16 columns";
			return false;
		}
	}
	else if (list_length(agg->args) >= 1 && (fn == F_MIN_TEXT || fn == F_MAX_TEXT))
	{
		/*
		 * min/max of text: the host folds it (GS_AGG_HOST) in one running
		 * value, which serves one group only, comparing as text_smaller and
		 * text_larger do (varstr_cmp; bytes under "C").  A deterministic
		 * collation only: under another, strings that compare equal but
		 * differ would make the answer depend on the order rows arrive in.
		 */
		v = text_column(gc, agg_arg(agg, 0));
		if (v == NULL || side_of(gc, v) != 0)
		{
			*why = "min or max of text whose argument is not a text column of the streamed table";
			return false;
		}
		if (!OidIsValid(agg->inputcollid) || !get_collation_isdeterministic(agg->inputcollid))
		{
			*why = psprintf("min or max of text under the nondeterministic collation \"%s\"",
							OidIsValid(agg->inputcollid) ? get_collation_name(agg->inputcollid) : "none");
			return false;
		}
		if (gc->nkeys > 0 || OidIsValid(gc->inner_relid))
		{
			*why = "min or max of text with GROUP BY or a join";
			return false;
		}
		gc->aggcoll[gc->naggs] = agg->inputcollid;
		argtype = getBaseType(v->vartype);
		g->col = gs_input_col(gc, v->varattno, argtype, GS_COL_TEXT, 0);
		if (g->col < 0)
		{
			*why = "the query reads more than 16 columns";
			return false;
		}
	}
	else if (list_length(agg->args) >= 1)
	{
		v = column_of(gc, strip_widening(agg_arg(agg, 0)));
		if (v == NULL)
		{
			*why = "an aggregate's argument is not a column of the sealed table";
			return false;
		}
		argtype = getBaseType(v->vartype);
		/* count(x) and dp_count(x) of any type need only x's NULLs */
		if (fn == F_COUNT_ANY || (dfdw_dp_is_dp_aggregate(fn) && list_length(agg->args) == 2))
			g->col = gs_input_col(gc, v->varattno, argtype,
								  kind_of_type(argtype) ? GS_COL_VALUE : GS_COL_NULLS, side_of(gc, v));
		else if (kind_of_type(argtype) == 0)
		{
			*why = psprintf("an aggregate over a %s column", format_type_be(v->vartype));
			return false;
		}
		else
			g->col = gs_input_col(gc, v->varattno, argtype, GS_COL_VALUE, side_of(gc, v));
		if (g->col < 0)
		{
			*why = "the query reads more than 16 columns";
			return false;
		}
	}
	gc->dpkind[gc->naggs] = 0;
	gc->aggouttype[gc->naggs] = agg->aggtype;
	switch (fn)
	{
		case F_COUNT_:
			g->op = GS_AGG_COUNT_STAR;
			gc->aggouttype[gc->naggs] = INT8OID;
			break;
		case F_COUNT_ANY:
			g->op = GS_AGG_COUNT;
			gc->aggouttype[gc->naggs] = INT8OID;
			break;
		case F_SUM_INT2:
		case F_SUM_INT4:
			g->op = GS_AGG_SUM_I64;
			gc->aggouttype[gc->naggs] = INT8OID;
			break;
		case F_SUM_FLOAT8:
			g->op = GS_AGG_SUM_F64;
			break;
		case F_SUM_INT8:
		case F_AVG_INT8:
			if (kind_of_type(argtype) != GS_I64 || !is_int8_poly_sum(fn))
			{
				*why = psprintf("%s: not int8_avg_accum's state over an int8 column", format_procedure(fn));
				return false;
			}
			g->op = GS_AGG_SUM_I128;
			gc->aggouttype[gc->naggs] = BYTEAOID;	/* int8_avg_serialize's */
			break;
		case F_MIN_TEXT:
		case F_MAX_TEXT:
			g->op = GS_AGG_HOST;
			g->lo_i = fn == F_MIN_TEXT ? -1 : 1;
			break;
		case F_MIN_INT2:
		case F_MIN_INT4:
		case F_MIN_INT8:
		case F_MIN_DATE:
		case F_MIN_TIMESTAMP:
		case F_MIN_TIMESTAMPTZ:
			g->op = GS_AGG_MIN_I64;
			break;
		case F_MAX_INT2:
		case F_MAX_INT4:
		case F_MAX_INT8:
		case F_MAX_DATE:
		case F_MAX_TIMESTAMP:
		case F_MAX_TIMESTAMPTZ:
			g->op = GS_AGG_MAX_I64;
			break;
		case F_MIN_FLOAT4:
		case F_MIN_FLOAT8:
			g->op = GS_AGG_MIN_F64;
			break;
		case F_MAX_FLOAT4:
		case F_MAX_FLOAT8:
			g->op = GS_AGG_MAX_F64;
			break;
		default:
			ak = avg_kind(agg, why);
			if (ak == 'i' && gs_kind_is_float(kind_of_type(argtype)))
			{
				*why = "avg over integers of a float column";
				return false;
			}
			if (ak != 0)
			{
				/* avg(int2|int4) needs what sum does: count and a wrapping int64 sum */
				g->op = ak == 'i' ? GS_AGG_SUM_I64 : GS_AGG_AVG_F64;
				gc->aggouttype[gc->naggs] = ak == 'i' ? INT8ARRAYOID : FLOAT8ARRAYOID;
				break;
			}
			if (*why != NULL)
				return false;
			dk = dp_kind(agg, why);
			if (dk == 0)
			{
				if (*why == NULL)
					*why = psprintf("aggregate %s has no kernel", format_procedure(fn));
				return false;
			}
			for (int i = 1; i < list_length(agg->args); i++)
			{
				Expr	   *a = agg_arg(agg, i);

				if (!IsA(a, Const))
				{
					*why = "a DP aggregate's epsilon or bounds are not constants";
					return false;
				}
				dpargs = lappend(dpargs, a);
			}
			gc->dpkind[gc->naggs] = dk;
			gc->aggouttype[gc->naggs] = BYTEAOID;
			g->op = dk == 'c' ? GS_AGG_DP_COUNT : dk == 'i' ? GS_AGG_DP_SUM_I64 : GS_AGG_DP_SUM_F64;
			if (dk == 'i' && gs_kind_is_float(kind_of_type(argtype)))
			{
				*why = "dp_sum(int8) over a float column";
				return false;
			}
			break;
	}
	gc->dpargs = lappend(gc->dpargs, dpargs);
	gc->aggnames = lappend(gc->aggnames,
						   makeString(is_length
									  ? psprintf("%s(%s(%s))", get_func_name(fn),
												 lenmode == GS_COL_OCTETS ? "octet_length" : "length",
												 column_name(gc, v))
									  : psprintf("%s(%s)", get_func_name(fn), v ? column_name(gc, v) : "*")));
	gc->naggs++;
	return true;
}

/* ---- custom_private ------------------------------------------------------- */

/* The fixed part travels as one bytea constant (no pointers in it), the rest as node lists. */
#define GS_FIXED_BYTES offsetof(GsCompiled, dpargs)

List *
gs_compiled_to_list(const GsCompiled *gc)
{
	bytea	   *b = palloc(VARHDRSZ + GS_FIXED_BYTES);

	SET_VARSIZE(b, VARHDRSZ + GS_FIXED_BYTES);
	memcpy(VARDATA(b), gc, GS_FIXED_BYTES);
	return list_make5(makeConst(BYTEAOID, -1, InvalidOid, -1, PointerGetDatum(b), false, false),
					  gc->dpargs, gc->aggnames, gc->keynames, makeString(gc->join_text ? gc->join_text : ""));
}

void
gs_compiled_from_list(List *l, GsCompiled *gc)
{
	bytea	   *b = DatumGetByteaPP(((Const *) linitial(l))->constvalue);

	Assert(VARSIZE_ANY_EXHDR(b) == GS_FIXED_BYTES);
	memcpy(gc, VARDATA_ANY(b), GS_FIXED_BYTES);
	gc->dpargs = lsecond(l);
	gc->aggnames = lthird(l);
	gc->keynames = lfourth(l);
	gc->join_text = strVal(list_nth(l, 4));
	gc->filter_quals = NIL;		/* the plan keeps them in custom_exprs */
}
