/*
 * test_http.c: the libcurl client (http.c) and the JSON-RPC (rpc.c) and
 * guest-agent (guest_agent.c) clients built on it, against a tiny server
 * forked from this test (minihttpd.h) on a Unix socket and on loopback TCP:
 * Unix-socket requests, deadlines, retry counts, 5xx handling, size limits,
 * error wording (which endpoint, how it failed), JSON-RPC errors and revert
 * reasons, and GetKey/Info parsing with a real signature chain.
 */
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "guest_agent.h"
#include "hex.h"
#include "http.h"
#include "rpc.h"
#include "sigchain.h"
#include "minihttpd.h"
#include "unit.h"

static char sock_path[108];

/* Monotonic ms, to measure how long failures take. */
static long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long abort_start;

/* A cancel check that fires 200 ms after abort_start (a query cancel). */
static bool
abort_after_200ms(void *arg)
{
	return now_ms() - abort_start > 200;
}

/* Short deadlines so the suite runs in a couple of seconds. */
static void
fast_opts(HttpOptions *o)
{
	http_options_default(o);
	o->connect_timeout_ms = 300;
	o->timeout_ms = 600;
	o->retries = 2;
	o->backoff_ms = 20;
}

static void
test_unix_socket(Mini *m)
{
	HttpResponse r;
	HttpOptions o;
	DErr		err = {0};

	fast_opts(&o);
	mini_set(m, MINI_REPLY, 200, "{\"ok\":true}");
	CHECK(http_request("POST", "http://localhost/GetKey", m->path, "{\"a\":1}", &o, "agent", &r, &err),
		  "unix socket POST succeeds");
	CHECK(r.status == 200 && strcmp(r.body, "{\"ok\":true}") == 0 && r.attempts == 1, "unix socket answer read");
	CHECK(strcmp(m->sh->last_path, "/GetKey") == 0 && strcmp(m->sh->last_method, "POST") == 0 &&
		  strcmp(m->sh->last_body, "{\"a\":1}") == 0, "server saw POST /GetKey with the body");
	http_response_free(&r);
	http_response_free(&r);		/* idempotent */

	CHECK(http_request("GET", "http://localhost/Info", m->path, NULL, &o, "agent", &r, &err) &&
		  strcmp(m->sh->last_method, "GET") == 0, "unix socket GET");
	http_response_free(&r);

	mini_set(m, MINI_REPLY, 400, "{\"error\":\"bad\"}");
	CHECK(http_request("POST", "http://localhost/GetKey", m->path, "{}", &o, "agent", &r, &err) &&
		  r.status == 400 && m->sh->count == 1, "4xx returned to the caller, not retried");
	http_response_free(&r);

	derr_clear(&err);
	CHECK(!http_request("POST", "http://localhost/x", "/nonexistent/dstack.sock", "{}", &o, "dstack guest agent",
						&r, &err) && err.code == DERR_NETWORK &&
		  strstr(err.msg, "/nonexistent/dstack.sock") != NULL, "absent socket: DERR_NETWORK naming the path");
	derr_clear(&err);
	CHECK(!http_request("POST", "http://localhost/x", "/tmp", "{}", &o, "agent", &r, &err) &&
		  err.code == DERR_NETWORK && strstr(err.msg, "not a unix socket") != NULL, "a directory is not a socket");
}

static void
test_retries(Mini *m)
{
	HttpResponse r;
	HttpOptions o;
	DErr		err = {0};
	char		url[64];

	fast_opts(&o);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", m->port);
	mini_set(m, MINI_FAIL_FIRST, 200, "{\"v\":1}");
	m->sh->fail_n = 2;
	CHECK(http_request("POST", url, NULL, "{}", &o, "json-rpc node", &r, &err) && r.status == 200 &&
		  r.attempts == 3 && m->sh->count == 3, "500, 500, 200: three attempts, success");
	http_response_free(&r);

	mini_set(m, MINI_FAIL_FIRST, 200, "{}");
	m->sh->fail_n = 100;
	CHECK(http_request("POST", url, NULL, "{}", &o, "json-rpc node", &r, &err) && r.status == 500 &&
		  r.attempts == 3 && m->sh->count == 3, "500 forever: 1 + 2 retries, last answer returned");
	http_response_free(&r);

	o.retry_5xx = false;
	mini_set(m, MINI_FAIL_FIRST, 200, "{}");
	m->sh->fail_n = 100;
	CHECK(http_request("POST", url, NULL, "{}", &o, "agent", &r, &err) && r.status == 500 && r.attempts == 1,
		  "retry_5xx=false: one attempt");
	http_response_free(&r);
}

