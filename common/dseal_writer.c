/*
 * dseal_writer.c: streaming writer of .dseal files (format in dseal.h).
 *
 * The caller fills one row group of column buffers at a time and hands it
 * over; the writer serializes, compresses, encrypts and appends each column's
 * chunk, keeping only the chunk metadata for the manifest.  Memory is thus
 * bounded by one row group whatever the table size.  The file is written
 * under a temporary name and published under the final name only after the
 * manifest and trailer are written and fsynced, so a failure or cancel never
 * leaves a half-written dataset under the final name.  Publishing creates the
 * final name exclusively (link(2), or renameat2(RENAME_NOREPLACE) where the
 * file system has no hard links): of two seals racing for one path exactly
 * one succeeds, the other fails with EEXIST and removes its temporary file;
 * an existing dataset (or its .json) is never replaced.
 *
 * Pipeline: the backend spends its time turning rows into column buffers,
 * the writer its time in zstd, AES-GCM, SHA-256 and write(2).  So the writer
 * runs that second half on a thread of its own: dseal_writer_add_row_group()
 * swaps the caller's full buffers with the writer's other set (sealed and
 * emptied meanwhile) and returns, and the thread seals the row group while
 * the caller fills the next one.  At most one row group is in flight, so
 * memory is two row groups of column buffers whatever the table size.  The
 * thread runs only code of this file and common/ (malloc, no PostgreSQL),
 * with every signal blocked so no PostgreSQL signal handler runs on it; its
 * errors are kept and returned by the next add_row_group or finish call on
 * the caller's thread.  Chunks are written in the same order and with the
 * same bytes as a synchronous writer would; finish writes the manifest on the
 * caller's thread after the thread has stopped.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <zstd.h>

#include "dseal.h"

struct DsealWriter
{
	DsealManifest m;			/* header fields filled at open, chunks as we go */
	uint8_t		owner_sk[DC_SECKEY_LEN];
	DcGcm	   *gcm;
	ZSTD_CCtx  *zctx;
	int			zstd_level;
	int			fd;
	char	   *path;
	char	   *tmp_path;
	bool		write_detached;
	bool		finished;
	bool		tmp_gone;		/* the temporary name was consumed or removed */
	dev_t		dev;			/* identity of the file we wrote, so a rollback */
	ino_t		ino;			/* removes only our own final name */
	uint64_t	offset;			/* next write position */
	uint32_t	rg_cap;
	uint8_t    *plain;			/* serialized plaintext */
	size_t		plain_cap;
	uint8_t    *zbuf;			/* compressed plaintext */
	size_t		zbuf_cap;
	uint8_t    *cbuf;			/* ciphertext || tag */
	size_t		cbuf_cap;

	/*
	 * The writer thread.  Fields above that seal_row_group() uses (gcm,
	 * zctx, fd, offset, the scratch buffers) belong to the thread while busy
	 * is set, to the caller otherwise; mu and cv guard the fields below.
	 */
	pthread_t	thread;
	bool		thread_running;
	pthread_mutex_t mu;
	pthread_cond_t cv;			/* broadcast on every change of busy/stop */
	bool		sync_ok;		/* mu and cv are initialised */
	bool		busy;			/* the thread holds a row group */
	bool		stop;			/* free(): abandon the row group and exit */
	bool		failed;			/* the thread failed: terr, sticky */
	DErr		terr;
	DsealColBuf *inflight;		/* ncols buffers: the row group being sealed */
	DsealChunkRef *inflight_refs;	/* its chunk records in the manifest */
	uint32_t	inflight_rg;
};

/* Grow a scratch buffer; buffers are reused across chunks. */
static bool
ensure_cap(uint8_t **buf, size_t *cap, size_t need, DErr *err)
{
	uint8_t    *n;

	if (*cap >= need)
		return true;
	n = realloc(*buf, need);
	if (!n)
		return derr_set(err, DERR_NOMEM, "out of memory sealing a chunk of %zu bytes", need);
	*buf = n;
	*cap = need;
	return true;
}

/* write(2) until done; short writes and EINTR are normal on some filesystems. */
static bool
write_all(DsealWriter *w, const void *buf, size_t len, DErr *err)
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

static char *
iso_now(void)
{
	char		buf[32];
	time_t		t = time(NULL);
	struct tm	tm;

	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return strdup(buf);
}

