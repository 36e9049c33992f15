/*
 * test_gs_logic.c: the per-row logic of the gpu_scan kernels (gs_logic.h),
 * compiled for the host, against plain reference computations.
 *
 * The device path runs this same source; what only the device does (real
 * atomics, a fixed-size table whose overflow rows go to the host) is
 * simulated here with the device table protocol: a small fixed table,
 * overflow bits, host aggregation of those rows, then the merge.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "../gs_host.h"
#include "../../common/tests/unit.h"

/* word i of aggregate a in a slot's accumulator words w */
#define W(w, a, i) ((w)[(a) * GS_ACC_WORDS + (i)])

/* ---- float order ----------------------------------------------------------- */

static void
test_float_order(void)
{
	double		v[] = {-INFINITY, -1e308, -1.5, -4.9e-324, -0.0, 0.0, 4.9e-324, 1.0, 1.5, 1e308,
		INFINITY, NAN, -NAN};
	int			n = sizeof(v) / sizeof(v[0]);
	int			bad = 0,
				badrt = 0;

	for (int i = 0; i < n; i++)
		for (int j = 0; j < n; j++)
		{
			uint64_t	a = gs_f64_order(v[i]),
						b = gs_f64_order(v[j]);
			int			c = a < b ? -1 : (a > b ? 1 : 0);

			if (c != gs_f64_cmp(v[i], v[j]))
				bad++;
		}
	for (int i = 0; i < n; i++)
	{
		double		r = gs_f64_from_order(gs_f64_order(v[i]));

		if (!(isnan(v[i]) ? isnan(r) : (r == v[i] && !signbit(r) == !(signbit(v[i]) && v[i] != 0))))
			badrt++;
	}
	CHECK(bad == 0, "float order agrees with float8_cmp_internal (NaN on top, -0 = +0) on 169 pairs");
	CHECK(badrt == 0, "float order round-trips (-0 to +0, NaN to NaN)");
}

/* ---- the filter's three-valued logic -------------------------------------------- */

/* one int32 column: value v or NULL */
static void
one_row(GsParams *p, int32_t *val, uint8_t *valid, int isnull, int32_t v)
{
	memset(p, 0, sizeof(*p));
	*val = v;
	*valid = isnull ? 0 : 1;
	p->ncols = 1;
	p->nrows = 1;
	p->cols[0] = (GsColumn) {(const uint8_t *) val, valid, GS_I32, 0};
}

static void
emit(GsParams *p, int op, int a, int isf, int64_t i, double f)
{
	p->prog[p->nprog++] = (GsInstr) {op, a, isf, 0, i, f};
}

/* push the truth value (x > 5) where x is the row's column: true, false or unknown */
static void
emit_pred(GsParams *p)
{
	emit(p, GS_OP_COL, 0, 0, 0, 0);
	emit(p, GS_OP_CONST, 0, 0, 5, 0);
	emit(p, GS_OP_CMP, GS_GT, 0, 0, 0);
}

static void
test_three_valued(void)
{
	/* rows: x = 9 (true), x = 1 (false), NULL (unknown) */
	int			tv[3] = {GS_TRUE, GS_FALSE, GS_UNKNOWN};
	int			bad = 0;

	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 3; j++)
			for (int op = GS_OP_AND; op <= GS_OP_OR; op++)
			{
				GsParams	p;
				int32_t		val[1];
				uint8_t		valid[1];
				int			expect;
				int			a = tv[i],
							b = tv[j];
				int32_t		xv[3] = {9, 1, 0};

				/* (x > 5) op b, with b as 1 < 2 (true), 1 < 1 (false) or (NULL column = 0) */
				one_row(&p, val, valid, i == 2, xv[i]);
				emit_pred(&p);
				if (b == GS_UNKNOWN)
				{
					/* (x > NULL-column): a second column that is NULL */
					static int32_t nv = 0;
					static uint8_t nvalid = 0;

					p.cols[1] = (GsColumn) {(const uint8_t *) &nv, &nvalid, GS_I32, 0};
					p.ncols = 2;
					emit(&p, GS_OP_COL, 1, 0, 0, 0);
					emit(&p, GS_OP_CONST, 0, 0, 0, 0);
					emit(&p, GS_OP_CMP, GS_EQ, 0, 0, 0);
				}
				else
				{
					emit(&p, GS_OP_CONST, 0, 0, 1, 0);
					emit(&p, GS_OP_CONST, 0, 0, b == GS_TRUE ? 2 : 1, 0);
					emit(&p, GS_OP_CMP, GS_LT, 0, 0, 0);
				}
				emit(&p, op, 0, 0, 0, 0);
				if (op == GS_OP_AND)
					expect = (a == GS_FALSE || b == GS_FALSE) ? GS_FALSE : (a == GS_TRUE && b == GS_TRUE) ? GS_TRUE : GS_UNKNOWN;
				else
					expect = (a == GS_TRUE || b == GS_TRUE) ? GS_TRUE : (a == GS_FALSE && b == GS_FALSE) ? GS_FALSE : GS_UNKNOWN;
				if (gs_eval_filter(&p, gs_row1(0)) != expect)
					bad++;
				emit(&p, GS_OP_NOT, 0, 0, 0, 0);
				if (gs_eval_filter(&p, gs_row1(0)) != (expect == GS_UNKNOWN ? GS_UNKNOWN : expect == GS_TRUE ? GS_FALSE : GS_TRUE))
					bad++;
			}
	CHECK(bad == 0, "AND, OR, NOT follow SQL's three-valued truth tables (36 cases)");

	{
		GsParams	p;
		int32_t		val[1];
		uint8_t		valid[1];

		one_row(&p, val, valid, 1, 0);
		emit(&p, GS_OP_COL, 0, 0, 0, 0);
		emit(&p, GS_OP_ISNULL, 0, 0, 0, 0);
		CHECK(gs_eval_filter(&p, gs_row1(0)) == GS_TRUE, "x IS NULL on a NULL row is true");
		p.prog[1].op = GS_OP_ISNOTNULL;
		CHECK(gs_eval_filter(&p, gs_row1(0)) == GS_FALSE, "x IS NOT NULL on a NULL row is false");
		one_row(&p, val, valid, 0, 7);
		emit_pred(&p);
		CHECK(gs_row_selected(&p, gs_row1(0)), "7 > 5 selects the row");
		p.prog[2].a = GS_LE;
		CHECK(!gs_row_selected(&p, gs_row1(0)), "7 <= 5 drops the row");
		p.nprog = 0;
		CHECK(gs_row_selected(&p, gs_row1(0)), "an empty program keeps the row");
		emit(&p, GS_OP_CMP, GS_LT, 0, 0, 0);
		CHECK(gs_eval_filter(&p, gs_row1(0)) == GS_UNKNOWN, "a malformed program (stack underflow) keeps nothing");
		{
			uint8_t		keep = 0;

			p.nprog = 0;
			p.keep = &keep;
			CHECK(!gs_row_selected(&p, gs_row1(0)), "a row dropped by contribution bounding is not selected");
		}
	}
	{
		GsParams	p;
		double		f[1] = {NAN};

		memset(&p, 0, sizeof(p));
		p.ncols = 1;
		p.nrows = 1;
		p.cols[0] = (GsColumn) {(const uint8_t *) f, NULL, GS_F64, 0};
		emit(&p, GS_OP_COL, 0, 1, 0, 0);
		emit(&p, GS_OP_CONST, 0, 1, 0, INFINITY);
		emit(&p, GS_OP_CMP, GS_GT, 1, 0, 0);
		CHECK(gs_row_selected(&p, gs_row1(0)), "NaN > Infinity, as in PostgreSQL");
	}
}

