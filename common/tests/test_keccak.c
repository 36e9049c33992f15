/*
 * test_keccak.c: Ethereum keccak-256 (keccak.c) against published values and
 * an independent implementation, at every rate boundary.
 *
 * Sources
 *   - "", "abc" and "The quick brown fox jumps over the lazy dog": the
 *     Keccak-256 values published in the emn178/js-sha3 test suite
 *     (KECCAK256 "" and the fox) and the Zig standard library's
 *     crypto.hash.Keccak256 tests ("" and "abc"); keccak256("") is also
 *     Ethereum's well-known empty-code hash.  Re-checked with @noble/hashes.
 *   - EIP-155 (ethereum/EIPs, EIPS/eip-155.md, "Example"): the signing data
 *     0xec09...018080 hashes to the published signing hash 0xdaf5a7...8e53.
 *   - Function selectors: transfer(address,uint256) = 0xa9059cbb is the
 *     ERC-20 selector (EIP-20, Solidity ABI spec); 0x1e079198 is the
 *     interface id dstack's IAppAuth declares for isAppAllowed
 *     (Dstack-TEE/dstack kms/auth-eth contracts).
 *   - Rate-boundary inputs (135, 136, 137, 272 bytes) and the 1 MiB input
 *     have no published value; they were computed with two independent
 *     JavaScript implementations that agree: @noble/hashes 2.4.0
 *     keccak_256 and js-sha3 keccak256 (both in /work/main/node_modules):
 *
 *       import { keccak_256 } from '@noble/hashes/sha3.js';
 *       import { bytesToHex } from '@noble/hashes/utils.js';
 *       const seq = (n) => Uint8Array.from({length: n}, (_, i) => i & 0xff);
 *       for (const n of [135, 136, 137, 272]) console.log(n, bytesToHex(keccak_256(seq(n))));
 *       const mb = Uint8Array.from({length: 1 << 20}, (_, i) => (i * 31 + 7) & 0xff);
 *       console.log(bytesToHex(keccak_256(mb)));
 */
#include "crypto.h"
#include "hex.h"
#include "unit.h"

/* @noble/hashes keccak_256 and js-sha3 keccak256 of bytes 0,1,2,...,n-1 */
#define K_SEQ_135	"cbdfd9dee5faad3818d6b06f95a219fd290b0e1706f6a82e5a595b9ce9faca62"
#define K_SEQ_136	"7ce759f1ab7f9ce437719970c26b0a66ff11fe3e38e17df89cf5d29c7d7f807e"
#define K_SEQ_137	"ac73d4fae68b8453f764007c1a20ce95994187861f0c3227a3a8e99a73a3b1db"
#define K_SEQ_272	"fdf2ec49e749960d3c8521a0219af8d03e30e2b3bf19bd16150ee0eaf133d66e"
/* same two implementations, 1 MiB of (i * 31 + 7) & 0xff */
#define K_1MIB		"83fbd18d9728845e498651fec13794b23c201f437c9efff4717306cec4305ed7"

static void
seq(uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t) i;
}

static void
test_published(void)
{
	uint8_t		h[32];
	const char *fox = "The quick brown fox jumps over the lazy dog";

	/* js-sha3 test suite, Zig std Keccak256 tests (see the header) */
	dc_keccak256("", 0, h);
	CHECK_HEX(h, 32, "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470",
			  "keccak256 of the empty string");
	dc_keccak256(NULL, 0, h);
	CHECK_HEX(h, 32, "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470",
			  "keccak256 of (NULL, 0)");
	dc_keccak256("abc", 3, h);
	CHECK_HEX(h, 32, "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45",
			  "keccak256 of \"abc\"");
	dc_keccak256(fox, strlen(fox), h);
	CHECK_HEX(h, 32, "4d741b6f1eb29cb2a9b9911c82f56fa8d73b04959d3d9d222895df6c0b28aa15",
			  "keccak256 of \"The quick brown fox jumps over the lazy dog\"");
	/* not SHA3-256: FIPS 202 SHA3-256("") is a7ffc6f8...434a; we must differ */
	dc_keccak256("", 0, h);
	CHECK(h[0] != 0xa7 || h[1] != 0xff, "keccak256 uses the original 0x01 padding, not SHA3's 0x06");

	/* EIP-155 "Example": signing data -> signing hash */
	{
		uint8_t		sd[45];
		DErr		err;

		derr_clear(&err);
		CHECK(dhex_decode_exact("ec098504a817c800825208943535353535353535353535353535353535353535"
								"880de0b6b3a764000080018080", sd, sizeof(sd), "eip-155", &err),
			  "EIP-155 signing data decodes");
		dc_keccak256(sd, sizeof(sd), h);
		CHECK_HEX(h, 32, "daf5a779ae972f972197303d7b574746c7ef83eadac0f2791ad23db92e4c8e53",
				  "keccak256 of the EIP-155 example signing data = published signing hash");
	}
}

