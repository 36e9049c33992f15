/*
 * dseal_writer.c: streaming writer of .dseal files (format in dseal.h).
 *
 * The caller fills one row group of column buffers at a time and hands it
 * over; the writer serializes, compresses, encrypts and appends each column's
 * chunk, keeping only the chunk metadata for the manifest.  Memory is thus
 * bounded by two row groups (one being filled, one being sealed) whatever
 * the table size.  The file is written
 * under a temporary name and published under the final name only after the
 * manifest and trailer are written and fsynced, so a failure or cancel never
 * leaves a half-written dataset under the final name.  Publishing creates the
 * final name exclusively (link(2), or renameat2(RENAME_NOREPLACE) where the
 * file system has no hard links): of two seals racing for one path exactly
 * one succeeds, the other fails with EEXIST and removes its temporary file;
 * an existing dataset (or its .json) is never replaced.
 *
 * Row groups are sealed and written by the writer's thread while the caller
 * fills the next one (dseal_pipe.c); the manifest, trailer and publishing
 * happen here, on the caller's thread, once that thread has stopped.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dseal_writer_int.h"

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

	/* owner identity = Ethereum address of the owner key */
	if (!dc_pubkey_from_seckey(owner_sk, pub, err) ||
		!dc_pubkey_to_address(pub, DC_PUBKEY_LEN, w->m.owner_id, err))
		goto fail;

	/* fresh dataset id and data key; wrap the key for the recipient */
	ok = dc_random(w->m.dataset_id, DSEAL_DATASET_ID_LEN, err) &&
		dc_random(data_key, sizeof(data_key), err) &&
		dseal_wrap_key(&w->m.recipe, w->m.owner_id, w->m.recipient_pub, w->m.dataset_id,
					   data_key, w->m.ephemeral_pub, w->m.wrapped, err) &&
		dseal_pipe_init(w, data_key, err);	/* both workers' GCM and zstd contexts */
	explicit_bzero(data_key, sizeof(data_key));
	if (!ok || !dseal_manifest_header_hash(&w->m, w->m.header_hash, err))
		goto fail;

	w->fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (w->fd < 0)
	{
		int			e = errno;

		derr_set(err, DERR_IO, "could not create sealed dataset \"%s\"", o->path);
		derr_detail(err, "Creating its temporary file %s failed: %s.", w->tmp_path, strerror(e));
		err->sys_errno = e;
		goto fail;
	}
	if (!dseal_write_all(w, w->m.file_header, DSEAL_FILE_HEADER_LEN, err) ||
		!dseal_pipe_start(w, err))
		goto fail;
	return w;

fail:
	dseal_writer_free(w);
	return NULL;
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

	/* the last row group written, the thread gone: the file is ours again */
	if (!dseal_pipe_drain(w, err))
		return false;
	moff = w->offset;
	if (!dseal_manifest_finish(&w->m, w->owner_sk, err))
		return false;
	explicit_bzero(w->owner_sk, sizeof(w->owner_sk));
	if (!dseal_write_all(w, w->m.json, w->m.json_len, err))
		return false;
	for (int i = 0; i < 8; i++)
	{
		trailer[i] = (uint8_t) (moff >> (8 * i));
		trailer[8 + i] = (uint8_t) ((uint64_t) w->m.json_len >> (8 * i));
	}
	memcpy(trailer + 16, DSEAL_TRAILER_MAGIC, 8);
	if (!dseal_write_all(w, trailer, sizeof(trailer), err))
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
	/* first the thread: it may be writing to fd and reading the buffers */
	dseal_pipe_free(w);
	if (w->fd >= 0)
		close(w->fd);
	if (!w->finished && !w->tmp_gone && w->tmp_path)
		unlink(w->tmp_path);
	explicit_bzero(w->owner_sk, sizeof(w->owner_sk));
	free(w->path);
	free(w->tmp_path);
	dseal_manifest_clear(m);
	free(w);
}
