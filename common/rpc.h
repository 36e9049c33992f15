/*
 * rpc.h: Ethereum JSON-RPC client and the consortium contract reader.
 *
 * The CVM decides whether it may use an owner's key from the consortium
 * contract's state on chain; dstack-verify re-reads that state for a
 * receipt.  Both go through this client.  Every read of one check is pinned
 * to ONE block, by its hash (EIP-1898), so that a check never mixes state
 * from two blocks, and goes to the node as one JSON-RPC batch: a check costs
 * two requests per node, not a dozen (rpc.c is the transport, rpc_consortium.c
 * the contract's reads).
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

/*
 * Several calls in one HTTP request (a JSON-RPC 2.0 batch).  Each call's
 * result is checked as rpc_request() checks one; the batch succeeds only if
 * every call does (then each calls[i].result is a new reference the caller
 * must json_decref(); on failure all are NULL and err is the first failing
 * call's error).  A node that answers a batch with a single object (it takes
 * no batches) is asked call by call from then on.
 */
#define RPC_MAX_BATCH	32
typedef struct RpcCall
{
	const char *method;
	char	   *params;			/* JSON text of the params array, NULL for []; the caller's */
	json_t	   *result;			/* out */
} RpcCall;
extern bool rpc_batch(RpcClient *rpc, RpcCall *calls, int n, DErr *err);

extern bool rpc_chain_id(RpcClient *rpc, uint64_t *chain_id, DErr *err);
/* eth_chainId and eth_blockNumber in one request. */
extern bool rpc_chain_and_head(RpcClient *rpc, uint64_t *chain_id, uint64_t *head, DErr *err);
extern bool rpc_block_number(RpcClient *rpc, uint64_t *number, DErr *err);
/* Header of block `number` (or RPC_LATEST); DERR_REMOTE when the node has no such block. */
extern bool rpc_get_block(RpcClient *rpc, uint64_t number, RpcBlock *block, DErr *err);
/* eth_call at block `number` (or RPC_LATEST); *ret is malloc()ed. */
extern bool rpc_eth_call(RpcClient *rpc, const uint8_t to[ABI_ADDR_LEN], const uint8_t *data,
						 size_t len, uint64_t number, uint8_t **ret, size_t *ret_len, DErr *err);
/* eth_call of view `sig` with n static argument words (abi_encode_static_call) at block `number`. */
extern bool rpc_view_call(RpcClient *rpc, const uint8_t to[ABI_ADDR_LEN], const char *sig,
						  const uint8_t (*words)[ABI_WORD], size_t n, uint64_t number,
						  uint8_t **ret, size_t *ret_len, DErr *err);

/*
 * Read the consortium contract at `app` as of block `number` (RPC_LATEST:
 * the latest block, fixed once at the start).  All its calls share ONE
 * deadline, the client's timeout_ms, so a slow node cannot stretch a check
 * to many timeouts.  On failure *state is empty.
 */
extern bool rpc_consortium_state(RpcClient *rpc, const uint8_t app[ABI_ADDR_LEN], uint64_t number,
								 ConsortiumState *state, DErr *err);
/*
 * The same read and, in the same batch at the same block, what the KMS
 * contract kms answers to isAppAllowed(boot) (see rpc_is_app_allowed).
 * *kms_reason is malloc()ed; on failure it is NULL and *kms_allowed false.
 */
extern bool rpc_consortium_state_kms(RpcClient *rpc, const uint8_t app[ABI_ADDR_LEN], uint64_t number,
									 const uint8_t *kms, const AbiAppBootInfo *boot, ConsortiumState *state,
									 bool *kms_allowed, char **kms_reason, DErr *err);
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

/* ---- several nodes (rpc_quorum.c) ---- */

/*
 * A CVM should not take one JSON-RPC node's word for the chain: the FDW reads
 * the consortium through every node of its rpc_url list and uses the state
 * only when a quorum of them (rpc_quorum, default all, always more than half)
 * report the same block hash, contract state and KMS verdict at the same
 * height.  A node on another chain (eth_chainId) refuses the read outright.
 */
