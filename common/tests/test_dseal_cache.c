/*
 * test_dseal_cache.c: the manifest cache (dseal_reader_open_cached).
 *
 *   - a second open of the same file reuses the parsed manifest (a hit), and
 *     the reader reads the same rows as an uncached one;
 *   - a file that changed is parsed again, even when its mtime is put back
 *     (ctime and content identity differ), and a damaged manifest is then
 *     refused as it would be uncached;
 *   - an entry borrowed by an open reader is never replaced: with every
 *     entry in use, a new file is opened uncached and still works;
 *   - closing readers gives entries back, and the least recently used one
 *     is replaced first;
 *   - a manifest flattened for shared memory comes back field for field
 *     (without its JSON), opens the file and reads the same rows; a cut or
 *     damaged block is refused, and a copy opened against another file of
 *     the same sizes reads nothing from it.
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dseal.h"
#include "fixture.h"
#include "unit.h"

static uint64_t
hits(const DsealManifestCache *c)
{
	uint64_t	h,
				m;

	dseal_cache_stats(c, &h, &m);
	return h;
}

static uint64_t
misses(const DsealManifestCache *c)
{
	uint64_t	h,
				m;

	dseal_cache_stats(c, &h, &m);
	return m;
}

/* First value of column 0 in row group rg, -1 on failure. */
static int64_t
first_a(DsealReader *r, uint32_t rg)
{
	DsealColBuf cb = {0};
	DErr		err = {0};
	int64_t		v = -1;

	if (dseal_reader_unwrap(r, &recipe, recipient_sk, &err) && dseal_reader_read_chunk(r, rg, 0, &cb, &err))
		memcpy(&v, colbuf_fixed_at(&cb, 0), 8);
	colbuf_free(&cb);
	return v;
}

