/*
 * fuzz_rpc.c: the JSON-RPC client (rpc.c) against a hostile node.  The
 * node's answers are the input (the scripted transport of fuzz.h: answers
 * separated by NUL bytes); byte 0 picks the call.  The consortium read
 * takes two answers: the block, then one batch (chain id and ten views).
 */
#include <stdlib.h>
#include <string.h>

#include "../rpc.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t app[ABI_ADDR_LEN] = {0x5f, 0xbd, 0xb2, 0x31, 0x56, 0x78, 0xaf, 0xec, 0xb3, 0x67,
											  0xf0, 0x32, 0xd9, 0x3f, 0x64, 0x2f, 0x64, 0x18, 0x0a, 0xa3};
	DErr		err = {0};
	RpcClient  *rpc;
	uint64_t	u;
	bool		b;
	RpcBlock	blk;
	ConsortiumState st;

	if (size < 1)
		return 0;
	fuzz_http_script(data + 1, size - 1);
	rpc = rpc_new("http://fuzz.invalid:8545/secret-key", NULL, &err);
	if (rpc == NULL)
		abort();
	switch (data[0] % 8)
	{
		case 0:
			rpc_chain_id(rpc, &u, &err);
			break;
		case 1:
			if (data[0] & 0x40)
			{
				uint64_t	head;

				rpc_chain_and_head(rpc, &u, &head, &err);	/* a batch of two */
			}
			else
				rpc_block_number(rpc, &u, &err);
			break;
		case 2:
			rpc_get_block(rpc, data[0] & 0x80 ? 16 : RPC_LATEST, &blk, &err);
			break;
		case 3:
			{
				uint8_t    *ret = NULL;
				size_t		len = 0;

				if (rpc_eth_call(rpc, app, (const uint8_t *) "\x01\x02\x03\x04", 4, 7, &ret, &len, &err))
					free(ret);
				break;
			}
		case 4:
		case 5:
			if (data[0] & 0x40)
			{
				AbiAppBootInfo boot = {0};
				bool		allowed;
				char	   *reason = NULL;

				memcpy(boot.app_id, app, ABI_ADDR_LEN);
				boot.tcb_status = "UpToDate";
				/* the read with the KMS's verdict in the same batch */
				if (rpc_consortium_state_kms(rpc, app, 7, app, &boot, &st, &allowed, &reason, &err))
				{
					free(reason);
					rpc_consortium_state_free(&st);
				}
			}
			else if (rpc_consortium_state(rpc, app, data[0] % 8 == 4 ? RPC_LATEST : 7, &st, &err))
			{
				/* what a mount reads afterwards */
				consortium_state_is_approver(&st, app);
				consortium_state_is_owner(&st, app);
				rpc_consortium_state_free(&st);
			}
			break;
		case 6:
			rpc_has_approved(rpc, app, app, 7, &b, &err);
			break;
		case 7:
			{
				AbiAppBootInfo boot = {0};
				const char *adv[] = {"INTEL-SA-00001"};
				char	   *reason = NULL;

				memcpy(boot.app_id, app, ABI_ADDR_LEN);
				boot.tcb_status = "UpToDate";
				boot.advisory_ids = adv;
				boot.n_advisory_ids = 1;
				if (rpc_is_app_allowed(rpc, app, &boot, 7, &b, &reason, &err))
					free(reason);
				break;
			}
	}
	rpc_free(rpc);
	return 0;
}
