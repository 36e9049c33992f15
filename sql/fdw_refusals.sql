-- dstack_fdw refusals: every failure of the mount rule is its own error that
-- says what is missing, and no row is returned before it.
\i sql/include/fdw_env.psql
\set VERBOSITY default
\! mkdir -p "$DSTACK_TEST_OUT/refusals" && chown postgres: "$DSTACK_TEST_OUT/refusals" 2>/dev/null; true
\set rdir :out '/refusals'
\set good :rdir '/cohort.dseal'
SET dstack_seal.rows_per_group = 100;
CREATE TABLE r_cohort AS SELECT g::int8 AS patient_id, g % 90 AS age FROM generate_series(1, 1000) g;
SELECT (dstack_seal('r_cohort', NULL, :'good'))->>'row_count' AS sealed;

CREATE SERVER r_main FOREIGN DATA WRAPPER dstack_fdw
  OPTIONS (rpc_url :'rpc', guest_agent :'socket', kms_root_pubkey :'kms_root', kms_contract :'kms_contract', chain_id :'chain_id');
CREATE FOREIGN TABLE r_good (patient_id int8, age int4) SERVER r_main OPTIONS (path :'good', owner :'owner1_addr');
SELECT count(*), sum(age) FROM r_good;

-- 1. a tampered chunk, with the keyless pre-check on: refused before the first
-- row (the cursor never opens)
\! cd "$DSTACK_TEST_OUT/refusals" && cp cohort.dseal flip.dseal && chmod 644 flip.dseal && node "$DSTACK_TEST_TOOLS/dseal-tamper.mjs" flip.dseal flip-chunk 7 1
\set flip :rdir '/flip.dseal'
CREATE FOREIGN TABLE r_flip (patient_id int8, age int4) SERVER r_main OPTIONS (path :'flip', owner :'owner1_addr');
SET dstack_fdw.verify_before_scan = on;
BEGIN;
DECLARE c CURSOR FOR SELECT patient_id, age FROM r_flip;
ROLLBACK;
-- by default (no pre-check) the GCM tag stops the scan at row group 7, before
-- any row of it
RESET dstack_fdw.verify_before_scan;
BEGIN;
DECLARE c CURSOR FOR SELECT patient_id, age FROM r_flip;
FETCH 700 FROM c \g /dev/null
FETCH 1 FROM c;
ROLLBACK;
-- a column that is not read is not decrypted, so its damage is not reached
SELECT count(patient_id) FROM r_flip;
-- an edited manifest fails its owner signature at planning time
\! cd "$DSTACK_TEST_OUT/refusals" && cp cohort.dseal edited.dseal && chmod 644 edited.dseal && node "$DSTACK_TEST_TOOLS/dseal-tamper.mjs" edited.dseal edit-manifest '"row_count":1000' '"row_count":9999'
\set edited :rdir '/edited.dseal'
CREATE FOREIGN TABLE r_edited (patient_id int8) SERVER r_main OPTIONS (path :'edited', owner :'owner1_addr');
\set VERBOSITY terse
SELECT count(*) FROM r_edited;
\set VERBOSITY default

-- 2. sealed for another recipe (another compose-hash)
\set other_recipe :rdir '/other_recipe.dseal'
SET dstack_seal.compose_hash = '0x1111111111111111111111111111111111111111111111111111111111111111';
SELECT (dstack_seal('r_cohort', NULL, :'other_recipe'))->>'row_count' AS sealed;
SET dstack_seal.compose_hash = :'compose_hash';
CREATE FOREIGN TABLE r_other_recipe (patient_id int8) SERVER r_main OPTIONS (path :'other_recipe', owner :'owner1_addr');
SELECT count(*) FROM r_other_recipe;

-- 3. the file is validly signed, but by another owner than the table says
CREATE FOREIGN TABLE r_not_owner (patient_id int8) SERVER r_main OPTIONS (path :'good', owner :'owner2_addr');
SELECT count(*) FROM r_not_owner;

-- 4. guest agent down, 5. RPC node down (within the timeout)
CREATE SERVER r_no_agent FOREIGN DATA WRAPPER dstack_fdw
  OPTIONS (rpc_url :'rpc', guest_agent '/nonexistent/dstack.sock', kms_root_pubkey :'kms_root', kms_contract :'kms_contract', chain_id :'chain_id');
