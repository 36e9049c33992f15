/*
 * mount.c: the mount rule of a sealed dataset (docs/architecture.md, the data path).
 *
 * Before a scan produces a row:
 *   1. the guest agent says which CVM this is (app id, compose-hash): the
 *      values the unwrap uses, never options a user could set;
 *   2. the consortium contract at that app id, read at head - confirmations,
 *      is approved (>= k owner approvals), not revoked, and pins exactly the
 *      compose-hash this CVM was measured with; and dstack's KMS contract
 *      (server option kms_contract) answers isAppAllowed(this CVM's boot
 *      info, recomputed from Info as the KMS saw it at boot) with true: the
 *      very question the KMS asked before it released this CVM's keys, at
 *      the same block as the rest.  Every JSON-RPC node of rpc_url is asked;
 *      a quorum of them (rpc_quorum, default all) must agree on the block
 *      hash and every answer, and all must serve the chain chain_id names;
 *      the analysis policy is the pg_dstack_policy of the app-compose.json
 *      that compose-hash measures (Info's app_compose, checked against the
 *      hash), never the chain's answer: the contract's policy() must agree
 *      with it, so a lying JSON-RPC node is refused instead of obeyed;
 *   3. the table's owner is among the approvers, and the manifest (whose
 *      signature the reader has checked) was signed by that owner;
 *   4. the dataset was sealed for this recipe and this CVM's recipient key;
 *   5. GetKey at the owner's path, chain checked to the KMS root, ECDH + HKDF
 *      unwrap of the data key.
 * Step 2 is cached for one statement per server, so a three-way join reads
 * the chain once and a revocation is seen by the next statement; step 1,
 * which cannot change while the CVM runs, once per backend (identity.c), and
 * so is step 5's GetKey and its chain check (keycache.c): the key, fixed
 * while the CVM runs, is used only after this statement's step 2.
 * Since dstack's KMS decides only at boot, this per-statement check is what
 * enforces a revocation in a CVM that already holds its keys.
 * Every failure is its own error saying what is missing on chain.  Every
 * wait (JSON-RPC nodes, guest agent) is bounded by timeout_ms and ends at
 * once when the statement is cancelled (statement_timeout, a cancel
 * request): the HTTP client polls dfdw_should_abort(), and the error that
 * follows is PostgreSQL's own cancel.
 */
#include "postgres.h"

#include "access/xact.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "dstack_fdw.h"
#include "keycache.h"
#include "guest_agent.h"
#include "hex.h"
#include "identity.h"
#include "pg_common.h"
#include "policy.h"
#include "rpc.h"
#include "wrap.h"

#define MAX_CACHED_SERVERS 16

/* One server's chain and CVM facts, valid for one statement. */
typedef struct StatementFacts
{
	Oid			serverid;
	LocalTransactionId lxid;
	TimestampTz stmt_start;
	DfdwChainFacts chain;
	uint8		pinned_compose_hash[32];
	bool		kms_allowed;
	char		kms_reason[256];
	char		kms_contract[2 * DC_ADDR_LEN + 3];
	uint64		threshold;
	uint64		approvals;
	bool		revoked;
	uint8		revoked_by[DC_ADDR_LEN];
	int			n_approvers;
	uint8		(*approvers)[DC_ADDR_LEN];	/* TopMemoryContext, as many as the chain lists */
	int			n_owners;
	uint8		(*owners)[DC_ADDR_LEN];	/* TopMemoryContext */
} StatementFacts;

static StatementFacts *facts_cache;
static int	n_facts;

/*
 * The HTTP clients' cancel check, polled from libcurl's callbacks and between
 * attempts: it only reads the flags PostgreSQL's signal handlers set (no
 * ereport, no allocation there); the caller raises the cancel afterwards with
 * CHECK_FOR_INTERRUPTS().
 */
bool
dfdw_should_abort(void *arg)
{
	return InterruptPending && (QueryCancelPending || ProcDiePending);
}

