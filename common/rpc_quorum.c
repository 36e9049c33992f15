/*
 * rpc_quorum.c: the consortium read through several JSON-RPC nodes, and the
 * quorum that must agree on it (see rpc.h).
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dthread.h"
#include "rpc.h"

bool
rpc_parse_urls(const char *csv, RpcNodeList *list, DErr *err)
{
	const char *p = csv;

	memset(list, 0, sizeof(*list));
	if (csv == NULL)
		return derr_set(err, DERR_ARG, "no json-rpc url");
	for (;;)
	{
		const char *end = strchr(p, ',');
		size_t		len = end ? (size_t) (end - p) : strlen(p);
		char	   *u;

		while (len > 0 && isspace((unsigned char) *p))
			p++, len--;
		while (len > 0 && isspace((unsigned char) p[len - 1]))
			len--;
		if (len == 0)
		{
			rpc_node_list_free(list);
			derr_set(err, DERR_ARG, "empty json-rpc url in the list");
			derr_detail(err, "Separate the nodes' URLs with single commas.");
			return false;
		}
		if (list->n == RPC_MAX_NODES)
		{
			rpc_node_list_free(list);
			derr_set(err, DERR_ARG, "too many json-rpc urls");
			derr_detail(err, "At most %d nodes can be listed.", RPC_MAX_NODES);
			return false;
		}
		u = strndup(p, len);
		if (u == NULL)
		{
			rpc_node_list_free(list);
			return derr_set(err, DERR_NOMEM, "out of memory parsing json-rpc urls");
		}
		list->urls[list->n++] = u;
		if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0)
		{
			char		name[160];

			rpc_url_name(u, name, sizeof(name));
			rpc_node_list_free(list);
			derr_set(err, DERR_ARG, "invalid json-rpc url");
			derr_detail(err, "Every node URL must start with http:// or https:// (entry %s).", name);
			return false;
		}
		for (int i = 0; i < list->n - 1; i++)
			if (strcmp(list->urls[i], u) == 0)
			{
				char		name[160];

				rpc_url_name(u, name, sizeof(name));
				rpc_node_list_free(list);
				derr_set(err, DERR_ARG, "json-rpc url listed twice");
				derr_detail(err, "Node %s appears twice: one node would count as two in the quorum.", name);
				return false;
			}
		if (end == NULL)
			break;
		p = end + 1;
	}
	return true;
}

void
rpc_node_list_free(RpcNodeList *list)
{
	if (list == NULL)
		return;
	for (int i = 0; i < list->n; i++)
		free(list->urls[i]);
	memset(list, 0, sizeof(*list));
}

bool
rpc_quorum_effective(int n, int quorum, int *effective, DErr *err)
{
	if (quorum == 0)
		quorum = n;
	if (n < 1 || quorum < 1 || quorum > n || 2 * quorum <= n)
	{
		derr_set(err, DERR_ARG, "invalid quorum %d of %d json-rpc nodes", quorum, n);
		derr_detail(err, "The quorum must be more than half of the nodes (so two groups can never both reach it) "
					"and at most their number; 0 means all of them.");
		return false;
	}
	*effective = quorum;
	return true;
}

static int
cmp_desc(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *) a,
				y = *(const uint64_t *) b;

	return x < y ? 1 : x > y ? -1 : 0;
}

uint64_t
rpc_quorum_height(const uint64_t *heads, int n, int quorum, int confirmations)
{
	uint64_t	h[RPC_MAX_NODES];
	uint64_t	top;

	if (n < 1 || n > RPC_MAX_NODES || quorum < 1)
		return 0;
	if (quorum > n)
		quorum = n;
	memcpy(h, heads, sizeof(uint64_t) * (size_t) n);
	qsort(h, (size_t) n, sizeof(uint64_t), cmp_desc);
	top = h[quorum - 1];
	return top > (uint64_t) confirmations ? top - (uint64_t) confirmations : 0;
}

static bool
str_eq(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

bool
rpc_node_views_equal(const RpcNodeView *x, const RpcNodeView *y)
{
	const ConsortiumState *a = &x->st,
			   *b = &y->st;

	return a->chain_id == b->chain_id && a->block_number == b->block_number &&
		memcmp(a->block_hash, b->block_hash, 32) == 0 && a->block_timestamp == b->block_timestamp &&
		memcmp(a->app_id, b->app_id, ABI_ADDR_LEN) == 0 && memcmp(a->compose_hash, b->compose_hash, 32) == 0 &&
		a->threshold == b->threshold && a->approval_count == b->approval_count && a->revoked == b->revoked &&
		memcmp(a->revoked_by, b->revoked_by, ABI_ADDR_LEN) == 0 && str_eq(a->revoke_reason, b->revoke_reason) &&
		a->is_approved == b->is_approved &&
		a->n_approvers == b->n_approvers &&
		(a->n_approvers == 0 || memcmp(a->approvers, b->approvers, ABI_ADDR_LEN * a->n_approvers) == 0) &&
		a->n_owners == b->n_owners &&
		(a->n_owners == 0 || memcmp(a->owners, b->owners, ABI_ADDR_LEN * a->n_owners) == 0) &&
		a->policy.epsilon_milli == b->policy.epsilon_milli &&
		a->policy.min_group_size == b->policy.min_group_size &&
		str_eq(a->policy.output_type, b->policy.output_type) &&
		str_eq(a->policy.privacy_unit, b->policy.privacy_unit) &&
		x->kms_allowed == y->kms_allowed && str_eq(x->kms_reason, y->kms_reason);
}

static bool
cancelled(const HttpOptions *opt)
{
	return opt != NULL && opt->should_abort != NULL && opt->should_abort(opt->abort_arg);
}

static void
mark_cancelled(RpcNodeResult *r)
{
	r->status = RPCN_FAILED;
	derr_set(&r->err, DERR_NETWORK, "request to json-rpc node %s cancelled", r->name);
	derr_detail(&r->err, "The caller abandoned the read before this node was asked.");
}

/*
 * One node's part of the read, run on a thread of its own when there are
 * several nodes (so a check waits for the slowest node, not for the sum of
 * them): phase 1 asks which chain and which head, phase 2 reads the state at
 * the height all of them are then asked for.  Only library code runs there,
 * with every signal blocked (dc_thread_start); the caller's cancel check
 * only reads flags.
 */
