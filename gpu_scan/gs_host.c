/*
 * gs_host.c: gpu_scan's kernels run on the CPU, and the host group table.
 *
 * The per-row logic is kernels/gs_logic.h, the same source nvcc compiles for
 * the GPU; this file adds what only the host does: a table that grows, the
 * loop over a row group, and the merge of a device table (whose rows that
 * found no slot were aggregated here instead, so every row counts once).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gs_host.h"

bool
gs_table_alloc(GsTable *t, uint32_t cap, int naggs)
{
	memset(t, 0, sizeof(*t));
	t->cap = cap;
	t->naggs = naggs;
	t->state = calloc(cap, sizeof(uint32_t));
	t->rows = calloc(cap, sizeof(uint64_t));
	t->keys = calloc((size_t) cap * GS_MAX_KEYS, sizeof(int64_t));
	t->nullmask = calloc(cap, sizeof(uint32_t));
	t->acc = calloc((size_t) cap * (naggs > 0 ? naggs : 1) * GS_ACC_WORDS, sizeof(uint64_t));
	if (!t->state || !t->rows || !t->keys || !t->nullmask || !t->acc)
	{
		gs_table_free(t);
		return false;
	}
	return true;
}

void
gs_table_free(GsTable *t)
{
	free(t->state);
	free(t->rows);
	free(t->keys);
	free(t->nullmask);
	free(t->acc);
	memset(t, 0, sizeof(*t));
}

bool
gs_host_table_init(GsHostTable *h, uint32_t cap, int naggs)
{
	uint32_t	c = 16;

	while (c < cap && c < (1u << 30))
		c <<= 1;
	h->used = 0;
	return gs_table_alloc(&h->t, c, naggs);
}

/* Copy slot s of src into dst, where its key is absent; -1 when dst has no room. */
static int64_t
insert_copy(const GsParams *p, GsTable *dst, const GsTable *src, uint32_t s)
{
	const int64_t *key = src->keys + (size_t) s * GS_MAX_KEYS;
	int			created;
	int64_t		d = gs_find_slot(p, dst, key, src->nullmask[s], &created);
	size_t		words = (size_t) src->naggs * GS_ACC_WORDS;

	if (d >= 0)
	{
		memcpy(dst->acc + (size_t) d * words, src->acc + (size_t) s * words, words * sizeof(uint64_t));
		dst->rows[d] = src->rows[s];
	}
	return d;
}

/* Double the table (rehash, dropping slots a join created but left empty); false when out of memory. */
static bool
grow(const GsParams *p, GsHostTable *h)
{
	GsTable		bigger;
	uint32_t	used = 0;

	if (h->t.cap >= (1u << 30) || !gs_table_alloc(&bigger, h->t.cap * 2, h->t.naggs))
		return false;
	for (uint32_t s = 0; s < h->t.cap; s++)
		if (h->t.state[s] == GS_SLOT_READY && h->t.rows[s] > 0)
		{
			if (insert_copy(p, &bigger, &h->t, s) < 0)
			{
				gs_table_free(&bigger);
				return false;
			}
			used++;
		}
	gs_table_free(&h->t);
	h->t = bigger;
	h->used = used;
	return true;
}

/* The slot of key in h, created if new; grows the table at half full. */
static int64_t
host_slot(const GsParams *p, GsHostTable *h, const int64_t key[GS_MAX_KEYS], uint32_t nullmask)
{
	for (;;)
	{
		int			created;
		int64_t		slot;

		if (h->used + 1 > h->t.cap / 2 && !grow(p, h))
			return -1;
		slot = gs_find_slot(p, &h->t, key, nullmask, &created);
		if (slot >= 0)
		{
			h->used += created;
			return slot;
		}
		if (!grow(p, h))		/* a long probe run: spread the keys out */
			return -1;
	}
}

/*
 * A join's probes are random reads of the inner table, each a cache miss
 * the CPU would wait for in turn.  The host loop asks for them ahead: the
 * bucket of the row JOIN_AHEAD1 rows on, then, once that has arrived, the
 * first inner row of the bucket JOIN_AHEAD2 rows on (its key and columns).
 * Only where memory is read changes, not what is computed.
 */
