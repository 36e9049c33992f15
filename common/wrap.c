/*
 * wrap.c: the recipe-bound data-key wrap (see wrap.h and docs/format.md).
 *
 * The recipe (KMS root, app id, compose-hash), the owner and the ephemeral
 * key all go into the HKDF, so a CVM running any other recipe, or holding the
 * recipient key of another owner, derives a different wrap key and the GCM
 * tag fails.  The dataset id is bound through the GCM associated data, so a
 * wrapped key cannot be moved to another dataset's header.
 */
#include <string.h>

#include "hex.h"
#include "wrap.h"

#define WRAP_INFO_LABEL		"dstack-seal/v1"
#define WRAP_INFO_LABEL_LEN	(sizeof(WRAP_INFO_LABEL) - 1)		/* 14 */
#define WRAP_AAD_LABEL		"dstack-seal/v1 wrap"
#define WRAP_AAD_LABEL_LEN	(sizeof(WRAP_AAD_LABEL) - 1)		/* 19 */

#define WRAP_INFO_LEN	(WRAP_INFO_LABEL_LEN + DC_ADDR_LEN + DSEAL_COMPOSE_HASH_LEN + \
						 DC_ADDR_LEN + DC_PUBKEY_LEN)		/* 14+20+32+20+33 = 119 */
#define WRAP_AAD_LEN	(WRAP_AAD_LABEL_LEN + DSEAL_DATASET_ID_LEN)	/* 35 */

/* "dstack-seal/v1/<owner hex>": see wrap.h. */
void
dseal_recipient_path(const uint8_t owner_id[DC_ADDR_LEN], char out[DSEAL_RECIPIENT_PATH_LEN])
{
	memcpy(out, DSEAL_RECIPIENT_PATH_PREFIX, sizeof(DSEAL_RECIPIENT_PATH_PREFIX) - 1);
	dhex_encode(owner_id, DC_ADDR_LEN, out + sizeof(DSEAL_RECIPIENT_PATH_PREFIX) - 1);
}

/*
 * HKDF-SHA256(ikm = shared_x, salt = SHA256(kms root), info = label || app_id
 * || compose_hash || owner_id || E).  Exposed so a fixed vector computed by an
 * independent implementation can pin the exact byte layout.
 */
bool
dseal_derive_wrap_key(const DsealRecipe *recipe,
					  const uint8_t owner_id[DC_ADDR_LEN],
					  const uint8_t shared_x[32],
					  const uint8_t ephemeral_pub[DC_PUBKEY_LEN],
					  uint8_t wrap_key[DC_AES256_KEY_LEN],
					  DErr *err)
{
	uint8_t		salt[DC_SHA256_LEN];
	uint8_t		info[WRAP_INFO_LEN];
	size_t		n = 0;

	dc_sha256(recipe->kms_root_pubkey, DC_PUBKEY_LEN, salt);

	memcpy(info + n, WRAP_INFO_LABEL, WRAP_INFO_LABEL_LEN);
	n += WRAP_INFO_LABEL_LEN;
	memcpy(info + n, recipe->app_id, DC_ADDR_LEN);
	n += DC_ADDR_LEN;
	memcpy(info + n, recipe->compose_hash, DSEAL_COMPOSE_HASH_LEN);
	n += DSEAL_COMPOSE_HASH_LEN;
	memcpy(info + n, owner_id, DC_ADDR_LEN);
	n += DC_ADDR_LEN;
	memcpy(info + n, ephemeral_pub, DC_PUBKEY_LEN);
	n += DC_PUBKEY_LEN;

	return dc_hkdf_sha256(shared_x, 32, salt, sizeof(salt), info, n,
						  wrap_key, DC_AES256_KEY_LEN, err);
}

/* AAD = label || dataset_id: binds the wrapped key to one dataset. */
static void
wrap_aad(const uint8_t dataset_id[DSEAL_DATASET_ID_LEN], uint8_t aad[WRAP_AAD_LEN])
{
	memcpy(aad, WRAP_AAD_LABEL, WRAP_AAD_LABEL_LEN);
	memcpy(aad + WRAP_AAD_LABEL_LEN, dataset_id, DSEAL_DATASET_ID_LEN);
}

/*
 * One AES-256-GCM operation under a single-use wrap key.  The zero nonce is
 * safe because the wrap key depends on a fresh ephemeral key every time.
 */
static bool
wrap_gcm(bool encrypt, const uint8_t wrap_key[DC_AES256_KEY_LEN],
		 const uint8_t dataset_id[DSEAL_DATASET_ID_LEN],
		 const uint8_t *in, uint8_t *out, uint8_t tag[DC_GCM_TAG_LEN], DErr *err)
{
	static const uint8_t zero_nonce[DC_GCM_NONCE_LEN] = {0};
	uint8_t		aad[WRAP_AAD_LEN];
	DcGcm	   *g;
	bool		ok;

	wrap_aad(dataset_id, aad);
	g = dc_gcm_new(wrap_key, err);
	if (g == NULL)
		return false;
	if (encrypt)
		ok = dc_gcm_encrypt(g, zero_nonce, aad, sizeof(aad), in, DSEAL_DATA_KEY_LEN,
							out, tag, err);
	else
		ok = dc_gcm_decrypt(g, zero_nonce, aad, sizeof(aad), in, DSEAL_DATA_KEY_LEN,
							tag, out, err);
	dc_gcm_free(g);
	return ok;
}

