/*
 * rpc_tx.c: send a signed transaction and wait for it (rpc_tx.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hex.h"
#include "rpc_tx.h"

/* A JSON quantity ("0x1a") as uint64. */
static bool
quantity(json_t *v, const char *what, uint64_t *out, DErr *err)
{
	const char *s = json_string_value(v);
	uint64_t	n = 0;

	if (s == NULL || strncmp(s, "0x", 2) != 0 || s[2] == '\0' || strlen(s) > 18)
		return derr_set(err, DERR_FORMAT, "json-rpc %s is not a 64-bit quantity", what);
	for (const char *p = s + 2; *p; p++)
	{
		int			d = (*p >= '0' && *p <= '9') ? *p - '0' : (*p >= 'a' && *p <= 'f') ? *p - 'a' + 10 :
			(*p >= 'A' && *p <= 'F') ? *p - 'A' + 10 : -1;

		if (d < 0)
			return derr_set(err, DERR_FORMAT, "json-rpc %s is not a hex quantity", what);
		n = n * 16 + (uint64_t) d;
	}
	*out = n;
	return true;
}

/* "0x" + hex of bytes, malloc()ed. */
static char *
hex0x(const uint8_t *b, size_t n)
{
	char	   *s = malloc(2 * n + 3);

	if (s == NULL)
		return NULL;
	s[0] = '0';
	s[1] = 'x';
	dhex_encode(b, n, s + 2);
	return s;
}

static bool
bytes32(json_t *v, const char *what, uint8_t out[32], DErr *err)
{
	const char *s = json_string_value(v);

	if (s == NULL || strncmp(s, "0x", 2) != 0 || !dhex_decode_exact(s + 2, out, 32, what, err))
		return derr_set(err, DERR_FORMAT, "json-rpc %s is not 32 bytes of hex", what);
	return true;
}

/* A call whose result is one quantity, with params given as JSON text. */
static bool
quantity_call(RpcClient *rpc, const char *method, const char *params, uint64_t *out, DErr *err)
{
	json_t	   *res = NULL;
	bool		ok;

	if (!rpc_request(rpc, method, params, &res, err))
		return false;
	ok = quantity(res, method, out, err);
	json_decref(res);
	return ok;
}

bool
rpc_tx_count(RpcClient *rpc, const uint8_t addr[DC_ADDR_LEN], uint64_t *nonce, DErr *err)
{
	char	   *a = hex0x(addr, DC_ADDR_LEN);
	char		params[96];

	if (a == NULL)
		return derr_set(err, DERR_NOMEM, "out of memory");
	snprintf(params, sizeof(params), "[\"%s\", \"pending\"]", a);
	free(a);
	return quantity_call(rpc, "eth_getTransactionCount", params, nonce, err);
}

bool
rpc_gas_price(RpcClient *rpc, uint64_t *wei, DErr *err)
{
	return quantity_call(rpc, "eth_gasPrice", "[]", wei, err);
}

bool
rpc_estimate_gas(RpcClient *rpc, const uint8_t from[DC_ADDR_LEN], const uint8_t to[DC_ADDR_LEN],
				 const uint8_t *data, size_t len, uint64_t *gas, DErr *err)
{
	char	   *f = hex0x(from, DC_ADDR_LEN);
	char	   *t = hex0x(to, DC_ADDR_LEN);
	char	   *d = hex0x(data, len);
	char	   *params = (f && t && d) ? malloc(strlen(d) + 160) : NULL;
	bool		ok;

	if (params == NULL)
	{
		free(f);
		free(t);
		free(d);
		return derr_set(err, DERR_NOMEM, "out of memory");
	}
	sprintf(params, "[{\"from\": \"%s\", \"to\": \"%s\", \"data\": \"%s\"}]", f, t, d);
	ok = quantity_call(rpc, "eth_estimateGas", params, gas, err);
	free(f);
	free(t);
	free(d);
	free(params);
	return ok;
}

bool
rpc_send_raw(RpcClient *rpc, const uint8_t *raw, size_t len, uint8_t hash[32], DErr *err)
{
	char	   *r = hex0x(raw, len);
	char	   *params = r ? malloc(strlen(r) + 8) : NULL;
	json_t	   *res = NULL;
	bool		ok;

	if (params == NULL)
	{
		free(r);
		return derr_set(err, DERR_NOMEM, "out of memory");
	}
	sprintf(params, "[\"%s\"]", r);
	free(r);
	ok = rpc_request(rpc, "eth_sendRawTransaction", params, &res, err);
	free(params);
	if (ok)
		ok = bytes32(res, "transaction hash", hash, err);
	json_decref(res);
	return ok;
}

