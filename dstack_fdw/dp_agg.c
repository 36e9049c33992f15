/*
 * dp_agg.c: the differentially private aggregates dp_count, dp_sum, dp_avg.
 *
 * These are the only aggregates the output guard lets a query over sealed
 * tables compute (docs/output-guard.md).  Each keeps an exact integer state
 * (true count, clamped sum in fixed-point units), adds integer-exact discrete
 * Laplace noise once, in the final function (../common/dp.c).  A group
 * without rows gets noise too, never NULL: the aggregate reads its constant
 * epsilon and bounds from its Aggref when no row brought them.
 *
 * Units and sensitivities
 *   dp_count(x, eps)              count of non-NULL x; Laplace scale 1/eps.
 *   dp_sum(int8, lo, hi, eps)     values clamped into [lo, hi], exact int128
 *                                 sum; scale max(|lo|,|hi|)/eps; numeric.
 *   dp_sum(float8, lo, hi, eps)   values clamped, then fixed-point at 1e-6
 *                                 (round half even); noise drawn in the same
 *                                 1e-6 units with scale max(|lo|,|hi|)/eps;
 *                                 |lo|, |hi| <= 1e12.  NaN counts as NULL.
 *   dp_avg(float8, lo, hi, eps)   noisy sum (eps/2) / noisy count (eps/2),
 *                                 count floored at 1, result clamped to [lo, hi].
 *
 * epsilon is used rounded to millionths (the same rounding guard.c charges
 * the budget with), must lie in (0, 100], and must be the same on every row
 * of a group, as must the bounds (SQLSTATE 22023 otherwise).
 *
 * Contribution bounding is not done here: an aggregate sees no privacy unit
 * it could bound by.  The guard/rewriter caps each unit's rows in SQL before
 * aggregation (ROW_NUMBER() OVER (PARTITION BY unit) <= k); the sensitivities
 * above are per row, so with k rows per unit the effective epsilon of each
 * aggregate is k * eps and the caller must charge it that way.
 *
 * Which groups are released at all is decided by dstack_run() (run.c), by DP
 * partition selection on a noisy count: the aggregates never suppress.
 * Their error messages never print a value they were given.
 *
 * Randomness is the CSPRNG, except when the superuser-only test GUC
 * dstack_fdw.dp_test_seed is set (regression tests); see dp.h.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/dependency.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "fmgr.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/syscache.h"

#include "dp.h"
#include "dstack_fdw.h"
#include "hex.h"
#include "pg_common.h"

/* fixed-point resolution of float8 sums: 1 unit = 1e-6 */
#define DP_FLOAT_SCALE	1000000.0
#define DP_FLOAT_SCALE_I 1000000
/* largest |bound| of a float8 sum, so one clamped value fits 1e18 units */
#define DP_FLOAT_MAX_BOUND 1e12
/* epsilon is carried in millionths */
#define DP_EPS_DEN		1000000
#define DP_EPS_MAX		100.0

void		dfdw_dp_init_gucs(void);
bool		dfdw_dp_is_dp_aggregate(Oid aggfnoid);

/* ---- GUCs --------------------------------------------------------------- */

static char *dp_test_seed_guc = NULL;
static bool dp_seed_dirty = false;	/* the GUC changed since we last applied it */

/* The test seed must be empty or exactly 32 bytes of hex. */
static bool
check_test_seed(char **newval, void **extra, GucSource source)
{
	uint8_t		seed[DP_SEED_LEN];
	DErr		err = {0};

	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	if (!dhex_decode_exact(*newval, seed, sizeof(seed), "dstack_fdw.dp_test_seed", &err))
	{
		GUC_check_errdetail("The seed must be 64 hexadecimal digits (32 bytes), or empty for the CSPRNG.");
		return false;
	}
	explicit_bzero(seed, sizeof(seed));
	return true;
}

/* Assign hooks must not fail: just note that the stream must be re-keyed. */
static void
assign_test_seed(const char *newval, void *extra)
{
	dp_seed_dirty = true;
}

static void dp_agg_cache_inval(Datum arg, int cacheid, uint32 hashvalue);

/*
 * Define the DP GUCs.  Called from _PG_init() (dstack_fdw.c) before
 * MarkGUCPrefixReserved("dstack_fdw"); also registers the invalidation
 * callback of the DP-aggregate cache.
 */
