/*
 * gs_logic.h: the per-row logic of gpu_scan, compiled twice.
 *
 * nvcc compiles it into the CUDA kernels (gs_kernels.cu); the C compiler
 * compiles it into the host path (gs_host.c), which CI runs.  The same
 * source decides, for each row of a row group: does it pass the filter, which
 * group does it belong to, and how does it change that group's partial
 * aggregate states.  Only the atomics differ (GS_ATOMIC_*): real atomics on
 * the device, plain loads and stores on the single-threaded host.
 *
 * No PostgreSQL headers: inputs are plain column arrays in the .dseal chunk
 * layout (fixed-width little-endian values, an LSB-first validity bitmap),
 * which is what the decrypted chunks already are (../../common/colbuf.h).
 *
 * Values are widened to int64 (bool, int2, int4, int8, date, timestamp,
 * dictionary codes of text) or double (float4, float8).  The filter is a
 * postfix program with SQL's three-valued logic; a row is kept when it
 * evaluates to true.
 */
#ifndef GS_LOGIC_H
#define GS_LOGIC_H

#ifdef __CUDACC__
#define GS_FN static __device__ __host__ inline
#else
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#define GS_FN static inline
#endif

#define GS_MAX_COLS		16		/* input columns one kernel reads */
#define GS_MAX_KEYS		4		/* GROUP BY columns */
#define GS_MAX_AGGS		16		/* partial aggregates */
#define GS_MAX_PROG		64		/* filter instructions */
#define GS_STACK		16		/* filter evaluation depth */
#define GS_ACC_WORDS	4		/* accumulator words per aggregate */
#define GS_MAX_PROBES	64		/* hash probes before a row overflows to the host */

/* How a column's values are stored (one per .dseal fixed-width encoding). */
typedef enum GsKind
{
	GS_BOOL = 1,				/* uint8 0/1 */
	GS_I16,
	GS_I32,						/* int4, date, dictionary code of a text key */
	GS_I64,						/* int8, timestamp(tz) */
	GS_F32,
	GS_F64
} GsKind;

typedef struct GsColumn
{
	const uint8_t *data;		/* nrows * width bytes */
	const uint8_t *valid;		/* validity bitmap, or NULL: no NULLs */
	int32_t		kind;			/* GsKind */
	int32_t		side;			/* 0: the streamed (outer) table, 1: the join's inner table */
} GsColumn;

/* The rows a value comes from: r[0] in the outer batch, r[1] in the inner table. */
typedef struct GsRow
{
	uint32_t	r[2];
} GsRow;

/*
 * An inner equi-join: the inner table is whole in memory with a chained
 * hash on its join key (built on the host; rows with a NULL key or dropped
 * by contribution bounding are not in it), the outer table streams.
 */
typedef struct GsJoin
{
	uint32_t	nbuckets;		/* power of two; 0: no join */
	uint32_t	inner_nrows;
	int32_t		outer_keycol;	/* column (side 0) holding the outer key */
	int32_t		pad;
	const uint32_t *head;		/* nbuckets: first inner row + 1, 0 = none */
	const uint32_t *next;		/* inner_nrows: next inner row + 1 in the chain */
	const int64_t *key;			/* inner_nrows: the inner key */
} GsJoin;

/* Filter instructions (postfix). */
typedef enum GsOp
{
	GS_OP_COL = 1,				/* push column a (as a double when isf) */
	GS_OP_CONST,				/* push ival / fval (isf) */
	GS_OP_CMP,					/* pop b, a; push a <cmp> b (a: GsCmp), numeric or float */
	GS_OP_AND,					/* pop b, a; push a AND b (three-valued) */
	GS_OP_OR,
	GS_OP_NOT,
	GS_OP_ISNULL,				/* pop a; push a IS NULL */
	GS_OP_ISNOTNULL,
	GS_OP_ISTRUE				/* pop a (a bool value); push it as a truth value */
} GsOp;

typedef enum GsCmp
{
	GS_LT = 1, GS_LE, GS_EQ, GS_GE, GS_GT, GS_NE
} GsCmp;

typedef struct GsInstr
{
	int32_t		op;				/* GsOp */
	int32_t		a;				/* column index or GsCmp */
	int32_t		isf;			/* operands are float */
	int32_t		pad;
	int64_t		ival;
	double		fval;
} GsInstr;