#define JOIN_AHEAD1 32
#define JOIN_AHEAD2 16

static inline uint32_t
probe_bucket(const GsParams *p, uint32_t row)
{
	int			isnull;
	int64_t		k = gs_outer_key(p, row, &isnull);

	return isnull ? UINT32_MAX : (uint32_t) (gs_mix64((uint64_t) k) & (p->join.nbuckets - 1));
}

/* always_inline: GCC deems a function of only prefetches side-effect free and drops its calls */
static inline __attribute__((always_inline)) void
prefetch_join(const GsParams *p, uint32_t row)
{
	uint32_t	b;

	if (row + JOIN_AHEAD1 < p->nrows && (b = probe_bucket(p, row + JOIN_AHEAD1)) != UINT32_MAX)
		__builtin_prefetch(&p->join.head[b]);
	if (row + JOIN_AHEAD2 < p->nrows && (b = probe_bucket(p, row + JOIN_AHEAD2)) != UINT32_MAX)
	{
		uint32_t	ir = p->join.head[b];

		if (ir != 0)
		{
			__builtin_prefetch(&p->join.key[ir - 1]);
			__builtin_prefetch(&p->join.next[ir - 1]);
			for (int c = 0; c < p->ncols; c++)
				if (p->cols[c].side == 1)
					__builtin_prefetch(p->cols[c].data + (size_t) (ir - 1) * gs_width(p->cols[c].kind));
		}
	}
}

/*
 * One aggregate over its column: the value's type and the op chosen once,
 * then a loop of loads and gs_fold_*() (kernels/gs_logic.h); what has no
 * such loop goes through gs_acc_value, the per-value switch.  one: the slot
 * of every selected row when there are no group keys (else NO_SLOT); slots
 * NULL: every row is selected, into one.
 */
#define NO_SLOT UINT32_MAX
#define FOLD_LOOP(TYPE, FOLD) \
	do { \
		if (one != NO_SLOT) \
		{ \
			/* every row in one slot: its words in locals (registers), same order */ \
			uint64_t	lw[GS_ACC_WORDS]; \
			uint64_t   *w = lw; \
 \
			memcpy(lw, acc + one * stride, sizeof(lw)); \
			for (uint32_t row = 0; row < p->nrows; row++) \
			{ \
				TYPE		v; \
 \
				if ((slots != NULL && slots[row] == NO_SLOT) || \
					(valid != NULL && !(valid[row >> 3] & (1u << (row & 7))))) \
					continue; \
				memcpy(&v, c->data + (size_t) row * sizeof(TYPE), sizeof(TYPE)); \
				FOLD; \
			} \
			memcpy(acc + one * stride, lw, sizeof(lw)); \
			break; \
		} \
		for (uint32_t row = 0; row < p->nrows; row++) \
		{ \
			TYPE		v; \
			uint64_t   *w; \
 \
			if (slots[row] == NO_SLOT || (valid != NULL && !(valid[row >> 3] & (1u << (row & 7))))) \
				continue; \
			memcpy(&v, c->data + (size_t) row * sizeof(TYPE), sizeof(TYPE)); \
			w = acc + slots[row] * stride; \
			FOLD; \
		} \
	} while (0)

/* FOLD over an integer column of any stored width; v widens to int64 in the fold's argument. */
#define FOLD_INT_LOOP(FOLD) \
	do { \
		if (kind == GS_I32) \
			FOLD_LOOP(int32_t, FOLD); \
		else if (kind == GS_I64) \
			FOLD_LOOP(int64_t, FOLD); \
		else \
			FOLD_LOOP(int16_t, FOLD); \
	} while (0)

/* FOLD over a float column; (double) v is what gs_load_f() reads. */
#define FOLD_FLOAT_LOOP(FOLD) \
	do { \
		if (kind == GS_F64) \
			FOLD_LOOP(double, FOLD); \
		else \
			FOLD_LOOP(float, FOLD); \
	} while (0)

