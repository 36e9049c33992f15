/*
 * test_dseal_file.c: the .dseal writer and reader on real files.
 *
 *   - a round trip decrypts what was sealed;
 *   - publishing is exclusive: a second writer to an existing path (or to a
 *     path whose .json exists) fails with EEXIST, leaves what is there as it
 *     was, and leaves no temporary file;
 *   - every byte of the 16-byte file header is checked (magic, version, the
 *     reserved flags in bytes 12-15), and the header is recorded in the
 *     signed manifest: a consistently re-signed manifest whose record differs
 *     from the file's bytes is refused.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dseal.h"
#include "hex.h"
#include "fixture.h"
#include "unit.h"

static char dir[64];

static bool
seal(const char *path, int32_t base, DErr *err)
{
	DsealColumnDef col = {.name = "v", .type = "integer", .enc = DSEAL_ENC_I32, .repr = DSEAL_REPR_BINARY};
	DsealWriterOptions o = {0};
	DsealWriter *w;
	DsealColBuf cb;
	bool		ok;

	o.path = path;
	o.table = "public.t";
	o.ncols = 1;
	o.cols = &col;
	o.recipe = recipe;
	o.recipient_purpose = "dstack-seal/v1/test";
	memcpy(o.recipient_pub, recipient_pub, DC_PUBKEY_LEN);
	o.rows_per_group = 16;
	o.write_detached_manifest = true;
	if (!(w = dseal_writer_open(&o, owner_sk, err)))
		return false;
	ok = colbuf_init(&cb, DSEAL_ENC_I32, 16, err);
	for (int32_t i = 0; ok && i < 10; i++)
	{
		int32_t		v = base + i;

		ok = colbuf_append_fixed(&cb, &v, err);
	}
	ok = ok && dseal_writer_add_row_group(w, &cb, err) && dseal_writer_finish(w, NULL, err);
	colbuf_free(&cb);
	dseal_writer_free(w);
	return ok;
}

static size_t
slurp(const char *path, uint8_t **out)
{
	FILE	   *f = fopen(path, "rb");
	long		n;

	*out = NULL;
	if (!f)
		return 0;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	*out = malloc(n > 0 ? n : 1);
	if (fread(*out, 1, n, f) != (size_t) n)
		n = 0;
	fclose(f);
	return (size_t) n;
}

static void
spit(const char *path, const uint8_t *b, size_t n)
{
	FILE	   *f = fopen(path, "wb");

	fwrite(b, 1, n, f);
	fclose(f);
}

static int
count_tmp_files(void)
{
	DIR		   *d = opendir(dir);
	struct dirent *de;
	int			n = 0;

	while ((de = readdir(d)) != NULL)
		if (strstr(de->d_name, ".tmp.") != NULL)
			n++;
	closedir(d);
	return n;
}

/* The first value of the only column, after a full unwrap and decrypt; -1 on failure. */
static int32_t
first_value(const char *path, DErr *err)
{
	DsealReader *r = dseal_reader_open(path, err);
	DsealColBuf cb = {0};
	int32_t		v = -1;

	if (r && dseal_reader_unwrap(r, &recipe, recipient_sk, err) &&
		dseal_reader_read_chunk(r, 0, 0, &cb, err) && cb.nrows == 10)
		memcpy(&v, colbuf_fixed_at(&cb, 0), 4);
	colbuf_free(&cb);
	dseal_reader_close(r);
	return v;
}

/* Rewrite path's manifest with file_header[at] ^= mask, re-signed by the owner. */
static bool
resign_with_header_byte(const char *path, int at, uint8_t mask)
{
	uint8_t    *buf;
	size_t		n = slurp(path, &buf);
	uint64_t	moff = 0,
				mlen = 0;
	DErr		err = {0};
	DsealManifest *m;
	uint8_t		trailer[DSEAL_TRAILER_LEN];
	uint8_t    *out;
	bool		ok;

	for (int i = 7; i >= 0; i--)
	{
		moff = (moff << 8) | buf[n - DSEAL_TRAILER_LEN + i];
		mlen = (mlen << 8) | buf[n - DSEAL_TRAILER_LEN + 8 + i];
	}
	m = dseal_manifest_parse((const char *) buf + moff, mlen, &err);
	if (!m)
	{
		free(buf);
		return false;
	}
	m->file_header[at] ^= mask;
	ok = dseal_manifest_header_hash(m, m->header_hash, &err) && dseal_manifest_finish(m, owner_sk, &err);
	if (ok)
	{
		out = malloc(moff + m->json_len + DSEAL_TRAILER_LEN);
		memcpy(out, buf, moff);
		memcpy(out + moff, m->json, m->json_len);
		for (int i = 0; i < 8; i++)
		{
			trailer[i] = (uint8_t) (moff >> (8 * i));
			trailer[8 + i] = (uint8_t) ((uint64_t) m->json_len >> (8 * i));
		}
		memcpy(trailer + 16, DSEAL_TRAILER_MAGIC, 8);
		memcpy(out + moff + m->json_len, trailer, DSEAL_TRAILER_LEN);
		spit(path, out, moff + m->json_len + DSEAL_TRAILER_LEN);
		free(out);
	}
	dseal_manifest_free(m);
	free(buf);
	return ok;
}

