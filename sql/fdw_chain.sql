-- The chain reads a CVM can trust: every statement asks dstack's KMS contract the
-- question the KMS asked at boot (DstackKms.isAppAllowed with this CVM's boot info,
-- which also asks the consortium contract), through every JSON-RPC node of rpc_url,
-- which must serve chain chain_id and agree (a quorum of them, rpc_quorum) on one
-- block; and every wait ends with the statement (statement_timeout, a cancel).
\i sql/include/fdw_env.psql
\set VERBOSITY default
\! mkdir -p "$DSTACK_TEST_OUT/chain" && chown postgres: "$DSTACK_TEST_OUT/chain" 2>/dev/null; true
\set cdir :out '/chain'
SET dstack_seal.rows_per_group = 100;
CREATE TABLE c_cohort AS SELECT g::int8 AS patient_id, g % 90 AS age FROM generate_series(1, 1000) g;
-- errors with their SQLSTATE, detail and hint; ports and block hashes masked
CREATE FUNCTION c_try(q text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  st text; m text; d text; h text;
  mask constant text := '127\.0\.0\.1:[0-9]+';
BEGIN
  EXECUTE q;
  RAISE NOTICE 'no error';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT;
  RAISE NOTICE E'%: %\nDETAIL:  %\nHINT:  %', st, regexp_replace(m, mask, '127.0.0.1:PORT', 'g'),
    regexp_replace(regexp_replace(d, mask, '127.0.0.1:PORT', 'g'), 'hash 0x[0-9a-f]{12}', 'hash 0x...', 'g'),
    regexp_replace(h, mask, '127.0.0.1:PORT', 'g');
END $$;

-- a consortium (4 owners, 3 approvals needed, 4 given) on a chain served by anvil and
-- by five more nodes: an honest one, one that hides revocations, one that says it is
-- chain 1, one that never answers, one that says chain 1 only when the contract is read;
-- and one that lies about the policy
\! "$DSTACK_TEST_TOOLS/testenv.sh" up "$DSTACK_TEST_WORK/env-chain" --owners 4 --threshold 3 --approve 4 --rpc-node honest --rpc-node hide-revocation --rpc-node chain-id=1 --rpc-node hang --rpc-node chain-id-in-read=1 --lying-rpc 1000000,0, >/dev/null
\set q_env :work '/env-chain'
\set q_rpc `. "$DSTACK_TEST_WORK/env-chain/env.sh"; echo "$DSTACK_TEST_RPC"`
\set q_honest `. "$DSTACK_TEST_WORK/env-chain/env.sh"; echo "$DSTACK_TEST_RPC_NODE1"`
\set q_hider `. "$DSTACK_TEST_WORK/env-chain/env.sh"; echo "$DSTACK_TEST_RPC_NODE2"`
\set q_chain1 `. "$DSTACK_TEST_WORK/env-chain/env.sh"; echo "$DSTACK_TEST_RPC_NODE3"`
\set q_hang `. "$DSTACK_TEST_WORK/env-chain/env.sh"; echo "$DSTACK_TEST_RPC_NODE4"`
\set q_chainread `. "$DSTACK_TEST_WORK/env-chain/env.sh"; echo "$DSTACK_TEST_RPC_NODE5"`
\set q_liar `. "$DSTACK_TEST_WORK/env-chain/env.sh"; echo "$DSTACK_TEST_LYING_RPC"`
\set q_socket `. "$DSTACK_TEST_WORK/env-chain/env.sh"; echo "$DSTACK_TEST_SOCKET"`
\set q_root `. "$DSTACK_TEST_WORK/env-chain/env.sh"; echo "$DSTACK_TEST_KMS_ROOT"`
\set q_kms `. "$DSTACK_TEST_WORK/env-chain/env.sh"; echo "$DSTACK_TEST_KMS_CONTRACT"`
\set q_r1_pub `. "$DSTACK_TEST_WORK/env-chain/env.sh"; echo "$DSTACK_TEST_RECIPIENT1_PUB"`
\set q_r1_chain `. "$DSTACK_TEST_WORK/env-chain/env.sh"; echo "$DSTACK_TEST_RECIPIENT1_CHAIN"`
\set q_owner1_key :q_env '/owner1.key'
\set q_file :cdir '/cohort.dseal'
SET dstack_seal.kms_root_pubkey = :'q_root';
SET dstack_seal.owner_key_file = :'q_owner1_key';
SET dstack_seal.recipient_key = :'q_r1_pub';
SET dstack_seal.recipient_key_chain = :'q_r1_chain';
SELECT (dstack_seal('c_cohort', NULL, :'q_file'))->>'row_count' AS sealed;
-- the KMS root the CVM checks key chains against is the one the KMS contract records
\! . "$DSTACK_TEST_WORK/env-chain/env.sh" && [ "$("$DSTACK_TEST_TOOLS/../contracts/scripts/consortium.sh" kms-root --rpc "$DSTACK_TEST_RPC" --kms "$DSTACK_TEST_KMS_CONTRACT")" = "$DSTACK_TEST_KMS_ROOT" ] && echo "consortium.sh kms-root reads the KMS root from the KMS contract"
\! . "$DSTACK_TEST_WORK/env-chain/env.sh" && "$DSTACK_TEST_TOOLS/../contracts/scripts/consortium.sh" kms-state --rpc "$DSTACK_TEST_RPC" --kms "$DSTACK_TEST_KMS_CONTRACT" --app "$DSTACK_TEST_APP_ID" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log("registered with the KMS:",JSON.parse(s).registered))'