static void
test_limits(Mini *m)
{
	HttpResponse r;
	HttpOptions o;
	DErr		err = {0};
	char		url[64];

	fast_opts(&o);
	o.max_response = 4096;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", m->port);
	mini_set(m, MINI_BIG, 200, NULL);
	m->sh->big = 4096;
	CHECK(http_request("GET", url, NULL, NULL, &o, "node", &r, &err) && r.len == 4096, "body at the limit accepted");
	http_response_free(&r);
	m->sh->big = 1 << 20;
	derr_clear(&err);
	CHECK(!http_request("GET", url, NULL, NULL, &o, "node", &r, &err) && err.code == DERR_FORMAT &&
		  strstr(err.msg, "too large") != NULL && r.body == NULL, "oversized body refused");

	o.max_response = 0;
	derr_clear(&err);
	CHECK(!http_request("GET", url, NULL, NULL, &o, "node", &r, &err) && err.code == DERR_ARG, "bad options refused");
}

static void
test_timeout_and_refused(void)
{
	Mini		h;
	HttpResponse r;
	HttpOptions o;
	DErr		err = {0};
	char		url[64];
	long		t0,
				dt;
	int			port;

	fast_opts(&o);
	o.timeout_ms = 500;
	if (mini_start(&h, NULL) != 0)
	{
		CHECK(0, "start hanging server");
		return;
	}
	mini_set(&h, MINI_HANG, 200, NULL);
	snprintf(url, sizeof(url), "http://user:secret@127.0.0.1:%d/v3/APIKEY", h.port);
	t0 = now_ms();
	CHECK(!http_request("POST", url, NULL, "{}", &o, "json-rpc node", &r, &err) && err.code == DERR_NETWORK,
		  "hanging server: DERR_NETWORK");
	dt = now_ms() - t0;
	printf("     timeout error after %ld ms (limit 500): %s | %s\n", dt, err.msg, err.detail);
	CHECK(dt >= 450 && dt < 500 + 300, "timeout honoured within the configured time (+300 ms slack)");
	CHECK(strstr(err.msg, "timed out") != NULL && strstr(err.msg, "127.0.0.1") != NULL,
		  "timeout error names the node and says timed out");
	CHECK(strstr(err.msg, "secret") == NULL && strstr(err.msg, "APIKEY") == NULL &&
		  strstr(err.detail, "APIKEY") == NULL, "credentials in the URL are not printed");
	/* a caller's cancel check abandons the call long before the deadline */
	o.timeout_ms = 5000;
	o.should_abort = abort_after_200ms;
	abort_start = now_ms();
	derr_clear(&err);
	CHECK(!http_request("POST", url, NULL, "{}", &o, "json-rpc node", &r, &err) && err.code == DERR_NETWORK &&
		  strstr(err.msg, "cancelled") != NULL, "should_abort cancels a hung call");
	dt = now_ms() - abort_start;
	printf("     cancelled after %ld ms (deadline 5000)\n", dt);
	CHECK(dt < 600, "cancel takes effect within ~100 ms of the request");
	o.should_abort = NULL;
	o.timeout_ms = 500;
	port = h.port;
	mini_stop(&h);

	/* nothing listens on the port any more: connection refused, retried, fast */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	derr_clear(&err);
	t0 = now_ms();
	CHECK(!http_request("POST", url, NULL, "{}", &o, "json-rpc node", &r, &err) && err.code == DERR_NETWORK &&
		  r.attempts == 3, "connection refused: DERR_NETWORK after 3 attempts");
	dt = now_ms() - t0;
	printf("     refused error after %ld ms: %s | %s\n", dt, err.msg, err.detail);
	CHECK(strstr(err.msg, "refused") != NULL && strstr(err.msg, url) != NULL,
		  "refused error names the URL and says refused");
	CHECK(dt < 500, "refused fails within the timeout");
}

