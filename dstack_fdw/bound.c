/*
 * bound.c: contribution bounding on the privacy unit (docs/output-guard.md).
 *
 * Inside dstack_run() each sealed scan keeps at most rows_per_unit rows per
 * value of the policy's privacy-unit column, in the file's row order; rows
 * whose unit is NULL are dropped (they cannot be bounded).  With every join
 * between sealed tables an equality of units (rule A7), a unit then adds at
 * most rows_per_unit^t rows to an answer over t sealed table references:
 * that bound is the sensitivity run.c charges and calibrates for.
 *
 * One probe per row of a table with millions of units is the whole cost of
 * bounding, and each probe is a cache miss.  So a slot is 16 bytes (key,
 * count, generation: one cache line per probe), the table is open
 * addressing with linear probing, and a row group is bounded at once, with
 * the slot of the row LOOKAHEAD rows ahead prefetched, so that the misses
 * overlap instead of following one another.  A slot is in use only if it
 * carries the table's generation: a new or reset table is empty without
 * clearing anything, and a backend reuses one mapping from scan to scan.
 *
 * Keys: a unit of at most 8 bytes (int2/4/8, date, timestamp) is its own
 * key, so those units are counted exactly.  Wider and variable-width units
 * (uuid, text) are keyed by a 64-bit hash of their bytes: two units whose
 * hashes collide are counted as one, which can only drop rows, never keep
 * more than rows_per_unit of any unit.  The bound holds whatever the hash.
 */
#include "postgres.h"

#include <sys/mman.h>

#include "common/hashfn.h"

#include "colbuf.h"
#include "dstack_fdw.h"

#define BOUND_MIN_SLOTS		(1u << 16)
#define BOUND_FIRST_MAX		(1u << 23)	/* first table: at most this many slots (128 MB) */
#define BOUND_KEEP_MAX		((size_t) 256 * 1024 * 1024)
#define LOOKAHEAD			32

typedef struct BoundSlot
{
	uint64		key;
	uint32		gen;			/* in use only when it equals the table's */
	uint16		count;			/* rows kept of this unit */
	uint16		pad;
} BoundSlot;

struct DfdwBound
{
	MemoryContext cxt;
	MemoryContextCallback release;	/* gives the mapping back on reset, error and abort */
	BoundSlot  *slots;			/* one anonymous mapping */
	size_t		map_len;
	uint32		gen;
	uint64		mask;			/* slots - 1 */
	int			shift;			/* 64 - log2(slots) */
	uint64		used;
	uint64		grow_at;		/* used beyond this: double (load 0.7) */
	uint16		rows_per_unit;
	uint64	   *ukeys;			/* this row group's keys */
	uint32		ukeys_cap;
};

static inline uint64
slot_of(const DfdwBound *b, uint64 key)
{
	return (key * UINT64CONST(0x9E3779B97F4A7C15)) >> b->shift;	/* Fibonacci hashing */
}

/*
 * Generations and the one mapping a backend keeps between scans.  A fresh
 * mapping is zeroed by the kernel page by page, which was a fifth of a run
 * over a few million units; a kept one needs nothing cleared, as its slots
 * carry older generations.  Generation 0 is never used (fresh pages are
 * zero); when the counter wraps, the kept mapping is dropped.
 */
static uint32 last_gen = 0;
static void *kept_map = NULL;	/* not in use by any scan */
static size_t kept_len = 0;

static uint32
next_gen(void)
{
	if (++last_gen == 0)
	{
		if (kept_map != NULL)
			munmap(kept_map, kept_len);
		kept_map = NULL;
		last_gen = 1;
	}
	return last_gen;
}

