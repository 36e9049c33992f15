/*
 * dseal_reader.c: random-access reader of .dseal files (format in dseal.h).
 *
 * Opening reads only the trailer and the manifest, and verifies the owner's
 * signature and the chunk layout; chunk bytes are read on demand, so a scan
 * decrypts only the columns it needs.  Without a data key the reader can
 * still check every chunk against the signed SHA-256 (dstack_seal_verify).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zstd.h>

#include "bytebuf.h"
#include "dseal.h"
#include "hex.h"

#define FLEXIBLE_ARRAY_MEMBER_	/* C99 flexible array */

/*
 * What reading one chunk needs besides the file and its manifest: the
 * AES-GCM context (the data key), the zstd context and the buffers.  A
 * reader has its own; dseal_scratch_new() makes another, so that a second
 * thread can read other chunks of the same reader at the same time (pread
 * and the manifest are shared, read-only).
 */
struct DsealScratch
{
	DcGcm	   *gcm;			/* NULL until a data key is installed */
	ZSTD_DCtx  *dctx;
	uint8_t    *cbuf;			/* ciphertext || tag */
	size_t		cbuf_cap;
	uint8_t    *pbuf;			/* decrypted payload */
	size_t		pbuf_cap;
	uint8_t    *zbuf;			/* decompressed plaintext */
	size_t		zbuf_cap;
};

struct DsealReader
{
	int			fd;
	char	   *path;
	uint64_t	file_size;
	DsealManifest *m;
	DsealScratch own;			/* the reader's chunk contexts and buffers */
	struct DsealCacheEntry *entry;	/* m is borrowed from this cache entry, or NULL: owned */
};

/*
 * The manifest cache: parsed, verified manifests of the files a process
 * opened, keyed by the open file's identity (device, inode, size, mtime,
 * ctime).  Parsing and verifying a manifest grows with the table (about 9
 * microseconds a chunk); with the cache a backend pays it once per file, not
 * at planning, at scan start and again for each statement.
 *
 * What a stale entry could do: if a file's bytes change but not its stat
 * identity, the cached manifest is still one its owner signed, and every
 * chunk read is authenticated against it (its GCM tag, its AAD with the
 * dataset id and header hash), so a changed file fails as it would
 * uncached.  The header and trailer are read and compared on every open.
 */
typedef struct DsealCacheEntry
{
	dev_t		dev;
	ino_t		ino;
	off_t		size;
	struct timespec mtime;
	struct timespec ctime;
	DsealManifest *m;			/* NULL: free slot */
	int			refs;			/* open readers borrowing m */
	uint64_t	used;			/* last use, for LRU */
} DsealCacheEntry;

struct DsealManifestCache
{
	int			n;
	uint64_t	clock;
	uint64_t	hits;
	uint64_t	misses;
	DsealCacheEntry e[FLEXIBLE_ARRAY_MEMBER_];
};

