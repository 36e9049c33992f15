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
#include "rpc.h"

struct RpcClient
{
	char	   *url;
	HttpOptions opt;
	uint64_t	next_id;
	long		deadline_ms;	/* monotonic end of a multi-call read, or 0 */
	char		name[160];		/* url without path/query: safe to print */
};

/* Monotonic ms: a deadline must not move with the wall clock. */
static long
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

/* The request/response cycle, with every check a hostile node could fail. */
bool
rpc_request(RpcClient *rpc, const char *method, const char *params_json, json_t **result, DErr *err)
{
	json_t	   *params;
	json_t	   *req;
	json_t	   *resp = NULL;
	json_t	   *jid;
	json_t	   *jerror;
	json_t	   *jresult;
	json_error_t jerr;
	char	   *text = NULL;
	HttpResponse hr = {0};
	HttpOptions hopt;
	uint64_t	id = rpc->next_id++;
	bool		ok = false;

	*result = NULL;
	params = json_loads(params_json ? params_json : "[]", 0, &jerr);
	if (!json_is_array(params))
	{
		json_decref(params);
		return derr_set(err, DERR_ARG, "invalid params for json-rpc %s", method);
	}
	req = json_pack("{s:s, s:I, s:s, s:o}", "jsonrpc", "2.0", "id", (json_int_t) id,
					"method", method, "params", params);
	if (req != NULL)
		text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (text == NULL)
		return derr_set(err, DERR_NOMEM, "out of memory building json-rpc %s", method);

	/* inside a multi-call read the whole read shares one deadline (rpc_consortium_state) */
	hopt = rpc->opt;
	if (rpc->deadline_ms != 0)
	{
		long		left = rpc->deadline_ms - rpc_now_ms();

		if (left <= 0)
		{
			derr_set(err, DERR_NETWORK, "cannot reach json-rpc node %s: timed out after %ld ms",
					 rpc->name, rpc->opt.timeout_ms);
			derr_detail(err, "The reads of one check share a deadline of %ld ms, which passed before %s.",
						rpc->opt.timeout_ms, method);
			goto done;
		}
		if (left < hopt.timeout_ms)
			hopt.timeout_ms = left;
	}
	if (!http_request("POST", rpc->url, NULL, text, &hopt, "json-rpc node", &hr, err))
		goto done;

	resp = json_loadb(hr.body, hr.len, 0, &jerr);
	if (!json_is_object(resp))
	{
		char		ex[200];

		rpc_excerpt(hr.body, hr.len, ex, sizeof(ex));
		if (hr.status != 200)
			derr_set(err, DERR_REMOTE, "json-rpc node %s answered http %ld to %s", rpc->name, hr.status, method);
		else
			derr_set(err, DERR_FORMAT, "json-rpc node %s sent a malformed answer to %s", rpc->name, method);
		derr_detail(err, "The answer is not a JSON-RPC object: \"%s\".", ex);
		goto done;
	}
	jerror = json_object_get(resp, "error");
	if (json_is_object(jerror))
	{
		rpc_remote_error(rpc, method, jerror, err);
		goto done;
	}
	if (jerror != NULL && !json_is_null(jerror) && hr.status == 200)
	{
		derr_set(err, DERR_FORMAT, "json-rpc node %s answered %s with a malformed error object",
				 rpc->name, method);
		goto done;
	}
	if (hr.status != 200)
	{
		derr_set(err, DERR_REMOTE, "json-rpc node %s answered http %ld to %s", rpc->name, hr.status, method);
		goto done;
	}
	jid = json_object_get(resp, "id");
	if (!json_is_integer(jid) || (uint64_t) json_integer_value(jid) != id)
	{
		derr_set(err, DERR_FORMAT, "json-rpc node %s answered %s with the wrong id", rpc->name, method);
		derr_detail(err, "Request id %" PRIu64 " was sent; the answer does not carry it.", id);
		goto done;
	}
	jresult = json_object_get(resp, "result");
	if (jresult == NULL)
	{
		derr_set(err, DERR_FORMAT, "json-rpc node %s answered %s without a result", rpc->name, method);
		goto done;
	}
	*result = json_incref(jresult);
	ok = true;

done:
	json_decref(resp);
	http_response_free(&hr);
	free(text);
	return ok;
}

/* QUANTITY per the Ethereum JSON-RPC spec: "0x" then 1..16 significant hex digits. */
static bool
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