/* JSON-RPC over the mini server: results, node errors, reverts, HTTP errors. */
static void
test_rpc(Mini *m)
{
	RpcClient  *rpc;
	HttpOptions o;
	DErr		err = {0};
	uint64_t	v = 0;
	char		url[64];
	char		body[1024];
	uint8_t		to[20] = {0};
	uint8_t		cd[4] = {1, 2, 3, 4};
	uint8_t    *ret = NULL;
	size_t		rl = 0;
	RpcBlock	blk;

	fast_opts(&o);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", m->port);
	rpc = rpc_new(url, &o, &err);
	CHECK(rpc != NULL, "rpc_new");
	CHECK(rpc_new("ftp://x", &o, &err) == NULL && err.code == DERR_ARG, "non-http rpc url refused");

	mini_set(m, MINI_REPLY, 200, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"0x7a69\"}");
	CHECK(rpc_chain_id(rpc, &v, &err) && v == 31337, "eth_chainId 0x7a69 = 31337");
	CHECK(strstr(m->sh->last_body, "\"method\":\"eth_chainId\"") != NULL, "request names eth_chainId");

	mini_set(m, MINI_REPLY, 200, "{\"jsonrpc\":\"2.0\",\"id\":99,\"result\":\"0x1\"}");
	derr_clear(&err);
	CHECK(!rpc_chain_id(rpc, &v, &err) && err.code == DERR_FORMAT, "answer with the wrong id refused");

	snprintf(body, sizeof(body), "{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"number\":\"0x10\",\"timestamp\":\"0x5\","
			 "\"hash\":\"0x%064x\"}}", 0xab);
	mini_set(m, MINI_REPLY, 200, body);
	CHECK(rpc_get_block(rpc, 16, &blk, &err) && blk.number == 16 && blk.hash[31] == 0xab && blk.timestamp == 5,
		  "eth_getBlockByNumber parsed");
	CHECK(strstr(m->sh->last_body, "[\"0x10\",false]") != NULL, "block requested by hex number");
	mini_set(m, MINI_REPLY, 200, "{\"jsonrpc\":\"2.0\",\"id\":4,\"result\":null}");
	derr_clear(&err);
	CHECK(!rpc_get_block(rpc, 99, &blk, &err) && err.code == DERR_REMOTE, "missing block: DERR_REMOTE");

	mini_set(m, MINI_REPLY, 200,
			 "{\"jsonrpc\":\"2.0\",\"id\":5,\"error\":{\"code\":3,\"message\":\"execution reverted: not approved\","
			 "\"data\":\"0x08c379a00000000000000000000000000000000000000000000000000000000000000020"
			 "000000000000000000000000000000000000000000000000000000000000000c"
			 "6e6f7420617070726f7665640000000000000000000000000000000000000000\"}}");
	derr_clear(&err);
	CHECK(!rpc_eth_call(rpc, to, cd, 4, RPC_LATEST, &ret, &rl, &err) && err.code == DERR_REMOTE &&
		  strstr(err.msg, "reverted: not approved") != NULL, "revert reason Error(string) decoded");
	CHECK(strstr(err.msg, url) != NULL || strstr(err.detail, url) != NULL, "revert error names the node");
	CHECK(strstr(err.msg, "3") != NULL || strstr(err.detail, "error 3") != NULL, "revert error carries the code");
	printf("     %s | %s\n", err.msg, err.detail);

	mini_set(m, MINI_REPLY, 200,
			 "{\"jsonrpc\":\"2.0\",\"id\":6,\"error\":{\"code\":3,\"message\":\"execution reverted\","
			 "\"data\":\"0x245aecd300000000000000000000000070997970c51812dc3a010c7d01b50e0d17dc79c8\"}}");
	derr_clear(&err);
	CHECK(!rpc_eth_call(rpc, to, cd, 4, RPC_LATEST, &ret, &rl, &err) && err.code == DERR_REMOTE &&
		  strstr(err.msg, "custom error NotOwner(address)") != NULL, "consortium custom error NotOwner named");
	printf("     %s\n", err.msg);

	mini_set(m, MINI_REPLY, 200,
			 "{\"jsonrpc\":\"2.0\",\"id\":7,\"error\":{\"code\":-32601,\"message\":\"method not found\"}}");
	derr_clear(&err);
	CHECK(!rpc_chain_id(rpc, &v, &err) && err.code == DERR_REMOTE && strstr(err.msg, "method not found") != NULL &&
		  strstr(err.msg, "-32601") != NULL, "json-rpc error: code and message in the error");

	mini_set(m, MINI_FAIL_FIRST, 200, "{}");
	m->sh->fail_n = 100;
	derr_clear(&err);
	CHECK(!rpc_chain_id(rpc, &v, &err) && err.code == DERR_REMOTE && strstr(err.msg, "http 500") != NULL &&
		  strstr(err.msg, url) != NULL && m->sh->count == 3, "500: retried, then an error naming the URL");
	printf("     %s\n", err.msg);

	mini_set(m, MINI_REPLY, 200, "not json");
	derr_clear(&err);
	CHECK(!rpc_chain_id(rpc, &v, &err) && err.code == DERR_FORMAT, "non-JSON answer: DERR_FORMAT");

	mini_set(m, MINI_REPLY, 200, "{\"jsonrpc\":\"2.0\",\"id\":10,\"result\":\"0x\"}");
	CHECK(rpc_eth_call(rpc, to, cd, 4, 7, &ret, &rl, &err) && rl == 0, "empty eth_call result");
	CHECK(strstr(m->sh->last_body, "\"data\":\"0x01020304\"},\"0x7\"]") != NULL, "eth_call pinned to block 0x7");
	free(ret);
	mini_set(m, MINI_REPLY, 200, "{\"jsonrpc\":\"2.0\",\"id\":11,\"result\":\"0x1\"}");
	derr_clear(&err);
	CHECK(!rpc_eth_call(rpc, to, cd, 4, 7, &ret, &rl, &err) && err.code == DERR_FORMAT, "odd-length hex refused");
	mini_set(m, MINI_REPLY, 200, "{\"jsonrpc\":\"2.0\",\"id\":12,\"result\":\"0x11111111111111111\"}");
	derr_clear(&err);
	CHECK(!rpc_chain_id(rpc, &v, &err) && err.code == DERR_FORMAT, "quantity over 64 bits refused");
	rpc_free(rpc);
}