void
dfdw_dp_init_gucs(void)
{
	DefineCustomStringVariable("dstack_fdw.dp_test_seed",
							   "Test only: draw DP noise from ChaCha20 keyed by this 32-byte hex seed.",
							   "Empty (the default) means the CSPRNG, which every deployment must use: "
							   "with a known seed the noise can be subtracted. Regression tests set it "
							   "to get reproducible results.",
							   &dp_test_seed_guc, "", PGC_SUSET, GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
							   check_test_seed, assign_test_seed, NULL);
	CacheRegisterSyscacheCallback(PROCOID, dp_agg_cache_inval, (Datum) 0);
}

/* Is the noise drawn from the test seed (a receipt must say so)? */
bool
dfdw_dp_seeded(void)
{
	return dp_test_seed_guc != NULL && dp_test_seed_guc[0] != '\0';
}

/* Key or un-key the sampler stream if the seed GUC changed; called before any draw. */
void
dfdw_dp_apply_seed(void)
{
	DErr		err = {0};
	uint8_t		seed[DP_SEED_LEN];

	if (!dp_seed_dirty)
		return;
	dp_seed_dirty = false;
	if (dp_test_seed_guc == NULL || dp_test_seed_guc[0] == '\0')
	{
		dp_clear_test_seed();
		return;
	}
	if (!dhex_decode_exact(dp_test_seed_guc, seed, sizeof(seed), "dstack_fdw.dp_test_seed", &err) ||
		!dp_set_test_seed(seed, &err))
	{
		explicit_bzero(seed, sizeof(seed));
		derr_ereport(&err, 0, "Reset dstack_fdw.dp_test_seed to the empty string.");
	}
	explicit_bzero(seed, sizeof(seed));
}

/* ---- recognising DP aggregates (for the guard) ---------------------------- */

#define DP_AGG_CACHE 32

typedef struct DpAggCacheEntry
{
	Oid			fn;
	DfdwDpKind	kind;
} DpAggCacheEntry;

static DpAggCacheEntry dp_agg_cache[DP_AGG_CACHE];
static int	dp_agg_cache_n = 0;

/* Any pg_proc change may rename or drop a function: forget everything. */
static void
dp_agg_cache_inval(Datum arg, int cacheid, uint32 hashvalue)
{
	dp_agg_cache_n = 0;
}

/*
 * Which DP aggregate of this extension aggfnoid is (DFDW_DP_NONE: none).
 * Membership is read from pg_depend (the function belongs to the extension),
 * never from a name: an analyst's own "dp_count", in whatever schema, is
 * not one.  The answer is cached by OID and flushed on any pg_proc change.
 */
DfdwDpKind
dfdw_dp_kind(Oid aggfnoid)
{
	static Oid	ext_cached = InvalidOid;
	DfdwDpKind	kind = DFDW_DP_NONE;
	Oid			ext;

	for (int i = 0; i < dp_agg_cache_n; i++)
		if (dp_agg_cache[i].fn == aggfnoid)
			return dp_agg_cache[i].kind;
	ext = get_extension_oid("dstack_fdw", true);
	if (ext != ext_cached)
		ext_cached = ext;
	if (OidIsValid(ext) && get_func_prokind(aggfnoid) == PROKIND_AGGREGATE &&
		getExtensionOfObject(ProcedureRelationId, aggfnoid) == ext)
	{
		char	   *name = get_func_name(aggfnoid);
		Oid			rettype = get_func_rettype(aggfnoid);
		int			nargs = get_func_nargs(aggfnoid);

		if (strcmp(name, "dp_count") == 0 && nargs == 2)
			kind = DFDW_DP_COUNT;
		else if (strcmp(name, "dp_sum") == 0 && nargs == 4)
			kind = rettype == NUMERICOID ? DFDW_DP_SUM_INT8 : DFDW_DP_SUM_FLOAT8;
		else if (strcmp(name, "dp_avg") == 0 && nargs == 4)
			kind = DFDW_DP_AVG;
		else if (strcmp(name, "dp_quantile") == 0 && nargs == 5)
			kind = DFDW_DP_QUANTILE;
		pfree(name);
	}
	if (dp_agg_cache_n == DP_AGG_CACHE)
		dp_agg_cache_n = 0;
	dp_agg_cache[dp_agg_cache_n].fn = aggfnoid;
	dp_agg_cache[dp_agg_cache_n].kind = kind;
	dp_agg_cache_n++;
	return kind;
}

