/*
 * test_rpc_quorum.c: the pieces of the several-node chain read (rpc_quorum.c)
 * that decide, without a network: the rpc_url list, the quorum (a majority,
 * 0 = all), the height a quorum of nodes has, and when two nodes' views are
 * the same.  tools/chaintest and the fdw_chain suite drive the read itself
 * against real nodes.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc.h"
#include "unit.h"

static void
test_urls(void)
{
	RpcNodeList l;
	DErr		err = {0};
	char		name[160];

	CHECK(rpc_parse_urls("http://a:1", &l, &err) && l.n == 1 && strcmp(l.urls[0], "http://a:1") == 0, "one url");
	rpc_node_list_free(&l);
	CHECK(rpc_parse_urls(" http://a:1 , https://b/x?k=1,http://c ", &l, &err) && l.n == 3 &&
		  strcmp(l.urls[1], "https://b/x?k=1") == 0 && strcmp(l.urls[2], "http://c") == 0,
		  "three urls, spaces around commas trimmed");
	rpc_node_list_free(&l);
	derr_clear(&err);
	CHECK(!rpc_parse_urls("http://a,,http://b", &l, &err) && err.code == DERR_ARG && l.n == 0, "an empty entry");
	derr_clear(&err);
	CHECK(!rpc_parse_urls("http://a,ftp://b", &l, &err) && err.code == DERR_ARG && strstr(err.detail, "ftp://b"),
		  "a non-http entry, named");
	derr_clear(&err);
	CHECK(!rpc_parse_urls("http://a/k1,http://a/k1", &l, &err) && err.code == DERR_ARG && strstr(err.msg, "twice") &&
		  strstr(err.detail, "k1") == NULL, "a duplicate, named without its path");
	derr_clear(&err);
	CHECK(!rpc_parse_urls("http://1,http://2,http://3,http://4,http://5,http://6,http://7,http://8,http://9", &l, &err) &&
		  err.code == DERR_ARG, "more than 8 nodes");
	derr_clear(&err);
	CHECK(!rpc_parse_urls("", &l, &err) && err.code == DERR_ARG, "an empty list");
	rpc_url_name("https://user:secret@node.example:8545/v3/APIKEY", name, sizeof(name));
	CHECK(strcmp(name, "https://node.example:8545/...") == 0, "a node's name hides credentials and path");
}

static void
test_quorum(void)
{
	int			q = -1;
	DErr		err = {0};

	CHECK(rpc_quorum_effective(3, 0, &q, &err) && q == 3, "0 of 3 is all 3");
	CHECK(rpc_quorum_effective(3, 2, &q, &err) && q == 2, "2 of 3 is a majority");
	CHECK(rpc_quorum_effective(1, 0, &q, &err) && q == 1, "one node: 1");
	CHECK(!rpc_quorum_effective(4, 2, &q, &err) && err.code == DERR_ARG, "2 of 4 is no majority");
	CHECK(!rpc_quorum_effective(3, 4, &q, &err), "4 of 3 is impossible");
	CHECK(rpc_quorum_effective(4, 3, &q, &err) && q == 3, "3 of 4 is a majority");
}

static void
test_height(void)
{
	uint64_t	h[] = {100, 98, 103};

	CHECK(rpc_quorum_height(h, 3, 3, 0) == 98, "all of 3: the lowest head");
	CHECK(rpc_quorum_height(h, 3, 2, 0) == 100, "2 of 3: the second highest head");
	CHECK(rpc_quorum_height(h, 3, 2, 5) == 95, "minus confirmations");
	CHECK(rpc_quorum_height(h, 3, 3, 200) == 0, "floored at block 0");
	CHECK(h[0] == 100 && h[1] == 98 && h[2] == 103, "the heads are not reordered");
}

static void
fill(RpcNodeView *v, uint64_t block, uint8_t hash0, uint64_t approvals, bool revoked, bool kms)
{
	static uint8_t owners[2][20] = {{1}, {2}};

	memset(v, 0, sizeof(*v));
	v->st.chain_id = 31337;
	v->st.block_number = block;
	v->st.block_hash[0] = hash0;
	v->st.approval_count = approvals;
	v->st.threshold = 2;
	v->st.revoked = revoked;
	v->st.n_owners = 2;
	v->st.owners = owners;
	v->st.policy.output_type = "dp-aggregate";
	v->st.policy.privacy_unit = "patient_id";
	v->kms_allowed = kms;
	v->kms_reason = kms ? "" : "revoked";
}

static void
test_views(void)
{
	RpcNodeView a,
				b;
	static uint8_t other[2][20] = {{1}, {3}};

	fill(&a, 10, 1, 2, false, true);
	fill(&b, 10, 1, 2, false, true);
	CHECK(rpc_node_views_equal(&a, &b), "the same view");
	b.st.block_hash[0] = 2;
	CHECK(!rpc_node_views_equal(&a, &b), "another block hash at the same height");
	fill(&b, 10, 1, 2, true, true);
	CHECK(!rpc_node_views_equal(&a, &b), "revoked on one node only");
	fill(&b, 10, 1, 2, false, false);
	CHECK(!rpc_node_views_equal(&a, &b), "the KMS's verdict differs");
	fill(&b, 10, 1, 3, false, true);
	CHECK(!rpc_node_views_equal(&a, &b), "another approval count");
	fill(&b, 10, 1, 2, false, true);
	b.st.owners = other;
	CHECK(!rpc_node_views_equal(&a, &b), "another owner list");
	fill(&b, 10, 1, 2, false, true);
	b.st.policy.privacy_unit = "person_id";
	CHECK(!rpc_node_views_equal(&a, &b), "another policy");
	b.st.policy.privacy_unit = NULL;
	a.st.policy.privacy_unit = "";
	CHECK(rpc_node_views_equal(&a, &b), "an absent string equals an empty one");
}

static void
test_read_args(void)
{
	RpcNodeList l = {0};
	RpcQuorumResult res;
	DErr		err = {0};
	uint8_t		app[20] = {0};

	CHECK(!rpc_quorum_read(&l, 0, 1, 0, app, NULL, NULL, NULL, &res, &err) && err.code == DERR_ARG,
		  "no nodes: DERR_ARG");
	rpc_parse_urls("http://127.0.0.1:1,http://127.0.0.1:2", &l, &err);
	derr_clear(&err);
	CHECK(!rpc_quorum_read(&l, 1, 1, 0, app, NULL, NULL, NULL, &res, &err) && err.code == DERR_ARG,
		  "1 of 2 is no quorum: DERR_ARG");
	derr_clear(&err);
	CHECK(!rpc_quorum_read(&l, 0, 1, 0, app, app, NULL, NULL, &res, &err) && err.code == DERR_ARG,
		  "the KMS question without boot info: DERR_ARG");
	{
		HttpOptions o;

		http_options_default(&o);
		o.timeout_ms = 300;
		o.retries = 0;
		derr_clear(&err);
		CHECK(rpc_quorum_read(&l, 0, 1, 0, app, NULL, NULL, &o, &res, &err) && res.outcome == RPCQ_TOO_FEW &&
			  res.nodes[0].status == RPCN_FAILED && res.nodes[1].status == RPCN_FAILED &&
			  res.nodes[0].err.code == DERR_NETWORK && strcmp(res.nodes[1].name, "http://127.0.0.1:2") == 0,
			  "two nodes down: too few answered, each with its error and name");
		rpc_quorum_result_free(&res);
	}
	rpc_node_list_free(&l);
}

int
main(void)
{
	test_urls();
	test_quorum();
	test_height();
	test_views();
	test_read_args();
	UNIT_DONE();
}
