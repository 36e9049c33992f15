/*
 * test_sigchain_wrap.c: the dstack key signature chain (sigchain.c) and the
 * recipe-bound data-key wrap (wrap.c).
 *
 * There are no published vectors for these pg_dstack-specific layouts, so the
 * pinned values below come from an independent implementation of the layouts
 * documented in sigchain.h and wrap.h, written in JavaScript with
 * @noble/hashes 2.4.0 and @noble/curves 2.4.0 (in /work/main/node_modules)
 * and node's own AES-GCM.  The sigchain layout also matches dstack's SDK
 * verifiers (purpose ":" hex(compressed derived key);
 * "dstack-kms-issued:" || app_id(20) || compressed app key).  Script (run as
 * an .mjs file from /work/main):
 *
 *   import { keccak_256 } from '@noble/hashes/sha3.js';
 *   import { sha256 } from '@noble/hashes/sha2.js';
 *   import { hkdf } from '@noble/hashes/hkdf.js';
 *   import { bytesToHex as hx, hexToBytes as hb, utf8ToBytes as u8 } from '@noble/hashes/utils.js';
 *   import { secp256k1 } from '@noble/curves/secp256k1.js';
 *   import { createCipheriv } from 'node:crypto';
 *   const pub = (h) => secp256k1.getPublicKey(hb(h.repeat(32)), true);
 *   const rootPub = pub('11'), appPub = pub('22'), derPub = pub('33');
 *   const appId = hb('00112233445566778899aabbccddeeff00112233');
 *   const d0 = keccak_256(u8('dstack-seal/test' + ':' + hx(derPub)));
 *   const d1 = keccak_256(new Uint8Array([...u8('dstack-kms-issued:'), ...appId, ...appPub]));
 *   const sg = (k, d) => { const s = secp256k1.Signature.fromBytes(secp256k1.sign(d, hb(k.repeat(32)),
 *       {prehash: false, format: 'recovered'}), 'recovered');
 *     return hx(s.toBytes('compact')) + s.recovery.toString(16).padStart(2, '0'); };
 *   console.log(hx(d0), hx(d1), sg('22', d0), sg('11', d1));
 *   // wrap key: HKDF-SHA256(ikm = shared_x, salt = SHA256(root), info = label||app_id||compose_hash||owner||E)
 *   const ch = hb('c0ffee00'.repeat(8)), owner = hb('f39fd6e51aad88f6f4ce6ab8827279cfffb92266');
 *   const wk = (x, E) => hkdf(sha256, x, sha256(rootPub),
 *     new Uint8Array([...u8('dstack-seal/v1'), ...appId, ...ch, ...owner, ...E]), 32);
 *   console.log(hx(wk(hb('a5'.repeat(32)), pub('55'))));
 *   // full wrap with e = 0x55..55 for recipient 0x66..66
 *   const E = pub('55'), x = secp256k1.getSharedSecret(hb('55'.repeat(32)), pub('66'), true).slice(1);
 *   const c = createCipheriv('aes-256-gcm', wk(x, E), new Uint8Array(12));
 *   c.setAAD(new Uint8Array([...u8('dstack-seal/v1 wrap'), ...hb('0102030405060708090a0b0c0d0e0f10')]));
 *   const dk = Uint8Array.from({length: 32}, (_, i) => 0x80 + i);
 *   console.log(hx(x), hx(wk(x, E)), hx(Buffer.concat([c.update(dk), c.final(), c.getAuthTag()])));
 */
#include "crypto.h"
#include "hex.h"
#include "sigchain.h"
#include "unit.h"
#include "wrap.h"