/* A server's timeouts and retries, with the cancel check. */
void
dfdw_http_options(const DfdwServerOptions *opts, HttpOptions *hopt)
{
	http_options_default(hopt);
	hopt->connect_timeout_ms = opts->connect_timeout_ms;
	hopt->timeout_ms = opts->timeout_ms;
	hopt->retries = opts->retries;
	hopt->should_abort = dfdw_should_abort;
}

/* A failed remote call: a cancel is PostgreSQL's cancel error, anything else the caller's. */
static void
raise_if_cancelled(void)
{
	CHECK_FOR_INTERRUPTS();
}

StaticAssertDecl(DFDW_MAX_RPC_NODES == RPC_MAX_NODES, "rpc_url's limit is the client's");

/* rpc_url at CREATE/ALTER SERVER (options.c cannot include the JSON-RPC client's headers). */
void
dfdw_validate_rpc_url(const char *value)
{
	RpcNodeList list;
	DErr		err;

	derr_clear(&err);
	if (!rpc_parse_urls(value, &list, &err))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("invalid value for option \"rpc_url\": %s", err.msg),
				 errdetail("%s", err.detail),
				 errhint("Use the http:// or https:// URL of an Ethereum JSON-RPC node, or up to %d such URLs "
						 "separated by commas.", RPC_MAX_NODES)));
	rpc_node_list_free(&list);
}

/*
 * Keep a copy of an address list from the chain in the cache entry (which
 * outlives the statement), replacing the entry's previous one.  The whole
 * list: a copy cut at a fixed size would make a later owner or approver
 * look absent.  The ABI decoder bounds its length (ABI_MAX_ARRAY).
 */
static void
keep_addrs(uint8 (**dst)[DC_ADDR_LEN], int *n, const uint8 (*src)[DC_ADDR_LEN], size_t count)
{
	if (*dst != NULL)
		pfree(*dst);
	*dst = NULL;
	*n = 0;
	if (count == 0)
		return;
	*dst = MemoryContextAlloc(TopMemoryContext, count * DC_ADDR_LEN);
	memcpy(*dst, src, count * DC_ADDR_LEN);
	*n = (int) count;
}

/* A cache entry belongs to the running statement of this backend. */
static bool
facts_current(const StatementFacts *f)
{
	return f->lxid == MyProc->lxid && f->stmt_start == GetCurrentStatementStartTimestamp();
}

/* The guest agent socket of a server (NULL: the client's default and env override). */
static const char *
agent_socket(const DfdwServerOptions *opts)
{
	return opts->guest_agent;
}

