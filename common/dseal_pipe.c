/*
 * dseal_pipe.c: the writer's pipeline: row groups sealed into chunks on a
 * thread of the writer's own while the caller fills the next row group.
 *
 * The caller (a PostgreSQL backend) spends its time turning rows into column
 * buffers; sealing a chunk is zstd, AES-256-GCM and SHA-256, then write(2).
 * dseal_writer_add_row_group() swaps the caller's full buffers with the
 * writer's other set (sealed meanwhile) and returns at once; the thread seals
 * the row group's chunks and writes them in order while the caller fills the
 * next one.  At most one row group is in flight, so memory is two row groups
 * of column buffers (and one of ciphertext) whatever the table size.
 *
 * When the caller has filled the next row group before the thread is done,
 * it does not sit idle: it claims chunks of the row group in flight from the
 * back (the thread claims from the front) and seals them with its own zstd
 * and GCM contexts.  Each chunk is sealed by exactly one worker into its own
 * ciphertext buffer, and the thread writes them in column order once all are
 * sealed, so the file is byte for byte what a one-threaded writer writes
 * (apart from the random key, nonces' key and dataset id, as always).
 *
 * The thread runs only common/ code (malloc, OpenSSL, zstd; never
 * PostgreSQL) with every signal blocked, so PostgreSQL's handlers run only on
 * the backend's thread.  An error on either side is kept in terr and returned
 * by the next add_row_group or finish on the caller's thread, which reports
 * it (dstack_seal: derr_ereport()).  dseal_writer_free() stops and joins the
 * thread first; a row group in flight is abandoned at the next chunk.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bytebuf.h"
#include "dseal_writer_int.h"
#include "dthread.h"

/* write(2) until done; short writes and EINTR are normal on some filesystems. */
bool
dseal_write_all(DsealWriter *w, const void *buf, size_t len, DErr *err)
{
	const uint8_t *p = buf;

	while (len > 0)
	{
		ssize_t		n = write(w->fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
		{
			int			e = n < 0 ? errno : ENOSPC;

			derr_set(err, DERR_IO, "could not write sealed dataset \"%s\"", w->tmp_path);
			derr_detail(err, "%s.", n < 0 ? strerror(e) : "No space left or short write");
			err->sys_errno = e;
			return false;
		}
		p += n;
		len -= (size_t) n;
		/* atomic: dseal_writer_bytes() reads it from the caller's thread */
		__atomic_store_n(&w->offset, w->offset + (uint64_t) n, __ATOMIC_RELAXED);
	}
	return true;
}

/*
 * Compress (when it pays) and encrypt chunk col of the row group in flight
 * into its ciphertext buffer, and fill its record except the offset.
 */
static bool
seal_chunk(DsealWriter *w, DsealSealer *s, int col, DErr *err)
{
	const DsealColBuf *cb = &w->inflight[col];
	DsealChunkRef *ref = &w->inflight_refs[col];
	uint32_t	rg = w->inflight_rg;
	size_t		plain_len = colbuf_serialized_size(cb);
	const uint8_t *payload;
	size_t		payload_len;
	uint8_t		nonce[DC_GCM_NONCE_LEN];
	uint8_t		aad[DSEAL_CHUNK_AAD_LEN];
	uint8_t    *ct;

	if (!dc_buf_reserve(&s->plain, &s->plain_cap, plain_len, "sealing a chunk", err))
		return false;
	colbuf_serialize(cb, s->plain);
	payload = s->plain;
	payload_len = plain_len;
	ref->zstd = false;
	if (s->zctx)
	{
		size_t		bound = ZSTD_compressBound(plain_len);
		size_t		zlen;

		if (!dc_buf_reserve(&s->zbuf, &s->zbuf_cap, bound, "sealing a chunk", err))
			return false;
		zlen = ZSTD_compressCCtx(s->zctx, s->zbuf, bound, s->plain, plain_len, w->zstd_level);
		if (ZSTD_isError(zlen))
			return derr_set(err, DERR_CRYPTO, "zstd compression failed: %s", ZSTD_getErrorName(zlen));
		if (zlen < plain_len)
		{
			payload = s->zbuf;
			payload_len = zlen;
			ref->zstd = true;
		}
	}
	if (!dc_buf_reserve(&w->ct[col], &w->ct_cap[col], payload_len + DC_GCM_TAG_LEN, "sealing a chunk", err))
		return false;
	ct = w->ct[col];
	dseal_chunk_nonce((uint64_t) rg * w->m.ncols + (uint64_t) col, nonce);
	dseal_chunk_aad(&w->m, rg, (uint32_t) col, payload_len, aad);
	if (!dc_gcm_encrypt(s->gcm, nonce, aad, sizeof(aad), payload, payload_len,
						ct, ct + payload_len, err))
		return false;
	/* the plaintext buffers held table data: do not leave it in freed memory */
	explicit_bzero(s->plain, plain_len);
	if (ref->zstd)
		explicit_bzero(s->zbuf, payload_len);

	ref->length = payload_len + DC_GCM_TAG_LEN;
	ref->plain_length = plain_len;
	memcpy(ref->tag, ct + payload_len, DC_GCM_TAG_LEN);
	dc_sha256(ct, ref->length, ref->sha256);
	return true;
}

/* Append the row group's sealed chunks in column order (the thread, all chunks sealed). */
static bool
write_row_group(DsealWriter *w, DErr *err)
{
	uint64_t	start = w->offset;

	for (int c = 0; c < w->m.ncols; c++)
	{
		if (__atomic_load_n(&w->stop, __ATOMIC_RELAXED))
			return derr_set(err, DERR_IO, "the seal was abandoned");
		w->inflight_refs[c].offset = w->offset;
		if (!dseal_write_all(w, w->ct[c], w->inflight_refs[c].length, err))
			return false;
	}

	/*
	 * Start writing the row group back to disk now, as PostgreSQL's
	 * pg_flush_data() does, so the fsync in finish finds little left to do
	 * (it was several percent of a large seal).  Advisory: a failure here
	 * shows again at that fsync, which is what reports it.
	 */
	(void) sync_file_range(w->fd, (off_t) start, (off_t) (w->offset - start), SYNC_FILE_RANGE_WRITE);
	return true;
}

/* Record one claimed chunk as done (mu held); the first error is kept. */
static void
chunk_done(DsealWriter *w, bool ok, const DErr *err)
{
	w->ndone++;
	if (!ok && !w->failed)
	{
		w->terr = *err;
		w->failed = true;
	}
	pthread_cond_broadcast(&w->cv);
}

/*
 * The writer thread: wait for a row group, seal chunks from the front until
 * none is left to claim, wait for the chunks the caller claimed, write them
 * all in order, repeat until stopped.  After an error it claims nothing more
 * and waits for free().
 */
static void *
writer_main(void *arg)
{
	DsealWriter *w = arg;
	DsealSealer *s = &w->sealers[DSEAL_WORKER_THREAD];
	DErr		err;
	bool		ok;

	pthread_mutex_lock(&w->mu);
	for (;;)
	{
		while (!w->busy && !__atomic_load_n(&w->stop, __ATOMIC_RELAXED))
			pthread_cond_wait(&w->cv, &w->mu);
		if (__atomic_load_n(&w->stop, __ATOMIC_RELAXED))
			break;
		while (w->claim_lo < w->claim_hi && !w->failed && !__atomic_load_n(&w->stop, __ATOMIC_RELAXED))
		{
			int			c = w->claim_lo++;

			pthread_mutex_unlock(&w->mu);
			ok = seal_chunk(w, s, c, &err);
			pthread_mutex_lock(&w->mu);
			chunk_done(w, ok, &err);
		}
		/* the chunks claimed by the caller: claims are final once lo meets hi */
		while (w->ndone < w->claim_lo + (w->m.ncols - w->claim_hi) &&
			   !__atomic_load_n(&w->stop, __ATOMIC_RELAXED))
			pthread_cond_wait(&w->cv, &w->mu);
		if (__atomic_load_n(&w->stop, __ATOMIC_RELAXED))
			break;
		if (!w->failed)
		{
			pthread_mutex_unlock(&w->mu);
			ok = write_row_group(w, &err);
			pthread_mutex_lock(&w->mu);
			if (!ok && !w->failed)
			{
				w->terr = err;
				w->failed = true;
			}
		}
		w->busy = false;
		pthread_cond_broadcast(&w->cv);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/*
 * The caller's side of a hand-over: until the row group in flight is
 * written, seal its unclaimed chunks from the back, then wait.  False with
 * the first error either worker met.  Waits at most one row group's work.
 */
static bool
wait_idle(DsealWriter *w, DErr *err)
{
	DsealSealer *s = &w->sealers[DSEAL_WORKER_CALLER];
	DErr		cerr;
	bool		ok;

	if (!w->thread_running)
		return derr_set(err, DERR_ARG, "the writer of \"%s\" is finished", w->path);
	pthread_mutex_lock(&w->mu);
	while (w->busy)
	{
		if (w->claim_lo < w->claim_hi && !w->failed)
		{
			int			c = --w->claim_hi;

			w->caller_chunks++;
			pthread_mutex_unlock(&w->mu);
			ok = seal_chunk(w, s, c, &cerr);
			pthread_mutex_lock(&w->mu);
			chunk_done(w, ok, &cerr);
			continue;
		}
		pthread_cond_wait(&w->cv, &w->mu);
	}
	ok = !w->failed;
	if (!ok)
		*err = w->terr;
	pthread_mutex_unlock(&w->mu);
	return ok;
}

/* Stop and join the thread; a row group it holds is abandoned at the next chunk. */
static void
stop_thread(DsealWriter *w)
{
	if (!w->thread_running)
		return;
	pthread_mutex_lock(&w->mu);
	__atomic_store_n(&w->stop, true, __ATOMIC_RELAXED);
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	w->thread_running = false;
}

bool
dseal_pipe_init(DsealWriter *w, const uint8_t data_key[DSEAL_DATA_KEY_LEN], DErr *err)
{
	int			ncols = w->m.ncols;

	w->inflight = calloc(ncols, sizeof(DsealColBuf));
	w->ct = calloc(ncols, sizeof(uint8_t *));
	w->ct_cap = calloc(ncols, sizeof(size_t));
	if (!w->inflight || !w->ct || !w->ct_cap)
		return derr_set(err, DERR_NOMEM, "out of memory starting a seal");
	for (int i = 0; i < 2; i++)
	{
		DsealSealer *s = &w->sealers[i];

		if ((s->gcm = dc_gcm_new(data_key, err)) == NULL)
			return false;
		if (w->zstd_level > 0 && (s->zctx = ZSTD_createCCtx()) == NULL)
			return derr_set(err, DERR_NOMEM, "could not create a zstd compression context");
	}
	return true;
}

/*
 * Start the writer thread with every signal blocked (dc_thread_start):
 * PostgreSQL's handlers (cancel, terminate, latches) must only ever run on
 * the backend's own thread, where CHECK_FOR_INTERRUPTS() acts on them.
 */
bool
dseal_pipe_start(DsealWriter *w, DErr *err)
{
	int			rc;

	if ((rc = pthread_mutex_init(&w->mu, NULL)) != 0)
		goto fail;
	if ((rc = pthread_cond_init(&w->cv, NULL)) != 0)
	{
		pthread_mutex_destroy(&w->mu);
		goto fail;
	}
	w->sync_ok = true;
	rc = dc_thread_start(&w->thread, writer_main, w);
	if (rc != 0)
		goto fail;
	w->thread_running = true;
	return true;

fail:
	derr_set(err, rc == ENOMEM || rc == EAGAIN ? DERR_NOMEM : DERR_IO,
			 "could not start the writer thread of a seal");
	derr_detail(err, "%s.", strerror(rc));
	err->sys_errno = rc;
	return false;
}

bool
dseal_pipe_drain(DsealWriter *w, DErr *err)
{
	if (!wait_idle(w, err))
		return false;
	stop_thread(w);
	return true;
}

void
dseal_pipe_free(DsealWriter *w)
{
	/* first the thread: it may be writing to fd and reading the buffers freed below */
	stop_thread(w);
	if (w->sync_ok)
	{
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->mu);
		w->sync_ok = false;
	}
	for (int i = 0; i < 2; i++)
	{
		DsealSealer *s = &w->sealers[i];

		dc_gcm_free(s->gcm);	/* scrubs its copy of the data key */
		ZSTD_freeCCtx(s->zctx);
		/* a chunk abandoned half-way leaves table data in them */
		if (s->plain)
			explicit_bzero(s->plain, s->plain_cap);
		if (s->zbuf)
			explicit_bzero(s->zbuf, s->zbuf_cap);
		free(s->plain);
		free(s->zbuf);
		memset(s, 0, sizeof(*s));
	}
	for (int c = 0; c < w->m.ncols; c++)
	{
		if (w->inflight)
			colbuf_free(&w->inflight[c]);
		if (w->ct)
			free(w->ct[c]);
	}
	free(w->inflight);
	free(w->ct);
	free(w->ct_cap);
	w->inflight = NULL;
	w->ct = NULL;
	w->ct_cap = NULL;
}

/*
 * Hand one row group to the writer thread.  On success cols hold the
 * writer's other set of buffers, empty, for the caller to fill next; the
 * values passed are sealed while it does.  An error of an earlier row group
 * (I/O, memory, zstd, OpenSSL, on either thread) is returned here or by
 * finish.
 */
bool
dseal_writer_add_row_group(DsealWriter *w, DsealColBuf *cols, DErr *err)
{
	DsealManifest *m = &w->m;
	uint32_t	rg = m->nrowgroups;
	uint32_t	nrows = cols[0].nrows;
	DsealRowGroup *g;

	if (nrows == 0)
		return true;
	if (nrows > m->rows_per_group)
		return derr_set(err, DERR_ARG, "row group of %u rows exceeds rows_per_group %u",
						nrows, m->rows_per_group);
	for (int c = 0; c < m->ncols; c++)
		if (cols[c].nrows != nrows || cols[c].enc != m->cols[c].enc)
			return derr_set(err, DERR_ARG, "column %d of row group %u does not match the schema", c, rg);
	/* at most one row group in flight: the previous one must be written first */
	if (!wait_idle(w, err))
		return false;
	for (int c = 0; c < m->ncols; c++)
		if (w->inflight[c].validity == NULL &&
			!colbuf_init(&w->inflight[c], cols[c].enc, cols[c].cap, err))
			return false;
	if (rg == w->rg_cap)
	{
		uint32_t	ncap = w->rg_cap ? w->rg_cap * 2 : 16;
		DsealRowGroup *n = realloc(m->rowgroups, ncap * sizeof(DsealRowGroup));

		if (!n)
			return derr_set(err, DERR_NOMEM, "out of memory recording row groups");
		m->rowgroups = n;
		w->rg_cap = ncap;
	}
	g = &m->rowgroups[rg];
	g->nrows = nrows;
	g->chunks = calloc(m->ncols, sizeof(DsealChunkRef));
	if (!g->chunks)
		return derr_set(err, DERR_NOMEM, "out of memory recording row groups");
	m->nrowgroups++;			/* counted now so free() releases chunks */
	m->row_count += nrows;		/* a row group that fails fails the seal */
	for (int c = 0; c < m->ncols; c++)
	{
		DsealColBuf t = w->inflight[c];

		w->inflight[c] = cols[c];
		cols[c] = t;
		colbuf_reset(&cols[c]);
	}
	pthread_mutex_lock(&w->mu);
	w->inflight_rg = rg;
	w->inflight_refs = g->chunks;
	w->claim_lo = 0;
	w->claim_hi = m->ncols;
	w->ndone = 0;
	w->busy = true;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return true;
}