/* Partial aggregates computed per group. */
typedef enum GsAggOp
{
	GS_AGG_COUNT_STAR = 1,		/* w0 = rows */
	GS_AGG_COUNT,				/* w0 = non-NULL rows of col */
	GS_AGG_SUM_I64,				/* w0 = sum (wraps, as int4_avg_accum's), w1 = non-NULL rows: the
								 * int8 state of sum(int2|int4), the {count, sum} of avg(int2|int4) */
	GS_AGG_SUM_F64,				/* w0 = double sum (bits), w1 = non-NULL rows, w2 = 1 after an
								 * infinite input (an infinite sum without one is float8pl's
								 * overflow error) */
	GS_AGG_MIN_I64,				/* w0 = min, w1 = non-NULL rows */
	GS_AGG_MAX_I64,
	GS_AGG_MIN_F64,				/* w0 = gs_f64_order(min), w1 = non-NULL rows */
	GS_AGG_MAX_F64,
	GS_AGG_DP_COUNT,			/* w0 = non-NULL rows */
	GS_AGG_DP_SUM_I64,			/* w0 = count, w1/w2 = int128 sum (lo, hi) of clamped values */
	GS_AGG_DP_SUM_F64,			/* the same in 1e-6 units, NaN as NULL (dp_agg.c) */
	GS_AGG_AVG_F64,				/* float8_accum's {N, Sx, Sxx} (avg of floats), see below */
	GS_AGG_SUM_I128,			/* w0 = non-NULL rows, w1/w2 = int128 sum (lo, hi): sum(int8),
								 * which PostgreSQL keeps in an int128 too */
	GS_AGG_HOST					/* not a kernel's: folded by the host outside the kernels (min and
								 * max of text, gs_exec.c; lo_i -1 min, 1 max); the kernels leave
								 * its words alone */
} GsAggOp;

/*
 * GS_AGG_AVG_F64's words: w0 = N (non-NULL rows), w1 = Sx (double sum),
 * w2 = sum of (x - K)^2 (double; NaN once an Inf or NaN input was seen),
 * w3 = K (double bits), the group's first finite input, GS_SHIFT_UNSET until
 * there is one.  Youngs-Cramer, as float8_accum does it, updates three words
 * together, which atomics cannot; sums of squares about a value of the group
 * can be added in any order, and gs_float_accum_state() (gs_host.c) turns
 * them into float8_accum's Sxx = sum of (x - Sx/N)^2:
 *     Sxx = sum (x - K)^2 - N * (Sx/N - K)^2
 * which, K being a value of the group, keeps the cancellation small (unlike
 * sum x^2 - Sx^2/N) and overflows about where PostgreSQL's Sxx does: when
 * deviations, not values, are beyond 1e154.
 */
#define GS_SHIFT_UNSET	0x7FF4000000005AFEull	/* a NaN: never a finite input's bits */

typedef struct GsAgg
{
	int32_t		op;				/* GsAggOp */
	int32_t		col;			/* input column; -1 for count(*) */
	int64_t		lo_i;			/* DP int8 bounds, or float bounds in 1e-6 units */
	int64_t		hi_i;
	double		lo_f;			/* DP float bounds */
	double		hi_f;
} GsAgg;

/* Everything a kernel needs besides the table; passed by value (< 4 KB). */
typedef struct GsParams
{
	int32_t		ncols;
	int32_t		nprog;
	int32_t		nkeys;
	int32_t		naggs;
	uint32_t	nrows;
	int32_t		pad;
	const uint8_t *keep;		/* contribution-bounding bitmap (1 = keep), or NULL */
	GsJoin		join;
	GsColumn	cols[GS_MAX_COLS];
	GsInstr		prog[GS_MAX_PROG];
	int32_t		keycol[GS_MAX_KEYS];
	GsAgg		aggs[GS_MAX_AGGS];
} GsParams;

/*
 * Open-addressing group table.  A slot is claimed by moving state from
 * EMPTY to BUSY (compare-and-swap on the device), filled, then published as
 * READY; readers that see BUSY wait for READY before comparing keys.
 */
#define GS_SLOT_EMPTY	0u
#define GS_SLOT_BUSY	1u
#define GS_SLOT_READY	2u

typedef struct GsTable
{
	uint32_t	cap;			/* power of two */
	int32_t		naggs;
	uint32_t   *state;			/* cap */
	uint64_t   *rows;			/* cap: rows aggregated (a join may create a slot it then leaves empty) */
	int64_t    *keys;			/* cap * GS_MAX_KEYS */
	uint32_t   *nullmask;		/* cap: bit k set = key k is NULL */
	uint64_t   *acc;			/* cap * naggs * GS_ACC_WORDS */
} GsTable;

/* ---- atomics: the only place device and host differ ---------------------- */