/* A string from the network for a message: quoted, printable ASCII, at most 64 bytes. */
static char *
quoted(const char *s)
{
	StringInfoData b;

	initStringInfo(&b);
	appendStringInfoChar(&b, '"');
	for (int i = 0; s != NULL && s[i] != '\0'; i++)
	{
		if (i == 64)
		{
			appendStringInfoString(&b, "...");
			break;
		}
		appendStringInfoChar(&b, s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?');
	}
	appendStringInfoChar(&b, '"');
	return b.data;
}

/*
 * The contract's copy of the policy must be the compose's on every field it
 * has.  The compose's is the one in force whatever the chain says; a
 * disagreement means the consortium approved another policy, or the JSON-RPC
 * node misreports the chain: either way nothing is mounted.  Frees st
 * before it raises the error.
 */
static void
check_policy_agrees(ForeignServer *server, const char *nodes, const StatementFacts *f,
					const DPolicy *pol, const ConsortiumState *st, RpcQuorumResult *res)
{
	const ConsortiumPolicy *cp = &st->policy;
	StringInfoData fields;
	char		hash[65];
	char	   *chain_eps;
	char	   *app;

	initStringInfo(&fields);
	if (cp->epsilon_milli > (uint64) (PG_INT64_MAX / 1000) ||
		(int64) cp->epsilon_milli * 1000 != pol->epsilon_total_micro)
		appendStringInfoString(&fields, ", epsilon_total");
	if (cp->min_group_size != pol->min_group_size)
		appendStringInfoString(&fields, ", min_group_size");
	if (strcmp(cp->privacy_unit ? cp->privacy_unit : "", pol->privacy_unit) != 0)
		appendStringInfoString(&fields, ", privacy_unit");
	if (strcmp(cp->output_type ? cp->output_type : "", pol->allowed_query_shape) != 0)
		appendStringInfoString(&fields, ", allowed_query_shape");
	if (fields.len == 0)
		return;

	dhex_encode(f->chain.compose_hash, 32, hash);
	app = dpg_hex(f->chain.app_id, DC_ADDR_LEN, true);
	chain_eps = psprintf("%llu.%03llu", (unsigned long long) (cp->epsilon_milli / 1000),
						 (unsigned long long) (cp->epsilon_milli % 1000));
	{
		char	   *chain_unit = quoted(cp->privacy_unit);
		char	   *chain_shape = quoted(cp->output_type);
		unsigned long long block = (unsigned long long) st->block_number;
		unsigned	chain_mgs = cp->min_group_size;

		rpc_quorum_result_free(res);
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("the policy() of consortium %s disagrees with this CVM's measured app-compose on %s",
						app, fields.data + 2),
				 errdetail("The app-compose.json of compose-hash 0x%s states epsilon_total %s, min_group_size %u, "
						   "privacy_unit \"%s\", allowed_query_shape \"%s\". %s answered "
						   "policy() at block %llu with epsilon %s, min_group_size %u, privacy_unit %s, "
						   "output type %s.",
						   hash, pol->epsilon_total_text, pol->min_group_size, pol->privacy_unit,
						   pol->allowed_query_shape, nodes, block, chain_eps, chain_mgs,
						   chain_unit, chain_shape),
				 errhint("The measured app-compose's policy is the one in force. If the contract records another "
						 "policy, the owners did not approve this one: deploy a consortium with the compose's "
						 "policy. Otherwise the node misreports the chain: point server \"%s\"'s rpc_url at "
						 "nodes you run or trust.", server->servername)));
	}
}

/* "node a, node b and node c" of the nodes whose status is one of mask (bits of RpcNodeStatus). */
static char *
node_names(const RpcQuorumResult *res, unsigned mask)
{
	StringInfoData b;
	int			n = 0,
				k = 0;

	for (int i = 0; i < res->n; i++)
		n += (mask >> res->nodes[i].status) & 1;
	initStringInfo(&b);
	for (int i = 0; i < res->n; i++)
		if ((mask >> res->nodes[i].status) & 1)
		{
			k++;
			appendStringInfo(&b, "%s%s", k == 1 ? "" : k == n ? " and " : ", ", res->nodes[i].name);
		}
	return b.data;
}

/* One line per node that answered: what it said, for a disagreement's detail. */
static char *
node_views(const RpcQuorumResult *res)
{
	StringInfoData b;

	initStringInfo(&b);
	for (int i = 0; i < res->n; i++)
	{
		const RpcNodeResult *r = &res->nodes[i];
		char		h[65];

		if (r->status == RPCN_FAILED)
		{
			appendStringInfo(&b, " Node %s did not answer: %s.", r->name, r->err.msg);
			continue;
		}
		dhex_encode(r->view.st.block_hash, 32, h);
		appendStringInfo(&b, " Node %s: block %llu hash 0x%.12s..., %llu of %llu approvals, %s, KMS %s.",
						 r->name, (unsigned long long) r->view.st.block_number, h,
						 (unsigned long long) r->view.st.approval_count, (unsigned long long) r->view.st.threshold,
						 r->view.st.revoked ? "revoked" : "not revoked",
						 r->view.kms_allowed ? "allows" : "refuses");
	}
	return b.data;
}

/*
 * Read the consortium through every node of rpc_url and keep the quorum's
 * view; every way that fails is its own error.  Frees res before raising.
 */
