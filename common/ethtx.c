/*
 * ethtx.c: RLP, EIP-155 legacy transactions and ConsortiumApp.charge()
 * calldata (ethtx.h).
 *
 * RLP (the Ethereum yellow paper, appendix B): a single byte below 0x80 is
 * itself; a string of up to 55 bytes is 0x80+len then the bytes; longer,
 * 0xb7+len(len) then len big-endian then the bytes; lists the same with
 * 0xc0 / 0xf7.  Integers are their minimal big-endian bytes (0 is empty).
 * EIP-155: sign keccak256(rlp([nonce, gasPrice, gas, to, value, data,
 * chainId, 0, 0])) and send rlp([..., v, r, s]) with v = recid + 35 +
 * 2 chainId.
 */
#include <stdlib.h>
#include <string.h>

#include "abi.h"
#include "bytebuf.h"
#include "ethtx.h"
#include "sigchain.h"

/* Minimal big-endian bytes of v (none for 0); returns the count. */
static size_t
be_minimal(uint64_t v, uint8_t out[8])
{
	size_t		n = 0;
	uint8_t		tmp[8];

	while (v)
	{
		tmp[n++] = (uint8_t) (v & 0xff);
		v >>= 8;
	}
	for (size_t i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	return n;
}

/* RLP header of a string (base 0x80) or list (base 0xc0) of n bytes. */
static void
rlp_header(DcBytes *b, uint8_t base, size_t n)
{
	uint8_t		h[9];

	if (n <= 55)
	{
		h[0] = (uint8_t) (base + n);
		dc_buf_put(b, h, 1);
	}
	else
	{
		size_t		k = be_minimal((uint64_t) n, h + 1);

		h[0] = (uint8_t) (base + 55 + k);
		dc_buf_put(b, h, k + 1);
	}
}

static void
rlp_bytes(DcBytes *b, const uint8_t *s, size_t n)
{
	if (n == 1 && s[0] < 0x80)
		dc_buf_put(b, s, 1);
	else
	{
		rlp_header(b, 0x80, n);
		dc_buf_put(b, s, n);
	}
}

static void
rlp_uint(DcBytes *b, uint64_t v)
{
	uint8_t		be[8];

	rlp_bytes(b, be, be_minimal(v, be));
}

/* A 32-byte big-endian integer, leading zeros stripped (signature r and s). */
static void
rlp_uint256(DcBytes *b, const uint8_t v[32])
{
	size_t		i = 0;

	while (i < 32 && v[i] == 0)
		i++;
	rlp_bytes(b, v + i, 32 - i);
}

bool
eth_rlp_string(const uint8_t *s, size_t n, uint8_t **buf, size_t *len, DErr *err)
{
	DcBytes		b = {0};

	rlp_bytes(&b, s, n);
	return dc_buf_finish(&b, buf, len, "a transaction", err);
}

bool
eth_rlp_list(const uint8_t *items, size_t n, uint8_t **buf, size_t *len, DErr *err)
{
	DcBytes		b = {0};

	rlp_header(&b, 0xc0, n);
	dc_buf_put(&b, items, n);
	return dc_buf_finish(&b, buf, len, "a transaction", err);
}

/* The transaction's fields, with (v, r, s) or with (chainId, 0, 0) for signing. */
static void
tx_fields(DcBytes *b, const EthTx *tx)
{
	rlp_uint(b, tx->nonce);
	rlp_uint(b, tx->gas_price);
	rlp_uint(b, tx->gas_limit);
	rlp_bytes(b, tx->to, DC_ADDR_LEN);
	rlp_uint(b, tx->value);
	rlp_bytes(b, tx->data, tx->data_len);
}

bool
eth_tx_sign(const EthTx *tx, const uint8_t sk[DC_SECKEY_LEN], uint8_t **raw, size_t *raw_len, uint8_t hash[32],
			DErr *err)
{
	DcBytes		body = {0};
	DcBytes		list = {0};
	uint8_t		digest[32];
	uint8_t		sig[DC_SIG_LEN];
	uint64_t	v;

	*raw = NULL;
	*raw_len = 0;
	if (tx->chain_id == 0 || tx->chain_id > (UINT64_MAX - 36) / 2)
		return derr_set(err, DERR_ARG, "chain id %llu cannot sign an EIP-155 transaction",
						(unsigned long long) tx->chain_id);
	tx_fields(&body, tx);
	rlp_uint(&body, tx->chain_id);
	rlp_uint(&body, 0);
	rlp_uint(&body, 0);
	rlp_header(&list, 0xc0, body.len);
	dc_buf_put(&list, body.data, body.len);
	if (body.failed || list.failed)
	{
		free(body.data);
		free(list.data);
		return derr_set(err, DERR_NOMEM, "out of memory encoding a transaction");
	}
	dc_keccak256(list.data, list.len, digest);
	free(body.data);
	free(list.data);
	memset(&body, 0, sizeof(body));
	memset(&list, 0, sizeof(list));
	if (!dc_sign_recoverable(sk, digest, sig, err))
		return false;
	v = (uint64_t) sig[64] + 35 + 2 * tx->chain_id;
	tx_fields(&body, tx);
	rlp_uint(&body, v);
	rlp_uint256(&body, sig);
	rlp_uint256(&body, sig + 32);
	rlp_header(&list, 0xc0, body.len);
	dc_buf_put(&list, body.data, body.len);
	free(body.data);
	if (!dc_buf_finish(&list, raw, raw_len, "a transaction", err))
		return false;
	dc_keccak256(*raw, *raw_len, hash);
	return true;
}

/* ---- charge() ------------------------------------------------------------ */

void
ledger_charge_digest(const uint8_t contract[DC_ADDR_LEN], uint64_t chain_id, const LedgerChargeReq *r,
					 uint8_t digest[32])
{
	static const char tag[] = LEDGER_PURPOSE " charge";
	uint8_t		words[8][ABI_WORD];
	uint8_t		packed_hash[32];

	dc_keccak256(tag, strlen(tag), words[0]);
	abi_word_address(contract, words[1]);
	abi_word_uint64(chain_id, words[2]);
	abi_word_bytes32(r->query_hash, words[3]);
	abi_word_uint64(r->epsilon_micro, words[4]);
	abi_word_uint64(r->delta_pico, words[5]);
	dc_keccak256(r->manifests, 32 * r->n_manifests, packed_hash);
	abi_word_bytes32(packed_hash, words[6]);
	abi_word_bytes32(r->nonce, words[7]);
	dc_keccak256(words, sizeof(words), digest);
}

bool
ledger_charge_calldata(const LedgerChargeReq *r, const LedgerChargeSig *s, uint8_t **out, size_t *out_len,
					   DErr *err)
{
	static const char signature[] =
		"charge((bytes32,uint64,uint64,bytes32[],bytes32),(bytes,bytes,bytes,bytes,bytes))";
	DcBytes		b = {0};
	uint8_t		sel[ABI_SELECTOR_LEN];
	uint8_t		w[ABI_WORD];
	size_t		req_size = 5 * ABI_WORD + ABI_WORD + 32 * r->n_manifests;
	const uint8_t *parts[5] = {s->derived_pub, s->app_pub, s->signature, s->chain[0], s->chain[1]};
	const size_t lens[5] = {64, 64, DC_SIG_LEN, DC_SIG_LEN, DC_SIG_LEN};
	size_t		off;

	*out = NULL;
	*out_len = 0;
	if (r->n_manifests == 0 || r->n_manifests > 1024)
		return derr_set(err, DERR_ARG, "a charge names 1 to 1024 datasets, not %zu", r->n_manifests);
	abi_selector(signature, sel);
	dc_buf_put(&b, sel, sizeof(sel));
	/* two dynamic tuples: their offsets */
	abi_put_uint(&b, 2 * ABI_WORD);
	abi_put_uint(&b, 2 * ABI_WORD + req_size);
	/* ChargeRequest */
	abi_word_bytes32(r->query_hash, w);
	dc_buf_put(&b, w, ABI_WORD);
	abi_put_uint(&b, r->epsilon_micro);
	abi_put_uint(&b, r->delta_pico);
	abi_put_uint(&b, 5 * ABI_WORD);
	abi_word_bytes32(r->nonce, w);
	dc_buf_put(&b, w, ABI_WORD);
	abi_put_uint(&b, r->n_manifests);
	for (size_t i = 0; i < r->n_manifests; i++)
		dc_buf_put(&b, r->manifests[i], 32);
	/* ChargeSig: five offsets, then the five byte strings */
	off = 5 * ABI_WORD;
	for (int i = 0; i < 5; i++)
	{
		abi_put_uint(&b, off);
		off += abi_bytes_size(lens[i]);
	}
	for (int i = 0; i < 5; i++)
		abi_put_bytes(&b, parts[i], lens[i]);
	return dc_buf_finish(&b, out, out_len, "a transaction", err);
}

bool
ledger_charge_sign(const GaKey *key, const uint8_t kms_root[DC_PUBKEY_LEN], const uint8_t app_id[DC_ADDR_LEN],
				   uint64_t chain_id, const LedgerChargeReq *r, LedgerChargeSig *out, DErr *err)
{
	uint8_t		app_pub[DC_PUBKEY_LEN];
	uint8_t		full[DC_PUBKEY_UNCOMP_LEN];
	uint8_t		digest[32];

	memset(out, 0, sizeof(*out));
	if (!dstack_sigchain_verify(kms_root, app_id, LEDGER_PURPOSE, key->pub, key->chain[0], key->chain[1],
								app_pub, err))
		return false;
	if (!dc_pubkey_uncompress(key->pub, full, err))
		return false;
	memcpy(out->derived_pub, full + 1, 64);
	if (!dc_pubkey_uncompress(app_pub, full, err))
		return false;
	memcpy(out->app_pub, full + 1, 64);
	memcpy(out->chain, key->chain, sizeof(out->chain));
	ledger_charge_digest(app_id, chain_id, r, digest);
	return dc_sign_recoverable(key->key, digest, out->signature, err);
}
