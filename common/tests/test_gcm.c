/*
 * test_gcm.c: AES-256-GCM against the published GCM test vectors, plus the
 * failure behaviour pg_dstack relies on (DERR_INTEGRITY, scrubbed output)
 * and reuse of one DcGcm across many messages.
 *
 * Source of the vectors: D. McGrew, J. Viega, "The Galois/Counter Mode of
 * Operation (GCM)", revised submission to NIST (2005), Appendix B "AES Test
 * Vectors", test cases 13, 14, 15 and 16 (256-bit key, 96-bit IV, 128-bit tag).
 */
#include "crypto.h"
#include "hex.h"
#include "unit.h"

typedef struct GcmVector
{
	const char *name;
	const char *key;
	const char *iv;
	const char *pt;
	const char *aad;
	const char *ct;
	const char *tag;
} GcmVector;

#define K_ZERO	"0000000000000000000000000000000000000000000000000000000000000000"
#define K_FEFF	"feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308"
#define IV_ZERO	"000000000000000000000000"
#define IV_CAFE	"cafebabefacedbaddecaf888"
#define P_15 \
	"d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72" \
	"1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255"
#define C_15 \
	"522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa" \
	"8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad"
/* test case 16: the first 60 bytes of P_15 / C_15, with AAD */
#define P_16 \
	"d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72" \
	"1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"
#define C_16 \
	"522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa" \
	"8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"
#define A_16	"feedfacedeadbeeffeedfacedeadbeefabaddad2"

/* McGrew & Viega, GCM spec, Appendix B */
static const GcmVector vectors[] = {
	{"gcm spec test case 13", K_ZERO, IV_ZERO, "", "", "",
	"530f8afbc74536b9a963b4f1c4cb738b"},
	{"gcm spec test case 14", K_ZERO, IV_ZERO, "00000000000000000000000000000000", "",
		"cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919"},
	{"gcm spec test case 15", K_FEFF, IV_CAFE, P_15, "", C_15,
	"b094dac5d93471bdec1a502270e3cc6c"},
	{"gcm spec test case 16", K_FEFF, IV_CAFE, P_16, A_16, C_16,
	"76fc6ece0f4e1768cddf8853bb2d551b"},
};

/* Decode a hex constant of the test itself; a typo is a test bug: abort. */
static size_t
unhex(const char *h, uint8_t *out, size_t cap)
{
	size_t		n = strlen(h) / 2;
	DErr		err;

	derr_clear(&err);
	if (n > cap || (n > 0 && !dhex_decode_exact(h, out, n, "test vector", &err)))
	{
		fprintf(stderr, "bad test constant %s: %s\n", h, err.msg);
		exit(2);
	}
	return n;
}

static bool
all_zero(const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b[i] != 0)
			return false;
	return true;
}