/* Is aggfnoid one of this extension's DP aggregates? */
bool
dfdw_dp_is_dp_aggregate(Oid aggfnoid)
{
	return dfdw_dp_kind(aggfnoid) != DFDW_DP_NONE;
}

/*
 * The constant arguments 1..n of the DP aggregate being finalised, from its
 * Aggref (for a group no row reached, whose state is empty).  False when
 * they are not all constants (then the group cannot be noised here).
 */
bool
dfdw_dp_const_args(FunctionCallInfo fcinfo, Datum *vals, bool *nulls, int n)
{
	Aggref	   *a = AggGetAggref(fcinfo);

	if (a == NULL || list_length(a->args) != n + 1)
		return false;
	for (int i = 0; i < n; i++)
	{
		TargetEntry *tle = list_nth(a->args, i + 1);

		if (!IsA(tle->expr, Const))
			return false;
		vals[i] = ((Const *) tle->expr)->constvalue;
		nulls[i] = ((Const *) tle->expr)->constisnull;
	}
	return true;
}

/* ---- state ---------------------------------------------------------------- */

/*
 * One state for all three aggregates.  Plain int64 fields (the sum split in
 * two halves) so serialisation for parallel workers is a fixed layout.
 */
typedef struct DpAggState
{
	int64		count;			/* true number of non-NULL values */
	int64		sum_hi;			/* clamped sum (units), high 64 bits, signed */
	uint64		sum_lo;			/* low 64 bits */
	int64		eps_micro;		/* epsilon in millionths; 0 = not seen yet */
	int64		lower;			/* bounds in units; valid when has_bounds */
	int64		upper;
	int64		has_bounds;
	/*
	 * The raw epsilon and bounds of the row that validated them, so that the
	 * next rows skip the checks when theirs are the same bits (not carried
	 * by serialize: a deserialized state validates again).
	 */
	bool		args_seen;
	Datum		seen_eps;
	Datum		seen_lo;
	Datum		seen_hi;
} DpAggState;

/*
 * The state of this group when its epsilon (argument eps_arg) and bounds
 * (arguments 2 and 3, when lo_hi) are the very values an earlier row of the
 * group validated; NULL when the checks must run.  Most rows take this path:
 * the arguments are constants.
 */
static inline DpAggState *
validated_state(FunctionCallInfo fcinfo, int eps_arg, bool lo_hi)
{
	DpAggState *s;

	if (PG_ARGISNULL(0))
		return NULL;
	s = (DpAggState *) PG_GETARG_POINTER(0);
	if (!s->args_seen || PG_ARGISNULL(eps_arg) || PG_GETARG_DATUM(eps_arg) != s->seen_eps)
		return NULL;
	if (lo_hi && (PG_ARGISNULL(2) || PG_ARGISNULL(3) ||
				  PG_GETARG_DATUM(2) != s->seen_lo || PG_GETARG_DATUM(3) != s->seen_hi))
		return NULL;
	return s;
}

/* This row's arguments passed every check: later rows with the same ones skip them. */
static inline void
remember_args(DpAggState *s, FunctionCallInfo fcinfo, int eps_arg, bool lo_hi)
{
	s->seen_eps = PG_GETARG_DATUM(eps_arg);
	if (lo_hi)
	{
		s->seen_lo = PG_GETARG_DATUM(2);
		s->seen_hi = PG_GETARG_DATUM(3);
	}
	s->args_seen = true;
}

/* The sum as one 128-bit integer. */
static dp_i128
state_sum(const DpAggState *s)
{
	return (dp_i128) (((dp_u128) (uint64) s->sum_hi << 64) | s->sum_lo);
}

/* Store a 128-bit sum back into the two halves. */
static void
state_set_sum(DpAggState *s, dp_i128 v)
{
	s->sum_hi = (int64) (v >> 64);
	s->sum_lo = (uint64) v;
}