/* Copy the caller's column definitions into the manifest we own. */
static bool
copy_header(DsealWriter *w, const DsealWriterOptions *o, DErr *err)
{
	DsealManifest *m = &w->m;

	m->version = DSEAL_VERSION;
	dseal_file_header(m->file_header);	/* part of the header hash and the signature */
	m->ncols = o->ncols;
	m->cols = calloc(o->ncols, sizeof(DsealColumnDef));
	m->table = strdup(o->table);
	m->recipient_purpose = strdup(o->recipient_purpose);
	m->sealed_at = iso_now();
	if (!m->cols || !m->table || !m->recipient_purpose || !m->sealed_at)
		return derr_set(err, DERR_NOMEM, "out of memory starting a seal");
	for (int i = 0; i < o->ncols; i++)
	{
		m->cols[i].name = strdup(o->cols[i].name);
		m->cols[i].type = strdup(o->cols[i].type);
		m->cols[i].enc = o->cols[i].enc;
		m->cols[i].repr = o->cols[i].repr;
		if (!m->cols[i].name || !m->cols[i].type)
			return derr_set(err, DERR_NOMEM, "out of memory starting a seal");
	}
	m->recipe = o->recipe;
	memcpy(m->recipient_pub, o->recipient_pub, DC_PUBKEY_LEN);
	memcpy(m->recipient_chain, o->recipient_chain, sizeof(m->recipient_chain));
	m->rows_per_group = o->rows_per_group ? o->rows_per_group : DSEAL_DEFAULT_ROWS_PER_GROUP;
	return true;
}

/* Seal the row group the thread holds, chunk by chunk; free() can abandon it between chunks. */
static bool seal_chunk(DsealWriter *w, uint32_t rg, uint32_t col, const DsealColBuf *cb,
					   DsealChunkRef *ref, DErr *err);

static bool
seal_row_group(DsealWriter *w, DErr *err)
{
	for (int c = 0; c < w->m.ncols; c++)
	{
		if (__atomic_load_n(&w->stop, __ATOMIC_RELAXED))
			return derr_set(err, DERR_IO, "the seal was abandoned");
		if (!seal_chunk(w, w->inflight_rg, (uint32_t) c, &w->inflight[c], &w->inflight_refs[c], err))
			return false;
	}
	return true;
}

/*
 * The writer thread: wait for a row group, seal it, report, repeat until
 * stopped.  Plain C and malloc only (it must never call into PostgreSQL);
 * an error is kept in terr for the caller's next call, and the thread then
 * waits for free() like after any row group.
 */
