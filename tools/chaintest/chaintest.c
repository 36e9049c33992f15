/*
 * chaintest: the chain and guest-agent clients of common/ (rpc.c,
 * guest_agent.c, http.c, sigchain.c) against a live environment: anvil with
 * the consortium contract and the dstack simulator, as tools/testenv.sh
 * brings them up (run.sh drives the scenarios).  Each run checks one
 * scenario FROM C, prints one line per check and "N passed, N failed", and
 * exits non-zero on any failure.
 *
 *   chaintest SCENARIO [--rpc URL] [--socket PATH] [--timeout-ms N]
 * SCENARIO is one of:
 *   approved       k of n approved: GetKey's chain verifies against the KMS
 *                  root, the contract state says approved, dstack's KMS
 *                  contract allows this CVM's boot info (recomputed from Info:
 *                  exactly the boot info the simulator gave its KMS), and so
 *                  does the app contract; Info's compose text is the measured
 *                  one and its policy is the contract's; the quote is the
 *                  simulator's (common/tdx_quote.h) and its RTMR3 replays the
 *                  event log; the legacy tappd socket gives the same key; two
 *                  nodes agree (rpc_quorum_read)
 *   underapproved  k-1 approvals (a CVM the KMS would not boot, run with
 *                  --check-every-request): the agent refuses GetKey naming the
 *                  reason, the state says not approved, the KMS says no
 *   revoked        revoked by owner 1 after boot: the KMS contract says no,
 *                  but the agent still releases keys (the KMS decided at
 *                  boot); a node hiding the revocation is outvoted
 *   wrong-compose  the CVM booted another compose-hash (--check-every-request):
 *                  refused, and the CVM's compose-hash differs from the pinned
 *                  one (and from the sha256 of the compose text Info carries)
 *   node-down      the RPC node is gone (refused) and a node that hangs:
 *                  DERR_NETWORK within the timeout; the agent still releases
 *                  the keys it was given at boot
 *   no-socket      the guest-agent socket is absent: a clean DERR_NETWORK
 * The environment comes from tools/testenv.sh's env.sh (DSTACK_TEST_RPC,
 * DSTACK_TEST_APP_ID, DSTACK_TEST_COMPOSE_HASH, DSTACK_TEST_KMS_ROOT,
 * DSTACK_TEST_KMS_CONTRACT, DSTACK_TEST_CHAIN_ID, DSTACK_TEST_SOCKET,
 * DSTACK_TEST_TAPPD_SOCKET, DSTACK_TEST_DIR, DSTACK_TEST_OWNERS,
 * DSTACK_TEST_OWNER1_ADDR, and DSTACK_TEST_RPC_NODE1/2 where run.sh starts them).
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "guest_agent.h"
#include "hex.h"
#include "http.h"
#include "policy.h"
#include "rpc.h"
#include "sigchain.h"
#include "tdx_quote.h"
#include "wrap.h"

static int	passed;
static int	failed;

/* One check: a line that says what was checked, and why it failed. */
static void
check(bool ok, const char *name, const DErr *err)
{
	if (ok)
	{
		passed++;
		printf("ok   %s\n", name);
	}
	else
	{
		failed++;
		printf("FAIL %s\n", name);
		if (err != NULL && err->code != DERR_OK)
			printf("     [%s] %s%s%s\n", derr_code_name(err->code), err->msg,
				   err->detail[0] ? " | " : "", err->detail);
	}
	fflush(stdout);
}

/* Print an error we expected, so the log shows its wording. */
static void
show(const char *what, const DErr *err, long ms)
{
	printf("     %s (%ld ms): [%s] %s%s%s\n", what, ms, derr_code_name(err->code), err->msg,
		   err->detail[0] ? " | " : "", err->detail);
}

/* Monotonic milliseconds for latency measurements. */
static long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A required environment variable; the run cannot mean anything without it. */
static const char *
need_env(const char *name)
{
	const char *v = getenv(name);

	if (v == NULL || v[0] == '\0')
	{
		fprintf(stderr, "chaintest: %s is not set (source testenv's env.sh)\n", name);
		exit(2);
	}
	return v;
}

/* Decode fixed-size hex from the environment or die: test set-up errors are not test results. */
static void
need_hex(const char *name, uint8_t *out, size_t len)
{
	DErr		err = {0};

	if (!dhex_decode_exact(need_env(name), out, len, name, &err))
	{
		fprintf(stderr, "chaintest: %s: %s\n", name, err.msg);
		exit(2);
	}
}

