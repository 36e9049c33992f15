/*
 * crypto.h: the cryptographic primitives pg_dstack uses, in one place.
 *
 * Symmetric primitives and the CSPRNG come from OpenSSL 3; secp256k1 from
 * libsecp256k1 (Debian build: recovery + ecdh modules); keccak-256 is our own
 * (keccak.c) because OpenSSL 3.0 has none.  Every function is pure C with no
 * PostgreSQL dependency and reports failures through DErr.  Buffers holding
 * secrets are the caller's to scrub with explicit_bzero().
 *
 * Conventions
 *   - secp256k1 private keys: 32 bytes big-endian scalar.
 *   - public keys: 33-byte SEC1 compressed unless a name says "_uncompressed" (65).
 *   - recoverable signatures: 65 bytes r(32) || s(32) || v, v in {0,1} when we
 *     produce them; we accept v in {0,1,27,28} when verifying (Ethereum style).
 *   - Ethereum address: keccak256(uncompressed pubkey without 0x04)[12..32].
 */
#ifndef DSTACK_CRYPTO_H
#define DSTACK_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "derr.h"

#define DC_SHA256_LEN		32
#define DC_KECCAK256_LEN	32
#define DC_AES256_KEY_LEN	32
#define DC_GCM_NONCE_LEN	12
#define DC_GCM_TAG_LEN		16
#define DC_SECKEY_LEN		32
#define DC_PUBKEY_LEN		33
#define DC_PUBKEY_UNCOMP_LEN 65
#define DC_SIG_LEN			65
#define DC_ADDR_LEN			20

/* ---- hashes ---- */
extern void dc_sha256(const void *data, size_t len, uint8_t out[DC_SHA256_LEN]);
/* Ethereum keccak-256 (original padding 0x01, not SHA3's 0x06). */
extern void dc_keccak256(const void *data, size_t len, uint8_t out[DC_KECCAK256_LEN]);
/* keccak-256 of the concatenation of nparts buffers (no allocation, cannot fail). */
typedef struct DcBuf
{
	const void *data;
	size_t		len;
} DcBuf;
extern void dc_keccak256_parts(const DcBuf *parts, size_t nparts, uint8_t out[DC_KECCAK256_LEN]);

/* Incremental SHA-256 for streaming a whole file (chunk hashes, manifest). */
typedef struct DcSha256 DcSha256;
extern DcSha256 *dc_sha256_new(DErr *err);
extern bool dc_sha256_update(DcSha256 *ctx, const void *data, size_t len, DErr *err);
extern bool dc_sha256_final(DcSha256 *ctx, uint8_t out[DC_SHA256_LEN], DErr *err);
extern void dc_sha256_free(DcSha256 *ctx);	/* NULL-safe */

/* ---- HKDF-SHA256 (RFC 5869), extract + expand; okm_len <= 255*32 ---- */
extern bool dc_hkdf_sha256(const uint8_t *ikm, size_t ikm_len,
						   const uint8_t *salt, size_t salt_len,
						   const uint8_t *info, size_t info_len,
						   uint8_t *okm, size_t okm_len, DErr *err);

/* ---- AES-256-GCM, 12-byte nonce, 16-byte tag ----
 * A DcGcm holds one OpenSSL EVP_CIPHER_CTX reused across chunks; the owner
 * (PostgreSQL glue) must call dc_gcm_free() on abort too. */
typedef struct DcGcm DcGcm;
extern DcGcm *dc_gcm_new(const uint8_t key[DC_AES256_KEY_LEN], DErr *err);
extern void dc_gcm_free(DcGcm *g);	/* scrubs the key; NULL-safe */
extern DcGcm *dc_gcm_dup(const DcGcm *g, DErr *err);	/* the same key, a context of its own */
/* out must hold len bytes; tag gets 16 bytes. */
extern bool dc_gcm_encrypt(DcGcm *g, const uint8_t nonce[DC_GCM_NONCE_LEN],
						   const uint8_t *aad, size_t aad_len,
						   const uint8_t *in, size_t len,
						   uint8_t *out, uint8_t tag[DC_GCM_TAG_LEN], DErr *err);
/* Returns false with DERR_INTEGRITY when the tag does not verify; out is then scrubbed. */
extern bool dc_gcm_decrypt(DcGcm *g, const uint8_t nonce[DC_GCM_NONCE_LEN],
						   const uint8_t *aad, size_t aad_len,
						   const uint8_t *in, size_t len,
						   const uint8_t tag[DC_GCM_TAG_LEN], uint8_t *out, DErr *err);

/* ---- CSPRNG (OpenSSL RAND_bytes) ---- */
extern bool dc_random(uint8_t *buf, size_t len, DErr *err);

/* ---- secp256k1 ---- */
/* Check a private key is a valid scalar (0 < k < n). */
extern bool dc_seckey_verify(const uint8_t sk[DC_SECKEY_LEN], DErr *err);
/* Fresh random private key (ephemeral keys). */
extern bool dc_seckey_generate(uint8_t sk[DC_SECKEY_LEN], DErr *err);
extern bool dc_pubkey_from_seckey(const uint8_t sk[DC_SECKEY_LEN], uint8_t pub[DC_PUBKEY_LEN], DErr *err);
/* Parse a 33- or 65-byte SEC1 key, re-serialise compressed; DERR_ARG when invalid. */
extern bool dc_pubkey_normalize(const uint8_t *in, size_t in_len, uint8_t pub[DC_PUBKEY_LEN], DErr *err);
extern bool dc_pubkey_uncompress(const uint8_t pub[DC_PUBKEY_LEN], uint8_t out[DC_PUBKEY_UNCOMP_LEN], DErr *err);
/* Ethereum address of a (compressed or uncompressed) public key. */
extern bool dc_pubkey_to_address(const uint8_t *pub, size_t pub_len, uint8_t addr[DC_ADDR_LEN], DErr *err);
/* ECDH: shared = x-coordinate (32 bytes) of sk * pub. */
extern bool dc_ecdh_x(const uint8_t sk[DC_SECKEY_LEN], const uint8_t pub[DC_PUBKEY_LEN],
					  uint8_t shared[32], DErr *err);
/* Recoverable ECDSA over a 32-byte digest (RFC 6979 nonce); sig = r||s||v, v in {0,1}. */
extern bool dc_sign_recoverable(const uint8_t sk[DC_SECKEY_LEN], const uint8_t digest[32],
								uint8_t sig[DC_SIG_LEN], DErr *err);
/* Recover the compressed public key that made sig over digest; DERR_INTEGRITY if none. */
extern bool dc_recover_pubkey(const uint8_t digest[32], const uint8_t sig[DC_SIG_LEN],
							  uint8_t pub[DC_PUBKEY_LEN], DErr *err);

/* ---- constant-time compare ---- */
extern bool dc_equal(const void *a, const void *b, size_t len);

/*
 * Is the Ethereum address who among the n addresses of list?  The one test of
 * "this owner is among the consortium's approvers / owners", wherever a copy
 * of those lists is kept (rpc.c's state, the FDW's per-statement facts).
 */
extern bool dc_addr_in(const uint8_t (*list)[DC_ADDR_LEN], size_t n, const uint8_t who[DC_ADDR_LEN]);

#endif							/* DSTACK_CRYPTO_H */
