/*
 * fixture.h: what the file tests share (test-only): the owner's and the
 * recipient's keys and a recipe (fixture_keys), and a sealed file of
 * NGROUPS row groups of ROWS rows in two columns, int8 g*7+1 and text "v<g>"
 * (fixture_write).
 */
#ifndef DSTACK_TEST_FIXTURE_H
#define DSTACK_TEST_FIXTURE_H

#include <stdio.h>
#include <string.h>

#include "dseal.h"

#define NGROUPS 9
#define ROWS 1000

static uint8_t owner_sk[DC_SECKEY_LEN];
static uint8_t recipient_sk[DC_SECKEY_LEN];
static DsealRecipe recipe;
static uint8_t recipient_pub[DC_PUBKEY_LEN];

/* Two columns (int8 g*7+1, text "v<g>"), NGROUPS row groups of ROWS rows. */
static inline bool
fixture_write(const char *path, DErr *err)
{
	DsealColumnDef cols[2] = {
		{.name = "a", .type = "bigint", .enc = DSEAL_ENC_I64, .repr = DSEAL_REPR_BINARY},
		{.name = "b", .type = "text", .enc = DSEAL_ENC_VAR, .repr = DSEAL_REPR_BINARY}
	};
	DsealWriterOptions o = {0};
	DsealColBuf cb[2];
	DsealWriter *w;
	bool		ok;

	o.path = path;
	o.table = "public.p";
	o.ncols = 2;
	o.cols = cols;
	o.recipe = recipe;
	o.recipient_purpose = "dstack-seal/v1/test";
	memcpy(o.recipient_pub, recipient_pub, DC_PUBKEY_LEN);
	o.rows_per_group = ROWS;
	o.zstd_level = 3;
	if (!(w = dseal_writer_open(&o, owner_sk, err)))
		return false;
	ok = colbuf_init(&cb[0], DSEAL_ENC_I64, ROWS, err) && colbuf_init(&cb[1], DSEAL_ENC_VAR, ROWS, err);
	for (int g = 0; ok && g < NGROUPS; g++)
	{
		colbuf_reset(&cb[0]);
		colbuf_reset(&cb[1]);
		for (int64_t i = 0; ok && i < ROWS; i++)
		{
			int64_t		v = ((int64_t) g * ROWS + i) * 7 + 1;
			char		s[32];
			int			n = snprintf(s, sizeof(s), "v%lld", (long long) (g * ROWS + i));

			ok = colbuf_append_fixed(&cb[0], &v, err) && colbuf_append_var(&cb[1], s, (size_t) n, err);
		}
		ok = ok && dseal_writer_add_row_group(w, cb, err);
	}
	ok = ok && dseal_writer_finish(w, NULL, err);
	colbuf_free(&cb[0]);
	colbuf_free(&cb[1]);
	dseal_writer_free(w);
	return ok;
}

/* Keys and recipe of the fixture; false (with err) if the key setup fails. */
static inline bool
fixture_keys(DErr *err)
{
	uint8_t		root_sk[DC_SECKEY_LEN];

	memset(owner_sk, 0x11, sizeof(owner_sk));
	memset(recipient_sk, 0x22, sizeof(recipient_sk));
	memset(root_sk, 0x33, sizeof(root_sk));
	memset(recipe.app_id, 0xaa, sizeof(recipe.app_id));
	memset(recipe.compose_hash, 0xbb, sizeof(recipe.compose_hash));
	return dc_pubkey_from_seckey(root_sk, recipe.kms_root_pubkey, err) &&
		dc_pubkey_from_seckey(recipient_sk, recipient_pub, err);
}

#endif							/* DSTACK_TEST_FIXTURE_H */