typedef struct Env
{
	const char *rpc_url;
	const char *socket;
	long		timeout_ms;
	uint8_t		app_id[20];
	uint8_t		compose_hash[32];
	uint8_t		kms_root[33];
	uint8_t		kms[20];
	uint64_t	chain_id;
	uint8_t		owner1[20];
	uint64_t	n_owners;
} Env;

/* The client options a backend would use, with the scenario's deadline. */
static RpcClient *
new_rpc(const Env *e, const char *url)
{
	HttpOptions o;
	DErr		err = {0};
	RpcClient  *rpc;

	http_options_default(&o);
	o.timeout_ms = e->timeout_ms;
	o.connect_timeout_ms = e->timeout_ms < 2000 ? e->timeout_ms : 2000;
	rpc = rpc_new(url, &o, &err);
	if (rpc == NULL)
	{
		fprintf(stderr, "chaintest: %s\n", err.msg);
		exit(2);
	}
	return rpc;
}

/*
 * The AppBootInfo dstack's KMS built for this CVM at boot, recomputed from the
 * agent's Info; it must be exactly what the simulator logged it asked its KMS
 * contract with (JS and C agree).
 */
static bool
boot_info(const GaInfo *info, AbiAppBootInfo *b)
{
	DErr		err = {0};
	char		path[512];
	const char *dir = getenv("DSTACK_TEST_DIR");
	FILE	   *f;
	char		line[4096];
	bool		ok = ga_boot_info(info, b, &err);
	bool		same = false;

	check(ok, "ga_boot_info recomputes the boot info from Info", &err);
	if (!ok || dir == NULL)
		return ok;
	snprintf(path, sizeof(path), "%s/dstack-sim.log", dir);
	f = fopen(path, "r");
	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
	{
		json_t	   *j = json_loads(line, 0, NULL);
		json_t	   *bi = json_object_get(j, "boot_info");
		uint8_t		agg[32],
					sys[32];

		if (json_is_object(bi) &&
			dhex_decode_exact(json_string_value(json_object_get(bi, "mrAggregated")), agg, 32, "m", &err) &&
			dhex_decode_exact(json_string_value(json_object_get(bi, "mrSystem")), sys, 32, "m", &err))
			same = memcmp(agg, b->mr_aggregated, 32) == 0 && memcmp(sys, b->mr_system, 32) == 0;
		json_decref(j);
		if (bi != NULL)
			break;
	}
	if (f != NULL)
		fclose(f);
	check(same, "  ... it is the boot info the simulator asked its KMS contract with", NULL);
	return ok;
}

/* Read Info and the consortium state; both must work in every scenario but node-down. */
static bool
read_both(const Env *e, GaInfo *info, ConsortiumState *st, RpcClient *rpc)
{
	DErr		err = {0};
	long		t0 = now_ms();
	bool		ok;

	ok = ga_info(e->socket, info, &err);
	check(ok, "guest agent Info answers", &err);
	if (!ok)
		return false;
	printf("     Info in %ld ms\n", now_ms() - t0);
	check(memcmp(info->app_id, e->app_id, 20) == 0, "Info app_id is the consortium contract", NULL);
	t0 = now_ms();
	ok = rpc_consortium_state(rpc, e->app_id, RPC_LATEST, st, &err);
	check(ok, "consortium state read at one block", &err);
	if (ok)
		printf("     state at block %" PRIu64 " in %ld ms: %" PRIu64 "/%" PRIu64 " approvals, revoked=%d, approved=%d\n",
			   st->block_number, now_ms() - t0, st->approval_count, st->threshold, st->revoked, st->is_approved);
	return ok;
}

