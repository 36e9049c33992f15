-- dstack_fdw takes the analysis policy (epsilon, delta, minimum group size,
-- privacy unit, rows per unit) from the app-compose.json its compose-hash
-- measures, never from a JSON-RPC node's word: the contract's policy() must
-- agree with the compose, the compose text must be the measured one, and its
-- pg_dstack_policy must be valid, or nothing is mounted.
\i sql/include/fdw_env.psql
\set VERBOSITY default
\! mkdir -p "$DSTACK_TEST_OUT/policy" && chown postgres: "$DSTACK_TEST_OUT/policy" 2>/dev/null; true
\set pdir :out '/policy'
SET dstack_seal.rows_per_group = 100;
CREATE TABLE p_cohort AS SELECT g::int8 AS patient_id, g::int8 AS person_id, g % 90 AS age
  FROM generate_series(1, 1000) g;

-- 1. a consortium (policy: epsilon 1.5, groups of 10, unit patient_id) read
--    through an honest node and through a node that answers policy() with
--    epsilon 1000, no minimum group and no privacy unit
\! "$DSTACK_TEST_TOOLS/testenv.sh" up "$DSTACK_TEST_WORK/env-liar" --owners 4 --threshold 3 --approve 4 --lying-rpc 1000000,0, >/dev/null
\set l_env :work '/env-liar'
\set l_rpc `. "$DSTACK_TEST_WORK/env-liar/env.sh"; echo "$DSTACK_TEST_RPC"`
\set l_lying_rpc `. "$DSTACK_TEST_WORK/env-liar/env.sh"; echo "$DSTACK_TEST_LYING_RPC"`
\set l_socket `. "$DSTACK_TEST_WORK/env-liar/env.sh"; echo "$DSTACK_TEST_SOCKET"`
\set l_root `. "$DSTACK_TEST_WORK/env-liar/env.sh"; echo "$DSTACK_TEST_KMS_ROOT"`
\set l_kms `. "$DSTACK_TEST_WORK/env-liar/env.sh"; echo "$DSTACK_TEST_KMS_CONTRACT"`
\set l_r1_pub `. "$DSTACK_TEST_WORK/env-liar/env.sh"; echo "$DSTACK_TEST_RECIPIENT1_PUB"`
\set l_r1_chain `. "$DSTACK_TEST_WORK/env-liar/env.sh"; echo "$DSTACK_TEST_RECIPIENT1_CHAIN"`
\set l_owner1_key :l_env '/owner1.key'
\set l_file :pdir '/liar_cohort.dseal'
SET dstack_seal.kms_root_pubkey = :'l_root';
SET dstack_seal.owner_key_file = :'l_owner1_key';
SET dstack_seal.recipient_key = :'l_r1_pub';
SET dstack_seal.recipient_key_chain = :'l_r1_chain';
SELECT (dstack_seal('p_cohort', NULL, :'l_file'))->>'row_count' AS sealed;
CREATE SERVER p_honest FOREIGN DATA WRAPPER dstack_fdw
  OPTIONS (rpc_url :'l_rpc', guest_agent :'l_socket', kms_root_pubkey :'l_root', kms_contract :'l_kms', chain_id :'chain_id');
CREATE FOREIGN TABLE p_honest (patient_id int8, age int4) SERVER p_honest OPTIONS (path :'l_file', owner :'owner1_addr');
SELECT count(*), sum(age) FROM p_honest;
-- the lying node: refused, naming both policies and the node (its port masked here)
CREATE SERVER p_liar FOREIGN DATA WRAPPER dstack_fdw
  OPTIONS (rpc_url :'l_lying_rpc', guest_agent :'l_socket', kms_root_pubkey :'l_root', kms_contract :'l_kms', chain_id :'chain_id');
