/*
 * test_secp256k1.c: keys, Ethereum addresses, ECDH and recoverable ECDSA
 * (crypto.c over libsecp256k1) against published values.
 *
 * Sources
 *   - Generator G: SEC 2 v2 "Recommended Elliptic Curve Domain Parameters",
 *     section 2.4.1 (secp256k1), compressed and uncompressed forms; the
 *     order n from the same section.
 *   - Multiples k*G (x of 2G, 3G, 6G, 7G): the "secp256k1 test vectors"
 *     point-multiplication table published by Chuck Batson (2014), also
 *     reproduced in many libraries' tests; re-checked with @noble/curves 2.4.0.
 *   - Addresses of private keys 1 and 2: the well-known Ethereum addresses
 *     0x7e5f...5bdf and 0x2b5a...d6cf (e.g. ethers.js / eth-account test suites).
 *   - Private key ac09...ff80 -> 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266:
 *     account 0 of the public "test test ... junk" mnemonic printed by
 *     foundry's anvil and hardhat node at startup.
 *   - EIP-155 (ethereum/EIPs, EIPS/eip-155.md, "Example"): private key
 *     0x4646...46, signing hash 0xdaf5...8e53, v = 37, r = 1851...3846
 *     (0x28ef...6276), s = 4694...6531 (0x67cb...6d83); the sender address
 *     0x9d8a62f656a8d1615c1294fd71e9cfb3e4855a4f is not printed in the EIP
 *     and was derived from the key with @noble/curves + @noble/hashes.
 *   - ECDH between anvil accounts 0 and 1 (no published raw-x vector found
 *     for this pair): computed with @noble/curves 2.4.0,
 *       secp256k1.getSharedSecret(sk0, secp256k1.getPublicKey(sk1, true), true).slice(1)
 */
#include "crypto.h"
#include "hex.h"
#include "unit.h"

/* SEC 2 v2, 2.4.1 */
#define G_COMP		"0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
#define G_UNCOMP	"0479be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798" \
					"483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8"
#define G_X			"79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
#define N_ORDER		"fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"
/* Chuck Batson, secp256k1 test vectors: x of k*G */
#define X_2G		"c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5"
#define X_3G		"f9308a019258c31049344f85f89d5229b531c845836f99b08601f113bce036f9"
#define X_6G		"fff97bd5755eeea420453a14355235d382f6472f8568a18b2f057a1460297556"
#define X_7G		"5cbdf0646e5db4eaa398f365f2ea7a0e3d419b7e0330e39ce92bddedcac4f9bc"
/* anvil / hardhat default accounts 0 and 1 */
#define ANVIL0_SK	"ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
#define ANVIL0_ADDR	"f39fd6e51aad88f6f4ce6ab8827279cfffb92266"
#define ANVIL1_SK	"59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
#define ANVIL1_ADDR	"70997970c51812dc3a010c7d01b50e0d17dc79c8"
/* @noble/curves getSharedSecret(anvil0, anvil1 pub) without the prefix byte */
#define ECDH_A0_A1	"eeaec6bd520b571fcf896dfd9e35148c23c5f11d0d107f3bc3281cbbe0236574"
/* EIP-155 example */
#define EIP155_SK	"4646464646464646464646464646464646464646464646464646464646464646"
#define EIP155_HASH	"daf5a779ae972f972197303d7b574746c7ef83eadac0f2791ad23db92e4c8e53"
#define EIP155_RS	"28ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276" \
					"67cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83"
#define EIP155_ADDR	"9d8a62f656a8d1615c1294fd71e9cfb3e4855a4f"

/* Decode a hex constant of the test itself; a typo is a test bug: abort. */
static void
unhex(const char *h, uint8_t *out, size_t n)
{
	DErr		err;

	derr_clear(&err);
	if (!dhex_decode_exact(h, out, n, "test vector", &err))
	{
		fprintf(stderr, "bad test constant %s: %s\n", h, err.msg);
		exit(2);
	}
}

/* A private key equal to the small integer k. */
static void
small_key(uint8_t sk[32], unsigned k)
{
	memset(sk, 0, 32);
	sk[31] = (uint8_t) k;
}

