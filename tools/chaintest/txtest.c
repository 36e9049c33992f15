/*
 * txtest: common/'s transaction path (ethtx.c, rpc_tx.c) against anvil.
 * Signs transfers with anvil's first development key (public, in anvil's
 * documentation), sends them, waits for their receipts and checks the
 * chain's view: balance, nonce, a replay refused, EIP-155's chain
 * separation.  Usage: txtest RPC_URL.  Prints every check and
 * "N passed, N failed".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ethtx.h"
#include "hex.h"
#include "rpc_tx.h"

static int	passed,
			failed;

static void
check(bool ok, const char *name, const DErr *err)
{
	printf("%s %s", ok ? "ok  " : "FAIL", name);
	if (!ok && err && err->code)
		printf(" (%s%s%s)", err->msg, err->detail[0] ? ": " : "", err->detail);
	printf("\n");
	if (ok)
		passed++;
	else
		failed++;
}

static bool
balance(RpcClient *rpc, const char *addr, uint64_t *wei, DErr *err)
{
	json_t	   *res = NULL;
	char		params[96];
	const char *s;

	snprintf(params, sizeof(params), "[\"%s\", \"latest\"]", addr);
	if (!rpc_request(rpc, "eth_getBalance", params, &res, err))
		return false;
	s = json_string_value(res);
	*wei = s ? strtoull(s, NULL, 16) : 0;
	json_decref(res);
	return s != NULL;
}

int
main(int argc, char **argv)
{
	HttpOptions hopt;
	RpcClient  *rpc;
	DErr		err = {0};
	uint8_t		sk[32];
	uint8_t		from[20];
	uint8_t		pub[DC_PUBKEY_LEN];
	EthTx		tx = {0};
	uint8_t    *raw = NULL;
	size_t		raw_len;
	uint8_t		hash[32],
				sent[32];
	uint64_t	nonce = 0,
				nonce_after = 0,
				chain_id = 0,
				price = 0,
				before = 0,
				after = 0,
				gas = 0;
	RpcTxReceipt rcpt;
	const char *to_hex = "0x00000000000000000000000000000000000d57ac";

	if (argc != 2)
	{
		fprintf(stderr, "usage: txtest RPC_URL\n");
		return 2;
	}
	http_options_default(&hopt);
	rpc = rpc_new(argv[1], &hopt, &err);
	if (rpc == NULL)
	{
		check(false, "rpc client", &err);
		return 1;
	}
	dhex_decode_exact("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80", sk, 32, "key", &err);
	dc_pubkey_from_seckey(sk, pub, &err);
	dc_pubkey_to_address(pub, DC_PUBKEY_LEN, from, &err);
	check(rpc_chain_id(rpc, &chain_id, &err) && chain_id == 31337, "chain id 31337", &err);
	check(rpc_tx_count(rpc, from, &nonce, &err), "eth_getTransactionCount", &err);
	check(rpc_gas_price(rpc, &price, &err) && price > 0, "eth_gasPrice", &err);
	check(balance(rpc, to_hex, &before, &err), "balance before", &err);
	tx.nonce = nonce;
	tx.gas_price = price;
	tx.gas_limit = 21000;
	dhex_decode_exact(to_hex + 2, tx.to, 20, "to", &err);
	tx.value = 12345;
	tx.chain_id = chain_id;
	check(rpc_estimate_gas(rpc, from, tx.to, NULL, 0, &gas, &err) && gas == 21000, "eth_estimateGas of a transfer is 21000", &err);
	check(eth_tx_sign(&tx, sk, &raw, &raw_len, hash, &err), "sign the transfer", &err);
	check(rpc_send_raw(rpc, raw, raw_len, sent, &err), "eth_sendRawTransaction", &err);
	check(memcmp(sent, hash, 32) == 0, "the node's transaction hash is keccak256 of the raw transaction", NULL);
	check(rpc_wait_receipt(rpc, sent, 0, 5000, NULL, NULL, NULL, NULL, &rcpt, &err) && rcpt.success &&
		  rcpt.gas_used == 21000, "receipt: mined, status 1, 21000 gas", &err);
	check(balance(rpc, to_hex, &after, &err) && after == before + 12345, "the recipient got 12345 wei", &err);
	check(rpc_tx_count(rpc, from, &nonce_after, &err) && nonce_after == nonce + 1, "the sender's nonce advanced", &err);
	derr_clear(&err);
	check(!rpc_send_raw(rpc, raw, raw_len, sent, &err), "the same raw transaction again is refused (replay)", NULL);
	free(raw);
	tx.nonce = nonce;
	tx.chain_id = 1;
	check(eth_tx_sign(&tx, sk, &raw, &raw_len, hash, &err) && memcmp(hash, sent, 32) != 0,
		  "the same transfer signed for chain 1 is another transaction (EIP-155)", &err);
	free(raw);
	derr_clear(&err);
	memset(hash, 0x5a, 32);
	check(!rpc_wait_receipt(rpc, hash, 0, 300, NULL, NULL, NULL, NULL, &rcpt, &err) && err.code == DERR_NETWORK,
		  "waiting for an unknown transaction times out", NULL);
	rpc_free(rpc);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
