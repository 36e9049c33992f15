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
 * bounding, and each probe is a cache miss.  So the table is as small as it
 * can be (a 64-bit key and a 16-bit count per slot, open addressing with
 * linear probing), and a row group is bounded at once, with the slot of the
 * row LOOKAHEAD rows ahead prefetched, so that the misses overlap instead
 * of following one another.
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
#define BOUND_FIRST_MAX		(1u << 23)	/* first table: at most this many slots (80 MB) */
#define LOOKAHEAD			32

struct DfdwBound
{
	MemoryContext cxt;
	MemoryContextCallback unmap;	/* releases the mapping on reset, error and abort */
	void	   *map;			/* counts, then keys: one anonymous mapping */
	size_t		map_len;
	uint64	   *keys;
	uint16	   *counts;			/* 0: empty slot; else rows kept of its unit */
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
 * One mapping is kept per backend between scans.  A fresh mapping must be
 * zeroed by the kernel page by page, and that was a fifth of a run over a
 * few million units; a kept one needs only its counts cleared (keys are
 * read only where a count is set).  Mappings over BOUND_KEEP_MAX go back
 * to the kernel at once.
 */
#define BOUND_KEEP_MAX		((size_t) 256 * 1024 * 1024)

static void *kept_map = NULL;	/* not in use by any scan */
static size_t kept_len = 0;

/* A mapping of at least len bytes, zeroed from byte 0 to clear. */
static void *
get_mapping(size_t len, size_t clear, size_t *got)
{
	void	   *p;

	if (kept_map != NULL && kept_len >= len)
	{
		p = kept_map;
		*got = kept_len;
		kept_map = NULL;
		memset(p, 0, clear);
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

	if (b->map != NULL)
		put_mapping(b->map, b->map_len);
	b->map = NULL;
}

/*
 * The table lives in an anonymous mapping, not in palloc memory: counts
 * first (cleared), then keys.  The memory context callback gives it back
 * whenever the scan's context goes, on error and abort too.
 */
static void
alloc_slots(DfdwBound *b, uint64 slots)
{
	int			bits = 0;
	size_t		clen = sizeof(uint16) * slots;
	size_t		len = clen + sizeof(uint64) * slots;
	size_t		got;
	void	   *p;

	while ((UINT64CONST(1) << bits) < slots)
		bits++;
	p = get_mapping(len, clen, &got);
	if (p == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory for contribution bounding"),
				 errdetail("A table of %llu privacy units needs %zu bytes.",
						   (unsigned long long) slots, len)));
	b->map = p;
	b->map_len = got;
	b->counts = p;
	b->keys = (uint64 *) ((char *) p + clen);	/* clen is a multiple of 8: slots >= 4 */
	b->mask = slots - 1;
	b->shift = 64 - bits;
	b->grow_at = slots / 10 * 7;
}

/* Double the table: every unit moves to its slot in the larger one. */
static void
grow(DfdwBound *b)
{
	void	   *omap = b->map;
	size_t		olen = b->map_len;
	uint64	   *okeys = b->keys;
	uint16	   *ocounts = b->counts;
	uint64		oslots = b->mask + 1;

	alloc_slots(b, oslots * 2);	/* on failure b is unchanged: the callback releases the old table */
	for (uint64 i = 0; i < oslots; i++)
	{
		uint64		j;

		if (i + LOOKAHEAD < oslots && ocounts[i + LOOKAHEAD] != 0)
		{
			uint64		ahead = slot_of(b, okeys[i + LOOKAHEAD]);

			__builtin_prefetch(&b->keys[ahead], 1);
			__builtin_prefetch(&b->counts[ahead], 1);
		}
		if (ocounts[i] == 0)
			continue;
		for (j = slot_of(b, okeys[i]); b->counts[j] != 0; j = (j + 1) & b->mask)
			;
		b->keys[j] = okeys[i];
		b->counts[j] = ocounts[i];
	}
	put_mapping(omap, olen);
}

/* Bounding state for one scan of a table of row_count rows, in cxt. */
DfdwBound *
dfdw_bound_begin(MemoryContext cxt, uint64 row_count, int rows_per_unit)
{
	DfdwBound  *b = MemoryContextAllocZero(cxt, sizeof(DfdwBound));
	uint64		slots = BOUND_MIN_SLOTS;

	/*
	 * Sized for every row being its own unit, up to 8M slots (80 MB, enough
	 * for 5.8M units): growing moves every unit again, at a cache miss each,
	 * which cost more than the bounding itself.  Larger tables grow.
	 */
	while (slots < BOUND_FIRST_MAX && slots / 10 * 7 < row_count)
		slots *= 2;
	b->cxt = cxt;
	b->rows_per_unit = (uint16) Max(Min(rows_per_unit, PG_UINT16_MAX), 1);
	alloc_slots(b, slots);
	b->unmap.func = release_table;
	b->unmap.arg = b;
	MemoryContextRegisterResetCallback(cxt, &b->unmap);
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

		if (r + LOOKAHEAD < n)
		{
			uint64		ahead = slot_of(b, b->ukeys[r + LOOKAHEAD]);

			__builtin_prefetch(&b->keys[ahead]);
			__builtin_prefetch(&b->counts[ahead]);
		}
		if (colbuf_is_null(unit, r))
			continue;
		if (b->used >= b->grow_at)
			grow(b);
		for (i = slot_of(b, key); b->counts[i] != 0 && b->keys[i] != key; i = (i + 1) & b->mask)
			;
		if (b->counts[i] == 0)
		{
			b->keys[i] = key;
			b->used++;
		}
		if (b->counts[i] < b->rows_per_unit)
		{
			b->counts[i]++;
			keep[r >> 3] |= (uint8) (1u << (r & 7));
		}
	}
}

/* Forget every count (a rescan starts over). */
void
dfdw_bound_reset(DfdwBound *b)
{
	memset(b->counts, 0, sizeof(uint16) * (b->mask + 1));
	b->used = 0;
}