static void
test_keys_and_addresses(void)
{
	uint8_t		sk[32],
				pub[33],
				full[65],
				back[33],
				addr[20];
	DErr		err;

	/* key 1: the public key is G */
	small_key(sk, 1);
	derr_clear(&err);
	CHECK(dc_pubkey_from_seckey(sk, pub, &err), "pubkey of key 1 computes");
	CHECK_HEX(pub, 33, G_COMP, "pubkey of key 1 = G compressed (SEC 2 2.4.1)");
	CHECK(dc_pubkey_uncompress(pub, full, &err), "uncompress G");
	CHECK_HEX(full, 65, G_UNCOMP, "uncompressed G (SEC 2 2.4.1)");
	CHECK(dc_pubkey_normalize(full, 65, back, &err), "normalize uncompressed G");
	CHECK_HEX(back, 33, G_COMP, "normalize(uncompressed G) = compressed G");
	CHECK(dc_pubkey_normalize(pub, 33, back, &err), "normalize compressed G");
	CHECK_HEX(back, 33, G_COMP, "normalize(compressed G) is the identity");
	CHECK(dc_pubkey_to_address(pub, 33, addr, &err), "address of key 1 computes");
	CHECK_HEX(addr, 20, "7e5f4552091a69125d5dfcb7b8c2659029395bdf", "address of private key 1");
	CHECK(dc_pubkey_to_address(full, 65, addr, &err), "address from the uncompressed key");
	CHECK_HEX(addr, 20, "7e5f4552091a69125d5dfcb7b8c2659029395bdf", "address of key 1 via the 65-byte form");

	/* key 2: 2G, y even */
	small_key(sk, 2);
	CHECK(dc_pubkey_from_seckey(sk, pub, &err), "pubkey of key 2 computes");
	CHECK_HEX(pub, 33, "02" X_2G, "pubkey of key 2 = 2G (Batson vectors)");
	CHECK(dc_pubkey_to_address(pub, 33, addr, &err), "address of key 2 computes");
	CHECK_HEX(addr, 20, "2b5ad5c4795c026514f8317c7a215e218dccd6cf", "address of private key 2");

	/* n-1: -G, same x as G, odd y */
	unhex(N_ORDER, sk, 32);
	sk[31] -= 1;
	CHECK(dc_pubkey_from_seckey(sk, pub, &err), "pubkey of key n-1 computes");
	CHECK_HEX(pub, 33, "03" G_X, "pubkey of key n-1 = -G (prefix 03)");
	{
		uint8_t		neg_full[65];

		CHECK(dc_pubkey_uncompress(pub, neg_full, &err) &&
			  memcmp(neg_full + 1, full + 1, 32) == 0 && memcmp(neg_full + 33, full + 33, 32) != 0,
			  "uncompress(-G) has G's x and the other y");
	}

	/* anvil accounts 0 and 1 */
	unhex(ANVIL0_SK, sk, 32);
	CHECK(dc_pubkey_from_seckey(sk, pub, &err), "pubkey of anvil account 0 computes");
	CHECK(dc_pubkey_to_address(pub, 33, addr, &err), "address of anvil account 0 computes");
	CHECK_HEX(addr, 20, ANVIL0_ADDR, "anvil/hardhat account 0 address 0xf39F...2266");
	/* round trip: compressed -> uncompressed -> compressed */
	CHECK(dc_pubkey_uncompress(pub, full, &err) && full[0] == 0x04, "uncompress anvil 0 pubkey");
	CHECK(dc_pubkey_normalize(full, 65, back, &err) && memcmp(back, pub, 33) == 0,
		  "anvil 0: normalize(uncompress(pub)) == pub");
	unhex(ANVIL1_SK, sk, 32);
	CHECK(dc_pubkey_from_seckey(sk, pub, &err) && dc_pubkey_to_address(pub, 33, addr, &err),
		  "address of anvil account 1 computes");
	CHECK_HEX(addr, 20, ANVIL1_ADDR, "anvil/hardhat account 1 address 0x7099...79C8");

	/* random keys: generated keys verify, their pubkeys round-trip */
	{
		bool		all = true;

		for (int i = 0; i < 50; i++)
		{
			uint8_t		p2[33];

			derr_clear(&err);
			all = all && dc_seckey_generate(sk, &err) && dc_seckey_verify(sk, &err) &&
				dc_pubkey_from_seckey(sk, pub, &err) &&
				dc_pubkey_uncompress(pub, full, &err) &&
				dc_pubkey_normalize(full, 65, p2, &err) && memcmp(p2, pub, 33) == 0;
		}
		CHECK(all, "50 generated keys verify and their pubkeys round-trip");
	}
}