static void
test_vector(const GcmVector *v)
{
	uint8_t		key[32],
				iv[12],
				pt[64],
				aad[32],
				ct[64],
				tag[16],
				out[65],
				back[64],
				badtag[16],
				badct[64],
				badaad[32];
	size_t		ptlen,
				aadlen;
	char		name[160];
	DErr		err;
	DcGcm	   *g;
	bool		ok;

	unhex(v->key, key, sizeof(key));
	unhex(v->iv, iv, sizeof(iv));
	ptlen = unhex(v->pt, pt, sizeof(pt));
	aadlen = unhex(v->aad, aad, sizeof(aad));
	unhex(v->ct, ct, sizeof(ct));

	derr_clear(&err);
	g = dc_gcm_new(key, &err);
	snprintf(name, sizeof(name), "%s: context created", v->name);
	CHECK(g != NULL, name);
	if (g == NULL)
		return;

	/* encrypt: exact ciphertext and tag */
	memset(out, 0xee, sizeof(out));
	ok = dc_gcm_encrypt(g, iv, aadlen ? aad : NULL, aadlen, pt, ptlen, out, tag, &err);
	snprintf(name, sizeof(name), "%s: encrypt succeeds", v->name);
	CHECK(ok, name);
	snprintf(name, sizeof(name), "%s: ciphertext", v->name);
	CHECK_HEX(out, ptlen, v->ct, name);
	snprintf(name, sizeof(name), "%s: tag", v->name);
	CHECK_HEX(tag, 16, v->tag, name);
	snprintf(name, sizeof(name), "%s: encrypt writes no byte past the ciphertext", v->name);
	CHECK(out[ptlen] == 0xee, name);

	/* decrypt round trip from the published ciphertext and tag */
	derr_clear(&err);
	memset(back, 0xee, sizeof(back));
	ok = dc_gcm_decrypt(g, iv, aadlen ? aad : NULL, aadlen, ct, ptlen, tag, back, &err);
	snprintf(name, sizeof(name), "%s: decrypt verifies", v->name);
	CHECK(ok && err.code == DERR_OK, name);
	snprintf(name, sizeof(name), "%s: decrypt gives the plaintext", v->name);
	CHECK(memcmp(back, pt, ptlen) == 0, name);

	/* a flipped tag bit */
	memcpy(badtag, tag, 16);
	badtag[15] ^= 0x01;
	derr_clear(&err);
	memset(back, 0xee, sizeof(back));
	ok = dc_gcm_decrypt(g, iv, aadlen ? aad : NULL, aadlen, ct, ptlen, badtag, back, &err);
	snprintf(name, sizeof(name), "%s: flipped tag bit is DERR_INTEGRITY", v->name);
	CHECK(!ok && err.code == DERR_INTEGRITY, name);
	snprintf(name, sizeof(name), "%s: flipped tag bit scrubs the output", v->name);
	CHECK(all_zero(back, ptlen), name);

	/* a flipped ciphertext bit (only when there is ciphertext) */
	if (ptlen > 0)
	{
		memcpy(badct, ct, ptlen);
		badct[ptlen / 2] ^= 0x80;
		derr_clear(&err);
		memset(back, 0xee, sizeof(back));
		ok = dc_gcm_decrypt(g, iv, aadlen ? aad : NULL, aadlen, badct, ptlen, tag, back, &err);
		snprintf(name, sizeof(name), "%s: flipped ciphertext bit is DERR_INTEGRITY", v->name);
		CHECK(!ok && err.code == DERR_INTEGRITY, name);
		snprintf(name, sizeof(name), "%s: flipped ciphertext bit scrubs the output", v->name);
		CHECK(all_zero(back, ptlen), name);
	}

	/* changed AAD: one bit flipped, or AAD added where there was none */
	if (aadlen > 0)
	{
		memcpy(badaad, aad, aadlen);
		badaad[0] ^= 0x01;
		derr_clear(&err);
		memset(back, 0xee, sizeof(back));
		ok = dc_gcm_decrypt(g, iv, badaad, aadlen, ct, ptlen, tag, back, &err);
		snprintf(name, sizeof(name), "%s: changed AAD is DERR_INTEGRITY", v->name);
		CHECK(!ok && err.code == DERR_INTEGRITY, name);
		snprintf(name, sizeof(name), "%s: changed AAD scrubs the output", v->name);
		CHECK(all_zero(back, ptlen), name);

		derr_clear(&err);
		ok = dc_gcm_decrypt(g, iv, NULL, 0, ct, ptlen, tag, back, &err);
		snprintf(name, sizeof(name), "%s: dropped AAD is DERR_INTEGRITY", v->name);
		CHECK(!ok && err.code == DERR_INTEGRITY, name);
		derr_clear(&err);
		ok = dc_gcm_decrypt(g, iv, aad, aadlen - 1, ct, ptlen, tag, back, &err);
		snprintf(name, sizeof(name), "%s: truncated AAD is DERR_INTEGRITY", v->name);
		CHECK(!ok && err.code == DERR_INTEGRITY, name);
	}
	else
	{
		static const uint8_t extra[1] = {0};

		derr_clear(&err);
		ok = dc_gcm_decrypt(g, iv, extra, 1, ct, ptlen, tag, back, &err);
		snprintf(name, sizeof(name), "%s: AAD added is DERR_INTEGRITY", v->name);
		CHECK(!ok && err.code == DERR_INTEGRITY, name);
	}

	/* another nonce */
	{
		uint8_t		iv2[12];

		memcpy(iv2, iv, 12);
		iv2[11] ^= 0x01;
		derr_clear(&err);
		ok = dc_gcm_decrypt(g, iv2, aadlen ? aad : NULL, aadlen, ct, ptlen, tag, back, &err);
		snprintf(name, sizeof(name), "%s: other nonce is DERR_INTEGRITY", v->name);
		CHECK(!ok && err.code == DERR_INTEGRITY, name);
	}

	/* after failures the same context still decrypts correctly */
	derr_clear(&err);
	ok = dc_gcm_decrypt(g, iv, aadlen ? aad : NULL, aadlen, ct, ptlen, tag, back, &err);
	snprintf(name, sizeof(name), "%s: context usable again after a failed decrypt", v->name);
	CHECK(ok && memcmp(back, pt, ptlen) == 0, name);

	dc_gcm_free(g);
}

