/*
 * wrap.h: the recipe-bound data-key wrap (docs/format.md, "The data key and the recipe").
 *
 *   E = e*G for a fresh ephemeral secp256k1 key e
 *   wrap = HKDF-SHA256(ikm  = x(e * P_o),
 *                      salt = SHA256(kms_root_pubkey),
 *                      info = "dstack-seal/v1" || app_id(20) || compose_hash(32)
 *                             || owner_id(20) || E(33))
 *   wrapped = AES-256-GCM(wrap, nonce = 0^12, aad = "dstack-seal/v1 wrap" || dataset_id(16),
 *                         data_key(32)) -> 32 bytes ciphertext || 16 bytes tag
 * The nonce is fixed because every wrap key is used once (fresh e).
 * In the CVM the same derivation runs with the recipient private key p_o
 * (x(p_o * E) = x(e * P_o)) and the app id / compose-hash that the guest agent
 * reports; a CVM of another recipe derives a different key and the GCM tag fails.
 */
#ifndef DSTACK_WRAP_H
#define DSTACK_WRAP_H

#include "crypto.h"

#define DSEAL_DATASET_ID_LEN	16
#define DSEAL_COMPOSE_HASH_LEN	32
#define DSEAL_DATA_KEY_LEN		32
#define DSEAL_WRAPPED_LEN		(DSEAL_DATA_KEY_LEN + DC_GCM_TAG_LEN)

typedef struct DsealRecipe
{
	uint8_t		kms_root_pubkey[DC_PUBKEY_LEN];
	uint8_t		app_id[DC_ADDR_LEN];
	uint8_t		compose_hash[DSEAL_COMPOSE_HASH_LEN];
} DsealRecipe;

/*
 * The guest agent's GetKey path, and purpose, of an owner's recipient key:
 * "dstack-seal/v1/<owner hex>" (lower case, no 0x).  The silo derives it to
 * check the recipient key's chain, the CVM to ask for the key, the test
 * harnesses to publish it: one spelling for all of them.
 */
#define DSEAL_RECIPIENT_PATH_PREFIX	"dstack-seal/v1/"
#define DSEAL_RECIPIENT_PATH_LEN	(sizeof(DSEAL_RECIPIENT_PATH_PREFIX) - 1 + 2 * DC_ADDR_LEN + 1)
extern void dseal_recipient_path(const uint8_t owner_id[DC_ADDR_LEN], char out[DSEAL_RECIPIENT_PATH_LEN]);

/* Silo side: wrap data_key for recipient_pub; fills ephemeral_pub and wrapped. */
extern bool dseal_wrap_key(const DsealRecipe *recipe,
						   const uint8_t owner_id[DC_ADDR_LEN],
						   const uint8_t recipient_pub[DC_PUBKEY_LEN],
						   const uint8_t dataset_id[DSEAL_DATASET_ID_LEN],
						   const uint8_t data_key[DSEAL_DATA_KEY_LEN],
						   uint8_t ephemeral_pub[DC_PUBKEY_LEN],
						   uint8_t wrapped[DSEAL_WRAPPED_LEN],
						   DErr *err);

/*
 * CVM side: unwrap with the recipient private key.  The recipe here must be
 * the running CVM's (app id and compose-hash from the guest agent).  Returns
 * false with DERR_KEY when the key does not fit (other recipe, other owner,
 * other recipient key).
 */
extern bool dseal_unwrap_key(const DsealRecipe *recipe,
							 const uint8_t owner_id[DC_ADDR_LEN],
							 const uint8_t recipient_sk[DC_SECKEY_LEN],
							 const uint8_t dataset_id[DSEAL_DATASET_ID_LEN],
							 const uint8_t ephemeral_pub[DC_PUBKEY_LEN],
							 const uint8_t wrapped[DSEAL_WRAPPED_LEN],
							 uint8_t data_key[DSEAL_DATA_KEY_LEN],
							 DErr *err);

/* The HKDF step alone, exposed so unit tests can pin it with a fixed vector. */
extern bool dseal_derive_wrap_key(const DsealRecipe *recipe,
								  const uint8_t owner_id[DC_ADDR_LEN],
								  const uint8_t shared_x[32],
								  const uint8_t ephemeral_pub[DC_PUBKEY_LEN],
								  uint8_t wrap_key[DC_AES256_KEY_LEN],
								  DErr *err);

#endif							/* DSTACK_WRAP_H */
