/*
 * dp_quantile.c: dp_quantile(value, q, lower, upper, epsilon), a bounded
 * differentially private quantile.
 *
 * The range [lower, upper] is cut into DPQ_BUCKETS equal buckets and every
 * (clamped) value is counted in its bucket; the state is a histogram, so it
 * combines exactly across parallel workers.  The final function picks the
 * bucket by Report Noisy Max (Dwork & Roth, "The Algorithmic Foundations of
 * Differential Privacy", section 3.3) over the utility
 *     u(b) = -| #values in buckets <= b  -  q * n |
 * whose sensitivity is 1 (one row moves a prefix count and q*n by at most 1).
 * Noise is discrete Laplace of scale 2/epsilon, which makes Report Noisy Max
 * epsilon-DP for sensitivity-1 utilities; utilities are kept in thousandths
 * of a row so q needs no floating point, and the noise is drawn in the same
 * units (scale 2000/epsilon) by the integer-exact sampler of common/dp.c.
 * The answer is the chosen bucket's midpoint: resolution (upper-lower)/1024.
 * |lower| and |upper| are at most 1e12 (SQLSTATE 22023 otherwise), so the
 * range and every midpoint are finite.
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "utils/builtins.h"

#include "dp.h"
#include "dstack_fdw.h"
#include "pg_common.h"

#define DPQ_BUCKETS 1024
/*
 * Largest |lower|, |upper|, as for dp_sum(float8): upper - lower must be a
 * finite double (with bounds near DBL_MAX it overflows to Infinity, every
 * value falls in bucket 0 or NaN, and the answer is Infinity), and so must
 * every midpoint lower + (b + 0.5) * (upper - lower) / 1024.
 */
#define DPQ_MAX_BOUND 1e12

typedef struct DpqState
{
	int64		n;				/* values counted (true count) */
	int64		eps_micro;		/* epsilon in millionths, fixed per group */
	int64		q_milli;		/* quantile in thousandths */
	double		lower;
	double		upper;
	int64		counts[DPQ_BUCKETS];
} DpqState;

PG_FUNCTION_INFO_V1(dfdw_dp_quantile_trans);
PG_FUNCTION_INFO_V1(dfdw_dp_quantile_combine);
PG_FUNCTION_INFO_V1(dfdw_dp_quantile_serialize);
PG_FUNCTION_INFO_V1(dfdw_dp_quantile_deserialize);
PG_FUNCTION_INFO_V1(dfdw_dp_quantile_final);

static void
param_error(const char *msg, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s", msg),
			 errdetail("dp_quantile(value, q, lower, upper, epsilon) counts clamped values in 1024 "
					   "buckets of [lower, upper] and releases a noisy choice of bucket."),
			 errhint("%s", hint)));
}

/* The parameters of a group: checked on its first row, must not change. */
static void
set_params(DpqState *s, FunctionCallInfo fcinfo)
{
	double		q,
				lo,
				hi,
				eps;
	int64		q_milli,
				eps_micro;

	if (PG_ARGISNULL(2) || PG_ARGISNULL(3) || PG_ARGISNULL(4) || PG_ARGISNULL(5))
		param_error("the quantile, bounds and epsilon of dp_quantile must not be NULL",
					"Pass constants, e.g. dp_quantile(egfr, 0.5, 0, 150, 0.5).");
	q = PG_GETARG_FLOAT8(2);
	lo = PG_GETARG_FLOAT8(3);
	hi = PG_GETARG_FLOAT8(4);
	eps = PG_GETARG_FLOAT8(5);
	if (!(q >= 0 && q <= 1))
		param_error("the quantile of dp_quantile must be between 0 and 1", "Use 0.5 for the median.");
	if (!isfinite(lo) || !isfinite(hi) || !(lo < hi))
		param_error("the bounds of dp_quantile must be finite with lower < upper",
					"Give the range the values are known to lie in.");
	/* no value in the message: a bound could be an expression over the data */
	if (fabs(lo) > DPQ_MAX_BOUND || fabs(hi) > DPQ_MAX_BOUND)
		param_error("the bounds of dp_quantile must be at most 1e12 in absolute value",
					"Rescale the column (e.g. to thousands) so that its range fits, and scale the answer back.");
	if (!(eps > 0 && eps <= 100))
		param_error("epsilon must be greater than 0 and at most 100", "Use a small positive epsilon such as 0.5.");
	q_milli = (int64) llround(q * 1000);
	eps_micro = (int64) llround(eps * 1e6);
	if (eps_micro == 0)
		param_error("epsilon must be at least 0.000001", "Use a larger epsilon.");
	if (s->eps_micro == 0)
	{
		s->q_milli = q_milli;
		s->eps_micro = eps_micro;
		s->lower = lo;
		s->upper = hi;
	}
	else if (s->q_milli != q_milli || s->eps_micro != eps_micro || s->lower != lo || s->upper != hi)
		param_error("the quantile, bounds and epsilon of dp_quantile must be the same for every row of a group",
					"Pass constants.");
}