static inline bool
int_kind(int32_t kind)
{
	return kind == GS_I16 || kind == GS_I32 || kind == GS_I64;
}

static void
fold_column(const GsParams *p, const GsAgg *g, uint64_t *acc, size_t stride, const uint32_t *slots,
			uint32_t one)
{
	const GsColumn *c = g->col >= 0 ? &p->cols[g->col] : NULL;
	const uint8_t *valid = c != NULL ? c->valid : NULL;
	int32_t		kind = c != NULL ? c->kind : -1;

	switch (g->op)
	{
		case GS_AGG_COUNT_STAR:
		case GS_AGG_COUNT:
		case GS_AGG_DP_COUNT:
			{
				uint64_t	n = 0;

				for (uint32_t row = 0; row < p->nrows; row++)
					if ((slots == NULL || slots[row] != NO_SLOT) &&
						(g->op == GS_AGG_COUNT_STAR || !gs_is_null(c, row)))
					{
						if (one != NO_SLOT)
							n++;
						else
							acc[slots[row] * stride]++;
					}
				if (one != NO_SLOT)
					acc[one * stride] += n;
				return;
			}
		case GS_AGG_SUM_I64:
			if (!int_kind(kind))
				break;
			FOLD_INT_LOOP(gs_fold_sum_i64(w, v));
			return;
		case GS_AGG_SUM_I128:
			if (kind != GS_I64)
				break;
			FOLD_LOOP(int64_t, gs_fold_sum_i128(w, v));
			return;
		case GS_AGG_MIN_I64:
			if (!int_kind(kind))
				break;
			FOLD_INT_LOOP(gs_fold_min_i64(w, v));
			return;
		case GS_AGG_MAX_I64:
			if (!int_kind(kind))
				break;
			FOLD_INT_LOOP(gs_fold_max_i64(w, v));
			return;
		case GS_AGG_DP_SUM_I64:
			if (!int_kind(kind))
				break;
			FOLD_INT_LOOP(gs_fold_dp_sum_i64(g, w, v));
			return;
		case GS_AGG_MIN_F64:
			if (!gs_kind_is_float(kind))
				break;
			FOLD_FLOAT_LOOP(gs_fold_min_f64(w, (double) v));
			return;
		case GS_AGG_MAX_F64:
			if (!gs_kind_is_float(kind))
				break;
			FOLD_FLOAT_LOOP(gs_fold_max_f64(w, (double) v));
			return;
		case GS_AGG_SUM_F64:
			if (!gs_kind_is_float(kind))
				break;
			FOLD_FLOAT_LOOP(gs_fold_sum_f64(w, (double) v));
			return;
		case GS_AGG_AVG_F64:
			if (!gs_kind_is_float(kind))
				break;
			FOLD_FLOAT_LOOP(gs_fold_avg_f64(w, (double) v));
			return;
		case GS_AGG_DP_SUM_F64:
			if (!gs_kind_is_float(kind))
				break;
			FOLD_FLOAT_LOOP(gs_fold_dp_sum_f64(g, w, (double) v));
			return;
		case GS_AGG_HOST:
			return;
		default:
			break;
	}
	for (uint32_t row = 0; row < p->nrows; row++)
		if (slots == NULL || slots[row] != NO_SLOT)
			gs_acc_value(g, acc + (slots == NULL ? one : slots[row]) * stride, c, row);
}

/*
 * Without a join the host folds column by column: first each selected row's
 * slot (found or created in row order, as the row loop below would; with no
 * group keys, the one slot once), then each aggregate over its column in row
 * order.  Every accumulator sees the same values in the same order as in the
 * row loop, so the states are the same bit for bit.  What goes is a slot
 * lookup per row when there are no keys, and the walk over every aggregate
 * per row: one aggregate's op is the same for its whole column, so its
 * branches are predicted.  -1 when out of memory.
 */