/* The aggregate memory context; transition functions may not run elsewhere. */
static MemoryContext
agg_context(FunctionCallInfo fcinfo, const char *fn)
{
	MemoryContext ctx;

	if (!AggCheckCallContext(fcinfo, &ctx))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s called in a non-aggregate context", fn),
				 errdetail("This function is the transition, combine or serial function of a DP aggregate."),
				 errhint("Call dp_count, dp_sum or dp_avg instead.")));
	return ctx;
}

/* The state of this group, created empty on the first row. */
static DpAggState *
get_state(FunctionCallInfo fcinfo, const char *fn)
{
	MemoryContext ctx = agg_context(fcinfo, fn);

	if (PG_ARGISNULL(0))
		return (DpAggState *) MemoryContextAllocZero(ctx, sizeof(DpAggState));
	return (DpAggState *) PG_GETARG_POINTER(0);
}

/*
 * Validate epsilon and fix it for the group: the budget is charged per
 * aggregate before the query runs, so a value that varies by row would
 * spend something nobody charged.
 */
int64
dfdw_dp_epsilon_micro(double eps)
{
	int64		micro;

	if (isnan(eps) || !(eps > 0) || eps > DP_EPS_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("epsilon must be greater than 0 and at most %g", DP_EPS_MAX),
				 errhint("Use a small positive epsilon such as 0.1 to 1.")));
	micro = (int64) (eps * DP_EPS_DEN + 0.5);
	if (micro < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("epsilon must be at least 0.000001"),
				 errdetail("Epsilon is used rounded to millionths; this one rounds to 0."),
				 errhint("Use a larger epsilon.")));
	return micro;
}

/* Raise the NULL-epsilon error. */
static void
epsilon_null_error(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("epsilon of a DP aggregate must not be NULL"),
			 errdetail("The privacy budget is charged by epsilon, so it must be a number."),
			 errhint("Pass a constant such as 0.5.")));
}

static void
note_epsilon(DpAggState *s, FunctionCallInfo fcinfo, int argno)
{
	int64		micro;

	if (PG_ARGISNULL(argno))
		epsilon_null_error();
	micro = dfdw_dp_epsilon_micro(PG_GETARG_FLOAT8(argno));
	if (s->eps_micro == 0)
		s->eps_micro = micro;
	else if (s->eps_micro != micro)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("epsilon must be the same for every row of a group"),
				 errdetail("The privacy budget is charged by one epsilon per aggregate."),
				 errhint("Pass epsilon as a constant, not a column or expression.")));
}

/* Fix the bounds (in units) for the group; they must not vary either. */
static void
note_bounds(DpAggState *s, int64 lower, int64 upper)
{
	if (!s->has_bounds)
	{
		s->lower = lower;
		s->upper = upper;
		s->has_bounds = 1;
	}
	else if (s->lower != lower || s->upper != upper)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the bounds of a DP aggregate must be the same for every row of a group"),
				 errdetail("The noise is scaled to the bounds, so bounds that depend on the data would leak it."),
				 errhint("Pass lower and upper as constants.")));
}

/* The SQL name of the aggregate being computed, for error messages only. */
static const char *
agg_name(FunctionCallInfo fcinfo)
{
	Aggref	   *a = AggGetAggref(fcinfo);
	char	   *n = a ? get_func_name(a->aggfnoid) : NULL;

	return n ? n : "dp_sum";
}

/* Both bounds given; the message names the aggregate. */
static void
bounds_null_error(const char *fn)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("bounds of %s must not be NULL", fn),
				 errdetail("Every value is clamped into [lower, upper] and the noise is scaled to them."),
				 errhint("Pass constant bounds, e.g. %s(age, 0, 120, 0.5).", fn)));
}

static void
check_bounds_present(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(2) || PG_ARGISNULL(3))
		bounds_null_error(agg_name(fcinfo));
}

/*
 * Raise the lower >= upper error.  Never with the values: a bound taken
 * from a column would otherwise be printed.
 */
static void
bounds_order_error(const char *fn)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("lower bound of %s must be less than its upper bound", fn),
			 errhint("Swap the bounds or widen the range; pass them as constants.")));
}

/* ---- transition functions ------------------------------------------------- */

