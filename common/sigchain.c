/*
 * sigchain.c: verification of dstack's key signature chain (see sigchain.h).
 *
 * The message layouts follow dstack's KMS (Dstack-TEE/dstack, the guest
 * agent's GetKey and the SDKs' signature-chain verifiers):
 *   chain[0] = sign(app_key,  keccak256(purpose ":" hex(derived_pub)))
 *   chain[1] = sign(kms_root, keccak256("dstack-kms-issued:" || app_id || app_pub))
 * Any mismatch is DERR_CHAIN, with a detail that names the failing link so an
 * operator can tell a wrong kms_root_pubkey from a wrong app id or purpose.
 */
#include <string.h>

#include "hex.h"
#include "sigchain.h"

#define KMS_ISSUED_PREFIX	"dstack-kms-issued:"

/* The app key signs the text form, so the derived key is hex-encoded here. */
void
dstack_sigchain_app_digest(const char *purpose, const uint8_t derived_pub[DC_PUBKEY_LEN],
						   uint8_t digest[32])
{
	char		hex[2 * DC_PUBKEY_LEN + 1];
	DcBuf		parts[3];

	dhex_encode(derived_pub, DC_PUBKEY_LEN, hex);
	parts[0] = (DcBuf) {purpose, strlen(purpose)};
	parts[1] = (DcBuf) {":", 1};
	parts[2] = (DcBuf) {hex, 2 * DC_PUBKEY_LEN};
	dc_keccak256_parts(parts, 3, digest);
}

/* The KMS root signs raw bytes: prefix, 20-byte app id, 33-byte app key. */
void
dstack_sigchain_kms_digest(const uint8_t app_id[DC_ADDR_LEN],
						   const uint8_t app_pub[DC_PUBKEY_LEN], uint8_t digest[32])
{
	uint8_t		msg[sizeof(KMS_ISSUED_PREFIX) - 1 + DC_ADDR_LEN + DC_PUBKEY_LEN];
	size_t		n = sizeof(KMS_ISSUED_PREFIX) - 1;

	memcpy(msg, KMS_ISSUED_PREFIX, n);
	memcpy(msg + n, app_id, DC_ADDR_LEN);
	memcpy(msg + n + DC_ADDR_LEN, app_pub, DC_PUBKEY_LEN);
	dc_keccak256(msg, sizeof(msg), digest);
}

/*
 * Recover the app key from chain[0], then the root from chain[1], and compare
 * with the configured root.  The app id and purpose are inputs of the digests,
 * so a wrong app id or purpose shows up as "recovered a different root".
 */
bool
dstack_sigchain_verify(const uint8_t kms_root[DC_PUBKEY_LEN],
					   const uint8_t app_id[DC_ADDR_LEN],
					   const char *purpose,
					   const uint8_t derived_pub[DC_PUBKEY_LEN],
					   const uint8_t chain0[DC_SIG_LEN],
					   const uint8_t chain1[DC_SIG_LEN],
					   uint8_t app_pub_out[DC_PUBKEY_LEN],
					   DErr *err)
{
	uint8_t		digest[32];
	uint8_t		app_pub[DC_PUBKEY_LEN];
	uint8_t		root[DC_PUBKEY_LEN];
	char		got_hex[2 * DC_PUBKEY_LEN + 1];
	char		want_hex[2 * DC_PUBKEY_LEN + 1];
	char		id_hex[2 * DC_ADDR_LEN + 1];
	DErr		inner;

	if (purpose == NULL)
		purpose = "";
	dhex_encode(app_id, DC_ADDR_LEN, id_hex);

	/* link 0: the app key over the derived public key */
	dstack_sigchain_app_digest(purpose, derived_pub, digest);
	derr_clear(&inner);
	if (!dc_recover_pubkey(digest, chain0, app_pub, &inner))
	{
		derr_set(err, DERR_CHAIN, "dstack signature chain does not verify");
		derr_detail(err, "No app public key could be recovered from signature_chain[0] over purpose \"%s\": %s.",
					purpose, inner.msg);
		return false;
	}

	/* link 1: the KMS root over app id and app key */
	dstack_sigchain_kms_digest(app_id, app_pub, digest);
	derr_clear(&inner);
	if (!dc_recover_pubkey(digest, chain1, root, &inner))
	{
		derr_set(err, DERR_CHAIN, "dstack signature chain does not verify");
		derr_detail(err, "No KMS root public key could be recovered from signature_chain[1] for app id 0x%s: %s.",
					id_hex, inner.msg);
		return false;
	}

	if (!dc_equal(root, kms_root, DC_PUBKEY_LEN))
	{
		dhex_encode(root, DC_PUBKEY_LEN, got_hex);
		dhex_encode(kms_root, DC_PUBKEY_LEN, want_hex);
		derr_set(err, DERR_CHAIN, "dstack signature chain does not end at the configured kms root");
		derr_detail(err, "The KMS root recovered from signature_chain[1] is %s, but the configured KMS root is %s. "
					"Either the key was issued by another KMS, or it was issued for another app id than 0x%s "
					"or another purpose than \"%s\", or a signature was altered.",
					got_hex, want_hex, id_hex, purpose);
		return false;
	}

	if (app_pub_out != NULL)
		memcpy(app_pub_out, app_pub, DC_PUBKEY_LEN);
	return true;
}