static void
read_chain(ForeignServer *server, const DfdwServerOptions *opts, const StatementFacts *f,
		   const AbiAppBootInfo *boot, const HttpOptions *hopt, RpcQuorumResult *res)
{
	RpcNodeList list;
	DErr		err;
	uint8		kms[DC_ADDR_LEN];
	uint64		chain_id;
	char	   *app = dpg_hex(f->chain.app_id, DC_ADDR_LEN, true);

	derr_clear(&err);
	dfdw_require_chain_options(server, opts);
	if (!dhex_decode_exact(opts->kms_contract, kms, DC_ADDR_LEN, "kms_contract", &err))
		derr_ereport(&err, ERRCODE_FDW_INVALID_OPTION_NAME, NULL);
	chain_id = dfdw_chain_id(opts);
	if (!rpc_parse_urls(opts->rpc_url, &list, &err))
		derr_ereport(&err, ERRCODE_FDW_INVALID_OPTION_NAME,
					 psprintf("Correct server \"%s\"'s rpc_url.", server->servername));
	if (!rpc_quorum_read(&list, opts->rpc_quorum, chain_id, opts->confirmations, f->chain.app_id, kms, boot, hopt,
						 res, &err))
	{
		int			n = list.n;

		rpc_node_list_free(&list);
		derr_ereport(&err, ERRCODE_FDW_INVALID_OPTION_NAME,
					 psprintf("Set server \"%s\"'s rpc_quorum to more than half of its %d nodes, or to 0 (all).",
							  server->servername, n));
	}
	rpc_node_list_free(&list);
	/* a cancel that ended the reads is PostgreSQL's cancel, not a node failure */
	if (dfdw_should_abort(NULL))
	{
		rpc_quorum_result_free(res);
		raise_if_cancelled();
	}

	switch (res->outcome)
	{
		case RPCQ_AGREED:
			return;
		case RPCQ_WRONG_CHAIN:
			{
				char	   *names = node_names(res, 1u << RPCN_WRONG_CHAIN);
				unsigned long long other = 0;

				for (int i = 0; i < res->n; i++)
					if (res->nodes[i].status == RPCN_WRONG_CHAIN)
						other = (unsigned long long) res->nodes[i].chain_id;
				rpc_quorum_result_free(res);
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
						 errmsg("JSON-RPC node %s serves chain %llu, not chain %llu of server \"%s\"",
								names, other, (unsigned long long) chain_id, server->servername),
						 errdetail("A consortium's approval is only what its contract says on the chain it lives on; "
								   "nothing is read from a node that serves another chain."),
						 errhint("Point rpc_url at nodes of chain %llu, or correct chain_id.",
								 (unsigned long long) chain_id)));
			}
			break;
		case RPCQ_TOO_FEW:
			if (res->n == 1)
			{
				/* one node: its own error, as it said it */
				DErr		e = res->nodes[0].err;
				char	   *name = pstrdup(res->nodes[0].name);

				rpc_quorum_result_free(res);
				derr_ereport(&e, e.code == DERR_NETWORK ? ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION : 0,
							 psprintf("Check that the JSON-RPC node at %s is reachable and serves the chain "
									  "of consortium %s (server \"%s\", option rpc_url).",
									  name, app, server->servername));
			}
			else
			{
				char	   *failed = node_names(res, 1u << RPCN_FAILED);
				char	   *views = node_views(res);
				int			q = res->quorum,
							n = res->n;

				rpc_quorum_result_free(res);
				ereport(ERROR,
						(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
						 errmsg("fewer than %d of the %d JSON-RPC nodes of server \"%s\" answered",
								q, n, server->servername),
						 errdetail("Node%s %s did not answer; a quorum of %d must agree before consortium %s is "
								   "read.%s", strchr(failed, ' ') ? "s" : "", failed, q, app, views),
						 errhint("Check that the nodes are reachable, or lower rpc_quorum (it must stay a majority).")));
			}
			break;
		case RPCQ_DISAGREE:
			{
				char	   *names = node_names(res, (1u << RPCN_DISSENTS) | (1u << RPCN_AGREES));
				char	   *views = node_views(res);
				unsigned long long height = (unsigned long long) res->height;
				int			q = res->quorum,
							best = res->agreeing;

				rpc_quorum_result_free(res);
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
						 errmsg("the JSON-RPC nodes %s disagree on consortium %s at block %llu",
								names, app, height),
						 errdetail("At most %d of them say the same; server \"%s\" needs %d.%s",
								   best, server->servername, q, views),
						 errhint("A node that answers otherwise than the others misreports the chain, or is not "
								 "synced: find out which, and point rpc_url at nodes you run or trust.")));
			}
			break;
	}
}