PG_FUNCTION_INFO_V1(dfdw_dp_count_trans);
PG_FUNCTION_INFO_V1(dfdw_dp_sum_int8_trans);
PG_FUNCTION_INFO_V1(dfdw_dp_sum_float8_trans);
PG_FUNCTION_INFO_V1(dfdw_dp_combine);
PG_FUNCTION_INFO_V1(dfdw_dp_serialize);
PG_FUNCTION_INFO_V1(dfdw_dp_deserialize);
PG_FUNCTION_INFO_V1(dfdw_dp_count_final);
PG_FUNCTION_INFO_V1(dfdw_dp_sum_int8_final);
PG_FUNCTION_INFO_V1(dfdw_dp_sum_float8_final);
PG_FUNCTION_INFO_V1(dfdw_dp_avg_final);

/* dp_count(anyelement, float8): count non-NULL values. */
Datum
dfdw_dp_count_trans(PG_FUNCTION_ARGS)
{
	DpAggState *s = validated_state(fcinfo, 2, false);

	if (s == NULL)
	{
		s = get_state(fcinfo, "dfdw_dp_count_trans");
		note_epsilon(s, fcinfo, 2);
		remember_args(s, fcinfo, 2, false);
	}
	if (!PG_ARGISNULL(1))
		s->count++;
	PG_RETURN_POINTER(s);
}

/* dp_sum(int8, int8, int8, float8): clamp and add exactly. */
Datum
dfdw_dp_sum_int8_trans(PG_FUNCTION_ARGS)
{
	DpAggState *s = validated_state(fcinfo, 4, true);
	int64		lo,
				hi,
				v;

	if (s == NULL)
	{
		s = get_state(fcinfo, "dfdw_dp_sum_int8_trans");
		note_epsilon(s, fcinfo, 4);
		check_bounds_present(fcinfo);
		lo = PG_GETARG_INT64(2);
		hi = PG_GETARG_INT64(3);
		if (lo >= hi)
			bounds_order_error(agg_name(fcinfo));
		note_bounds(s, lo, hi);
		remember_args(s, fcinfo, 4, true);
	}
	lo = s->lower;
	hi = s->upper;
	if (PG_ARGISNULL(1))
		PG_RETURN_POINTER(s);
	v = PG_GETARG_INT64(1);
	v = v < lo ? lo : (v > hi ? hi : v);
	state_set_sum(s, state_sum(s) + v);
	s->count++;
	PG_RETURN_POINTER(s);
}

/*
 * A float bound in 1e-6 units, after checking it is finite and not too
 * large.  fn is the aggregate's name, or NULL to look it up from fcinfo
 * (only when the bound is refused: a per-row catalog lookup is expensive).
 */
static int64
float_bound_units(const char *fn, FunctionCallInfo fcinfo, double b)
{
	if (isnan(b) || isinf(b) || fabs(b) > DP_FLOAT_MAX_BOUND)
	{
		if (fn == NULL)
			fn = agg_name(fcinfo);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("bounds of %s must be finite and at most 1e12 in absolute value", fn),
				 errdetail("float8 values are summed exactly in units of 1e-6."),
				 errhint("Rescale the column or use the int8 form of dp_sum.")));
	}
	return (int64) rint(b * DP_FLOAT_SCALE);
}

/*
 * dp_sum(float8, ...) and dp_avg(float8, ...): clamp, then fixed-point at
 * 1e-6 so that the sum (and the noise added to it) are exact integers.
 */
Datum
dfdw_dp_sum_float8_trans(PG_FUNCTION_ARGS)
{
	DpAggState *s = validated_state(fcinfo, 4, true);
	double		lo,
				hi,
				v;
	int64		lo_u,
				hi_u,
				u;

	if (s == NULL)
	{
		s = get_state(fcinfo, "dfdw_dp_sum_float8_trans");
		note_epsilon(s, fcinfo, 4);
		check_bounds_present(fcinfo);
		lo = PG_GETARG_FLOAT8(2);
		hi = PG_GETARG_FLOAT8(3);
		lo_u = float_bound_units(NULL, fcinfo, lo);
		hi_u = float_bound_units(NULL, fcinfo, hi);
		if (!(lo < hi) || lo_u >= hi_u)
			bounds_order_error(agg_name(fcinfo));
		note_bounds(s, lo_u, hi_u);
		remember_args(s, fcinfo, 4, true);
	}
	lo = DatumGetFloat8(s->seen_lo);
	hi = DatumGetFloat8(s->seen_hi);
	lo_u = s->lower;
	hi_u = s->upper;
	if (PG_ARGISNULL(1))
		PG_RETURN_POINTER(s);
	v = PG_GETARG_FLOAT8(1);
	if (isnan(v))
		PG_RETURN_POINTER(s);	/* NaN has no place in [lo, hi]: treated as NULL */
	v = v < lo ? lo : (v > hi ? hi : v);
	u = (int64) rint(v * DP_FLOAT_SCALE);
	u = u < lo_u ? lo_u : (u > hi_u ? hi_u : u);
	state_set_sum(s, state_sum(s) + u);
	s->count++;
	PG_RETURN_POINTER(s);
}