int
main(void)
{
	DErr		err = {0};
	char		a[128],
				b[128],
				c[128],
				lone[160],
				json[200];
	uint8_t    *before,
			   *after;
	size_t		nbefore,
				nafter;
	DsealReader *r;
	struct stat st;

	if (!fixture_keys(&err))
	{
		printf("FAIL key setup: %s\n", err.msg);
		return 1;
	}
	strcpy(dir, "/tmp/test_dseal_XXXXXX");
	if (!mkdtemp(dir))
	{
		perror("mkdtemp");
		return 1;
	}
	snprintf(a, sizeof(a), "%s/a.dseal", dir);
	snprintf(b, sizeof(b), "%s/b.dseal", dir);
	snprintf(c, sizeof(c), "%s/c.dseal", dir);
	snprintf(lone, sizeof(lone), "%s/lone.dseal", dir);

	/* round trip */
	CHECK(seal(a, 100, &err), "file: seal a.dseal");
	CHECK(first_value(a, &err) == 100, "file: a.dseal decrypts to what was sealed");
	nbefore = slurp(a, &before);
	CHECK(nbefore > DSEAL_FILE_HEADER_LEN &&
		  memcmp(before, "DSTKSEAL\x01\x00\x00\x00\x00\x00\x00\x00", DSEAL_FILE_HEADER_LEN) == 0,
		  "file: header is DSTKSEAL, version 1, flags 0");
	r = dseal_reader_open(a, &err);
	CHECK(r && memcmp(dseal_reader_manifest(r)->file_header, before, DSEAL_FILE_HEADER_LEN) == 0,
		  "file: the manifest records the header bytes");
	dseal_reader_close(r);

	/* exclusive publish */
	derr_clear(&err);
	CHECK(!seal(a, 200, &err) && err.code == DERR_IO && err.sys_errno == EEXIST,
		  "exclusive: a second seal to an existing path fails with EEXIST");
	printf("     %s: %s\n", err.msg, err.detail);
	nafter = slurp(a, &after);
	CHECK(nafter == nbefore && memcmp(before, after, nbefore) == 0, "exclusive: the existing dataset is unchanged");
	CHECK(first_value(a, &err) == 100, "exclusive: it still decrypts to the first seal's rows");
	free(after);
	CHECK(count_tmp_files() == 0, "exclusive: the losing seal left no temporary file");
	snprintf(json, sizeof(json), "%s.json", lone);
	spit(json, (const uint8_t *) "{}\n", 3);
	derr_clear(&err);
	CHECK(!seal(lone, 300, &err) && err.sys_errno == EEXIST, "exclusive: an existing .json fails the seal");
	CHECK(stat(lone, &st) != 0 && errno == ENOENT, "exclusive: the .dseal it had published is rolled back");
	nafter = slurp(json, &after);
	CHECK(nafter == 3 && memcmp(after, "{}\n", 3) == 0, "exclusive: the existing .json is unchanged");
	free(after);
	CHECK(count_tmp_files() == 0, "exclusive: no temporary file left");

	/* every header byte is checked */
	{
		static const struct
		{
			int			at;
			uint8_t		mask;
			DErrCode	code;
		}			flips[] = {
			{0, 0x01, DERR_FORMAT}, {7, 0x80, DERR_FORMAT}, {8, 0x02, DERR_UNSUPPORTED},
			{11, 0x01, DERR_UNSUPPORTED}, {12, 0x01, DERR_FORMAT}, {13, 0x10, DERR_FORMAT},
			{14, 0x40, DERR_FORMAT}, {15, 0x80, DERR_FORMAT},
		};

		for (size_t i = 0; i < sizeof(flips) / sizeof(flips[0]); i++)
		{
			char		name[64];

			before[flips[i].at] ^= flips[i].mask;
			spit(b, before, nbefore);
			before[flips[i].at] ^= flips[i].mask;
			derr_clear(&err);
			r = dseal_reader_open(b, &err);
			snprintf(name, sizeof(name), "header: byte %d flipped is refused", flips[i].at);
			CHECK(r == NULL && err.code == flips[i].code, name);
			dseal_reader_close(r);
		}
	}

	/* the header is authenticated: a re-signed manifest must record the file's header */
	spit(c, before, nbefore);
	CHECK(resign_with_header_byte(c, 12, 0x00), "signed: re-signing an unchanged manifest");
	CHECK(first_value(c, &err) == 100, "signed: the unchanged re-signed file still opens and decrypts");
	spit(c, before, nbefore);
	CHECK(resign_with_header_byte(c, 12, 0x01), "signed: re-signing a manifest that records flags 1");
	derr_clear(&err);
	r = dseal_reader_open(c, &err);
	CHECK(r == NULL && err.code == DERR_INTEGRITY && strstr(err.msg, "does not match its signed manifest"),
		  "signed: a header that differs from the signed record is refused");
	printf("     %s: %s\n", err.msg, err.detail);
	dseal_reader_close(r);
	free(before);

	/* clean up */
	{
		const char *names[] = {"a.dseal", "a.dseal.json", "b.dseal", "c.dseal", "lone.dseal.json"};

		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		{
			char		p[192];

			snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
			unlink(p);
		}
		CHECK(rmdir(dir) == 0, "file: the test directory holds nothing else");
	}
	UNIT_DONE();
}