#ifdef __CUDA_ARCH__
#define GS_ATOMIC_ADD_U64(p, v)	atomicAdd((unsigned long long *) (p), (unsigned long long) (v))
#define GS_ATOMIC_MIN_I64(p, v)	atomicMin((long long *) (p), (long long) (v))
#define GS_ATOMIC_MAX_I64(p, v)	atomicMax((long long *) (p), (long long) (v))
#define GS_ATOMIC_MIN_U64(p, v)	atomicMin((unsigned long long *) (p), (unsigned long long) (v))
#define GS_ATOMIC_MAX_U64(p, v)	atomicMax((unsigned long long *) (p), (unsigned long long) (v))
#define GS_ATOMIC_ADD_F64(p, v)	atomicAdd((double *) (p), (v))
#define GS_ATOMIC_CAS_U32(p, o, n) atomicCAS((unsigned int *) (p), (o), (n))
#define GS_ATOMIC_CAS_U64(p, o, n) atomicCAS((unsigned long long *) (p), (unsigned long long) (o), \
											 (unsigned long long) (n))
#define GS_ATOMIC_OR_U32(p, v)	atomicOr((unsigned int *) (p), (v))
#define GS_FENCE()				__threadfence()
#define GS_VOLATILE_LOAD_U32(p)	(*(volatile uint32_t *) (p))
#else
GS_FN uint64_t gs_add_u64(uint64_t *p, uint64_t v) { uint64_t o = *p; *p = o + v; return o; }
GS_FN void gs_min_i64(int64_t *p, int64_t v) { if (v < *p) *p = v; }
GS_FN void gs_max_i64(int64_t *p, int64_t v) { if (v > *p) *p = v; }
GS_FN void gs_min_u64(uint64_t *p, uint64_t v) { if (v < *p) *p = v; }
GS_FN void gs_max_u64(uint64_t *p, uint64_t v) { if (v > *p) *p = v; }
GS_FN void gs_add_f64(double *p, double v) { *p += v; }
GS_FN uint32_t gs_cas_u32(uint32_t *p, uint32_t o, uint32_t n) { uint32_t c = *p; if (c == o) *p = n; return c; }
GS_FN uint64_t gs_cas_u64(uint64_t *p, uint64_t o, uint64_t n) { uint64_t c = *p; if (c == o) *p = n; return c; }
#define GS_ATOMIC_ADD_U64(p, v)	gs_add_u64((uint64_t *) (p), (uint64_t) (v))
#define GS_ATOMIC_MIN_I64(p, v)	gs_min_i64((int64_t *) (p), (v))
#define GS_ATOMIC_MAX_I64(p, v)	gs_max_i64((int64_t *) (p), (v))
#define GS_ATOMIC_MIN_U64(p, v)	gs_min_u64((uint64_t *) (p), (v))
#define GS_ATOMIC_MAX_U64(p, v)	gs_max_u64((uint64_t *) (p), (v))
#define GS_ATOMIC_ADD_F64(p, v)	gs_add_f64((double *) (p), (v))
#define GS_ATOMIC_CAS_U32(p, o, n) gs_cas_u32((uint32_t *) (p), (o), (n))
#define GS_ATOMIC_CAS_U64(p, o, n) gs_cas_u64((uint64_t *) (p), (o), (n))
#define GS_ATOMIC_OR_U32(p, v)	(*(uint32_t *) (p) |= (v))
#define GS_FENCE()				((void) 0)
#define GS_VOLATILE_LOAD_U32(p)	(*(p))
#endif

/* ---- values ------------------------------------------------------------ */

typedef struct GsValue
{
	int64_t		i;
	double		f;
	int32_t		isnull;
} GsValue;

GS_FN int
gs_is_null(const GsColumn *c, uint32_t row)
{
	return c->valid != 0 && !(c->valid[row >> 3] & (1u << (row & 7)));
}

GS_FN int
gs_kind_is_float(int32_t kind)
{
	return kind == GS_F32 || kind == GS_F64;
}

/* Bytes per value of a kind. */
GS_FN size_t
gs_width(int32_t kind)
{
	return kind == GS_BOOL ? 1 : kind == GS_I16 ? 2 : (kind == GS_I32 || kind == GS_F32) ? 4 : 8;
}

/* Little-endian loads through memcpy: chunk buffers carry no alignment promise. */
GS_FN int64_t
gs_load_i(const GsColumn *c, uint32_t row)
{
	switch (c->kind)
	{
		case GS_BOOL:
			return c->data[row] != 0;
		case GS_I16:
			{
				int16_t		v;

				memcpy(&v, c->data + (size_t) row * 2, 2);
				return v;
			}
		case GS_I32:
			{
				int32_t		v;

				memcpy(&v, c->data + (size_t) row * 4, 4);
				return v;
			}
		default:
			{
				int64_t		v;

				memcpy(&v, c->data + (size_t) row * 8, 8);
				return v;
			}
	}
}

