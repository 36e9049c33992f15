/*
 * test_sha256_hkdf.c: SHA-256 (one-shot and streaming) and HKDF-SHA256
 * against published test vectors.
 *
 * Sources
 *   - FIPS 180-2, "Secure Hash Standard", Appendix B: B.1 "abc", B.2 the
 *     448-bit message, B.3 one million 'a'.
 *   - SHA-256 of the empty string: NIST CAVP SHAVS SHA256ShortMsg.rsp, Len = 0.
 *   - RFC 5869 "HMAC-based Extract-and-Expand Key Derivation Function",
 *     Appendix A, test cases 1, 2 and 3 (SHA-256).
 */
#include "crypto.h"
#include "hex.h"
#include "unit.h"

/* FIPS 180-2 B.1 */
#define SHA_ABC		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
/* FIPS 180-2 B.2 */
#define MSG_448		"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
#define SHA_448		"248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
/* FIPS 180-2 B.3 */
#define SHA_MILLION_A "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
/* NIST CAVP SHA256ShortMsg.rsp, Len = 0 */
#define SHA_EMPTY	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* Streaming hash of in[0..len) fed in pieces of the given sizes (cycled). */
static bool
sha_stream(const uint8_t *in, size_t len, const size_t *steps, size_t nsteps,
		   uint8_t out[DC_SHA256_LEN])
{
	DErr		err;
	DcSha256   *ctx;
	size_t		off = 0,
				k = 0;
	bool		ok = true;

	derr_clear(&err);
	ctx = dc_sha256_new(&err);
	if (ctx == NULL)
		return false;
	while (off < len && ok)
	{
		size_t		n = steps[k++ % nsteps];

		if (n > len - off)
			n = len - off;
		ok = dc_sha256_update(ctx, in + off, n, &err);
		off += n;
	}
	ok = ok && dc_sha256_final(ctx, out, &err);
	dc_sha256_free(ctx);
	return ok;
}

static void
test_sha256(void)
{
	uint8_t		h[DC_SHA256_LEN];
	DErr		err;
	DcSha256   *ctx;

	/* one-shot */
	dc_sha256("abc", 3, h);
	CHECK_HEX(h, 32, SHA_ABC, "sha256 FIPS 180-2 B.1 \"abc\"");
	dc_sha256(MSG_448, strlen(MSG_448), h);
	CHECK_HEX(h, 32, SHA_448, "sha256 FIPS 180-2 B.2 448-bit message");
	dc_sha256("", 0, h);
	CHECK_HEX(h, 32, SHA_EMPTY, "sha256 empty string (CAVP ShortMsg Len=0)");

	/* one million 'a' through the incremental API, 1000 x 1000 bytes */
	{
		char		block[1000];
		bool		ok = true;

		memset(block, 'a', sizeof(block));
		derr_clear(&err);
		ctx = dc_sha256_new(&err);
		CHECK(ctx != NULL, "sha256 streaming context allocates");
		for (int i = 0; i < 1000 && ok; i++)
			ok = dc_sha256_update(ctx, block, sizeof(block), &err);
		ok = ok && dc_sha256_final(ctx, h, &err);
		dc_sha256_free(ctx);
		CHECK(ok, "sha256 streaming one million 'a' succeeds");
		CHECK_HEX(h, 32, SHA_MILLION_A, "sha256 FIPS 180-2 B.3 one million 'a' (incremental)");

		/* and the same million one-shot */
		{
			char	   *m = malloc(1000000);

			memset(m, 'a', 1000000);
			dc_sha256(m, 1000000, h);
			CHECK_HEX(h, 32, SHA_MILLION_A, "sha256 FIPS 180-2 B.3 one million 'a' (one-shot)");
			free(m);
		}
	}

	/* streaming: empty input and zero-length updates */
	{
		bool		ok;

		derr_clear(&err);
		ctx = dc_sha256_new(&err);
		ok = ctx != NULL && dc_sha256_update(ctx, "", 0, &err) &&
			dc_sha256_final(ctx, h, &err);
		dc_sha256_free(ctx);
		CHECK(ok, "sha256 streaming with only a zero-length update succeeds");
		CHECK_HEX(h, 32, SHA_EMPTY, "sha256 streaming empty input");
	}
	dc_sha256_free(NULL);		/* NULL-safe */
	CHECK(1, "dc_sha256_free(NULL) is a no-op");

	/* streaming equals one-shot across odd split points and block edges */
	{
		size_t		len = 4099;
		uint8_t    *buf = malloc(len);
		uint8_t		one[DC_SHA256_LEN];
		static const size_t s1[] = {1};
		static const size_t s2[] = {63, 1, 65, 0, 127};
		static const size_t s3[] = {3, 5, 7, 11, 13, 17, 19, 23};
		static const size_t s4[] = {64};
		static const size_t s5[] = {55, 9};
		static const size_t s6[] = {4098, 1};
		bool		all = true;

		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t) (i * 131 + 17);
		/* every prefix length around the 55/56/64-byte padding boundaries */
		for (size_t n = 0; n <= 130; n++)
		{
			uint8_t		st[DC_SHA256_LEN];
			static const size_t s7[] = {1, 2};

			dc_sha256(buf, n, one);
			all = all && sha_stream(buf, n, s7, 2, st) && memcmp(st, one, 32) == 0;
		}
		CHECK(all, "sha256 streaming == one-shot for every length 0..130 (steps 1,2)");

		dc_sha256(buf, len, one);
#define STREAM_EQ(steps, name) \
		do { \
			uint8_t st[DC_SHA256_LEN]; \
			bool ok = sha_stream(buf, len, steps, sizeof(steps) / sizeof(steps[0]), st); \
			CHECK(ok && memcmp(st, one, 32) == 0, name); \
		} while (0)
		STREAM_EQ(s1, "sha256 streaming == one-shot, 1-byte updates");
		STREAM_EQ(s2, "sha256 streaming == one-shot, splits 63/1/65/0/127");
		STREAM_EQ(s3, "sha256 streaming == one-shot, prime-sized splits");
		STREAM_EQ(s4, "sha256 streaming == one-shot, block-sized splits");
		STREAM_EQ(s5, "sha256 streaming == one-shot, 55/9 splits (padding edge)");
		STREAM_EQ(s6, "sha256 streaming == one-shot, 4098 + 1");
#undef STREAM_EQ
		free(buf);
	}
}