#define ROOT_SK		"1111111111111111111111111111111111111111111111111111111111111111"
#define APP_SK		"2222222222222222222222222222222222222222222222222222222222222222"
#define DER_SK		"3333333333333333333333333333333333333333333333333333333333333333"
#define APP_ID		"00112233445566778899aabbccddeeff00112233"
#define PURPOSE		"dstack-seal/test"
/* @noble/curves getPublicKey(sk, true) */
#define ROOT_PUB	"034f355bdcb7cc0af728ef3cceb9615d90684bb5b2ca5f859ab0f0b704075871aa"
#define APP_PUB		"02466d7fcae563e5cb09a0d1870bb580344804617879a14949cf22285f1bae3f27"
#define DER_PUB		"023c72addb4fdf09af94f0c94d7fe92a386a7e70cf8a1d85916386bb2535c7b1b1"
/* @noble/hashes keccak_256 of the two messages (script above) */
#define APP_DIGEST	"d2e5b3baa2992d4ac50e233e85eb94eab35b56811a2016739a24b23043aed530"
#define KMS_DIGEST	"ff73cfab731a70766b6f7df868508d0599bda4d23b88aeeca2fcb19cbf23d427"
/* @noble/curves RFC 6979 recoverable signatures, r || s || recid */
#define CHAIN0		"6e2c2d351d7c76a9b68625cd144fe523876d88a2bc11fa6cc3faf3363a71dae7" \
					"7434949379259a078da618d9f5f31001dde22f375826bd0db08baa3a5344c6b401"
#define CHAIN1		"15a2a37aaba640da2e5b08f3e535e6735a9eb9d7eb132ed203aff5de19521b52" \
					"6bb310ef474bbbb1db5e6c14dbad8d25eb324330e8223e187b450ce287c69a0300"

/* wrap vectors (script above) */
#define COMPOSE_HASH "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00"
#define OWNER_ID	"f39fd6e51aad88f6f4ce6ab8827279cfffb92266"
#define FIXED_X		"a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5"
#define EPH_SK		"5555555555555555555555555555555555555555555555555555555555555555"
#define EPH_PUB		"029ac20335eb38768d2052be1dbbc3c8f6178407458e51e6b4ad22f1d91758895b"
#define WRAP_KEY_FIXED "bf85dc1455f67e6454f8eb9605bd61367fb65b0f0abeda24564385ba3e98d20c"
#define RCPT_SK		"6666666666666666666666666666666666666666666666666666666666666666"
#define RCPT_PUB	"035ab4689e400a4a160cf01cd44730845a54768df8547dcdf073d964f109f18c30"
#define RCPT_X		"c88d18b3ab2342f968f14ba920a9f47aeb8437a3ac494f4d263a79dd29b75353"
#define RCPT_WRAP_KEY "f9b278b34afda208fe67325692f5e2fa6cbef11e5ccf7f95981fe1c63f973a45"
#define DATASET_ID	"0102030405060708090a0b0c0d0e0f10"
#define WRAPPED		"a593d1efd5a626bee71e3d8e961179228c0694e6b4b7e908f03f6af3331dbaa7" \
					"781a984deabdc852a6df394e2ff8813f"

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

static bool
all_zero(const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b[i] != 0)
			return false;
	return true;
}

/* ---------------------------------------------------------------- */
/* signature chain                                                  */
/* ---------------------------------------------------------------- */

typedef struct Chain
{
	uint8_t		root_sk[32],
				app_sk[32],
				der_sk[32];
	uint8_t		root_pub[33],
				app_pub[33],
				der_pub[33];
	uint8_t		app_id[20];
	uint8_t		c0[65],
				c1[65];
} Chain;

/* Build a chain the way dstack's KMS and guest agent do, with our own signer. */
static bool
build_chain(Chain *c, const char *purpose, DErr *err)
{
	uint8_t		d[32];

	if (!dc_pubkey_from_seckey(c->root_sk, c->root_pub, err) ||
		!dc_pubkey_from_seckey(c->app_sk, c->app_pub, err) ||
		!dc_pubkey_from_seckey(c->der_sk, c->der_pub, err))
		return false;
	dstack_sigchain_app_digest(purpose, c->der_pub, d);
	if (!dc_sign_recoverable(c->app_sk, d, c->c0, err))
		return false;
	dstack_sigchain_kms_digest(c->app_id, c->app_pub, d);
	return dc_sign_recoverable(c->root_sk, d, c->c1, err);
}

