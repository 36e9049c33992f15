/*
 * dseal_prefetch.c: read the next row group on a second thread.
 *
 * A scan spends about a third of its time in the reader (pread, AES-GCM,
 * zstd, parsing the chunk) and the rest in the executor.  The prefetcher
 * overlaps the two: while the caller works through row group N, one thread
 * reads, authenticates and decodes row group N+1 into a second set of column
 * buffers; dseal_prefetch_wait() then swaps the two sets.  Memory is two
 * row groups of the requested columns instead of one.
 *
 * The thread runs only library code (this file, dseal_reader.c, colbuf.c,
 * OpenSSL, zstd) and never its host's: inside a PostgreSQL backend it must
 * not palloc, ereport or take a signal, so every signal is blocked in it.
 * While it exists the reader belongs to it: the caller touches the reader
 * again only after dseal_prefetch_stop(), except through the prefetcher's
 * second set of chunk contexts inside dseal_prefetch_wait() (below).  Errors
 * are returned by dseal_prefetch_wait(), whole (code, message, detail).
 *
 * With a bounding table (unit_bound.c), the thread also decides which rows
 * of the row group contribution bounding keeps, right after decoding it.
 * Row groups are bounded in the order they are requested, which for the
 * serial scans of dstack_run() is the file's order, as bounding requires.
 *
 * A caller that comes to dseal_prefetch_wait() before the row group is ready
 * does not just wait: the columns are tasks, and it takes those the thread
 * has not started, reading them with a second set of chunk contexts
 * (dseal_scratch_new).  When the executor's work per row group is small (an
 * aggregate in the scan), the two threads share the reading instead of one
 * waiting for the other.  Columns are taken costliest first (order_columns),
 * so the ones left when the caller joins are short.  Whoever finishes the
 * last column bounds the row group; the caller's part is library code too
 * (no palloc, no ereport).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "dseal.h"
#include "dthread.h"

typedef enum PfState
{
	PF_IDLE,					/* no request */
	PF_REQUESTED,				/* the thread is (or will be) reading req_rg */
	PF_DONE,					/* bufs hold req_rg, or err says why not */
	PF_STOP						/* the thread must exit */
} PfState;

struct DsealPrefetch
{
	DsealReader *r;
	int			ncols;
	uint32_t   *cols;
	DsealColBuf *bufs;			/* the thread's set */
	int		   *order;			/* the request's columns, costliest first (see work()) */
	DsealBound *bound;			/* NULL: no bounding */
	int			unit;			/* bufs[unit] is the privacy unit's column */
	uint8_t    *keep;			/* the row group's kept rows (LSB first) */
	size_t		keep_cap;
	pthread_t	thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	PfState		state;
	uint32_t	req_rg;
	int			next_col;		/* the request's first column nobody has taken */
	int			inflight;		/* columns being read now */
	bool		finishing;		/* the last column is in: bounding, then PF_DONE */
	DsealScratch *help;			/* the caller's contexts for the columns it takes */
	uint64_t	helped;			/* columns the caller read (tests) */
	bool		ok;
	DErr		err;
};

/*
 * A chunk's work, roughly: zstd writes plain_length bytes, AES-GCM reads
 * length (several times faster per byte).
 */
static uint64_t
chunk_cost(const DsealChunkRef *c)
{
	return c->plain_length + c->length / 4;
}

/*
 * Order the columns of row group rg costliest first.  The thread starts on
 * a request alone and the caller joins when it comes to wait; the row group
 * is ready when the last column is.  Longest first keeps the last ones
 * short, so the two finish close together instead of one waiting through a
 * big column the other started last.
 */
