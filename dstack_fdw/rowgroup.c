/*
 * rowgroup.c: how a sealed scan gets its row groups (scan.h).
 *
 * Row groups are handed out by a counter: local for a serial scan, an
 * atomic in the parallel DSM segment when workers share the scan, so every
 * row group is read exactly once.  With dstack_fdw.read_ahead on, a thread
 * of the backend (common/dseal_prefetch.c) reads, authenticates, decodes and,
 * inside dstack_run(), bounds the next row group while the executor works
 * through the current one.  The chunk checks make every chunk of a
 * dstack_run() scan authenticated in every run, whatever the rows.
 */
#include "postgres.h"

#include <unistd.h>

#include "miscadmin.h"
#include "utils/memutils.h"

#include "pg_common.h"
#include "scan.h"

/* Check every chunk of row group g the scan can read: the needed columns' and the unit's. */
static void
check_row_group_chunks(DfdwScan *s, uint32 g)
{
	DErr		err;

	derr_clear(&err);
	for (int i = 0; i <= s->nneeded; i++)
	{
		int			c = i < s->nneeded ? s->mcol[i] : s->unit_mcol;

		if (c >= 0 && !dseal_reader_check_chunk(s->reader, g, (uint32) c, &err))
			derr_ereport(&err, 0, "The sealed file was altered after its owner signed it; fetch it "
						 "again from the owner.");
	}
}

/*
 * Check the signed hash of every chunk the scan can read (keyless, before
 * any row): the needed columns' and the privacy unit's, in every row group,
 * when dstack_fdw.verify_before_scan is on, so that a scan with the guard
 * off fails on a damaged file before its first row.  Otherwise each chunk's
 * GCM tag, compared with the signed one, authenticates it when it is read,
 * and inside dstack_run() the chunks a scan never reached are checked at its
 * end (dfdw_verify_unread_chunks).
 */
void
dfdw_verify_chunks(DfdwScan *s)
{
	if (!dfdw_guc_verify_before_scan)
		return;
	for (uint32 g = 0; g < s->m->nrowgroups; g++)
	{
		CHECK_FOR_INTERRUPTS();
		check_row_group_chunks(s, g);
	}
}

/* The next row group for this process: a shared counter when workers share the scan. */
static uint32
claim_row_group(DfdwScan *s)
{
	return s->shared ? pg_atomic_fetch_add_u32(&s->shared->next_rg, 1) : s->next_serial_rg++;
}

static void
read_failed(const DErr *err)
{
	derr_ereport(err, 0, err->code == DERR_INTEGRITY || err->code == DERR_FORMAT
				 ? "The sealed file was altered after its owner signed it; fetch it again from the owner."
				 : NULL);
}

/* Stop the read-ahead thread: the reader is this thread's again.  Safe to call twice. */
void
dfdw_prefetch_stop(void *arg)
{
	DfdwScan   *s = arg;

	dseal_prefetch_stop(s->pf);
	s->pf = NULL;
}

/*
 * Start the read-ahead thread for a scan of two or more row groups, once the
 * key is installed and every up-front check is done (the thread owns the
 * reader from now on).  Its callback on the scan's context is registered
 * after the reader's, so it runs first: the thread stops before the reader
 * closes, on error and abort too.
 */
static void
prefetch_start(DfdwScan *s)
{
	uint32	   *cols;
	int			unit = 0;		/* the unit's index in cols */
	DErr		err;

	s->pf_tried = true;
	if (dfdw_guc_read_ahead == DFDW_READ_AHEAD_OFF || s->m->nrowgroups < 2 || !s->key_installed)
		return;
	/*
	 * A parallel scan's participants already keep the cores busy: a thread
	 * each only pays when each has a core to spare for it.
	 */
	if (s->shared != NULL && dfdw_guc_read_ahead != DFDW_READ_AHEAD_ALWAYS &&
		2 * (long) s->shared->participants > sysconf(_SC_NPROCESSORS_ONLN))
		return;
	cols = palloc(sizeof(uint32) * (s->nneeded + 1));
	for (int i = 0; i < s->nneeded; i++)
		cols[i] = (uint32) s->mcol[i];
	s->pf_ncols = s->nneeded;
	if (s->unit == &s->unit_buf)	/* the unit is not a needed column: one more */
		cols[s->pf_ncols++] = (uint32) s->unit_mcol;
	if (s->unit != NULL)
		unit = (int) (s->unit == &s->unit_buf ? s->nneeded : s->unit - s->bufs);
	s->pf_out = MemoryContextAllocZero(s->scan_cxt, sizeof(DsealColBuf) * Max(s->pf_ncols, 1));
	derr_clear(&err);
	/* the thread bounds each row group it decodes (row groups in file order: serial scans) */
	s->pf = dseal_prefetch_start(s->reader, s->pf_ncols, cols,
								 s->bound ? dfdw_bound_table(s->bound) : NULL, unit, &err);
	pfree(cols);
	if (s->pf == NULL)
		derr_ereport(&err, ERRCODE_INSUFFICIENT_RESOURCES,
					 "SET dstack_fdw.read_ahead = off to read on the backend's own thread.");
	s->pf_cb.func = dfdw_prefetch_stop;
	s->pf_cb.arg = s;
	MemoryContextRegisterResetCallback(s->scan_cxt, &s->pf_cb);
}