/* isAppAllowed as the KMS asks it: DstackKms, which asks the app contract; both, with the CVM's boot info. */
static void
check_is_app_allowed(RpcClient *rpc, const Env *e, const GaInfo *info, bool expect, const char *reason_part)
{
	AbiAppBootInfo b;
	DErr		err = {0};
	bool		allowed = false;
	char	   *reason = NULL;
	bool		ok;

	if (!boot_info(info, &b))
		return;
	for (int who = 0; who < 2; who++)
	{
		const char *name = who == 0 ? "DstackKms" : "the app contract";
		char		what[160];

		derr_clear(&err);
		ok = rpc_is_app_allowed(rpc, who == 0 ? e->kms : e->app_id, &b, RPC_LATEST, &allowed, &reason, &err);
		snprintf(what, sizeof(what), "%s.isAppAllowed(AppBootInfo) answers", name);
		check(ok, what, &err);
		if (!ok)
			continue;
		printf("     %s.isAppAllowed = (%s, \"%s\")\n", name, allowed ? "true" : "false", reason ? reason : "");
		snprintf(what, sizeof(what), "%s says %s", name, expect ? "allowed" : "not allowed");
		check(allowed == expect, what, NULL);
		if (!expect)
			check(reason != NULL && reason[0] != '\0' && (reason_part == NULL || strcasestr(reason, reason_part)),
				  "  ... and gives a reason", NULL);
		free(reason);
		reason = NULL;
	}
}

/* The keys released at boot: GetKey answers whatever the chain says now. */
static void
check_key_released(const Env *e, const char *why)
{
	GaKey		key;
	DErr		err = {0};
	char		path[DSEAL_RECIPIENT_PATH_LEN];
	char		name[160];

	dseal_recipient_path(e->owner1, path);
	snprintf(name, sizeof(name), "GetKey still answers (%s): the KMS decided at boot", why);
	check(ga_get_key_verified(e->socket, path, path, e->kms_root, e->app_id, &key, &err), name, &err);
	ga_key_scrub(&key);
}

/* Several nodes: rpc_quorum_read with the KMS question; expect the outcome, and revoked as said. */
static void
check_quorum(const Env *e, const GaInfo *info, const char *urls, int quorum, RpcQuorumOutcome want,
			 bool want_revoked, const char *name)
{
	RpcNodeList l;
	RpcQuorumResult res;
	AbiAppBootInfo b;
	HttpOptions o;
	DErr		err = {0};
	bool		ok;

	if (!rpc_parse_urls(urls, &l, &err) || !ga_boot_info(info, &b, &err))
	{
		check(false, name, &err);
		return;
	}
	http_options_default(&o);
	o.timeout_ms = e->timeout_ms;
	ok = rpc_quorum_read(&l, quorum, e->chain_id, 0, e->app_id, e->kms, &b, &o, &res, &err);
	check(ok && res.outcome == want &&
		  (want != RPCQ_AGREED || (res.view->st.revoked == want_revoked && res.view->kms_allowed == !want_revoked)),
		  name, ok ? NULL : &err);
	if (ok)
		printf("     %d node(s), quorum %d, height %llu: outcome %d, %d agree\n", res.n, res.quorum,
			   (unsigned long long) res.height, (int) res.outcome, res.agreeing);
	rpc_quorum_result_free(&res);
	rpc_node_list_free(&l);
}

/* GetKey must be refused by the agent (its KMS asked the contract), with words. */
static void
check_refused(const Env *e, const char *why)
{
	GaKey		key;
	DErr		err = {0};
	char		path[DSEAL_RECIPIENT_PATH_LEN];
	long		t0 = now_ms();
	bool		ok;
	char		name[160];

	dseal_recipient_path(e->owner1, path);
	ok = ga_get_key(e->socket, path, path, &key, &err);
	ga_key_scrub(&key);
	snprintf(name, sizeof(name), "GetKey refused (%s)", why);
	check(!ok && err.code == DERR_REMOTE, name, ok ? NULL : &err);
	if (!ok)
		show("refusal", &err, now_ms() - t0);
	check(!ok && strstr(err.msg, "GetKey") != NULL && strlen(err.msg) > 30,
		  "refusal names the method and the agent's reason", NULL);
}

