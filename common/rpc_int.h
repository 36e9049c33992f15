/*
 * rpc_int.h: what rpc.c (the JSON-RPC transport) shares with
 * rpc_consortium.c (the reads of the consortium contract built on it).
 * Not for other callers: they use rpc.h.
 */
#ifndef DSTACK_RPC_INT_H
#define DSTACK_RPC_INT_H

#include "rpc.h"

struct RpcClient
{
	char	   *url;
	HttpOptions opt;
	uint64_t	next_id;
	long		deadline_ms;	/* monotonic end of a multi-call read, or 0 */
	bool		no_batch;		/* the node refused a batch: send its calls one by one */
	HttpConns  *own_conns;		/* its kept connections (opt.conns), or NULL */
	char		name[160];		/* url without path/query: safe to print */
};

/* Monotonic milliseconds, for deadlines. */
extern long rpc_now_ms(void);

/*
 * eth_call's params: [{"to":..,"data":..}, BLOCK] with BLOCK the JSON text
 * of a block tag ("latest", "0x7") or of an EIP-1898 block object.
 * malloc()ed; NULL when out of memory.
 */
extern char *rpc_eth_call_params(const uint8_t to[ABI_ADDR_LEN], const uint8_t *data, size_t len,
								 const char *block_json);

/* An eth_call result (0x-hex) as bytes; *ret is malloc()ed (NULL when empty). */
extern bool rpc_eth_call_result(RpcClient *rpc, json_t *res, uint8_t **ret, size_t *ret_len, DErr *err);

/* A JSON-RPC QUANTITY ("0x" and 1..16 significant hex digits). */
extern bool rpc_parse_quantity(json_t *v, const char *what, uint64_t *out, DErr *err);

#endif							/* DSTACK_RPC_INT_H */
