/*
 * test_unit_bound.c: the contribution-bounding table (unit_bound.c) against
 * a plain reference count, row by row:
 *   - int8 units, rows_per_unit 2, 300000 rows in row groups of 65536, with
 *     the table started small (row_count 1) so that it grows several times
 *     while counts are live;
 *   - text units (hashed), rows_per_unit 1, NULL units dropped;
 *   - a reset forgets every count; a second table in the same process
 *     (reusing the kept mapping) starts empty.
 */
#include <stdlib.h>

#include "dseal.h"
#include "unit.h"

#define NROWS 300000
#define GROUP 65536
#define NUNITS 120000

/* unit of row i: a permutation-ish spread with repeats; -1 for NULL */
static int64_t
unit_of(uint32_t i)
{
	if (i % 97 == 0)
		return -1;
	return (int64_t) ((i * UINT64_C(2654435761)) % NUNITS) * 1000003;
}

/* Bound all rows with b, a row group at a time; compare with a reference count. */
static bool
run(DsealBound *b, bool text, uint32_t k, uint64_t *kept_out)
{
	uint16_t   *ref = calloc(NUNITS, sizeof(uint16_t));
	uint8_t		keep[GROUP / 8];
	DsealColBuf cb = {0};
	DErr		err = {0};
	bool		ok = true;
	uint64_t	kept = 0;

	for (uint32_t start = 0; start < NROWS && ok; start += GROUP)
	{
		uint32_t	n = NROWS - start < GROUP ? NROWS - start : GROUP;

		colbuf_free(&cb);
		ok = colbuf_init(&cb, text ? DSEAL_ENC_VAR : DSEAL_ENC_I64, n, &err);
		for (uint32_t r = 0; r < n && ok; r++)
		{
			int64_t		u = unit_of(start + r);
			char		s[32];

			if (u < 0)
				ok = colbuf_append_null(&cb, &err);
			else if (text)
				ok = colbuf_append_var(&cb, s, (size_t) snprintf(s, sizeof(s), "patient-%lld", (long long) u), &err);
			else
				ok = colbuf_append_fixed(&cb, &u, &err);
		}
		ok = ok && dseal_bound_row_group(b, &cb, keep, &err);
		for (uint32_t r = 0; r < n && ok; r++)
		{
			int64_t		u = unit_of(start + r);
			bool		want = u >= 0 && ref[u / 1000003] < k;
			bool		got = (keep[r >> 3] >> (r & 7)) & 1;

			if (want)
				ref[u / 1000003]++;
			kept += got;
			if (want != got)
			{
				printf("# row %u: want %d got %d\n", start + r, want, got);
				ok = false;
			}
		}
	}
	colbuf_free(&cb);
	free(ref);
	*kept_out = kept;
	return ok;
}

int
main(void)
{
	DErr		err = {0};
	DsealBound *b = dseal_bound_new(1, 2, &err);
	uint64_t	kept;

	CHECK(b != NULL, "bound: a table");
	CHECK(run(b, false, 2, &kept) && kept > NUNITS, "bound: int8 units, 2 per unit, the table growing: every row as the reference decides");
	dseal_bound_reset(b);
	CHECK(run(b, false, 2, &kept), "bound: after a reset, the same decisions again");
	dseal_bound_free(b);
	b = dseal_bound_new(NROWS, 1, &err);
	CHECK(b != NULL && run(b, true, 1, &kept) && kept <= NUNITS, "bound: text units (hashed), 1 per unit, NULLs dropped, on the kept mapping");
	dseal_bound_free(b);
	UNIT_DONE();
}
