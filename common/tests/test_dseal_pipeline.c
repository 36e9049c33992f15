/*
 * test_dseal_pipeline.c: the .dseal writer's thread (dseal_writer.c, "Pipeline").
 *
 *   - many row groups through the thread read back identically, in order,
 *     with the buffers handed back empty after every row group; two seals of
 *     the same rows have the same chunk layout (only key, nonce and id differ);
 *   - a caller that hands over faster than the thread seals seals chunks
 *     itself, and those read back identically too;
 *   - an error met on the thread (a write past RLIMIT_FSIZE: EFBIG) is
 *     returned by the next call with its message and detail, stays returned,
 *     and the temporary file is removed;
 *   - free() without finish() joins the thread (the process has one thread
 *     again) and removes the temporary file, also while a row group is in flight;
 *   - signals sent to the process are never handled on the writer's thread.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dseal.h"
#include "dseal_writer_int.h"	/* caller_chunks: did the caller help? */
#include "hex.h"
#include "fixture.h"
#include "unit.h"

#define NCOLS 4
#define RPG 1000

static char dir[64];

static const DsealColumnDef cols[NCOLS] = {
	{.name = "id", .type = "bigint", .enc = DSEAL_ENC_I64, .repr = DSEAL_REPR_BINARY},
	{.name = "age", .type = "integer", .enc = DSEAL_ENC_I32, .repr = DSEAL_REPR_BINARY},
	{.name = "egfr", .type = "double precision", .enc = DSEAL_ENC_F64, .repr = DSEAL_REPR_BINARY},
	{.name = "dx", .type = "text", .enc = DSEAL_ENC_VAR, .repr = DSEAL_REPR_BINARY},
};

/* Deterministic pseudo-random value stream: row r of the table. */
static uint64_t
mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	return x ^ (x >> 33);
}

/* Row r's values: dx is NULL for every 13th row, egfr for every 29th. */
static void
row_values(uint64_t r, int64_t *id, int32_t *age, double *egfr, char *dx, size_t dxcap, bool *egfr_null,
		   bool *dx_null)
{
	uint64_t	h = mix(r + 1);

	*id = (int64_t) (mix(r ^ 0x5eed) >> 1);
	*age = 18 + (int32_t) (h % 80);
	*egfr = (double) (200 + (h >> 8) % 1000) / 10.0;
	*egfr_null = r % 29 == 3;
	*dx_null = r % 13 == 5;
	snprintf(dx, dxcap, "%c%02u.%u", 'A' + (int) ((h >> 20) % 26), (unsigned) ((h >> 30) % 77),
			 (unsigned) ((h >> 40) % 10));
}

static bool
fill(DsealColBuf *cb, uint64_t first, uint32_t n, DErr *err)
{
	for (uint32_t i = 0; i < n; i++)
	{
		int64_t		id;
		int32_t		age;
		double		egfr;
		char		dx[16];
		bool		egfr_null,
					dx_null;

		row_values(first + i, &id, &age, &egfr, dx, sizeof(dx), &egfr_null, &dx_null);
		if (!colbuf_append_fixed(&cb[0], &id, err) ||
			!colbuf_append_fixed(&cb[1], &age, err) ||
			!(egfr_null ? colbuf_append_null(&cb[2], err) : colbuf_append_fixed(&cb[2], &egfr, err)) ||
			!(dx_null ? colbuf_append_null(&cb[3], err) : colbuf_append_var(&cb[3], dx, strlen(dx), err)))
			return false;
	}
	return true;
}

static void
options(DsealWriterOptions *o, const char *path, int zstd_level)
{
	memset(o, 0, sizeof(*o));
	o->path = path;
	o->table = "public.cohort";
	o->ncols = NCOLS;
	o->cols = cols;
	o->recipe = recipe;
	o->recipient_purpose = "dstack-seal/v1/test";
	memcpy(o->recipient_pub, recipient_pub, DC_PUBKEY_LEN);
	o->rows_per_group = RPG;
	o->zstd_level = zstd_level;
	o->write_detached_manifest = false;
}

static bool
init_bufs(DsealColBuf *cb, DErr *err)
{
	for (int c = 0; c < NCOLS; c++)
		if (!colbuf_init(&cb[c], cols[c].enc, 256, err))
			return false;
	return true;
}

static void
free_bufs(DsealColBuf *cb)
{
	for (int c = 0; c < NCOLS; c++)
		colbuf_free(&cb[c]);
}