static int64_t
host_preagg_columns(const GsParams *p, GsHostTable *h, const uint32_t *only_bits)
{
	uint32_t   *slots = malloc(((size_t) p->nrows + 1) * sizeof(uint32_t));
	int64_t		selected;
	size_t		stride;
	uint32_t	one;

	if (slots == NULL)
		return -1;
	if (p->nkeys == 0 && only_bits == NULL && p->keep == NULL && p->nprog == 0 && p->nrows > 0)
	{
		/* no keys, no filter, nothing dropped: every row, into one slot */
		int64_t		key[GS_MAX_KEYS];
		uint32_t	nullmask;
		int64_t		slot;

		free(slots);
		gs_row_key(p, gs_row1(0), key, &nullmask);
		if ((slot = host_slot(p, h, key, nullmask)) < 0)
			return -1;
		one = (uint32_t) slot;
		h->t.rows[one] += p->nrows;
		for (int a = 0; a < p->naggs; a++)
			fold_column(p, &p->aggs[a], h->t.acc + (size_t) a * GS_ACC_WORDS,
						(size_t) h->t.naggs * GS_ACC_WORDS, NULL, one);
		return p->nrows;
	}
restart:
	selected = 0;
	one = NO_SLOT;
	for (uint32_t row = 0; row < p->nrows; row++)
	{
		int64_t		key[GS_MAX_KEYS];
		uint32_t	nullmask;
		uint32_t	cap = h->t.cap;
		int64_t		slot;

		slots[row] = NO_SLOT;
		if ((only_bits != NULL && !(only_bits[row >> 5] & (1u << (row & 31)))) ||
			!gs_row_kept(p, row) || gs_eval_filter(p, gs_row1(row)) != GS_TRUE)
			continue;
		if (one != NO_SLOT)
			slot = one;
		else
		{
			gs_row_key(p, gs_row1(row), key, &nullmask);
			if ((slot = host_slot(p, h, key, nullmask)) < 0)
			{
				free(slots);
				return -1;
			}
			if (h->t.cap != cap)
				goto restart;	/* grown: the slots found so far moved */
			if (p->nkeys == 0)
				one = (uint32_t) slot;
		}
		slots[row] = (uint32_t) slot;
		selected++;
	}
	stride = (size_t) h->t.naggs * GS_ACC_WORDS;
	if (one != NO_SLOT)
		h->t.rows[one] += (uint64_t) selected;
	else
		for (uint32_t row = 0; row < p->nrows; row++)
			if (slots[row] != NO_SLOT)
				h->t.rows[slots[row]]++;
	for (int a = 0; a < p->naggs; a++)
		fold_column(p, &p->aggs[a], h->t.acc + (size_t) a * GS_ACC_WORDS, stride, slots, one);
	free(slots);
	return selected;
}

int64_t
gs_host_preagg(const GsParams *p, GsHostTable *h, const uint32_t *only_bits)
{
	int64_t		selected = 0;

	if (p->join.nbuckets == 0)
		return host_preagg_columns(p, h, only_bits);
	for (uint32_t row = 0; row < p->nrows; row++)
	{
		int			r;

		if (only_bits != NULL && !(only_bits[row >> 5] & (1u << (row & 31))))
			continue;
		if (p->join.nbuckets != 0 && only_bits == NULL)
			prefetch_join(p, row);
		for (;;)
		{
			uint32_t	created = 0;

			/* room for this row's groups: a join row may make many */
			if (h->used + 1 > h->t.cap / 2 && !grow(p, h))
				return -1;
			r = gs_preagg_row(p, &h->t, row, &created);
			h->used += created;
			if (r != GS_ROW_OVERFLOW)
				break;
			if (!grow(p, h))	/* nothing of the row was aggregated: grow and redo it */
				return -1;
		}
		selected += r == GS_ROW_DONE;
	}
	return selected;
}