/*
 * Read the CVM identity, its policy and the consortium state.  Every
 * network failure is reported with the endpoint and a hint; nothing is
 * cached on failure.
 */
static void
load_facts(ForeignServer *server, const DfdwServerOptions *opts, StatementFacts *f)
{
	DfdwCvmIdentity id;
	DErr		err;
	HttpOptions hopt;
	RpcQuorumResult res;
	const ConsortiumState *st;
	char	   *nodes;

	dfdw_http_options(opts, &hopt);
	ga_set_http_options(&hopt);
	derr_clear(&err);
	dfdw_cvm_identity(server, agent_socket(opts), &id);
	memcpy(f->chain.app_id, id.app_id, DC_ADDR_LEN);
	memcpy(f->chain.compose_hash, id.compose_hash, 32);
	strlcpy(f->chain.instance_id, id.instance_id, sizeof(f->chain.instance_id));

	if (opts->app_contract)
	{
		uint8		want[DC_ADDR_LEN];

		if (!dhex_decode_exact(opts->app_contract, want, DC_ADDR_LEN, "app_contract", &err))
			derr_ereport(&err, ERRCODE_FDW_INVALID_OPTION_NAME, NULL);
		if (memcmp(want, f->chain.app_id, DC_ADDR_LEN) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
					 errmsg("this CVM is app %s, not the consortium contract %s of server \"%s\"",
							dpg_hex(f->chain.app_id, DC_ADDR_LEN, true), opts->app_contract, server->servername),
					 errdetail("In dstack's KMS mode the app id is the address of the app's auth contract; "
							   "the guest agent reports the app id this CVM was booted as."),
					 errhint("Mount this consortium's datasets in a CVM of app %s, or correct app_contract.",
							 opts->app_contract)));
	}

	read_chain(server, opts, f, &id.boot, &hopt, &res);
	st = &res.view->st;
	if (res.agreeing < res.n)
	{
		char	   *others = node_names(&res, (1u << RPCN_DISSENTS) | (1u << RPCN_FAILED));

		ereport(WARNING,
				(errmsg("%d of the %d JSON-RPC nodes of server \"%s\" %s not used: outvoted or not answering",
						res.n - res.agreeing, res.n, server->servername, res.n - res.agreeing == 1 ? "was" : "were"),
				 errdetail("Not used: %s. %d of the %d nodes agree on consortium %s at block %llu, which is what is "
						   "used; a quorum of %d is required.%s", others, res.agreeing, res.n,
						   dpg_hex(f->chain.app_id, DC_ADDR_LEN, true), (unsigned long long) st->block_number, res.quorum,
						   node_views(&res)),
				 errhint("A node that answers otherwise than the others misreports the chain, or is not synced.")));
	}
	nodes = res.n == 1 ? psprintf("The JSON-RPC node at %s", res.nodes[0].name)
		: psprintf("The JSON-RPC nodes %s", node_names(&res, 1u << RPCN_AGREES));
	f->chain.chain_id = st->chain_id;
	f->chain.block_number = st->block_number;
	memcpy(f->chain.block_hash, st->block_hash, 32);
	memcpy(f->pinned_compose_hash, st->compose_hash, 32);
	f->threshold = st->threshold;
	f->approvals = st->approval_count;
	f->chain.threshold = st->threshold;
	f->chain.approvals = st->approval_count;
	f->kms_allowed = res.view->kms_allowed;
	strlcpy(f->kms_reason, res.view->kms_reason ? res.view->kms_reason : "", sizeof(f->kms_reason));
	snprintf(f->kms_contract, sizeof(f->kms_contract), "%s", opts->kms_contract);

	/*
	 * A contract that does not pin this compose-hash is refused by
	 * check_chain() with that reason; its policy() is about another recipe.
	 */
	if (memcmp(st->compose_hash, f->chain.compose_hash, 32) == 0)
		check_policy_agrees(server, nodes, f, &id.policy, st, &res);
	f->chain.epsilon_milli = (uint64) (id.policy.epsilon_total_micro / 1000);
	f->chain.min_group_size = id.policy.min_group_size;
	strlcpy(f->chain.privacy_unit, id.policy.privacy_unit, sizeof(f->chain.privacy_unit));
	f->chain.epsilon_select_micro = id.policy.epsilon_select_micro;
	f->chain.delta = id.policy.delta;
	strlcpy(f->chain.delta_text, id.policy.delta_text, sizeof(f->chain.delta_text));
	f->chain.max_rows_per_unit = id.policy.max_rows_per_unit;
	f->chain.policy_from_compose = true;
	f->revoked = st->revoked;
	memcpy(f->revoked_by, st->revoked_by, DC_ADDR_LEN);
	keep_addrs(&f->approvers, &f->n_approvers, (const uint8 (*)[DC_ADDR_LEN]) st->approvers, st->n_approvers);
	keep_addrs(&f->owners, &f->n_owners, (const uint8 (*)[DC_ADDR_LEN]) st->owners, st->n_owners);
	rpc_quorum_result_free(&res);
}

