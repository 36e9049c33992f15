/*
 * ethtx.h: Ethereum transactions the CVM sends itself (docs/operations.md,
 * "The ledger on chain"): RLP, EIP-155 signing of legacy transactions, and
 * the calldata and digest of ConsortiumApp.charge().
 *
 * No PostgreSQL here; the RPC calls that send and await a transaction are
 * in rpc_tx.c.
 */
#ifndef DSTACK_ETHTX_H
#define DSTACK_ETHTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "derr.h"
#include "guest_agent.h"

/* A legacy (type 0) transaction, signed with EIP-155 replay protection. */
typedef struct EthTx
{
	uint64_t	nonce;
	uint64_t	gas_price;		/* wei */
	uint64_t	gas_limit;
	uint8_t		to[DC_ADDR_LEN];
	uint64_t	value;			/* wei */
	const uint8_t *data;
	size_t		data_len;
	uint64_t	chain_id;
} EthTx;

/*
 * Sign tx with sk: *raw (malloc()ed) is what eth_sendRawTransaction takes,
 * hash its transaction hash (keccak256 of raw).
 */
extern bool eth_tx_sign(const EthTx *tx, const uint8_t sk[DC_SECKEY_LEN], uint8_t **raw, size_t *raw_len,
						uint8_t hash[32], DErr *err);

/* RLP of one byte string, appended to a malloc()ed buffer (exposed for tests). */
extern bool eth_rlp_string(const uint8_t *s, size_t n, uint8_t **buf, size_t *len, DErr *err);
/* RLP list header + the already-encoded items. */
extern bool eth_rlp_list(const uint8_t *items, size_t n, uint8_t **buf, size_t *len, DErr *err);

/* ---- ConsortiumApp.charge(ChargeRequest, ChargeSig) ---- */

#define LEDGER_PURPOSE "dstack-ledger/v1"

typedef struct LedgerChargeReq
{
	uint8_t		query_hash[32];
	uint64_t	epsilon_micro;
	uint64_t	delta_pico;		/* delta in units of 1e-12 */
	const uint8_t (*manifests)[32];
	size_t		n_manifests;
	uint8_t		nonce[32];
} LedgerChargeReq;

typedef struct LedgerChargeSig
{
	uint8_t		derived_pub[64];	/* uncompressed x || y of the GetKey key at LEDGER_PURPOSE */
	uint8_t		app_pub[64];	/* uncompressed x || y of the app key */
	uint8_t		signature[DC_SIG_LEN];	/* by the derived key over the charge digest */
	uint8_t		chain[2][DC_SIG_LEN];	/* dstack's signature chain of the derived key */
} LedgerChargeSig;

/*
 * What the derived key signs:
 * keccak256(abi.encode(keccak256("dstack-ledger/v1 charge"), contract, chainid,
 *   queryHash, epsilonMicro, deltaPico, keccak256(abi.encodePacked(manifestHashes)), nonce))
 */
extern void ledger_charge_digest(const uint8_t contract[DC_ADDR_LEN], uint64_t chain_id,
								 const LedgerChargeReq *r, uint8_t digest[32]);
/* Calldata of charge((bytes32,uint64,uint64,bytes32[],bytes32),(bytes,bytes,bytes,bytes,bytes)). */
extern bool ledger_charge_calldata(const LedgerChargeReq *r, const LedgerChargeSig *s, uint8_t **out,
								   size_t *out_len, DErr *err);

/*
 * Sign a charge with the guest agent's ledger key (GetKey at LEDGER_PURPOSE):
 * checks the key's dstack chain ends at kms_root for app_id (the contract),
 * recovers the app key from it, and fills everything charge() needs.
 */
extern bool ledger_charge_sign(const GaKey *key, const uint8_t kms_root[DC_PUBKEY_LEN],
							   const uint8_t app_id[DC_ADDR_LEN], uint64_t chain_id, const LedgerChargeReq *r,
							   LedgerChargeSig *out, DErr *err);

#endif							/* DSTACK_ETHTX_H */