static int
count_files(const char *needle)
{
	DIR		   *d = opendir(dir);
	struct dirent *de;
	int			n = 0;

	while ((de = readdir(d)) != NULL)
		if (strstr(de->d_name, needle) != NULL)
			n++;
	closedir(d);
	return n;
}

/* The "Threads:" line of /proc/self/status. */
static int
thread_count(void)
{
	FILE	   *f = fopen("/proc/self/status", "r");
	char		line[256];
	int			n = -1;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "Threads: %d", &n) == 1)
			break;
	if (f)
		fclose(f);
	return n;
}

/*
 * Seal nrows rows in row groups of RPG; checks after every add that the
 * buffers came back empty.  *empty_ok is false if one did not.
 */
static bool
seal_rows(const char *path, uint64_t nrows, int zstd_level, bool *empty_ok, DErr *err)
{
	DsealWriterOptions o;
	DsealWriter *w;
	DsealColBuf cb[NCOLS];
	bool		ok;

	options(&o, path, zstd_level);
	*empty_ok = true;
	if (!(w = dseal_writer_open(&o, owner_sk, err)))
		return false;
	ok = init_bufs(cb, err);
	for (uint64_t r = 0; ok && r < nrows; r += RPG)
	{
		uint32_t	n = nrows - r < RPG ? (uint32_t) (nrows - r) : RPG;

		ok = fill(cb, r, n, err) && dseal_writer_add_row_group(w, cb, err);
		for (int c = 0; ok && c < NCOLS; c++)
			if (cb[c].nrows != 0 || cb[c].any_null || cb[c].data_len != 0 || cb[c].enc != cols[c].enc)
				*empty_ok = false;
	}
	ok = ok && dseal_writer_finish(w, NULL, err);
	dseal_writer_free(w);
	free_bufs(cb);
	return ok;
}

/* Read every chunk back and compare with the rows; "" if equal, else what differed. */
static const char *
read_back(const char *path, uint64_t nrows, DErr *err)
{
	static char why[400];
	DsealReader *r = dseal_reader_open(path, err);
	const DsealManifest *m;
	DsealColBuf cb = {0};

	snprintf(why, sizeof(why), "open: %s", err->msg);
	if (!r || !dseal_reader_unwrap(r, &recipe, recipient_sk, err))
		goto out;
	m = dseal_reader_manifest(r);
	snprintf(why, sizeof(why), "manifest: %u row groups, %llu rows", m->nrowgroups,
			 (unsigned long long) m->row_count);
	if (m->row_count != nrows || m->nrowgroups != (nrows + RPG - 1) / RPG)
		goto out;
	for (uint32_t g = 0; g < m->nrowgroups; g++)
		for (int c = 0; c < NCOLS; c++)
		{
			snprintf(why, sizeof(why), "row group %u column %d: %s", g, c, err->msg);
			if (!dseal_reader_read_chunk(r, g, (uint32_t) c, &cb, err) || cb.nrows != m->rowgroups[g].nrows)
				goto out;
			for (uint32_t i = 0; i < cb.nrows; i++)
			{
				uint64_t	row = (uint64_t) g * RPG + i;
				int64_t		id;
				int32_t		age;
				double		egfr;
				char		dx[16];
				bool		egfr_null,
							dx_null,
							same;
				uint32_t	len;
				const uint8_t *p;

				row_values(row, &id, &age, &egfr, dx, sizeof(dx), &egfr_null, &dx_null);
				switch (c)
				{
					case 0:
						same = !colbuf_is_null(&cb, i) && memcmp(colbuf_fixed_at(&cb, i), &id, 8) == 0;
						break;
					case 1:
						same = !colbuf_is_null(&cb, i) && memcmp(colbuf_fixed_at(&cb, i), &age, 4) == 0;
						break;
					case 2:
						same = egfr_null ? colbuf_is_null(&cb, i)
							: !colbuf_is_null(&cb, i) && memcmp(colbuf_fixed_at(&cb, i), &egfr, 8) == 0;
						break;
					default:
						p = colbuf_var_at(&cb, i, &len);
						same = dx_null ? colbuf_is_null(&cb, i)
							: !colbuf_is_null(&cb, i) && len == strlen(dx) && memcmp(p, dx, len) == 0;
						break;
				}
				if (!same)
				{
					snprintf(why, sizeof(why), "row %llu column %d differs", (unsigned long long) row, c);
					goto out;
				}
			}
		}
	why[0] = '\0';
out:
	colbuf_free(&cb);
	dseal_reader_close(r);
	return why;
}