/* JSON-RPC batches: answers matched by id in any order, every hostile shape refused. */
static void
test_rpc_batch(Mini *m)
{
	RpcClient  *rpc;
	HttpOptions o;
	DErr		err = {0};
	char		url[64];
	uint64_t	chain = 0,
				head = 0;
	RpcCall		c[3] = {{.method = "eth_chainId"}, {.method = "eth_blockNumber"}, {.method = "net_version"}};

	fast_opts(&o);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", m->port);
	rpc = rpc_new(url, &o, &err);

	/* ids 1..3, answered in reverse order */
	mini_set(m, MINI_REPLY, 200, "[{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":\"31337\"},"
			 "{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":\"0x10\"},{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"0x7a69\"}]");
	CHECK(rpc_batch(rpc, c, 3, &err) && json_is_string(c[0].result) &&
		  strcmp(json_string_value(c[0].result), "0x7a69") == 0 &&
		  strcmp(json_string_value(c[1].result), "0x10") == 0 &&
		  strcmp(json_string_value(c[2].result), "31337") == 0 && m->sh->count == 1,
		  "batch: one request, answers matched to calls by id whatever their order");
	CHECK(m->sh->last_body[0] == '[' && strstr(m->sh->last_body, "\"id\":3") != NULL, "batch: sent as a JSON array");
	for (int i = 0; i < 3; i++)
		json_decref(c[i].result);

	/* ids 4..6 */
	mini_set(m, MINI_REPLY, 200, "[{\"jsonrpc\":\"2.0\",\"id\":4,\"result\":\"0x1\"},"
			 "{\"jsonrpc\":\"2.0\",\"id\":4,\"result\":\"0x1\"},{\"jsonrpc\":\"2.0\",\"id\":6,\"result\":\"0x1\"}]");
	derr_clear(&err);
	CHECK(!rpc_batch(rpc, c, 3, &err) && err.code == DERR_FORMAT && strstr(err.msg, "repeated id") != NULL &&
		  c[0].result == NULL && c[1].result == NULL && c[2].result == NULL,
		  "batch: one call answered twice (another never) refused, no result kept");
	/* ids 7..9 */
	mini_set(m, MINI_REPLY, 200, "[{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":\"0x1\"},"
			 "{\"jsonrpc\":\"2.0\",\"id\":8,\"result\":\"0x1\"}]");
	derr_clear(&err);
	CHECK(!rpc_batch(rpc, c, 3, &err) && err.code == DERR_FORMAT && strstr(err.msg, "3 calls with 2 answers") != NULL,
		  "batch: a missing answer refused");
	/* ids 10..12: an id from outside the batch */
	mini_set(m, MINI_REPLY, 200, "[{\"jsonrpc\":\"2.0\",\"id\":10,\"result\":\"0x1\"},"
			 "{\"jsonrpc\":\"2.0\",\"id\":11,\"result\":\"0x1\"},{\"jsonrpc\":\"2.0\",\"id\":9,\"result\":\"0x1\"}]");
	derr_clear(&err);
	CHECK(!rpc_batch(rpc, c, 3, &err) && err.code == DERR_FORMAT, "batch: an id outside the batch refused");
	/* ids 13..15: the second call fails: its method and the node's words in the error */
	mini_set(m, MINI_REPLY, 200, "[{\"jsonrpc\":\"2.0\",\"id\":13,\"result\":\"0x1\"},"
			 "{\"jsonrpc\":\"2.0\",\"id\":14,\"error\":{\"code\":-32000,\"message\":\"header not found\"}},"
			 "{\"jsonrpc\":\"2.0\",\"id\":15,\"result\":\"0x1\"}]");
	derr_clear(&err);
	CHECK(!rpc_batch(rpc, c, 3, &err) && err.code == DERR_REMOTE && strstr(err.msg, "eth_blockNumber") != NULL &&
		  strstr(err.msg, "header not found") != NULL && c[0].result == NULL,
		  "batch: one call's error fails the batch, named by its method");
	mini_set(m, MINI_REPLY, 200, "[1,2,3]");
	derr_clear(&err);
	CHECK(!rpc_batch(rpc, c, 3, &err) && err.code == DERR_FORMAT, "batch: answers that are not objects refused");
	mini_set(m, MINI_REPLY, 200, "\"0x1\"");
	derr_clear(&err);
	CHECK(!rpc_batch(rpc, c, 3, &err) && err.code == DERR_FORMAT, "batch: a bare string refused");
	derr_clear(&err);
	CHECK(!rpc_batch(rpc, c, 0, &err) && err.code == DERR_ARG, "batch: an empty batch is the caller's error");

	/* a node that answers a batch with one object is asked call by call from then on */
	mini_set(m, MINI_REPLY, 200, "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32600,\"message\":\"batch requests are disabled\"}}");
	derr_clear(&err);
	CHECK(!rpc_batch(rpc, c, 3, &err) && err.code == DERR_REMOTE && strstr(err.msg, "batch requests are disabled") &&
		  m->sh->count == 2, "batch refused as a whole: asked again call by call (and that call's error kept)");
	CHECK(m->sh->last_body[0] == '{', "batch refused: the calls go one by one");
	mini_set(m, MINI_REPLY, 200, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"0x1\"}");
	derr_clear(&err);
	CHECK(!rpc_chain_and_head(rpc, &chain, &head, &err) && m->sh->count == 1 && m->sh->last_body[0] == '{',
		  "batch refused once: later batches go call by call without asking again");
	rpc_free(rpc);

	/* keep-alive: a client's calls go over one connection; without it, one each */
	rpc = rpc_new(url, &o, &err);
	mini_set(m, MINI_REPLY, 200, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"0x7a69\"}");
	m->sh->keepalive = 1;
	m->sh->conns = 0;
	for (int i = 0; i < 3; i++)
	{
		char		reply[128];

		snprintf(reply, sizeof(reply), "{\"jsonrpc\":\"2.0\",\"id\":%d,\"result\":\"0x7a69\"}", i + 1);
		mini_set(m, MINI_REPLY, 200, reply);
		CHECK(rpc_chain_id(rpc, &chain, &err) && chain == 31337, "keep-alive: a call answered");
	}
	printf("     3 calls of one client over %d connection(s)\n", m->sh->conns);
	CHECK(m->sh->conns == 1, "keep-alive: one client's calls reuse one connection");
	rpc_free(rpc);
	{
		HttpResponse r;

		m->sh->conns = 0;
		for (int i = 0; i < 2; i++)
		{
			CHECK(http_request("POST", url, NULL, "{}", &o, "json-rpc node", &r, &err), "a call without kept connections");
			http_response_free(&r);
		}
		CHECK(m->sh->conns == 2, "without HttpOptions.conns every call opens its own connection");
	}
	m->sh->keepalive = 0;

	/* chain and head in one request */
	rpc = rpc_new(url, &o, &err);
	mini_set(m, MINI_REPLY, 200, "[{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":\"0x2a\"},{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"0x7a69\"}]");
	CHECK(rpc_chain_and_head(rpc, &chain, &head, &err) && chain == 31337 && head == 42 && m->sh->count == 1,
		  "chain id and head in one request");
	rpc_free(rpc);
}

