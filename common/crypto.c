/*
 * crypto.c: SHA-256, HKDF, AES-256-GCM and the CSPRNG from OpenSSL 3;
 * secp256k1 keys, ECDH and recoverable ECDSA from libsecp256k1.
 *
 * Every failure is reported through DErr (never abort()/exit()): this code is
 * linked into PostgreSQL backends, where a crashed process takes the whole
 * cluster through crash recovery.  Secret temporaries are scrubbed with
 * explicit_bzero() before they go out of scope.  keccak-256 lives in keccak.c.
 */
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <secp256k1.h>
#include <secp256k1_ecdh.h>
#include <secp256k1_preallocated.h>
#include <secp256k1_recovery.h>

#include "crypto.h"

/* OpenSSL's int-sized length parameters: feed large buffers in slices. */
#define DC_OSSL_SLICE	(1 << 30)

/*
 * Drop OpenSSL's thread-local error queue after a failure we have already
 * turned into a DErr, so a stale entry never surfaces in an unrelated later
 * call (libpq and libcurl share the same queue in a backend).
 */
static bool
ossl_fail(DErr *err, DErrCode code, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	char		buf[256];

	derr_set(err, code, "%s", what);
	if (e != 0)
	{
		ERR_error_string_n(e, buf, sizeof(buf));
		derr_detail(err, "OpenSSL reported: %s.", buf);
	}
	ERR_clear_error();
	return false;
}

/* ------------------------------------------------------------------ */
/* SHA-256                                                             */
/* ------------------------------------------------------------------ */

/*
 * One-shot SHA-256.  The signature has no DErr, so this must not be able to
 * fail: OpenSSL 3's SHA256() and EVP paths fetch a provider implementation
 * (which can fail on allocation), while the low-level SHA256_* functions are
 * a pure computation.  They are deprecated in 3.0 but present; we silence the
 * deprecation warning for this function only.
 */
void
dc_sha256(const void *data, size_t len, uint8_t out[DC_SHA256_LEN])
{
	SHA256_CTX	c;

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	SHA256_Init(&c);
	SHA256_Update(&c, data, len);
	SHA256_Final(out, &c);
#pragma GCC diagnostic pop
	explicit_bzero(&c, sizeof(c));
}

struct DcSha256
{
	EVP_MD_CTX *md;
};

/* Streaming hash of whole files: EVP, so failures are reported, not hidden. */
DcSha256 *
dc_sha256_new(DErr *err)
{
	DcSha256   *ctx = calloc(1, sizeof(*ctx));

	if (ctx == NULL)
	{
		derr_set(err, DERR_NOMEM, "out of memory allocating a sha-256 context");
		return NULL;
	}
	ctx->md = EVP_MD_CTX_new();
	if (ctx->md == NULL || EVP_DigestInit_ex(ctx->md, EVP_sha256(), NULL) != 1)
	{
		ossl_fail(err, DERR_CRYPTO, "could not initialise sha-256");
		dc_sha256_free(ctx);
		return NULL;
	}
	return ctx;
}

/* Absorb more input; any size (EVP_DigestUpdate takes size_t). */
bool
dc_sha256_update(DcSha256 *ctx, const void *data, size_t len, DErr *err)
{
	if (len == 0)
		return true;
	if (EVP_DigestUpdate(ctx->md, data, len) != 1)
		return ossl_fail(err, DERR_CRYPTO, "sha-256 update failed");
	return true;
}

/* Finish; the context may not be updated again afterwards (free it). */
bool
dc_sha256_final(DcSha256 *ctx, uint8_t out[DC_SHA256_LEN], DErr *err)
{
	unsigned int n = 0;

	if (EVP_DigestFinal_ex(ctx->md, out, &n) != 1 || n != DC_SHA256_LEN)
		return ossl_fail(err, DERR_CRYPTO, "sha-256 finalisation failed");
	return true;
}

/* NULL-safe so error paths can free unconditionally. */
void
dc_sha256_free(DcSha256 *ctx)
{
	if (ctx == NULL)
		return;
	EVP_MD_CTX_free(ctx->md);
	free(ctx);
}

/* ------------------------------------------------------------------ */
/* HKDF-SHA256                                                         */
/* ------------------------------------------------------------------ */

/*
 * RFC 5869 extract-and-expand through OpenSSL's EVP_KDF "HKDF".  An empty
 * salt is left out, which OpenSSL treats as HashLen zero bytes exactly as
 * RFC 5869 section 2.2 prescribes; empty info is left out likewise.
 */