/* Wrong key entirely: DERR_INTEGRITY, output scrubbed. */
static void
test_wrong_key(void)
{
	uint8_t		key[32],
				iv[12],
				pt[64],
				tag[16],
				ct[64],
				back[64];
	DErr		err;
	DcGcm	   *g,
			   *g2;
	bool		ok;

	unhex(K_FEFF, key, 32);
	unhex(IV_CAFE, iv, 12);
	unhex(P_15, pt, 64);
	derr_clear(&err);
	g = dc_gcm_new(key, &err);
	key[0] ^= 1;
	g2 = dc_gcm_new(key, &err);
	ok = g && g2 && dc_gcm_encrypt(g, iv, NULL, 0, pt, 64, ct, tag, &err);
	CHECK(ok, "wrong key: encrypt under the right key");
	memset(back, 0xee, sizeof(back));
	derr_clear(&err);
	ok = dc_gcm_decrypt(g2, iv, NULL, 0, ct, 64, tag, back, &err);
	CHECK(!ok && err.code == DERR_INTEGRITY, "wrong key: decrypt is DERR_INTEGRITY");
	CHECK(all_zero(back, 64), "wrong key: output scrubbed");
	CHECK(err.msg[0] != '\0' && err.detail[0] != '\0', "wrong key: message and detail are set");
	dc_gcm_free(g);
	dc_gcm_free(g2);
	dc_gcm_free(NULL);
	CHECK(1, "dc_gcm_free(NULL) is a no-op");
}

/*
 * One DcGcm across many messages of varying length, nonce and AAD,
 * interleaving encrypts, failed and good decrypts: every message must equal
 * what a fresh context gives, so no state leaks from one message to the next.
 */