/* ---- for gpu_scan: the same checks and the same partial state ------------- */

/*
 * Check a DP aggregate's constant arguments as its transition function
 * would on the first row, and return them in state units.  kind: 'c'
 * dp_count, 'i' dp_sum(int8), 'f' dp_sum/dp_avg(float8).
 */
void
dfdw_dp_check_args(const char *fn, char kind, bool eps_null, double eps, bool lo_null, Datum lo,
				   bool hi_null, Datum hi, DfdwDpArgs *out)
{
	memset(out, 0, sizeof(*out));
	if (eps_null)
		epsilon_null_error();
	out->eps_micro = dfdw_dp_epsilon_micro(eps);
	if (kind == 'c')
		return;
	if (lo_null || hi_null)
		bounds_null_error(fn);
	if (kind == 'i')
	{
		out->lower = DatumGetInt64(lo);
		out->upper = DatumGetInt64(hi);
		if (out->lower >= out->upper)
			bounds_order_error(fn);
		return;
	}
	out->lower_f = DatumGetFloat8(lo);
	out->upper_f = DatumGetFloat8(hi);
	out->lower = float_bound_units(fn, NULL, out->lower_f);
	out->upper = float_bound_units(fn, NULL, out->upper_f);
	if (!(out->lower_f < out->upper_f) || out->lower >= out->upper)
		bounds_order_error(fn);
}

/*
 * A DP aggregate's partial state, serialised as dp_serialize does (the
 * finalize step deserialises it like a parallel worker's).
 */
bytea *
dfdw_dp_partial_state(int64 count, int64 sum_hi, uint64 sum_lo, const DfdwDpArgs *args, bool has_bounds)
{
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendint64(&buf, count);
	pq_sendint64(&buf, sum_hi);
	pq_sendint64(&buf, (int64) sum_lo);
	pq_sendint64(&buf, args->eps_micro);
	pq_sendint64(&buf, has_bounds ? args->lower : 0);
	pq_sendint64(&buf, has_bounds ? args->upper : 0);
	pq_sendint64(&buf, has_bounds ? 1 : 0);
	return pq_endtypsend(&buf);
}

/* ---- parallel support ------------------------------------------------------ */

/* Merge two partial states (parallel workers); parameters must agree. */
Datum
dfdw_dp_combine(PG_FUNCTION_ARGS)
{
	MemoryContext ctx = agg_context(fcinfo, "dfdw_dp_combine");
	DpAggState *a = PG_ARGISNULL(0) ? NULL : (DpAggState *) PG_GETARG_POINTER(0);
	DpAggState *b = PG_ARGISNULL(1) ? NULL : (DpAggState *) PG_GETARG_POINTER(1);

	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(a);
	}
	if (a == NULL)
	{
		a = (DpAggState *) MemoryContextAlloc(ctx, sizeof(DpAggState));
		memcpy(a, b, sizeof(DpAggState));
		PG_RETURN_POINTER(a);
	}
	if (a->eps_micro == 0)
		a->eps_micro = b->eps_micro;
	else if (b->eps_micro != 0 && a->eps_micro != b->eps_micro)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("epsilon must be the same for every row of a group"),
				 errdetail("Parallel workers saw different values."),
				 errhint("Pass epsilon as a constant, not a column or expression.")));
	if (b->has_bounds)
		note_bounds(a, b->lower, b->upper);
	a->count += b->count;
	state_set_sum(a, state_sum(a) + state_sum(b));
	PG_RETURN_POINTER(a);
}