/* This statement's facts for a server: cached, or read now. */
static StatementFacts *
statement_facts(ForeignServer *server, const DfdwServerOptions *opts)
{
	StatementFacts *f = NULL;

	if (facts_cache == NULL)
		facts_cache = MemoryContextAllocZero(TopMemoryContext,
											 sizeof(StatementFacts) * MAX_CACHED_SERVERS);
	for (int i = 0; i < n_facts; i++)
		if (facts_cache[i].serverid == server->serverid)
			f = &facts_cache[i];
	if (f != NULL && facts_current(f))
		return f;
	if (f == NULL)
	{
		if (n_facts < MAX_CACHED_SERVERS)
			f = &facts_cache[n_facts++];
		else
			f = &facts_cache[0];	/* evict: correctness does not depend on the cache */
	}
	f->serverid = InvalidOid;	/* not valid until fully loaded */
	load_facts(server, opts, f);
	f->serverid = server->serverid;
	f->lxid = MyProc->lxid;
	f->stmt_start = GetCurrentStatementStartTimestamp();
	return f;
}

/* Chain facts of the current statement, if a scan of this server has read them. */
bool
dfdw_statement_chain_facts(Oid serverid, DfdwChainFacts *facts)
{
	for (int i = 0; i < n_facts; i++)
		if (facts_cache[i].serverid == serverid && facts_current(&facts_cache[i]))
		{
			*facts = facts_cache[i].chain;
			return true;
		}
	return false;
}