static void
test_invalid_keys(void)
{
	uint8_t		sk[32],
				pub[33],
				full[65],
				out[33],
				addr[20],
				shared[32];
	DErr		err;

	/* private keys outside 1..n-1 */
	memset(sk, 0, 32);
	derr_clear(&err);
	CHECK(!dc_seckey_verify(sk, &err) && err.code == DERR_ARG, "private key 0 is DERR_ARG");
	derr_clear(&err);
	CHECK(!dc_pubkey_from_seckey(sk, pub, &err) && err.code == DERR_ARG, "pubkey of key 0 refused");
	unhex(N_ORDER, sk, 32);
	derr_clear(&err);
	CHECK(!dc_seckey_verify(sk, &err) && err.code == DERR_ARG, "private key n is DERR_ARG");
	sk[31] += 1;
	derr_clear(&err);
	CHECK(!dc_seckey_verify(sk, &err) && err.code == DERR_ARG, "private key n+1 is DERR_ARG");
	memset(sk, 0xff, 32);
	derr_clear(&err);
	CHECK(!dc_seckey_verify(sk, &err) && err.code == DERR_ARG, "private key 2^256-1 is DERR_ARG");
	unhex(N_ORDER, sk, 32);
	sk[31] -= 1;
	derr_clear(&err);
	CHECK(dc_seckey_verify(sk, &err), "private key n-1 is valid");
	small_key(sk, 1);
	CHECK(dc_seckey_verify(sk, &err), "private key 1 is valid");

	/* public keys */
	unhex(G_UNCOMP, full, 65);
	/* x = 0: 0^3 + 7 = 7 is not a square mod p, so no point has x = 0 */
	memset(pub, 0, 33);
	pub[0] = 0x02;
	derr_clear(&err);
	CHECK(!dc_pubkey_normalize(pub, 33, out, &err) && err.code == DERR_ARG,
		  "33 bytes with x = 0 (not on the curve) are DERR_ARG");
	/* x = 5: 5^3 + 7 = 132 is not a square mod p either */
	pub[32] = 5;
	derr_clear(&err);
	CHECK(!dc_pubkey_normalize(pub, 33, out, &err) && err.code == DERR_ARG,
		  "33 bytes with x = 5 (not on the curve) are DERR_ARG");
	/* x >= p */
	memset(pub + 1, 0xff, 32);
	derr_clear(&err);
	CHECK(!dc_pubkey_normalize(pub, 33, out, &err) && err.code == DERR_ARG, "33 bytes with x >= p are DERR_ARG");
	/* bad prefixes on G's x */
	unhex(G_COMP, pub, 33);
	pub[0] = 0x05;
	derr_clear(&err);
	CHECK(!dc_pubkey_normalize(pub, 33, out, &err) && err.code == DERR_ARG, "prefix 05 is DERR_ARG");
	pub[0] = 0x04;
	derr_clear(&err);
	CHECK(!dc_pubkey_normalize(pub, 33, out, &err) && err.code == DERR_ARG, "33 bytes with prefix 04 are DERR_ARG");
	pub[0] = 0x00;
	derr_clear(&err);
	CHECK(!dc_pubkey_normalize(pub, 33, out, &err) && err.code == DERR_ARG, "prefix 00 is DERR_ARG");
	/* 65 bytes: wrong prefix, hybrid (06/07, which libsecp256k1 would parse), off-curve */
	full[0] = 0x02;
	derr_clear(&err);
	CHECK(!dc_pubkey_normalize(full, 65, out, &err) && err.code == DERR_ARG, "65 bytes with prefix 02 are DERR_ARG");
	full[0] = 0x06;				/* G.y is even: 06 is G's valid hybrid encoding */
	derr_clear(&err);
	CHECK(!dc_pubkey_normalize(full, 65, out, &err) && err.code == DERR_ARG, "hybrid encoding 06 of G is refused");
	full[0] = 0x04;
	full[64] ^= 0x01;
	derr_clear(&err);
	CHECK(!dc_pubkey_normalize(full, 65, out, &err) && err.code == DERR_ARG, "65 bytes with y off by one are DERR_ARG");
	derr_clear(&err);
	CHECK(!dc_pubkey_to_address(full, 65, addr, &err) && err.code == DERR_ARG, "address of an off-curve key refused");
	full[64] ^= 0x01;
	/* wrong lengths */
	derr_clear(&err);
	CHECK(!dc_pubkey_normalize(full, 64, out, &err) && err.code == DERR_ARG, "64 bytes are DERR_ARG");
	derr_clear(&err);
	CHECK(!dc_pubkey_normalize(full, 0, out, &err) && err.code == DERR_ARG, "0 bytes are DERR_ARG");
	derr_clear(&err);
	CHECK(!dc_pubkey_normalize(NULL, 33, out, &err) && err.code == DERR_ARG, "NULL key is DERR_ARG");
	/* uncompress and ECDH refuse invalid points too */
	memset(pub, 0, 33);
	pub[0] = 0x02;
	derr_clear(&err);
	CHECK(!dc_pubkey_uncompress(pub, full, &err) && err.code == DERR_ARG, "uncompress of an off-curve key refused");
	small_key(sk, 1);
	derr_clear(&err);
	CHECK(!dc_ecdh_x(sk, pub, shared, &err) && err.code == DERR_ARG, "ecdh with an off-curve key refused");
	unhex(G_COMP, pub, 33);
	memset(sk, 0, 32);
	derr_clear(&err);
	CHECK(!dc_ecdh_x(sk, pub, shared, &err) && err.code == DERR_ARG, "ecdh with private key 0 refused");
}

