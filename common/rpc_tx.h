/*
 * rpc_tx.h: sending a transaction and waiting for it, over JSON-RPC
 * (eth_getTransactionCount, eth_gasPrice, eth_estimateGas,
 * eth_sendRawTransaction, eth_getTransactionReceipt).  The CVM sends its
 * own ledger charges this way (docs/operations.md).
 */
#ifndef DSTACK_RPC_TX_H
#define DSTACK_RPC_TX_H

#include "ethtx.h"
#include "rpc.h"

/* What a mined transaction's receipt says. */
typedef struct RpcTxReceipt
{
	bool		success;		/* status 0x1 */
	uint64_t	block_number;
	uint8_t		block_hash[32];
	uint64_t	gas_used;
	/* the first log emitted by `from_contract` with topic0 == `topic0` (when asked) */
	bool		log_found;
	uint64_t	log_index;
	uint8_t		log_topics[4][32];
	size_t		n_log_topics;
} RpcTxReceipt;

extern bool rpc_tx_count(RpcClient *rpc, const uint8_t addr[DC_ADDR_LEN], uint64_t *nonce, DErr *err);
extern bool rpc_gas_price(RpcClient *rpc, uint64_t *wei, DErr *err);
/* Gas a call would use; a revert comes back as the node's error, its reason decoded. */
extern bool rpc_estimate_gas(RpcClient *rpc, const uint8_t from[DC_ADDR_LEN], const uint8_t to[DC_ADDR_LEN],
							 const uint8_t *data, size_t len, uint64_t *gas, DErr *err);
extern bool rpc_send_raw(RpcClient *rpc, const uint8_t *raw, size_t len, uint8_t hash[32], DErr *err);

/*
 * Poll for the receipt of tx `hash` until it is mined and `confirmations`
 * blocks deep, at most timeout_ms; should_abort (may be NULL) is asked
 * between polls.  topic0/from_contract (may be NULL) pick the log to report.
 */
extern bool rpc_wait_receipt(RpcClient *rpc, const uint8_t hash[32], uint64_t confirmations, long timeout_ms,
							 bool (*should_abort) (void *), void *abort_arg, const uint8_t *from_contract,
							 const uint8_t *topic0, RpcTxReceipt *out, DErr *err);

#endif							/* DSTACK_RPC_TX_H */