/* Steps 2-3 of the rule: each failure names what is missing on chain. */
static void
check_chain(const StatementFacts *f, const char *relname, const uint8 owner[DC_ADDR_LEN])
{
	char	   *app = dpg_hex(f->chain.app_id, DC_ADDR_LEN, true);

	if (f->revoked)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("consortium %s has been revoked", app),
				 errdetail("Owner %s revoked the consortium on chain (read at block %llu); revocation is final.",
						   dpg_hex(f->revoked_by, DC_ADDR_LEN, true), (unsigned long long) f->chain.block_number),
				 errhint("No dataset of this consortium can be mounted any more; the owners must deploy "
						 "and approve a new consortium.")));
	if (memcmp(f->pinned_compose_hash, f->chain.compose_hash, 32) != 0)
	{
		char		pin[65],
					mine[65];

		dhex_encode(f->pinned_compose_hash, 32, pin);
		dhex_encode(f->chain.compose_hash, 32, mine);
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("this CVM's compose-hash is not the one consortium %s pinned", app),
				 errdetail("The contract pins compose-hash 0x%s; the guest agent reports 0x%s for this CVM.",
						   pin, mine),
				 errhint("Run the analysis CVM from exactly the app-compose.json the owners approved.")));
	}
	if (f->approvals < f->threshold)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("consortium %s is not approved: %llu of %llu required owner approvals",
						app, (unsigned long long) f->approvals, (unsigned long long) f->threshold),
				 errdetail("Read at block %llu.", (unsigned long long) f->chain.block_number),
				 errhint("%llu more owner(s) must call approve() on the consortium contract.",
						 (unsigned long long) (f->threshold - f->approvals))));
	if (!f->kms_allowed)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("dstack's KMS contract %s does not allow this CVM: %s", f->kms_contract,
						quoted(f->kms_reason)),
				 errdetail("DstackKms.isAppAllowed, asked at block %llu with the boot information dstack's KMS judged "
						   "this CVM by (app %s), answered false. The KMS decides only at boot; this check, made "
						   "for every statement, is what stops a CVM that already holds its keys.",
						   (unsigned long long) f->chain.block_number, app),
				 errhint("The reason says what is missing: the consortium registered with the KMS contract "
						 "(consortium.sh kms-register), an OS image the KMS allows, or the consortium contract's own "
						 "approval.")));
	if (!dc_addr_in((const uint8 (*)[DC_ADDR_LEN]) f->owners, f->n_owners, owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("owner %s of foreign table \"%s\" is not an owner of consortium %s",
						dpg_hex(owner, DC_ADDR_LEN, true), relname, app),
				 errdetail("Only datasets of the consortium's owners can be mounted."),
				 errhint("Check the table's owner option.")));
	if (!dc_addr_in((const uint8 (*)[DC_ADDR_LEN]) f->approvers, f->n_approvers, owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("owner %s of foreign table \"%s\" has not approved consortium %s",
						dpg_hex(owner, DC_ADDR_LEN, true), relname, app),
				 errdetail("The consortium has %llu of %llu required approvals, but not this owner's; "
						   "a dataset is mounted only with its own owner's approval.",
						   (unsigned long long) f->approvals, (unsigned long long) f->threshold),
				 errhint("The owner must call approve() on the consortium contract.")));
}

/* Step 4: the dataset's recipe and recipient key are this CVM's. */
static void
check_recipe(const DsealManifest *m, const StatementFacts *f, const uint8 kms_root[DC_PUBKEY_LEN],
			 const char *relname)
{
	const char *what = NULL;

	if (memcmp(m->recipe.app_id, f->chain.app_id, DC_ADDR_LEN) != 0)
		what = "app id";
	else if (memcmp(m->recipe.compose_hash, f->chain.compose_hash, 32) != 0)
		what = "compose-hash";
	else if (memcmp(m->recipe.kms_root_pubkey, kms_root, DC_PUBKEY_LEN) != 0)
		what = "KMS root public key";
	if (what)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("sealed dataset of foreign table \"%s\" was sealed for another %s", relname, what),
				 errdetail("The dataset's data key is bound to the recipe (KMS root, app id %s, compose-hash) "
						   "it was sealed for; this CVM runs app %s and cannot unwrap it.",
						   dpg_hex(m->recipe.app_id, DC_ADDR_LEN, true), dpg_hex(f->chain.app_id, DC_ADDR_LEN, true)),
				 errhint("Ask the owner to seal the table again with this consortium's recipe.")));
}