/* A mapping of at least len bytes whose slots carry no live generation. */
static void *
get_mapping(size_t len, size_t *got)
{
	void	   *p;

	if (kept_map != NULL && kept_len >= len)
	{
		p = kept_map;
		*got = kept_len;
		kept_map = NULL;
		return p;
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
#ifdef MADV_HUGEPAGE
	(void) madvise(p, len, MADV_HUGEPAGE);	/* 2 MB faults instead of 4 kB ones */
#endif
	*got = len;
	return p;
}

/* Give a mapping back: kept for the next scan if it is the largest small one. */
static void
put_mapping(void *p, size_t len)
{
	if (len <= BOUND_KEEP_MAX && (kept_map == NULL || len > kept_len))
	{
		if (kept_map != NULL)
			munmap(kept_map, kept_len);
		kept_map = p;
		kept_len = len;
	}
	else
		munmap(p, len);
}

static void
release_table(void *arg)
{
	DfdwBound  *b = arg;

	if (b->slots != NULL)
		put_mapping(b->slots, b->map_len);
	b->slots = NULL;
}

/* A table of `slots` slots (a power of two), empty, in b; raises when out of memory. */
static void
alloc_slots(DfdwBound *b, uint64 slots)
{
	int			bits = 0;
	size_t		len = sizeof(BoundSlot) * slots;
	size_t		got;
	void	   *p;

	while ((UINT64CONST(1) << bits) < slots)
		bits++;
	p = get_mapping(len, &got);
	if (p == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory for contribution bounding"),
				 errdetail("A table of %llu privacy units needs %zu bytes.",
						   (unsigned long long) slots, len)));
	b->slots = p;
	b->map_len = got;
	b->gen = next_gen();
	b->mask = slots - 1;
	b->shift = 64 - bits;
	b->grow_at = slots / 10 * 7;
}

/* Double the table: every unit moves to its slot in the larger one. */
static void
grow(DfdwBound *b)
{
	BoundSlot  *old = b->slots;
	size_t		olen = b->map_len;
	uint32		ogen = b->gen;
	uint64		oslots = b->mask + 1;

	alloc_slots(b, oslots * 2);	/* on failure b is unchanged: the callback releases the old table */
	for (uint64 i = 0; i < oslots; i++)
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
}

/* Bounding state for one scan of a table of row_count rows, in cxt. */
DfdwBound *
dfdw_bound_begin(MemoryContext cxt, uint64 row_count, int rows_per_unit)
{
	DfdwBound  *b = MemoryContextAllocZero(cxt, sizeof(DfdwBound));
	uint64		slots = BOUND_MIN_SLOTS;

	/*
	 * Sized for every row being its own unit, up to 8M slots (128 MB, enough
	 * for 5.8M units): growing moves every unit again, at a cache miss each,
	 * which cost more than the bounding itself.  Larger tables grow.
	 */
	while (slots < BOUND_FIRST_MAX && slots / 10 * 7 < row_count)
		slots *= 2;
	b->cxt = cxt;
	b->rows_per_unit = (uint16) Max(Min(rows_per_unit, PG_UINT16_MAX), 1);
	alloc_slots(b, slots);
	b->release.func = release_table;
	b->release.arg = b;
	MemoryContextRegisterResetCallback(cxt, &b->release);
	return b;
}

/* The unit key of row r (not NULL). */
static inline uint64
unit_key(const DsealColBuf *u, uint32 r)
{
	uint64		k = 0;

	if (u->enc == DSEAL_ENC_VAR)
	{
		uint32		len;
		const uint8 *p = colbuf_var_at(u, r, &len);

		return hash_bytes_extended(p, (int) len, 0);
	}
	if (u->width > (int) sizeof(k))
		return hash_bytes_extended(colbuf_fixed_at(u, r), u->width, 0);
	memcpy(&k, colbuf_fixed_at(u, r), u->width);
	return k;
}

/*
 * Decide every row of a row group, in row order: keep[] (LSB first, zeroed
 * here) gets a bit for each row kept, counted against its unit.
 */
void
dfdw_bound_row_group(DfdwBound *b, const DsealColBuf *unit, uint8 *keep)
{
	uint32		n = unit->nrows;

	memset(keep, 0, (n + 7) / 8);
	if (n == 0)
		return;
	if (b->ukeys_cap < n)
	{
		if (b->ukeys)
			pfree(b->ukeys);
		b->ukeys = MemoryContextAllocExtended(b->cxt, sizeof(uint64) * n, MCXT_ALLOC_HUGE);
		b->ukeys_cap = n;
	}
	for (uint32 r = 0; r < n; r++)
		b->ukeys[r] = colbuf_is_null(unit, r) ? 0 : unit_key(unit, r);
	for (uint32 r = 0; r < n; r++)
	{
		uint64		key = b->ukeys[r];
		uint64		i;
		BoundSlot  *t;

		if (r + LOOKAHEAD < n)
			__builtin_prefetch(&b->slots[slot_of(b, b->ukeys[r + LOOKAHEAD])], 1);
		if (colbuf_is_null(unit, r))
			continue;
		if (b->used >= b->grow_at)
			grow(b);
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
			keep[r >> 3] |= (uint8) (1u << (r & 7));
		}
	}
}

/* Forget every count (a rescan starts over). */
void
dfdw_bound_reset(DfdwBound *b)
{
	b->gen = next_gen();		/* every slot is empty again */
	b->used = 0;
}
