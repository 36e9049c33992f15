/*
 * test_ethtx: RLP against the examples of the Ethereum RLP specification,
 * EIP-155 signing against the example in EIP-155, and the calldata and
 * digest of ConsortiumApp.charge() against foundry's cast (an independent
 * ABI encoder: cast calldata / cast abi-encode / cast keccak).
 */
#include <string.h>

#include "ethtx.h"
#include "hex.h"
#include "sigchain.h"
#include "unit.h"

static void
rlp_str(const char *s, const char *hexexp, const char *name)
{
	uint8_t    *out;
	size_t		len;
	DErr		err = {0};

	CHECK(eth_rlp_string((const uint8_t *) s, strlen(s), &out, &len, &err), name);
	CHECK_HEX(out, len, hexexp, name);
	free(out);
}

static void
fill(uint8_t *p, uint8_t v, size_t n)
{
	memset(p, v, n);
}

int
main(void)
{
	uint8_t    *out,
			   *inner,
			   *tmp;
	size_t		len,
				ilen,
				tlen;
	DErr		err = {0};
	char		buf[4096 * 2 + 1];

	/* the RLP specification's examples */
	rlp_str("dog", "83646f67", "rlp \"dog\"");
	rlp_str("", "80", "rlp empty string");
	rlp_str("\x0f", "0f", "rlp a byte below 0x80 is itself");
	rlp_str("Lorem ipsum dolor sit amet, consectetur adipisicing elit",
			"b8384c6f72656d20697073756d20646f6c6f722073697420616d65742c20636f6e7365637465747572206164697069736963696e6720656c6974",
			"rlp a 56-byte string (long form)");
	CHECK(eth_rlp_string((const uint8_t *) "cat", 3, &inner, &ilen, &err) &&
		  eth_rlp_string((const uint8_t *) "dog", 3, &tmp, &tlen, &err), "rlp items");
	inner = realloc(inner, ilen + tlen);
	memcpy(inner + ilen, tmp, tlen);
	CHECK(eth_rlp_list(inner, ilen + tlen, &out, &len, &err), "rlp [\"cat\", \"dog\"]");
	CHECK_HEX(out, len, "c88363617483646f67", "rlp [\"cat\", \"dog\"]");
	free(inner);
	free(tmp);
	free(out);
	CHECK(eth_rlp_list(NULL, 0, &out, &len, &err), "rlp empty list");
	CHECK_HEX(out, len, "c0", "rlp empty list");
	free(out);

	/* EIP-155's example: nonce 9, 20 gwei, 21000 gas, to 0x3535..., 1 ether, chain 1 */
	{
		EthTx		tx = {0};
		uint8_t		sk[32];
		uint8_t		hash[32];

		fill(sk, 0x46, 32);
		tx.nonce = 9;
		tx.gas_price = 20000000000ULL;
		tx.gas_limit = 21000;
		fill(tx.to, 0x35, 20);
		tx.value = 1000000000000000000ULL;
		tx.chain_id = 1;
		CHECK(eth_tx_sign(&tx, sk, &out, &len, hash, &err), "EIP-155 example signs");
		CHECK_HEX(out, len,
				  "f86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a7640000"
				  "8025a028ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276a067cbe9d8997f"
				  "761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83",
				  "EIP-155 example: the signed transaction");
		free(out);
		tx.chain_id = 0;
		CHECK(!eth_tx_sign(&tx, sk, &out, &len, hash, &err), "chain id 0 refused");
	}

	/* charge(): calldata and digest, as cast computes them */
	{
		uint8_t		manifests[2][32];
		LedgerChargeReq r = {0};
		LedgerChargeSig s;
		uint8_t		contract[20];
		uint8_t		digest[32];

		fill(r.query_hash, 0x11, 32);
		r.epsilon_micro = 250000;
		r.delta_pico = 1000000;
		fill(manifests[0], 0x22, 32);
		fill(manifests[1], 0x33, 32);
		r.manifests = (const uint8_t (*)[32]) manifests;
		r.n_manifests = 2;
		fill(r.nonce, 0x44, 32);
		fill(s.derived_pub, 0xaa, 64);
		fill(s.app_pub, 0xbb, 64);
		fill(s.signature, 0xcc, 65);
		fill(s.chain[0], 0xdd, 65);
		fill(s.chain[1], 0xee, 65);
		CHECK(ledger_charge_calldata(&r, &s, &out, &len, &err), "charge calldata");
		CHECK(len * 2 < sizeof(buf), "charge calldata fits");
		dhex_encode(out, len, buf);
		CHECK(strcmp(buf, "bc12dcf3000000000000000000000000000000000000000000000000000000000000004000000000000000000000000000000000000000000000000000000000000001401111111111111111111111111111111111111111111111111111111111111111000000000000000000000000000000000000000000000000000000000003d09000000000000000000000000000000000000000000000000000000000000f424000000000000000000000000000000000000000000000000000000000000000a0444444444444444444444444444444444444444444444444444444444444444400000000000000000000000000000000000000000000000000000000000000022222222222222222222222222222222222222222222222222222222222222222333333333333333333333333333333333333333333333333333333333333333300000000000000000000000000000000000000000000000000000000000000a00000000000000000000000000000000000000000000000000000000000000100000000000000000000000000000000000000000000000000000000000000016000000000000000000000000000000000000000000000000000000000000001e000000000000000000000000000000000000000000000000000000000000002600000000000000000000000000000000000000000000000000000000000000040aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa0000000000000000000000000000000000000000000000000000000000000040bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb0000000000000000000000000000000000000000000000000000000000000041cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000041dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000041eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee00000000000000000000000000000000000000000000000000000000000000") == 0, "charge calldata equals cast calldata");
		free(out);
		CHECK(dhex_decode_exact("5FbDB2315678afecb367f032d93F642f64180aa3", contract, 20, "contract", &err),
			  "contract address");
		ledger_charge_digest(contract, 31337, &r, digest);
		CHECK_HEX(digest, 32, "c9515dd5d62d654f7622a32e87166c62653d884051f9c53b93f3e90e4d985835",
				  "charge digest equals keccak256(abi.encode(...)) by cast");
		r.n_manifests = 0;
		CHECK(!ledger_charge_calldata(&r, &s, &out, &len, &err), "a charge naming no dataset refused");
	}
	/* ledger_charge_sign: a dstack chain built here, as the KMS and the app would */
	{
		uint8_t		root_sk[32],
					app_sk[32],
					root_pub[DC_PUBKEY_LEN],
					app_pub[DC_PUBKEY_LEN],
					app_id[20],
					d[32],
					rec[DC_PUBKEY_LEN],
					full[DC_PUBKEY_UNCOMP_LEN],
					manifests[1][32];
		GaKey		key;
		LedgerChargeReq r = {0};
		LedgerChargeSig s;

		fill(root_sk, 0x01, 32);
		fill(app_sk, 0x02, 32);
		fill(key.key, 0x03, 32);
		fill(app_id, 0x5f, 20);
		CHECK(dc_pubkey_from_seckey(root_sk, root_pub, &err) && dc_pubkey_from_seckey(app_sk, app_pub, &err) &&
			  dc_pubkey_from_seckey(key.key, key.pub, &err), "keys");
		dstack_sigchain_kms_digest(app_id, app_pub, d);
		CHECK(dc_sign_recoverable(root_sk, d, key.chain[1], &err), "KMS root signs the app key");
		dstack_sigchain_app_digest(LEDGER_PURPOSE, key.pub, d);
		CHECK(dc_sign_recoverable(app_sk, d, key.chain[0], &err), "app key signs the ledger key");
		fill(r.query_hash, 0x11, 32);
		r.epsilon_micro = 100000;
		fill(manifests[0], 0x22, 32);
		r.manifests = (const uint8_t (*)[32]) manifests;
		r.n_manifests = 1;
		fill(r.nonce, 0x44, 32);
		CHECK(ledger_charge_sign(&key, root_pub, app_id, 31337, &r, &s, &err), "ledger_charge_sign");
		ledger_charge_digest(app_id, 31337, &r, d);
		CHECK(dc_recover_pubkey(d, s.signature, rec, &err) && memcmp(rec, key.pub, DC_PUBKEY_LEN) == 0,
			  "the charge signature recovers to the ledger key");
		CHECK(dc_pubkey_uncompress(app_pub, full, &err) && memcmp(full + 1, s.app_pub, 64) == 0,
			  "the app key is given uncompressed, as recovered from the chain");
		CHECK(dc_pubkey_uncompress(key.pub, full, &err) && memcmp(full + 1, s.derived_pub, 64) == 0,
			  "the ledger key is given uncompressed");
		derr_clear(&err);
		CHECK(!ledger_charge_sign(&key, app_pub, app_id, 31337, &r, &s, &err) && err.code == DERR_CHAIN,
			  "a chain that does not end at the given KMS root is refused");
		app_id[0] ^= 1;
		derr_clear(&err);
		CHECK(!ledger_charge_sign(&key, root_pub, app_id, 31337, &r, &s, &err) && err.code == DERR_CHAIN,
			  "a chain issued for another app is refused");
	}
	UNIT_DONE();
}