/* ---- aggregation against a reference ----------------------------------------- */

#define NROWS 100000

typedef struct Data
{
	int16_t		k1[NROWS];		/* key, NULL every 17th row */
	uint8_t		k1v[NROWS / 8 + 1];
	int32_t		k2[NROWS];		/* key */
	int32_t		x[NROWS];		/* value, NULL every 5th row */
	uint8_t		xv[NROWS / 8 + 1];
	int64_t		y[NROWS];		/* large values */
	double		f[NROWS];		/* floats with NaN and NULL */
	uint8_t		fv[NROWS / 8 + 1];
} Data;

static void
setbit8(uint8_t *b, uint32_t i, int on)
{
	if (on)
		b[i >> 3] |= 1u << (i & 7);
	else
		b[i >> 3] &= ~(1u << (i & 7));
}

static int
bit8(const uint8_t *b, uint32_t i)
{
	return (b[i >> 3] >> (i & 7)) & 1;
}

static void
make_data(Data *d, uint64_t seed)
{
	for (uint32_t i = 0; i < NROWS; i++)
	{
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		d->k1[i] = (int16_t) ((seed >> 33) % 7) - 3;
		setbit8(d->k1v, i, i % 17 != 0);
		d->k2[i] = (int32_t) ((seed >> 40) % 50);
		d->x[i] = (int32_t) ((seed >> 20) % 2000001) - 1000000;
		setbit8(d->xv, i, i % 5 != 0);
		d->y[i] = (int64_t) (seed ^ (seed << 7));
		d->f[i] = ((double) ((seed >> 11) % 1000003) - 500000.0) / 37.0;
		if (i % 101 == 0)
			d->f[i] = NAN;
		setbit8(d->fv, i, i % 13 != 0);
	}
}