static void
order_columns(DsealPrefetch *p, uint32_t rg)
{
	const DsealManifest *m = dseal_reader_manifest(p->r);
	const DsealChunkRef *chunks = rg < m->nrowgroups ? m->rowgroups[rg].chunks : NULL;

	for (int i = 0; i < p->ncols; i++)
	{
		int			j = i;
		uint64_t	c = chunks ? chunk_cost(&chunks[p->cols[i]]) : 0;

		/* insertion sort: a handful of columns */
		while (j > 0 && chunks && chunk_cost(&chunks[p->cols[p->order[j - 1]]]) < c)
		{
			p->order[j] = p->order[j - 1];
			j--;
		}
		p->order[j] = i;
	}
}

/*
 * Take and read columns of the current request until none is left; the
 * one who completes the last bounds the row group and marks it done.  Called
 * and returns with mu held.  x: the caller's contexts, NULL: the reader's
 * own (the thread).
 */
static void
work(DsealPrefetch *p, DsealScratch *x)
{
	while (p->state == PF_REQUESTED && p->next_col < p->ncols)
	{
		int			i = p->order[p->next_col++];
		uint32_t	rg = p->req_rg;
		bool		ok;
		DErr		err;

		p->inflight++;
		pthread_mutex_unlock(&p->mu);
		derr_clear(&err);
		ok = x != NULL ? dseal_reader_read_chunk_with(p->r, x, rg, p->cols[i], &p->bufs[i], &err)
			: dseal_reader_read_chunk(p->r, rg, p->cols[i], &p->bufs[i], &err);
		pthread_mutex_lock(&p->mu);
		p->inflight--;
		p->helped += x != NULL;
		if (!ok && p->ok)
		{
			p->ok = false;
			p->err = err;
			p->next_col = p->ncols; /* the others stop taking columns */
		}
	}
	if (p->state == PF_REQUESTED && p->next_col >= p->ncols && p->inflight == 0 && !p->finishing)
	{
		bool		ok = p->ok;
		DErr		err;

		p->finishing = true;
		pthread_mutex_unlock(&p->mu);
		derr_clear(&err);
		if (ok && p->bound != NULL)
		{
			size_t		need = ((size_t) p->bufs[p->unit].nrows + 7) / 8;

			if (need > p->keep_cap)
			{
				uint8_t    *k = realloc(p->keep, need);

				if (k == NULL)
					ok = derr_set(&err, DERR_NOMEM, "out of memory for contribution bounding");
				else
				{
					p->keep = k;
					p->keep_cap = need;
				}
			}
			ok = ok && dseal_bound_row_group(p->bound, &p->bufs[p->unit], p->keep, &err);
		}
		pthread_mutex_lock(&p->mu);
		if (p->ok && !ok)
		{
			p->ok = false;
			p->err = err;
		}
		p->finishing = false;
		p->state = PF_DONE;
		pthread_cond_broadcast(&p->cv);
	}
}