static void
scenario_approved(const Env *e)
{
	RpcClient  *rpc = new_rpc(e, e->rpc_url);
	GaInfo		info;
	ConsortiumState st;
	GaKey		key;
	GaQuote		q;
	DErr		err = {0};
	uint64_t	chain = 0;
	char		path[DSEAL_RECIPIENT_PATH_LEN];
	uint8_t		other_app[20];
	uint8_t		rd[64];
	uint8_t		pub1[33] = {0};
	long		t0;
	bool		ok;

	check(rpc_chain_id(rpc, &chain, &err) && chain == 31337, "eth_chainId is anvil's 31337", &err);
	if (!read_both(e, &info, &st, rpc))
		goto out;
	check(memcmp(info.compose_hash, e->compose_hash, 32) == 0, "Info compose_hash is the pinned recipe", NULL);
	check(memcmp(st.compose_hash, e->compose_hash, 32) == 0, "contract composeHash() is the pinned recipe", NULL);
	check(st.is_approved && !st.revoked && st.approval_count >= st.threshold && st.threshold > 0,
		  "state says approved (k approvals, not revoked)", NULL);
	check(st.chain_id == 31337 && st.block_number > 0, "state records chain id and block", NULL);
	check(st.revoke_reason != NULL && st.revoke_reason[0] == '\0', "revokeReason() is empty", NULL);
	check(st.n_owners == e->n_owners && consortium_state_is_owner(&st, e->owner1), "owners() lists the owners", NULL);
	check(st.n_approvers == st.approval_count && consortium_state_is_approver(&st, e->owner1),
		  "approvers() lists owner 1", NULL);
	check(st.policy.epsilon_milli == 1500 && st.policy.min_group_size == 10 &&
		  st.policy.output_type && strcmp(st.policy.output_type, "dp-aggregate") == 0 &&
		  st.policy.privacy_unit && strcmp(st.policy.privacy_unit, "patient_id") == 0,
		  "policy() is (1500, 10, dp-aggregate, patient_id)", NULL);
	{
		DPolicy		pol;

		derr_clear(&err);
		check(ga_app_compose_measured(&info, &err), "Info's app_compose hashes to its compose_hash (the measured text)",
			  &err);
		derr_clear(&err);
		ok = dpolicy_from_compose(info.app_compose, info.app_compose_len, &pol, &err);
		check(ok, "its pg_dstack_policy parses", &err);
		check(ok && pol.epsilon_total_micro == (int64_t) st.policy.epsilon_milli * 1000 &&
			  pol.min_group_size == st.policy.min_group_size &&
			  strcmp(pol.privacy_unit, st.policy.privacy_unit) == 0 &&
			  strcmp(pol.allowed_query_shape, st.policy.output_type) == 0,
			  "the compose's policy is the contract's policy()", NULL);
	}
	{
		bool		has = false;

		check(rpc_has_approved(rpc, e->app_id, e->owner1, st.block_number, &has, &err) && has,
			  "hasApproved(owner 1) at the state's block", &err);
	}
	check_is_app_allowed(rpc, e, &info, true, NULL);

	dseal_recipient_path(e->owner1, path);
	t0 = now_ms();
	ok = ga_get_key_verified(e->socket, path, path, e->kms_root, e->app_id, &key, &err);
	check(ok, "GetKey returns a key whose chain verifies against kms-root.pub", &err);
	if (ok)
	{
		uint8_t		pub[33];

		printf("     GetKey + chain check in %ld ms\n", now_ms() - t0);
		check(dc_pubkey_from_seckey(key.key, pub, &err) && memcmp(pub, key.pub, 33) == 0,
			  "returned key matches its public key", &err);
		memcpy(other_app, e->app_id, 20);
		other_app[19] ^= 1;
		derr_clear(&err);
		check(!dstack_sigchain_verify(e->kms_root, other_app, path, key.pub, key.chain[0], key.chain[1], NULL, &err) &&
			  err.code == DERR_CHAIN, "the same chain does not verify for another app id", NULL);
		derr_clear(&err);
		check(!dstack_sigchain_verify(e->kms_root, e->app_id, "dstack-receipt/v1", key.pub, key.chain[0],
									  key.chain[1], NULL, &err) && err.code == DERR_CHAIN,
			  "the same chain does not verify for another purpose", NULL);
	}
	memcpy(pub1, key.pub, 33);
	ga_key_scrub(&key);
	if (ok)
	{
		GaKey		k2;

		check(ga_get_key(e->socket, path, path, &k2, &err) && memcmp(k2.pub, pub1, 33) == 0,
			  "GetKey is deterministic per path", &err);
		ga_key_scrub(&k2);
	}

	for (size_t i = 0; i < sizeof(rd); i++)
		rd[i] = (uint8_t) i;
	check(ga_get_quote(e->socket, rd, sizeof(rd), &q, &err) && q.quote_len > 0 &&
		  memcmp(q.report_data, rd, 64) == 0, "GetQuote over 64 bytes of report data", &err);
	{
		TdxqReport	rep;
		json_t	   *log = json_loads(q.event_log ? q.event_log : "", 0, NULL);
		uint8_t		r3[TDXQ_MR_LEN];

		derr_clear(&err);
		check(tdxq_parse(q.quote, q.quote_len, &rep, &err) && memcmp(rep.report_data, rd, 64) == 0,
			  "  ... a TDX v4 quote carrying that report data", &err);
		check(tdxq_is_simulated(q.quote, q.quote_len) && q.simulated,
			  "  ... marked as simulated (common/tdx_quote.h; GaQuote.simulated says so)", NULL);
		derr_clear(&err);
		check(tdxq_replay_rtmr3(log, NULL, r3, &err) && memcmp(r3, rep.rtmr[3], TDXQ_MR_LEN) == 0,
			  "  ... whose RTMR3 is the replay of the (stripped) event log", &err);
		json_decref(log);
	}
	ga_quote_free(&q);

	/* the legacy socket: Tappd.DeriveK256Key gives the same key */
	{
		const char *tappd = getenv("DSTACK_TEST_TAPPD_SOCKET");
		GaKey		k2;
		GaEndpoint	ep;

		if (tappd != NULL && ga_resolve_endpoint(tappd, &ep, &err))
		{
			check(ep.legacy, "tappd.sock is spoken to with the legacy API", NULL);
			derr_clear(&err);
			check(ga_get_key_verified(tappd, path, path, e->kms_root, e->app_id, &k2, &err) &&
				  memcmp(k2.pub, pub1, 33) == 0, "  ... and gives the same key", &err);
			ga_key_scrub(&k2);
			derr_clear(&err);
			check(ga_get_quote(tappd, rd, 10, &q, &err) && tdxq_is_simulated(q.quote, q.quote_len),
				  "  ... and a quote (Tappd.RawQuote)", &err);
			ga_quote_free(&q);
		}
	}

	/* two honest nodes agree; the KMS allows */
	{
		const char *n1 = getenv("DSTACK_TEST_RPC_NODE1");
		char		urls[512];

		if (n1 != NULL)
		{
			snprintf(urls, sizeof(urls), "%s,%s", e->rpc_url, n1);
			check_quorum(e, &info, urls, 0, RPCQ_AGREED, false, "two honest nodes agree (quorum: both)");
		}
	}

	/* a wrong root must refuse, whatever the agent says */
	{
		uint8_t		wrong[33];

		memcpy(wrong, e->kms_root, 33);
		wrong[20] ^= 0x55;
		derr_clear(&err);
		check(!ga_get_key_verified(e->socket, path, path, wrong, e->app_id, &key, &err) && err.code == DERR_CHAIN,
			  "a different KMS root is refused (DERR_CHAIN)", NULL);
		ga_key_scrub(&key);
	}
	rpc_consortium_state_free(&st);
	ga_info_free(&info);
out:
	rpc_free(rpc);
}