#define RPC_MAX_NODES	8

typedef struct RpcNodeList
{
	int			n;
	char	   *urls[RPC_MAX_NODES];	/* malloc()ed */
} RpcNodeList;

/*
 * Split a comma-separated list of http(s) URLs (spaces around commas
 * allowed).  DERR_ARG for an empty entry, a non-http(s) URL, a duplicate or
 * more than RPC_MAX_NODES.
 */
extern bool rpc_parse_urls(const char *csv, RpcNodeList *list, DErr *err);
extern void rpc_node_list_free(RpcNodeList *list);	/* NULL-safe */
/* The node's name for messages: scheme://host[:port], credentials and path hidden. */
extern void rpc_url_name(const char *url, char *out, size_t outlen);

/*
 * The quorum for n nodes: 0 means all of them; otherwise it must be a
 * majority (more than n/2) and at most n, so that two disjoint groups can
 * never both reach it.  DERR_ARG otherwise.
 */
extern bool rpc_quorum_effective(int n, int quorum, int *effective, DErr *err);

/*
 * The height to read at: the quorum-th highest head (so that at least a
 * quorum of nodes have the block) minus confirmations, floored at 0.
 */
extern uint64_t rpc_quorum_height(const uint64_t *heads, int n, int quorum, int confirmations);

/* Whether two reads say the same thing: block, every contract view, KMS verdict. */
typedef struct RpcNodeView
{
	ConsortiumState st;
	bool		kms_allowed;
	char	   *kms_reason;		/* malloc()ed */
} RpcNodeView;
extern bool rpc_node_views_equal(const RpcNodeView *a, const RpcNodeView *b);

typedef enum RpcNodeStatus
{
	RPCN_AGREES,				/* in the group that reached the quorum */
	RPCN_DISSENTS,				/* answered, outside that group (or no group reached it) */
	RPCN_FAILED,				/* did not answer (err says why) */
	RPCN_WRONG_CHAIN			/* serves another chain id */
} RpcNodeStatus;

typedef struct RpcNodeResult
{
	char		name[160];
	RpcNodeStatus status;
	DErr		err;			/* RPCN_FAILED */
	uint64_t	chain_id;
	uint64_t	head;
	int			group;			/* nodes with the same view share it; -1 before the reads */
	RpcNodeView view;
} RpcNodeResult;

typedef enum RpcQuorumOutcome
{
	RPCQ_AGREED,				/* a quorum agrees: view is theirs */
	RPCQ_WRONG_CHAIN,			/* some node serves another chain */
	RPCQ_TOO_FEW,				/* fewer than a quorum of nodes answered */
	RPCQ_DISAGREE				/* they answered, but no view has a quorum */
} RpcQuorumOutcome;

typedef struct RpcQuorumResult
{
	int			n;
	int			quorum;
	uint64_t	height;
	RpcQuorumOutcome outcome;
	int			agreeing;		/* size of the largest group */
	const RpcNodeView *view;	/* RPCQ_AGREED: the quorum's view (points into nodes) */
	RpcNodeResult nodes[RPC_MAX_NODES];
} RpcQuorumResult;

/*
 * Read the consortium contract at app, and DstackKms(kms).isAppAllowed(boot)
 * (kms NULL: not asked, the verdict is "allowed"), through every node of
 * list at one height, and find the quorum.  Each node gets the options opt
 * (its own deadline, the caller's cancel check).  Returns false only for a
 * bad argument (err); every node's fate and the outcome are in *res, which
 * the caller frees with rpc_quorum_result_free().
 */
extern bool rpc_quorum_read(const RpcNodeList *list, int quorum, uint64_t chain_id, int confirmations,
							const uint8_t app[ABI_ADDR_LEN], const uint8_t *kms,
							const AbiAppBootInfo *boot, const HttpOptions *opt,
							RpcQuorumResult *res, DErr *err);
extern void rpc_quorum_result_free(RpcQuorumResult *res);	/* NULL-safe */

#endif							/* DSTACK_RPC_H */