typedef struct NodeJob
{
	int			phase;
	const char *url;
	const HttpOptions *opt;
	RpcClient  *cli;
	RpcNodeResult *r;
	uint64_t	chain_id;		/* the chain the caller wants */
	const uint8_t *app;
	const uint8_t *kms;
	const AbiAppBootInfo *boot;
	uint64_t	height;
} NodeJob;

static void
node_phase1(NodeJob *j)
{
	RpcNodeResult *r = j->r;

	if (cancelled(j->opt))
	{
		mark_cancelled(r);
		return;
	}
	j->cli = rpc_new(j->url, j->opt, &r->err);
	if (j->cli == NULL || !rpc_chain_and_head(j->cli, &r->chain_id, &r->head, &r->err))
		return;
	r->status = r->chain_id != j->chain_id ? RPCN_WRONG_CHAIN : RPCN_DISSENTS;	/* until it agrees */
}

static void
node_phase2(NodeJob *j)
{
	RpcNodeResult *r = j->r;

	if (cancelled(j->opt))
	{
		mark_cancelled(r);
		return;
	}
	if (!rpc_consortium_state_kms(j->cli, j->app, j->height, j->kms, j->boot, &r->view.st,
								  &r->view.kms_allowed, &r->view.kms_reason, &r->err))
	{
		r->status = RPCN_FAILED;
		return;
	}
	if (r->view.st.chain_id != j->chain_id)
	{
		/* it said this chain when asked first: a node that changes its answer is not used */
		derr_set(&r->err, DERR_REMOTE, "json-rpc node %s answered chain id %" PRIu64 ", then %" PRIu64,
				 r->name, r->chain_id, r->view.st.chain_id);
		derr_detail(&r->err, "A node serves one chain; its answers are not used.");
		rpc_consortium_state_free(&r->view.st);
		free(r->view.kms_reason);
		r->view.kms_reason = NULL;
		r->status = RPCN_FAILED;
		return;
	}
	if (j->kms == NULL)
		r->view.kms_allowed = true;
	r->group = -2;				/* answered; grouped after every node is in */
}

static void *
node_main(void *arg)
{
	NodeJob    *j = arg;

	if (j->phase == 1)
		node_phase1(j);
	else
		node_phase2(j);
	return NULL;
}

/* Run the phase for every node whose status is in `which`, in parallel when there are several. */
static void
run_phase(NodeJob *jobs, int n, int phase, unsigned which)
{
	pthread_t	t[RPC_MAX_NODES];
	bool		started[RPC_MAX_NODES] = {0};
	int			todo = 0;

	for (int i = 0; i < n; i++)
		todo += (which >> jobs[i].r->status) & 1u;
	for (int i = 0; i < n; i++)
	{
		if (!((which >> jobs[i].r->status) & 1u))
			continue;
		jobs[i].phase = phase;
		if (todo > 1 && dc_thread_start(&t[i], node_main, &jobs[i]) == 0)
			started[i] = true;
		else
			node_main(&jobs[i]);	/* one node, or no thread to be had: here */
	}
	for (int i = 0; i < n; i++)
		if (started[i])
			pthread_join(t[i], NULL);
}