bool
dc_hkdf_sha256(const uint8_t *ikm, size_t ikm_len,
			   const uint8_t *salt, size_t salt_len,
			   const uint8_t *info, size_t info_len,
			   uint8_t *okm, size_t okm_len, DErr *err)
{
	EVP_KDF    *kdf;
	EVP_KDF_CTX *kctx;
	OSSL_PARAM	params[6];		/* digest, mode, key, salt, info, end */
	int			n = 0;
	int			mode = EVP_KDF_HKDF_MODE_EXTRACT_AND_EXPAND;
	bool		ok;

	if (okm_len == 0 || okm_len > 255 * DC_SHA256_LEN)
	{
		derr_set(err, DERR_ARG, "invalid hkdf output length");
		derr_detail(err, "HKDF-SHA256 can produce 1 to %d bytes; %zu were asked for.",
					255 * DC_SHA256_LEN, okm_len);
		return false;
	}
	if (ikm == NULL || ikm_len == 0)
		return derr_set(err, DERR_ARG, "hkdf input key material is empty");

	kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	if (kdf == NULL)
		return ossl_fail(err, DERR_CRYPTO, "could not fetch the hkdf implementation");
	kctx = EVP_KDF_CTX_new(kdf);
	EVP_KDF_free(kdf);
	if (kctx == NULL)
		return ossl_fail(err, DERR_CRYPTO, "could not allocate an hkdf context");

	params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *) "SHA256", 0);
	params[n++] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
	params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *) ikm, ikm_len);
	if (salt != NULL && salt_len > 0)
		params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *) salt, salt_len);
	if (info != NULL && info_len > 0)
		params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *) info, info_len);
	params[n] = OSSL_PARAM_construct_end();

	ok = EVP_KDF_derive(kctx, okm, okm_len, params) == 1;
	/* EVP_KDF_CTX_free cleanses the copies of ikm/salt/info it holds */
	EVP_KDF_CTX_free(kctx);
	if (!ok)
	{
		explicit_bzero(okm, okm_len);
		return ossl_fail(err, DERR_CRYPTO, "hkdf-sha256 derivation failed");
	}
	return true;
}

/* ------------------------------------------------------------------ */
/* AES-256-GCM                                                         */
/* ------------------------------------------------------------------ */

struct DcGcm
{
	EVP_CIPHER_CTX *ctx;		/* reused for every chunk */
	uint8_t		key[DC_AES256_KEY_LEN];	/* re-installed per call, scrubbed on free */
};

/*
 * One context per key, reused across chunks: allocating an EVP context per
 * chunk showed up in profiles of large scans.  The key is kept so every call
 * starts from a fully re-initialised state whatever the previous call did.
 */
DcGcm *
dc_gcm_new(const uint8_t key[DC_AES256_KEY_LEN], DErr *err)
{
	DcGcm	   *g = calloc(1, sizeof(*g));

	if (g == NULL)
	{
		derr_set(err, DERR_NOMEM, "out of memory allocating an aes-gcm context");
		return NULL;
	}
	g->ctx = EVP_CIPHER_CTX_new();
	if (g->ctx == NULL ||
		EVP_CipherInit_ex2(g->ctx, EVP_aes_256_gcm(), NULL, NULL, 1, NULL) != 1)
	{
		ossl_fail(err, DERR_CRYPTO, "could not initialise aes-256-gcm");
		dc_gcm_free(g);
		return NULL;
	}
	memcpy(g->key, key, DC_AES256_KEY_LEN);
	return g;
}

/* Another context with the same key, for another thread. */
DcGcm *
dc_gcm_dup(const DcGcm *g, DErr *err)
{
	return dc_gcm_new(g->key, err);
}

/* Scrub the key copy; EVP_CIPHER_CTX_free cleanses OpenSSL's key schedule. */
void
dc_gcm_free(DcGcm *g)
{
	if (g == NULL)
		return;
	EVP_CIPHER_CTX_free(g->ctx);
	explicit_bzero(g->key, sizeof(g->key));
	free(g);
}

