/*
 * dseal_chunk.c: the nonce and AAD of a chunk, shared by writer and reader so
 * the two can never disagree about what a chunk is bound to (see dseal.h).
 */
#include <string.h>

#include "dseal.h"

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