static bool
chain_fails(const uint8_t root[33], const uint8_t app_id[20], const char *purpose,
			const uint8_t der[33], const uint8_t c0[65], const uint8_t c1[65])
{
	DErr		err;
	uint8_t		app_out[33];

	derr_clear(&err);
	memset(app_out, 0xee, sizeof(app_out));
	return !dstack_sigchain_verify(root, app_id, purpose, der, c0, c1, app_out, &err) &&
		err.code == DERR_CHAIN && err.msg[0] != '\0' && err.detail[0] != '\0';
}

static void
test_sigchain(void)
{
	Chain		c;
	DErr		err;
	uint8_t		d[32],
				app_out[33];

	unhex(ROOT_SK, c.root_sk, 32);
	unhex(APP_SK, c.app_sk, 32);
	unhex(DER_SK, c.der_sk, 32);
	unhex(APP_ID, c.app_id, 20);
	derr_clear(&err);
	CHECK(build_chain(&c, PURPOSE, &err), "sigchain: build a chain with dc_sign_recoverable");
	CHECK_HEX(c.root_pub, 33, ROOT_PUB, "sigchain: root pubkey = @noble/curves");
	CHECK_HEX(c.app_pub, 33, APP_PUB, "sigchain: app pubkey = @noble/curves");
	CHECK_HEX(c.der_pub, 33, DER_PUB, "sigchain: derived pubkey = @noble/curves");

	/* the digests against the independent computation */
	dstack_sigchain_app_digest(PURPOSE, c.der_pub, d);
	CHECK_HEX(d, 32, APP_DIGEST, "sigchain: app digest keccak(purpose ':' hex(derived)) = @noble/hashes");
	dstack_sigchain_kms_digest(c.app_id, c.app_pub, d);
	CHECK_HEX(d, 32, KMS_DIGEST, "sigchain: kms digest keccak('dstack-kms-issued:' || app_id || app_pub) = @noble/hashes");
	/* and the signatures: RFC 6979 in both libsecp256k1 and noble */
	CHECK_HEX(c.c0, 65, CHAIN0, "sigchain: chain[0] = @noble/curves RFC 6979 signature");
	CHECK_HEX(c.c1, 65, CHAIN1, "sigchain: chain[1] = @noble/curves RFC 6979 signature");

	/* accepted, and the app key comes out */
	derr_clear(&err);
	memset(app_out, 0, sizeof(app_out));
	CHECK(dstack_sigchain_verify(c.root_pub, c.app_id, PURPOSE, c.der_pub, c.c0, c.c1, app_out, &err),
		  "sigchain: a correct chain verifies");
	CHECK(err.code == DERR_OK, "sigchain: no error on success");
	CHECK(memcmp(app_out, c.app_pub, 33) == 0, "sigchain: the recovered app key is returned");
	derr_clear(&err);
	CHECK(dstack_sigchain_verify(c.root_pub, c.app_id, PURPOSE, c.der_pub, c.c0, c.c1, NULL, &err),
		  "sigchain: app_pub_out may be NULL");
	/* the noble-made chain verifies as well (same bytes, but decoded independently) */
	{
		uint8_t		n0[65],
					n1[65],
					root[33],
					der[33],
					id[20];

		unhex(CHAIN0, n0, 65);
		unhex(CHAIN1, n1, 65);
		unhex(ROOT_PUB, root, 33);
		unhex(DER_PUB, der, 33);
		unhex(APP_ID, id, 20);
		derr_clear(&err);
		CHECK(dstack_sigchain_verify(root, id, PURPOSE, der, n0, n1, NULL, &err),
			  "sigchain: the @noble/curves chain constants verify");
		/* Ethereum-style v = 27/28 in both links is accepted too */
		n0[64] += 27;
		n1[64] += 27;
		derr_clear(&err);
		CHECK(dstack_sigchain_verify(root, id, PURPOSE, der, n0, n1, NULL, &err),
			  "sigchain: links with v = 27/28 verify");
	}

	/* each wrong input is DERR_CHAIN */
	{
		uint8_t		other_root[33],
					other_id[20],
					other_der[33],
					sk[32];

		unhex(APP_SK, sk, 32);	/* a real key that is not the root */
		dc_pubkey_from_seckey(sk, other_root, &err);
		CHECK(chain_fails(other_root, c.app_id, PURPOSE, c.der_pub, c.c0, c.c1),
			  "sigchain: other kms root is DERR_CHAIN");
		memcpy(other_id, c.app_id, 20);
		other_id[19] ^= 0x01;
		CHECK(chain_fails(c.root_pub, other_id, PURPOSE, c.der_pub, c.c0, c.c1),
			  "sigchain: other app id is DERR_CHAIN");
		CHECK(chain_fails(c.root_pub, c.app_id, "dstack-seal/tesu", c.der_pub, c.c0, c.c1),
			  "sigchain: other purpose is DERR_CHAIN");
		CHECK(chain_fails(c.root_pub, c.app_id, "", c.der_pub, c.c0, c.c1),
			  "sigchain: empty purpose is DERR_CHAIN");
		CHECK(chain_fails(c.root_pub, c.app_id, NULL, c.der_pub, c.c0, c.c1),
			  "sigchain: NULL purpose is DERR_CHAIN");
		CHECK(chain_fails(c.root_pub, c.app_id, PURPOSE ":", c.der_pub, c.c0, c.c1),
			  "sigchain: purpose with a trailing ':' is DERR_CHAIN");
		CHECK(chain_fails(c.root_pub, c.app_id, PURPOSE, c.c0 /* 33 bytes, not a key */, c.c0, c.c1),
			  "sigchain: garbage derived key is DERR_CHAIN");
		unhex(ROOT_SK, sk, 32);
		dc_pubkey_from_seckey(sk, other_der, &err);
		CHECK(chain_fails(c.root_pub, c.app_id, PURPOSE, other_der, c.c0, c.c1),
			  "sigchain: other derived key is DERR_CHAIN");
		CHECK(chain_fails(c.root_pub, c.app_id, PURPOSE, c.der_pub, c.c1, c.c0),
			  "sigchain: swapped chain links are DERR_CHAIN");
		CHECK(chain_fails(c.root_pub, c.app_id, PURPOSE, c.der_pub, c.c0, c.c0),
			  "sigchain: chain[0] twice is DERR_CHAIN");
		CHECK(chain_fails(c.root_pub, c.app_id, PURPOSE, c.der_pub, c.c1, c.c1),
			  "sigchain: chain[1] twice is DERR_CHAIN");
	}

	/* a flipped byte anywhere in either link or in the derived key */
	{
		bool		all0 = true,
					all1 = true,
					allk = true;

		for (int i = 0; i < 65; i++)
		{
			uint8_t		b0[65],
						b1[65];

			memcpy(b0, c.c0, 65);
			memcpy(b1, c.c1, 65);
			b0[i] ^= (i == 64) ? 0x01 : 0x5a;
			b1[i] ^= (i == 64) ? 0x01 : 0x5a;
			all0 = all0 && chain_fails(c.root_pub, c.app_id, PURPOSE, c.der_pub, b0, c.c1);
			all1 = all1 && chain_fails(c.root_pub, c.app_id, PURPOSE, c.der_pub, c.c0, b1);
		}
		for (int i = 1; i < 33; i++)
		{
			uint8_t		k[33];

			memcpy(k, c.der_pub, 33);
			k[i] ^= 0x01;
			allk = allk && chain_fails(c.root_pub, c.app_id, PURPOSE, k, c.c0, c.c1);
		}
		CHECK(all0, "sigchain: every flipped byte of chain[0] is DERR_CHAIN");
		CHECK(all1, "sigchain: every flipped byte of chain[1] is DERR_CHAIN");
		CHECK(allk, "sigchain: every flipped byte of the derived key is DERR_CHAIN");
		{
			uint8_t		b0[65];

			memcpy(b0, c.c0, 65);
			b0[64] = 5;
			CHECK(chain_fails(c.root_pub, c.app_id, PURPOSE, c.der_pub, b0, c.c1),
				  "sigchain: v = 5 in chain[0] is DERR_CHAIN");
		}
	}

	/* a chain for another app id (correctly signed) does not pass for ours */
	{
		Chain		c2 = c;

		c2.app_id[0] ^= 0x80;
		derr_clear(&err);
		CHECK(build_chain(&c2, PURPOSE, &err), "sigchain: build a chain for another app id");
		CHECK(chain_fails(c.root_pub, c.app_id, PURPOSE, c.der_pub, c2.c0, c2.c1),
			  "sigchain: a valid chain issued to another app id is DERR_CHAIN for ours");
		derr_clear(&err);
		CHECK(dstack_sigchain_verify(c.root_pub, c2.app_id, PURPOSE, c.der_pub, c2.c0, c2.c1, NULL, &err),
			  "sigchain: ... and verifies for its own app id");
	}
}

