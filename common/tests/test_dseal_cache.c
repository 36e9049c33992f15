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
 *     is replaced first.
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