/* Count one clamped value in its bucket. */
Datum
dfdw_dp_quantile_trans(PG_FUNCTION_ARGS)
{
	MemoryContext agg_cxt;
	DpqState   *s;
	double		v;
	int			b;

	if (!AggCheckCallContext(fcinfo, &agg_cxt))
		elog(ERROR, "dp_quantile transition called outside an aggregate");
	s = PG_ARGISNULL(0) ? (DpqState *) MemoryContextAllocZero(agg_cxt, sizeof(DpqState))
		: (DpqState *) PG_GETARG_POINTER(0);
	set_params(s, fcinfo);
	if (PG_ARGISNULL(1) || isnan(PG_GETARG_FLOAT8(1)))
		PG_RETURN_POINTER(s);
	v = PG_GETARG_FLOAT8(1);
	v = v < s->lower ? s->lower : v > s->upper ? s->upper : v;
	b = (int) ((v - s->lower) / (s->upper - s->lower) * DPQ_BUCKETS);
	b = b < 0 ? 0 : b >= DPQ_BUCKETS ? DPQ_BUCKETS - 1 : b;
	s->counts[b]++;
	s->n++;
	PG_RETURN_POINTER(s);
}

/* Histograms add up exactly: parallel plans give the serial plan's state. */
Datum
dfdw_dp_quantile_combine(PG_FUNCTION_ARGS)
{
	MemoryContext agg_cxt;
	DpqState   *a = PG_ARGISNULL(0) ? NULL : (DpqState *) PG_GETARG_POINTER(0);
	DpqState   *b = PG_ARGISNULL(1) ? NULL : (DpqState *) PG_GETARG_POINTER(1);

	if (!AggCheckCallContext(fcinfo, &agg_cxt))
		elog(ERROR, "dp_quantile combine called outside an aggregate");
	if (b == NULL)
		PG_RETURN_POINTER(a);
	if (a == NULL)
	{
		a = MemoryContextAlloc(agg_cxt, sizeof(DpqState));
		memcpy(a, b, sizeof(DpqState));
		PG_RETURN_POINTER(a);
	}
	if (a->eps_micro == 0)
		memcpy(a, b, sizeof(DpqState));
	else if (b->eps_micro != 0)
	{
		if (a->q_milli != b->q_milli || a->eps_micro != b->eps_micro || a->lower != b->lower ||
			a->upper != b->upper)
			param_error("the quantile, bounds and epsilon of dp_quantile must be the same for every row of a group",
						"Pass constants.");
		for (int i = 0; i < DPQ_BUCKETS; i++)
			a->counts[i] += b->counts[i];
		a->n += b->n;
	}
	PG_RETURN_POINTER(a);
}

Datum
dfdw_dp_quantile_serialize(PG_FUNCTION_ARGS)
{
	DpqState   *s = (DpqState *) PG_GETARG_POINTER(0);
	bytea	   *out = palloc(VARHDRSZ + sizeof(DpqState));

	SET_VARSIZE(out, VARHDRSZ + sizeof(DpqState));
	memcpy(VARDATA(out), s, sizeof(DpqState));
	PG_RETURN_BYTEA_P(out);
}

Datum
dfdw_dp_quantile_deserialize(PG_FUNCTION_ARGS)
{
	bytea	   *in = PG_GETARG_BYTEA_PP(0);
	MemoryContext agg_cxt;
	DpqState   *s;

	if (!AggCheckCallContext(fcinfo, &agg_cxt))
		elog(ERROR, "dp_quantile deserialize called outside an aggregate");
	if (VARSIZE_ANY_EXHDR(in) != sizeof(DpqState))
		elog(ERROR, "dp_quantile state has %zu bytes, expected %zu", VARSIZE_ANY_EXHDR(in), sizeof(DpqState));
	s = MemoryContextAlloc(agg_cxt, sizeof(DpqState));
	memcpy(s, VARDATA_ANY(in), sizeof(DpqState));
	PG_RETURN_POINTER(s);
}

/* Report Noisy Max over the buckets (an empty group too). */
Datum
dfdw_dp_quantile_final(PG_FUNCTION_ARGS)
{
	DpqState   *s = PG_ARGISNULL(0) ? NULL : (DpqState *) PG_GETARG_POINTER(0);
	int64		cum = 0;
	int64		best_score = PG_INT64_MIN;
	int			best = 0;
	DErr		err = {0};

	if (s == NULL || s->eps_micro == 0)
	{
		/*
		 * No row reached this group: noise over an empty histogram, with the
		 * constant parameters of the Aggref (NULL would reveal "no rows").
		 */
		Datum		v[4];
		bool		n[4];

		if (!dfdw_dp_const_args(fcinfo, v, n, 4) || n[0] || n[1] || n[2] || n[3])
			PG_RETURN_NULL();
		s = palloc0(sizeof(DpqState));
		s->q_milli = (int64) llround(DatumGetFloat8(v[0]) * 1000);
		s->lower = DatumGetFloat8(v[1]);
		s->upper = DatumGetFloat8(v[2]);
		s->eps_micro = dfdw_dp_epsilon_micro(DatumGetFloat8(v[3]));
		if (!(s->q_milli >= 0 && s->q_milli <= 1000) || !isfinite(s->upper - s->lower) || !(s->lower < s->upper))
			PG_RETURN_NULL();
	}
	dfdw_dp_apply_seed();
	for (int b = 0; b < DPQ_BUCKETS; b++)
	{
		int64		u,
					noise;

		cum += s->counts[b];
		u = 1000 * cum - s->q_milli * s->n;
		u = u < 0 ? u : -u;		/* -|prefix count - q n|, in thousandths of a row */
		/* scale 2/epsilon rows = 2000e6/eps_micro thousandths */
		if (!dp_discrete_laplace(UINT64CONST(2000000000), (uint64) s->eps_micro, &noise, &err))
			derr_ereport(&err, ERRCODE_INTERNAL_ERROR, NULL);
		if (u + noise > best_score)
		{
			best_score = u + noise;
			best = b;
		}
	}
	PG_RETURN_FLOAT8(s->lower + (best + 0.5) * (s->upper - s->lower) / DPQ_BUCKETS);
}