/* The rule; see the file comment. */
void
dfdw_mount(Oid serverid, Oid relid, DsealReader *reader, DfdwMount *mount)
{
	ForeignServer *server = GetForeignServer(serverid);
	DfdwServerOptions sopts;
	DfdwTableOptions topts;
	const DsealManifest *m = dseal_reader_manifest(reader);
	StatementFacts *f;
	uint8		owner[DC_ADDR_LEN];
	uint8		kms_root[DC_PUBKEY_LEN];
	char		path[DSEAL_RECIPIENT_PATH_LEN];
	const char *relname = get_rel_name(relid);
	DsealRecipe cvm;
	GaKey		key;
	DErr		err;

	dfdw_server_options(server, &sopts);
	dfdw_table_options(relid, &topts);
	derr_clear(&err);
	if (!dhex_decode_exact(topts.owner, owner, DC_ADDR_LEN, "owner", &err) ||
		!dhex_decode_exact(sopts.kms_root_pubkey, kms_root, DC_PUBKEY_LEN, "kms_root_pubkey", &err))
		derr_ereport(&err, ERRCODE_FDW_INVALID_OPTION_NAME, NULL);

	/* the manifest's signature was verified on open: it is the signer's */
	if (memcmp(m->owner_id, owner, DC_ADDR_LEN) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("sealed dataset of foreign table \"%s\" is signed by %s, not by its owner %s",
						relname, dpg_hex(m->owner_id, DC_ADDR_LEN, true), dpg_hex(owner, DC_ADDR_LEN, true)),
				 errdetail("The manifest carries a valid signature of %s; a table's owner option must name "
						   "the owner who sealed the file.", dpg_hex(m->owner_id, DC_ADDR_LEN, true)),
				 errhint("Check the table's owner option and that the file is the one the owner published.")));

	f = statement_facts(server, &sopts);
	check_chain(f, relname, owner);
	check_recipe(m, f, kms_root, relname);

	/* step 5: the owner's recipient key, from the guest agent only */
	dseal_recipient_path(owner, path);
	memset(&key, 0, sizeof(key));
	if (!dfdw_agent_key(agent_socket(&sopts), path, path, kms_root, f->chain.app_id, &key, &err))
	{
		raise_if_cancelled();
		derr_ereport(&err, err.code == DERR_NETWORK ? ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION
					 : ERRCODE_INSUFFICIENT_PRIVILEGE,
					 "The KMS releases keys only to a CVM whose consortium allows it; check the "
					 "consortium's state with the consortium.sh state command, and the guest agent's log.");
	}
	if (memcmp(key.pub, m->recipient_pub, DC_PUBKEY_LEN) != 0)
	{
		ga_key_scrub(&key);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("sealed dataset of foreign table \"%s\" was sealed for another recipient key", relname),
				 errdetail("This CVM's key at \"%s\" is not the recipient key in the manifest.", path),
				 errhint("Ask the owner to seal again with the recipient key this CVM publishes.")));
	}
	memcpy(cvm.kms_root_pubkey, kms_root, DC_PUBKEY_LEN);
	memcpy(cvm.app_id, f->chain.app_id, DC_ADDR_LEN);
	memcpy(cvm.compose_hash, f->chain.compose_hash, 32);
	if (!dseal_unwrap_key(&cvm, owner, key.key, m->dataset_id, m->ephemeral_pub, m->wrapped,
						  mount->data_key, &err))
	{
		ga_key_scrub(&key);
		derr_ereport(&err, 0, "Ask the owner to seal the table again with this consortium's recipe.");
	}
	ga_key_scrub(&key);
	mount->block_number = f->chain.block_number;
	mount->approvals = f->approvals;
	mount->threshold = f->threshold;
}

void
dfdw_mount_scrub(DfdwMount *mount)
{
	explicit_bzero(mount->data_key, sizeof(mount->data_key));
}

/* The consortium's state for the current statement, for dstack_consortia(). */
void
dfdw_consortium_status(Oid serverid, DfdwConsortiumStatus *st)
{
	ForeignServer *server = GetForeignServer(serverid);
	DfdwServerOptions sopts;
	StatementFacts *f;

	dfdw_server_options(server, &sopts);
	f = statement_facts(server, &sopts);
	memset(st, 0, sizeof(*st));
	st->facts = f->chain;
	memcpy(st->pinned_compose_hash, f->pinned_compose_hash, 32);
	st->kms_allowed = f->kms_allowed;
	st->revoked = f->revoked;
	st->n_approvers = f->n_approvers;
	st->approvers = palloc(sizeof(*st->approvers) * Max(f->n_approvers, 1));
	if (f->n_approvers > 0)
		memcpy(st->approvers, f->approvers, sizeof(*st->approvers) * f->n_approvers);
	st->n_owners = f->n_owners;
}
