-- The output boundary from the client's side (tools/boundary-libpq): a
-- pipeline whose next statement fails after the answer was sent, a
-- dstack_run() second in a pipeline, dstack_run(); SELECT 1/0 in one simple
-- query, two calls in one statement, and a client that hangs up at once.
-- Whatever the client does, every answer computed is charged and recorded in
-- its own committed transaction.  Run as an analyst with SELECT only.
\i sql/include/fdw_env.psql
SET dstack_fdw.output_guard = on;
SET dstack_seal.rows_per_group = 500;
CREATE TABLE bl_cohort AS SELECT g::int8 AS patient_id, g % 90 AS age FROM generate_series(1, 1000) g;
\set blpath :out '/bl_cohort.dseal'
SELECT (dstack_seal('bl_cohort', NULL, :'blpath'))->>'row_count' AS sealed;
\! "$DSTACK_TEST_TOOLS/register-dataset.sh" "$DSTACK_TEST_OUT/bl_cohort.dseal" "$DSTACK_TEST_DIR/owner1.key"
CREATE SERVER bl_server FOREIGN DATA WRAPPER dstack_fdw
  OPTIONS (rpc_url :'rpc', guest_agent :'socket', kms_root_pubkey :'kms_root', kms_contract :'kms_contract', chain_id :'chain_id');
CREATE FOREIGN TABLE bl (patient_id int8, age int4) SERVER bl_server OPTIONS (path :'blpath', owner :'owner1_addr');
\set QUIET on
CREATE TEMP TABLE bl_saved_budget AS SELECT * FROM dstack_budget;
CREATE TEMP TABLE bl_saved_receipts AS SELECT * FROM dstack_receipts;
CREATE TEMP TABLE bl_saved_runs AS SELECT * FROM dstack_runs;
-- whatever earlier suites spent of the local budget, or ran, does not count here
DELETE FROM dstack_budget;
DELETE FROM dstack_runs;
\o /dev/null
SELECT setval('dstack_runs_id_seq', 1, false);
\o
\set QUIET off
CREATE ROLE bl_analyst LOGIN;
GRANT SELECT ON bl TO bl_analyst;
\set blconn 'host=' :HOST ' port=' :PORT ' dbname=' :DBNAME ' user=bl_analyst'
\setenv BL_CONN :blconn
\! "$DSTACK_TEST_TOOLS/boundary-libpq/boundary-libpq" "$BL_CONN" public.bl
-- what the ledger holds: every run answered or charged, none lost
SELECT status, count(*), sum(epsilon_micro) AS epsilon_micro FROM dstack_runs
 GROUP BY status ORDER BY status;
-- put the ledger back
\set QUIET on
DELETE FROM dstack_receipts;
DELETE FROM dstack_budget;
DELETE FROM dstack_runs;
INSERT INTO dstack_budget SELECT * FROM bl_saved_budget;
INSERT INTO dstack_receipts SELECT * FROM bl_saved_receipts;
INSERT INTO dstack_runs SELECT * FROM bl_saved_runs;
\set QUIET off
SELECT setval('dstack_runs_id_seq', coalesce(max(id), 0) + 1, false) > 0 AS run_ids_rewound FROM dstack_runs;
DROP SERVER bl_server CASCADE;
DROP TABLE bl_cohort;
DROP ROLE bl_analyst;