uint32_t
gs_host_filter(const GsParams *p, uint32_t *sel_bits)
{
	uint32_t	selected = 0;

	memset(sel_bits, 0, gs_bitmap_words(p->nrows) * sizeof(uint32_t));
	for (uint32_t row = 0; row < p->nrows; row++)
		if (gs_row_selected(p, gs_row1(row)))
		{
			sel_bits[row >> 5] |= 1u << (row & 31);
			selected++;
		}
	return selected;
}

static double
word_f64(uint64_t w)
{
	double		d;

	memcpy(&d, &w, 8);
	return d;
}

static uint64_t
f64_word(double d)
{
	uint64_t	w;

	memcpy(&w, &d, 8);
	return w;
}

/*
 * float8_accum's Sxx from GS_AGG_AVG_F64's words: sum (x - K)^2 - N (Sx/N - K)^2,
 * in [0, sum (x - K)^2]; 0 for no input, NaN after an Inf or NaN input, and
 * +Inf when finite inputs overflowed (Sx or the squares): the overflow error.
 * A group with an Inf or NaN input never raises it; float8_accum raises it
 * only when the overflow came before the first such input, an order a
 * parallel scan does not keep either.
 */
static double
avg_f64_sxx(const uint64_t *w)
{
	double		n = (double) w[0],
				sx = word_f64(w[1]),
				sdd = word_f64(w[2]),
				dm,
				sxx;

	if (w[0] == 0)
		return 0;
	if (sdd != sdd)
		return NAN;
	if (isinf(sdd) || sx - sx != 0.0 || w[3] == GS_SHIFT_UNSET)
		return INFINITY;
	dm = sx / n - word_f64(w[3]);
	sxx = sdd - n * dm * dm;
	return sxx > 0 ? sxx : 0;
}

/*
 * Combine two GS_AGG_AVG_F64 states as float8_combine does, and store the
 * result about its own mean (K = Sx/N, sum (x - K)^2 = Sxx).
 */
static void
avg_f64_combine(uint64_t *x, const uint64_t *y)
{
	double		n1 = (double) x[0],
				n2 = (double) y[0],
				sx1 = word_f64(x[1]),
				sx2 = word_f64(y[1]),
				q1,
				q2,
				sx,
				sxx;

	if (y[0] == 0)
		return;
	if (x[0] == 0)
	{
		memcpy(x, y, GS_ACC_WORDS * sizeof(uint64_t));
		return;
	}
	q1 = avg_f64_sxx(x);
	q2 = avg_f64_sxx(y);
	sx = sx1 + sx2;
	if (q1 != q1 || q2 != q2)
		sxx = NAN;				/* an Inf or NaN input on either side */
	else if (isinf(q1) || isinf(q2))
		sxx = INFINITY;			/* an overflow stays one */
	else
	{
		double		m = sx1 / n1 - sx2 / n2;

		sxx = q1 + q2 + n1 * n2 * m * m / (n1 + n2);	/* Inf: float8_combine's overflow */
	}
	x[0] += y[0];
	x[1] = f64_word(sx);
	x[2] = f64_word(sxx);
	x[3] = f64_word(sx / (double) x[0]);
}

int
gs_float_accum_state(const uint64_t *w, double out[3])
{
	double		sxx = avg_f64_sxx(w);

	out[0] = (double) w[0];
	out[1] = w[0] == 0 ? 0 : word_f64(w[1]);
	out[2] = sxx;
	return isinf(sxx) ? -1 : 0;
}