static void
scenario_underapproved(const Env *e)
{
	RpcClient  *rpc = new_rpc(e, e->rpc_url);
	GaInfo		info;
	ConsortiumState st;

	if (read_both(e, &info, &st, rpc))
	{
		check(!st.is_approved && !st.revoked && st.approval_count + 1 == st.threshold,
			  "state says not approved (k-1 approvals)", NULL);
		check_is_app_allowed(rpc, e, &info, false, NULL);
		check_refused(e, "k-1 approvals");
		rpc_consortium_state_free(&st);
		ga_info_free(&info);
	}
	rpc_free(rpc);
}

static void
scenario_revoked(const Env *e)
{
	RpcClient  *rpc = new_rpc(e, e->rpc_url);
	GaInfo		info;
	ConsortiumState st;

	if (read_both(e, &info, &st, rpc))
	{
		check(st.revoked && !st.is_approved, "state says revoked and not approved", NULL);
		check(memcmp(st.revoked_by, e->owner1, 20) == 0, "revokedBy() is owner 1", NULL);
		printf("     revokeReason() = \"%s\"\n", st.revoke_reason ? st.revoke_reason : "(null)");
		check(st.revoke_reason != NULL, "revokeReason() read", NULL);
		check_is_app_allowed(rpc, e, &info, false, "revok");
		check_key_released(e, "revoked after boot");
		{
			const char *n1 = getenv("DSTACK_TEST_RPC_NODE1");
			const char *n2 = getenv("DSTACK_TEST_RPC_NODE2");
			char		urls[512];

			if (n1 != NULL && n2 != NULL)
			{
				snprintf(urls, sizeof(urls), "%s", n2);
				check_quorum(e, &info, urls, 0, RPCQ_AGREED, false,
							 "a node hiding the revocation, alone, would be believed (what a quorum is for)");
				snprintf(urls, sizeof(urls), "%s,%s,%s", n2, e->rpc_url, n1);
				check_quorum(e, &info, urls, 2, RPCQ_AGREED, true, "  ... two honest nodes outvote it: revoked");
				check_quorum(e, &info, urls, 0, RPCQ_DISAGREE, true, "  ... all three must agree: they do not");
			}
		}
		rpc_consortium_state_free(&st);
		ga_info_free(&info);
	}
	rpc_free(rpc);
}