static long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Fill the receipt from eth_getTransactionReceipt's answer. */
static bool
parse_receipt(json_t *res, const uint8_t *from_contract, const uint8_t *topic0, RpcTxReceipt *out, DErr *err)
{
	uint64_t	status;
	json_t	   *logs = json_object_get(res, "logs");
	size_t		i;
	json_t	   *log;

	if (!quantity(json_object_get(res, "status"), "receipt status", &status, err) ||
		!quantity(json_object_get(res, "blockNumber"), "receipt blockNumber", &out->block_number, err) ||
		!bytes32(json_object_get(res, "blockHash"), "receipt blockHash", out->block_hash, err) ||
		!quantity(json_object_get(res, "gasUsed"), "receipt gasUsed", &out->gas_used, err))
		return false;
	out->success = status == 1;
	if (topic0 == NULL || !json_is_array(logs))
		return true;
	json_array_foreach(logs, i, log)
	{
		const char *addr = json_string_value(json_object_get(log, "address"));
		json_t	   *topics = json_object_get(log, "topics");
		uint8_t		a[DC_ADDR_LEN];
		uint8_t		t0[32];
		DErr		ignore = {0};

		if (addr == NULL || strncmp(addr, "0x", 2) != 0 || !dhex_decode_exact(addr + 2, a, DC_ADDR_LEN, "log address", &ignore) ||
			!json_is_array(topics) || json_array_size(topics) == 0 ||
			!bytes32(json_array_get(topics, 0), "log topic", t0, &ignore))
			continue;
		if ((from_contract && memcmp(a, from_contract, DC_ADDR_LEN) != 0) || memcmp(t0, topic0, 32) != 0)
			continue;
		if (!quantity(json_object_get(log, "logIndex"), "logIndex", &out->log_index, err))
			return false;
		out->n_log_topics = json_array_size(topics) > 4 ? 4 : json_array_size(topics);
		for (size_t k = 0; k < out->n_log_topics; k++)
			if (!bytes32(json_array_get(topics, k), "log topic", out->log_topics[k], err))
				return false;
		out->log_found = true;
		break;
	}
	return true;
}

bool
rpc_wait_receipt(RpcClient *rpc, const uint8_t hash[32], uint64_t confirmations, long timeout_ms,
				 bool (*should_abort) (void *), void *abort_arg, const uint8_t *from_contract,
				 const uint8_t *topic0, RpcTxReceipt *out, DErr *err)
{
	char	   *h = hex0x(hash, 32);
	char		params[96];
	long		deadline = now_ms() + timeout_ms;
	long		pause_ms = 5;	/* doubled up to 100: a chain that mines at once is not */
								/* waited for 100 ms, a slow one is polled every 100 ms */

	memset(out, 0, sizeof(*out));
	if (h == NULL)
		return derr_set(err, DERR_NOMEM, "out of memory");
	snprintf(params, sizeof(params), "[\"%s\"]", h);
	for (;;)
	{
		json_t	   *res = NULL;
		uint64_t	head;

		if (!rpc_request(rpc, "eth_getTransactionReceipt", params, &res, err))
		{
			free(h);
			return false;
		}
		if (!json_is_null(res) && res != NULL)
		{
			bool		ok = parse_receipt(res, from_contract, topic0, out, err);

			json_decref(res);
			if (!ok)
			{
				free(h);
				return false;
			}
			if (!out->success || confirmations == 0)
				break;
			if (!rpc_block_number(rpc, &head, err))
			{
				free(h);
				return false;
			}
			if (head >= out->block_number + confirmations)
				break;
		}
		else
			json_decref(res);
		if (now_ms() >= deadline)
		{
			derr_set(err, DERR_NETWORK, "transaction %s was not mined within %ld ms", h, timeout_ms);
			free(h);
			return false;
		}
		if (should_abort && should_abort(abort_arg))
		{
			derr_set(err, DERR_NETWORK, "waiting for transaction %s was cancelled", h);
			free(h);
			return false;
		}
		usleep(pause_ms * 1000);
		pause_ms = pause_ms * 2 > 100 ? 100 : pause_ms * 2;
	}
	free(h);
	return true;
}