/* A value as a double: floats as stored, integers converted as PostgreSQL's casts do. */
GS_FN double
gs_load_f(const GsColumn *c, uint32_t row)
{
	if (!gs_kind_is_float(c->kind))
		return (double) gs_load_i(c, row);
	if (c->kind == GS_F32)
	{
		float		v;

		memcpy(&v, c->data + (size_t) row * 4, 4);
		return (double) v;
	}
	else
	{
		double		v;

		memcpy(&v, c->data + (size_t) row * 8, 8);
		return v;
	}
}

/*
 * A double as an unsigned integer with the same order as PostgreSQL's float8
 * comparisons: -0 equals +0, every NaN equals every other and sorts above
 * +Infinity.  Lets min/max of floats use integer atomics.
 */
GS_FN uint64_t
gs_f64_order(double d)
{
	uint64_t	b;

	if (d != d)
		return 0xFFF8000000000000ull;	/* above the image of +Inf (0xFFF0...) */
	if (d == 0.0)
		d = 0.0;				/* -0 -> +0 */
	memcpy(&b, &d, 8);
	return (b >> 63) ? ~b : (b | 0x8000000000000000ull);
}

GS_FN double
gs_f64_from_order(uint64_t o)
{
	uint64_t	b;
	double		d;

	if (o == 0xFFF8000000000000ull)
		b = 0x7FF8000000000000ull;	/* the canonical NaN */
	else
		b = (o >> 63) ? (o & 0x7FFFFFFFFFFFFFFFull) : ~o;
	memcpy(&d, &b, 8);
	return d;
}

/* PostgreSQL's float8 comparison (float8_cmp_internal): NaN above all, NaN = NaN. */
GS_FN int
gs_f64_cmp(double a, double b)
{
	if (a != a)
		return (b != b) ? 0 : 1;
	if (b != b)
		return -1;
	return a < b ? -1 : (a > b ? 1 : 0);
}

GS_FN int
gs_cmp_holds(int32_t cmp, int c)
{
	switch (cmp)
	{
		case GS_LT:
			return c < 0;
		case GS_LE:
			return c <= 0;
		case GS_EQ:
			return c == 0;
		case GS_GE:
			return c >= 0;
		case GS_GT:
			return c > 0;
		default:
			return c != 0;
	}
}

/* ---- the filter -------------------------------------------------------- */

/* Truth values of SQL: 0 false, 1 true, 2 unknown (NULL). */
#define GS_FALSE	0
#define GS_TRUE		1
#define GS_UNKNOWN	2

/*
 * Evaluate the program on one row; GS_TRUE keeps it.  An empty program keeps
 * every row.  Malformed programs (checked by the planner) evaluate to
 * unknown, so they drop rows rather than invent them.
 */
GS_FN int
gs_eval_filter(const GsParams *p, GsRow rr)
{
	GsValue		st[GS_STACK];
	int			sp = 0;

	if (p->nprog == 0)
		return GS_TRUE;
	for (int k = 0; k < p->nprog; k++)
	{
		const GsInstr *in = &p->prog[k];

		switch (in->op)
		{
			case GS_OP_COL:
				{
					const GsColumn *c = &p->cols[in->a];
					uint32_t	row = rr.r[c->side];

					if (sp >= GS_STACK)
						return GS_UNKNOWN;
					st[sp].isnull = gs_is_null(c, row);
					st[sp].i = 0;
					st[sp].f = 0;
					if (st[sp].isnull)
						;
					else if (in->isf)	/* a float comparison: integers widen as PostgreSQL casts */
						st[sp].f = gs_load_f(c, row);
					else
						st[sp].i = gs_load_i(c, row);
					sp++;
					break;
				}
			case GS_OP_CONST:
				if (sp >= GS_STACK)
					return GS_UNKNOWN;
				st[sp].i = in->ival;
				st[sp].f = in->fval;
				st[sp].isnull = 0;
				sp++;
				break;
			case GS_OP_CMP:
				{
					int			c;

					if (sp < 2)
						return GS_UNKNOWN;
					sp--;
					if (st[sp - 1].isnull || st[sp].isnull)
					{
						st[sp - 1].isnull = 0;
						st[sp - 1].i = GS_UNKNOWN;
						break;
					}
					if (in->isf)
						c = gs_f64_cmp(st[sp - 1].f, st[sp].f);
					else
						c = st[sp - 1].i < st[sp].i ? -1 : (st[sp - 1].i > st[sp].i ? 1 : 0);
					st[sp - 1].i = gs_cmp_holds(in->a, c) ? GS_TRUE : GS_FALSE;
					break;
				}
			case GS_OP_AND:
			case GS_OP_OR:
				{
					int64_t		a,
								b;

					if (sp < 2)
						return GS_UNKNOWN;
					sp--;
					a = st[sp - 1].i;
					b = st[sp].i;
					if (in->op == GS_OP_AND)
						st[sp - 1].i = (a == GS_FALSE || b == GS_FALSE) ? GS_FALSE
							: (a == GS_TRUE && b == GS_TRUE) ? GS_TRUE : GS_UNKNOWN;
					else
						st[sp - 1].i = (a == GS_TRUE || b == GS_TRUE) ? GS_TRUE
							: (a == GS_FALSE && b == GS_FALSE) ? GS_FALSE : GS_UNKNOWN;
					break;
				}
			case GS_OP_NOT:
				if (sp < 1)
					return GS_UNKNOWN;
				if (st[sp - 1].i != GS_UNKNOWN)
					st[sp - 1].i = st[sp - 1].i == GS_TRUE ? GS_FALSE : GS_TRUE;
				break;
			case GS_OP_ISNULL:
			case GS_OP_ISNOTNULL:
				if (sp < 1)
					return GS_UNKNOWN;
				st[sp - 1].i = (st[sp - 1].isnull != 0) == (in->op == GS_OP_ISNULL) ? GS_TRUE : GS_FALSE;
				st[sp - 1].isnull = 0;
				break;
			case GS_OP_ISTRUE:
				if (sp < 1)
					return GS_UNKNOWN;
				st[sp - 1].i = st[sp - 1].isnull ? GS_UNKNOWN : (st[sp - 1].i ? GS_TRUE : GS_FALSE);
				st[sp - 1].isnull = 0;
				break;
			default:
				return GS_UNKNOWN;
		}
	}
	return sp == 1 ? (int) st[0].i : GS_UNKNOWN;
}