static void *
prefetch_main(void *arg)
{
	DsealPrefetch *p = arg;

	pthread_mutex_lock(&p->mu);
	for (;;)
	{
		while (p->state != PF_REQUESTED && p->state != PF_STOP)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->state == PF_STOP)
			break;
		work(p, NULL);
		/* the caller may still be reading a column of this request */
		while (p->state == PF_REQUESTED && p->next_col >= p->ncols)
			pthread_cond_wait(&p->cv, &p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

DsealPrefetch *
dseal_prefetch_start(DsealReader *r, int ncols, const uint32_t *cols, DsealBound *bound, int unit,
					 DErr *err)
{
	DsealPrefetch *p = calloc(1, sizeof(DsealPrefetch));
	int			rc;

	if (p == NULL ||
		(p->cols = calloc((size_t) (ncols > 0 ? ncols : 1), sizeof(uint32_t))) == NULL ||
		(p->bufs = calloc((size_t) (ncols > 0 ? ncols : 1), sizeof(DsealColBuf))) == NULL ||
		(p->order = calloc((size_t) (ncols > 0 ? ncols : 1), sizeof(int))) == NULL)
	{
		if (p)
		{
			free(p->bufs);
			free(p->cols);
		}
		free(p);
		derr_set(err, DERR_NOMEM, "out of memory starting the read-ahead thread");
		return NULL;
	}
	if ((p->help = dseal_scratch_new(r, err)) == NULL)
	{
		free(p->order);
		free(p->bufs);
		free(p->cols);
		free(p);
		return NULL;
	}
	p->r = r;
	p->bound = bound;
	p->unit = unit;
	p->ncols = ncols;
	memcpy(p->cols, cols, sizeof(uint32_t) * (size_t) ncols);
	p->state = PF_IDLE;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	rc = dc_thread_start(&p->thread, prefetch_main, p);	/* no signal handler of the host runs on it */
	if (rc != 0)
	{
		pthread_mutex_destroy(&p->mu);
		pthread_cond_destroy(&p->cv);
		dseal_scratch_free(p->help);
		free(p->order);
		free(p->bufs);
		free(p->cols);
		free(p);
		derr_set(err, DERR_IO, "could not start the read-ahead thread");
		derr_detail(err, "pthread_create failed with %s.", strerror(rc));
		return NULL;
	}
	return p;
}

void
dseal_prefetch_request(DsealPrefetch *p, uint32_t rg)
{
	pthread_mutex_lock(&p->mu);
	p->req_rg = rg;
	order_columns(p, rg);
	p->next_col = 0;
	p->inflight = 0;
	p->ok = true;
	derr_clear(&p->err);
	p->state = PF_REQUESTED;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

bool
dseal_prefetch_pending(DsealPrefetch *p, uint32_t *rg)
{
	bool		pending;

	pthread_mutex_lock(&p->mu);
	pending = p->state == PF_REQUESTED || p->state == PF_DONE;
	*rg = p->req_rg;
	pthread_mutex_unlock(&p->mu);
	return pending;
}

bool
dseal_prefetch_wait(DsealPrefetch *p, DsealColBuf *out, uint8_t *keep, DErr *err)
{
	bool		ok;

	pthread_mutex_lock(&p->mu);
	if (p->state == PF_IDLE)
	{
		pthread_mutex_unlock(&p->mu);
		return derr_set(err, DERR_ARG, "no row group was requested from the read-ahead thread");
	}
	while (p->state == PF_REQUESTED)
	{
		work(p, p->help);		/* take the columns the thread has not started */
		if (p->state == PF_REQUESTED)
			pthread_cond_wait(&p->cv, &p->mu);
	}
	ok = p->ok;
	if (!ok)
		*err = p->err;
	p->state = PF_IDLE;
	pthread_mutex_unlock(&p->mu);
	if (ok && p->bound != NULL && keep != NULL)
		memcpy(keep, p->keep, ((size_t) p->bufs[p->unit].nrows + 7) / 8);
	if (ok)
		for (int i = 0; i < p->ncols; i++)
		{
			DsealColBuf t = out[i];

			out[i] = p->bufs[i];
			p->bufs[i] = t;
		}
	return ok;
}

uint64_t
dseal_prefetch_helped(DsealPrefetch *p)
{
	uint64_t	n;

	pthread_mutex_lock(&p->mu);
	n = p->helped;
	pthread_mutex_unlock(&p->mu);
	return n;
}

void
dseal_prefetch_discard(DsealPrefetch *p)
{
	pthread_mutex_lock(&p->mu);
	while (p->state == PF_REQUESTED)	/* let a read in progress finish with the reader */
		pthread_cond_wait(&p->cv, &p->mu);
	p->state = PF_IDLE;
	pthread_mutex_unlock(&p->mu);
}

void
dseal_prefetch_stop(DsealPrefetch *p)
{
	if (p == NULL)
		return;
	dseal_prefetch_discard(p);
	pthread_mutex_lock(&p->mu);
	p->state = PF_STOP;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->thread, NULL);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	for (int i = 0; i < p->ncols; i++)
		colbuf_free(&p->bufs[i]);
	dseal_scratch_free(p->help);
	free(p->keep);
	free(p->order);
	free(p->bufs);
	free(p->cols);
	free(p);
}