int
main(void)
{
	DErr		err = {0};
	char		dir[] = "/tmp/test_cache_XXXXXX";
	char		a[128],
				b[128],
				c[128];
	DsealManifestCache *cache = dseal_cache_create(2);
	DsealReader *r1,
			   *r2,
			   *r3,
			   *plain;
	struct stat st;

	if (!fixture_keys(&err) || !mkdtemp(dir) || cache == NULL)
	{
		printf("FAIL setup: %s\n", err.msg);
		return 1;
	}
	snprintf(a, sizeof(a), "%s/a.dseal", dir);
	snprintf(b, sizeof(b), "%s/b.dseal", dir);
	snprintf(c, sizeof(c), "%s/c.dseal", dir);
	CHECK(fixture_write(a, &err) && fixture_write(b, &err) && fixture_write(c, &err), "cache: three files");

	/* a miss, then a hit that reads what an uncached reader reads */
	r1 = dseal_reader_open_cached(a, cache, &err);
	CHECK(r1 && misses(cache) == 1 && hits(cache) == 0, "cache: the first open parses the manifest");
	dseal_reader_close(r1);
	r1 = dseal_reader_open_cached(a, cache, &err);
	plain = dseal_reader_open(a, &err);
	CHECK(r1 && hits(cache) == 1 && misses(cache) == 1, "cache: a second open of the same file is a hit");
	CHECK(r1 && plain && first_a(r1, 4) == first_a(plain, 4) && first_a(r1, 4) == 4 * ROWS * 7 + 1,
		  "cache: a reader on a cached manifest reads the same rows");
	CHECK(dseal_reader_manifest(r1)->manifest_hash[0] == dseal_reader_manifest(plain)->manifest_hash[0] &&
		  memcmp(dseal_reader_manifest(r1)->manifest_hash, dseal_reader_manifest(plain)->manifest_hash, 32) == 0,
		  "cache: the cached manifest is the file's");
	dseal_reader_close(plain);

	/* every entry borrowed (a by r1, b by r2): c opens uncached, and works */
	r2 = dseal_reader_open_cached(b, cache, &err);
	r3 = dseal_reader_open_cached(c, cache, &err);
	CHECK(r2 && r3 && first_a(r3, 0) == 1, "cache: with every entry in use a new file opens uncached and reads");
	dseal_reader_close(r3);
	r3 = dseal_reader_open_cached(c, cache, &err);
	CHECK(r3 && misses(cache) == 4, "cache: ... and was not cached (opened again, parsed again)");
	dseal_reader_close(r3);

	/* given back: the least recently used entry (a) is replaced first */
	dseal_reader_close(r1);
	dseal_reader_close(r2);
	r3 = dseal_reader_open_cached(c, cache, &err);	/* replaces a, the older */
	dseal_reader_close(r3);
	r2 = dseal_reader_open_cached(b, cache, &err);
	CHECK(r2 && hits(cache) == 2, "cache: the more recently used entry stayed");
	dseal_reader_close(r2);
	r1 = dseal_reader_open_cached(a, cache, &err);
	CHECK(r1 && misses(cache) == 6, "cache: the least recently used entry was the one replaced");
	dseal_reader_close(r1);

	/* the flat copy a parallel leader hands its workers */
	{
		DsealReader *src = dseal_reader_open(b, &err);
		const DsealManifest *m = dseal_reader_manifest(src);
		size_t		n = dseal_manifest_flat_size(m);
		uint8_t    *blk = malloc(n);
		DsealManifest *copy;
		bool		same = true;

		dseal_manifest_flatten(m, blk);
		copy = dseal_manifest_unflatten(blk, n, &err);
		CHECK(copy != NULL && copy->json == NULL && copy->json_len == m->json_len, "flat: a manifest comes back, without its JSON");
		same = copy && copy->ncols == m->ncols && copy->nrowgroups == m->nrowgroups && copy->row_count == m->row_count &&
			strcmp(copy->table, m->table) == 0 && strcmp(copy->sealed_at, m->sealed_at) == 0 &&
			memcmp(copy->header_hash, m->header_hash, sizeof(m->header_hash)) == 0 &&
			memcmp(copy->dataset_id, m->dataset_id, sizeof(m->dataset_id)) == 0 &&
			memcmp(copy->manifest_hash, m->manifest_hash, sizeof(m->manifest_hash)) == 0;
		for (int c = 0; same && c < m->ncols; c++)
			same = strcmp(copy->cols[c].name, m->cols[c].name) == 0 && strcmp(copy->cols[c].type, m->cols[c].type) == 0 &&
				copy->cols[c].enc == m->cols[c].enc;
		for (uint32_t g = 0; same && g < m->nrowgroups; g++)
			same = copy->rowgroups[g].nrows == m->rowgroups[g].nrows &&
				memcmp(copy->rowgroups[g].chunks, m->rowgroups[g].chunks, sizeof(DsealChunkRef) * m->ncols) == 0;
		CHECK(same, "flat: every field and chunk reference is the original's");
		r1 = dseal_reader_open_with(b, copy, &err);
		CHECK(r1 && first_a(r1, 8) == 8 * ROWS * 7 + 1, "flat: the copy opens the file and reads its rows");
		dseal_reader_close(r1);
		CHECK(dseal_manifest_unflatten(blk, n - 1, &err) == NULL && err.code == DERR_FORMAT, "flat: a cut block is refused");
		blk[0] ^= 1;
		CHECK(dseal_manifest_unflatten(blk, n, &err) == NULL && err.code == DERR_FORMAT, "flat: a damaged block is refused");
		blk[0] ^= 1;
		copy = dseal_manifest_unflatten(blk, n, &err);
		r1 = dseal_reader_open_with(c, copy, &err);
		CHECK(r1 != NULL && first_a(r1, 0) == -1,
			  "flat: b's copy opened against c (same sizes) reads nothing: c's chunks fail authentication");
		dseal_reader_close(r1);
		free(blk);
		dseal_reader_close(src);
	}

	/* a changed file is parsed again, even with its mtime put back; a damaged manifest fails */
	CHECK(stat(a, &st) == 0, "cache: stat");
	{
		int			fd = open(a, O_RDWR);
		off_t		end = lseek(fd, 0, SEEK_END);
		char		ch;
		struct timespec ts[2] = {st.st_atim, st.st_mtim};

		/* flip a byte inside the manifest: its signature no longer verifies */
		CHECK(pread(fd, &ch, 1, end - DSEAL_TRAILER_LEN - 40) == 1, "cache: read a manifest byte");
		ch ^= 0x01;
		CHECK(pwrite(fd, &ch, 1, end - DSEAL_TRAILER_LEN - 40) == 1, "cache: change it in place");
		futimens(fd, ts);
		close(fd);
	}
	memset(&err, 0, sizeof(err));
	r1 = dseal_reader_open_cached(a, cache, &err);
	/* the damaged byte may break the signature or the JSON: refused either way */
	CHECK(r1 == NULL && err.msg[0] != '\0' && hits(cache) == 2,
		  "cache: a file changed in place (mtime put back) is parsed again and refused");

	dseal_cache_free(cache);
	unlink(a);
	unlink(b);
	unlink(c);
	rmdir(dir);
	UNIT_DONE();
}