/* Is outer row `row` kept by contribution bounding? */
GS_FN int
gs_row_kept(const GsParams *p, uint32_t row)
{
	return p->keep == 0 || (p->keep[row >> 3] & (1u << (row & 7)));
}

/* Is a row (a pair of rows in a join) selected: kept, and true under the filter? */
GS_FN int
gs_row_selected(const GsParams *p, GsRow rr)
{
	return gs_row_kept(p, rr.r[0]) && gs_eval_filter(p, rr) == GS_TRUE;
}

/* A row of a scan without a join. */
GS_FN GsRow
gs_row1(uint32_t row)
{
	GsRow		rr;

	rr.r[0] = row;
	rr.r[1] = 0;
	return rr;
}

/* ---- grouping ------------------------------------------------------------ */

/* The group key of a row: one int64 per key (floats by gs_f64_order), NULL mask. */
GS_FN void
gs_row_key(const GsParams *p, GsRow rr, int64_t key[GS_MAX_KEYS], uint32_t *nullmask)
{
	*nullmask = 0;
	for (int k = 0; k < GS_MAX_KEYS; k++)
		key[k] = 0;
	for (int k = 0; k < p->nkeys; k++)
	{
		const GsColumn *c = &p->cols[p->keycol[k]];
		uint32_t	row = rr.r[c->side];

		if (gs_is_null(c, row))
			*nullmask |= 1u << k;
		else if (gs_kind_is_float(c->kind))
			key[k] = (int64_t) gs_f64_order(gs_load_f(c, row));
		else
			key[k] = gs_load_i(c, row);
	}
}

/* splitmix64 finaliser over the key words. */
GS_FN uint64_t
gs_mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

GS_FN uint64_t
gs_key_hash(const int64_t key[GS_MAX_KEYS], uint32_t nullmask, int nkeys)
{
	uint64_t	h = gs_mix64(0x9e3779b97f4a7c15ull ^ nullmask);

	for (int k = 0; k < nkeys; k++)
		h = gs_mix64(h ^ (uint64_t) key[k]);
	return h;
}

GS_FN int
gs_key_equal(const GsTable *t, uint32_t slot, const int64_t key[GS_MAX_KEYS], uint32_t nullmask, int nkeys)
{
	if (t->nullmask[slot] != nullmask)
		return 0;
	for (int k = 0; k < nkeys; k++)
		if (t->keys[(size_t) slot * GS_MAX_KEYS + k] != key[k])
			return 0;
	return 1;
}

/* Empty accumulators: zero, except the identities of min and max, and an unset shift. */
GS_FN void
gs_acc_init(const GsAgg *aggs, int naggs, uint64_t *acc)
{
	for (int a = 0; a < naggs; a++)
	{
		uint64_t   *w = acc + (size_t) a * GS_ACC_WORDS;

		w[0] = w[1] = w[2] = w[3] = 0;
		switch (aggs[a].op)
		{
			case GS_AGG_AVG_F64:
				w[3] = GS_SHIFT_UNSET;
				break;
			case GS_AGG_MIN_I64:
				w[0] = (uint64_t) INT64_MAX;
				break;
			case GS_AGG_MAX_I64:
				w[0] = (uint64_t) INT64_MIN;
				break;
			case GS_AGG_MIN_F64:
				w[0] = ~0ull;
				break;
			default:
				break;
		}
	}
}

