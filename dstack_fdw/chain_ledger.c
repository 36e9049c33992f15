/*
 * chain_ledger.c: the privacy-budget ledger of record, on the consortium
 * contract (docs/operations.md, "The ledger on chain").
 *
 * With the server option ledger 'chain' (the default):
 *   - dstack_run() reads only dataset versions their owners registered and
 *     that are current: a superseded (older) file or an unregistered one is
 *     refused, naming both manifest hashes;
 *   - before the query reads a row, the CVM signs a charge (query hash,
 *     epsilon, delta, the manifest hashes read, a fresh nonce) with the
 *     guest agent's key at "dstack-ledger/v1", whose dstack signature chain
 *     the contract checks against the KMS root, sends charge() from the
 *     account of that same key, and waits until it is mined `confirmations`
 *     blocks deep.  The contract refuses a charge that would take any
 *     dataset past its budget, so every CVM instance and every database of
 *     the consortium draws on one budget per dataset version.
 * The local tables (ledger.c) stay as this database's cache and audit.
 *
 * Gas is paid by the ledger key's own account, which the consortium funds.
 */
#include "postgres.h"

#include <math.h>

#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/memutils.h"

#include "dstack_fdw.h"
#include "keycache.h"
#include "ethtx.h"
#include "guest_agent.h"
#include "hex.h"
#include "pg_common.h"
#include "rpc_tx.h"

/* The lock that serialises the nonces of one ledger account (see dfdw_chain_charge). */
static void
ledger_lock_tag(LOCKTAG *tag, const uint8 addr[DC_ADDR_LEN])
{
	uint32		k1,
				k2;

	memcpy(&k1, addr, 4);
	memcpy(&k2, addr + 4, 4);
	SET_LOCKTAG_ADVISORY(*tag, InvalidOid, k1, k2, 0x6473);
}

#define CHARGED_EVENT "Charged(uint256,bytes32,bytes32,uint64,uint64,bytes32[])"

/* An RPC client for server, with its timeouts and a cancel hook; freed by the caller. */
static RpcClient *
server_rpc(const DfdwServerOptions *opts)
{
	HttpOptions hopt;
	DErr		err;
	RpcClient  *rpc;

	derr_clear(&err);
	http_options_default(&hopt);
	hopt.connect_timeout_ms = opts->connect_timeout_ms;
	hopt.timeout_ms = opts->timeout_ms;
	hopt.retries = opts->retries;
	hopt.should_abort = dfdw_should_abort;
	rpc = rpc_new(opts->rpc_url, &hopt, &err);
	if (rpc == NULL)
		derr_ereport(&err, 0, NULL);
	return rpc;
}

/* Raise err after freeing rpc, with a hint about the node. */
static void
rpc_failed(RpcClient *rpc, DErr *err, const DfdwServerOptions *opts, const char *hint)
{
	rpc_free(rpc);
	CHECK_FOR_INTERRUPTS();
	derr_ereport(err, err->code == DERR_NETWORK ? ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION : 0,
				 hint ? hint : psprintf("Check that the JSON-RPC node at %s is reachable.", opts->rpc_url));
}

/*
 * Rule of the on-chain ledger: the dataset version d read is registered on
 * the consortium contract by the owner who signed its manifest, and is the
 * current version of its dataset.
 */