/* State to bytea for the trip from a parallel worker to the leader. */
Datum
dfdw_dp_serialize(PG_FUNCTION_ARGS)
{
	DpAggState *s = (DpAggState *) PG_GETARG_POINTER(0);
	StringInfoData buf;

	(void) agg_context(fcinfo, "dfdw_dp_serialize");
	pq_begintypsend(&buf);
	pq_sendint64(&buf, s->count);
	pq_sendint64(&buf, s->sum_hi);
	pq_sendint64(&buf, (int64) s->sum_lo);
	pq_sendint64(&buf, s->eps_micro);
	pq_sendint64(&buf, s->lower);
	pq_sendint64(&buf, s->upper);
	pq_sendint64(&buf, s->has_bounds);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* bytea back to a state, in the aggregate context. */
Datum
dfdw_dp_deserialize(PG_FUNCTION_ARGS)
{
	MemoryContext ctx = agg_context(fcinfo, "dfdw_dp_deserialize");
	bytea	   *b = PG_GETARG_BYTEA_PP(0);
	DpAggState *s = (DpAggState *) MemoryContextAllocZero(ctx, sizeof(DpAggState));
	StringInfoData buf;

	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b));
	s->count = pq_getmsgint64(&buf);
	s->sum_hi = pq_getmsgint64(&buf);
	s->sum_lo = (uint64) pq_getmsgint64(&buf);
	s->eps_micro = pq_getmsgint64(&buf);
	s->lower = pq_getmsgint64(&buf);
	s->upper = pq_getmsgint64(&buf);
	s->has_bounds = pq_getmsgint64(&buf);
	pq_getmsgend(&buf);
	pfree(buf.data);
	PG_RETURN_POINTER(s);
}

/* ---- final functions (noise, once) ---------------------------------------- */

/*
 * The state to noise.  A group no row reached (an empty input without
 * GROUP BY) has no state: it is built from the Aggref's constant epsilon and
 * bounds with a zero count and sum, so the answer is noise, never NULL
 * (NULL would say "no rows" exactly).  NULL only when the arguments are not
 * constants, which dstack_run() never lets through.
 */
static DpAggState *
releasable(FunctionCallInfo fcinfo)
{
	DpAggState *s = PG_ARGISNULL(0) ? NULL : (DpAggState *) PG_GETARG_POINTER(0);
	Datum		v[3];
	bool		n[3];
	DfdwDpArgs	args;
	Aggref	   *a;
	DfdwDpKind	kind;

	if (s != NULL && s->eps_micro != 0)
		return s;
	a = AggGetAggref(fcinfo);
	if (a == NULL)
		return NULL;
	kind = dfdw_dp_kind(a->aggfnoid);
	if (kind == DFDW_DP_COUNT)
	{
		if (!dfdw_dp_const_args(fcinfo, v, n, 1))
			return NULL;
		dfdw_dp_check_args("dp_count", 'c', n[0], n[0] ? 0 : DatumGetFloat8(v[0]), true, 0, true, 0, &args);
	}
	else if (kind == DFDW_DP_SUM_INT8 || kind == DFDW_DP_SUM_FLOAT8 || kind == DFDW_DP_AVG)
	{
		if (!dfdw_dp_const_args(fcinfo, v, n, 3))
			return NULL;
		dfdw_dp_check_args(kind == DFDW_DP_AVG ? "dp_avg" : "dp_sum", kind == DFDW_DP_SUM_INT8 ? 'i' : 'f',
						   n[2], n[2] ? 0 : DatumGetFloat8(v[2]), n[0], v[0], n[1], v[1], &args);
	}
	else
		return NULL;
	s = palloc0(sizeof(DpAggState));
	s->eps_micro = args.eps_micro;
	s->lower = args.lower;
	s->upper = args.upper;
	s->has_bounds = kind != DFDW_DP_COUNT;
	return s;
}

/*
 * Discrete Laplace noise for sensitivity delta (units) at epsilon =
 * eps_micro / eps_den: exact scale delta * eps_den / eps_micro.
 */
static dp_i128
laplace_noise(dp_u128 delta, int64 eps_micro, uint64 eps_den)
{
	DErr		err = {0};
	dp_u128		t_num,
				t_den;
	dp_i128		noise;

	dfdw_dp_apply_seed();
	if (!dp_laplace_scale(delta, 1, (uint64) eps_micro, eps_den, &t_num, &t_den, &err) ||
		!dp_discrete_laplace_wide(t_num, t_den, &noise, &err))
		derr_ereport(&err, ERRCODE_INTERNAL_ERROR, "Narrow the bounds or raise epsilon.");
	return noise;
}