CREATE FOREIGN TABLE r_no_agent (patient_id int8) SERVER r_no_agent OPTIONS (path :'good', owner :'owner1_addr');
\set VERBOSITY terse
SELECT count(*) FROM r_no_agent;
CREATE SERVER r_no_rpc FOREIGN DATA WRAPPER dstack_fdw
  OPTIONS (rpc_url 'http://127.0.0.1:9', guest_agent :'socket', kms_root_pubkey :'kms_root', kms_contract :'kms_contract', chain_id :'chain_id',
           timeout_ms '1500', retries '1');
CREATE FOREIGN TABLE r_no_rpc (patient_id int8) SERVER r_no_rpc OPTIONS (path :'good', owner :'owner1_addr');
SELECT clock_timestamp() AS t0 \gset
SELECT count(*) FROM r_no_rpc;
SELECT clock_timestamp() - :'t0'::timestamptz < interval '5 seconds' AS failed_within_timeout;
\set VERBOSITY default

-- 6. a consortium with k-1 approvals (2 of 3)
\! "$DSTACK_TEST_TOOLS/testenv.sh" up "$DSTACK_TEST_WORK/env-kminus1" --owners 4 --threshold 3 --approve 2 --check-every-request >/dev/null
\set k_rpc `. "$DSTACK_TEST_WORK/env-kminus1/env.sh"; echo "$DSTACK_TEST_RPC"`
\set k_socket `. "$DSTACK_TEST_WORK/env-kminus1/env.sh"; echo "$DSTACK_TEST_SOCKET"`
\set k_root `. "$DSTACK_TEST_WORK/env-kminus1/env.sh"; echo "$DSTACK_TEST_KMS_ROOT"`
\set k_kms `. "$DSTACK_TEST_WORK/env-kminus1/env.sh"; echo "$DSTACK_TEST_KMS_CONTRACT"`
CREATE SERVER r_kminus1 FOREIGN DATA WRAPPER dstack_fdw
  OPTIONS (rpc_url :'k_rpc', guest_agent :'k_socket', kms_root_pubkey :'k_root', kms_contract :'k_kms', chain_id :'chain_id');
CREATE FOREIGN TABLE r_kminus1 (patient_id int8) SERVER r_kminus1 OPTIONS (path :'good', owner :'owner1_addr');
SELECT count(*) FROM r_kminus1;

-- 7. a CVM booted from another app-compose.json than the one pinned
\! node -e 'const fs=require("fs");const c=JSON.parse(fs.readFileSync(process.argv[1],"utf8"));c.name="pg-dstack-other-recipe";fs.writeFileSync(process.argv[2],JSON.stringify(c,null,2)+"\n")' "$DSTACK_TEST_TOOLS/demo/app-compose.json" "$DSTACK_TEST_WORK/compose-othercvm.json"
\! "$DSTACK_TEST_TOOLS/testenv.sh" up "$DSTACK_TEST_WORK/env-othercvm" --owners 4 --threshold 3 --approve 4 --cvm-app-compose "$DSTACK_TEST_WORK/compose-othercvm.json" --check-every-request >/dev/null
\set o_rpc `. "$DSTACK_TEST_WORK/env-othercvm/env.sh"; echo "$DSTACK_TEST_RPC"`
\set o_socket `. "$DSTACK_TEST_WORK/env-othercvm/env.sh"; echo "$DSTACK_TEST_SOCKET"`
\set o_root `. "$DSTACK_TEST_WORK/env-othercvm/env.sh"; echo "$DSTACK_TEST_KMS_ROOT"`
\set o_kms `. "$DSTACK_TEST_WORK/env-othercvm/env.sh"; echo "$DSTACK_TEST_KMS_CONTRACT"`
CREATE SERVER r_othercvm FOREIGN DATA WRAPPER dstack_fdw
  OPTIONS (rpc_url :'o_rpc', guest_agent :'o_socket', kms_root_pubkey :'o_root', kms_contract :'o_kms', chain_id :'chain_id');
CREATE FOREIGN TABLE r_othercvm (patient_id int8) SERVER r_othercvm OPTIONS (path :'good', owner :'owner1_addr');
SELECT count(*) FROM r_othercvm;

-- 7b. a backend keeps the CVM identity it read (Info does not change while a CVM runs),
--     keyed by the agent's socket file, not its name: the same path, now another agent
--     (this one booted from the other compose), is asked again and refused
\! ln -sfn "$DSTACK_TEST_SOCKET" "$DSTACK_TEST_WORK/agent-link.sock"
\set link :work '/agent-link.sock'
CREATE SERVER r_link FOREIGN DATA WRAPPER dstack_fdw
  OPTIONS (rpc_url :'rpc', guest_agent :'link', kms_root_pubkey :'kms_root', kms_contract :'kms_contract', chain_id :'chain_id');
