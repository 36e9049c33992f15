/*
 * dseal_chunk.c: the file header, and the nonce and AAD of a chunk, shared by
 * writer and reader so the two can never disagree about what a file starts
 * with or what a chunk is bound to (see dseal.h).
 */
#include <string.h>

#include "dseal.h"

static void
put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t) (v >> (8 * i));
}

static uint32_t
get_le32(const uint8_t *p)
{
	return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

/* "DSTKSEAL" || u32le version || u32le flags */
void
dseal_file_header(uint8_t out[DSEAL_FILE_HEADER_LEN])
{
	memcpy(out, DSEAL_MAGIC, 8);
	put_le32(out + 8, DSEAL_VERSION);
	put_le32(out + 12, DSEAL_FLAGS);
}

/*
 * Every byte of a version 1 header has one allowed value.  The header is
 * also recorded in the signed manifest (the reader compares the two), so a
 * later version that defines flags still has them authenticated.
 */
bool
dseal_check_file_header(const uint8_t hdr[DSEAL_FILE_HEADER_LEN], const char *path, DErr *err)
{
	uint32_t	version = get_le32(hdr + 8);
	uint32_t	flags = get_le32(hdr + 12);

	if (memcmp(hdr, DSEAL_MAGIC, 8) != 0)
	{
		derr_set(err, DERR_FORMAT, "\"%s\" is not a sealed dataset", path);
		derr_detail(err, "The file does not start with the .dseal magic bytes.");
		return false;
	}
	if (version != DSEAL_VERSION)
		return derr_set(err, DERR_UNSUPPORTED, "sealed dataset \"%s\" has unsupported version %u", path, version);
	if (flags != DSEAL_FLAGS)
	{
		derr_set(err, DERR_FORMAT, "sealed dataset \"%s\" has reserved header bytes set", path);
		derr_detail(err, "Bytes 12-15 of a version 1 header are reserved and must be zero, but hold 0x%08x; "
					"the file was altered after it was sealed.", flags);
		return false;
	}
	return true;
}

static void
put_be(uint8_t *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--)
	{
		p[i] = (uint8_t) v;
		v >>= 8;
	}
}

/* 0^4 || u64be ordinal: unique per chunk, and the key is fresh per dataset. */
void
dseal_chunk_nonce(uint64_t ordinal, uint8_t nonce[DC_GCM_NONCE_LEN])
{
	memset(nonce, 0, 4);
	put_be(nonce + 4, ordinal, 8);
}

/*
 * Binds a chunk to its dataset, its header (schema, recipe, wrapped key), its
 * position and its length: swapping, reordering, truncating or transplanting
 * a chunk makes its tag fail.
 */
void
dseal_chunk_aad(const DsealManifest *m, uint32_t rg, uint32_t col, uint64_t ct_len,
				uint8_t aad[DSEAL_CHUNK_AAD_LEN])
{
	uint8_t    *p = aad;

	memcpy(p, "dstack-seal/v1 chunk", 20);
	p += 20;
	memcpy(p, m->dataset_id, DSEAL_DATASET_ID_LEN);
	p += DSEAL_DATASET_ID_LEN;
	memcpy(p, m->header_hash, DC_SHA256_LEN);
	p += DC_SHA256_LEN;
	put_be(p, rg, 4);
	put_be(p + 4, col, 4);
	put_be(p + 8, ct_len, 8);
}
