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
 * The table itself is common/unit_bound.c, which has no PostgreSQL in it:
 * with read-ahead on, the read-ahead thread bounds each row group right
 * after decoding it, in row-group order, so bounding overlaps the executor
 * (dseal_prefetch.c).  This file is the glue: errors become ereport, and
 * the table is freed with the scan's memory context, on error and abort too.
 */
#include "postgres.h"

#include "dstack_fdw.h"
#include "pg_common.h"

struct DfdwBound
{
	DsealBound *table;
	MemoryContextCallback release;
};

static void
release_table(void *arg)
{
	DfdwBound  *b = arg;

	dseal_bound_free(b->table);
	b->table = NULL;
}

static void
bound_failed(const DErr *err)
{
	derr_ereport(err, ERRCODE_OUT_OF_MEMORY,
				 "Ask the operator for more memory in the CVM, or to reseal the table in smaller datasets.");
}

/* Bounding state for one scan of a table of row_count rows, freed with cxt. */
DfdwBound *
dfdw_bound_begin(MemoryContext cxt, uint64 row_count, int rows_per_unit)
{
	DfdwBound  *b = MemoryContextAllocZero(cxt, sizeof(DfdwBound));
	DErr		err;

	derr_clear(&err);
	b->table = dseal_bound_new(row_count, (uint32) Max(rows_per_unit, 1), &err);
	if (b->table == NULL)
		bound_failed(&err);
	b->release.func = release_table;
	b->release.arg = b;
	MemoryContextRegisterResetCallback(cxt, &b->release);
	return b;
}

/* The table, for the read-ahead thread to bound with (while it runs, only it may). */
DsealBound *
dfdw_bound_table(DfdwBound *b)
{
	return b->table;
}

/* Decide a row group's rows in order on this thread: keep[] (LSB first) marks the rows kept. */
void
dfdw_bound_row_group(DfdwBound *b, const DsealColBuf *unit, uint8 *keep)
{
	DErr		err;

	derr_clear(&err);
	if (!dseal_bound_row_group(b->table, unit, keep, &err))
		bound_failed(&err);
}

/* Forget every count (a rescan starts over). */
void
dfdw_bound_reset(DfdwBound *b)
{
	dseal_bound_reset(b->table);
}