static void
scenario_wrong_compose(const Env *e)
{
	RpcClient  *rpc = new_rpc(e, e->rpc_url);
	GaInfo		info;
	ConsortiumState st;

	if (read_both(e, &info, &st, rpc))
	{
		check(st.is_approved, "the consortium itself is approved", NULL);
		check(memcmp(info.compose_hash, st.compose_hash, 32) != 0,
			  "the CVM's compose_hash differs from the pinned composeHash()", NULL);
		{
			DErr		err = {0};

			/* run.sh boots this agent with --cvm-compose-hash: its compose text is not the measured one */
			check(!ga_app_compose_measured(&info, &err) && err.code == DERR_INTEGRITY,
				  "Info's app_compose does not hash to the reported compose_hash (DERR_INTEGRITY)", NULL);
		}
		check_is_app_allowed(rpc, e, &info, false, NULL);
		check_refused(e, "wrong compose-hash");
		rpc_consortium_state_free(&st);
		ga_info_free(&info);
	}
	rpc_free(rpc);
}

/* A loopback port that accepts connections and never answers: a hung node. */
static int
hanging_listener(int *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t	sl = sizeof(sa);
	int			s = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (s < 0 || bind(s, (struct sockaddr *) &sa, sizeof(sa)) != 0 || listen(s, 16) != 0 ||
		getsockname(s, (struct sockaddr *) &sa, &sl) != 0)
		return -1;
	*port = ntohs(sa.sin_port);
	return s;
}

static void
scenario_node_down(const Env *e)
{
	RpcClient  *rpc = new_rpc(e, e->rpc_url);
	ConsortiumState st;
	DErr		err = {0};
	long		t0 = now_ms();
	long		dt;
	bool		ok;
	long		slack = 500;
	char		name[200];
	char		url[64];
	int			port = 0;
	int			hs;

	ok = rpc_consortium_state(rpc, e->app_id, RPC_LATEST, &st, &err);
	dt = now_ms() - t0;
	check(!ok && err.code == DERR_NETWORK, "node down: DERR_NETWORK", ok ? NULL : &err);
	show("node down", &err, dt);
	snprintf(name, sizeof(name), "node down: error within %ld ms + %ld ms slack (took %ld ms)", e->timeout_ms, slack, dt);
	check(dt < e->timeout_ms + slack, name, NULL);
	check(strstr(err.msg, "refused") != NULL || strstr(err.msg, "timed out") != NULL,
		  "node down: the error says how it failed", NULL);
	{
		const char *hostport = strstr(e->rpc_url, "://");

		check(hostport != NULL && strstr(err.msg, hostport + 3) != NULL, "node down: the error names the node", NULL);
	}
	rpc_consortium_state_free(&st);
	rpc_free(rpc);

	hs = hanging_listener(&port);
	if (hs < 0)
	{
		check(false, "open a hanging listener", NULL);
		return;
	}
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	rpc = new_rpc(e, url);
	derr_clear(&err);
	t0 = now_ms();
	ok = rpc_consortium_state(rpc, e->app_id, RPC_LATEST, &st, &err);
	dt = now_ms() - t0;
	check(!ok && err.code == DERR_NETWORK && strstr(err.msg, "timed out") != NULL,
		  "hung node: DERR_NETWORK, timed out", ok ? NULL : &err);
	show("hung node", &err, dt);
	snprintf(name, sizeof(name), "hung node: error within %ld ms + %ld ms slack (took %ld ms)", e->timeout_ms, slack, dt);
	check(dt >= e->timeout_ms - 50 && dt < e->timeout_ms + slack, name, NULL);
	rpc_consortium_state_free(&st);
	rpc_free(rpc);
	close(hs);

	/* the keys were released at boot: the chain being gone changes nothing for the agent */
	check_key_released(e, "the chain is unreachable");
}