/* ---------------------------------------------------------------- */
/* key wrap                                                         */
/* ---------------------------------------------------------------- */

static void
fixed_recipe(DsealRecipe *r)
{
	unhex(ROOT_PUB, r->kms_root_pubkey, 33);
	unhex(APP_ID, r->app_id, 20);
	unhex(COMPOSE_HASH, r->compose_hash, 32);
}

static void
test_wrap_vectors(void)
{
	DsealRecipe r;
	uint8_t		owner[20],
				x[32],
				eph[33],
				key[32],
				sk[32],
				ds[16],
				wrapped[48],
				dk[32];
	DErr		err;

	fixed_recipe(&r);
	unhex(OWNER_ID, owner, 20);
	unhex(FIXED_X, x, 32);
	unhex(EPH_SK, sk, 32);
	derr_clear(&err);
	CHECK(dc_pubkey_from_seckey(sk, eph, &err), "wrap: ephemeral pubkey of 0x55..55");
	CHECK_HEX(eph, 33, EPH_PUB, "wrap: ephemeral pubkey = @noble/curves");
	CHECK(dseal_derive_wrap_key(&r, owner, x, eph, key, &err), "wrap: derive the wrap key");
	CHECK_HEX(key, 32, WRAP_KEY_FIXED, "wrap: dseal_derive_wrap_key pinned vector (@noble/hashes hkdf)");

	/* ECDH part of the recipe against noble */
	{
		uint8_t		rsk[32],
					rpub[33],
					sx[32];

		unhex(RCPT_SK, rsk, 32);
		CHECK(dc_pubkey_from_seckey(rsk, rpub, &err), "wrap: recipient pubkey");
		CHECK_HEX(rpub, 33, RCPT_PUB, "wrap: recipient pubkey = @noble/curves");
		CHECK(dc_ecdh_x(sk, rpub, sx, &err), "wrap: ecdh(e, P_o)");
		CHECK_HEX(sx, 32, RCPT_X, "wrap: x(e * P_o) = @noble/curves getSharedSecret");
		CHECK(dc_ecdh_x(rsk, eph, sx, &err), "wrap: ecdh(p_o, E)");
		CHECK_HEX(sx, 32, RCPT_X, "wrap: x(p_o * E) = x(e * P_o)");
		CHECK(dseal_derive_wrap_key(&r, owner, sx, eph, key, &err), "wrap: derive the recipient wrap key");
		CHECK_HEX(key, 32, RCPT_WRAP_KEY, "wrap: recipient wrap key = @noble/hashes hkdf");
	}

	/* a whole wrapped key made by node (AES-GCM, zero nonce, label||dataset AAD) unwraps */
	unhex(RCPT_SK, sk, 32);
	unhex(DATASET_ID, ds, 16);
	unhex(WRAPPED, wrapped, 48);
	derr_clear(&err);
	CHECK(dseal_unwrap_key(&r, owner, sk, ds, eph, wrapped, dk, &err), "wrap: unwrap the node-made wrapped key");
	CHECK_HEX(dk, 32, "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
			  "wrap: node-made wrapped key gives the data key");
	/* the pinned wrapped key is bound to its dataset id (GCM AAD) */
	ds[15] ^= 0x01;
	memset(dk, 0xee, sizeof(dk));
	derr_clear(&err);
	CHECK(!dseal_unwrap_key(&r, owner, sk, ds, eph, wrapped, dk, &err) && err.code == DERR_KEY &&
		  all_zero(dk, 32), "wrap: node-made wrapped key under another dataset id is DERR_KEY, zeroed");
}

