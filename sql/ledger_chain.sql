-- The ledger of record on chain (dstack_fdw/chain_ledger.c, ledger 'chain'):
-- dstack_run() reads only dataset versions their owners registered and that
-- are current, and charges the consortium contract before it reads a row.
-- Two databases of one consortium draw on one budget per dataset version;
-- an older (superseded) file and an unregistered one are refused; the public
-- audit (dstack-verify --ledger) totals the spend from the chain alone.
\i sql/include/fdw_env.psql
\set VERBOSITY default
\set first_db :DBNAME
\setenv PGDATABASE :DBNAME
SET dstack_fdw.output_guard = on;
SET dstack_seal.rows_per_group = 500;
CREATE TABLE lc_cohort AS SELECT g::int8 AS patient_id, g % 90 AS age FROM generate_series(1, 1000) g;
\set v1 :out '/lc_v1.dseal'
\set v2 :out '/lc_v2.dseal'
\set unreg :out '/lc_unregistered.dseal'
SELECT (dstack_seal('lc_cohort', NULL, :'v1'))->>'row_count' AS v1,
       (dstack_seal('lc_cohort', NULL, :'v2'))->>'row_count' AS v2,
       (dstack_seal('lc_cohort', NULL, :'unreg'))->>'row_count' AS unregistered;