/*
 * Find or create the slot of a key (*created says which).  Returns the slot,
 * or -1 when the table has no free slot within GS_MAX_PROBES (the caller
 * hands the row to the host, which grows its own table).
 */
GS_FN int64_t
gs_find_slot(const GsParams *p, GsTable *t, const int64_t key[GS_MAX_KEYS], uint32_t nullmask,
			 int *created)
{
	uint64_t	h = gs_key_hash(key, nullmask, p->nkeys);
	uint32_t	mask = t->cap - 1;

	*created = 0;
	for (uint32_t probe = 0; probe < GS_MAX_PROBES && probe < t->cap; probe++)
	{
		uint32_t	slot = (uint32_t) (h + probe) & mask;
		uint32_t	st = GS_VOLATILE_LOAD_U32(&t->state[slot]);

		if (st == GS_SLOT_EMPTY)
		{
			st = GS_ATOMIC_CAS_U32(&t->state[slot], GS_SLOT_EMPTY, GS_SLOT_BUSY);
			if (st == GS_SLOT_EMPTY)
			{
				for (int k = 0; k < GS_MAX_KEYS; k++)
					t->keys[(size_t) slot * GS_MAX_KEYS + k] = key[k];
				t->nullmask[slot] = nullmask;
				t->rows[slot] = 0;
				gs_acc_init(p->aggs, p->naggs, t->acc + (size_t) slot * t->naggs * GS_ACC_WORDS);
				GS_FENCE();
				t->state[slot] = GS_SLOT_READY;
				*created = 1;
				return slot;
			}
		}
		while (st == GS_SLOT_BUSY)	/* another thread is filling it in */
			st = GS_VOLATILE_LOAD_U32(&t->state[slot]);
		GS_FENCE();
		if (gs_key_equal(t, slot, key, nullmask, p->nkeys))
			return slot;
	}
	return -1;
}

/* Add a signed 64-bit value to a two's complement int128 kept as (lo, hi). */
GS_FN void
gs_add_i128(uint64_t *lo, uint64_t *hi, int64_t v)
{
	uint64_t	old = GS_ATOMIC_ADD_U64(lo, (uint64_t) v);
	uint64_t	carry = (old + (uint64_t) v) < old ? 1 : 0;
	uint64_t	ext = v < 0 ? ~0ull : 0;

	if (carry + ext != 0)
		GS_ATOMIC_ADD_U64(hi, carry + ext);
}

/* Clamp a double into [lo, hi], then to 1e-6 units, as dp_sum_float8_trans does. */
GS_FN int64_t
gs_dp_float_units(double v, const GsAgg *g)
{
	int64_t		u;

	v = v < g->lo_f ? g->lo_f : (v > g->hi_f ? g->hi_f : v);
	u = (int64_t) rint(v * 1000000.0);
	return u < g->lo_i ? g->lo_i : (u > g->hi_i ? g->hi_i : u);
}

/*
 * The folds of one non-NULL value, one per kind of accumulator: the one
 * definition of each state's arithmetic, used by gs_acc_value below and by
 * the host build's column loops (gs_host.c).
 */
GS_FN void
gs_fold_sum_i64(uint64_t *w, int64_t v)
{
	GS_ATOMIC_ADD_U64(&w[0], (uint64_t) v);
	GS_ATOMIC_ADD_U64(&w[1], 1);
}

GS_FN void
gs_fold_sum_f64(uint64_t *w, double v)
{
	GS_ATOMIC_ADD_F64(&w[0], v);
	GS_ATOMIC_ADD_U64(&w[1], 1);
	if (v == v && v - v != 0.0) /* +-Infinity (not NaN) */
		GS_ATOMIC_MAX_U64(&w[2], 1);
}

GS_FN void
gs_fold_min_i64(uint64_t *w, int64_t v)
{
	GS_ATOMIC_MIN_I64(&w[0], v);
	GS_ATOMIC_ADD_U64(&w[1], 1);
}

GS_FN void
gs_fold_max_i64(uint64_t *w, int64_t v)
{
	GS_ATOMIC_MAX_I64(&w[0], v);
	GS_ATOMIC_ADD_U64(&w[1], 1);
}

GS_FN void
gs_fold_min_f64(uint64_t *w, double v)
{
	GS_ATOMIC_MIN_U64(&w[0], gs_f64_order(v));
	GS_ATOMIC_ADD_U64(&w[1], 1);
}