static void
scenario_no_socket(const Env *e)
{
	GaKey		key;
	GaInfo		info;
	DErr		err = {0};
	long		t0 = now_ms();
	long		dt;
	bool		ok;

	ok = ga_get_key(e->socket, "p", "p", &key, &err);
	dt = now_ms() - t0;
	ga_key_scrub(&key);
	check(!ok && err.code == DERR_NETWORK, "absent socket: GetKey fails with DERR_NETWORK", ok ? NULL : &err);
	show("absent socket", &err, dt);
	check(strstr(err.msg, e->socket) != NULL, "absent socket: the error names the socket path", NULL);
	check(dt < 100, "absent socket: fails at once, no retries into the deadline", NULL);
	derr_clear(&err);
	check(!ga_info(e->socket, &info, &err) && err.code == DERR_NETWORK, "absent socket: Info fails cleanly", NULL);
	setenv(GA_ENV_ENDPOINT, e->socket, 1);
	derr_clear(&err);
	check(!ga_info(NULL, &info, &err) && err.code == DERR_NETWORK && strstr(err.msg, e->socket) != NULL,
		  "absent socket via DSTACK_SIMULATOR_ENDPOINT: same clean error", NULL);
}

int
main(int argc, char **argv)
{
	Env			e;
	const char *scenario;
	const char *s;

	if (argc < 2)
	{
		fprintf(stderr, "usage: chaintest approved|underapproved|revoked|wrong-compose|node-down|no-socket "
				"[--rpc URL] [--socket PATH] [--timeout-ms N]\n");
		return 2;
	}
	scenario = argv[1];
	memset(&e, 0, sizeof(e));
	e.timeout_ms = 3000;
	e.rpc_url = getenv("DSTACK_TEST_RPC");
	e.socket = getenv("DSTACK_TEST_SOCKET");
	for (int i = 2; i + 1 < argc; i += 2)
	{
		if (strcmp(argv[i], "--rpc") == 0)
			e.rpc_url = argv[i + 1];
		else if (strcmp(argv[i], "--socket") == 0)
			e.socket = argv[i + 1];
		else if (strcmp(argv[i], "--timeout-ms") == 0)
			e.timeout_ms = atol(argv[i + 1]);
		else
		{
			fprintf(stderr, "chaintest: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	if (e.rpc_url == NULL || e.socket == NULL)
	{
		fprintf(stderr, "chaintest: no RPC URL or socket (source env.sh or pass --rpc/--socket)\n");
		return 2;
	}
	need_hex("DSTACK_TEST_APP_ID", e.app_id, 20);
	need_hex("DSTACK_TEST_COMPOSE_HASH", e.compose_hash, 32);
	need_hex("DSTACK_TEST_KMS_ROOT", e.kms_root, 33);
	need_hex("DSTACK_TEST_KMS_CONTRACT", e.kms, 20);
	e.chain_id = strtoull(need_env("DSTACK_TEST_CHAIN_ID"), NULL, 10);
	need_hex("DSTACK_TEST_OWNER1_ADDR", e.owner1, 20);
	s = need_env("DSTACK_TEST_OWNERS");
	e.n_owners = strtoull(s, NULL, 10);

	printf("--- chaintest %s (rpc %s, agent %s, timeout %ld ms)\n", scenario, e.rpc_url, e.socket, e.timeout_ms);
	if (strcmp(scenario, "approved") == 0)
		scenario_approved(&e);
	else if (strcmp(scenario, "underapproved") == 0)
		scenario_underapproved(&e);
	else if (strcmp(scenario, "revoked") == 0)
		scenario_revoked(&e);
	else if (strcmp(scenario, "wrong-compose") == 0)
		scenario_wrong_compose(&e);
	else if (strcmp(scenario, "node-down") == 0)
		scenario_node_down(&e);
	else if (strcmp(scenario, "no-socket") == 0)
		scenario_no_socket(&e);
	else
	{
		fprintf(stderr, "chaintest: unknown scenario %s\n", scenario);
		return 2;
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