/* WHERE x > -900000 OR x IS NULL; GROUP BY k1, k2 */
static void
make_params(GsParams *p, const Data *d, uint32_t nrows)
{
	memset(p, 0, sizeof(*p));
	p->nrows = nrows;
	p->ncols = 5;
	p->cols[0] = (GsColumn) {(const uint8_t *) d->k1, d->k1v, GS_I16, 0};
	p->cols[1] = (GsColumn) {(const uint8_t *) d->k2, NULL, GS_I32, 0};
	p->cols[2] = (GsColumn) {(const uint8_t *) d->x, d->xv, GS_I32, 0};
	p->cols[3] = (GsColumn) {(const uint8_t *) d->y, NULL, GS_I64, 0};
	p->cols[4] = (GsColumn) {(const uint8_t *) d->f, d->fv, GS_F64, 0};
	emit(p, GS_OP_COL, 2, 0, 0, 0);
	emit(p, GS_OP_CONST, 0, 0, -900000, 0);
	emit(p, GS_OP_CMP, GS_GT, 0, 0, 0);
	emit(p, GS_OP_COL, 2, 0, 0, 0);
	emit(p, GS_OP_ISNULL, 0, 0, 0, 0);
	emit(p, GS_OP_OR, 0, 0, 0, 0);
	p->nkeys = 2;
	p->keycol[0] = 0;
	p->keycol[1] = 1;
	p->naggs = 15;
	p->aggs[0] = (GsAgg) {GS_AGG_COUNT_STAR, -1, 0, 0, 0, 0};
	p->aggs[1] = (GsAgg) {GS_AGG_COUNT, 2, 0, 0, 0, 0};
	p->aggs[2] = (GsAgg) {GS_AGG_SUM_I64, 2, 0, 0, 0, 0};
	p->aggs[3] = (GsAgg) {GS_AGG_MIN_I64, 3, 0, 0, 0, 0};
	p->aggs[4] = (GsAgg) {GS_AGG_MAX_I64, 3, 0, 0, 0, 0};
	p->aggs[5] = (GsAgg) {GS_AGG_MIN_F64, 4, 0, 0, 0, 0};
	p->aggs[6] = (GsAgg) {GS_AGG_MAX_F64, 4, 0, 0, 0, 0};
	p->aggs[7] = (GsAgg) {GS_AGG_SUM_F64, 4, 0, 0, 0, 0};
	p->aggs[8] = (GsAgg) {GS_AGG_DP_COUNT, 4, 0, 0, 0, 0};
	p->aggs[9] = (GsAgg) {GS_AGG_DP_SUM_I64, 3, INT64_MIN + 1, INT64_MAX, 0, 0};
	p->aggs[10] = (GsAgg) {GS_AGG_DP_SUM_F64, 4, -5000000000, 5000000000, -5000.0, 5000.0};
	p->aggs[11] = (GsAgg) {GS_AGG_AVG_F64, 2, 0, 0, 0, 0};	/* avg(x::float8) */
	p->aggs[12] = (GsAgg) {GS_AGG_AVG_F64, 4, 0, 0, 0, 0};	/* avg(f), NaNs in it */
	p->aggs[13] = (GsAgg) {GS_AGG_SUM_I128, 3, 0, 0, 0, 0};	/* sum(y::int8): beyond int64 */
	p->aggs[14] = (GsAgg) {GS_AGG_HOST, 3, -1, 0, 0, 0};	/* the host's: the kernels leave it zero */
}

/* float8_accum, row by row: N, Sx, Sxx (Youngs-Cramer), Sxx NaN after an Inf or NaN */
static void
yc_accum(double st[3], double v)
{
	double		n0 = st[0];

	st[0] += 1.0;
	st[1] += v;
	if (n0 > 0)
	{
		double		tmp = v * st[0] - st[1];

		st[2] += tmp * tmp / (st[0] * n0);
		if (isinf(st[1]) || isinf(st[2]))
			st[2] = NAN;
	}
	else if (isnan(v) || isinf(v))
		st[2] = NAN;
}

/* |a - b| relative to |b| (at least 1); NaN only when exactly one is NaN */
static double
relerr(double a, double b)
{
	if (isnan(a) || isnan(b))
		return isnan(a) && isnan(b) ? 0 : NAN;
	if (a == b)
		return 0;
	return fabs(a - b) / (fabs(b) > 1 ? fabs(b) : 1);
}

/* The reference: one group at a time, the obvious way. */
typedef struct Ref
{
	int			present;
	int64_t		n,
				nx,
				sumx,
				miny,
				maxy,
				nf,
				dpn,
				dpfn;
	double		minf,
				maxf,
				sumf;
	__int128	dpy,
				dpf,
				sumy;
	double		avgx[3],		/* float8_accum's states of avg(x::float8), avg(f) */
				avgf[3];
} Ref;

/* worst relative error of the avg states' Sx and Sxx in the last compare() */
static double avg_maxrel;

#define REFIDX(k1null, k1, k2) ((k1null) ? 7 * 50 + (k2) : ((k1) + 3) * 50 + (k2))

static void
reference(const Data *d, uint32_t nrows, Ref *ref)
{
	memset(ref, 0, sizeof(Ref) * 8 * 50);
	for (uint32_t i = 0; i < nrows; i++)
	{
		int			xnull = !bit8(d->xv, i);
		Ref		   *r;

		if (!(xnull || d->x[i] > -900000))
			continue;
		r = &ref[REFIDX(!bit8(d->k1v, i), d->k1[i], d->k2[i])];
		if (!r->present)
		{
			r->present = 1;
			r->miny = INT64_MAX;
			r->maxy = INT64_MIN;
		}
		r->n++;
		if (!xnull)
		{
			r->nx++;
			r->sumx += d->x[i];
			yc_accum(r->avgx, (double) d->x[i]);
		}
		r->miny = d->y[i] < r->miny ? d->y[i] : r->miny;
		r->maxy = d->y[i] > r->maxy ? d->y[i] : r->maxy;
		r->dpy += d->y[i] < INT64_MIN + 1 ? INT64_MIN + 1 : d->y[i];
		r->sumy += d->y[i];
		if (bit8(d->fv, i))
		{
			double		v = d->f[i];

			if (r->nf == 0 || gs_f64_cmp(v, r->minf) < 0)
				r->minf = v;
			if (r->nf == 0 || gs_f64_cmp(v, r->maxf) > 0)
				r->maxf = v;
			r->nf++;
			r->sumf += v;
			yc_accum(r->avgf, v);
			r->dpn++;
			if (!isnan(v))
			{
				double		c = v < -5000.0 ? -5000.0 : (v > 5000.0 ? 5000.0 : v);

				r->dpf += (int64_t) rint(c * 1e6);
				r->dpfn++;
			}
		}
	}
}

