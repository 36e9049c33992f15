/*
 * rpc_consortium.c: the reads of the consortium contract (and of the KMS's
 * verdict on it) over the JSON-RPC transport of rpc.c (see rpc.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "hex.h"
#include "rpc_int.h"

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

/* A view of the contract, the failure blamed on it; *ret is malloc()ed. */
static bool
rpc_view(RpcClient *rpc, const uint8_t app[ABI_ADDR_LEN], const char *sig,
		 const uint8_t (*words)[ABI_WORD], size_t n, uint64_t number,
		 uint8_t **ret, size_t *ret_len, DErr *err)
{
	if (rpc_view_call(rpc, app, sig, words, n, number, ret, ret_len, err))
		return true;
	rpc_blame(err, sig, app);
	return false;
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

/*
 * policy() returns (uint64 epsilonMilli, uint32 minGroupSize, string
 * outputType, string privacyUnit) as four values (not one struct), so the
 * head is four words and the strings' offsets are relative to its start.
 */
static bool
decode_policy(const uint8_t *r, size_t rl, ConsortiumPolicy *pol, DErr *err)
{
	uint64_t	mgs = 0;

	if (rl % ABI_WORD != 0 || rl < 6 * ABI_WORD)
	{
		derr_set(err, DERR_FORMAT, "malformed abi return data");
		derr_detail(err, "The return data is %zu bytes; expected whole words, at least 192.", rl);
		return false;
	}
	if (!abi_get_uint(r, rl, 0, 64, &pol->epsilon_milli, err) ||
		!abi_get_uint(r, rl, 1, 32, &mgs, err) ||
		!abi_get_string(r, rl, 2, &pol->output_type, err) ||
		!abi_get_string(r, rl, 3, &pol->privacy_unit, err))
		return false;
	pol->min_group_size = (uint32_t) mgs;
	return true;
}

/* The views of one check, in the order of the batch (after eth_chainId). */
enum
{
	CV_COMPOSE_HASH, CV_THRESHOLD, CV_APPROVAL_COUNT, CV_REVOKED, CV_REVOKED_BY, CV_REVOKE_REASON,
	CV_IS_APPROVED, CV_APPROVERS, CV_OWNERS, CV_POLICY, CV_N
};
static const char *const cv_sig[CV_N] = {
	"composeHash()", "threshold()", "approvalCount()", "revoked()", "revokedBy()", "revokeReason()",
	"isApproved()", "approvers()", "owners()", "policy()",
};

static bool
decode_view(int v, const uint8_t *r, size_t rl, ConsortiumState *st, DErr *err)
{
	switch (v)
	{
		case CV_COMPOSE_HASH:
			return abi_decode_bytes32(r, rl, st->compose_hash, err);
		case CV_THRESHOLD:
			return abi_decode_uint64(r, rl, &st->threshold, err);
		case CV_APPROVAL_COUNT:
			return abi_decode_uint64(r, rl, &st->approval_count, err);
		case CV_REVOKED:
			return abi_decode_bool(r, rl, &st->revoked, err);
		case CV_REVOKED_BY:
			return abi_decode_address(r, rl, st->revoked_by, err);
		case CV_REVOKE_REASON:
			return abi_decode_string(r, rl, &st->revoke_reason, err);
		case CV_IS_APPROVED:
			return abi_decode_bool(r, rl, &st->is_approved, err);
		case CV_APPROVERS:
			return abi_decode_address_array(r, rl, &st->approvers, &st->n_approvers, err);
		case CV_OWNERS:
			return abi_decode_address_array(r, rl, &st->owners, &st->n_owners, err);
		case CV_POLICY:
			return decode_policy(r, rl, &st->policy, err);
	}
	return derr_set(err, DERR_ARG, "unknown consortium view %d", v);
}

/* One eth_call answer of the batch: bytes, then decoded, blamed on its view. */
static bool
take_view(RpcClient *rpc, json_t *res, const char *sig, const uint8_t to[ABI_ADDR_LEN], int v,
		  ConsortiumState *st, bool *allowed, char **reason, DErr *err)
{
	uint8_t    *r = NULL;
	size_t		rl = 0;
	bool		ok = rpc_eth_call_result(rpc, res, &r, &rl, err);

	if (ok)
		ok = v >= 0 ? decode_view(v, r, rl, st, err) : abi_decode_bool_string(r, rl, allowed, reason, err);
	free(r);
	if (!ok)
		rpc_blame(err, sig, to);
	return ok;
}

/*
 * Everything a check reads, in two requests.  The block is fixed first
 * (latest, or the one asked for); then one batch asks for the chain id, every
 * view and, with kms, the KMS's isAppAllowed verdict, all pinned to that
 * block's HASH (EIP-1898, with requireCanonical), so that no read can come
 * from another block, even across a reorganisation: a node whose chain no
 * longer holds that block refuses the reads instead.
 */
bool
rpc_consortium_state_kms(RpcClient *rpc, const uint8_t app[ABI_ADDR_LEN], uint64_t number,
						 const uint8_t *kms, const AbiAppBootInfo *boot, ConsortiumState *state,
						 bool *kms_allowed, char **kms_reason, DErr *err)
{
	RpcCall		calls[CV_N + 2];
	int			n = 1 + CV_N + (kms != NULL);
	RpcBlock	blk;
	char		pin[128];
	char		hash_hex[65];
	bool		ok = false;

	memset(state, 0, sizeof(*state));
	memset(calls, 0, sizeof(calls));
	if (kms_allowed != NULL)
		*kms_allowed = false;
	if (kms_reason != NULL)
		*kms_reason = NULL;
	if (kms != NULL && (boot == NULL || kms_allowed == NULL || kms_reason == NULL))
		return derr_set(err, DERR_ARG, "the KMS question needs the CVM's boot info");
	rpc->deadline_ms = rpc_now_ms() + rpc->opt.timeout_ms;
	if (!rpc_get_block(rpc, number, &blk, err))
		goto done;
	dhex_encode(blk.hash, 32, hash_hex);
	snprintf(pin, sizeof(pin), "{\"blockHash\":\"0x%s\",\"requireCanonical\":true}", hash_hex);

	calls[0].method = "eth_chainId";
	for (int i = 1; i < n; i++)
	{
		uint8_t    *cd = NULL;
		size_t		cdlen = 0;
		bool		built;

		calls[i].method = "eth_call";
		if (i <= CV_N)
			built = abi_encode_static_call(cv_sig[i - 1], NULL, 0, &cd, &cdlen, err);
		else
			built = abi_encode_is_app_allowed(boot, &cd, &cdlen, err);
		if (built && (calls[i].params = rpc_eth_call_params(i <= CV_N ? app : kms, cd, cdlen, pin)) == NULL)
			built = derr_set(err, DERR_NOMEM, "out of memory building eth_call");
		free(cd);
		if (!built)
			goto done;
	}
	if (!rpc_batch(rpc, calls, n, err))
		goto done;

	memcpy(state->app_id, app, ABI_ADDR_LEN);
	state->block_number = blk.number;
	memcpy(state->block_hash, blk.hash, 32);
	state->block_timestamp = blk.timestamp;
	ok = rpc_parse_quantity(calls[0].result, "eth_chainId", &state->chain_id, err);
	for (int v = 0; ok && v < CV_N; v++)
		ok = take_view(rpc, calls[1 + v].result, cv_sig[v], app, v, state, NULL, NULL, err);
	if (ok && kms != NULL)
		ok = take_view(rpc, calls[1 + CV_N].result, "isAppAllowed()", kms, -1, NULL, kms_allowed,
					   kms_reason, err);

done:
	rpc->deadline_ms = 0;
	for (int i = 0; i < n; i++)
	{
		json_decref(calls[i].result);
		free(calls[i].params);
	}
	if (!ok)
	{
		rpc_consortium_state_free(state);
		if (kms_reason != NULL)
		{
			free(*kms_reason);
			*kms_reason = NULL;
		}
		if (kms_allowed != NULL)
			*kms_allowed = false;
	}
	return ok;
}

bool
rpc_consortium_state(RpcClient *rpc, const uint8_t app[ABI_ADDR_LEN], uint64_t number,
					 ConsortiumState *state, DErr *err)
{
	return rpc_consortium_state_kms(rpc, app, number, NULL, NULL, state, NULL, NULL, err);
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