/* A GetKey answer the way dstack's KMS builds it, from three known keys. */
static void
make_getkey(const char *purpose, const uint8_t app_id[20], uint8_t root_pub[33], char *out, size_t outlen)
{
	uint8_t		root[32],
				app[32],
				der[32],
				app_pub[33],
				der_pub[33],
				dg[32],
				s0[65],
				s1[65];
	char		hk[65],
				h0[131],
				h1[131];
	DErr		err = {0};

	memset(root, 0x01, 32);
	memset(app, 0x02, 32);
	memset(der, 0x03, 32);
	dc_pubkey_from_seckey(root, root_pub, &err);
	dc_pubkey_from_seckey(app, app_pub, &err);
	dc_pubkey_from_seckey(der, der_pub, &err);
	dstack_sigchain_app_digest(purpose, der_pub, dg);
	dc_sign_recoverable(app, dg, s0, &err);
	dstack_sigchain_kms_digest(app_id, app_pub, dg);
	dc_sign_recoverable(root, dg, s1, &err);
	dhex_encode(der, 32, hk);
	dhex_encode(s0, 65, h0);
	dhex_encode(s1, 65, h1);
	snprintf(out, outlen, "{\"key\":\"%s\",\"signature_chain\":[\"%s\",\"%s\"]}", hk, h0, h1);
}