/* Compare every group of table t with the reference; returns mismatches. */
static int
compare(const GsParams *p, const GsTable *t, const Ref *ref, int *ngroups, double *maxrel)
{
	int			bad = 0;
	int			seen[8 * 50] = {0};

	*ngroups = 0;
	*maxrel = 0;
	avg_maxrel = 0;
	for (uint32_t s = 0; s < t->cap; s++)
	{
		const int64_t *k = t->keys + (size_t) s * GS_MAX_KEYS;
		const uint64_t *w = t->acc + (size_t) s * p->naggs * GS_ACC_WORDS;
		const Ref  *r;
		int			idx;
		double		sumf,
					minf,
					maxf;
		__int128	dpy,
					dpf,
					sumy;

		if (t->state[s] != GS_SLOT_READY || t->rows[s] == 0)
			continue;
		(*ngroups)++;
		if (t->nullmask[s] & 2u)
		{
			bad++;
			continue;
		}
		idx = REFIDX(t->nullmask[s] & 1u, k[0], k[1]);
		r = &ref[idx];
		seen[idx]++;
		memcpy(&sumf, &W(w, 7, 0), 8);
		minf = gs_f64_from_order(W(w, 5, 0));
		maxf = gs_f64_from_order(W(w, 6, 0));
		dpy = (__int128) (((unsigned __int128) W(w, 9, 2) << 64) | W(w, 9, 1));
		dpf = (__int128) (((unsigned __int128) W(w, 10, 2) << 64) | W(w, 10, 1));
		sumy = (__int128) (((unsigned __int128) W(w, 13, 2) << 64) | W(w, 13, 1));
		if (!r->present || (int64_t) W(w, 0, 0) != r->n || (int64_t) W(w, 1, 0) != r->nx ||
			(int64_t) W(w, 2, 0) != r->sumx || (int64_t) W(w, 3, 0) != r->miny || (int64_t) W(w, 4, 0) != r->maxy ||
			(int64_t) W(w, 5, 1) != r->nf || (int64_t) W(w, 8, 0) != r->dpn || dpy != r->dpy || dpf != r->dpf ||
			(int64_t) W(w, 10, 0) != r->dpfn || sumy != r->sumy || (int64_t) W(w, 13, 0) != r->n ||
			W(w, 14, 0) != 0 || W(w, 14, 1) != 0 || W(w, 14, 2) != 0 || W(w, 14, 3) != 0 ||
			(r->nf > 0 && (gs_f64_cmp(minf, r->minf) != 0 || gs_f64_cmp(maxf, r->maxf) != 0)))
			bad++;
		for (int a = 11; a <= 12; a++)
		{
			const double *want = a == 11 ? r->avgx : r->avgf;
			double		got[3];

			if (gs_float_accum_state(&W(w, a, 0), got) != 0 || got[0] != want[0])
				bad++;
			for (int i = 1; i <= 2; i++)
			{
				double		e = relerr(got[i], want[i]);

				if (isnan(e) || e > avg_maxrel)
					avg_maxrel = isnan(e) ? INFINITY : e;
			}
		}
		if (!isnan(r->sumf) || !isnan(sumf))
		{
			double		rel = fabs(sumf - r->sumf) / (fabs(r->sumf) > 1 ? fabs(r->sumf) : 1);

			if (isnan(rel) || rel > *maxrel)
				*maxrel = isnan(rel) ? INFINITY : rel;
		}
	}
	for (int i = 0; i < 8 * 50; i++)
		if (ref[i].present != seen[i])
			bad++;
	return bad;
}