/* eth_call pinned to a block: the only way to read contract views. */
bool
rpc_eth_call(RpcClient *rpc, const uint8_t to[ABI_ADDR_LEN], const uint8_t *data, size_t len,
			 uint64_t number, uint8_t **ret, size_t *ret_len, DErr *err)
{
	char		tag[32];
	char		to_hex[2 * ABI_ADDR_LEN + 1];
	char	   *data_hex;
	char	   *params;
	size_t		plen;
	json_t	   *res = NULL;
	bool		ok;

	*ret = NULL;
	*ret_len = 0;
	rpc_block_tag(number, tag, sizeof(tag));
	dhex_encode(to, ABI_ADDR_LEN, to_hex);
	data_hex = malloc(2 * len + 1);
	plen = 2 * len + 160;
	params = malloc(plen);
	if (data_hex == NULL || params == NULL)
	{
		free(data_hex);
		free(params);
		return derr_set(err, DERR_NOMEM, "out of memory building eth_call");
	}
	dhex_encode(data, len, data_hex);
	snprintf(params, plen, "[{\"to\":\"0x%s\",\"data\":\"0x%s\"},\"%s\"]", to_hex, data_hex, tag);
	free(data_hex);
	ok = rpc_request(rpc, "eth_call", params, &res, err);
	free(params);
	if (!ok)
		return false;
	if (json_is_string(res) && strcmp(json_string_value(res), "0x") == 0)
		ok = true;				/* no return data: the caller says what that means */
	else if (!json_is_string(res) ||
		strncmp(json_string_value(res), "0x", 2) != 0 ||
		!dhex_decode_alloc(json_string_value(res), ret, ret_len, "eth_call result", err))
	{
		derr_set(err, DERR_FORMAT, "json-rpc node %s sent a malformed eth_call result", rpc->name);
		derr_detail(err, "The result is not a 0x-prefixed hex string.");
		ok = false;
	}
	json_decref(res);
	return ok;
}

/*
 * Say which view of which contract failed, keeping the lower-level reason;
 * transport and memory errors already say enough and are left alone.
 */
static void
rpc_blame(DErr *err, const char *fn, const uint8_t app[ABI_ADDR_LEN])
{
	char		msg[sizeof(err->msg)];
	char		detail[sizeof(err->detail)];
	char		addr[2 * ABI_ADDR_LEN + 1];
	DErrCode	code;

	if (err == NULL || err->code == DERR_NETWORK || err->code == DERR_NOMEM)
		return;
	code = err->code;
	memcpy(msg, err->msg, sizeof(msg));
	memcpy(detail, err->detail, sizeof(detail));
	dhex_encode(app, ABI_ADDR_LEN, addr);
	derr_set(err, code, "cannot read %s of contract 0x%s: %s", fn, addr, msg);
	derr_detail(err, "%s", detail);
}

/* eth_call of a static-argument view; *ret is malloc()ed. */
static bool
rpc_view(RpcClient *rpc, const uint8_t app[ABI_ADDR_LEN], const char *sig,
		 const uint8_t (*words)[ABI_WORD], size_t n, uint64_t number,
		 uint8_t **ret, size_t *ret_len, DErr *err)
{
	uint8_t    *cd = NULL;
	size_t		cdlen = 0;
	bool		ok;

	if (!abi_encode_static_call(sig, words, n, &cd, &cdlen, err))
		return false;
	ok = rpc_eth_call(rpc, app, cd, cdlen, number, ret, ret_len, err);
	free(cd);
	if (!ok)
		rpc_blame(err, sig, app);
	return ok;
}

/* The typed getters below differ only in how they decode the answer. */
static bool
rpc_view_bool(RpcClient *rpc, const uint8_t app[ABI_ADDR_LEN], const char *sig,
			  const uint8_t (*words)[ABI_WORD], size_t n, uint64_t number, bool *out, DErr *err)
{
	uint8_t    *r;
	size_t		rl;
	bool		ok;

	if (!rpc_view(rpc, app, sig, words, n, number, &r, &rl, err))
		return false;
	ok = abi_decode_bool(r, rl, out, err);
	free(r);
	if (!ok)
		rpc_blame(err, sig, app);
	return ok;
}

/* A view returning one uint64, decoded strictly. */
static bool
rpc_view_uint64(RpcClient *rpc, const uint8_t app[ABI_ADDR_LEN], const char *sig,
				uint64_t number, uint64_t *out, DErr *err)
{
	uint8_t    *r;
	size_t		rl;
	bool		ok;

	if (!rpc_view(rpc, app, sig, NULL, 0, number, &r, &rl, err))
		return false;
	ok = abi_decode_uint64(r, rl, out, err);
	free(r);
	if (!ok)
		rpc_blame(err, sig, app);
	return ok;
}