CREATE FOREIGN TABLE p_liar (patient_id int8, age int4) SERVER p_liar OPTIONS (path :'l_file', owner :'owner1_addr');
CREATE FUNCTION p_try(q text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  st text; m text; d text; h text;
BEGIN
  EXECUTE q;
  RAISE NOTICE 'no error';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT;
  RAISE NOTICE E'%: %\nDETAIL:  %\nHINT:  %', st, m,
    regexp_replace(d, '127\.0\.0\.1:[0-9]+', '127.0.0.1:PORT', 'g'), h;
END $$;
SELECT p_try('SELECT count(*) FROM p_liar');
-- through dstack_run() too (the output guard reads the policy first): refused
-- before anything runs or is charged (its own transaction: message only here)
SET dstack_fdw.output_guard = on;
\set VERBOSITY terse
SELECT dstack_run($$SELECT dp_count(patient_id, 0.5) FROM p_liar$$);
\set VERBOSITY default
SET dstack_fdw.output_guard = off;
-- the node did tell the lie, and the honest server still mounts
\! grep -q 'answered with the lie' "$DSTACK_TEST_WORK/env-liar/lying-rpc.log" && echo "the lying node rewrote policy()"
SELECT count(*) FROM p_honest;

-- 2. a guest agent whose app-compose text is not the one its compose-hash measures
\! "$DSTACK_TEST_TOOLS/testenv.sh" up "$DSTACK_TEST_WORK/env-unmeasured" --owners 4 --threshold 3 --approve 4 --cvm-compose-hash 0x2222222222222222222222222222222222222222222222222222222222222222 --check-every-request >/dev/null
\set u_rpc `. "$DSTACK_TEST_WORK/env-unmeasured/env.sh"; echo "$DSTACK_TEST_RPC"`
\set u_socket `. "$DSTACK_TEST_WORK/env-unmeasured/env.sh"; echo "$DSTACK_TEST_SOCKET"`
\set u_root `. "$DSTACK_TEST_WORK/env-unmeasured/env.sh"; echo "$DSTACK_TEST_KMS_ROOT"`
\set u_kms `. "$DSTACK_TEST_WORK/env-unmeasured/env.sh"; echo "$DSTACK_TEST_KMS_CONTRACT"`
CREATE SERVER p_unmeasured FOREIGN DATA WRAPPER dstack_fdw
  OPTIONS (rpc_url :'u_rpc', guest_agent :'u_socket', kms_root_pubkey :'u_root', kms_contract :'u_kms', chain_id :'chain_id');
CREATE FOREIGN TABLE p_unmeasured (patient_id int8) SERVER p_unmeasured OPTIONS (path :'l_file', owner :'owner1_addr');
SELECT count(*) FROM p_unmeasured;

-- 3. a recipe whose pg_dstack_policy is invalid (max_rows_per_unit 0), or
--    absent, pinned and approved on chain all the same: refused
\! node -e 'const fs=require("fs");const c=JSON.parse(fs.readFileSync(process.argv[1],"utf8"));c.pg_dstack_policy.max_rows_per_unit=0;fs.writeFileSync(process.argv[2],JSON.stringify(c,null,2)+"\n")' "$DSTACK_TEST_TOOLS/demo/app-compose.json" "$DSTACK_TEST_WORK/compose-badpolicy.json"
\! "$DSTACK_TEST_TOOLS/testenv.sh" up "$DSTACK_TEST_WORK/env-badpolicy" --owners 4 --threshold 3 --approve 4 --app-compose "$DSTACK_TEST_WORK/compose-badpolicy.json" >/dev/null
\set b_rpc `. "$DSTACK_TEST_WORK/env-badpolicy/env.sh"; echo "$DSTACK_TEST_RPC"`
\set b_socket `. "$DSTACK_TEST_WORK/env-badpolicy/env.sh"; echo "$DSTACK_TEST_SOCKET"`
\set b_root `. "$DSTACK_TEST_WORK/env-badpolicy/env.sh"; echo "$DSTACK_TEST_KMS_ROOT"`
\set b_kms `. "$DSTACK_TEST_WORK/env-badpolicy/env.sh"; echo "$DSTACK_TEST_KMS_CONTRACT"`
CREATE SERVER p_badpolicy FOREIGN DATA WRAPPER dstack_fdw
  OPTIONS (rpc_url :'b_rpc', guest_agent :'b_socket', kms_root_pubkey :'b_root', kms_contract :'b_kms', chain_id :'chain_id');
CREATE FOREIGN TABLE p_badpolicy (patient_id int8) SERVER p_badpolicy OPTIONS (path :'l_file', owner :'owner1_addr');
SELECT count(*) FROM p_badpolicy;
\! node -e 'const fs=require("fs");const c=JSON.parse(fs.readFileSync(process.argv[1],"utf8"));delete c.pg_dstack_policy;fs.writeFileSync(process.argv[2],JSON.stringify(c,null,2)+"\n")' "$DSTACK_TEST_TOOLS/demo/app-compose.json" "$DSTACK_TEST_WORK/compose-nopolicy.json"
\! "$DSTACK_TEST_TOOLS/testenv.sh" up "$DSTACK_TEST_WORK/env-nopolicy" --owners 4 --threshold 3 --approve 4 --app-compose "$DSTACK_TEST_WORK/compose-nopolicy.json" >/dev/null
\set n_rpc `. "$DSTACK_TEST_WORK/env-nopolicy/env.sh"; echo "$DSTACK_TEST_RPC"`
\set n_socket `. "$DSTACK_TEST_WORK/env-nopolicy/env.sh"; echo "$DSTACK_TEST_SOCKET"`
\set n_root `. "$DSTACK_TEST_WORK/env-nopolicy/env.sh"; echo "$DSTACK_TEST_KMS_ROOT"`
\set n_kms `. "$DSTACK_TEST_WORK/env-nopolicy/env.sh"; echo "$DSTACK_TEST_KMS_CONTRACT"`
CREATE SERVER p_nopolicy FOREIGN DATA WRAPPER dstack_fdw
  OPTIONS (rpc_url :'n_rpc', guest_agent :'n_socket', kms_root_pubkey :'n_root', kms_contract :'n_kms', chain_id :'chain_id');
CREATE FOREIGN TABLE p_nopolicy (patient_id int8) SERVER p_nopolicy OPTIONS (path :'l_file', owner :'owner1_addr');
SELECT count(*) FROM p_nopolicy;

-- 4. a recipe with another valid policy (epsilon 2.5, groups of 5, unit
--    person_id, 2 rows per unit), deployed with the same policy: mounted
\! node -e 'const fs=require("fs");const c=JSON.parse(fs.readFileSync(process.argv[1],"utf8"));Object.assign(c.pg_dstack_policy,{epsilon_total:"2.5",min_group_size:5,privacy_unit:"person_id",max_rows_per_unit:2});fs.writeFileSync(process.argv[2],JSON.stringify(c,null,2)+"\n")' "$DSTACK_TEST_TOOLS/demo/app-compose.json" "$DSTACK_TEST_WORK/compose-person.json"
\! "$DSTACK_TEST_TOOLS/testenv.sh" up "$DSTACK_TEST_WORK/env-person" --owners 4 --threshold 3 --approve 4 --app-compose "$DSTACK_TEST_WORK/compose-person.json" >/dev/null
\set c_env :work '/env-person'
\set c_rpc `. "$DSTACK_TEST_WORK/env-person/env.sh"; echo "$DSTACK_TEST_RPC"`
\set c_socket `. "$DSTACK_TEST_WORK/env-person/env.sh"; echo "$DSTACK_TEST_SOCKET"`
\set c_root `. "$DSTACK_TEST_WORK/env-person/env.sh"; echo "$DSTACK_TEST_KMS_ROOT"`
\set c_kms `. "$DSTACK_TEST_WORK/env-person/env.sh"; echo "$DSTACK_TEST_KMS_CONTRACT"`
\set c_compose_hash `. "$DSTACK_TEST_WORK/env-person/env.sh"; echo "$DSTACK_TEST_COMPOSE_HASH"`
\set c_r1_pub `. "$DSTACK_TEST_WORK/env-person/env.sh"; echo "$DSTACK_TEST_RECIPIENT1_PUB"`
\set c_r1_chain `. "$DSTACK_TEST_WORK/env-person/env.sh"; echo "$DSTACK_TEST_RECIPIENT1_CHAIN"`
\set c_owner1_key :c_env '/owner1.key'
\set c_file :pdir '/person_cohort.dseal'
\! . "$DSTACK_TEST_WORK/env-person/env.sh" && "$DSTACK_TEST_TOOLS/../node_modules/.bin/cast" call "$DSTACK_TEST_APP_ID" 'policy()(uint64,uint32,string,string)' --rpc-url "$DSTACK_TEST_RPC" | paste -sd ' '
SET dstack_seal.kms_root_pubkey = :'c_root';
SET dstack_seal.compose_hash = :'c_compose_hash';
SET dstack_seal.owner_key_file = :'c_owner1_key';
SET dstack_seal.recipient_key = :'c_r1_pub';
SET dstack_seal.recipient_key_chain = :'c_r1_chain';
SELECT (dstack_seal('p_cohort', NULL, :'c_file'))->>'row_count' AS sealed;
\! . "$DSTACK_TEST_WORK/env-person/env.sh" && "$DSTACK_TEST_TOOLS/register-dataset.sh" "$DSTACK_TEST_OUT/policy/person_cohort.dseal" "$DSTACK_TEST_WORK/env-person/owner1.key"
CREATE SERVER p_person FOREIGN DATA WRAPPER dstack_fdw
  OPTIONS (rpc_url :'c_rpc', guest_agent :'c_socket', kms_root_pubkey :'c_root', kms_contract :'c_kms', chain_id :'chain_id');
CREATE FOREIGN TABLE p_person (person_id int8, age int4) SERVER p_person OPTIONS (path :'c_file', owner :'owner1_addr');
SELECT count(*), sum(age) FROM p_person;
-- the policy's 2 rows per unit bound each table's contributions and multiply
-- the charge: a join of two tables is charged 4 times its epsilon
CREATE TEMP TABLE p_saved_budget AS SELECT * FROM dstack_budget;
CREATE TEMP TABLE p_saved_receipts AS SELECT * FROM dstack_receipts;
CREATE TEMP TABLE p_saved_runs AS SELECT * FROM dstack_runs;
SET dstack_fdw.output_guard = on;
SELECT r #> '{body,contribution}' AS contribution, r #>> '{body,epsilon,charged}' AS charged,
       r #> '{body,policy}' AS policy
  FROM dstack_run($$SELECT dp_count(a.person_id, 0.025) FROM p_person a JOIN p_person b USING (person_id)$$) r;
SET dstack_fdw.output_guard = off;
DELETE FROM dstack_receipts;
DELETE FROM dstack_budget;
DELETE FROM dstack_runs;
INSERT INTO dstack_budget SELECT * FROM p_saved_budget;
INSERT INTO dstack_receipts SELECT * FROM p_saved_receipts;
INSERT INTO dstack_runs SELECT * FROM p_saved_runs;
SELECT setval('dstack_runs_id_seq', coalesce(max(id), 0) + 1, false) > 0 AS run_ids_rewound FROM dstack_runs;

DROP FUNCTION p_try(text);
