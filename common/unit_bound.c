/*
 * unit_bound.c: the table behind contribution bounding (dstack_fdw/bound.c
 * and docs/output-guard.md): at most rows_per_unit rows per privacy unit,
 * decided a row group at a time, in the order row groups are given.
 *
 * No PostgreSQL here: the read-ahead thread (dseal_prefetch.c) bounds the
 * row group it has just decoded, so that bounding overlaps the executor's
 * work on the previous one.  Errors are DErr; memory is mmap'd.
 *
 * One probe per row of a table with millions of units is the whole cost,
 * and each probe is a cache miss.  So a slot is 16 bytes (key, count,
 * generation: one cache line per probe), the table is open addressing with
 * linear probing, and the slot of the row LOOKAHEAD rows ahead is
 * prefetched, so that the misses overlap instead of following one another.
 * A slot is in use only if it carries the table's generation: a new or
 * reset table is empty without clearing anything, and a process reuses one
 * mapping from table to table (a fresh mapping is zeroed by the kernel page
 * by page, which was a fifth of a run over a few million units).
 *
 * Keys: a unit of at most 8 bytes (int2/4/8, date, timestamp) is its own
 * key, so those units are counted exactly.  Wider and variable-width units
 * (uuid, text) are keyed by a 64-bit hash of their bytes: two units whose
 * hashes collide are counted as one, which can only drop rows, never keep
 * more than rows_per_unit of any unit.  The bound holds whatever the hash.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "dseal.h"

#define MIN_SLOTS		(UINT64_C(1) << 16)
#define FIRST_MAX		(UINT64_C(1) << 23)	/* first table: at most this many slots (128 MB) */
#define KEEP_MAX		((size_t) 256 * 1024 * 1024)
#define LOOKAHEAD		32

typedef struct BoundSlot
{
	uint64_t	key;
	uint32_t	gen;			/* in use only when it equals the table's */
	uint16_t	count;			/* rows kept of this unit */
	uint16_t	pad;
} BoundSlot;

struct DsealBound
{
	BoundSlot  *slots;			/* one anonymous mapping */
	size_t		map_len;
	uint32_t	gen;
	uint64_t	mask;			/* slots - 1 */
	int			shift;			/* 64 - log2(slots) */
	uint64_t	used;
	uint64_t	grow_at;		/* used beyond this: double (load 0.7) */
	uint16_t	rows_per_unit;
	uint64_t   *ukeys;			/* this row group's keys */
	uint32_t	ukeys_cap;
};

/*
 * Generations and the one mapping a process keeps between tables, shared
 * by every thread that bounds (a backend and its read-ahead threads).
 * Generation 0 is never used (fresh pages are zero); when the counter
 * wraps, the kept mapping is dropped.
 */
static pthread_mutex_t kept_mu = PTHREAD_MUTEX_INITIALIZER;
static uint32_t last_gen = 0;
static void *kept_map = NULL;
static size_t kept_len = 0;

static uint32_t
next_gen(void)
{
	uint32_t	g;

	pthread_mutex_lock(&kept_mu);
	if (++last_gen == 0)
	{
		if (kept_map != NULL)
			munmap(kept_map, kept_len);
		kept_map = NULL;
		last_gen = 1;
	}
	g = last_gen;
	pthread_mutex_unlock(&kept_mu);
	return g;
}

/* A mapping of at least len bytes whose slots carry no live generation. */
static void *
get_mapping(size_t len, size_t *got)
{
	void	   *p = NULL;

	pthread_mutex_lock(&kept_mu);
	if (kept_map != NULL && kept_len >= len)
	{
		p = kept_map;
		*got = kept_len;
		kept_map = NULL;
	}
	pthread_mutex_unlock(&kept_mu);
	if (p != NULL)
		return p;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
#ifdef MADV_HUGEPAGE
	(void) madvise(p, len, MADV_HUGEPAGE);	/* 2 MB faults instead of 4 kB ones */
#endif
	*got = len;
	return p;
}

/* Give a mapping back: kept for the next table if it is the largest small one. */
static void
put_mapping(void *p, size_t len)
{
	void	   *drop = p;
	size_t		drop_len = len;

	pthread_mutex_lock(&kept_mu);
	if (len <= KEEP_MAX && (kept_map == NULL || len > kept_len))
	{
		drop = kept_map;
		drop_len = kept_len;
		kept_map = p;
		kept_len = len;
	}
	pthread_mutex_unlock(&kept_mu);
	if (drop != NULL)
		munmap(drop, drop_len);
}

static inline uint64_t
slot_of(const DsealBound *b, uint64_t key)
{
	return (key * UINT64_C(0x9E3779B97F4A7C15)) >> b->shift;	/* Fibonacci hashing */
}

/* An empty table of `slots` slots (a power of two) in b. */
static bool
alloc_slots(DsealBound *b, uint64_t slots, DErr *err)
{
	int			bits = 0;
	size_t		len = sizeof(BoundSlot) * slots;
	size_t		got;
	void	   *p;

	while ((UINT64_C(1) << bits) < slots)
		bits++;
	p = get_mapping(len, &got);
	if (p == NULL)
	{
		derr_set(err, DERR_NOMEM, "out of memory for contribution bounding");
		derr_detail(err, "A table of %llu privacy units needs %zu bytes.", (unsigned long long) slots, len);
		return false;
	}
	b->slots = p;
	b->map_len = got;
	b->gen = next_gen();
	b->mask = slots - 1;
	b->shift = 64 - bits;
	b->grow_at = slots / 10 * 7;
	return true;
}