/* Read row group rg on this thread: the needed columns, and the unit's. */
static void
read_row_group(DfdwScan *s, uint32 rg)
{
	DErr		err;

	derr_clear(&err);
	for (int i = 0; i < s->nneeded; i++)
	{
		if (!dseal_reader_read_chunk(s->reader, rg, (uint32) s->mcol[i], &s->bufs[i], &err))
			read_failed(&err);
		if (i >= s->nbufs_init)
			s->nbufs_init = i + 1;
	}
	if (s->unit == &s->unit_buf)
	{
		if (!dseal_reader_read_chunk(s->reader, rg, (uint32) s->unit_mcol, &s->unit_buf, &err))
			read_failed(&err);
		s->unit_buf_init = true;
	}
}

/*
 * Take row group rg from the read-ahead thread (requesting it first if it
 * is not on its way), then ask for the next one before returning.  The
 * buffers are swapped, not copied.
 */
static uint32
take_prefetched(DfdwScan *s)
{
	uint32		rg;
	uint32		next;
	int			k = 0;
	DErr		err;

	if (!dseal_prefetch_pending(s->pf, &rg))
	{
		rg = claim_row_group(s);
		if (rg >= s->m->nrowgroups)
			return rg;
		dseal_prefetch_request(s->pf, rg);
	}
	for (int i = 0; i < s->nneeded; i++)
		s->pf_out[k++] = s->bufs[i];
	if (s->pf_ncols > s->nneeded)
		s->pf_out[k++] = s->unit_buf;
	derr_clear(&err);
	if (!dseal_prefetch_wait(s->pf, s->pf_out, s->bound ? s->keep : NULL, &err))
		read_failed(&err);
	k = 0;
	for (int i = 0; i < s->nneeded; i++)
		s->bufs[i] = s->pf_out[k++];
	s->nbufs_init = s->nneeded;
	if (s->pf_ncols > s->nneeded)
	{
		s->unit_buf = s->pf_out[k++];
		s->unit_buf_init = true;
	}
	next = claim_row_group(s);
	if (next < s->m->nrowgroups)
		dseal_prefetch_request(s->pf, next);
	return rg;
}

/* Read the next row group this process is given; false at the end. */
bool
dfdw_next_row_group(DfdwScan *s)
{
	uint32		rg;

	CHECK_FOR_INTERRUPTS();
	if (!s->pf_tried)
		prefetch_start(s);
	MemoryContextReset(s->batch_cxt);
	dfdw_scan_new_row_group(s);
	if (s->pf)
		rg = take_prefetched(s);
	else
	{
		rg = claim_row_group(s);
		if (rg < s->m->nrowgroups)
			read_row_group(s, rg);
	}
	if (rg >= s->m->nrowgroups)
	{
		s->have_rg = false;
		return false;
	}
	if (s->bound && s->pf == NULL)	/* else the read-ahead thread did */
		dfdw_bound_row_group(s->bound, s->unit, s->keep);
	s->cur_rg = rg;
	s->cur_row = 0;
	s->cur_nrows = s->m->rowgroups[rg].nrows;
	s->have_rg = true;
	return true;
}

/*
 * Inside dstack_run(), check the chunks of the row groups a scan never
 * reached (a hash join whose outer side matches nothing never reads its
 * inner side; one whose hash table is empty stops reading the outer side).
 * A host that damaged one chunk would otherwise learn from failed-or-
 * answered whether the rows made the plan reach it: whether a filter
 * matched, an exact bit per run.  Every chunk is now read, in the scan or
 * here, after the rows were seen, so a damaged chunk fails every run alike,
 * whenever it was damaged.  (How long a run takes still depends on the
 * rows; docs/output-guard.md, "What is not covered".)
 */
void
dfdw_verify_unread_chunks(DfdwScan *s)
{
	uint32		from = s->shared ? s->m->nrowgroups : s->next_serial_rg;
	uint32		pending;

	if (!s->key_installed || !dfdw_sealed_execution())
		return;
	if (s->pf && dseal_prefetch_pending(s->pf, &pending))
		from = Min(from, pending);	/* requested, never taken */
	dfdw_prefetch_stop(s);			/* the reader is this thread's again */
	for (uint32 g = from; g < s->m->nrowgroups; g++)
	{
		CHECK_FOR_INTERRUPTS();
		check_row_group_chunks(s, g);
	}
}

