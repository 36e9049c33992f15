/*
 * rpc.c: JSON-RPC 2.0 over HTTP to an Ethereum node, and the reads of the
 * consortium contract built on it (see rpc.h).
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto.h"
#include "hex.h"
#include "rpc_int.h"


/* Monotonic ms: a deadline must not move with the wall clock. */
long
rpc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Same redaction idea as http.c: an API key in the URL must not reach logs. */
void
rpc_url_name(const char *url, char *out, size_t outlen)
{
	const char *p = strstr(url, "://");
	const char *host = p ? p + 3 : url;
	const char *end = host + strcspn(host, "/?#,");
	const char *at = memchr(host, '@', (size_t) (end - host));

	if (at != NULL)
		host = at + 1;
	snprintf(out, outlen, "%.*s://%.*s%s",
			 p ? (int) (p - url) : 4, p ? url : "http",
			 (int) (end - host), host, *end != '\0' && *end != ',' && strcmp(end, "/") != 0 ? "/..." : "");
}

static void
rpc_set_name(RpcClient *rpc)
{
	rpc_url_name(rpc->url, rpc->name, sizeof(rpc->name));
}

/* Only HTTP(S) endpoints: geth's IPC socket speaks raw JSON, not HTTP. */
RpcClient *
rpc_new(const char *url, const HttpOptions *opt, DErr *err)
{
	RpcClient  *rpc;

	if (url == NULL || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0))
	{
		derr_set(err, DERR_ARG, "invalid json-rpc url");
		derr_detail(err, "The node URL must start with http:// or https://.");
		return NULL;
	}
	rpc = calloc(1, sizeof(*rpc));
	if (rpc == NULL || (rpc->url = strdup(url)) == NULL)
	{
		free(rpc);
		derr_set(err, DERR_NOMEM, "out of memory creating a json-rpc client");
		return NULL;
	}
	if (opt != NULL)
		rpc->opt = *opt;
	else
		http_options_default(&rpc->opt);
	/* the calls of one client go to one node: over one kept connection */
	rpc->opt.conns = rpc->own_conns = http_conns_new();
	rpc->next_id = 1;
	rpc_set_name(rpc);
	return rpc;
}

/* Release the client; NULL-safe so error paths need no checks. */
void
rpc_free(RpcClient *rpc)
{
	if (rpc == NULL)
		return;
	http_conns_free(rpc->own_conns);
	free(rpc->url);
	free(rpc);
}