/*
 * Silo side.  A fresh ephemeral key per wrap gives a fresh wrap key, so the
 * fixed GCM nonce is never reused under one key.  The recipient key must be
 * a valid point (the caller has verified its dstack signature chain).
 */
bool
dseal_wrap_key(const DsealRecipe *recipe,
			   const uint8_t owner_id[DC_ADDR_LEN],
			   const uint8_t recipient_pub[DC_PUBKEY_LEN],
			   const uint8_t dataset_id[DSEAL_DATASET_ID_LEN],
			   const uint8_t data_key[DSEAL_DATA_KEY_LEN],
			   uint8_t ephemeral_pub[DC_PUBKEY_LEN],
			   uint8_t wrapped[DSEAL_WRAPPED_LEN],
			   DErr *err)
{
	uint8_t		e[DC_SECKEY_LEN];
	uint8_t		shared[32];
	uint8_t		wrap_key[DC_AES256_KEY_LEN];
	bool		ok = false;

	if (!dc_seckey_generate(e, err))
		return false;
	if (!dc_pubkey_from_seckey(e, ephemeral_pub, err))
		goto done;
	if (!dc_ecdh_x(e, recipient_pub, shared, err))
	{
		if (err != NULL && err->code == DERR_ARG)
			derr_detail(err, "The recipient public key is not a valid compressed secp256k1 key.");
		goto done;
	}
	if (!dseal_derive_wrap_key(recipe, owner_id, shared, ephemeral_pub, wrap_key, err))
		goto done;
	ok = wrap_gcm(true, wrap_key, dataset_id, data_key, wrapped,
				  wrapped + DSEAL_DATA_KEY_LEN, err);

done:
	explicit_bzero(e, sizeof(e));
	explicit_bzero(shared, sizeof(shared));
	explicit_bzero(wrap_key, sizeof(wrap_key));
	if (!ok)
		explicit_bzero(wrapped, DSEAL_WRAPPED_LEN);
	return ok;
}

/*
 * CVM side.  x(p_o * E) equals x(e * P_o), so the same wrap key comes out
 * exactly when recipe, owner and recipient key all match what the silo used.
 * A tag failure is reported as DERR_KEY: in practice it means "this CVM is
 * not the recipe the data was sealed for", not tampering in transit (the
 * manifest signature covers the header separately).
 */
bool
dseal_unwrap_key(const DsealRecipe *recipe,
				 const uint8_t owner_id[DC_ADDR_LEN],
				 const uint8_t recipient_sk[DC_SECKEY_LEN],
				 const uint8_t dataset_id[DSEAL_DATASET_ID_LEN],
				 const uint8_t ephemeral_pub[DC_PUBKEY_LEN],
				 const uint8_t wrapped[DSEAL_WRAPPED_LEN],
				 uint8_t data_key[DSEAL_DATA_KEY_LEN],
				 DErr *err)
{
	uint8_t		shared[32];
	uint8_t		wrap_key[DC_AES256_KEY_LEN];
	uint8_t		tag[DC_GCM_TAG_LEN];
	DErr		inner;
	bool		ok = false;

	if (!dc_ecdh_x(recipient_sk, ephemeral_pub, shared, err))
	{
		if (err != NULL && err->code == DERR_ARG)
			derr_detail(err, "The ephemeral public key in the dataset header, or the recipient private key, is not a valid secp256k1 key.");
		goto done;
	}
	if (!dseal_derive_wrap_key(recipe, owner_id, shared, ephemeral_pub, wrap_key, err))
		goto done;
	memcpy(tag, wrapped + DSEAL_DATA_KEY_LEN, DC_GCM_TAG_LEN);
	derr_clear(&inner);
	ok = wrap_gcm(false, wrap_key, dataset_id, wrapped, data_key, tag, &inner);
	if (!ok)
	{
		if (inner.code == DERR_INTEGRITY)
		{
			char		app_hex[2 * DC_ADDR_LEN + 1];
			char		ch_hex[2 * DSEAL_COMPOSE_HASH_LEN + 1];
			char		owner_hex[2 * DC_ADDR_LEN + 1];

			dhex_encode(recipe->app_id, DC_ADDR_LEN, app_hex);
			dhex_encode(recipe->compose_hash, DSEAL_COMPOSE_HASH_LEN, ch_hex);
			dhex_encode(owner_id, DC_ADDR_LEN, owner_hex);
			derr_set(err, DERR_KEY, "data key does not unwrap under this recipe");
			derr_detail(err, "The dataset was sealed for another compose-hash, app id, owner, "
						"recipient key or KMS root, or for another dataset id, than this CVM's "
						"(app id 0x%s, compose-hash %s, owner 0x%s).",
						app_hex, ch_hex, owner_hex);
		}
		else if (err != NULL)
			*err = inner;
	}

done:
	explicit_bzero(shared, sizeof(shared));
	explicit_bzero(wrap_key, sizeof(wrap_key));
	if (!ok)
		explicit_bzero(data_key, DSEAL_DATA_KEY_LEN);
	return ok;
}