/* A view returning one bytes32, decoded strictly. */
static bool
rpc_view_bytes32(RpcClient *rpc, const uint8_t app[ABI_ADDR_LEN], const char *sig,
				 uint64_t number, uint8_t out[32], DErr *err)
{
	uint8_t    *r;
	size_t		rl;
	bool		ok;

	if (!rpc_view(rpc, app, sig, NULL, 0, number, &r, &rl, err))
		return false;
	ok = abi_decode_bytes32(r, rl, out, err);
	free(r);
	if (!ok)
		rpc_blame(err, sig, app);
	return ok;
}

/* A view returning one address, decoded strictly. */
static bool
rpc_view_address(RpcClient *rpc, const uint8_t app[ABI_ADDR_LEN], const char *sig,
				 uint64_t number, uint8_t out[ABI_ADDR_LEN], DErr *err)
{
	uint8_t    *r;
	size_t		rl;
	bool		ok;

	if (!rpc_view(rpc, app, sig, NULL, 0, number, &r, &rl, err))
		return false;
	ok = abi_decode_address(r, rl, out, err);
	free(r);
	if (!ok)
		rpc_blame(err, sig, app);
	return ok;
}

/* A view returning one string, decoded strictly. */
static bool
rpc_view_string(RpcClient *rpc, const uint8_t app[ABI_ADDR_LEN], const char *sig,
				uint64_t number, char **out, DErr *err)
{
	uint8_t    *r;
	size_t		rl;
	bool		ok;

	*out = NULL;
	if (!rpc_view(rpc, app, sig, NULL, 0, number, &r, &rl, err))
		return false;
	ok = abi_decode_string(r, rl, out, err);
	free(r);
	if (!ok)
		rpc_blame(err, sig, app);
	return ok;
}

/* A view returning one address array, decoded strictly. */
static bool
rpc_view_address_array(RpcClient *rpc, const uint8_t app[ABI_ADDR_LEN], const char *sig,
					   uint64_t number, uint8_t (**out)[ABI_ADDR_LEN], size_t *n, DErr *err)
{
	uint8_t    *r;
	size_t		rl;
	bool		ok;

	if (!rpc_view(rpc, app, sig, NULL, 0, number, &r, &rl, err))
		return false;
	ok = abi_decode_address_array(r, rl, out, n, err);
	free(r);
	if (!ok)
		rpc_blame(err, sig, app);
	return ok;
}

/*
 * policy() returns (uint64 epsilonMilli, uint32 minGroupSize, string
 * outputType, string privacyUnit) as four values (not one struct), so the
 * head is four words and the strings' offsets are relative to its start.
 */
static bool
rpc_view_policy(RpcClient *rpc, const uint8_t app[ABI_ADDR_LEN], uint64_t number,
				ConsortiumPolicy *pol, DErr *err)
{
	static const char sig[] = "policy()";
	uint8_t    *r;
	size_t		rl;
	uint64_t	mgs = 0;
	bool		ok;

	if (!rpc_view(rpc, app, sig, NULL, 0, number, &r, &rl, err))
		return false;
	ok = rl % ABI_WORD == 0 && rl >= 6 * ABI_WORD;
	if (!ok)
	{
		derr_set(err, DERR_FORMAT, "malformed abi return data");
		derr_detail(err, "The return data is %zu bytes; expected whole words, at least 192.", rl);
	}
	ok = ok &&
		abi_get_uint(r, rl, 0, 64, &pol->epsilon_milli, err) &&
		abi_get_uint(r, rl, 1, 32, &mgs, err) &&
		abi_get_string(r, rl, 2, &pol->output_type, err) &&
		abi_get_string(r, rl, 3, &pol->privacy_unit, err);
	pol->min_group_size = (uint32_t) mgs;
	free(r);
	if (!ok)
		rpc_blame(err, sig, app);
	return ok;
}

/* All the views of one check, at one block. */
static bool
rpc_consortium_read(RpcClient *rpc, const uint8_t app[ABI_ADDR_LEN], ConsortiumState *st, DErr *err)
{
	uint64_t	b = st->block_number;

	return rpc_view_bytes32(rpc, app, "composeHash()", b, st->compose_hash, err) &&
		rpc_view_uint64(rpc, app, "threshold()", b, &st->threshold, err) &&
		rpc_view_uint64(rpc, app, "approvalCount()", b, &st->approval_count, err) &&
		rpc_view_bool(rpc, app, "revoked()", NULL, 0, b, &st->revoked, err) &&
		rpc_view_address(rpc, app, "revokedBy()", b, st->revoked_by, err) &&
		rpc_view_string(rpc, app, "revokeReason()", b, &st->revoke_reason, err) &&
		rpc_view_bool(rpc, app, "isApproved()", NULL, 0, b, &st->is_approved, err) &&
		rpc_view_address_array(rpc, app, "approvers()", b, &st->approvers, &st->n_approvers, err) &&
		rpc_view_address_array(rpc, app, "owners()", b, &st->owners, &st->n_owners, err) &&
		rpc_view_policy(rpc, app, b, &st->policy, err);
}