GS_FN void
gs_fold_max_f64(uint64_t *w, double v)
{
	GS_ATOMIC_MAX_U64(&w[0], gs_f64_order(v));
	GS_ATOMIC_ADD_U64(&w[1], 1);
}

GS_FN void
gs_fold_sum_i128(uint64_t *w, int64_t v)
{
	gs_add_i128(&w[1], &w[2], v);
	GS_ATOMIC_ADD_U64(&w[0], 1);
}

GS_FN void
gs_fold_dp_sum_i64(const GsAgg *g, uint64_t *w, int64_t v)
{
	v = v < g->lo_i ? g->lo_i : (v > g->hi_i ? g->hi_i : v);
	gs_add_i128(&w[1], &w[2], v);
	GS_ATOMIC_ADD_U64(&w[0], 1);
}

GS_FN void
gs_fold_dp_sum_f64(const GsAgg *g, uint64_t *w, double v)
{
	if (v != v)
		return;					/* NaN counts as NULL */
	gs_add_i128(&w[1], &w[2], gs_dp_float_units(v, g));
	GS_ATOMIC_ADD_U64(&w[0], 1);
}

GS_FN void
gs_fold_avg_f64(uint64_t *w, double v)
{
	GS_ATOMIC_ADD_U64(&w[0], 1);
	GS_ATOMIC_ADD_F64(&w[1], v);
	if (v - v == 0.0)			/* finite */
	{
		uint64_t	vb,
					kb;
		double		k;

		memcpy(&vb, &v, 8);
		kb = GS_ATOMIC_CAS_U64(&w[3], GS_SHIFT_UNSET, vb);
		if (kb == GS_SHIFT_UNSET)
			kb = vb;			/* this row's value is the group's shift */
		memcpy(&k, &kb, 8);
		GS_ATOMIC_ADD_F64(&w[2], (v - k) * (v - k));
	}
	else						/* Inf or NaN: Sxx is NaN, as float8_accum makes it */
		GS_ATOMIC_ADD_F64(&w[2], v - v);
}

/*
 * Fold one value (row `row` of column c) into one aggregate's accumulator
 * words w.  Each accumulator sees its rows in the order they are folded, so
 * a caller that folds column by column (the host build) gets what one that
 * folds row by row gets.
 */
GS_FN void
gs_acc_value(const GsAgg *g, uint64_t *w, const GsColumn *c, uint32_t row)
{
	if (g->op == GS_AGG_COUNT_STAR)
	{
		GS_ATOMIC_ADD_U64(&w[0], 1);
		return;
	}
	if (g->op == GS_AGG_HOST || c == 0)
		return;
	if (gs_is_null(c, row))
		return;
	switch (g->op)
	{
		case GS_AGG_COUNT:
		case GS_AGG_DP_COUNT:
			GS_ATOMIC_ADD_U64(&w[0], 1);
			break;
		case GS_AGG_SUM_I64:
			gs_fold_sum_i64(w, gs_load_i(c, row));
			break;
		case GS_AGG_SUM_F64:
			gs_fold_sum_f64(w, gs_load_f(c, row));
			break;
		case GS_AGG_SUM_I128:
			gs_fold_sum_i128(w, gs_load_i(c, row));
			break;
		case GS_AGG_MIN_I64:
			gs_fold_min_i64(w, gs_load_i(c, row));
			break;
		case GS_AGG_MAX_I64:
			gs_fold_max_i64(w, gs_load_i(c, row));
			break;
		case GS_AGG_MIN_F64:
			gs_fold_min_f64(w, gs_load_f(c, row));
			break;
		case GS_AGG_MAX_F64:
			gs_fold_max_f64(w, gs_load_f(c, row));
			break;
		case GS_AGG_DP_SUM_I64:
			gs_fold_dp_sum_i64(g, w, gs_load_i(c, row));
			break;
		case GS_AGG_DP_SUM_F64:
			gs_fold_dp_sum_f64(g, w, gs_load_f(c, row));
			break;
		case GS_AGG_AVG_F64:
			gs_fold_avg_f64(w, gs_load_f(c, row));
			break;
		default:
			break;
	}
}

/* Fold one selected row into its group's accumulators. */
GS_FN void
gs_accumulate(const GsParams *p, GsTable *t, uint32_t slot, GsRow rr)
{
	uint64_t   *acc = t->acc + (size_t) slot * t->naggs * GS_ACC_WORDS;

	GS_ATOMIC_ADD_U64(&t->rows[slot], 1);
	for (int a = 0; a < p->naggs; a++)
	{
		const GsAgg *g = &p->aggs[a];
		const GsColumn *c = g->col >= 0 ? &p->cols[g->col] : 0;

		gs_acc_value(g, acc + (size_t) a * GS_ACC_WORDS, c, c ? rr.r[c->side] : 0);
	}
}