static void *
writer_main(void *arg)
{
	DsealWriter *w = arg;

	pthread_mutex_lock(&w->mu);
	for (;;)
	{
		DErr		err;
		bool		ok;

		while (!w->busy && !__atomic_load_n(&w->stop, __ATOMIC_RELAXED))
			pthread_cond_wait(&w->cv, &w->mu);
		if (__atomic_load_n(&w->stop, __ATOMIC_RELAXED))
			break;
		pthread_mutex_unlock(&w->mu);
		derr_clear(&err);
		ok = seal_row_group(w, &err);	/* never after a failure: wait_idle() refuses */
		pthread_mutex_lock(&w->mu);
		if (!ok)
		{
			w->terr = err;
			w->failed = true;
		}
		w->busy = false;
		pthread_cond_broadcast(&w->cv);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/*
 * Start the writer thread with every signal blocked: PostgreSQL's handlers
 * (cancel, terminate, latches) must only ever run on the backend's own
 * thread, where CHECK_FOR_INTERRUPTS() acts on them.  The new thread
 * inherits the full mask; the caller's mask is restored right after.
 */
static bool
start_thread(DsealWriter *w, DErr *err)
{
	sigset_t	all,
				old;
	int			rc;

	if ((rc = pthread_mutex_init(&w->mu, NULL)) != 0)
		goto fail;
	if ((rc = pthread_cond_init(&w->cv, NULL)) != 0)
	{
		pthread_mutex_destroy(&w->mu);
		goto fail;
	}
	w->sync_ok = true;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&w->thread, NULL, writer_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
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

/* Wait until the thread has sealed what it holds; false with the thread's error if it failed. */
static bool
wait_idle(DsealWriter *w, DErr *err)
{
	bool		ok;

	if (!w->thread_running)
		return derr_set(err, DERR_ARG, "the writer of \"%s\" is finished", w->path);
	pthread_mutex_lock(&w->mu);
	while (w->busy)
		pthread_cond_wait(&w->cv, &w->mu);
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

static unsigned int tmp_counter = 0;

DsealWriter *
dseal_writer_open(const DsealWriterOptions *o, const uint8_t owner_sk[DC_SECKEY_LEN], DErr *err)
{
	DsealWriter *w = calloc(1, sizeof(DsealWriter));
	uint8_t		data_key[DSEAL_DATA_KEY_LEN];
	uint8_t		pub[DC_PUBKEY_LEN];
	bool		ok;

	if (!w)
	{
		derr_set(err, DERR_NOMEM, "out of memory starting a seal");
		return NULL;
	}
	w->fd = -1;
	if (o->ncols <= 0)
	{
		derr_set(err, DERR_ARG, "a sealed dataset needs at least one column");
		goto fail;
	}
	memcpy(w->owner_sk, owner_sk, DC_SECKEY_LEN);
	w->zstd_level = o->zstd_level;
	w->write_detached = o->write_detached_manifest;
	w->path = strdup(o->path);
	/* pid and a per-process counter: unique even for seals nested in one backend */
	if (!w->path || asprintf(&w->tmp_path, "%s.tmp.%d.%u", o->path, (int) getpid(), ++tmp_counter) < 0)
	{
		w->tmp_path = NULL;
		derr_set(err, DERR_NOMEM, "out of memory starting a seal");
		goto fail;
	}
	if (!copy_header(w, o, err))
		goto fail;
	/* the writer's own set of column buffers, allocated at the first row group */
	w->inflight = calloc(o->ncols, sizeof(DsealColBuf));
	if (!w->inflight)
	{
		derr_set(err, DERR_NOMEM, "out of memory starting a seal");
		goto fail;
	}

	/* owner identity = Ethereum address of the owner key */
	if (!dc_pubkey_from_seckey(owner_sk, pub, err) ||
		!dc_pubkey_to_address(pub, DC_PUBKEY_LEN, w->m.owner_id, err))
		goto fail;

	/* fresh dataset id and data key; wrap the key for the recipient */
	ok = dc_random(w->m.dataset_id, DSEAL_DATASET_ID_LEN, err) &&
		dc_random(data_key, sizeof(data_key), err) &&
		dseal_wrap_key(&w->m.recipe, w->m.owner_id, w->m.recipient_pub, w->m.dataset_id,
					   data_key, w->m.ephemeral_pub, w->m.wrapped, err) &&
		(w->gcm = dc_gcm_new(data_key, err)) != NULL;
	explicit_bzero(data_key, sizeof(data_key));
	if (!ok || !dseal_manifest_header_hash(&w->m, w->m.header_hash, err))
		goto fail;

	if (w->zstd_level > 0 && (w->zctx = ZSTD_createCCtx()) == NULL)
	{
		derr_set(err, DERR_NOMEM, "could not create a zstd compression context");
		goto fail;
	}

	w->fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (w->fd < 0)
	{
		int			e = errno;

		derr_set(err, DERR_IO, "could not create sealed dataset \"%s\"", o->path);
		derr_detail(err, "Creating its temporary file %s failed: %s.", w->tmp_path, strerror(e));
		err->sys_errno = e;
		goto fail;
	}
	if (!write_all(w, w->m.file_header, DSEAL_FILE_HEADER_LEN, err) ||
		!start_thread(w, err))
		goto fail;
	return w;

fail:
	dseal_writer_free(w);
	return NULL;
}

/* Compress (when it pays), encrypt and append one column chunk. */
static bool
seal_chunk(DsealWriter *w, uint32_t rg, uint32_t col, const DsealColBuf *cb, DsealChunkRef *ref,
		   DErr *err)
{
	size_t		plain_len = colbuf_serialized_size(cb);
	const uint8_t *payload;
	size_t		payload_len;
	uint8_t		nonce[DC_GCM_NONCE_LEN];
	uint8_t		aad[DSEAL_CHUNK_AAD_LEN];

	if (!ensure_cap(&w->plain, &w->plain_cap, plain_len, err))
		return false;
	colbuf_serialize(cb, w->plain);
	payload = w->plain;
	payload_len = plain_len;
	ref->zstd = false;
	if (w->zctx)
	{
		size_t		bound = ZSTD_compressBound(plain_len);
		size_t		zlen;

		if (!ensure_cap(&w->zbuf, &w->zbuf_cap, bound, err))
			return false;
		zlen = ZSTD_compressCCtx(w->zctx, w->zbuf, bound, w->plain, plain_len, w->zstd_level);
		if (ZSTD_isError(zlen))
			return derr_set(err, DERR_CRYPTO, "zstd compression failed: %s", ZSTD_getErrorName(zlen));
		if (zlen < plain_len)
		{
			payload = w->zbuf;
			payload_len = zlen;
			ref->zstd = true;
		}
	}
	if (!ensure_cap(&w->cbuf, &w->cbuf_cap, payload_len + DC_GCM_TAG_LEN, err))
		return false;
	dseal_chunk_nonce((uint64_t) rg * w->m.ncols + col, nonce);
	dseal_chunk_aad(&w->m, rg, col, payload_len, aad);
	if (!dc_gcm_encrypt(w->gcm, nonce, aad, sizeof(aad), payload, payload_len,
						w->cbuf, w->cbuf + payload_len, err))
		return false;
	/* the plaintext buffers held table data: do not leave it in freed memory */
	explicit_bzero(w->plain, plain_len);
	if (ref->zstd)
		explicit_bzero(w->zbuf, payload_len);

	ref->offset = w->offset;
	ref->length = payload_len + DC_GCM_TAG_LEN;
	ref->plain_length = plain_len;
	memcpy(ref->tag, w->cbuf + payload_len, DC_GCM_TAG_LEN);
	dc_sha256(w->cbuf, ref->length, ref->sha256);
	return write_all(w, w->cbuf, ref->length, err);
}

/*
 * Hand one row group to the writer thread.  On success cols hold the
 * writer's other set of buffers, empty, for the caller to fill next; the
 * values passed are sealed while it does.  An error of an earlier row group
 * (the thread's: I/O, memory, zstd, OpenSSL) is returned here or by finish.
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
	/* at most one row group in flight: the previous one must be sealed first */
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
	w->busy = true;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return true;
}

/* fsync the directory so the rename itself is durable. */
static bool
fsync_dir(const char *path, DErr *err)
{
	char	   *copy = strdup(path);
	int			dfd;

	if (!copy)
		return derr_set(err, DERR_NOMEM, "out of memory");
	dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(copy);
	if (dfd < 0 || fsync(dfd) != 0)
	{
		derr_set(err, DERR_IO, "could not fsync the directory of \"%s\"", path);
		derr_detail(err, "%s.", strerror(errno));
		if (dfd >= 0)
			close(dfd);
		return false;
	}
	close(dfd);
	return true;
}

/*
 * Give the fsynced file tmp its final name, which must not exist yet: link(2)
 * fails with EEXIST instead of replacing what is there (a dangling symlink
 * included).  File systems without hard links get renameat2(RENAME_NOREPLACE);
 * where neither exists nothing is published, rather than risk rename(2)
 * silently replacing another dataset.  On success tmp no longer exists.
 */
static bool
publish_exclusive(const char *tmp, const char *final, const char *what, DErr *err)
{
	int			e;

	if (link(tmp, final) == 0)
	{
		/* the data is in place under its final name; a leftover second name is harmless */
		(void) unlink(tmp);
		return true;
	}
	e = errno;
	if (e == EPERM || e == ENOTSUP || e == EOPNOTSUPP || e == EMLINK)
	{
		if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE) == 0)
			return true;
		e = errno;
		if (e == EINVAL || e == ENOSYS)
		{
			derr_set(err, DERR_IO, "could not create %s \"%s\" exclusively", what, final);
			derr_detail(err, "The file system supports neither hard links nor renameat2(RENAME_NOREPLACE), "
						"so the file cannot be published without risking to replace another one.");
			err->sys_errno = e;
			return false;
		}
	}
	if (e == EEXIST)
	{
		derr_set(err, DERR_IO, "%s \"%s\" already exists", what, final);
		derr_detail(err, "It was created while this seal was running, by another dstack_seal() or another "
					"process; it was left as it is and this seal's output was discarded.");
	}
	else
	{
		derr_set(err, DERR_IO, "could not create %s \"%s\"", what, final);
		derr_detail(err, "Linking the temporary file %s failed: %s.", tmp, strerror(e));
	}
	err->sys_errno = e;
	return false;
}

/* Remove path only if it is still the file we wrote (rolling back a half-published seal). */
static void
unlink_if_ours(const DsealWriter *w, const char *path)
{
	struct stat st;

	if (lstat(path, &st) == 0 && st.st_dev == w->dev && st.st_ino == w->ino)
		(void) unlink(path);
}

/* Write the detached manifest next to the dataset (same bytes as embedded), exclusively. */
static bool
write_detached_manifest(DsealWriter *w, DErr *err)
{
	char	   *jpath = NULL,
			   *jtmp = NULL;
	FILE	   *f = NULL;
	bool		ok = false;

	if (asprintf(&jpath, "%s.json", w->path) < 0)
		return derr_set(err, DERR_NOMEM, "out of memory");
	if (asprintf(&jtmp, "%s.tmp.%d.%u", jpath, (int) getpid(), ++tmp_counter) < 0)
	{
		free(jpath);
		return derr_set(err, DERR_NOMEM, "out of memory");
	}
	f = fopen(jtmp, "wx");
	/* byte for byte the embedded manifest: its SHA-256 is the receipts' manifest_hash */
	if (f && fwrite(w->m.json, 1, w->m.json_len, f) == w->m.json_len &&
		fflush(f) == 0 && fsync(fileno(f)) == 0)
		ok = true;
	if (f && fclose(f) != 0)
		ok = false;
	if (!ok)
	{
		derr_set(err, DERR_IO, "could not write manifest \"%s\"", jpath);
		derr_detail(err, "%s.", strerror(errno));
		err->sys_errno = errno;
	}
	else
		ok = publish_exclusive(jtmp, jpath, "manifest", err);
	if (!ok)
		unlink(jtmp);
	free(jtmp);
	free(jpath);
	return ok;
}

bool
dseal_writer_finish(DsealWriter *w, const DsealManifest **manifest_out, DErr *err)
{
	uint8_t		trailer[DSEAL_TRAILER_LEN];
	uint64_t	moff;
	struct stat st;

	/* the last row group sealed, the thread gone: the file is ours again */
	if (!wait_idle(w, err))
		return false;
	stop_thread(w);
	moff = w->offset;
	if (!dseal_manifest_finish(&w->m, w->owner_sk, err))
		return false;
	explicit_bzero(w->owner_sk, sizeof(w->owner_sk));
	if (!write_all(w, w->m.json, w->m.json_len, err))
		return false;
	for (int i = 0; i < 8; i++)
	{
		trailer[i] = (uint8_t) (moff >> (8 * i));
		trailer[8 + i] = (uint8_t) ((uint64_t) w->m.json_len >> (8 * i));
	}
	memcpy(trailer + 16, DSEAL_TRAILER_MAGIC, 8);
	if (!write_all(w, trailer, sizeof(trailer), err))
		return false;
	if (fsync(w->fd) != 0 || fstat(w->fd, &st) != 0)
	{
		derr_set(err, DERR_IO, "could not fsync sealed dataset \"%s\"", w->tmp_path);
		derr_detail(err, "%s.", strerror(errno));
		return false;
	}
	w->dev = st.st_dev;
	w->ino = st.st_ino;
	close(w->fd);
	w->fd = -1;
	/* claim the final name first: a seal that loses the race touches nothing */
	if (!publish_exclusive(w->tmp_path, w->path, "sealed dataset", err))
		return false;
	w->tmp_gone = true;
	if (w->write_detached && !write_detached_manifest(w, err))
	{
		unlink_if_ours(w, w->path);
		return false;
	}
	w->finished = true;
	if (!fsync_dir(w->path, err))
		return false;
	if (manifest_out)
		*manifest_out = &w->m;
	return true;
}

uint64_t
dseal_writer_rows(const DsealWriter *w)
{
	return w->m.row_count;
}

/* Bytes written so far; callable while the thread writes (progress reports). */
uint64_t
dseal_writer_bytes(const DsealWriter *w)
{
	return __atomic_load_n(&w->offset, __ATOMIC_RELAXED);
}

void
dseal_writer_free(DsealWriter *w)
{
	DsealManifest *m;

	if (w == NULL)
		return;
	m = &w->m;
	/* first the thread: it may be writing to fd and reading the buffers freed below */
	stop_thread(w);
	if (w->sync_ok)
	{
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->mu);
	}
	if (w->inflight)
	{
		for (int c = 0; c < m->ncols; c++)
			colbuf_free(&w->inflight[c]);
		free(w->inflight);
	}
	if (w->fd >= 0)
		close(w->fd);
	if (!w->finished && !w->tmp_gone && w->tmp_path)
		unlink(w->tmp_path);
	explicit_bzero(w->owner_sk, sizeof(w->owner_sk));
	dc_gcm_free(w->gcm);
	ZSTD_freeCCtx(w->zctx);
	/* a chunk abandoned half-way leaves table data in them */
	if (w->plain)
		explicit_bzero(w->plain, w->plain_cap);
	if (w->zbuf)
		explicit_bzero(w->zbuf, w->zbuf_cap);
	free(w->plain);
	free(w->zbuf);
	free(w->cbuf);
	free(w->path);
	free(w->tmp_path);
	dseal_manifest_clear(m);
	free(w);
}