bool
rpc_quorum_read(const RpcNodeList *list, int quorum, uint64_t chain_id, int confirmations,
				const uint8_t app[ABI_ADDR_LEN], const uint8_t *kms, const AbiAppBootInfo *boot,
				const HttpOptions *opt, RpcQuorumResult *res, DErr *err)
{
	NodeJob		jobs[RPC_MAX_NODES];
	uint64_t	heads[RPC_MAX_NODES];
	int			nheads = 0;
	int			answered = 0;
	int			ngroups = 0;
	int			best = -1;
	int			best_size = 0;
	bool		wrong_chain = false;

	memset(res, 0, sizeof(*res));
	memset(jobs, 0, sizeof(jobs));
	if (list == NULL || list->n < 1 || list->n > RPC_MAX_NODES)
		return derr_set(err, DERR_ARG, "no json-rpc nodes to read from");
	if (!rpc_quorum_effective(list->n, quorum, &res->quorum, err))
		return false;
	if (kms != NULL && boot == NULL)
		return derr_set(err, DERR_ARG, "the KMS question needs the CVM's boot info");
	res->n = list->n;
	for (int i = 0; i < list->n; i++)
	{
		RpcNodeResult *r = &res->nodes[i];

		rpc_url_name(list->urls[i], r->name, sizeof(r->name));
		r->group = -1;
		r->status = RPCN_FAILED;
		jobs[i].url = list->urls[i];
		jobs[i].opt = opt;
		jobs[i].r = r;
		jobs[i].chain_id = chain_id;
		jobs[i].app = app;
		jobs[i].kms = kms;
		jobs[i].boot = boot;
	}

	/* every node: which chain, which head */
	run_phase(jobs, list->n, 1, 1u << RPCN_FAILED);
	for (int i = 0; i < list->n; i++)
	{
		if (res->nodes[i].status == RPCN_WRONG_CHAIN)
			wrong_chain = true;
		else if (res->nodes[i].status == RPCN_DISSENTS)
			heads[nheads++] = res->nodes[i].head;
	}
	if (wrong_chain)
	{
		res->outcome = RPCQ_WRONG_CHAIN;
		goto done;
	}
	if (nheads < res->quorum)
	{
		res->outcome = RPCQ_TOO_FEW;
		goto done;
	}
	res->height = rpc_quorum_height(heads, nheads, res->quorum, confirmations);

	/* every node that answered: the whole state at that height */
	for (int i = 0; i < list->n; i++)
		jobs[i].height = res->height;
	run_phase(jobs, list->n, 2, 1u << RPCN_DISSENTS);
	for (int i = 0; i < list->n; i++)
	{
		RpcNodeResult *r = &res->nodes[i];

		if (r->status != RPCN_DISSENTS || r->group != -2)
			continue;
		r->group = -1;
		answered++;
		for (int j = 0; j < i && r->group < 0; j++)
			if (res->nodes[j].group >= 0 && rpc_node_views_equal(&res->nodes[j].view, &r->view))
				r->group = res->nodes[j].group;
		if (r->group < 0)
			r->group = ngroups++;
	}
	for (int g = 0; g < ngroups; g++)
	{
		int			size = 0;

		for (int i = 0; i < list->n; i++)
			size += res->nodes[i].group == g;
		if (size > best_size)
		{
			best_size = size;
			best = g;
		}
	}
	res->agreeing = best_size;
	if (best_size >= res->quorum)
	{
		res->outcome = RPCQ_AGREED;
		for (int i = 0; i < list->n; i++)
			if (res->nodes[i].group == best)
			{
				res->nodes[i].status = RPCN_AGREES;
				if (res->view == NULL)
					res->view = &res->nodes[i].view;
			}
	}
	else
		res->outcome = answered < res->quorum ? RPCQ_TOO_FEW : RPCQ_DISAGREE;

done:
	for (int i = 0; i < list->n; i++)
		rpc_free(jobs[i].cli);
	return true;
}

void
rpc_quorum_result_free(RpcQuorumResult *res)
{
	if (res == NULL)
		return;
	for (int i = 0; i < res->n; i++)
	{
		rpc_consortium_state_free(&res->nodes[i].view.st);
		free(res->nodes[i].view.kms_reason);
	}
	memset(res, 0, sizeof(*res));
}