/* pread(2) exactly len bytes; a short read means the file was truncated. */
static bool
read_at(DsealReader *r, void *buf, size_t len, uint64_t off, DErr *err)
{
	uint8_t    *p = buf;

	while (len > 0)
	{
		ssize_t		n = pread(r->fd, p, len, (off_t) off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
		{
			derr_set(err, DERR_IO, "could not read sealed dataset \"%s\"", r->path);
			derr_detail(err, "%s.", strerror(errno));
			return false;
		}
		if (n == 0)
		{
			derr_set(err, DERR_INTEGRITY, "sealed dataset \"%s\" is truncated", r->path);
			return false;
		}
		p += n;
		len -= (size_t) n;
		off += (uint64_t) n;
	}
	return true;
}

static uint64_t
get_u64le(const uint8_t *p)
{
	uint64_t	v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/*
 * Chunks must tile the space between the file header and the manifest
 * exactly, in manifest order: no gaps, overlaps or extra bytes.
 */
static bool
check_layout(DsealReader *r, uint64_t manifest_off, DErr *err)
{
	uint64_t	expect = DSEAL_FILE_HEADER_LEN;

	for (uint32_t g = 0; g < r->m->nrowgroups; g++)
		for (int c = 0; c < r->m->ncols; c++)
		{
			const DsealChunkRef *ch = &r->m->rowgroups[g].chunks[c];

			if (ch->offset != expect || ch->length > manifest_off - ch->offset)
			{
				derr_set(err, DERR_INTEGRITY, "chunk layout of \"%s\" does not match its manifest", r->path);
				derr_detail(err, "Row group %u column %d is listed at offset %llu, expected %llu.",
							g, c, (unsigned long long) ch->offset, (unsigned long long) expect);
				return false;
			}
			expect += ch->length;
		}
	if (expect != manifest_off)
	{
		derr_set(err, DERR_INTEGRITY, "chunk layout of \"%s\" does not match its manifest", r->path);
		derr_detail(err, "The chunks end at offset %llu, but the manifest starts at %llu.",
					(unsigned long long) expect, (unsigned long long) manifest_off);
		return false;
	}
	return true;
}

static bool
same_file(const DsealCacheEntry *e, const struct stat *st)
{
	return e->m != NULL && e->dev == st->st_dev && e->ino == st->st_ino && e->size == st->st_size &&
		e->mtime.tv_sec == st->st_mtim.tv_sec && e->mtime.tv_nsec == st->st_mtim.tv_nsec &&
		e->ctime.tv_sec == st->st_ctim.tv_sec && e->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

DsealManifestCache *
dseal_cache_create(int capacity)
{
	DsealManifestCache *c = calloc(1, sizeof(DsealManifestCache) + sizeof(DsealCacheEntry) * (size_t) capacity);

	if (c)
		c->n = capacity;
	return c;
}

/* Free the cache and its manifests; no reader may still borrow one.  NULL-safe. */
void
dseal_cache_free(DsealManifestCache *c)
{
	if (c == NULL)
		return;
	for (int i = 0; i < c->n; i++)
		dseal_manifest_free(c->e[i].m);
	free(c);
}

void
dseal_cache_stats(const DsealManifestCache *c, uint64_t *hits, uint64_t *misses)
{
	*hits = c->hits;
	*misses = c->misses;
}

/* Hand r's freshly parsed manifest to the cache (if a slot is free or unused). */
static void
cache_insert(DsealManifestCache *c, DsealReader *r, const struct stat *st)
{
	DsealCacheEntry *victim = NULL;

	for (int i = 0; i < c->n; i++)
	{
		DsealCacheEntry *e = &c->e[i];

		if (e->m != NULL && e->refs > 0)
			continue;
		if (victim == NULL || e->m == NULL || (victim->m != NULL && e->used < victim->used))
			victim = e;
		if (e->m == NULL)
			break;
	}
	if (victim == NULL)
		return;					/* every entry is in use: r keeps its own manifest */
	dseal_manifest_free(victim->m);
	victim->dev = st->st_dev;
	victim->ino = st->st_ino;
	victim->size = st->st_size;
	victim->mtime = st->st_mtim;
	victim->ctime = st->st_ctim;
	victim->m = r->m;
	victim->refs = 1;
	victim->used = ++c->clock;
	r->entry = victim;
}

/*
 * Open path.  given: a manifest parsed and verified elsewhere (a parallel
 * leader's, dseal_manifest_unflatten), taken over by the reader, or NULL;
 * cache: a manifest cache to use, or NULL.
 */
static DsealReader *
reader_open(const char *path, DsealManifestCache *cache, DsealManifest *given, DErr *err)
{
	DsealReader *r = calloc(1, sizeof(DsealReader));
	struct stat st;
	uint8_t		hdr[DSEAL_FILE_HEADER_LEN];
	uint8_t		trailer[DSEAL_TRAILER_LEN];
	uint64_t	moff,
				mlen;
	char	   *json = NULL;
	DsealCacheEntry *hit = NULL;

	if (r)
	{
		r->fd = -1;
		r->m = given;			/* owned from here on, freed with r on failure */
	}
	if (!r || !(r->path = strdup(path)))
	{
		if (r)
			dseal_manifest_free(r->m);
		free(r);
		derr_set(err, DERR_NOMEM, "out of memory opening \"%s\"", path);
		return NULL;
	}
	r->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0)
	{
		derr_set(err, DERR_IO, "could not open sealed dataset \"%s\"", path);
		derr_detail(err, "%s.", strerror(errno));
		goto fail;
	}
	if (fstat(r->fd, &st) != 0)
	{
		derr_set(err, DERR_IO, "could not stat sealed dataset \"%s\"", path);
		goto fail;
	}
	r->file_size = (uint64_t) st.st_size;
	if (r->file_size < DSEAL_FILE_HEADER_LEN + DSEAL_TRAILER_LEN)
	{
		derr_set(err, DERR_INTEGRITY, "sealed dataset \"%s\" is truncated", path);
		derr_detail(err, "The file has %llu bytes, less than a header and trailer.",
					(unsigned long long) r->file_size);
		goto fail;
	}
	if (!read_at(r, hdr, sizeof(hdr), 0, err))
		goto fail;
	if (!dseal_check_file_header(hdr, path, err))
		goto fail;
	if (!read_at(r, trailer, sizeof(trailer), r->file_size - DSEAL_TRAILER_LEN, err))
		goto fail;
	moff = get_u64le(trailer);
	mlen = get_u64le(trailer + 8);
	if (memcmp(trailer + 16, DSEAL_TRAILER_MAGIC, 8) != 0 ||
		moff < DSEAL_FILE_HEADER_LEN || mlen == 0 || mlen > DSEAL_MAX_MANIFEST_LEN ||
		moff + mlen != r->file_size - DSEAL_TRAILER_LEN)
	{
		derr_set(err, DERR_INTEGRITY, "sealed dataset \"%s\" is truncated or its trailer is damaged", path);
		derr_detail(err, "A complete .dseal file ends with a 24-byte trailer that locates the manifest.");
		goto fail;
	}
	for (int i = 0; cache != NULL && given == NULL && i < cache->n; i++)
		if (same_file(&cache->e[i], &st) && cache->e[i].m->json_len == mlen)
			hit = &cache->e[i];
	if (given != NULL)
	{
		if (given->json_len != mlen)
		{
			derr_set(err, DERR_INTEGRITY, "sealed dataset \"%s\" changed while it was being read", path);
			derr_detail(err, "Its manifest is %llu bytes long now; the parallel leader read one of %zu bytes.",
						(unsigned long long) mlen, given->json_len);
			goto fail;
		}
	}
	else if (hit != NULL)
	{
		/* the manifest this file had when it was parsed and verified */
		r->m = hit->m;
		r->entry = hit;
		hit->refs++;
		hit->used = ++cache->clock;
		cache->hits++;
	}
	else
	{
		json = malloc(mlen);
		if (!json)
		{
			derr_set(err, DERR_NOMEM, "out of memory reading the manifest of \"%s\"", path);
			goto fail;
		}
		if (!read_at(r, json, mlen, moff, err))
			goto fail;
		r->m = dseal_manifest_parse(json, mlen, err);
		free(json);
		json = NULL;
		if (!r->m || !check_layout(r, moff, err))
			goto fail;
	}
	/* the header bytes are signed too: they must be the ones the owner sealed */
	if (memcmp(hdr, r->m->file_header, DSEAL_FILE_HEADER_LEN) != 0)
	{
		char		got[2 * DSEAL_FILE_HEADER_LEN + 1],
					want[2 * DSEAL_FILE_HEADER_LEN + 1];

		dhex_encode(hdr, DSEAL_FILE_HEADER_LEN, got);
		dhex_encode(r->m->file_header, DSEAL_FILE_HEADER_LEN, want);
		derr_set(err, DERR_INTEGRITY, "header of sealed dataset \"%s\" does not match its signed manifest", path);
		derr_detail(err, "The file starts with %s, but the manifest its owner signed records %s.", got, want);
		goto fail;
	}
	if (cache != NULL && hit == NULL && given == NULL)
	{
		cache->misses++;
		cache_insert(cache, r, &st);
	}
	return r;

fail:
	free(json);
	dseal_reader_close(r);
	return NULL;
}

DsealReader *
dseal_reader_open(const char *path, DErr *err)
{
	return reader_open(path, NULL, NULL, err);
}

DsealReader *
dseal_reader_open_cached(const char *path, DsealManifestCache *cache, DErr *err)
{
	return reader_open(path, cache, NULL, err);
}

DsealReader *
dseal_reader_open_with(const char *path, DsealManifest *m, DErr *err)
{
	return reader_open(path, NULL, m, err);
}

const DsealManifest *
dseal_reader_manifest(const DsealReader *r)
{
	return r->m;
}

static const DsealChunkRef *
chunk_ref(DsealReader *r, uint32_t rg, uint32_t col, DErr *err)
{
	if (rg >= r->m->nrowgroups || col >= (uint32_t) r->m->ncols)
	{
		derr_set(err, DERR_ARG, "chunk %u/%u does not exist", rg, col);
		return NULL;
	}
	return &r->m->rowgroups[rg].chunks[col];
}

bool
dseal_reader_check_chunk(DsealReader *r, uint32_t rg, uint32_t col, DErr *err)
{
	const DsealChunkRef *ch = chunk_ref(r, rg, col, err);
	uint8_t		h[DC_SHA256_LEN];

	if (!ch || !dc_buf_reserve(&r->own.cbuf, &r->own.cbuf_cap, ch->length, "reading a chunk", err) ||
		!read_at(r, r->own.cbuf, ch->length, ch->offset, err))
		return false;
	dc_sha256(r->own.cbuf, ch->length, h);
	if (!dc_equal(h, ch->sha256, DC_SHA256_LEN) ||
		!dc_equal(r->own.cbuf + ch->length - DC_GCM_TAG_LEN, ch->tag, DC_GCM_TAG_LEN))
	{
		derr_set(err, DERR_INTEGRITY, "chunk %u of row group %u in \"%s\" was modified", col, rg, r->path);
		derr_detail(err, "Its SHA-256 or tag differs from the one in the signed manifest.");
		return false;
	}
	return true;
}

bool
dseal_reader_set_data_key(DsealReader *r, const uint8_t key[DSEAL_DATA_KEY_LEN], DErr *err)
{
	dc_gcm_free(r->own.gcm);
	r->own.gcm = dc_gcm_new(key, err);
	return r->own.gcm != NULL;
}

bool
dseal_reader_unwrap(DsealReader *r, const DsealRecipe *cvm_recipe,
					const uint8_t recipient_sk[DC_SECKEY_LEN], DErr *err)
{
	uint8_t		key[DSEAL_DATA_KEY_LEN];
	bool		ok;

	ok = dseal_unwrap_key(cvm_recipe, r->m->owner_id, recipient_sk, r->m->dataset_id,
						  r->m->ephemeral_pub, r->m->wrapped, key, err) &&
		dseal_reader_set_data_key(r, key, err);
	explicit_bzero(key, sizeof(key));
	return ok;
}

bool
dseal_reader_read_chunk_with(DsealReader *r, DsealScratch *x, uint32_t rg, uint32_t col, DsealColBuf *out,
							 DErr *err)
{
	const DsealChunkRef *ch = chunk_ref(r, rg, col, err);
	uint8_t		nonce[DC_GCM_NONCE_LEN];
	uint8_t		aad[DSEAL_CHUNK_AAD_LEN];
	size_t		ct_len;
	const uint8_t *plain;
	bool		ok;

	if (!ch)
		return false;
	if (!x->gcm)
		return derr_set(err, DERR_KEY, "no data key installed for \"%s\"", r->path);
	ct_len = ch->length - DC_GCM_TAG_LEN;
	if (!dc_buf_reserve(&x->cbuf, &x->cbuf_cap, ch->length, "reading a chunk", err) ||
		!dc_buf_reserve(&x->pbuf, &x->pbuf_cap, ct_len ? ct_len : 1, "reading a chunk", err) ||
		!read_at(r, x->cbuf, ch->length, ch->offset, err))
		return false;
	/* the tag GCM checks must be the one the owner signed */
	if (!dc_equal(x->cbuf + ct_len, ch->tag, DC_GCM_TAG_LEN))
	{
		derr_set(err, DERR_INTEGRITY, "chunk %u of row group %u in \"%s\" was modified", col, rg, r->path);
		derr_detail(err, "Its tag differs from the one in the signed manifest; no rows of it were returned.");
		return false;
	}
	dseal_chunk_nonce((uint64_t) rg * r->m->ncols + col, nonce);
	dseal_chunk_aad(r->m, rg, col, ct_len, aad);
	if (!dc_gcm_decrypt(x->gcm, nonce, aad, sizeof(aad), x->cbuf, ct_len,
						x->cbuf + ct_len, x->pbuf, err))
	{
		derr_set(err, DERR_INTEGRITY, "chunk %u of row group %u in \"%s\" failed authentication",
				 col, rg, r->path);
		derr_detail(err, "The chunk was modified, moved or taken from another dataset; no rows of it were returned.");
		return false;
	}
	plain = x->pbuf;
	if (ch->zstd)
	{
		size_t		n;

		if (!dc_buf_reserve(&x->zbuf, &x->zbuf_cap, ch->plain_length ? ch->plain_length : 1, "reading a chunk", err))
			return false;
		if (!x->dctx && !(x->dctx = ZSTD_createDCtx()))
			return derr_set(err, DERR_NOMEM, "could not create a zstd decompression context");
		n = ZSTD_decompressDCtx(x->dctx, x->zbuf, ch->plain_length, x->pbuf, ct_len);
		if (ZSTD_isError(n) || n != ch->plain_length)
			return derr_set(err, DERR_FORMAT, "chunk %u of row group %u does not decompress to %llu bytes",
							col, rg, (unsigned long long) ch->plain_length);
		plain = x->zbuf;
	}
	else if (ct_len != ch->plain_length)
		return derr_set(err, DERR_FORMAT, "chunk %u of row group %u has the wrong length", col, rg);
	ok = colbuf_deserialize(out, r->m->cols[col].enc, plain, ch->plain_length, err);
	/* the column buffer now holds the values; scrub the intermediate copies */
	explicit_bzero(x->pbuf, ct_len);
	if (ch->zstd)
		explicit_bzero(x->zbuf, ch->plain_length);
	if (ok && out->nrows != r->m->rowgroups[rg].nrows)
		return derr_set(err, DERR_FORMAT, "chunk %u of row group %u holds %u rows, expected %u",
						col, rg, out->nrows, r->m->rowgroups[rg].nrows);
	return ok;
}

bool
dseal_reader_read_chunk(DsealReader *r, uint32_t rg, uint32_t col, DsealColBuf *out, DErr *err)
{
	return dseal_reader_read_chunk_with(r, &r->own, rg, col, out, err);
}

static void
scratch_release(DsealScratch *x)
{
	dc_gcm_free(x->gcm);
	ZSTD_freeDCtx(x->dctx);
	free(x->cbuf);
	free(x->pbuf);
	free(x->zbuf);
	memset(x, 0, sizeof(*x));
}

DsealScratch *
dseal_scratch_new(const DsealReader *r, DErr *err)
{
	DsealScratch *x;

	if (r->own.gcm == NULL)
	{
		derr_set(err, DERR_KEY, "no data key installed for \"%s\"", r->path);
		return NULL;
	}
	if ((x = calloc(1, sizeof(*x))) == NULL)
	{
		derr_set(err, DERR_NOMEM, "out of memory for a second chunk context");
		return NULL;
	}
	if ((x->gcm = dc_gcm_dup(r->own.gcm, err)) == NULL)
	{
		free(x);
		return NULL;
	}
	return x;
}

void
dseal_scratch_free(DsealScratch *x)
{
	if (x == NULL)
		return;
	scratch_release(x);
	free(x);
}

void
dseal_reader_close(DsealReader *r)
{
	if (r == NULL)
		return;
	if (r->fd >= 0)
		close(r->fd);
	scratch_release(&r->own);
	if (r->entry != NULL)
		r->entry->refs--;		/* the cache keeps the manifest */
	else
		dseal_manifest_free(r->m);
	free(r->path);
	free(r);
}