static void
test_ecdh(void)
{
	uint8_t		a[32],
				b[32],
				pa[33],
				pb[33],
				s1[32],
				s2[32];
	DErr		err;

	derr_clear(&err);
	/* Batson vectors: x(2 * 3G) = x(3 * 2G) = x(6G) */
	small_key(a, 2);
	small_key(b, 3);
	CHECK(dc_pubkey_from_seckey(a, pa, &err) && dc_pubkey_from_seckey(b, pb, &err), "ecdh: keys 2, 3");
	CHECK_HEX(pb + 1, 32, X_3G, "pubkey of key 3 has x(3G) (Batson vectors)");
	CHECK(dc_ecdh_x(a, pb, s1, &err), "ecdh(2, 3G) computes");
	CHECK_HEX(s1, 32, X_6G, "ecdh(2, 3G) = x(6G) (Batson vectors)");
	CHECK(dc_ecdh_x(b, pa, s2, &err), "ecdh(3, 2G) computes");
	CHECK_HEX(s2, 32, X_6G, "ecdh(3, 2G) = x(6G) (Batson vectors)");
	/* a = 7, B = G */
	small_key(a, 7);
	unhex(G_COMP, pb, 33);
	CHECK(dc_ecdh_x(a, pb, s1, &err), "ecdh(7, G) computes");
	CHECK_HEX(s1, 32, X_7G, "ecdh(7, G) = x(7G) (Batson vectors)");

	/* a = 1: the shared x is B's own x */
	unhex(ANVIL1_SK, b, 32);
	CHECK(dc_pubkey_from_seckey(b, pb, &err), "ecdh: anvil 1 pubkey");
	small_key(a, 1);
	CHECK(dc_ecdh_x(a, pb, s1, &err) && memcmp(s1, pb + 1, 32) == 0, "ecdh(1, B) = x(B)");

	/* anvil 0 and 1: symmetric, and equal to @noble/curves' value */
	unhex(ANVIL0_SK, a, 32);
	CHECK(dc_pubkey_from_seckey(a, pa, &err), "ecdh: anvil 0 pubkey");
	CHECK(dc_ecdh_x(a, pb, s1, &err) && dc_ecdh_x(b, pa, s2, &err), "ecdh anvil 0 <-> anvil 1 computes");
	CHECK(memcmp(s1, s2, 32) == 0, "ecdh(a, B) == ecdh(b, A)");
	CHECK_HEX(s1, 32, ECDH_A0_A1, "ecdh(anvil0, anvil1) = @noble/curves getSharedSecret x");

	/* random pairs */
	{
		bool		all = true;

		for (int i = 0; i < 20; i++)
			all = all && dc_seckey_generate(a, &err) && dc_seckey_generate(b, &err) &&
				dc_pubkey_from_seckey(a, pa, &err) && dc_pubkey_from_seckey(b, pb, &err) &&
				dc_ecdh_x(a, pb, s1, &err) && dc_ecdh_x(b, pa, s2, &err) &&
				memcmp(s1, s2, 32) == 0;
		CHECK(all, "ecdh symmetric for 20 random key pairs");
	}
}