typedef struct WrapCase
{
	DsealRecipe r;
	uint8_t		owner[20];
	uint8_t		sk[32];
	uint8_t		ds[16];
	uint8_t		eph[33];
	uint8_t		wrapped[48];
} WrapCase;

/* Unwrap with one input changed; must be DERR_KEY with zeroed output. */
static bool
unwrap_fails(const WrapCase *w, DErrCode want)
{
	uint8_t		dk[32];
	DErr		err;

	memset(dk, 0xee, sizeof(dk));
	derr_clear(&err);
	return !dseal_unwrap_key(&w->r, w->owner, w->sk, w->ds, w->eph, w->wrapped, dk, &err) &&
		err.code == want && all_zero(dk, 32) && err.msg[0] != '\0';
}

static void
test_wrap_roundtrip(void)
{
	WrapCase	w,
				x;
	uint8_t		pub[33],
				data_key[32],
				dk[32],
				eph2[33],
				wrapped2[48];
	DErr		err;

	fixed_recipe(&w.r);
	unhex(OWNER_ID, w.owner, 20);
	unhex(DATASET_ID, w.ds, 16);
	derr_clear(&err);
	CHECK(dc_seckey_generate(w.sk, &err) && dc_pubkey_from_seckey(w.sk, pub, &err), "wrap: recipient key");
	CHECK(dc_random(data_key, 32, &err), "wrap: random data key");
	CHECK(dseal_wrap_key(&w.r, w.owner, pub, w.ds, data_key, w.eph, w.wrapped, &err), "wrap: wrap a data key");
	memset(dk, 0, sizeof(dk));
	CHECK(dseal_unwrap_key(&w.r, w.owner, w.sk, w.ds, w.eph, w.wrapped, dk, &err), "wrap: unwrap it");
	CHECK(memcmp(dk, data_key, 32) == 0, "wrap: round trip gives the data key back");
	CHECK(memcmp(w.wrapped, data_key, 32) != 0, "wrap: wrapped bytes are not the data key");

	/* a second wrap uses a fresh ephemeral key */
	CHECK(dseal_wrap_key(&w.r, w.owner, pub, w.ds, data_key, eph2, wrapped2, &err), "wrap: wrap again");
	CHECK(memcmp(eph2, w.eph, 33) != 0 && memcmp(wrapped2, w.wrapped, 48) != 0,
		  "wrap: each wrap has a fresh ephemeral key and different bytes");

	/* each wrong input: DERR_KEY, output zeroed */
	x = w;
	x.r.compose_hash[31] ^= 0x01;
	CHECK(unwrap_fails(&x, DERR_KEY), "wrap: other compose-hash is DERR_KEY, output zeroed");
	x = w;
	x.r.app_id[0] ^= 0x01;
	CHECK(unwrap_fails(&x, DERR_KEY), "wrap: other app id is DERR_KEY, output zeroed");
	x = w;
	x.owner[10] ^= 0x01;
	CHECK(unwrap_fails(&x, DERR_KEY), "wrap: other owner id is DERR_KEY, output zeroed");
	x = w;
	{
		uint8_t		sk[32];

		unhex(RCPT_SK, sk, 32);
		dc_pubkey_from_seckey(sk, x.r.kms_root_pubkey, &err);
	}
	CHECK(unwrap_fails(&x, DERR_KEY), "wrap: other kms root is DERR_KEY, output zeroed");
	x = w;
	x.ds[0] ^= 0x01;
	CHECK(unwrap_fails(&x, DERR_KEY), "wrap: other dataset id is DERR_KEY, output zeroed");
	x = w;
	dc_seckey_generate(x.sk, &err);
	CHECK(unwrap_fails(&x, DERR_KEY), "wrap: other recipient key is DERR_KEY, output zeroed");
	x = w;
	memcpy(x.eph, pub, 33);		/* a valid point, but not the ephemeral key */
	CHECK(unwrap_fails(&x, DERR_KEY), "wrap: other ephemeral key is DERR_KEY, output zeroed");
	x = w;
	x.wrapped[5] ^= 0x01;
	CHECK(unwrap_fails(&x, DERR_KEY), "wrap: flipped wrapped-key byte is DERR_KEY, output zeroed");
	x = w;
	x.wrapped[47] ^= 0x80;
	CHECK(unwrap_fails(&x, DERR_KEY), "wrap: flipped tag byte is DERR_KEY, output zeroed");
	/* an ephemeral key that is not a point is an argument error, still zeroed */
	x = w;
	memset(x.eph + 1, 0, 32);
	x.eph[0] = 0x02;
	CHECK(unwrap_fails(&x, DERR_ARG), "wrap: off-curve ephemeral key is DERR_ARG, output zeroed");
	x = w;
	memset(x.sk, 0, 32);
	CHECK(unwrap_fails(&x, DERR_ARG), "wrap: recipient private key 0 is DERR_ARG, output zeroed");
	/* the original still unwraps */
	CHECK(dseal_unwrap_key(&w.r, w.owner, w.sk, w.ds, w.eph, w.wrapped, dk, &err) &&
		  memcmp(dk, data_key, 32) == 0, "wrap: the unchanged inputs still unwrap");

	/* wrapping for an invalid recipient key fails and leaves no wrapped bytes */
	{
		uint8_t		bad[33] = {0x02};

		memset(wrapped2, 0xee, sizeof(wrapped2));
		derr_clear(&err);
		CHECK(!dseal_wrap_key(&w.r, w.owner, bad, w.ds, data_key, eph2, wrapped2, &err) &&
			  err.code == DERR_ARG && all_zero(wrapped2, 48),
			  "wrap: off-curve recipient key is DERR_ARG, wrapped output zeroed");
	}

	/* many round trips with random keys */
	{
		bool		all = true;

		for (int i = 0; i < 20; i++)
		{
			WrapCase	v = w;

			all = all && dc_seckey_generate(v.sk, &err) && dc_pubkey_from_seckey(v.sk, pub, &err) &&
				dc_random(data_key, 32, &err) && dc_random(v.ds, 16, &err) &&
				dc_random(v.r.compose_hash, 32, &err) &&
				dseal_wrap_key(&v.r, v.owner, pub, v.ds, data_key, v.eph, v.wrapped, &err) &&
				dseal_unwrap_key(&v.r, v.owner, v.sk, v.ds, v.eph, v.wrapped, dk, &err) &&
				memcmp(dk, data_key, 32) == 0;
		}
		CHECK(all, "wrap: 20 random round trips");
	}
}

/* The recipient key's GetKey path: one spelling for silo, CVM and harnesses. */
static void
test_recipient_path(void)
{
	uint8_t		owner[DC_ADDR_LEN];
	char		path[DSEAL_RECIPIENT_PATH_LEN];
	DErr		err = {0};

	CHECK(dhex_decode_exact("0x70997970C51812dc3A010C7d01b50e0d17dc79C8", owner, DC_ADDR_LEN, "owner", &err),
		  "recipient path: owner decodes");
	memset(path, 'x', sizeof(path));
	dseal_recipient_path(owner, path);
	CHECK(strcmp(path, "dstack-seal/v1/70997970c51812dc3a010c7d01b50e0d17dc79c8") == 0,
		  "recipient path: dstack-seal/v1/<owner hex>, lower case, no 0x");
	CHECK(strlen(path) + 1 == DSEAL_RECIPIENT_PATH_LEN, "recipient path: DSEAL_RECIPIENT_PATH_LEN fits it exactly");
}

int
main(void)
{
	test_recipient_path();
	test_sigchain();
	test_wrap_vectors();
	test_wrap_roundtrip();
	UNIT_DONE();
}