void
dfdw_chain_check_dataset(Oid serverid, const DfdwChainFacts *f, const DfdwDatasetRef *d)
{
	DfdwServerOptions opts;
	RpcClient  *rpc;
	uint8		words[1][32];
	uint8	   *call = NULL;
	size_t		call_len;
	uint8	   *ret = NULL;
	size_t		ret_len;
	uint8		owner[DC_ADDR_LEN];
	uint8		id_word[32];
	bool		current;
	DErr		err;

	dfdw_server_options(GetForeignServer(serverid), &opts);
	if (!opts.chain_ledger)
		return;
	derr_clear(&err);
	rpc = server_rpc(&opts);
	memcpy(words[0], d->manifest_hash, 32);
	if (!abi_encode_static_call("datasetVersion(bytes32)", (const uint8_t (*)[32]) words, 1, &call, &call_len, &err) ||
		!rpc_eth_call(rpc, f->app_id, call, call_len, f->block_number, &ret, &ret_len, &err) ||
		!abi_get_address(ret, ret_len, 0, owner, &err) || !abi_get_bytes32(ret, ret_len, 1, id_word, &err) ||
		!abi_get_bool(ret, ret_len, 4, &current, &err))
	{
		free(call);
		free(ret);
		rpc_failed(rpc, &err, &opts,
				   psprintf("The consortium contract %s must offer the dataset registry (datasetVersion); "
							"check rpc_url, or set ledger 'local' on a consortium deployed without it.",
							dpg_hex(f->app_id, DC_ADDR_LEN, true)));
	}
	free(call);
	free(ret);
	if (memcmp(owner, (uint8[DC_ADDR_LEN]) {0}, DC_ADDR_LEN) == 0)
	{
		rpc_free(rpc);
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("dataset of \"%s\" is not registered on consortium %s", d->table,
						dpg_hex(f->app_id, DC_ADDR_LEN, true)),
				 errdetail("Its manifest hash %s is not in the contract's dataset registry at block %llu; "
						   "only versions their owners registered are read, so each is charged against its "
						   "own budget.", dpg_hex(d->manifest_hash, 32, true), (unsigned long long) f->block_number),
				 errhint("Its owner registers it: contracts/scripts/consortium.sh register --rpc <node> --key <owner key> "
						 "--app %s --dataset-id %s --manifest-hash %s", dpg_hex(f->app_id, DC_ADDR_LEN, true),
						 dpg_hex(d->dataset_id, DSEAL_DATASET_ID_LEN, true), dpg_hex(d->manifest_hash, 32, true))));
	}
	if (memcmp(owner, d->owner, DC_ADDR_LEN) != 0)
	{
		rpc_free(rpc);
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("dataset of \"%s\" is registered by %s, not by its signer %s", d->table,
						dpg_hex(owner, DC_ADDR_LEN, true), dpg_hex(d->owner, DC_ADDR_LEN, true)),
				 errhint("Ask the owner who sealed it to register it.")));
	}
	if (!current)
	{
		uint8		cur[32];

		memset(words[0], 0, 32);
		memcpy(words[0], id_word, 16);
		memset(cur, 0, sizeof(cur));
		if (abi_encode_static_call("currentManifest(bytes16)", (const uint8_t (*)[32]) words, 1, &call,
								   &call_len, &err) &&
			rpc_eth_call(rpc, f->app_id, call, call_len, f->block_number, &ret, &ret_len, &err))
			(void) abi_decode_bytes32(ret, ret_len, cur, &err);
		free(call);
		free(ret);
		rpc_free(rpc);
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("dataset of \"%s\" is a superseded version", d->table),
				 errdetail("Its manifest hash is %s; its owner registered %s as the current version of "
						   "dataset %s. An older file is never read again: its budget stays spent.",
						   dpg_hex(d->manifest_hash, 32, true), dpg_hex(cur, 32, true), dpg_hex(id_word, 16, true)),
				 errhint("Mount the current file of the dataset.")));
	}
	rpc_free(rpc);
}

/* delta as an integer number of 1e-12, as the contract records it. */
static uint64
delta_pico(double delta)
{
	double		p = delta * 1e12;

	if (!(p >= 0 && p < 1e18))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("delta %g cannot be charged on chain", delta),
				 errhint("The policy's delta must lie between 0 and 1.")));
	return (uint64) llround(p);
}