void
gs_acc_combine(const GsParams *p, uint64_t *a, const uint64_t *b)
{
	/* every word layout below is per aggregate; rows are combined by the caller */
	for (int i = 0; i < p->naggs; i++)
	{
		uint64_t   *x = a + (size_t) i * GS_ACC_WORDS;
		const uint64_t *y = b + (size_t) i * GS_ACC_WORDS;

		switch (p->aggs[i].op)
		{
			case GS_AGG_SUM_F64:
				{
					double		dx,
								dy;

					memcpy(&dx, &x[0], 8);
					memcpy(&dy, &y[0], 8);
					dx += dy;
					memcpy(&x[0], &dx, 8);
					x[1] += y[1];
					x[2] |= y[2];
					break;
				}
			case GS_AGG_MIN_I64:
				if (y[1] && (int64_t) y[0] < (int64_t) x[0])
					x[0] = y[0];
				x[1] += y[1];
				break;
			case GS_AGG_MAX_I64:
				if (y[1] && (int64_t) y[0] > (int64_t) x[0])
					x[0] = y[0];
				x[1] += y[1];
				break;
			case GS_AGG_MIN_F64:
				if (y[1] && y[0] < x[0])
					x[0] = y[0];
				x[1] += y[1];
				break;
			case GS_AGG_MAX_F64:
				if (y[1] && y[0] > x[0])
					x[0] = y[0];
				x[1] += y[1];
				break;
			case GS_AGG_AVG_F64:
				avg_f64_combine(x, y);
				break;
			case GS_AGG_HOST:
				break;
			case GS_AGG_SUM_I128:
			case GS_AGG_DP_SUM_I64:
			case GS_AGG_DP_SUM_F64:
				{
					uint64_t	lo = x[1] + y[1];

					x[2] += y[2] + (lo < x[1] ? 1 : 0);
					x[1] = lo;
					x[0] += y[0];
					break;
				}
			default:			/* counts and integer sums: add every word */
				x[0] += y[0];
				x[1] += y[1];
				break;
		}
	}
}

int
gs_host_merge(GsHostTable *h, const GsParams *p, const GsTable *src)
{
	size_t		words = (size_t) p->naggs * GS_ACC_WORDS;

	for (uint32_t s = 0; s < src->cap; s++)
	{
		int64_t		d;

		if (src->state[s] != GS_SLOT_READY || src->rows[s] == 0)
			continue;
		d = host_slot(p, h, src->keys + (size_t) s * GS_MAX_KEYS, src->nullmask[s]);
		if (d < 0)
			return -1;
		gs_acc_combine(p, h->t.acc + (size_t) d * words, src->acc + (size_t) s * words);
		h->t.rows[d] += src->rows[s];
	}
	return 0;
}

/* ---- the inner side of a join ---------------------------------------------- */

bool
gs_join_hash_build(GsJoinHash *jh, const GsColumn *keycol, const uint8_t *keep, uint32_t nrows)
{
	uint32_t	nb = 16;

	memset(jh, 0, sizeof(*jh));
	while (nb < nrows && nb < (1u << 30))
		nb <<= 1;
	jh->nbuckets = nb;
	jh->n = nrows;
	jh->head = calloc(nb, sizeof(uint32_t));
	jh->next = calloc(nrows > 0 ? nrows : 1, sizeof(uint32_t));
	jh->key = calloc(nrows > 0 ? nrows : 1, sizeof(int64_t));
	if (!jh->head || !jh->next || !jh->key)
	{
		gs_join_hash_free(jh);
		return false;
	}
	/* last row first, so that every chain lists its rows in table order */
	for (uint32_t i = nrows; i-- > 0;)
	{
		uint32_t	b;

		if (gs_is_null(keycol, i) || (keep != NULL && !(keep[i >> 3] & (1u << (i & 7)))))
			continue;			/* NULL never equals; a bounded-out row is not there */
		jh->key[i] = gs_load_i(keycol, i);
		b = (uint32_t) (gs_mix64((uint64_t) jh->key[i]) & (nb - 1));
		jh->next[i] = jh->head[b];
		jh->head[b] = i + 1;
		jh->inserted++;
	}
	return true;
}

void
gs_join_hash_free(GsJoinHash *jh)
{
	free(jh->head);
	free(jh->next);
	free(jh->key);
	memset(jh, 0, sizeof(*jh));
}

void
gs_join_attach(GsParams *p, const GsJoinHash *jh, int outer_keycol)
{
	p->join.nbuckets = jh->nbuckets;
	p->join.inner_nrows = jh->n;
	p->join.outer_keycol = outer_keycol;
	p->join.head = jh->head;
	p->join.next = jh->next;
	p->join.key = jh->key;
}
