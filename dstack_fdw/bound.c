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
 * Units are keyed by their fixed-width bytes, or by the first 128 bits of
 * the SHA-256 of variable-width ones.  The table starts small and grows: a
 * table sized to the row count cost hundreds of megabytes on large files.
 */
#include "postgres.h"

#include "common/hashfn.h"

#include "colbuf.h"
#include "crypto.h"
#include "dstack_fdw.h"

typedef struct UnitKey
{
	uint64		a;
	uint64		b;
} UnitKey;

typedef struct UnitCount
{
	UnitKey		key;
	uint32		rows;
	char		status;			/* simplehash's slot state */
} UnitCount;

static inline uint32
unit_hash(UnitKey k)
{
	uint32		h = murmurhash32((uint32) k.a);

	h = hash_combine(h, murmurhash32((uint32) (k.a >> 32)));
	h = hash_combine(h, murmurhash32((uint32) k.b));
	return hash_combine(h, murmurhash32((uint32) (k.b >> 32)));
}

/* a simplehash table: one unit per scan row is a hot path (dynahash was 4x slower) */
#define SH_PREFIX		unitmap
#define SH_ELEMENT_TYPE	UnitCount
#define SH_KEY_TYPE		UnitKey
#define SH_KEY			key
#define SH_HASH_KEY(tb, k)	unit_hash(k)
#define SH_EQUAL(tb, x, y)	((x).a == (y).a && (x).b == (y).b)
#define SH_SCOPE		static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

struct DfdwBound
{
	struct unitmap_hash *counts;	/* unit key -> rows kept */
	uint32		rows_per_unit;
};

/* Bounding state for one scan of a table of row_count rows, in cxt. */
DfdwBound *
dfdw_bound_begin(MemoryContext cxt, uint64 row_count, int rows_per_unit)
{
	DfdwBound  *b = MemoryContextAllocZero(cxt, sizeof(DfdwBound));

	b->counts = unitmap_create(cxt, (uint32) Min(Max(row_count, 1024), 65536), NULL);
	b->rows_per_unit = (uint32) Max(rows_per_unit, 1);
	return b;
}

/* Keep row `row` of the unit column buffer?  Counts it when kept. */
bool
dfdw_bound_keep(DfdwBound *b, const DsealColBuf *unit, uint32 row)
{
	UnitKey		key;
	UnitCount  *uc;
	bool		found;

	if (colbuf_is_null(unit, row))
		return false;
	memset(&key, 0, sizeof(key));
	if (unit->enc == DSEAL_ENC_VAR)
	{
		uint32		len;
		const uint8 *p = colbuf_var_at(unit, row, &len);
		uint8		h[DC_SHA256_LEN];

		dc_sha256(p, len, h);
		memcpy(&key, h, sizeof(key));
	}
	else
		memcpy(&key, colbuf_fixed_at(unit, row), Min(unit->width, (int) sizeof(key)));
	uc = unitmap_insert(b->counts, key, &found);
	if (!found)
		uc->rows = 0;
	if (uc->rows >= b->rows_per_unit)
		return false;
	uc->rows++;
	return true;
}

/* Forget every count (a rescan starts over). */
void
dfdw_bound_reset(DfdwBound *b)
{
	unitmap_reset(b->counts);
}