/* s' = n - s (big-endian 32 bytes), the high-s twin of a signature. */
static void
negate_s(uint8_t s[32])
{
	uint8_t		n[32];
	int			borrow = 0;

	unhex(N_ORDER, n, 32);
	for (int i = 31; i >= 0; i--)
	{
		int			d = (int) n[i] - (int) s[i] - borrow;

		borrow = d < 0;
		s[i] = (uint8_t) (d + (borrow ? 256 : 0));
	}
}

static void
test_signatures(void)
{
	uint8_t		sk[32],
				pub[33],
				digest[32],
				sig[65],
				sig2[65],
				rec[33],
				addr[20];
	DErr		err;
	bool		ok;

	/* EIP-155 example: recover the signer from the published r, s, v */
	unhex(EIP155_SK, sk, 32);
	unhex(EIP155_HASH, digest, 32);
	unhex(EIP155_RS, sig, 64);
	sig[64] = 37 - 35 - 2 * 1;	/* EIP-155: v = chain_id * 2 + 35 + recid, chain 1 */
	derr_clear(&err);
	CHECK(dc_pubkey_from_seckey(sk, pub, &err), "EIP-155 key pubkey");
	CHECK(dc_recover_pubkey(digest, sig, rec, &err), "EIP-155 example signature recovers (v=0)");
	CHECK(memcmp(rec, pub, 33) == 0, "EIP-155 example recovers the key 0x4646...46");
	CHECK(dc_pubkey_to_address(rec, 33, addr, &err), "EIP-155 signer address computes");
	CHECK_HEX(addr, 20, EIP155_ADDR, "EIP-155 example signer address 0x9d8a...5a4f");
	sig[64] = 27;
	CHECK(dc_recover_pubkey(digest, sig, rec, &err) && memcmp(rec, pub, 33) == 0,
		  "EIP-155 example with v=27 recovers the same key");
	/* the other parity recovers another key (or none) */
	sig[64] = 28;
	derr_clear(&err);
	ok = dc_recover_pubkey(digest, sig, rec, &err);
	CHECK(ok, "v=28 is accepted");
	CHECK(memcmp(rec, pub, 33) != 0, "v=28 on a v=27 signature recovers a different key");
	sig[64] = 1;
	CHECK(dc_recover_pubkey(digest, sig, sig2, &err) && memcmp(sig2, rec, 33) == 0,
		  "v=1 and v=28 recover the same key");

	/* RFC 6979: libsecp256k1 reproduces the published EIP-155 r, s exactly */
	derr_clear(&err);
	CHECK(dc_sign_recoverable(sk, digest, sig2, &err), "sign the EIP-155 hash");
	CHECK_HEX(sig2, 64, EIP155_RS, "RFC 6979 signature of the EIP-155 hash = published r || s");
	CHECK(sig2[64] == 0, "EIP-155 signature recovery id 0 (v = 37 on chain 1)");

	/* invalid v values */
	memcpy(sig, sig2, 65);
	{
		static const int bad_v[] = {2, 3, 4, 5, 26, 29, 35, 37, 255};

		for (size_t k = 0; k < sizeof(bad_v) / sizeof(bad_v[0]); k++)
		{
			char		name[64];

			sig[64] = (uint8_t) bad_v[k];
			derr_clear(&err);
			snprintf(name, sizeof(name), "v=%d is rejected with DERR_INTEGRITY", bad_v[k]);
			CHECK(!dc_recover_pubkey(digest, sig, rec, &err) && err.code == DERR_INTEGRITY, name);
		}
	}
	sig[64] = 0;

	/* r = 0, r = n, s = 0 do not parse */
	memcpy(sig, sig2, 65);
	memset(sig, 0, 32);
	derr_clear(&err);
	CHECK(!dc_recover_pubkey(digest, sig, rec, &err) && err.code == DERR_INTEGRITY, "r = 0 is DERR_INTEGRITY");
	unhex(N_ORDER, sig, 32);
	derr_clear(&err);
	CHECK(!dc_recover_pubkey(digest, sig, rec, &err) && err.code == DERR_INTEGRITY, "r = n is DERR_INTEGRITY");
	memcpy(sig, sig2, 65);
	memset(sig + 32, 0, 32);
	derr_clear(&err);
	CHECK(!dc_recover_pubkey(digest, sig, rec, &err) && err.code == DERR_INTEGRITY, "s = 0 is DERR_INTEGRITY");

	/* high-s twin (n - s, flipped parity) is accepted and recovers the same key */
	memcpy(sig, sig2, 65);
	negate_s(sig + 32);
	sig[64] ^= 1;
	derr_clear(&err);
	CHECK(dc_recover_pubkey(digest, sig, rec, &err) && memcmp(rec, pub, 33) == 0,
		  "high-s twin of the EIP-155 signature recovers the same key");

	/* tampered digest: recovers a different key */
	digest[0] ^= 0x01;
	derr_clear(&err);
	ok = dc_recover_pubkey(digest, sig2, rec, &err);
	CHECK(!ok || memcmp(rec, pub, 33) != 0, "tampered digest does not recover the signer");
	CHECK(ok, "tampered digest still recovers some key (the check is the comparison)");
	digest[0] ^= 0x01;
	/* tampered r */
	memcpy(sig, sig2, 65);
	sig[10] ^= 0x40;
	derr_clear(&err);
	ok = dc_recover_pubkey(digest, sig, rec, &err);
	CHECK(!ok || memcmp(rec, pub, 33) != 0, "tampered r does not recover the signer");

	/* sign / recover round trip and determinism, several keys and digests */
	{
		bool		rt = true,
					det = true,
					lows = true,
					vok = true;
		uint8_t		half_n[32];

		/* n / 2 = 7fffffff ffffffff ffffffff ffffffff 5d576e73 57a4501d dfe92f46 681b20a0 */
		unhex("7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0", half_n, 32);
		for (unsigned i = 1; i <= 30; i++)
		{
			uint8_t		d[32];

			small_key(sk, i);
			if (i > 10)
				dc_seckey_generate(sk, &err);
			dc_sha256(&i, sizeof(i), d);
			rt = rt && dc_pubkey_from_seckey(sk, pub, &err) &&
				dc_sign_recoverable(sk, d, sig, &err) &&
				dc_recover_pubkey(d, sig, rec, &err) && memcmp(rec, pub, 33) == 0;
			det = det && dc_sign_recoverable(sk, d, sig2, &err) && memcmp(sig, sig2, 65) == 0;
			lows = lows && memcmp(sig + 32, half_n, 32) <= 0;
			vok = vok && sig[64] <= 1;
			/* Ethereum style v = 27 + recid recovers the same key */
			sig[64] += 27;
			rt = rt && dc_recover_pubkey(d, sig, rec, &err) && memcmp(rec, pub, 33) == 0;
		}
		CHECK(rt, "sign/recover round trip for 30 keys (v in {0,1} and {27,28})");
		CHECK(det, "RFC 6979: signing the same digest twice gives the same signature");
		CHECK(lows, "every signature is low-s (s <= n/2)");
		CHECK(vok, "produced v is 0 or 1");
	}

	/* signing with an invalid key is refused */
	memset(sk, 0, 32);
	derr_clear(&err);
	CHECK(!dc_sign_recoverable(sk, digest, sig, &err) && err.code == DERR_ARG, "signing with key 0 is DERR_ARG");
}

int
main(void)
{
	test_keys_and_addresses();
	test_invalid_keys();
	test_ecdh();
	test_signatures();
	UNIT_DONE();
}