/* Key + nonce + direction for one message (the IV length default is 12). */
static bool
gcm_start(DcGcm *g, const uint8_t nonce[DC_GCM_NONCE_LEN], int enc,
		  const uint8_t *aad, size_t aad_len, DErr *err)
{
	int			outl;

	if (EVP_CipherInit_ex2(g->ctx, NULL, g->key, nonce, enc, NULL) != 1)
		return ossl_fail(err, DERR_CRYPTO, "could not start an aes-256-gcm operation");
	while (aad_len > 0)
	{
		int			n = aad_len > DC_OSSL_SLICE ? DC_OSSL_SLICE : (int) aad_len;

		if (EVP_CipherUpdate(g->ctx, NULL, &outl, aad, n) != 1)
			return ossl_fail(err, DERR_CRYPTO, "aes-256-gcm could not absorb the associated data");
		aad += n;
		aad_len -= (size_t) n;
	}
	return true;
}

/* Stream the payload in int-sized slices; GCM output length equals input. */
static bool
gcm_body(DcGcm *g, const uint8_t *in, size_t len, uint8_t *out, DErr *err)
{
	while (len > 0)
	{
		int			n = len > DC_OSSL_SLICE ? DC_OSSL_SLICE : (int) len;
		int			outl = 0;

		if (EVP_CipherUpdate(g->ctx, out, &outl, in, n) != 1 || outl != n)
			return ossl_fail(err, DERR_CRYPTO, "aes-256-gcm update failed");
		in += n;
		out += n;
		len -= (size_t) n;
	}
	return true;
}

/* Encrypt one message under a nonce the caller guarantees is unique for the key. */
bool
dc_gcm_encrypt(DcGcm *g, const uint8_t nonce[DC_GCM_NONCE_LEN],
			   const uint8_t *aad, size_t aad_len,
			   const uint8_t *in, size_t len,
			   uint8_t *out, uint8_t tag[DC_GCM_TAG_LEN], DErr *err)
{
	int			outl = 0;

	if (!gcm_start(g, nonce, 1, aad, aad_len, err) ||
		!gcm_body(g, in, len, out, err))
		return false;
	if (EVP_CipherFinal_ex(g->ctx, out + len, &outl) != 1 || outl != 0)
		return ossl_fail(err, DERR_CRYPTO, "aes-256-gcm finalisation failed");
	if (EVP_CIPHER_CTX_ctrl(g->ctx, EVP_CTRL_GCM_GET_TAG, DC_GCM_TAG_LEN, tag) != 1)
		return ossl_fail(err, DERR_CRYPTO, "could not read the aes-256-gcm tag");
	return true;
}

/*
 * Decrypt and verify.  A tag mismatch is tampering (or the wrong key), not a
 * library failure, so it is DERR_INTEGRITY; the unauthenticated plaintext is
 * scrubbed so no caller can use it by mistake.
 */
bool
dc_gcm_decrypt(DcGcm *g, const uint8_t nonce[DC_GCM_NONCE_LEN],
			   const uint8_t *aad, size_t aad_len,
			   const uint8_t *in, size_t len,
			   const uint8_t tag[DC_GCM_TAG_LEN], uint8_t *out, DErr *err)
{
	int			outl = 0;
	uint8_t		tagbuf[DC_GCM_TAG_LEN];

	if (!gcm_start(g, nonce, 0, aad, aad_len, err) ||
		!gcm_body(g, in, len, out, err))
	{
		if (len > 0)
			explicit_bzero(out, len);
		return false;
	}
	memcpy(tagbuf, tag, sizeof(tagbuf));	/* the ctrl takes a non-const pointer */
	if (EVP_CIPHER_CTX_ctrl(g->ctx, EVP_CTRL_GCM_SET_TAG, DC_GCM_TAG_LEN, tagbuf) != 1)
	{
		if (len > 0)
			explicit_bzero(out, len);
		return ossl_fail(err, DERR_CRYPTO, "could not set the aes-256-gcm tag");
	}
	if (EVP_CipherFinal_ex(g->ctx, out + len, &outl) != 1)
	{
		if (len > 0)
			explicit_bzero(out, len);
		ERR_clear_error();
		derr_set(err, DERR_INTEGRITY, "aes-256-gcm authentication tag does not verify");
		derr_detail(err, "The ciphertext, its associated data or its tag was altered, or it was encrypted under another key.");
		return false;
	}
	return true;
}

/* ------------------------------------------------------------------ */
/* CSPRNG                                                              */
/* ------------------------------------------------------------------ */

/* OpenSSL's DRBG, seeded from getrandom(); RAND_bytes takes an int length. */
bool
dc_random(uint8_t *buf, size_t len, DErr *err)
{
	while (len > 0)
	{
		int			n = len > DC_OSSL_SLICE ? DC_OSSL_SLICE : (int) len;

		if (RAND_bytes(buf, n) != 1)
			return ossl_fail(err, DERR_CRYPTO, "the random number generator failed");
		buf += n;
		len -= (size_t) n;
	}
	return true;
}