/* Fill b[0..n) with start, start+1, ... (RFC 5869 test case inputs). */
static void
ramp(uint8_t *b, size_t n, uint8_t start)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t) (start + i);
}

static void
test_hkdf(void)
{
	uint8_t		ikm[80],
				salt[80],
				info[80],
				okm[255 * 32 + 1];
	DErr		err;
	bool		ok;

	/* RFC 5869 A.1 test case 1: basic test case with SHA-256 */
	memset(ikm, 0x0b, 22);
	ramp(salt, 13, 0x00);
	ramp(info, 10, 0xf0);
	derr_clear(&err);
	ok = dc_hkdf_sha256(ikm, 22, salt, 13, info, 10, okm, 42, &err);
	CHECK(ok, "hkdf RFC 5869 test case 1 succeeds");
	CHECK_HEX(okm, 42,
			  "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
			  "34007208d5b887185865",
			  "hkdf RFC 5869 A.1 test case 1 OKM");

	/* RFC 5869 A.2 test case 2: longer inputs/outputs */
	ramp(ikm, 80, 0x00);
	ramp(salt, 80, 0x60);
	ramp(info, 80, 0xb0);
	derr_clear(&err);
	ok = dc_hkdf_sha256(ikm, 80, salt, 80, info, 80, okm, 82, &err);
	CHECK(ok, "hkdf RFC 5869 test case 2 succeeds");
	CHECK_HEX(okm, 82,
			  "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
			  "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
			  "cc30c58179ec3e87c14c01d5c1f3434f1d87",
			  "hkdf RFC 5869 A.2 test case 2 OKM");

	/* RFC 5869 A.3 test case 3: zero-length salt and info */
	memset(ikm, 0x0b, 22);
	derr_clear(&err);
	ok = dc_hkdf_sha256(ikm, 22, NULL, 0, NULL, 0, okm, 42, &err);
	CHECK(ok, "hkdf RFC 5869 test case 3 succeeds");
	CHECK_HEX(okm, 42,
			  "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
			  "9d201395faa4b61a96c8",
			  "hkdf RFC 5869 A.3 test case 3 OKM (NULL salt/info)");
	/* an empty-but-non-NULL salt is the same as no salt (RFC 5869 2.2) */
	derr_clear(&err);
	ok = dc_hkdf_sha256(ikm, 22, salt, 0, info, 0, okm, 42, &err);
	CHECK(ok, "hkdf test case 3 with non-NULL zero-length salt/info succeeds");
	CHECK_HEX(okm, 42,
			  "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
			  "9d201395faa4b61a96c8",
			  "hkdf RFC 5869 A.3 test case 3 OKM (zero-length salt/info)");
	/* a salt of HashLen zero bytes is, by RFC 5869 2.2, the same as none */
	{
		uint8_t		zsalt[32] = {0};

		derr_clear(&err);
		ok = dc_hkdf_sha256(ikm, 22, zsalt, 32, NULL, 0, okm, 42, &err);
		CHECK(ok, "hkdf with 32 zero bytes of salt succeeds");
		CHECK_HEX(okm, 42,
				  "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
				  "9d201395faa4b61a96c8",
				  "hkdf test case 3 with explicit 32 zero bytes of salt (RFC 5869 2.2)");
	}

	/* a shorter output is a prefix of the longer one (RFC 5869 2.3) */
	{
		uint8_t		shortokm[16];

		memset(ikm, 0x0b, 22);
		ramp(salt, 13, 0x00);
		ramp(info, 10, 0xf0);
		derr_clear(&err);
		ok = dc_hkdf_sha256(ikm, 22, salt, 13, info, 10, shortokm, 16, &err);
		CHECK(ok, "hkdf 16-byte output succeeds");
		CHECK_HEX(shortokm, 16, "3cb25f25faacd57a90434f64d0362f2a",
				  "hkdf test case 1 truncated to 16 bytes is the OKM prefix");
	}

	/*
	 * info and salt longer than 1024 bytes (some HKDF front ends, e.g. node's
	 * hkdfSync, cap info at 1024).  No published vector; expected values from
	 * @noble/hashes 2.4.0 (node_modules):
	 *   const ikm = new Uint8Array(32); ikm[0] = 1;
	 *   hkdf(sha256, ikm, undefined, new Uint8Array(3000).fill(7), 32)
	 *   hkdf(sha256, ikm, new Uint8Array(3000).fill(9), undefined, 32)
	 */
	{
		uint8_t		k1[32] = {1};
		uint8_t    *big = malloc(3000);

		memset(big, 7, 3000);
		derr_clear(&err);
		ok = dc_hkdf_sha256(k1, 32, NULL, 0, big, 3000, okm, 32, &err);
		CHECK(ok, "hkdf with 3000 bytes of info succeeds");
		CHECK_HEX(okm, 32, "551c106e236c8a0f94184aba5a32150285b8f2ffa1e2731d87c743883505233b",
				  "hkdf 3000-byte info = @noble/hashes");
		memset(big, 9, 3000);
		derr_clear(&err);
		ok = dc_hkdf_sha256(k1, 32, big, 3000, NULL, 0, okm, 32, &err);
		CHECK(ok, "hkdf with 3000 bytes of salt succeeds");
		CHECK_HEX(okm, 32, "7b8ce4749170dc5127adafe2e37e787e05f585fdb68ef172957a7de661e0ad35",
				  "hkdf 3000-byte salt = @noble/hashes");
		free(big);
	}

	/* the maximum length 255*32 works */
	derr_clear(&err);
	ok = dc_hkdf_sha256(ikm, 22, salt, 13, info, 10, okm, 255 * 32, &err);
	CHECK(ok && err.code == DERR_OK, "hkdf maximum output 255*32 bytes succeeds");

	/* invalid lengths */
	derr_clear(&err);
	ok = dc_hkdf_sha256(ikm, 22, salt, 13, info, 10, okm, 0, &err);
	CHECK(!ok && err.code == DERR_ARG, "hkdf output length 0 is DERR_ARG");
	derr_clear(&err);
	ok = dc_hkdf_sha256(ikm, 22, salt, 13, info, 10, okm, 255 * 32 + 1, &err);
	CHECK(!ok && err.code == DERR_ARG, "hkdf output length 255*32+1 is DERR_ARG");
	CHECK(strstr(err.detail, "8161") != NULL, "hkdf length error detail names the length asked for");
	derr_clear(&err);
	ok = dc_hkdf_sha256(ikm, 0, salt, 13, info, 10, okm, 32, &err);
	CHECK(!ok && err.code == DERR_ARG, "hkdf empty input key material is DERR_ARG");
	derr_clear(&err);
	ok = dc_hkdf_sha256(NULL, 22, salt, 13, info, 10, okm, 32, &err);
	CHECK(!ok && err.code == DERR_ARG, "hkdf NULL input key material is DERR_ARG");
	/* a NULL DErr is tolerated on failure */
	CHECK(!dc_hkdf_sha256(ikm, 22, NULL, 0, NULL, 0, okm, 0, NULL),
		  "hkdf invalid length with NULL DErr returns false");
}

int
main(void)
{
	test_sha256();
	test_hkdf();
	UNIT_DONE();
}