-- 1. one node, the KMS question answered yes: mounted
CREATE SERVER c_one FOREIGN DATA WRAPPER dstack_fdw
  OPTIONS (rpc_url :'q_rpc', guest_agent :'q_socket', kms_root_pubkey :'q_root', kms_contract :'q_kms', chain_id :'chain_id');
CREATE FOREIGN TABLE c_one (patient_id int8, age int4) SERVER c_one OPTIONS (path :'q_file', owner :'owner1_addr');
SELECT count(*), sum(age) FROM c_one;
SELECT approval, revocation, recipe, kms, overall FROM dstack_consortia WHERE server = 'c_one';

-- 2. the options: validated when set, required when mounting
CREATE SERVER c_bad1 FOREIGN DATA WRAPPER dstack_fdw OPTIONS (rpc_quorum '9');
CREATE SERVER c_bad2 FOREIGN DATA WRAPPER dstack_fdw OPTIONS (chain_id '0');
CREATE SERVER c_bad3 FOREIGN DATA WRAPPER dstack_fdw OPTIONS (chain_id '0x7a69');
CREATE SERVER c_bad4 FOREIGN DATA WRAPPER dstack_fdw OPTIONS (kms_contract '0x1234');
CREATE SERVER c_bad5 FOREIGN DATA WRAPPER dstack_fdw OPTIONS (rpc_url 'http://a:1/key, http://a:1/key');
CREATE SERVER c_bad6 FOREIGN DATA WRAPPER dstack_fdw OPTIONS (rpc_url 'http://a:1,,http://b:1');
CREATE SERVER c_nokms FOREIGN DATA WRAPPER dstack_fdw
  OPTIONS (rpc_url :'q_rpc', guest_agent :'q_socket', kms_root_pubkey :'q_root');
CREATE FOREIGN TABLE c_nokms (patient_id int8) SERVER c_nokms OPTIONS (path :'q_file', owner :'owner1_addr');
SELECT count(*) FROM c_nokms;
ALTER SERVER c_nokms OPTIONS (ADD kms_contract :'q_kms');
SELECT c_try('SELECT count(*) FROM c_nokms');
ALTER SERVER c_nokms OPTIONS (ADD chain_id :'chain_id');
SELECT count(*) FROM c_nokms;
-- an even quorum of an even number of nodes is no majority
CREATE SERVER c_half FOREIGN DATA WRAPPER dstack_fdw
  OPTIONS (rpc_url :'q_rpc', guest_agent :'q_socket', kms_root_pubkey :'q_root', kms_contract :'q_kms', chain_id :'chain_id');
ALTER SERVER c_half OPTIONS (SET rpc_url :'q_rpc', ADD rpc_quorum '1');
ALTER SERVER c_half OPTIONS (SET rpc_url 'http://127.0.0.1:1,http://127.0.0.1:2');
CREATE FOREIGN TABLE c_half (patient_id int8) SERVER c_half OPTIONS (path :'q_file', owner :'owner1_addr');
SELECT c_try('SELECT count(*) FROM c_half');

-- 3. the chain: a chain_id the nodes do not serve, and a node that says another chain
CREATE SERVER c_wrongid FOREIGN DATA WRAPPER dstack_fdw
  OPTIONS (rpc_url :'q_rpc', guest_agent :'q_socket', kms_root_pubkey :'q_root', kms_contract :'q_kms', chain_id '1');
CREATE FOREIGN TABLE c_wrongid (patient_id int8) SERVER c_wrongid OPTIONS (path :'q_file', owner :'owner1_addr');
SELECT c_try('SELECT count(*) FROM c_wrongid');
\set nodes :q_rpc ',' :q_chain1
CREATE SERVER c_chain1 FOREIGN DATA WRAPPER dstack_fdw
  OPTIONS (rpc_url :'nodes', guest_agent :'q_socket', kms_root_pubkey :'q_root', kms_contract :'q_kms', chain_id :'chain_id');