/* ------------------------------------------------------------------ */
/* secp256k1                                                           */
/* ------------------------------------------------------------------ */

static secp256k1_context *secp_ctx;
static pthread_once_t secp_once = PTHREAD_ONCE_INIT;

/*
 * libsecp256k1's default illegal-argument handler calls abort().  We check
 * arguments before every call, so this should never fire; if it does, the
 * API call returns failure and we report DERR_CRYPTO instead of crashing
 * the backend.
 */
static void
secp_illegal_cb(const char *message, void *data)
{
	(void) message;
	(void) data;
}

/*
 * Build the one shared context.  Preallocated (our malloc, checked) because
 * secp256k1_context_create() aborts when allocation fails.  Randomised with
 * 32 fresh bytes as libsecp256k1 recommends against side-channel leakage; a
 * context we could not randomise is not used.
 */
static void
secp_init_once(void)
{
	size_t		sz = secp256k1_context_preallocated_size(SECP256K1_CONTEXT_NONE);
	void	   *mem = malloc(sz);
	secp256k1_context *ctx;
	uint8_t		seed[32];

	if (mem == NULL)
		return;
	ctx = secp256k1_context_preallocated_create(mem, SECP256K1_CONTEXT_NONE);
	if (ctx == NULL)
	{
		free(mem);
		return;
	}
	secp256k1_context_set_illegal_callback(ctx, secp_illegal_cb, NULL);
	if (RAND_bytes(seed, sizeof(seed)) != 1 ||
		!secp256k1_context_randomize(ctx, seed))
	{
		explicit_bzero(seed, sizeof(seed));
		ERR_clear_error();
		secp256k1_context_preallocated_destroy(ctx);
		free(mem);
		return;
	}
	explicit_bzero(seed, sizeof(seed));
	secp_ctx = ctx;
}

/* The lazily created shared context, or NULL with DERR_CRYPTO set. */
static const secp256k1_context *
secp(DErr *err)
{
	if (pthread_once(&secp_once, secp_init_once) != 0 || secp_ctx == NULL)
	{
		derr_set(err, DERR_CRYPTO, "could not create the secp256k1 context");
		derr_detail(err, "Allocating or randomising the libsecp256k1 context failed.");
		return NULL;
	}
	return secp_ctx;
}

/* Keys arrive from hex GUCs and the guest agent: reject 0 and values >= n early. */
bool
dc_seckey_verify(const uint8_t sk[DC_SECKEY_LEN], DErr *err)
{
	const secp256k1_context *ctx = secp(err);

	if (ctx == NULL)
		return false;
	if (!secp256k1_ec_seckey_verify(ctx, sk))
	{
		derr_set(err, DERR_ARG, "invalid secp256k1 private key");
		derr_detail(err, "A private key must be a 32-byte big-endian number between 1 and the curve order minus 1.");
		return false;
	}
	return true;
}

/* Rejection sampling; a random 32-byte value is out of range with p ~ 2^-128. */
bool
dc_seckey_generate(uint8_t sk[DC_SECKEY_LEN], DErr *err)
{
	const secp256k1_context *ctx = secp(err);

	if (ctx == NULL)
		return false;
	for (int attempt = 0; attempt < 16; attempt++)
	{
		if (!dc_random(sk, DC_SECKEY_LEN, err))
			return false;
		if (secp256k1_ec_seckey_verify(ctx, sk))
			return true;
	}
	explicit_bzero(sk, DC_SECKEY_LEN);
	return derr_set(err, DERR_CRYPTO, "could not generate a secp256k1 private key");
}

/* Serialise a parsed key in the one form we store and compare: compressed. */
static bool
pubkey_serialize33(const secp256k1_context *ctx, const secp256k1_pubkey *pk,
				   uint8_t pub[DC_PUBKEY_LEN], DErr *err)
{
	size_t		outlen = DC_PUBKEY_LEN;

	if (!secp256k1_ec_pubkey_serialize(ctx, pub, &outlen, pk, SECP256K1_EC_COMPRESSED) ||
		outlen != DC_PUBKEY_LEN)
		return derr_set(err, DERR_CRYPTO, "could not serialise a secp256k1 public key");
	return true;
}