/*
 * Discrete Laplace noise of scale sensitivity / (eps_micro / 1e6), for
 * dstack_run()'s partition selection (the same sampler as the aggregates).
 */
dp_i128
dfdw_dp_laplace(dp_u128 sensitivity, int64 eps_micro)
{
	return laplace_noise(sensitivity, eps_micro, DP_EPS_DEN);
}

/* Sensitivity of a clamped sum: the larger absolute bound (never 0 as lower < upper). */
static dp_u128
sum_sensitivity(const DpAggState *s)
{
	dp_u128		l = s->lower < 0 ? (dp_u128) (-(dp_i128) s->lower) : (dp_u128) s->lower;
	dp_u128		u = s->upper < 0 ? (dp_u128) (-(dp_i128) s->upper) : (dp_u128) s->upper;

	return l > u ? l : u;
}

/* 128-bit integer to numeric via its decimal text (exact). */
static Datum
i128_to_numeric(dp_i128 v)
{
	char		buf[48];
	char	   *p = buf + sizeof(buf) - 1;
	bool		neg = v < 0;
	dp_u128		m = neg ? (dp_u128) (-(v + 1)) + 1 : (dp_u128) v;

	*p = '\0';
	do
	{
		*--p = (char) ('0' + (int) (m % 10));
		m /= 10;
	} while (m);
	if (neg)
		*--p = '-';
	return DirectFunctionCall3(numeric_in, CStringGetDatum(p), ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
}

/* dp_count: true count + Laplace(1/eps). */
Datum
dfdw_dp_count_final(PG_FUNCTION_ARGS)
{
	DpAggState *s = releasable(fcinfo);
	dp_i128		v;

	if (s == NULL)
		PG_RETURN_NULL();
	v = (dp_i128) s->count + laplace_noise(1, s->eps_micro, DP_EPS_DEN);
	if (v > PG_INT64_MAX || v < PG_INT64_MIN)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("dp_count result out of range for bigint"),
				 errdetail("The noise drawn at this epsilon is beyond 64 bits."),
				 errhint("Raise epsilon.")));
	PG_RETURN_INT64((int64) v);
}

/* dp_sum(int8): exact sum + Laplace(max|bound|/eps), as numeric. */
Datum
dfdw_dp_sum_int8_final(PG_FUNCTION_ARGS)
{
	DpAggState *s = releasable(fcinfo);

	if (s == NULL)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(i128_to_numeric(state_sum(s) + laplace_noise(sum_sensitivity(s), s->eps_micro, DP_EPS_DEN)));
}

/* dp_sum(float8): fixed-point sum + Laplace in the same 1e-6 units. */
Datum
dfdw_dp_sum_float8_final(PG_FUNCTION_ARGS)
{
	DpAggState *s = releasable(fcinfo);
	dp_i128		v;

	if (s == NULL)
		PG_RETURN_NULL();
	v = state_sum(s) + laplace_noise(sum_sensitivity(s), s->eps_micro, DP_EPS_DEN);
	PG_RETURN_FLOAT8((double) v / DP_FLOAT_SCALE);
}

/*
 * dp_avg: half of epsilon to the sum, half to the count (sequential
 * composition), noisy count floored at 1, result clamped into the bounds
 * (post-processing, free of privacy cost).
 */
Datum
dfdw_dp_avg_final(PG_FUNCTION_ARGS)
{
	DpAggState *s = releasable(fcinfo);
	dp_i128		sum,
				cnt;
	double		avg,
				lo,
				hi;

	if (s == NULL)
		PG_RETURN_NULL();
	sum = state_sum(s) + laplace_noise(sum_sensitivity(s), s->eps_micro, 2 * DP_EPS_DEN);
	cnt = (dp_i128) s->count + laplace_noise(1, s->eps_micro, 2 * DP_EPS_DEN);
	if (cnt < 1)
		cnt = 1;
	avg = ((double) sum / DP_FLOAT_SCALE) / (double) cnt;
	lo = (double) s->lower / DP_FLOAT_SCALE;
	hi = (double) s->upper / DP_FLOAT_SCALE;
	PG_RETURN_FLOAT8(avg < lo ? lo : (avg > hi ? hi : avg));
}