static void
test_boundaries(void)
{
	uint8_t		buf[272];
	uint8_t		h[32];

	/* rate = 136 bytes: one short, exact, one over, two full blocks */
	seq(buf, sizeof(buf));
	dc_keccak256(buf, 135, h);
	CHECK_HEX(h, 32, K_SEQ_135, "keccak256 135 bytes (pad byte 0x81 in one byte)");
	dc_keccak256(buf, 136, h);
	CHECK_HEX(h, 32, K_SEQ_136, "keccak256 136 bytes (exactly one rate block)");
	dc_keccak256(buf, 137, h);
	CHECK_HEX(h, 32, K_SEQ_137, "keccak256 137 bytes (one block + 1)");
	dc_keccak256(buf, 272, h);
	CHECK_HEX(h, 32, K_SEQ_272, "keccak256 272 bytes (exactly two rate blocks)");

	/* the same lengths split into parts at the block edge and elsewhere */
	{
		static const size_t lens[] = {135, 136, 137, 272};
		static const char *const want[] = {K_SEQ_135, K_SEQ_136, K_SEQ_137, K_SEQ_272};
		bool		all = true;

		for (size_t k = 0; k < 4; k++)
		{
			size_t		n = lens[k];
			uint8_t		one[32];

			dc_keccak256(buf, n, one);
			for (size_t cut = 0; cut <= n; cut++)
			{
				DcBuf		p[3] = {{buf, cut / 2}, {buf + cut / 2, cut - cut / 2}, {buf + cut, n - cut}};
				uint8_t		got[32];

				dc_keccak256_parts(p, 3, got);
				all = all && memcmp(got, one, 32) == 0;
			}
			{
				char		hx[65];

				dhex_encode(one, 32, hx);
				all = all && strcmp(hx, want[k]) == 0;
			}
		}
		CHECK(all, "keccak256_parts == one-shot for every 3-way split of 135/136/137/272 bytes");
	}
}

static void
test_large(void)
{
	size_t		n = 1 << 20;
	uint8_t    *mb = malloc(n);
	uint8_t		h[32],
				h2[32];

	for (size_t i = 0; i < n; i++)
		mb[i] = (uint8_t) (i * 31 + 7);
	dc_keccak256(mb, n, h);
	CHECK_HEX(h, 32, K_1MIB, "keccak256 of 1 MiB");

	/* parts: odd-sized pieces, zero-length parts, NULL data with len 0 */
	{
		DcBuf		p[6] = {{mb, 1}, {NULL, 0}, {mb + 1, 135}, {mb + 136, 99991},
		{mb + 136 + 99991, 0}, {mb + 136 + 99991, n - 136 - 99991}};

		dc_keccak256_parts(p, 6, h2);
		CHECK(memcmp(h, h2, 32) == 0, "keccak256_parts of 1 MiB in odd pieces == one-shot");
	}
	free(mb);
}

static void
test_parts(void)
{
	uint8_t		h[32],
				h2[32];
	const char *fox = "The quick brown fox jumps over the lazy dog";

	/* "abc" as three parts */
	{
		DcBuf		p[3] = {{"a", 1}, {"b", 1}, {"c", 1}};

		dc_keccak256_parts(p, 3, h);
		CHECK_HEX(h, 32, "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45",
				  "keccak256_parts(\"a\",\"b\",\"c\") == keccak256(\"abc\")");
	}
	/* zero parts is the empty string */
	dc_keccak256_parts(NULL, 0, h);
	CHECK_HEX(h, 32, "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470",
			  "keccak256_parts with no parts == keccak256(\"\")");
	/* the fox, every 2-way split */
	{
		bool		all = true;
		size_t		n = strlen(fox);

		dc_keccak256(fox, n, h);
		for (size_t cut = 0; cut <= n; cut++)
		{
			DcBuf		p[2] = {{fox, cut}, {fox + cut, n - cut}};

			dc_keccak256_parts(p, 2, h2);
			all = all && memcmp(h, h2, 32) == 0;
		}
		CHECK(all, "keccak256_parts == one-shot for every 2-way split of the fox");
	}
}

/* Ethereum ABI: a selector is the first 4 bytes of keccak256(signature). */
static void
test_selectors(void)
{
	uint8_t		h[32];
	const char *transfer = "transfer(address,uint256)";
	const char *allowed = "isAppAllowed((address,bytes32,address,bytes32,bytes32,bytes32,bytes32,string,string[]))";

	/* ERC-20 transfer selector (EIP-20; Solidity ABI specification example) */
	dc_keccak256(transfer, strlen(transfer), h);
	CHECK_HEX(h, 4, "a9059cbb", "selector transfer(address,uint256) = 0xa9059cbb");
	/* dstack IAppAuth: interface id of the single-function interface = its selector */
	dc_keccak256(allowed, strlen(allowed), h);
	CHECK_HEX(h, 4, "1e079198", "selector IAppAuth.isAppAllowed(AppBootInfo) = 0x1e079198");
	/* ERC-165 supportsInterface(bytes4) = 0x01ffc9a7 (EIP-165 specification) */
	dc_keccak256("supportsInterface(bytes4)", 25, h);
	CHECK_HEX(h, 4, "01ffc9a7", "selector supportsInterface(bytes4) = 0x01ffc9a7 (EIP-165)");
	/* ERC-20 Transfer event topic (EIP-20; seen in every token transfer log) */
	dc_keccak256("Transfer(address,address,uint256)", 33, h);
	CHECK_HEX(h, 32, "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef",
			  "event topic Transfer(address,address,uint256)");
}

int
main(void)
{
	test_published();
	test_boundaries();
	test_large();
	test_parts();
	test_selectors();
	UNIT_DONE();
}