/* Parse SEC1 compressed (02/03) or uncompressed (04); hybrid 06/07 is refused. */
static bool
pubkey_parse(const secp256k1_context *ctx, const uint8_t *in, size_t in_len,
			 secp256k1_pubkey *pk, DErr *err)
{
	bool		shape_ok = (in != NULL) &&
		((in_len == DC_PUBKEY_LEN && (in[0] == 0x02 || in[0] == 0x03)) ||
		 (in_len == DC_PUBKEY_UNCOMP_LEN && in[0] == 0x04));

	if (!shape_ok || !secp256k1_ec_pubkey_parse(ctx, pk, in, in_len))
	{
		derr_set(err, DERR_ARG, "invalid secp256k1 public key");
		if (!shape_ok)
			derr_detail(err, "A public key must be 33 bytes starting with 02 or 03, or 65 bytes starting with 04; got %zu bytes.",
						in_len);
		else
			derr_detail(err, "The %zu bytes given are not a point on the secp256k1 curve.", in_len);
		return false;
	}
	return true;
}

/* Public half of a private key, compressed. */
bool
dc_pubkey_from_seckey(const uint8_t sk[DC_SECKEY_LEN], uint8_t pub[DC_PUBKEY_LEN], DErr *err)
{
	const secp256k1_context *ctx = secp(err);
	secp256k1_pubkey pk;

	if (ctx == NULL || !dc_seckey_verify(sk, err))
		return false;
	if (!secp256k1_ec_pubkey_create(ctx, &pk, sk))
		return derr_set(err, DERR_CRYPTO, "could not compute a secp256k1 public key");
	return pubkey_serialize33(ctx, &pk, pub, err);
}

/* Accept either SEC1 form from users and tools; store and compare compressed only. */
bool
dc_pubkey_normalize(const uint8_t *in, size_t in_len, uint8_t pub[DC_PUBKEY_LEN], DErr *err)
{
	const secp256k1_context *ctx = secp(err);
	secp256k1_pubkey pk;

	if (ctx == NULL || !pubkey_parse(ctx, in, in_len, &pk, err))
		return false;
	return pubkey_serialize33(ctx, &pk, pub, err);
}

/* Ethereum and some tools want the 65-byte form. */
bool
dc_pubkey_uncompress(const uint8_t pub[DC_PUBKEY_LEN], uint8_t out[DC_PUBKEY_UNCOMP_LEN], DErr *err)
{
	const secp256k1_context *ctx = secp(err);
	secp256k1_pubkey pk;
	size_t		outlen = DC_PUBKEY_UNCOMP_LEN;

	if (ctx == NULL || !pubkey_parse(ctx, pub, DC_PUBKEY_LEN, &pk, err))
		return false;
	if (!secp256k1_ec_pubkey_serialize(ctx, out, &outlen, &pk, SECP256K1_EC_UNCOMPRESSED) ||
		outlen != DC_PUBKEY_UNCOMP_LEN)
		return derr_set(err, DERR_CRYPTO, "could not serialise a secp256k1 public key");
	return true;
}

/* owner_id is an Ethereum address: keccak256(X || Y)[12..32]. */
bool
dc_pubkey_to_address(const uint8_t *pub, size_t pub_len, uint8_t addr[DC_ADDR_LEN], DErr *err)
{
	const secp256k1_context *ctx = secp(err);
	secp256k1_pubkey pk;
	uint8_t		full[DC_PUBKEY_UNCOMP_LEN];
	uint8_t		h[DC_KECCAK256_LEN];
	size_t		outlen = sizeof(full);

	if (ctx == NULL || !pubkey_parse(ctx, pub, pub_len, &pk, err))
		return false;
	if (!secp256k1_ec_pubkey_serialize(ctx, full, &outlen, &pk, SECP256K1_EC_UNCOMPRESSED) ||
		outlen != DC_PUBKEY_UNCOMP_LEN)
		return derr_set(err, DERR_CRYPTO, "could not serialise a secp256k1 public key");
	dc_keccak256(full + 1, DC_PUBKEY_UNCOMP_LEN - 1, h);
	memcpy(addr, h + 12, DC_ADDR_LEN);
	return true;
}

/*
 * libsecp256k1's ECDH hashes the shared point by default; the wrap recipe
 * (and dstack's own tooling) uses the bare x-coordinate as HKDF input, so
 * this "hash" function just copies x.
 */