static void
test_preagg(void)
{
	Data	   *d = calloc(1, sizeof(Data));
	Ref		   *ref = calloc(8 * 50, sizeof(Ref));
	GsParams	p;
	GsHostTable h;
	int			ngroups;
	double		maxrel;
	int64_t		sel;

	make_data(d, 42);
	make_params(&p, d, NROWS);
	reference(d, NROWS, ref);
	CHECK(gs_host_table_init(&h, 16, p.naggs), "host table");
	sel = gs_host_preagg(&p, &h, NULL);
	CHECK(compare(&p, &h.t, ref, &ngroups, &maxrel) == 0,
		  "host preagg: 13 aggregates x 400 groups equal the reference exactly (ints, min/max, dp int128 sums)");
	printf("     %lld rows selected, %d groups, table %u slots, float sum max rel. error %.2e\n",
		   (long long) sel, ngroups, h.t.cap, maxrel);
	CHECK(ngroups == (int) h.used && ngroups > 300, "used-slot count is exact after growing from 16 slots");
	CHECK(maxrel < 1e-12, "float sums within 1e-12 relative of a sequential sum");
	printf("     avg states: Sx, Sxx max rel. error %.2e against float8_accum row by row\n", avg_maxrel);
	CHECK(avg_maxrel < 1e-10, "avg(float) states {N, Sx, Sxx}: N exact, Sx and Sxx within 1e-10 of float8_accum's, "
		  "NaN where it is NaN");
	gs_table_free(&h.t);

	/*
	 * The device protocol: a fixed table too small for the groups; rows that
	 * find no slot are flagged and aggregated on the host, then merged.
	 */
	{
		GsTable		dev;
		uint32_t   *ovf = calloc(gs_bitmap_words(NROWS), sizeof(uint32_t));
		int64_t		done = 0,
					over = 0;

		gs_table_alloc(&dev, 64, p.naggs);
		for (uint32_t row = 0; row < NROWS; row++)
		{
			uint32_t	created = 0;
			int			r = gs_preagg_row(&p, &dev, row, &created);

			if (r == GS_ROW_OVERFLOW)
			{
				ovf[row >> 5] |= 1u << (row & 31);
				over++;
			}
			done += r == GS_ROW_DONE;
		}
		gs_host_table_init(&h, 16, p.naggs);
		CHECK(over > 0 && gs_host_preagg(&p, &h, ovf) == over, "overflow rows (table of 64 slots) aggregated on the host");
		CHECK(gs_host_merge(&h, &p, &dev) == 0, "device table merged into the host table");
		CHECK(compare(&p, &h.t, ref, &ngroups, &maxrel) == 0 && done + over == sel,
			  "device protocol with overflow gives the reference result, every row once");
		CHECK(avg_maxrel < 1e-10, "device protocol: avg states merged as float8_combine does, within 1e-10");
		printf("     %lld rows in the 64-slot table, %lld overflowed to the host\n", (long long) done, (long long) over);
		gs_table_free(&h.t);
		gs_table_free(&dev);
		free(ovf);
	}

	/* two row groups aggregated into one table equal one pass */
	{
		GsParams	p2;
		Data	   *d2 = calloc(1, sizeof(Data));

		gs_host_table_init(&h, 16, p.naggs);
		memcpy(d2, d, sizeof(Data));
		make_params(&p2, d, 40000);
		gs_host_preagg(&p2, &h, NULL);
		/* the second group: rows 40000.. moved to the front of another buffer */
		memmove(d2->k2, d->k2 + 40000, sizeof(int32_t) * 60000);
		memmove(d2->x, d->x + 40000, sizeof(int32_t) * 60000);
		memmove(d2->y, d->y + 40000, sizeof(int64_t) * 60000);
		memmove(d2->f, d->f + 40000, sizeof(double) * 60000);
		memmove(d2->k1, d->k1 + 40000, sizeof(int16_t) * 60000);
		for (uint32_t i = 0; i < 60000; i++)
		{
			setbit8(d2->k1v, i, bit8(d->k1v, i + 40000));
			setbit8(d2->xv, i, bit8(d->xv, i + 40000));
			setbit8(d2->fv, i, bit8(d->fv, i + 40000));
		}
		make_params(&p2, d2, 60000);
		gs_host_preagg(&p2, &h, NULL);
		CHECK(compare(&p, &h.t, ref, &ngroups, &maxrel) == 0 && avg_maxrel < 1e-10,
			  "two row groups into one table equal the whole");
		gs_table_free(&h.t);
		free(d2);
	}
	free(d);
	free(ref);
}

/*
 * The host build folds column by column (gs_host.c); the kernels row by row
 * (gs_preagg_row).  Each accumulator must see the same values in the same
 * order, so both give the same table bit for bit: grouped and with no keys
 * (the one-slot path keeps its words in registers), with the filter, NULLs,
 * Inf and NaN of make_data.
 */
static void
test_columns_equal_rows(void)
{
	Data	   *d = calloc(1, sizeof(Data));
	GsParams	p;

	make_data(d, 7);
	make_params(&p, d, NROWS);
	for (int nokeys = 0; nokeys <= 2; nokeys++)
	{
		GsTable		rows;
		GsHostTable h;
		int64_t		n_rows = 0,
					n_cols;
		bool		same;

		if (nokeys >= 1)
			p.nkeys = 0;
		if (nokeys == 2)
		{
			p.nprog = 0;		/* and no filter: every row into the one slot, no slot array */
			p.keep = NULL;
		}
		gs_table_alloc(&rows, 1024, p.naggs);
		for (uint32_t row = 0; row < NROWS; row++)
		{
			uint32_t	created = 0;

			n_rows += gs_preagg_row(&p, &rows, row, &created) == GS_ROW_DONE;
		}
		gs_host_table_init(&h, 1024, p.naggs);
		n_cols = gs_host_preagg(&p, &h, NULL);
		same = n_rows == n_cols && h.t.cap == rows.cap &&
			memcmp(h.t.state, rows.state, sizeof(uint32_t) * rows.cap) == 0 &&
			memcmp(h.t.rows, rows.rows, sizeof(uint64_t) * rows.cap) == 0 &&
			memcmp(h.t.keys, rows.keys, sizeof(int64_t) * GS_MAX_KEYS * rows.cap) == 0 &&
			memcmp(h.t.acc, rows.acc, sizeof(uint64_t) * GS_ACC_WORDS * p.naggs * rows.cap) == 0;
		CHECK(same && n_cols > 0, nokeys == 2 ? "no group keys, no filter: the host's column folds equal the kernel's row folds bit for bit"
			  : nokeys ? "no group keys: the host's column folds equal the kernel's row folds bit for bit"
			  : "grouped: the host's column folds equal the kernel's row folds bit for bit");
		gs_table_free(&rows);
		gs_table_free(&h.t);
	}
	free(d);
}