CREATE FOREIGN TABLE c_chain1 (patient_id int8) SERVER c_chain1 OPTIONS (path :'q_file', owner :'owner1_addr');
SELECT c_try('SELECT count(*) FROM c_chain1');
-- a node that says this chain when first asked and another one with the contract's state:
-- not used, even alone (its state would otherwise be cited as chain 1's)
CREATE SERVER c_chainread FOREIGN DATA WRAPPER dstack_fdw
  OPTIONS (rpc_url :'q_chainread', guest_agent :'q_socket', kms_root_pubkey :'q_root', kms_contract :'q_kms', chain_id :'chain_id');
CREATE FOREIGN TABLE c_chainread (patient_id int8) SERVER c_chainread OPTIONS (path :'q_file', owner :'owner1_addr');
SELECT c_try('SELECT count(*) FROM c_chainread');

-- 4. two nodes that disagree (one lies about the policy): refused, naming both
\set nodes :q_rpc ',' :q_liar
CREATE SERVER c_two FOREIGN DATA WRAPPER dstack_fdw
  OPTIONS (rpc_url :'nodes', guest_agent :'q_socket', kms_root_pubkey :'q_root', kms_contract :'q_kms', chain_id :'chain_id');
CREATE FOREIGN TABLE c_two (patient_id int8) SERVER c_two OPTIONS (path :'q_file', owner :'owner1_addr');
SELECT c_try('SELECT count(*) FROM c_two');

-- 5. three nodes, a quorum of two: the liar is outvoted, with a warning, and the
--    honest majority's state is used
\set nodes :q_rpc ',' :q_honest ',' :q_liar
CREATE SERVER c_three FOREIGN DATA WRAPPER dstack_fdw
  OPTIONS (rpc_url :'nodes', rpc_quorum '2', guest_agent :'q_socket', kms_root_pubkey :'q_root', kms_contract :'q_kms', chain_id :'chain_id');
CREATE FOREIGN TABLE c_three (patient_id int8, age int4) SERVER c_three OPTIONS (path :'q_file', owner :'owner1_addr');
\set VERBOSITY terse
SELECT count(*), sum(age) FROM c_three;
\set VERBOSITY default
-- ... but all three by default (rpc_quorum 0): refused
ALTER SERVER c_three OPTIONS (DROP rpc_quorum);
SELECT c_try('SELECT count(*) FROM c_three');
-- a node that does not answer counts against the quorum, within timeout_ms
\set nodes :q_rpc ',' :q_honest ',' :q_hang
CREATE SERVER c_slow FOREIGN DATA WRAPPER dstack_fdw
  OPTIONS (rpc_url :'nodes', rpc_quorum '2', guest_agent :'q_socket', kms_root_pubkey :'q_root', kms_contract :'q_kms', chain_id :'chain_id',
           timeout_ms '800', retries '0');
CREATE FOREIGN TABLE c_slow (patient_id int8, age int4) SERVER c_slow OPTIONS (path :'q_file', owner :'owner1_addr');
\set VERBOSITY terse
SELECT count(*), sum(age) FROM c_slow;
\set VERBOSITY default
-- (dstack_consortia reads every server: the ones that cannot be read go)
DROP SERVER c_nokms, c_half, c_wrongid, c_chain1, c_chainread, c_two, c_three, c_slow CASCADE;

-- 6. a revocation after boot: dstack's KMS decided at boot, so the agent still hands
--    out the keys; the per-statement question is what refuses
\! . "$DSTACK_TEST_WORK/env-chain/env.sh" && "$DSTACK_TEST_TOOLS/../contracts/scripts/consortium.sh" revoke --rpc "$DSTACK_TEST_RPC" --key "$DSTACK_TEST_OWNER2_KEY" --app "$DSTACK_TEST_APP_ID" --reason "regression test" >/dev/null 2>&1
\! . "$DSTACK_TEST_WORK/env-chain/env.sh" && node "$DSTACK_TEST_TOOLS/dstack-sim/recipient-key.mjs" --socket "$DSTACK_TEST_SOCKET" --owner "$DSTACK_TEST_OWNER1_ADDR" >/dev/null && echo "the guest agent still releases the owner's key after the revocation"
SELECT c_try('SELECT count(*) FROM c_one');
SELECT approval, revocation, recipe, kms, overall FROM dstack_consortia WHERE server = 'c_one';
-- one node that hides the revocation would be believed alone ...
CREATE SERVER c_hider FOREIGN DATA WRAPPER dstack_fdw
  OPTIONS (rpc_url :'q_hider', guest_agent :'q_socket', kms_root_pubkey :'q_root', kms_contract :'q_kms', chain_id :'chain_id');
CREATE FOREIGN TABLE c_hider (patient_id int8) SERVER c_hider OPTIONS (path :'q_file', owner :'owner1_addr');
SELECT count(*) FROM c_hider;
-- ... and is outvoted by two honest nodes
\set nodes :q_hider ',' :q_rpc ',' :q_honest
CREATE SERVER c_outvoted FOREIGN DATA WRAPPER dstack_fdw
  OPTIONS (rpc_url :'nodes', rpc_quorum '2', guest_agent :'q_socket', kms_root_pubkey :'q_root', kms_contract :'q_kms', chain_id :'chain_id');
CREATE FOREIGN TABLE c_outvoted (patient_id int8) SERVER c_outvoted OPTIONS (path :'q_file', owner :'owner1_addr');
\set VERBOSITY terse
SELECT c_try('SELECT count(*) FROM c_outvoted');
\set VERBOSITY default
DROP SERVER c_hider, c_outvoted CASCADE;

-- 7. the KMS's question is not the consortium's: approved, registered, but booted on
--    an OS image the KMS does not allow (a CVM dstack would not have booted; its
--    simulated agent asks the KMS on every request)
\! "$DSTACK_TEST_TOOLS/testenv.sh" up "$DSTACK_TEST_WORK/env-osimage" --owners 4 --threshold 3 --approve 4 --cvm-os-image 0x4444444444444444444444444444444444444444444444444444444444444444 --check-every-request >/dev/null
\set i_rpc `. "$DSTACK_TEST_WORK/env-osimage/env.sh"; echo "$DSTACK_TEST_RPC"`
\set i_socket `. "$DSTACK_TEST_WORK/env-osimage/env.sh"; echo "$DSTACK_TEST_SOCKET"`
\set i_root `. "$DSTACK_TEST_WORK/env-osimage/env.sh"; echo "$DSTACK_TEST_KMS_ROOT"`
\set i_kms `. "$DSTACK_TEST_WORK/env-osimage/env.sh"; echo "$DSTACK_TEST_KMS_CONTRACT"`
CREATE SERVER c_osimage FOREIGN DATA WRAPPER dstack_fdw
  OPTIONS (rpc_url :'i_rpc', guest_agent :'i_socket', kms_root_pubkey :'i_root', kms_contract :'i_kms', chain_id :'chain_id');
CREATE FOREIGN TABLE c_osimage (patient_id int8) SERVER c_osimage OPTIONS (path :'q_file', owner :'owner1_addr');
SELECT c_try('SELECT count(*) FROM c_osimage');
SELECT approval, revocation, recipe, kms, overall FROM dstack_consortia WHERE server = 'c_osimage';

-- 8. waits end with the statement: a node that never answers (timeout_ms 60 s) and a
--    guest agent that never answers, under statement_timeout 1 s
CREATE SERVER c_hang FOREIGN DATA WRAPPER dstack_fdw
  OPTIONS (rpc_url :'q_hang', guest_agent :'socket', kms_root_pubkey :'kms_root', kms_contract :'kms_contract', chain_id :'chain_id',
           timeout_ms '60000');
CREATE FOREIGN TABLE c_hang (patient_id int8) SERVER c_hang OPTIONS (path :'q_file', owner :'owner1_addr');
SET statement_timeout = '1s';
SELECT clock_timestamp() AS t0 \gset
SELECT count(*) FROM c_hang;
SELECT clock_timestamp() - :'t0'::timestamptz < interval '4 seconds' AS cancelled_promptly;
\! node "$DSTACK_TEST_TOOLS/lying-rpc.mjs" --hang --socket "$DSTACK_TEST_WORK/env-chain/hang-agent.sock" >/dev/null 2>&1 & echo $! > "$DSTACK_TEST_WORK/env-chain/rpc-node9.pid"; for i in 1 2 3 4 5 6 7 8 9 10; do [ -S "$DSTACK_TEST_WORK/env-chain/hang-agent.sock" ] && break; sleep 0.2; done
\set hang_agent :q_env '/hang-agent.sock'
CREATE SERVER c_hang_agent FOREIGN DATA WRAPPER dstack_fdw
  OPTIONS (rpc_url :'rpc', guest_agent :'hang_agent', kms_root_pubkey :'kms_root', kms_contract :'kms_contract', chain_id :'chain_id',
           timeout_ms '60000');
CREATE FOREIGN TABLE c_hang_agent (patient_id int8) SERVER c_hang_agent OPTIONS (path :'q_file', owner :'owner1_addr');
SELECT clock_timestamp() AS t0 \gset
SELECT count(*) FROM c_hang_agent;
SELECT clock_timestamp() - :'t0'::timestamptz < interval '4 seconds' AS cancelled_promptly;
RESET statement_timeout;