/* A short, printable excerpt of a body for error details. */
static void
rpc_excerpt(const char *body, size_t len, char *out, size_t outlen)
{
	size_t		n = 0;

	for (size_t i = 0; i < len && n + 4 < outlen && i < 160; i++)
		out[n++] = isprint((unsigned char) body[i]) ? body[i] : '?';
	if (len > 160 && n + 4 < outlen)
	{
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
}

/*
 * Custom errors of contracts/src/ConsortiumApp.sol, so that a revert names
 * the rule that refused instead of showing a bare selector.
 */
static const char *const consortium_errors[] = {
	"NotOwner(address)",
	"AlreadyApproved(address)",
	"AlreadyRevoked(address)",
	"InvalidThreshold(uint256,uint256)",
	"DuplicateOwner(address)",
	"ZeroOwner()",
	"ZeroComposeHash()",
	/* the ledger: charge() and the dataset registry */
	"NotApproved(uint256,uint256)",
	"MalformedChargeSig()",
	"BadChargeSignature()",
	"BadAppSignature()",
	"BadKmsSignature(address)",
	"NonceUsed(bytes32)",
	"NoManifests()",
	"DuplicateManifest(bytes32)",
	"UnknownManifest(bytes32)",
	"ManifestSuperseded(bytes32)",
	"BudgetExceeded(bytes32,uint64,uint64,uint64)",
	"ZeroDatasetId()",
	"ZeroManifestHash()",
	"DatasetExists(bytes16)",
	"ManifestExists(bytes32)",
	"UnknownDataset(bytes16)",
	"NotDatasetOwner(bytes16,address)",
	"UnknownCharge(uint256)",
};

/*
 * Turn a JSON-RPC error object into DERR_REMOTE with the node's own words.
 * Reverts carry their data as hex; Error(string) is decoded so that the
 * contract's reason ("not approved") reaches the user.
 */
static bool
rpc_remote_error(RpcClient *rpc, const char *method, json_t *error, DErr *err)
{
	json_t	   *jmsg = json_object_get(error, "message");
	json_t	   *jcode = json_object_get(error, "code");
	json_t	   *jdata = json_object_get(error, "data");
	const char *msg = json_is_string(jmsg) ? json_string_value(jmsg) : "(no message)";
	long long	code = json_is_integer(jcode) ? (long long) json_integer_value(jcode) : 0;
	char	   *reason = NULL;

	/* Some nodes nest revert data one level deeper: {"data": {"data": "0x.."}}. */
	if (json_is_object(jdata))
		jdata = json_object_get(jdata, "data");
	if (json_is_string(jdata) && strncmp(json_string_value(jdata), "0x", 2) == 0)
	{
		uint8_t    *raw = NULL;
		size_t		rawlen = 0;
		DErr		ignore = {0};

		if (dhex_decode_alloc(json_string_value(jdata), &raw, &rawlen, "revert data", &ignore))
		{
			abi_describe_revert_known(raw, rawlen, consortium_errors,
									  sizeof(consortium_errors) / sizeof(consortium_errors[0]),
									  &reason, &ignore);
			free(raw);
		}
	}
	if (reason != NULL)
	{
		derr_set(err, DERR_REMOTE, "%s reverted: %s", method, reason);
		derr_detail(err, "The json-rpc node %s answered error %lld: %s.", rpc->name, code, msg);
		free(reason);
	}
	else
	{
		derr_set(err, DERR_REMOTE, "json-rpc node %s answered %s with error %lld: %s",
				 rpc->name, method, code, msg);
		derr_detail(err, "The node refused the request; its message is quoted as sent.");
	}
	return false;
}

/* {"jsonrpc":"2.0","id":id,"method":..,"params":..}; NULL with err set when params is not an array. */
static json_t *
rpc_call_object(const char *method, const char *params_json, uint64_t id, DErr *err)
{
	json_error_t jerr;
	json_t	   *params = json_loads(params_json ? params_json : "[]", 0, &jerr);
	json_t	   *req;

	if (!json_is_array(params))
	{
		json_decref(params);
		derr_set(err, DERR_ARG, "invalid params for json-rpc %s", method);
		return NULL;
	}
	req = json_pack("{s:s, s:I, s:s, s:o}", "jsonrpc", "2.0", "id", (json_int_t) id,
					"method", method, "params", params);
	if (req == NULL)
		derr_set(err, DERR_NOMEM, "out of memory building json-rpc %s", method);
	return req;
}

/*
 * POST one request body.  Inside a multi-call read the whole read shares one
 * deadline (rpc_consortium_state), so each post gets what is left of it.
 */
static bool
rpc_post(RpcClient *rpc, const char *method, const char *text, HttpResponse *hr, DErr *err)
{
	HttpOptions hopt = rpc->opt;

	if (rpc->deadline_ms != 0)
	{
		long		left = rpc->deadline_ms - rpc_now_ms();

		if (left <= 0)
		{
			derr_set(err, DERR_NETWORK, "cannot reach json-rpc node %s: timed out after %ld ms",
					 rpc->name, rpc->opt.timeout_ms);
			derr_detail(err, "The reads of one check share a deadline of %ld ms, which passed before %s.",
						rpc->opt.timeout_ms, method);
			return false;
		}
		if (left < hopt.timeout_ms)
			hopt.timeout_ms = left;
	}
	return http_request("POST", rpc->url, NULL, text, &hopt, "json-rpc node", hr, err);
}

/* The error for a body that is not the JSON shape expected. */
static void
rpc_malformed(RpcClient *rpc, const char *method, const HttpResponse *hr, const char *shape, DErr *err)
{
	char		ex[200];

	rpc_excerpt(hr->body, hr->len, ex, sizeof(ex));
	if (hr->status != 200)
		derr_set(err, DERR_REMOTE, "json-rpc node %s answered http %ld to %s", rpc->name, hr->status, method);
	else
		derr_set(err, DERR_FORMAT, "json-rpc node %s sent a malformed answer to %s", rpc->name, method);
	derr_detail(err, "The answer is not %s: \"%s\".", shape, ex);
}

/*
 * One answer object, with every check a hostile node could fail: its error
 * object, the HTTP status, the id it must carry, a result.
 */
static bool
rpc_answer(RpcClient *rpc, const char *method, json_t *resp, uint64_t id, long status,
		   json_t **result, DErr *err)
{
	json_t	   *jerror = json_object_get(resp, "error");
	json_t	   *jid;
	json_t	   *jresult;

	if (json_is_object(jerror))
		return rpc_remote_error(rpc, method, jerror, err);
	if (jerror != NULL && !json_is_null(jerror) && status == 200)
		return derr_set(err, DERR_FORMAT, "json-rpc node %s answered %s with a malformed error object",
						rpc->name, method);
	if (status != 200)
		return derr_set(err, DERR_REMOTE, "json-rpc node %s answered http %ld to %s", rpc->name, status, method);
	jid = json_object_get(resp, "id");
	if (!json_is_integer(jid) || (uint64_t) json_integer_value(jid) != id)
	{
		derr_set(err, DERR_FORMAT, "json-rpc node %s answered %s with the wrong id", rpc->name, method);
		derr_detail(err, "Request id %" PRIu64 " was sent; the answer does not carry it.", id);
		return false;
	}
	jresult = json_object_get(resp, "result");
	if (jresult == NULL)
		return derr_set(err, DERR_FORMAT, "json-rpc node %s answered %s without a result", rpc->name, method);
	*result = json_incref(jresult);
	return true;
}

/* The request/response cycle of one call. */
bool
rpc_request(RpcClient *rpc, const char *method, const char *params_json, json_t **result, DErr *err)
{
	json_t	   *req;
	json_t	   *resp = NULL;
	json_error_t jerr;
	char	   *text = NULL;
	HttpResponse hr = {0};
	uint64_t	id = rpc->next_id++;
	bool		ok = false;

	*result = NULL;
	if ((req = rpc_call_object(method, params_json, id, err)) == NULL)
		return false;
	text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (text == NULL)
		return derr_set(err, DERR_NOMEM, "out of memory building json-rpc %s", method);
	if (!rpc_post(rpc, method, text, &hr, err))
		goto done;
	resp = json_loadb(hr.body, hr.len, 0, &jerr);
	if (!json_is_object(resp))
		rpc_malformed(rpc, method, &hr, "a JSON-RPC object", err);
	else
		ok = rpc_answer(rpc, method, resp, id, hr.status, result, err);

done:
	json_decref(resp);
	http_response_free(&hr);
	free(text);
	return ok;
}

static void
rpc_calls_release(RpcCall *calls, int n)
{
	for (int i = 0; i < n; i++)
	{
		json_decref(calls[i].result);
		calls[i].result = NULL;
	}
}

/* A node that takes no batches: the same calls, one request each. */
static bool
rpc_batch_each(RpcClient *rpc, RpcCall *calls, int n, DErr *err)
{
	for (int i = 0; i < n; i++)
		if (!rpc_request(rpc, calls[i].method, calls[i].params, &calls[i].result, err))
		{
			rpc_calls_release(calls, n);
			return false;
		}
	return true;
}

/*
 * A JSON-RPC 2.0 batch: every call in one HTTP request.  The answers may come
 * in any order; each must carry the id of exactly one call, and every call
 * must be answered once.  A node that answers the batch with one object (it
 * takes no batches, or not this many) is asked again call by call.
 */
bool
rpc_batch(RpcClient *rpc, RpcCall *calls, int n, DErr *err)
{
	json_t	   *req;
	json_t	   *resp = NULL;
	json_error_t jerr;
	char	   *text = NULL;
	HttpResponse hr = {0};
	uint64_t	first = rpc->next_id;
	bool		seen[RPC_MAX_BATCH] = {0};
	const char *what = n > 0 ? calls[0].method : "a batch";
	bool		ok = false;

	for (int i = 0; i < n; i++)
		calls[i].result = NULL;
	if (n < 1 || n > RPC_MAX_BATCH)
		return derr_set(err, DERR_ARG, "a json-rpc batch holds 1 to %d calls, not %d", RPC_MAX_BATCH, n);
	if (rpc->no_batch || n == 1)
		return rpc_batch_each(rpc, calls, n, err);
	rpc->next_id += n;
	if ((req = json_array()) == NULL)
		return derr_set(err, DERR_NOMEM, "out of memory building a json-rpc batch");
	for (int i = 0; i < n; i++)
	{
		json_t	   *c = rpc_call_object(calls[i].method, calls[i].params, first + i, err);

		if (c == NULL || json_array_append_new(req, c) != 0)
		{
			json_decref(req);
			return c == NULL ? false : derr_set(err, DERR_NOMEM, "out of memory building a json-rpc batch");
		}
	}
	text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (text == NULL)
		return derr_set(err, DERR_NOMEM, "out of memory building a json-rpc batch");
	if (!rpc_post(rpc, what, text, &hr, err))
		goto done;
	resp = json_loadb(hr.body, hr.len, 0, &jerr);
	if (json_is_object(resp))
	{
		rpc->no_batch = true;
		ok = rpc_batch_each(rpc, calls, n, err);
		goto done;
	}
	if (!json_is_array(resp))
	{
		rpc_malformed(rpc, what, &hr, "a JSON-RPC batch answer", err);
		goto done;
	}
	if (json_array_size(resp) != (size_t) n)
	{
		derr_set(err, DERR_FORMAT, "json-rpc node %s answered a batch of %d calls with %zu answers",
				 rpc->name, n, json_array_size(resp));
		derr_detail(err, "A batch answer must hold one answer per call.");
		goto done;
	}
	for (int i = 0; i < n; i++)
	{
		json_t	   *a = json_array_get(resp, i);
		json_t	   *jid = json_object_get(a, "id");
		uint64_t	k;

		if (!json_is_object(a) || !json_is_integer(jid) ||
			(k = (uint64_t) json_integer_value(jid) - first) >= (uint64_t) n || seen[k])
		{
			derr_set(err, DERR_FORMAT, "json-rpc node %s answered a batch with a wrong or repeated id",
					 rpc->name);
			derr_detail(err, "The calls carried ids %" PRIu64 " to %" PRIu64 ", each to be answered once.",
						first, first + n - 1);
			goto done;
		}
		seen[k] = true;
		if (!rpc_answer(rpc, calls[k].method, a, first + k, hr.status, &calls[k].result, err))
			goto done;
	}
	ok = true;

done:
	if (!ok)
		rpc_calls_release(calls, n);
	json_decref(resp);
	http_response_free(&hr);
	free(text);
	return ok;
}

/* QUANTITY per the Ethereum JSON-RPC spec: "0x" then 1..16 significant hex digits. */
bool
rpc_parse_quantity(json_t *v, const char *what, uint64_t *out, DErr *err)
{
	const char *s = json_is_string(v) ? json_string_value(v) : NULL;
	uint64_t	x = 0;
	size_t		digits = 0;

	if (s == NULL || strncmp(s, "0x", 2) != 0 || s[2] == '\0')
		return derr_set(err, DERR_FORMAT, "json-rpc %s is not a hex quantity", what);
	for (const char *p = s + 2; *p; p++)
	{
		int			d;

		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if (*p >= 'a' && *p <= 'f')
			d = *p - 'a' + 10;
		else if (*p >= 'A' && *p <= 'F')
			d = *p - 'A' + 10;
		else
			return derr_set(err, DERR_FORMAT, "json-rpc %s is not a hex quantity", what);
		if (digits > 0 || d != 0)
			digits++;
		if (digits > 16)
			return derr_set(err, DERR_FORMAT, "json-rpc %s does not fit in 64 bits", what);
		x = (x << 4) | (uint64_t) d;
	}
	*out = x;
	return true;
}

/* Block tag for params: "latest" or a hex number. */
static void
rpc_block_tag(uint64_t number, char *out, size_t outlen)
{
	if (number == RPC_LATEST)
		snprintf(out, outlen, "latest");
	else
		snprintf(out, outlen, "0x%" PRIx64, number);
}

/* A call whose result is a single QUANTITY. */
static bool
rpc_quantity_call(RpcClient *rpc, const char *method, uint64_t *out, DErr *err)
{
	json_t	   *res;
	bool		ok;

	if (!rpc_request(rpc, method, NULL, &res, err))
		return false;
	ok = rpc_parse_quantity(res, method, out, err);
	json_decref(res);
	return ok;
}

/* The chain id goes into receipts: a receipt must say which chain it read. */
bool
rpc_chain_id(RpcClient *rpc, uint64_t *chain_id, DErr *err)
{
	return rpc_quantity_call(rpc, "eth_chainId", chain_id, err);
}

/* The head block: callers subtract their confirmation depth from it. */
bool
rpc_block_number(RpcClient *rpc, uint64_t *number, DErr *err)
{
	return rpc_quantity_call(rpc, "eth_blockNumber", number, err);
}

/* Number, hash and time of one block: what pins a check and goes into a receipt. */
bool
rpc_get_block(RpcClient *rpc, uint64_t number, RpcBlock *block, DErr *err)
{
	char		tag[32];
	char		params[64];
	json_t	   *res = NULL;
	json_t	   *jhash;
	bool		ok = false;

	memset(block, 0, sizeof(*block));
	rpc_block_tag(number, tag, sizeof(tag));
	snprintf(params, sizeof(params), "[\"%s\", false]", tag);
	if (!rpc_request(rpc, "eth_getBlockByNumber", params, &res, err))
		return false;
	if (json_is_null(res))
	{
		derr_set(err, DERR_REMOTE, "block %s not found", tag);
		derr_detail(err, "The json-rpc node %s does not have that block (yet).", rpc->name);
		goto done;
	}
	if (!json_is_object(res))
	{
		derr_set(err, DERR_FORMAT, "json-rpc node %s sent a malformed block", rpc->name);
		goto done;
	}
	if (!rpc_parse_quantity(json_object_get(res, "number"), "block number", &block->number, err) ||
		!rpc_parse_quantity(json_object_get(res, "timestamp"), "block timestamp", &block->timestamp, err))
		goto done;
	jhash = json_object_get(res, "hash");
	if (!json_is_string(jhash) ||
		!dhex_decode_exact(json_string_value(jhash), block->hash, 32, "block hash", err))
	{
		derr_set(err, DERR_FORMAT, "json-rpc node %s sent a block without a valid hash", rpc->name);
		goto done;
	}
	if (number != RPC_LATEST && block->number != number)
	{
		derr_set(err, DERR_FORMAT, "json-rpc node %s sent the wrong block", rpc->name);
		derr_detail(err, "Block %" PRIu64 " was asked for; block %" PRIu64 " came back.", number, block->number);
		goto done;
	}
	ok = true;

done:
	json_decref(res);
	if (!ok)
		memset(block, 0, sizeof(*block));
	return ok;
}

/* Which chain and which head, in one request: the first question put to every node. */
bool
rpc_chain_and_head(RpcClient *rpc, uint64_t *chain_id, uint64_t *head, DErr *err)
{
	RpcCall		c[2] = {{.method = "eth_chainId"}, {.method = "eth_blockNumber"}};
	bool		ok;

	if (!rpc_batch(rpc, c, 2, err))
		return false;
	ok = rpc_parse_quantity(c[0].result, "eth_chainId", chain_id, err) &&
		rpc_parse_quantity(c[1].result, "eth_blockNumber", head, err);
	rpc_calls_release(c, 2);
	return ok;
}

char *
rpc_eth_call_params(const uint8_t to[ABI_ADDR_LEN], const uint8_t *data, size_t len, const char *block_json)
{
	char		to_hex[2 * ABI_ADDR_LEN + 1];
	char	   *data_hex = malloc(2 * len + 1);
	size_t		plen = 2 * len + 2 * ABI_ADDR_LEN + strlen(block_json) + 64;
	char	   *params = malloc(plen);

	if (data_hex == NULL || params == NULL)
	{
		free(data_hex);
		free(params);
		return NULL;
	}
	dhex_encode(to, ABI_ADDR_LEN, to_hex);
	dhex_encode(data, len, data_hex);
	snprintf(params, plen, "[{\"to\":\"0x%s\",\"data\":\"0x%s\"},%s]", to_hex, data_hex, block_json);
	free(data_hex);
	return params;
}

bool
rpc_eth_call_result(RpcClient *rpc, json_t *res, uint8_t **ret, size_t *ret_len, DErr *err)
{
	*ret = NULL;
	*ret_len = 0;
	if (json_is_string(res) && strcmp(json_string_value(res), "0x") == 0)
		return true;			/* no return data: the caller says what that means */
	if (!json_is_string(res) ||
		strncmp(json_string_value(res), "0x", 2) != 0 ||
		!dhex_decode_alloc(json_string_value(res), ret, ret_len, "eth_call result", err))
	{
		derr_set(err, DERR_FORMAT, "json-rpc node %s sent a malformed eth_call result", rpc->name);
		derr_detail(err, "The result is not a 0x-prefixed hex string.");
		return false;
	}
	return true;
}

/* eth_call pinned to a block: the only way to read contract views. */
bool
rpc_eth_call(RpcClient *rpc, const uint8_t to[ABI_ADDR_LEN], const uint8_t *data, size_t len,
			 uint64_t number, uint8_t **ret, size_t *ret_len, DErr *err)
{
	char		tag[40];
	char	   *params;
	json_t	   *res = NULL;
	bool		ok;

	*ret = NULL;
	*ret_len = 0;
	tag[0] = '"';
	rpc_block_tag(number, tag + 1, sizeof(tag) - 2);
	strcat(tag, "\"");
	if ((params = rpc_eth_call_params(to, data, len, tag)) == NULL)
		return derr_set(err, DERR_NOMEM, "out of memory building eth_call");
	ok = rpc_request(rpc, "eth_call", params, &res, err) &&
		rpc_eth_call_result(rpc, res, ret, ret_len, err);
	free(params);
	json_decref(res);
	return ok;
}


bool
rpc_view_call(RpcClient *rpc, const uint8_t to[ABI_ADDR_LEN], const char *sig,
			  const uint8_t (*words)[ABI_WORD], size_t n, uint64_t number,
			  uint8_t **ret, size_t *ret_len, DErr *err)
{
	uint8_t    *cd = NULL;
	size_t		cdlen = 0;
	bool		ok;

	*ret = NULL;
	*ret_len = 0;
	if (!abi_encode_static_call(sig, words, n, &cd, &cdlen, err))
		return false;
	ok = rpc_eth_call(rpc, to, cd, cdlen, number, ret, ret_len, err);
	free(cd);
	return ok;
}
