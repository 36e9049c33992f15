/*
 * rpc.h: Ethereum JSON-RPC client and the consortium contract reader.
 *
 * The CVM decides whether it may use an owner's key from the consortium
 * contract's state on chain; dstack-verify re-reads that state for a
 * receipt.  Both go through this client.  Every read of one check is pinned
 * to ONE block (number and hash are recorded in the result) so that a check
 * never mixes state from two blocks; the block hash is read again after the
 * reads to detect a reorganisation in between.
 *
 * Errors: transport failures are DERR_NETWORK ("cannot reach json-rpc node
 * <url>"), JSON-RPC error objects and reverts DERR_REMOTE with the node's
 * message (Error(string) revert reasons decoded), malformed answers
 * DERR_FORMAT.
 */
#ifndef DSTACK_RPC_H
#define DSTACK_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "abi.h"
#include "derr.h"
#include "http.h"

/* Block selector meaning "the node's latest block". */
#define RPC_LATEST	UINT64_MAX

typedef struct RpcClient RpcClient;

typedef struct RpcBlock
{
	uint64_t	number;
	uint8_t		hash[32];
	uint64_t	timestamp;		/* seconds since the epoch */
} RpcBlock;

/* Decoded ConsortiumApp.policy(). */
typedef struct ConsortiumPolicy
{
	uint64_t	epsilon_milli;	/* total privacy budget, in thousandths */
	uint32_t	min_group_size;
	char	   *output_type;	/* malloc()ed */
	char	   *privacy_unit;	/* malloc()ed */
} ConsortiumPolicy;

/* Everything a check needs, read at one block. */
typedef struct ConsortiumState
{
	uint64_t	chain_id;
	uint64_t	block_number;
	uint8_t		block_hash[32];
	uint64_t	block_timestamp;
	uint8_t		app_id[ABI_ADDR_LEN];	/* the contract's address */
	uint8_t		compose_hash[32];
	uint64_t	threshold;
	uint64_t	approval_count;
	bool		revoked;
	uint8_t		revoked_by[ABI_ADDR_LEN];	/* zero when not revoked */
	char	   *revoke_reason;	/* malloc()ed; "" when not revoked */
	bool		is_approved;
	uint8_t		(*approvers)[ABI_ADDR_LEN];	/* malloc()ed, n_approvers entries */
	size_t		n_approvers;
	uint8_t		(*owners)[ABI_ADDR_LEN];	/* malloc()ed, n_owners entries */
	size_t		n_owners;
	ConsortiumPolicy policy;
} ConsortiumState;

/*
 * A client for one node.  url must be http:// or https://.  opt NULL means
 * the http.h defaults (2 s connect, 10 s per call including retries).
 */
extern RpcClient *rpc_new(const char *url, const HttpOptions *opt, DErr *err);
extern void rpc_free(RpcClient *rpc);	/* NULL-safe */

/*
 * One raw JSON-RPC call.  params_json is the JSON text of the params array
 * (NULL for []).  On success *result is the "result" member (a new reference
 * the caller must json_decref()).
 */
extern bool rpc_request(RpcClient *rpc, const char *method, const char *params_json,
						json_t **result, DErr *err);

extern bool rpc_chain_id(RpcClient *rpc, uint64_t *chain_id, DErr *err);
extern bool rpc_block_number(RpcClient *rpc, uint64_t *number, DErr *err);
/* Header of block `number` (or RPC_LATEST); DERR_REMOTE when the node has no such block. */
extern bool rpc_get_block(RpcClient *rpc, uint64_t number, RpcBlock *block, DErr *err);
/* eth_call at block `number` (or RPC_LATEST); *ret is malloc()ed. */
extern bool rpc_eth_call(RpcClient *rpc, const uint8_t to[ABI_ADDR_LEN], const uint8_t *data,
						 size_t len, uint64_t number, uint8_t **ret, size_t *ret_len, DErr *err);

/*
 * Read the consortium contract at `app` as of block `number` (RPC_LATEST:
 * the latest block, fixed once at the start).  All its calls share ONE
 * deadline, the client's timeout_ms, so a slow node cannot stretch a check
 * to many timeouts.  On failure *state is empty.
 */
extern bool rpc_consortium_state(RpcClient *rpc, const uint8_t app[ABI_ADDR_LEN], uint64_t number,
								 ConsortiumState *state, DErr *err);
extern void rpc_consortium_state_free(ConsortiumState *state);	/* NULL-safe */
/* Membership (dc_addr_in() of crypto.h) in the state's lists. */
extern bool consortium_state_is_approver(const ConsortiumState *state, const uint8_t who[ABI_ADDR_LEN]);
extern bool consortium_state_is_owner(const ConsortiumState *state, const uint8_t who[ABI_ADDR_LEN]);

/* hasApproved(owner) at a block. */
extern bool rpc_has_approved(RpcClient *rpc, const uint8_t app[ABI_ADDR_LEN],
							 const uint8_t owner[ABI_ADDR_LEN], uint64_t number,
							 bool *approved, DErr *err);

/*
 * IAppAuth.isAppAllowed(boot) at a block: what dstack's KMS asks before it
 * releases keys.  *reason is malloc()ed (may be "").
 */
extern bool rpc_is_app_allowed(RpcClient *rpc, const uint8_t app[ABI_ADDR_LEN],
							   const AbiAppBootInfo *boot, uint64_t number,
							   bool *allowed, char **reason, DErr *err);

#endif							/* DSTACK_RPC_H */