/* Chunk layouts (offset, length, plain length, zstd) of two files are equal. */
static bool
same_layout(const char *a, const char *b, DErr *err)
{
	DsealReader *ra = dseal_reader_open(a, err);
	DsealReader *rb = dseal_reader_open(b, err);
	bool		same = ra && rb;

	if (same)
	{
		const DsealManifest *ma = dseal_reader_manifest(ra);
		const DsealManifest *mb = dseal_reader_manifest(rb);

		same = ma->nrowgroups == mb->nrowgroups;
		for (uint32_t g = 0; same && g < ma->nrowgroups; g++)
			for (int c = 0; same && c < NCOLS; c++)
			{
				const DsealChunkRef *x = &ma->rowgroups[g].chunks[c];
				const DsealChunkRef *y = &mb->rowgroups[g].chunks[c];

				same = x->offset == y->offset && x->length == y->length &&
					x->plain_length == y->plain_length && x->zstd == y->zstd;
			}
	}
	dseal_reader_close(ra);
	dseal_reader_close(rb);
	return same;
}

static volatile pthread_t handled_on;
static volatile sig_atomic_t handled;

static void
on_usr1(int sig)
{
	handled_on = pthread_self();
	handled++;
}

int
main(void)
{
	DErr		err = {0};
	char		a[128],
				b[128],
				big[128],
				gone[128];
	bool		empty_ok;
	const char *why;
	int			threads_before;

	if (!fixture_keys(&err))
	{
		printf("FAIL key setup: %s\n", err.msg);
		return 1;
	}
	strcpy(dir, "/tmp/test_dseal_pipe_XXXXXX");
	if (!mkdtemp(dir))
	{
		perror("mkdtemp");
		return 1;
	}
	snprintf(a, sizeof(a), "%s/a.dseal", dir);
	snprintf(b, sizeof(b), "%s/b.dseal", dir);
	snprintf(big, sizeof(big), "%s/big.dseal", dir);
	snprintf(gone, sizeof(gone), "%s/gone.dseal", dir);
	threads_before = thread_count();

	/* many row groups, the last one short, through the thread */
	CHECK(seal_rows(a, 57 * RPG + 321, 3, &empty_ok, &err), "pipeline: seal 58 row groups");
	CHECK(empty_ok, "pipeline: every row group hands back empty buffers of the same encodings");
	why = read_back(a, 57 * RPG + 321, &err);
	CHECK(why[0] == '\0', "pipeline: every value reads back as sealed, in order");
	if (why[0])
		printf("     %s\n", why);
	CHECK(seal_rows(b, 57 * RPG + 321, 3, &empty_ok, &err), "pipeline: seal the same rows again");
	CHECK(same_layout(a, b, &err), "pipeline: same chunk layout, sizes and compression as the first seal");
	CHECK(thread_count() == threads_before, "pipeline: finish leaves no thread behind");

	/*
	 * The caller helps: at zstd level 19 a row group is filled much faster
	 * than its four chunks are compressed, so the caller claims chunks of the
	 * row group in flight when it hands over the next (and at finish).  Every
	 * value still reads back.
	 */
	{
		DsealWriterOptions o;
		DsealWriter *w;
		DsealColBuf cb[NCOLS];
		bool		ok;
		uint64_t	helped = 0;
		uint64_t	n = 40 * RPG;

		unlink(b);
		options(&o, b, 19);
		w = dseal_writer_open(&o, owner_sk, &err);
		ok = w && init_bufs(cb, &err);
		for (uint64_t r = 0; ok && r < n; r += RPG)
			ok = fill(cb, r, RPG, &err) && dseal_writer_add_row_group(w, cb, &err);
		if (w)
			helped = w->caller_chunks;
		ok = ok && dseal_writer_finish(w, NULL, &err);
		dseal_writer_free(w);
		free_bufs(cb);
		CHECK(ok && helped > 0, "helping: the caller sealed chunks of the row group in flight");
		printf("     the caller sealed %llu of %llu chunks\n", (unsigned long long) helped,
			   (unsigned long long) (n / RPG * NCOLS));
		why = read_back(b, n, &err);
		CHECK(why[0] == '\0', "helping: every value reads back as sealed, in order");
		if (why[0])
			printf("     %s\n", why);
	}

	/*
	 * Signals are for the caller's thread only.  The caller blocks SIGUSR1
	 * after the writer's thread exists (so the thread has not inherited the
	 * block) and signals the process: a thread that did not block it would
	 * take it at once.  It must stay pending until the caller unblocks it.
	 */
	{
		struct sigaction sa = {0},
					old;
		sigset_t	usr1,
					oldmask;
		DsealWriterOptions o;
		DsealWriter *w;
		DsealColBuf cb[NCOLS];
		bool		ok,
					pending = true;

		sa.sa_handler = on_usr1;
		sigaction(SIGUSR1, &sa, &old);
		sigemptyset(&usr1);
		sigaddset(&usr1, SIGUSR1);
		options(&o, gone, 3);
		w = dseal_writer_open(&o, owner_sk, &err);
		ok = w && init_bufs(cb, &err);
		pthread_sigmask(SIG_BLOCK, &usr1, &oldmask);
		for (int g = 0; ok && g < 20; g++)
		{
			handled = 0;
			kill(getpid(), SIGUSR1);
			ok = fill(cb, (uint64_t) g * RPG, RPG, &err) && dseal_writer_add_row_group(w, cb, &err);
			usleep(2000);
			if (handled)
				pending = false;
		}
		pthread_sigmask(SIG_SETMASK, &oldmask, NULL);
		CHECK(ok && pending, "signals: the writer's thread never takes a signal sent to the process");
		CHECK(handled && pthread_equal(handled_on, pthread_self()),
			  "signals: it is handled on the caller's thread once the caller unblocks it");
		dseal_writer_free(w);
		free_bufs(cb);
		sigaction(SIGUSR1, &old, NULL);
	}

	/* free without finish: the thread is joined, the temporary file removed */
	{
		DsealWriterOptions o;
		DsealWriter *w;
		DsealColBuf cb[NCOLS];
		bool		ok;

		options(&o, gone, 3);
		w = dseal_writer_open(&o, owner_sk, &err);
		ok = w && init_bufs(cb, &err);
		CHECK(ok && thread_count() == threads_before + 1, "abort: an open writer runs one thread");
		for (int g = 0; ok && g < 5; g++)
			ok = fill(cb, (uint64_t) g * RPG, RPG, &err) && dseal_writer_add_row_group(w, cb, &err);
		CHECK(ok && count_files("gone.dseal.tmp.") == 1, "abort: five row groups handed over, the temporary file exists");
		/* the fifth row group may still be in flight: free abandons it */
		dseal_writer_free(w);
		free_bufs(cb);
		CHECK(thread_count() == threads_before, "abort: free without finish joins the thread");
		CHECK(count_files("gone.dseal") == 0, "abort: free without finish removes the temporary file");
	}

	/* an error on the writer's thread comes back on the next call */
	{
		struct rlimit rl_old,
					rl = {.rlim_cur = 64 * 1024, .rlim_max = RLIM_INFINITY};
		void		(*old_xfsz) (int) = signal(SIGXFSZ, SIG_IGN);
		DsealWriterOptions o;
		DsealWriter *w;
		DsealColBuf cb[NCOLS];
		bool		ok,
					finished;
		int			g;

		getrlimit(RLIMIT_FSIZE, &rl_old);
		rl.rlim_max = rl_old.rlim_max;
		options(&o, big, 0);	/* uncompressed: about 22 kB per row group */
		w = dseal_writer_open(&o, owner_sk, &err);
		ok = w && init_bufs(cb, &err);
		setrlimit(RLIMIT_FSIZE, &rl);
		derr_clear(&err);
		for (g = 0; ok && g < 50; g++)
			ok = fill(cb, (uint64_t) g * RPG, RPG, &err) && dseal_writer_add_row_group(w, cb, &err);
		CHECK(!ok && g > 2 && g < 50, "error: a write past the file size limit fails a later add_row_group");
		CHECK(err.code == DERR_IO && err.sys_errno == EFBIG &&
			  strstr(err.msg, "could not write sealed dataset") && strstr(err.msg, "big.dseal.tmp.") &&
			  strcmp(err.detail, "File too large.") == 0,
			  "error: the thread's error arrives with its code, errno, message and detail");
		printf("     %s: %s\n", err.msg, err.detail);
		derr_clear(&err);
		finished = dseal_writer_finish(w, NULL, &err);
		CHECK(!finished && err.sys_errno == EFBIG && strstr(err.msg, "could not write sealed dataset"),
			  "error: it is sticky: finish returns it too");
		setrlimit(RLIMIT_FSIZE, &rl_old);
		dseal_writer_free(w);
		free_bufs(cb);
		signal(SIGXFSZ, old_xfsz);
		CHECK(count_files("big.dseal") == 0 && thread_count() == threads_before,
			  "error: free removes the temporary file and joins the thread");
	}

	unlink(a);
	unlink(b);
	CHECK(rmdir(dir) == 0, "pipeline: the test directory holds nothing else");
	UNIT_DONE();
}