static void
test_guest_agent(Mini *m)
{
	GaKey		key;
	GaInfo		info;
	GaQuote		q;
	GaEndpoint	ep;
	DErr		err = {0};
	uint8_t		app_id[20];
	uint8_t		root_pub[33];
	uint8_t		wrong[33];
	char		body[1024];
	char		url[64];
	uint8_t		rd[64];

	memset(app_id, 0xaa, 20);
	make_getkey("dstack-seal/v1/x", app_id, root_pub, body, sizeof(body));
	mini_set(m, MINI_REPLY, 200, body);
	CHECK(ga_get_key_verified(m->path, "dstack-seal/v1/x", "dstack-seal/v1/x", root_pub, app_id, &key, &err),
		  "GetKey with a valid chain verifies against the root");
	CHECK(key.key[0] == 0x03 && strcmp(m->sh->last_path, "/GetKey") == 0 &&
		  strstr(m->sh->last_body, "\"algorithm\":\"secp256k1\"") != NULL &&
		  strstr(m->sh->last_body, "\"path\":\"dstack-seal/v1/x\"") != NULL, "GetKey request as dstack defines it");
	ga_key_scrub(&key);
	memcpy(wrong, root_pub, 33);
	wrong[32] ^= 1;
	derr_clear(&err);
	CHECK(!ga_get_key_verified(m->path, "dstack-seal/v1/x", "dstack-seal/v1/x", wrong, app_id, &key, &err) &&
		  err.code == DERR_CHAIN && key.key[0] == 0, "wrong KMS root: DERR_CHAIN, key scrubbed");
	derr_clear(&err);
	CHECK(!ga_get_key_verified(m->path, "dstack-seal/v1/x", "other-purpose", root_pub, app_id, &key, &err) &&
		  err.code == DERR_CHAIN, "other purpose: DERR_CHAIN");

	mini_set(m, MINI_REPLY, 403, "{\"error\":\"app not allowed by its auth contract: not approved\"}");
	derr_clear(&err);
	CHECK(!ga_get_key(m->path, "p", "p", &key, &err) && err.code == DERR_REMOTE &&
		  strstr(err.msg, "not approved") != NULL, "refusal: DERR_REMOTE with the agent's reason");
	mini_set(m, MINI_REPLY, 200, "{\"key\":\"00\",\"signature_chain\":[]}");
	derr_clear(&err);
	CHECK(!ga_get_key(m->path, "p", "p", &key, &err) && err.code == DERR_FORMAT, "malformed GetKey answer refused");

	mini_set(m, MINI_REPLY, 200,
			 "{\"app_id\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"instance_id\":\"0102030405060708090a0b0c0d0e0f1011121314\","
			 "\"compose_hash\":\"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\",\"device_id\":\"cc\","
			 "\"mr_aggregated\":\"dd\",\"os_image_hash\":\"\",\"key_provider_info\":\"{}\",\"tcb_info\":\"{\\\"mrtd\\\":\\\"00\\\"}\"}");
	CHECK(ga_info(m->path, &info, &err) && info.app_id[0] == 0xaa && info.compose_hash[31] == 0xbb &&
		  info.instance_id_len == 20 && info.device_id_len == 1 && info.mr_aggregated_len == 1 &&
		  info.os_image_hash_len == 0 && strcmp(info.tcb_info, "{\"mrtd\":\"00\"}") == 0, "Info parsed");
	CHECK(strcmp(m->sh->last_path, "/Info") == 0, "Info asked at /Info");
	CHECK(info.app_compose == NULL && info.app_compose_len == 0, "Info without app_compose: none");
	ga_info_free(&info);

	/* tcb_info as dstack sends it: JSON text in a string, app_compose a string inside (escaped twice) */
	mini_set(m, MINI_REPLY, 200,
			 "{\"app_id\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
			 "\"compose_hash\":\"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\","
			 "\"tcb_info\":\"{\\n  \\\"compose_hash\\\": \\\"bb\\\",\\n  \\\"app_compose\\\": "
			 "\\\"{\\\\n  \\\\\\\"name\\\\\\\": \\\\\\\"caf\\\\u00e9\\\\\\\"\\\\n}\\\\n\\\"\\n}\"}");
	derr_clear(&err);
	CHECK(ga_info(m->path, &info, &err) && info.app_compose != NULL &&
		  info.app_compose_len == strlen("{\n  \"name\": \"caf\xc3\xa9\"\n}\n") &&
		  strcmp(info.app_compose, "{\n  \"name\": \"caf\xc3\xa9\"\n}\n") == 0,
		  "Info: tcb_info.app_compose unescaped byte for byte (newlines, quotes, UTF-8)");
	ga_info_free(&info);
	mini_set(m, MINI_REPLY, 200,
			 "{\"app_id\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
			 "\"compose_hash\":\"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\","
			 "\"tcb_info\":{\"app_compose\":\"{}\"}}");
	derr_clear(&err);
	CHECK(ga_info(m->path, &info, &err) && info.app_compose_len == 2 && strcmp(info.app_compose, "{}") == 0,
		  "Info: tcb_info sent as an object (simulators)");
	ga_info_free(&info);
	mini_set(m, MINI_REPLY, 200,
			 "{\"app_id\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
			 "\"compose_hash\":\"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\",\"tcb_info\":\"\"}");
	derr_clear(&err);
	CHECK(ga_info(m->path, &info, &err) && info.app_compose == NULL, "Info: empty tcb_info (hidden) gives no app_compose");
	ga_info_free(&info);
	mini_set(m, MINI_REPLY, 200,
			 "{\"app_id\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
			 "\"compose_hash\":\"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\",\"tcb_info\":\"{not json\"}");
	derr_clear(&err);
	CHECK(!ga_info(m->path, &info, &err) && err.code == DERR_FORMAT && strstr(err.msg, "tcb_info") != NULL &&
		  info.app_compose == NULL && info.tcb_info == NULL, "Info: tcb_info that is not JSON refused, nothing kept");
	mini_set(m, MINI_REPLY, 200,
			 "{\"app_id\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
			 "\"compose_hash\":\"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\","
			 "\"tcb_info\":\"{\\\"app_compose\\\":{}}\"}");
	derr_clear(&err);
	CHECK(!ga_info(m->path, &info, &err) && err.code == DERR_FORMAT && strstr(err.msg, "app_compose") != NULL,
		  "Info: app_compose that is not a string refused");
	mini_set(m, MINI_REPLY, 200, "{\"app_id\":\"zz\"}");
	derr_clear(&err);
	CHECK(!ga_info(m->path, &info, &err) && err.code == DERR_FORMAT, "malformed Info refused");

	memset(rd, 0x5a, sizeof(rd));
	snprintf(body, sizeof(body), "{\"quote\":\"0400\",\"event_log\":\"[]\",\"report_data\":\"%s\",\"vm_config\":\"{}\"}",
			 "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a"
			 "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a");
	mini_set(m, MINI_REPLY, 200, body);
	CHECK(ga_get_quote(m->path, rd, 64, &q, &err) && q.quote_len == 2 && q.report_data[63] == 0x5a && !q.simulated,
		  "GetQuote parsed, report_data echoed, not simulated");
	ga_quote_free(&q);
	rd[0] = 0;
	derr_clear(&err);
	CHECK(!ga_get_quote(m->path, rd, 64, &q, &err) && err.code == DERR_INTEGRITY, "quote over other report_data refused");
	derr_clear(&err);
	CHECK(!ga_get_quote(m->path, rd, 65, &q, &err) && err.code == DERR_ARG, "65 bytes of report data refused");

	/* endpoint selection */
	setenv(GA_ENV_ENDPOINT, m->path, 1);
	CHECK(ga_resolve_endpoint(NULL, &ep, &err) && strcmp(ep.socket, m->path) == 0, "DSTACK_SIMULATOR_ENDPOINT socket");
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", m->port);
	setenv(GA_ENV_ENDPOINT, url, 1);
	CHECK(ga_resolve_endpoint(NULL, &ep, &err) && ep.socket[0] == '\0' && ep.url[strlen(ep.url) - 1] != '/',
		  "DSTACK_SIMULATOR_ENDPOINT http URL");
	setenv(GA_ENV_ENDPOINT, "relative.sock", 1);
	derr_clear(&err);
	CHECK(!ga_resolve_endpoint(NULL, &ep, &err) && err.code == DERR_ARG, "relative endpoint refused");
	unsetenv(GA_ENV_ENDPOINT);
	derr_clear(&err);
	CHECK(!ga_info("/nonexistent/dstack.sock", &info, &err) && err.code == DERR_NETWORK &&
		  strstr(err.detail, GA_ENV_ENDPOINT) != NULL, "absent agent socket: DERR_NETWORK with a hint");

	/* dstack's failures: prpc's 400 with a pretty-printed body, Rocket's 404 with an error object */
	mini_set(m, MINI_REPLY, 400, "{\n  \"error\": \"Report data is too long\"\n}");
	derr_clear(&err);
	CHECK(!ga_get_quote(m->path, rd, 64, &q, &err) && err.code == DERR_REMOTE &&
		  strstr(err.msg, "Report data is too long") != NULL, "a prpc error (400): DERR_REMOTE with its text");
	mini_set(m, MINI_REPLY, 404, "{\"error\":{\"code\":404,\"reason\":\"Not Found\","
			 "\"description\":\"The requested resource could not be found.\"}}");
	derr_clear(&err);
	CHECK(!ga_get_key(m->path, "p", "p", &key, &err) && err.code == DERR_REMOTE &&
		  strstr(err.msg, "could not be found") != NULL, "Rocket's 404 (error object): DERR_REMOTE with its description");

	/* an explicit socket named tappd.sock is the legacy one */
	CHECK(ga_resolve_endpoint("/var/run/tappd.sock", &ep, &err) && ep.legacy, "/var/run/tappd.sock is the legacy socket");
	CHECK(ga_resolve_endpoint("/somewhere/else/tappd.sock", &ep, &err) && ep.legacy, "  ... so is any tappd.sock");
	CHECK(ga_resolve_endpoint("/var/run/dstack.sock", &ep, &err) && !ep.legacy, "dstack.sock is not");
	CHECK(ga_resolve_endpoint("/var/run/xtappd.sock", &ep, &err) && !ep.legacy, "nor is xtappd.sock");
	{
		Mini		legacy;
		char		dir[96];
		char		path[128];

		snprintf(dir, sizeof(dir), "/tmp/test_http.%d.d", (int) getpid());
		snprintf(path, sizeof(path), "%s/tappd.sock", dir);
		mkdir(dir, 0700);
		if (mini_start(&legacy, path) != 0)
			CHECK(0, "start a legacy agent");
		else
		{
			char		lbody[1024];
			char	   *k;

			make_getkey("dstack-seal/v1/x", app_id, root_pub, body, sizeof(body));
			/* the same answer with the older field names */
			k = strstr(body, "\"key\"");
			snprintf(lbody, sizeof(lbody), "{\"k256_key\"%s", k + 5);
			k = strstr(lbody, "\"signature_chain\"");
			memmove(k + 5, k, strlen(k) + 1);
			memcpy(k, "\"k256_", 6);
			mini_set(&legacy, MINI_REPLY, 200, lbody);
			derr_clear(&err);
			CHECK(ga_get_key_verified(path, "dstack-seal/v1/x", "dstack-seal/v1/x", root_pub, app_id, &key, &err) &&
				  strcmp(legacy.sh->last_path, "/prpc/Tappd.DeriveK256Key") == 0,
				  "legacy socket: Tappd.DeriveK256Key, k256_ fields, chain verifies");
			ga_key_scrub(&key);
			snprintf(body, sizeof(body), "{\"quote\":\"0400\",\"event_log\":\"[]\"}");
			mini_set(&legacy, MINI_REPLY, 200, body);
			derr_clear(&err);
			CHECK(ga_get_quote(path, rd, 10, &q, &err) && strcmp(legacy.sh->last_path, "/prpc/Tappd.RawQuote") == 0 &&
				  strstr(legacy.sh->last_body, "\"report_data\":\"") != NULL &&
				  strlen(strstr(legacy.sh->last_body, "\"report_data\":\"") + 15) == 128 + 2,
				  "legacy socket: Tappd.RawQuote with exactly 64 bytes of report data");
			ga_quote_free(&q);
			mini_stop(&legacy);
		}
		rmdir(dir);
	}

	/* every call honours ga_set_http_options(): a cancel check ends a hung agent's call */
	{
		HttpOptions o;
		long		t0;

		http_options_default(&o);
		o.timeout_ms = 5000;
		o.should_abort = abort_after_200ms;
		ga_set_http_options(&o);
		mini_set(m, MINI_HANG, 200, NULL);
		abort_start = t0 = now_ms();
		derr_clear(&err);
		CHECK(!ga_info(m->path, &info, &err) && err.code == DERR_NETWORK && strstr(err.msg, "cancelled") != NULL,
			  "a hung agent: the caller's cancel check ends the call");
		printf("     cancelled after %ld ms (deadline 5000)\n", now_ms() - t0);
		CHECK(now_ms() - t0 < 600, "  ... within ~100 ms of the cancel");
		o.should_abort = NULL;
		o.timeout_ms = 300;
		ga_set_http_options(&o);
		t0 = now_ms();
		derr_clear(&err);
		CHECK(!ga_info(m->path, &info, &err) && err.code == DERR_NETWORK && now_ms() - t0 < 800,
			  "  ... and its timeout_ms bounds the call");
		ga_set_http_options(NULL);
		mini_set(m, MINI_REPLY, 200, "{}");
	}
}