-- the owner registers version 1 with a budget of 0.3 (the policy's total is 1.5)
\! REGISTER_BUDGET_MICRO=300000 "$DSTACK_TEST_TOOLS/register-dataset.sh" "$DSTACK_TEST_OUT/lc_v1.dseal" "$DSTACK_TEST_DIR/owner1.key"
CREATE SERVER lc FOREIGN DATA WRAPPER dstack_fdw
  OPTIONS (rpc_url :'rpc', guest_agent :'socket', kms_root_pubkey :'kms_root',
          kms_contract :'kms_contract', chain_id :'chain_id');
CREATE FOREIGN TABLE lc_a (patient_id int8, age int4) SERVER lc OPTIONS (path :'v1', owner :'owner1_addr');
CREATE FOREIGN TABLE lc_u (patient_id int8, age int4) SERVER lc OPTIONS (path :'unreg', owner :'owner1_addr');
-- (plain tables: the suite changes database and back)
\set QUIET on
CREATE TABLE lc_saved_budget AS SELECT * FROM dstack_budget;
CREATE TABLE lc_saved_receipts AS SELECT * FROM dstack_receipts;
CREATE TABLE lc_saved_runs AS SELECT * FROM dstack_runs;
-- whatever earlier suites spent of the local budget, or ran, does not count here
DELETE FROM dstack_budget;
DELETE FROM dstack_runs;
\o /dev/null
SELECT setval('dstack_runs_id_seq', 1, false);
\o
\set QUIET off

-- an unregistered file is refused before anything is charged or read (its
-- detail names the hashes, which differ at every run: terse here)
\set VERBOSITY terse
SELECT dstack_run($$SELECT dp_count(patient_id, 0.1) FROM lc_u$$);
\set VERBOSITY default
SELECT count(*) AS runs_after_refusal FROM dstack_runs;

-- a registered one is charged on chain first; the receipt cites the charge
SELECT r #>> '{body,charge,ledger}' AS ledger, (r #>> '{body,charge,index}')::int >= 0 AS has_charge_index,
       length(r #>> '{body,charge,tx}') AS tx_hex_len, r #>> '{body,charge,query_sha256}' = encode(sha256(convert_to(r #>> '{body,query}', 'UTF8')), 'hex') AS query_hash_matches,
       r #>> '{body,epsilon,charged}' AS charged
  FROM dstack_run($$SELECT dp_count(patient_id, 0.2) FROM lc_a$$) r;
\! cd "$DSTACK_TEST_TOOLS/.." && contracts/scripts/consortium.sh ledger --rpc "$DSTACK_TEST_RPC" --app "$DSTACK_TEST_APP_ID" | node -e 'const l=JSON.parse(require("fs").readFileSync(0));const v=(l.datasets||l.versions||[]).filter(d=>BigInt(d.budgetMicro??d.budget_micro)===300000n);console.log("on chain: version 1 spent", v.map(d=>String(d.spentMicro??d.spent_micro)).join(","), "of 300000")'

-- a second database of the same consortium: its local ledger is empty, the
-- chain is not; 0.2 more would take version 1 past its 0.3
CREATE DATABASE lc_second;
\c lc_second
SET client_min_messages = warning;
CREATE EXTENSION dstack_fdw;
RESET client_min_messages;
\set VERBOSITY terse
SET dstack_fdw.output_guard = on;
SET gpu_scan.enabled = off;
CREATE SERVER lc FOREIGN DATA WRAPPER dstack_fdw
  OPTIONS (rpc_url :'rpc', guest_agent :'socket', kms_root_pubkey :'kms_root',
          kms_contract :'kms_contract', chain_id :'chain_id');
CREATE FOREIGN TABLE lc_a (patient_id int8, age int4) SERVER lc OPTIONS (path :'v1', owner :'owner1_addr');
SELECT count(*) AS local_budget_rows FROM dstack_budget;
SELECT dstack_run($$SELECT dp_count(patient_id, 0.2) FROM lc_a$$) IS NOT NULL AS answered;
-- the refusal is recorded here as a failed run; what is left (0.1) is answered
SELECT status, epsilon_micro FROM dstack_runs ORDER BY id;
SELECT r #>> '{body,charge,ledger}' AS ledger FROM dstack_run($$SELECT dp_count(patient_id, 0.1) FROM lc_a$$) r;
SELECT dstack_run($$SELECT dp_count(patient_id, 0.000001) FROM lc_a$$) IS NOT NULL AS answered;
\set VERBOSITY default
\c :first_db
DROP DATABASE lc_second;
SET dstack_fdw.output_guard = on;
SET gpu_scan.enabled = off;

-- the owner supersedes version 1 by version 2: the older file is refused,
-- naming both hashes; the new version has its own budget
\! "$DSTACK_TEST_TOOLS/supersede-dataset.sh" "$DSTACK_TEST_OUT/lc_v1.dseal" "$DSTACK_TEST_OUT/lc_v2.dseal" "$DSTACK_TEST_DIR/owner1.key" && echo "version 2 supersedes version 1"
\set VERBOSITY terse
SELECT dstack_run($$SELECT dp_count(patient_id, 0.01) FROM lc_a$$);
\set VERBOSITY default
\! h1=$(node "$DSTACK_TEST_TOOLS/dseal-id.mjs" "$DSTACK_TEST_OUT/lc_v1.dseal" | cut -d' ' -f2); h2=$(node "$DSTACK_TEST_TOOLS/dseal-id.mjs" "$DSTACK_TEST_OUT/lc_v2.dseal" | cut -d' ' -f2); psql -X -d "$PGDATABASE" -c "SET dstack_fdw.output_guard = on" -c "SELECT dstack_run('SELECT dp_count(patient_id, 0.01) FROM lc_a')" 2>&1 | grep -q "$h1.*$h2" && echo "the refusal names the old manifest hash and the current one"
CREATE FOREIGN TABLE lc_b (patient_id int8, age int4) SERVER lc OPTIONS (path :'v2', owner :'owner1_addr');
SELECT r #>> '{body,charge,ledger}' AS ledger, r #>> '{body,epsilon,charged}' AS charged
  FROM dstack_run($$SELECT dp_count(patient_id, 0.25) FROM lc_b$$) r;

-- a host that swaps the file while the run charges the ledger: the run was
-- checked and charged for version 2, the host puts the superseded version 1 in
-- its place just before the charge is sent (tools/lying-rpc.mjs --on-send runs
-- the swap on the node the CVM sends the charge to), so the scan opens another
-- manifest than the one recorded and charged: the run fails, nothing of version
-- 1 is read or answered
\! cp "$DSTACK_TEST_OUT/lc_v2.dseal" "$DSTACK_TEST_OUT/lc_swap.dseal" && chmod 644 "$DSTACK_TEST_OUT/lc_swap.dseal"
\! rm -f "$DSTACK_TEST_OUT/swapper.port"; (node "$DSTACK_TEST_TOOLS/lying-rpc.mjs" --upstream "$DSTACK_TEST_RPC" --on-send "cp '$DSTACK_TEST_OUT/lc_v1.dseal' '$DSTACK_TEST_OUT/lc_swap.dseal'" --port-file "$DSTACK_TEST_OUT/swapper.port" >/dev/null 2>"$DSTACK_TEST_OUT/swapper.log" & echo $! > "$DSTACK_TEST_OUT/swapper.pid"); for i in $(seq 100); do [ -s "$DSTACK_TEST_OUT/swapper.port" ] && break; sleep 0.1; done
\set swap_rpc `echo "http://127.0.0.1:$(cat "$DSTACK_TEST_OUT/swapper.port")"`
\set swap_path :out '/lc_swap.dseal'
CREATE SERVER lc_swapper FOREIGN DATA WRAPPER dstack_fdw
  OPTIONS (rpc_url :'swap_rpc', guest_agent :'socket', kms_root_pubkey :'kms_root',
          kms_contract :'kms_contract', chain_id :'chain_id');
CREATE FOREIGN TABLE lc_s (patient_id int8, age int4) SERVER lc_swapper OPTIONS (path :'swap_path', owner :'owner1_addr');
\set VERBOSITY terse
SELECT dstack_run($$SELECT dp_count(patient_id, 0.01) FROM lc_s$$);
\set VERBOSITY default
SELECT status, epsilon_micro FROM dstack_runs ORDER BY id DESC LIMIT 1;
\! grep -c "ran --on-send" "$DSTACK_TEST_OUT/swapper.log"; kill "$(cat "$DSTACK_TEST_OUT/swapper.pid")"
DROP SERVER lc_swapper CASCADE;

-- the public audit, from the chain alone: every charge, per version totals, budgets
\! "$DSTACK_TEST_TOOLS/dstack-verify/dstack-verify" --ledger --quiet --rpc "$DSTACK_TEST_RPC" --app "$DSTACK_TEST_APP_ID" && echo "ledger audit: every version within its budget, totals consistent"

-- put the local ledger back
\set QUIET on
DELETE FROM dstack_receipts;
DELETE FROM dstack_budget;
DELETE FROM dstack_runs;
INSERT INTO dstack_budget SELECT * FROM lc_saved_budget;
INSERT INTO dstack_receipts SELECT * FROM lc_saved_receipts;
INSERT INTO dstack_runs SELECT * FROM lc_saved_runs;
\set QUIET off
SELECT setval('dstack_runs_id_seq', coalesce(max(id), 0) + 1, false) > 0 AS run_ids_rewound FROM dstack_runs;
DROP SERVER lc CASCADE;
DROP TABLE lc_cohort, lc_saved_budget, lc_saved_receipts, lc_saved_runs;