/* sum(float8): an infinite sum is float8pl's overflow error unless an input was infinite */
static void
test_sum_f64_overflow_flag(void)
{
	uint64_t	a[GS_ACC_WORDS] = {0},
				b[GS_ACC_WORDS] = {0},
				c[GS_ACC_WORDS] = {0};
	double		d;

	gs_fold_sum_f64(a, 1e308);
	gs_fold_sum_f64(a, 1e308);
	memcpy(&d, &a[0], 8);
	CHECK(isinf(d) && a[1] == 2 && a[2] == 0, "sum(float8) {1e308, 1e308}: infinite, no infinite input (the overflow error)");
	gs_fold_sum_f64(b, 1.0);
	gs_fold_sum_f64(b, -INFINITY);
	memcpy(&d, &b[0], 8);
	CHECK(isinf(d) && b[2] == 1, "sum(float8) {1, -Infinity}: -Infinity, an infinite input (no error)");
	gs_fold_sum_f64(c, NAN);
	CHECK(c[2] == 0, "sum(float8) {NaN}: NaN is not an infinite input");
	{
		GsParams	p;

		memset(&p, 0, sizeof(p));
		p.aggs[0].op = GS_AGG_SUM_F64;
		p.naggs = 1;
		gs_acc_combine(&p, a, b);
		CHECK(a[2] == 1 && a[1] == 4, "sum(float8) states combined: the infinite-input mark carries over");
	}
}

/* ---- avg(float): float8_accum's state ------------------------------------------ */

/* One group, avg over v[0..n) (NaN in isnull-free slots is a value; null[i] makes it NULL). */
static bool
avg_table(GsHostTable *h, const double *v, const uint8_t *null, uint32_t n)
{
	GsParams	p;
	static uint8_t valid[64];

	memset(&p, 0, sizeof(p));
	memset(valid, 0, sizeof(valid));
	for (uint32_t i = 0; i < n; i++)
		setbit8(valid, i, !(null && null[i]));
	p.nrows = n;
	p.ncols = 1;
	p.cols[0] = (GsColumn) {(const uint8_t *) v, valid, GS_F64, 0};
	p.naggs = 1;
	p.aggs[0] = (GsAgg) {GS_AGG_AVG_F64, 0, 0, 0, 0, 0};
	return gs_host_table_init(h, 16, 1) && gs_host_preagg(&p, h, NULL) >= 0;
}

/* The state of v (split at `split` into two tables merged, when split > 0); the status. */
static int
avg_state(const double *v, const uint8_t *null, uint32_t n, uint32_t split, double out[3])
{
	GsHostTable a,
				b;
	GsParams	p;
	int			rc = -2;

	memset(&p, 0, sizeof(p));
	p.naggs = 1;
	p.aggs[0] = (GsAgg) {GS_AGG_AVG_F64, 0, 0, 0, 0, 0};
	if (!avg_table(&a, v, null, split > 0 ? split : n))
		return -2;
	if (split > 0 && (!avg_table(&b, v + split, null ? null + split : NULL, n - split) ||
					  gs_host_merge(&a, &p, &b.t) != 0))
		return -2;
	for (uint32_t s = 0; s < a.t.cap; s++)
		if (a.t.state[s] == GS_SLOT_READY)
			rc = gs_float_accum_state(a.t.acc + (size_t) s * GS_ACC_WORDS, out);
	gs_table_free(&a.t);
	if (split > 0)
		gs_table_free(&b.t);
	return rc;
}

static void
test_avg_float(void)
{
	double		st[3],
				ref[3];
	static double v[60];

	/* two halves with different means, merged: float8_combine's between-means term */
	for (int i = 0; i < 60; i++)
		v[i] = (i < 25 ? 1000.0 : -5000.0) + (double) ((i * 7919) % 101) / 7.0;
	memset(ref, 0, sizeof(ref));
	for (int i = 0; i < 60; i++)
		yc_accum(ref, v[i]);
	CHECK(avg_state(v, NULL, 60, 0, st) == 0 && st[0] == 60 && st[1] == ref[1] && relerr(st[2], ref[2]) < 1e-12,
		  "one table: N and Sx as float8_accum's, Sxx within 1e-12");
	CHECK(avg_state(v, NULL, 60, 25, st) == 0 && st[0] == 60 && relerr(st[1], ref[1]) < 1e-15 &&
		  relerr(st[2], ref[2]) < 1e-12, "two tables merged (means 1000 and -5000): Sxx within 1e-12");
	/* far from zero, little spread: sum x^2 - Sx^2/N would keep nothing of Sxx */
	for (int i = 0; i < 60; i++)
		v[i] = 1e9 + (double) ((i * 37) % 11) / 4.0;
	memset(ref, 0, sizeof(ref));
	for (int i = 0; i < 60; i++)
		yc_accum(ref, v[i]);
	CHECK(avg_state(v, NULL, 60, 31, st) == 0 && relerr(st[2], ref[2]) < 1e-6,
		  "values 1e9 + [0, 2.5]: Sxx within 1e-6 of Youngs-Cramer's");
	printf("     Sxx %.17g vs float8_accum's %.17g\n", st[2], ref[2]);

	/* no input; NULLs only */
	{
		uint8_t		nulls[3] = {1, 1, 1};

		v[0] = v[1] = v[2] = 5;
		CHECK(avg_state(v, nulls, 3, 0, st) == 0 && st[0] == 0 && st[1] == 0 && st[2] == 0,
			  "all NULL: the initial state {0, 0, 0}");
	}
	/* Inf and NaN: Sx as IEEE adds them, Sxx NaN, no error */
	v[0] = INFINITY;
	v[1] = 1;
	CHECK(avg_state(v, NULL, 2, 0, st) == 0 && isinf(st[1]) && st[1] > 0 && isnan(st[2]), "{Inf, 1}: {2, Inf, NaN}");
	v[0] = 1;
	v[1] = -INFINITY;
	CHECK(avg_state(v, NULL, 2, 1, st) == 0 && isinf(st[1]) && st[1] < 0 && isnan(st[2]),
		  "{1} merged with {-Inf}: {2, -Inf, NaN}");
	v[0] = INFINITY;
	v[1] = -INFINITY;
	CHECK(avg_state(v, NULL, 2, 0, st) == 0 && isnan(st[1]) && isnan(st[2]), "{Inf, -Inf}: Sx NaN");
	v[0] = NAN;
	CHECK(avg_state(v, NULL, 1, 0, st) == 0 && st[0] == 1 && isnan(st[1]) && isnan(st[2]), "{NaN}: {1, NaN, NaN}");
	v[0] = 1e308;
	v[1] = 1e308;
	v[2] = INFINITY;
	CHECK(avg_state(v, NULL, 3, 0, st) == 0 && isinf(st[1]) && isnan(st[2]),
		  "an Inf input after an overflow: no error (float8_accum raises it only when the overflow came first)");

	/* finite inputs, infinite results: float8_accum's and float8_combine's overflow error */
	CHECK(avg_state(v, NULL, 2, 0, st) == -1, "{1e308, 1e308}: Sx overflows, an error");
	CHECK(avg_state(v, NULL, 2, 1, st) == -1, "{1e308} merged with {1e308}: Sx overflows, an error");
	v[0] = 1e200;
	v[1] = -1e200;
	CHECK(avg_state(v, NULL, 2, 0, st) == -1, "{1e200, -1e200}: Sxx overflows, an error (as in float8_accum)");
	CHECK(avg_state(v, NULL, 2, 1, st) == -1, "{1e200} merged with {-1e200}: Sxx overflows, an error (float8_combine)");
	v[0] = v[1] = v[2] = 9e307;
	CHECK(avg_state(v, NULL, 3, 0, st) == -1, "{9e307 x 3}: Sx overflows");
	v[0] = v[1] = v[2] = 1e160;
	CHECK(avg_state(v, NULL, 3, 1, st) == 0 && st[1] == 3e160 && st[2] == 0,
		  "{1e160 x 3}: no error (squares of values would overflow, of deviations not), Sxx 0");
	v[0] = -1e307;
	v[1] = 1e307;
	v[2] = 0;
	CHECK(avg_state(v, NULL, 3, 0, st) == -1, "{-1e307, 1e307, 0}: deviations beyond 1e154, an error");
}