static void
test_reuse(void)
{
	uint8_t		key[32];
	DErr		err;
	DcGcm	   *g,
			   *fresh;
	uint8_t    *pt = malloc(5000),
			   *ct = malloc(5000),
			   *ct2 = malloc(5000),
			   *back = malloc(5000);
	uint8_t		aad[40];
	bool		enc_ok = true,
				same_ok = true,
				dec_ok = true,
				bad_ok = true;
	int			nmsg = 0;

	unhex(K_FEFF, key, 32);
	derr_clear(&err);
	g = dc_gcm_new(key, &err);
	CHECK(g != NULL, "reuse: context created");
	for (size_t i = 0; i < 5000; i++)
		pt[i] = (uint8_t) (i * 7 + 3);
	for (size_t i = 0; i < sizeof(aad); i++)
		aad[i] = (uint8_t) (0xa0 + i);

	for (size_t len = 0; len < 5000; len += 1 + len / 3)
	{
		uint8_t		nonce[12] = {0};
		uint8_t		tag[16],
					tag2[16],
					badtag[16];
		size_t		alen = len % sizeof(aad);

		nonce[0] = (uint8_t) nmsg;
		nonce[11] = (uint8_t) (len & 0xff);
		enc_ok = enc_ok && dc_gcm_encrypt(g, nonce, aad, alen, pt, len, ct, tag, &err);

		/* the same message through a fresh context */
		fresh = dc_gcm_new(key, &err);
		same_ok = same_ok && fresh != NULL &&
			dc_gcm_encrypt(fresh, nonce, aad, alen, pt, len, ct2, tag2, &err) &&
			memcmp(ct, ct2, len) == 0 && memcmp(tag, tag2, 16) == 0;
		dc_gcm_free(fresh);

		/* a failing decrypt on the shared context, then a good one */
		memcpy(badtag, tag, 16);
		badtag[nmsg % 16] ^= (uint8_t) (1 << (nmsg % 8));
		derr_clear(&err);
		bad_ok = bad_ok && !dc_gcm_decrypt(g, nonce, aad, alen, ct, len, badtag, back, &err) &&
			err.code == DERR_INTEGRITY && all_zero(back, len);
		derr_clear(&err);
		dec_ok = dec_ok && dc_gcm_decrypt(g, nonce, aad, alen, ct, len, tag, back, &err) &&
			memcmp(back, pt, len) == 0;
		nmsg++;
	}
	CHECK(nmsg > 20, "reuse: many messages exercised");
	CHECK(enc_ok, "reuse: every encrypt on the shared context succeeds");
	CHECK(same_ok, "reuse: shared context output == fresh context output for every message");
	CHECK(bad_ok, "reuse: every tampered tag is DERR_INTEGRITY with scrubbed output");
	CHECK(dec_ok, "reuse: every message decrypts after a failed decrypt on the same context");

	/* the published vector still comes out after all that */
	{
		uint8_t		iv[12],
					tag[16],
					out[64],
					p[64];

		unhex(IV_CAFE, iv, 12);
		unhex(P_15, p, 64);
		CHECK(dc_gcm_encrypt(g, iv, NULL, 0, p, 64, out, tag, &err), "reuse: test case 15 encrypt after reuse");
		CHECK_HEX(out, 64, C_15, "reuse: test case 15 ciphertext after reuse");
		CHECK_HEX(tag, 16, "b094dac5d93471bdec1a502270e3cc6c", "reuse: test case 15 tag after reuse");
	}
	dc_gcm_free(g);
	free(pt);
	free(ct);
	free(ct2);
	free(back);
}

/* Test case 13 again with NULL buffers: an empty message needs none. */
static void
test_empty_null(void)
{
	uint8_t		key[32] = {0},
				iv[12] = {0},
				tag[16];
	DErr		err;
	DcGcm	   *g;

	derr_clear(&err);
	g = dc_gcm_new(key, &err);
	CHECK(g != NULL && dc_gcm_encrypt(g, iv, NULL, 0, NULL, 0, NULL, tag, &err),
		  "gcm spec test case 13 with NULL in/out encrypts");
	CHECK_HEX(tag, 16, "530f8afbc74536b9a963b4f1c4cb738b", "gcm spec test case 13 tag with NULL in/out");
	CHECK(dc_gcm_decrypt(g, iv, NULL, 0, NULL, 0, tag, NULL, &err),
		  "gcm spec test case 13 with NULL in/out decrypts");
	tag[0] ^= 1;
	derr_clear(&err);
	CHECK(!dc_gcm_decrypt(g, iv, NULL, 0, NULL, 0, tag, NULL, &err) && err.code == DERR_INTEGRITY,
		  "gcm empty message with a flipped tag bit is DERR_INTEGRITY");
	dc_gcm_free(g);
}

int
main(void)
{
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++)
		test_vector(&vectors[i]);
	test_empty_null();
	test_wrong_key();
	test_reuse();
	UNIT_DONE();
}
