/*
 * sigchain.h: verification of dstack's key signature chain.
 *
 * The guest agent's GetKey returns a derived key and two 65-byte recoverable
 * secp256k1 signatures over keccak-256 (dstack KMS, verified against
 * Dstack-TEE/dstack):
 *   chain[0]: app key signs  purpose ":" hex(derived public key, compressed)
 *   chain[1]: KMS root signs "dstack-kms-issued:" || app_id (20 bytes)
 *             || app public key (compressed, 33 bytes)
 * We recover the app key from chain[0], then the root from chain[1], and
 * compare it with the configured KMS root public key.
 */
#ifndef DSTACK_SIGCHAIN_H
#define DSTACK_SIGCHAIN_H

#include "crypto.h"

/*
 * Verify that derived_pub was issued under app_id by kms_root.  On success
 * app_pub_out (if not NULL) receives the recovered app public key.  Returns
 * false with DERR_CHAIN and a detail that says which link failed.
 */
extern bool dstack_sigchain_verify(const uint8_t kms_root[DC_PUBKEY_LEN],
								   const uint8_t app_id[DC_ADDR_LEN],
								   const char *purpose,
								   const uint8_t derived_pub[DC_PUBKEY_LEN],
								   const uint8_t chain0[DC_SIG_LEN],
								   const uint8_t chain1[DC_SIG_LEN],
								   uint8_t app_pub_out[DC_PUBKEY_LEN],
								   DErr *err);

/* The message digests each link signs (exposed for the simulator cross-tests). */
extern void dstack_sigchain_app_digest(const char *purpose, const uint8_t derived_pub[DC_PUBKEY_LEN],
									   uint8_t digest[32]);
extern void dstack_sigchain_kms_digest(const uint8_t app_id[DC_ADDR_LEN],
									   const uint8_t app_pub[DC_PUBKEY_LEN], uint8_t digest[32]);

#endif							/* DSTACK_SIGCHAIN_H */