void
dfdw_chain_charge(Oid serverid, const DfdwChainFacts *f, const char *query, int64 epsilon_micro, double delta,
				  List *datasets, DfdwChainCharge *out)
{
	DfdwServerOptions opts;
	RpcClient  *rpc;
	GaKey		key;
	uint8		kms_root[DC_PUBKEY_LEN];
	uint8		(*manifests)[32];
	LedgerChargeReq req;
	LedgerChargeSig sig;
	EthTx		tx;
	LOCKTAG		lock;
	uint8	   *call = NULL,
			   *raw = NULL;
	size_t		call_len,
				raw_len;
	uint64		nonce,
				gas_price,
				gas;
	uint8		topic0[32];
	RpcTxReceipt rcpt;
	ListCell   *lc;
	DErr		err;
	bool		ok;

	memset(out, 0, sizeof(*out));
	dfdw_server_options(GetForeignServer(serverid), &opts);
	if (!opts.chain_ledger)
		return;
	derr_clear(&err);
	if (!dhex_decode_exact(opts.kms_root_pubkey, kms_root, DC_PUBKEY_LEN, "kms_root_pubkey", &err))
		derr_ereport(&err, ERRCODE_FDW_INVALID_OPTION_NAME, NULL);

	/* the request */
	memset(&req, 0, sizeof(req));
	dc_sha256(query, strlen(query), req.query_hash);
	req.epsilon_micro = (uint64_t) epsilon_micro;
	req.delta_pico = delta_pico(delta);
	manifests = palloc(sizeof(*manifests) * Max(list_length(datasets), 1));
	foreach(lc, datasets)
		memcpy(manifests[foreach_current_index(lc)], ((DfdwDatasetRef *) lfirst(lc))->manifest_hash, 32);
	req.manifests = (const uint8_t (*)[32]) manifests;
	req.n_manifests = list_length(datasets);
	if (!dc_random(req.nonce, sizeof(req.nonce), &err))
		derr_ereport(&err, 0, NULL);

	/* signed by the ledger key, whose chain the contract checks */
	memset(&key, 0, sizeof(key));
	if (!dfdw_agent_key(opts.guest_agent, LEDGER_PURPOSE, LEDGER_PURPOSE, kms_root, f->app_id, &key, &err))
		derr_ereport(&err, 0, "The ledger key comes from the dstack guest agent; check that it runs and that "
					 "the consortium still allows this CVM.");
	ok = ledger_charge_sign(&key, kms_root, f->app_id, f->chain_id, &req, &sig, &err) &&
		dc_pubkey_to_address(key.pub, DC_PUBKEY_LEN, out->ledger_address, &err) &&
		ledger_charge_calldata(&req, &sig, &call, &call_len, &err);
	if (!ok)
	{
		ga_key_scrub(&key);
		free(call);
		derr_ereport(&err, 0, NULL);
	}

	/*
	 * Sent from the ledger key's own account.  Every backend of this CVM
	 * signs with that one account, so from the nonce until the node has
	 * taken the transaction one backend at a time: two runs at once would
	 * otherwise sign the same nonce and one would be refused ("nonce too
	 * low").  A lock of the whole cluster, keyed by the account, that no SQL
	 * advisory lock can take (its last field is neither 1 nor 2); a cancel
	 * ends the wait, and an error releases it with the transaction.
	 */
	ledger_lock_tag(&lock, out->ledger_address);
	(void) LockAcquire(&lock, ExclusiveLock, false, false);
	rpc = server_rpc(&opts);
	memset(&tx, 0, sizeof(tx));
	ok = rpc_tx_count(rpc, out->ledger_address, &nonce, &err) && rpc_gas_price(rpc, &gas_price, &err) &&
		rpc_estimate_gas(rpc, out->ledger_address, f->app_id, call, call_len, &gas, &err);
	if (!ok)
	{
		ga_key_scrub(&key);
		free(call);
		rpc_failed(rpc, &err, &opts,
				   psprintf("Either the consortium contract refused the charge (a dataset's budget is spent, "
							"or the consortium is not approved), or the ledger account %s of this CVM cannot "
							"pay for gas. Nothing was read.", dpg_hex(out->ledger_address, DC_ADDR_LEN, true)));
	}
	tx.nonce = nonce;
	tx.gas_price = gas_price;
	tx.gas_limit = gas + gas / 4;
	memcpy(tx.to, f->app_id, DC_ADDR_LEN);
	tx.data = call;
	tx.data_len = call_len;
	tx.chain_id = f->chain_id;
	ok = eth_tx_sign(&tx, key.key, &raw, &raw_len, out->tx_hash, &err);
	ga_key_scrub(&key);
	free(call);
	if (ok)
		ok = rpc_send_raw(rpc, raw, raw_len, out->tx_hash, &err);
	free(raw);
	if (!ok)
		rpc_failed(rpc, &err, &opts, NULL);
	LockRelease(&lock, ExclusiveLock, false);	/* the node has it: the next nonce is free */
	dc_keccak256(CHARGED_EVENT, strlen(CHARGED_EVENT), topic0);
	if (!rpc_wait_receipt(rpc, out->tx_hash, (uint64) opts.confirmations, opts.timeout_ms, dfdw_should_abort, NULL,
						  f->app_id, topic0, &rcpt, &err))
		rpc_failed(rpc, &err, &opts,
				   psprintf("The charge %s may still be mined; nothing was read.", dpg_hex(out->tx_hash, 32, true)));
	rpc_free(rpc);
	if (!rcpt.success || !rcpt.log_found || rcpt.n_log_topics < 2)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("the consortium contract did not record the charge %s", dpg_hex(out->tx_hash, 32, true)),
				 errdetail("The transaction was mined in block %llu with status %s and %s Charged event.",
						   (unsigned long long) rcpt.block_number, rcpt.success ? "1" : "0",
						   rcpt.log_found ? "a" : "no"),
				 errhint("Nothing was read. Check the consortium's state with consortium.sh ledger.")));
	out->on_chain = true;
	out->block_number = rcpt.block_number;
	out->log_index = rcpt.log_index;
	for (int i = 24; i < 32; i++)
		out->index = (out->index << 8) | rcpt.log_topics[1][i];
	memcpy(out->nonce, req.nonce, 32);
	memcpy(out->query_hash, req.query_hash, 32);
	out->delta_pico = req.delta_pico;
}