static int
ecdh_copy_x(unsigned char *output, const unsigned char *x32,
			const unsigned char *y32, void *data)
{
	(void) y32;
	(void) data;
	memcpy(output, x32, 32);
	return 1;
}

/* Shared secret for the key wrap: x(sk * pub). */
bool
dc_ecdh_x(const uint8_t sk[DC_SECKEY_LEN], const uint8_t pub[DC_PUBKEY_LEN],
		  uint8_t shared[32], DErr *err)
{
	const secp256k1_context *ctx = secp(err);
	secp256k1_pubkey pk;

	if (ctx == NULL || !dc_seckey_verify(sk, err) ||
		!pubkey_parse(ctx, pub, DC_PUBKEY_LEN, &pk, err))
		return false;
	if (!secp256k1_ecdh(ctx, shared, &pk, sk, ecdh_copy_x, NULL))
	{
		explicit_bzero(shared, 32);
		return derr_set(err, DERR_CRYPTO, "secp256k1 ecdh failed");
	}
	return true;
}

/*
 * Ethereum-style recoverable signature.  libsecp256k1 uses RFC 6979 nonces
 * and always produces low-s, so the result is accepted by Ethereum's
 * ecrecover and by dstack's verifiers.
 */
bool
dc_sign_recoverable(const uint8_t sk[DC_SECKEY_LEN], const uint8_t digest[32],
					uint8_t sig[DC_SIG_LEN], DErr *err)
{
	const secp256k1_context *ctx = secp(err);
	secp256k1_ecdsa_recoverable_signature rs;
	int			recid = -1;

	if (ctx == NULL || !dc_seckey_verify(sk, err))
		return false;
	if (!secp256k1_ecdsa_sign_recoverable(ctx, &rs, digest, sk, NULL, NULL))
		return derr_set(err, DERR_CRYPTO, "secp256k1 signing failed");
	if (!secp256k1_ecdsa_recoverable_signature_serialize_compact(ctx, sig, &recid, &rs) ||
		recid < 0 || recid > 3)
		return derr_set(err, DERR_CRYPTO, "could not serialise a secp256k1 signature");
	sig[64] = (uint8_t) recid;
	return true;
}

/*
 * Recover the signer.  v may be 0/1 (dstack, raw) or 27/28 (Ethereum
 * personal-sign style).  Recovery ids 2 and 3 (r >= n) never occur in
 * practice and no producer we talk to emits them, so they are refused.
 * High-s signatures are accepted: recovery is how we identify the signer, and
 * malleability does not matter when the signature is not used as an id.
 */
bool
dc_recover_pubkey(const uint8_t digest[32], const uint8_t sig[DC_SIG_LEN],
				  uint8_t pub[DC_PUBKEY_LEN], DErr *err)
{
	const secp256k1_context *ctx = secp(err);
	secp256k1_ecdsa_recoverable_signature rs;
	secp256k1_pubkey pk;
	int			v = sig[64];
	int			recid;

	if (ctx == NULL)
		return false;
	if (v == 0 || v == 1)
		recid = v;
	else if (v == 27 || v == 28)
		recid = v - 27;
	else
	{
		derr_set(err, DERR_INTEGRITY, "invalid signature recovery id");
		derr_detail(err, "The last byte of a recoverable signature must be 0, 1, 27 or 28; got %d.", v);
		return false;
	}
	if (!secp256k1_ecdsa_recoverable_signature_parse_compact(ctx, &rs, sig, recid))
	{
		derr_set(err, DERR_INTEGRITY, "malformed secp256k1 signature");
		derr_detail(err, "The r or s value of the signature is not below the curve order.");
		return false;
	}
	if (!secp256k1_ecdsa_recover(ctx, &pk, &rs, digest))
	{
		derr_set(err, DERR_INTEGRITY, "no public key recovers from this signature");
		derr_detail(err, "The signature does not correspond to any secp256k1 key for this message.");
		return false;
	}
	return pubkey_serialize33(ctx, &pk, pub, err);
}

/* ------------------------------------------------------------------ */

/* Tags, digests and keys are compared without a timing side channel. */
bool
dc_equal(const void *a, const void *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0;
}

/* A linear scan: a consortium has a handful of owners (abi.h allows 4096). */
bool
dc_addr_in(const uint8_t (*list)[DC_ADDR_LEN], size_t n, const uint8_t who[DC_ADDR_LEN])
{
	for (size_t i = 0; i < n; i++)
		if (memcmp(list[i], who, DC_ADDR_LEN) == 0)
			return true;
	return false;
}