/* Row outcome of the pre-aggregation step. */
#define GS_ROW_SKIPPED		0
#define GS_ROW_DONE			1
#define GS_ROW_OVERFLOW		2

/* The outer row's join key, or 0 with *isnull. */
GS_FN int64_t
gs_outer_key(const GsParams *p, uint32_t row, int *isnull)
{
	const GsColumn *c = &p->cols[p->join.outer_keycol];

	*isnull = gs_is_null(c, row);
	return *isnull ? 0 : gs_load_i(c, row);
}

/* First inner row (+1) in the chain of key, 0 at the end. */
GS_FN uint32_t
gs_join_first(const GsParams *p, int64_t key)
{
	return p->join.head[gs_mix64((uint64_t) key) & (p->join.nbuckets - 1)];
}

/*
 * Filter, group and accumulate one outer row: the body of the preagg
 * kernel.  With a join, every matching inner row makes a pair; the slots of
 * all pairs are found (created) first, so that a row whose groups do not all
 * fit is handed to the host whole, before anything of it was aggregated.
 */
GS_FN int
gs_preagg_row(const GsParams *p, GsTable *t, uint32_t row, uint32_t *ncreated)
{
	int64_t		key[GS_MAX_KEYS];
	uint32_t	nullmask;
	int64_t		slot;
	int			created;
	GsRow		rr = gs_row1(row);

	if (!gs_row_kept(p, row))
		return GS_ROW_SKIPPED;
	if (p->join.nbuckets == 0)
	{
		if (gs_eval_filter(p, rr) != GS_TRUE)
			return GS_ROW_SKIPPED;
		gs_row_key(p, rr, key, &nullmask);
		slot = gs_find_slot(p, t, key, nullmask, &created);
		if (slot < 0)
			return GS_ROW_OVERFLOW;
		*ncreated += created;
		gs_accumulate(p, t, (uint32_t) slot, rr);
		return GS_ROW_DONE;
	}
	else
	{
		int			isnull;
		int64_t		jk = gs_outer_key(p, row, &isnull);
		int			any = 0;

		if (isnull)
			return GS_ROW_SKIPPED;	/* NULL never equals */
		for (int pass = 0; pass < 2; pass++)
			for (uint32_t ir = gs_join_first(p, jk); ir != 0; ir = p->join.next[ir - 1])
			{
				if (p->join.key[ir - 1] != jk)
					continue;
				rr.r[1] = ir - 1;
				if (gs_eval_filter(p, rr) != GS_TRUE)
					continue;
				gs_row_key(p, rr, key, &nullmask);
				slot = gs_find_slot(p, t, key, nullmask, &created);
				if (slot < 0)
					return GS_ROW_OVERFLOW;	/* only in pass 0: pass 1 finds what pass 0 made */
				*ncreated += created;
				if (pass == 1)
					gs_accumulate(p, t, (uint32_t) slot, rr);
				any = 1;
			}
		return any ? GS_ROW_DONE : GS_ROW_SKIPPED;
	}
}

/* ---- the kernels' bodies ---------------------------------------------------- */

/* What a launch reports back (device memory, zeroed by the host before it). */
typedef struct GsCounters
{
	unsigned long long selected;
	unsigned long long overflow;
} GsCounters;

/*
 * One row of the gs_preagg kernel (gs_kernels.cu runs it in a grid-stride
 * loop; the libcuda simulator in tools/ runs it in a plain loop): rows whose
 * groups find no slot are flagged in overflow_bits (LSB first) for the host.
 * Returns 1 when the row contributed (the caller sums these into selected).
 */
GS_FN int
gs_preagg_kernel_row(const GsParams *p, GsTable *t, uint32_t *overflow_bits, GsCounters *ctr, uint32_t row)
{
	uint32_t	created = 0;
	int			r = gs_preagg_row(p, t, row, &created);

	if (r == GS_ROW_OVERFLOW)
	{
		GS_ATOMIC_OR_U32(&overflow_bits[row >> 5], 1u << (row & 31));
		GS_ATOMIC_ADD_U64(&ctr->overflow, 1);
	}
	return r != GS_ROW_SKIPPED;
}

/* One row of the gs_filter kernel: set its bit in sel_bits when selected. */
GS_FN int
gs_filter_kernel_row(const GsParams *p, uint32_t *sel_bits, uint32_t row)
{
	if (!gs_row_selected(p, gs_row1(row)))
		return 0;
	GS_ATOMIC_OR_U32(&sel_bits[row >> 5], 1u << (row & 31));
	return 1;
}

#endif							/* GS_LOGIC_H */