/*
 * Fix the block first (latest, or the one asked for), read everything at
 * its number, then confirm the block at that number still has the same hash:
 * if the chain reorganised in between, the reads may mix two histories.  For
 * "latest" one retry at a fresh block is made before giving up.
 */
bool
rpc_consortium_state(RpcClient *rpc, const uint8_t app[ABI_ADDR_LEN], uint64_t number,
					 ConsortiumState *state, DErr *err)
{
	int			tries = number == RPC_LATEST ? 2 : 1;
	bool		ok = false;

	memset(state, 0, sizeof(*state));
	rpc->deadline_ms = rpc_now_ms() + rpc->opt.timeout_ms;
	for (int t = 0; t < tries; t++)
	{
		RpcBlock	blk;
		RpcBlock	again;

		rpc_consortium_state_free(state);
		memcpy(state->app_id, app, ABI_ADDR_LEN);
		if (!rpc_chain_id(rpc, &state->chain_id, err) ||
			!rpc_get_block(rpc, number, &blk, err))
			break;
		state->block_number = blk.number;
		memcpy(state->block_hash, blk.hash, 32);
		state->block_timestamp = blk.timestamp;
		if (!rpc_consortium_read(rpc, app, state, err) ||
			!rpc_get_block(rpc, blk.number, &again, err))
			break;
		if (memcmp(again.hash, blk.hash, 32) == 0)
		{
			ok = true;
			break;
		}
		derr_set(err, DERR_REMOTE, "chain reorganised while reading the consortium contract");
		derr_detail(err, "Block %" PRIu64 " changed its hash during the reads; try again.", blk.number);
	}
	rpc->deadline_ms = 0;
	if (!ok)
		rpc_consortium_state_free(state);
	return ok;
}

/* Frees the arrays and strings and zeroes the struct, so it is reusable. */
void
rpc_consortium_state_free(ConsortiumState *state)
{
	if (state == NULL)
		return;
	free(state->approvers);
	free(state->owners);
	free(state->policy.output_type);
	free(state->policy.privacy_unit);
	free(state->revoke_reason);
	memset(state, 0, sizeof(*state));
}

bool
consortium_state_is_approver(const ConsortiumState *state, const uint8_t who[ABI_ADDR_LEN])
{
	return dc_addr_in((const uint8_t (*)[DC_ADDR_LEN]) state->approvers, state->n_approvers, who);
}

bool
consortium_state_is_owner(const ConsortiumState *state, const uint8_t who[ABI_ADDR_LEN])
{
	return dc_addr_in((const uint8_t (*)[DC_ADDR_LEN]) state->owners, state->n_owners, who);
}

/* One owner's approval, e.g. to explain which owners are still missing. */
bool
rpc_has_approved(RpcClient *rpc, const uint8_t app[ABI_ADDR_LEN], const uint8_t owner[ABI_ADDR_LEN],
				 uint64_t number, bool *approved, DErr *err)
{
	uint8_t		w[1][ABI_WORD];

	abi_word_address(owner, w[0]);
	return rpc_view_bool(rpc, app, "hasApproved(address)", (const uint8_t (*)[ABI_WORD]) w, 1,
						 number, approved, err);
}

/* Ask the contract exactly what dstack's KMS asks it. */
bool
rpc_is_app_allowed(RpcClient *rpc, const uint8_t app[ABI_ADDR_LEN], const AbiAppBootInfo *boot,
				   uint64_t number, bool *allowed, char **reason, DErr *err)
{
	uint8_t    *cd = NULL;
	size_t		cdlen = 0;
	uint8_t    *r = NULL;
	size_t		rl = 0;
	bool		ok;

	*allowed = false;
	*reason = NULL;
	if (!abi_encode_is_app_allowed(boot, &cd, &cdlen, err))
		return false;
	ok = rpc_eth_call(rpc, app, cd, cdlen, number, &r, &rl, err) &&
		abi_decode_bool_string(r, rl, allowed, reason, err);
	free(cd);
	free(r);
	if (!ok)
	{
		*allowed = false;
		rpc_blame(err, "isAppAllowed()", app);
	}
	return ok;
}
