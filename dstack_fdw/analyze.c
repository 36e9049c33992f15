/*
 * analyze.c: ANALYZE of a sealed foreign table.  Off unless a superuser
 * sets dstack_fdw.allow_analyze and the output guard is off: statistics of
 * sealed columns would be readable by anyone who can read pg_stats.
 */
#include "postgres.h"

#include "commands/vacuum.h"
#include "executor/tuptable.h"
#include "foreign/fdwapi.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/sampling.h"

#include "scan.h"

/* Reservoir sample of the whole dataset (Vitter's algorithm, as file_fdw). */
static int
acquire_sample_rows(Relation rel, int elevel, HeapTuple *rows, int targrows,
					double *totalrows, double *totaldeadrows)
{
	TupleDesc	desc = RelationGetDescr(rel);
	List	   *attnos = NIL;
	DfdwTableOptions topts;
	DfdwScan   *s;
	TupleTableSlot *slot = MakeSingleTupleTableSlot(desc, &TTSOpsVirtual);
	ReservoirStateData rstate;
	double		seen = 0;
	int			numrows = 0;
	double		rowstoskip = -1;

	for (int a = 1; a <= desc->natts; a++)
		if (!TupleDescAttr(desc, a - 1)->attisdropped)
			attnos = lappend_int(attnos, a);
	dfdw_table_options(RelationGetRelid(rel), &topts);
	s = dfdw_scan_open(rel, topts.path, attnos, CurrentMemoryContext, NULL);
	dfdw_scan_mount(s);
	reservoir_init_selection_state(&rstate, targrows);
	for (;;)
	{
		if (!s->have_rg || s->cur_row >= s->cur_nrows)
		{
			if (!dfdw_next_row_group(s))
				break;
			continue;
		}
		dfdw_scan_fill_slot(s, slot);
		s->cur_row++;
		if (numrows < targrows)
			rows[numrows++] = ExecCopySlotHeapTuple(slot);
		else
		{
			if (rowstoskip < 0)
				rowstoskip = reservoir_get_next_S(&rstate, seen, targrows);
			if (rowstoskip <= 0)
			{
				int			k = (int) (targrows * sampler_random_fract(&rstate.randstate));

				heap_freetuple(rows[k]);
				rows[k] = ExecCopySlotHeapTuple(slot);
			}
			rowstoskip -= 1;
		}
		seen += 1;
	}
	ExecDropSingleTupleTableSlot(slot);
	MemoryContextDelete(s->scan_cxt);
	*totalrows = seen;
	*totaldeadrows = 0;
	return numrows;
}

/*
 * ANALYZE is off unless dstack_fdw.allow_analyze is on: statistics of sealed
 * columns would be readable by anyone who can read pg_stats.
 */
bool
dfdwAnalyzeForeignTable(Relation relation, AcquireSampleRowsFunc *func, BlockNumber *totalpages)
{
	/*
	 * ANALYZE reads rows outside any dstack_run(), and pg_stats shows its
	 * most common values to anyone with SELECT on the table: never under
	 * the output guard, whatever allow_analyze says.
	 */
	if (!dfdw_guc_analyze || dfdw_guc_output_guard)
	{
		ereport(NOTICE,
				(errmsg("sealed foreign table \"%s\" is not analyzed", RelationGetRelationName(relation)),
				 errdetail("Statistics of sealed data would leak through pg_stats; row counts come from "
						   "the signed manifest."),
				 errhint(dfdw_guc_output_guard ? "Sealed tables are never analyzed while dstack_fdw.output_guard is on." :
						 "A superuser can SET dstack_fdw.allow_analyze = on to allow it.")));
		return false;
	}
	*func = acquire_sample_rows;
	*totalpages = 1;
	return true;
}