CREATE FOREIGN TABLE r_link (patient_id int8) SERVER r_link OPTIONS (path :'good', owner :'owner1_addr');
SELECT count(*) FROM r_link;
\! ln -sfn "$(. "$DSTACK_TEST_WORK/env-othercvm/env.sh"; echo "$DSTACK_TEST_SOCKET")" "$DSTACK_TEST_WORK/agent-link.sock"
SELECT count(*) FROM r_link;
\! ln -sfn "$DSTACK_TEST_SOCKET" "$DSTACK_TEST_WORK/agent-link.sock"
SELECT count(*) FROM r_link;

-- 8. approved by owners 1 and 2 (k = 2): owner 3's dataset is refused, owner 1's is
--    served, and after owner 2 revokes, the next statement is refused
\! "$DSTACK_TEST_TOOLS/testenv.sh" up "$DSTACK_TEST_WORK/env-revoke" --owners 4 --threshold 2 --approve 2 >/dev/null
\set v_env :work '/env-revoke'
\set v_rpc `. "$DSTACK_TEST_WORK/env-revoke/env.sh"; echo "$DSTACK_TEST_RPC"`
\set v_socket `. "$DSTACK_TEST_WORK/env-revoke/env.sh"; echo "$DSTACK_TEST_SOCKET"`
\set v_root `. "$DSTACK_TEST_WORK/env-revoke/env.sh"; echo "$DSTACK_TEST_KMS_ROOT"`
\set v_kms `. "$DSTACK_TEST_WORK/env-revoke/env.sh"; echo "$DSTACK_TEST_KMS_CONTRACT"`
\set v_r1_pub `. "$DSTACK_TEST_WORK/env-revoke/env.sh"; echo "$DSTACK_TEST_RECIPIENT1_PUB"`
\set v_r1_chain `. "$DSTACK_TEST_WORK/env-revoke/env.sh"; echo "$DSTACK_TEST_RECIPIENT1_CHAIN"`
\set v_r3_pub `. "$DSTACK_TEST_WORK/env-revoke/env.sh"; echo "$DSTACK_TEST_RECIPIENT3_PUB"`
\set v_r3_chain `. "$DSTACK_TEST_WORK/env-revoke/env.sh"; echo "$DSTACK_TEST_RECIPIENT3_CHAIN"`
\set v_owner1_key :v_env '/owner1.key'
\set v_owner3_key :v_env '/owner3.key'
\set v_file1 :rdir '/v_owner1.dseal'
\set v_file3 :rdir '/v_owner3.dseal'
SET dstack_seal.kms_root_pubkey = :'v_root';
SET dstack_seal.owner_key_file = :'v_owner1_key';
SET dstack_seal.recipient_key = :'v_r1_pub';
SET dstack_seal.recipient_key_chain = :'v_r1_chain';
SELECT (dstack_seal('r_cohort', NULL, :'v_file1'))->>'row_count' AS sealed;
SET dstack_seal.owner_key_file = :'v_owner3_key';
SET dstack_seal.recipient_key = :'v_r3_pub';
SET dstack_seal.recipient_key_chain = :'v_r3_chain';
SELECT (dstack_seal('r_cohort', NULL, :'v_file3'))->>'row_count' AS sealed;
CREATE SERVER r_revoke FOREIGN DATA WRAPPER dstack_fdw
  OPTIONS (rpc_url :'v_rpc', guest_agent :'v_socket', kms_root_pubkey :'v_root', kms_contract :'v_kms', chain_id :'chain_id');
CREATE FOREIGN TABLE r_v1 (patient_id int8, age int4) SERVER r_revoke OPTIONS (path :'v_file1', owner :'owner1_addr');
CREATE FOREIGN TABLE r_v3 (patient_id int8, age int4) SERVER r_revoke OPTIONS (path :'v_file3', owner :'owner3_addr');
SELECT count(*), sum(age) FROM r_v1;
SELECT count(*) FROM r_v3;
\! . "$DSTACK_TEST_WORK/env-revoke/env.sh" && "$DSTACK_TEST_TOOLS/../contracts/scripts/consortium.sh" revoke --rpc "$DSTACK_TEST_RPC" --key "$DSTACK_TEST_OWNER2_KEY" --app "$DSTACK_TEST_APP_ID" --reason "regression test" >/dev/null 2>&1
SELECT count(*), sum(age) FROM r_v1;