/* int128 sums across the 64-bit boundary, both signs, on the carry path. */
static void
test_int128(void)
{
	uint64_t	lo = 0,
				hi = 0;
	__int128	ref = 0;
	uint64_t	s = 7;
	int			bad = 0;

	for (int i = 0; i < 200000; i++)
	{
		int64_t		v;

		s = s * 6364136223846793005ull + 1;
		v = (int64_t) s;
		if (i % 3 == 0)
			v = INT64_MAX - (int64_t) (s >> 40);
		if (i % 7 == 0)
			v = INT64_MIN + (int64_t) (s >> 40);
		gs_add_i128(&lo, &hi, v);
		ref += v;
		if ((__int128) (((unsigned __int128) hi << 64) | lo) != ref)
			bad++;
	}
	CHECK(bad == 0, "int128 accumulation (lo, hi words) matches __int128 over 200k mixed-sign adds");
}

/* ---- an inner equi-join --------------------------------------------------- */

#define NOUT 20000
#define NIN 3000

typedef struct JRef
{
	int64_t		n,
				sv,
				sw,
				maxw,
				dpn;
} JRef;

static void
test_join(void)
{
	static int64_t okey[NOUT];
	static int32_t ov[NOUT];
	static int16_t og[NOUT];
	static uint8_t okeyv[NOUT / 8 + 1];
	static int64_t ikey[NIN];
	static int32_t iw[NIN];
	static int16_t ig[NIN];
	static uint8_t ikeyv[NIN / 8 + 1],
				iwv[NIN / 8 + 1],
				ikeep[NIN / 8 + 1];
	JRef		ref[5][4];
	GsParams	p;
	GsJoinHash	jh;
	GsHostTable h;
	uint64_t	sd = 99;
	int			bad = 0,
				groups = 0,
				refgroups = 0;

	memset(ref, 0, sizeof(ref));
	for (uint32_t i = 0; i < NOUT; i++)
	{
		sd = sd * 6364136223846793005ull + 1442695040888963407ull;
		okey[i] = (int64_t) ((sd >> 33) % 1200);	/* some keys have no inner match */
		setbit8(okeyv, i, i % 23 != 0);
		ov[i] = (int32_t) ((sd >> 20) % 100);
		og[i] = (int16_t) (i % 5);
	}
	for (uint32_t i = 0; i < NIN; i++)
	{
		ikey[i] = i % 1000;		/* three inner rows per key */
		setbit8(ikeyv, i, i % 31 != 0);
		iw[i] = (int32_t) ((i * 37) % 100);
		setbit8(iwv, i, i % 11 != 0);
		ig[i] = (int16_t) (i % 4);
		setbit8(ikeep, i, i % 7 != 0);	/* contribution bounding dropped every 7th */
	}
	/* reference: nested loops, WHERE o.v > i.w (NULL w: unknown, dropped) */
	for (uint32_t o = 0; o < NOUT; o++)
		for (uint32_t i = 0; i < NIN; i++)
		{
			JRef	   *r = &ref[og[o]][ig[i]];

			if (!bit8(okeyv, o) || !bit8(ikeyv, i) || !bit8(ikeep, i) || okey[o] != ikey[i] ||
				!bit8(iwv, i) || !(ov[o] > iw[i]))
				continue;
			if (r->n == 0)
				r->maxw = INT64_MIN;
			r->n++;
			r->sv += ov[o];
			r->sw += iw[i];
			r->maxw = iw[i] > r->maxw ? iw[i] : r->maxw;
			r->dpn++;
		}
	memset(&p, 0, sizeof(p));
	p.nrows = NOUT;
	p.ncols = 5;
	p.cols[0] = (GsColumn) {(const uint8_t *) okey, okeyv, GS_I64, 0};
	p.cols[1] = (GsColumn) {(const uint8_t *) ov, NULL, GS_I32, 0};
	p.cols[2] = (GsColumn) {(const uint8_t *) og, NULL, GS_I16, 0};
	p.cols[3] = (GsColumn) {(const uint8_t *) iw, iwv, GS_I32, 1};
	p.cols[4] = (GsColumn) {(const uint8_t *) ig, NULL, GS_I16, 1};
	emit(&p, GS_OP_COL, 1, 0, 0, 0);
	emit(&p, GS_OP_COL, 3, 0, 0, 0);
	emit(&p, GS_OP_CMP, GS_GT, 0, 0, 0);
	p.nkeys = 2;
	p.keycol[0] = 2;
	p.keycol[1] = 4;
	p.naggs = 5;
	p.aggs[0] = (GsAgg) {GS_AGG_COUNT_STAR, -1, 0, 0, 0, 0};
	p.aggs[1] = (GsAgg) {GS_AGG_SUM_I64, 1, 0, 0, 0, 0};
	p.aggs[2] = (GsAgg) {GS_AGG_SUM_I64, 3, 0, 0, 0, 0};
	p.aggs[3] = (GsAgg) {GS_AGG_MAX_I64, 3, 0, 0, 0, 0};
	p.aggs[4] = (GsAgg) {GS_AGG_DP_COUNT, 3, 0, 0, 0, 0};
	{
		GsColumn	kc = {(const uint8_t *) ikey, ikeyv, GS_I64, 1};

		CHECK(gs_join_hash_build(&jh, &kc, ikeep, NIN), "inner hash built");
	}
	gs_join_attach(&p, &jh, 0);
	for (int a = 0; a < 5; a++)
		for (int b = 0; b < 4; b++)
			refgroups += ref[a][b].n > 0;

	for (int mode = 0; mode < 2; mode++)
	{
		GsTable		dev;
		uint32_t   *ovf = calloc(gs_bitmap_words(NOUT), sizeof(uint32_t));
		int64_t		over = 0;

		gs_host_table_init(&h, 16, p.naggs);
		if (mode == 0)
			gs_host_preagg(&p, &h, NULL);
		else
		{
			/* the device protocol with a table of 8 slots for 20 groups */
			gs_table_alloc(&dev, 8, p.naggs);
			for (uint32_t row = 0; row < NOUT; row++)
			{
				uint32_t	created = 0;

				if (gs_preagg_row(&p, &dev, row, &created) == GS_ROW_OVERFLOW)
				{
					ovf[row >> 5] |= 1u << (row & 31);
					over++;
				}
			}
			gs_host_preagg(&p, &h, ovf);
			gs_host_merge(&h, &p, &dev);
			gs_table_free(&dev);
		}
		bad = 0;
		groups = 0;
		for (uint32_t sl = 0; sl < h.t.cap; sl++)
		{
			const int64_t *k = h.t.keys + (size_t) sl * GS_MAX_KEYS;
			const uint64_t *w = h.t.acc + (size_t) sl * p.naggs * GS_ACC_WORDS;
			const JRef *r;

			if (h.t.state[sl] != GS_SLOT_READY || h.t.rows[sl] == 0)
				continue;
			groups++;
			r = &ref[k[0]][k[1]];
			if ((int64_t) W(w, 0, 0) != r->n || (int64_t) W(w, 1, 0) != r->sv || (int64_t) W(w, 2, 0) != r->sw ||
				(int64_t) W(w, 3, 0) != r->maxw || (int64_t) W(w, 4, 0) != r->dpn || (int64_t) h.t.rows[sl] != r->n)
				bad++;
		}
		if (mode == 0)
			CHECK(bad == 0 && groups == refgroups,
				  "join on the host: pairs, sums of both sides, max and dp_count equal nested loops");
		else
		{
			CHECK(over > 0 && bad == 0 && groups == refgroups,
				  "join, device protocol: 8-slot table, overflowing outer rows redone whole on the host, "
				  "no empty groups");
			printf("     %lld of %d outer rows overflowed; %d groups\n", (long long) over, NOUT, groups);
		}
		gs_table_free(&h.t);
		free(ovf);
	}
	printf("     inner rows in the hash: %u of %d (NULL keys and bounded-out rows left out)\n", jh.inserted, NIN);
	{
		uint32_t	expect = 0;

		for (uint32_t i = 0; i < NIN; i++)
			expect += bit8(ikeyv, i) && bit8(ikeep, i);
		CHECK(jh.inserted == expect, "NULL keys and rows dropped by bounding are not in the inner hash");
	}
	gs_join_hash_free(&jh);
}

int
main(void)
{
	test_float_order();
	test_three_valued();
	test_preagg();
	test_columns_equal_rows();
	test_sum_f64_overflow_flag();
	test_avg_float();
	test_int128();
	test_join();
	UNIT_DONE();
}