/* Double the table: every unit moves to its slot in the larger one. */
static bool
grow(DsealBound *b, DErr *err)
{
	BoundSlot  *old = b->slots;
	size_t		olen = b->map_len;
	uint32_t	ogen = b->gen;
	uint64_t	oslots = b->mask + 1;

	if (!alloc_slots(b, oslots * 2, err))
		return false;			/* b is unchanged */
	for (uint64_t i = 0; i < oslots; i++)
	{
		BoundSlot  *t;

		if (i + LOOKAHEAD < oslots && old[i + LOOKAHEAD].gen == ogen)
			__builtin_prefetch(&b->slots[slot_of(b, old[i + LOOKAHEAD].key)], 1);
		if (old[i].gen != ogen)
			continue;
		for (t = &b->slots[slot_of(b, old[i].key)]; t->gen == b->gen; t = &b->slots[(t - b->slots + 1) & b->mask])
			;
		*t = old[i];
		t->gen = b->gen;
	}
	put_mapping(old, olen);
	return true;
}

DsealBound *
dseal_bound_new(uint64_t row_count, uint32_t rows_per_unit, DErr *err)
{
	DsealBound *b = calloc(1, sizeof(DsealBound));
	uint64_t	slots = MIN_SLOTS;

	if (b == NULL)
	{
		derr_set(err, DERR_NOMEM, "out of memory for contribution bounding");
		return NULL;
	}
	/*
	 * Sized for every row being its own unit, up to 8M slots (128 MB, enough
	 * for 5.8M units): growing moves every unit again, at a cache miss each,
	 * which cost more than the bounding itself.  Larger tables grow.
	 */
	while (slots < FIRST_MAX && slots / 10 * 7 < row_count)
		slots *= 2;
	b->rows_per_unit = (uint16_t) (rows_per_unit < 1 ? 1 : rows_per_unit > UINT16_MAX ? UINT16_MAX : rows_per_unit);
	if (!alloc_slots(b, slots, err))
	{
		free(b);
		return NULL;
	}
	return b;
}

/* 64-bit hash of a wide unit's bytes (collisions only drop rows: see the top). */
static uint64_t
hash64(const uint8_t *p, size_t n)
{
	uint64_t	h = UINT64_C(0x9E3779B97F4A7C15) ^ (n * UINT64_C(0xC2B2AE3D27D4EB4F));

	for (; n >= 8; p += 8, n -= 8)
	{
		uint64_t	v;

		memcpy(&v, p, 8);
		v *= UINT64_C(0x87C37B91114253D5);
		v = (v << 31) | (v >> 33);
		h = ((h ^ v) << 27 | (h ^ v) >> 37) * 5 + 0x52DCE729;
	}
	if (n > 0)
	{
		uint64_t	v = 0;

		memcpy(&v, p, n);
		h ^= v * UINT64_C(0x4CF5AD432745937F);
	}
	h ^= h >> 33;				/* murmur3's finaliser */
	h *= UINT64_C(0xFF51AFD7ED558CCD);
	h ^= h >> 33;
	h *= UINT64_C(0xC4CEB9FE1A85EC53);
	h ^= h >> 33;
	return h;
}

static inline uint64_t
unit_key(const DsealColBuf *u, uint32_t r)
{
	uint64_t	k = 0;

	if (u->enc == DSEAL_ENC_VAR)
	{
		uint32_t	len;
		const uint8_t *p = colbuf_var_at(u, r, &len);

		return hash64(p, len);
	}
	if (u->width > (int) sizeof(k))
		return hash64(colbuf_fixed_at(u, r), (size_t) u->width);
	memcpy(&k, colbuf_fixed_at(u, r), (size_t) u->width);
	return k;
}

bool
dseal_bound_row_group(DsealBound *b, const DsealColBuf *unit, uint8_t *keep, DErr *err)
{
	uint32_t	n = unit->nrows;

	memset(keep, 0, ((size_t) n + 7) / 8);
	if (n == 0)
		return true;
	if (b->ukeys_cap < n)
	{
		uint64_t   *k = realloc(b->ukeys, sizeof(uint64_t) * n);

		if (k == NULL)
			return derr_set(err, DERR_NOMEM, "out of memory for contribution bounding");
		b->ukeys = k;
		b->ukeys_cap = n;
	}
	for (uint32_t r = 0; r < n; r++)
		b->ukeys[r] = colbuf_is_null(unit, r) ? 0 : unit_key(unit, r);
	for (uint32_t r = 0; r < n; r++)
	{
		uint64_t	key = b->ukeys[r];
		uint64_t	i;
		BoundSlot  *t;

		if (r + LOOKAHEAD < n)
			__builtin_prefetch(&b->slots[slot_of(b, b->ukeys[r + LOOKAHEAD])], 1);
		if (colbuf_is_null(unit, r))
			continue;
		if (b->used >= b->grow_at && !grow(b, err))
			return false;
		for (i = slot_of(b, key); b->slots[i].gen == b->gen && b->slots[i].key != key; i = (i + 1) & b->mask)
			;
		t = &b->slots[i];
		if (t->gen != b->gen)
		{
			t->key = key;
			t->gen = b->gen;
			t->count = 0;
			b->used++;
		}
		if (t->count < b->rows_per_unit)
		{
			t->count++;
			keep[r >> 3] |= (uint8_t) (1u << (r & 7));
		}
	}
	return true;
}

void
dseal_bound_reset(DsealBound *b)
{
	b->gen = next_gen();		/* every slot is empty again */
	b->used = 0;
}

void
dseal_bound_free(DsealBound *b)
{
	if (b == NULL)
		return;
	if (b->slots != NULL)
		put_mapping(b->slots, b->map_len);
	free(b->ukeys);
	free(b);
}