/* The one membership test, as the FDW and the state helpers use it. */
static void
test_membership(void)
{
	uint8_t		list[3][ABI_ADDR_LEN];
	uint8_t		other[ABI_ADDR_LEN];
	ConsortiumState st;

	memset(list[0], 0x70, ABI_ADDR_LEN);
	memset(list[1], 0x3c, ABI_ADDR_LEN);
	memset(list[2], 0x90, ABI_ADDR_LEN);
	memset(other, 0x70, ABI_ADDR_LEN);
	other[19] = 0x71;
	CHECK(dc_addr_in((const uint8_t (*)[ABI_ADDR_LEN]) list, 3, list[2]), "membership: the last of three");
	CHECK(!dc_addr_in((const uint8_t (*)[ABI_ADDR_LEN]) list, 3, other), "membership: one byte off is not in");
	CHECK(!dc_addr_in((const uint8_t (*)[ABI_ADDR_LEN]) list, 2, list[2]), "membership: only the first n count");
	CHECK(!dc_addr_in(NULL, 0, list[0]), "membership: an empty list holds no one");
	memset(&st, 0, sizeof(st));
	st.approvers = list;
	st.n_approvers = 2;
	st.owners = list;
	st.n_owners = 3;
	CHECK(consortium_state_is_approver(&st, list[1]) && !consortium_state_is_approver(&st, list[2]) &&
		  consortium_state_is_owner(&st, list[2]), "membership: approvers and owners of a state");
}

int
main(void)
{
	Mini		u,
				t;

	snprintf(sock_path, sizeof(sock_path), "/tmp/test_http.%d.sock", (int) getpid());
	if (mini_start(&u, sock_path) != 0 || mini_start(&t, NULL) != 0)
	{
		printf("cannot start the test server\n");
		return 2;
	}
	test_unix_socket(&u);
	test_retries(&t);
	test_limits(&t);
	test_rpc(&t);
	test_rpc_batch(&t);
	test_guest_agent(&u);
	test_timeout_and_refused();
	test_membership();
	mini_stop(&u);
	mini_stop(&t);
	UNIT_DONE();
}
