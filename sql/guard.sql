-- The output guard's hooks (dstack_fdw/guard.c): the early refusal in the
-- planner, and the boundary at execution, which holds whoever planned the
-- plan -- a superuser too, and a plan made while the guard was off.
-- The analyst's attacks are in boundary.sql; dstack_run()'s rules there and
-- in receipts.sql.
\i sql/include/fdw_env.psql
\set VERBOSITY default
SET dstack_seal.rows_per_group = 500;
CREATE TABLE g_cohort AS
  SELECT g::int8 AS patient_id, g % 90 AS age, (g * 7) % 120 + 0.5 AS egfr, 'N18.' || g % 5 AS dx
  FROM generate_series(1, 2000) g;
\set gpath :out '/g_cohort.dseal'
SELECT (dstack_seal('g_cohort', NULL, :'gpath'))->>'row_count' AS sealed;
CREATE SERVER g_server FOREIGN DATA WRAPPER dstack_fdw
  OPTIONS (rpc_url :'rpc', guest_agent :'socket', kms_root_pubkey :'kms_root', kms_contract :'kms_contract', chain_id :'chain_id');
CREATE FOREIGN TABLE g (patient_id int8, age int4, egfr numeric, dx text)
  SERVER g_server OPTIONS (path :'gpath', owner :'owner1_addr');

-- plans made while the guard is off (superuser only: tests of the scan itself)
SET dstack_fdw.output_guard = off;
SELECT count(*), count(DISTINCT dx) FROM g;
PREPARE rows_of_g AS SELECT patient_id, dx FROM g WHERE age = 7;
EXECUTE rows_of_g;
SET gpu_scan.enabled = on;
PREPARE agg_of_g AS SELECT dx, count(*) FROM g GROUP BY dx;
EXPLAIN (COSTS OFF) EXECUTE agg_of_g;
SET gpu_scan.enabled = off;

-- with the guard on, the same cached plans read nothing: the boundary is at
-- execution, for the foreign scan and for gpu_scan's batch interface alike
SET dstack_fdw.output_guard = on;
EXECUTE rows_of_g;
EXECUTE agg_of_g;
-- and the planner refuses early, whatever the statement
SELECT * FROM g;
SELECT count(*) FROM g;
SELECT dp_count(patient_id, 0.1) FROM g;
COPY (SELECT patient_id FROM g) TO STDOUT;
CREATE TABLE stolen AS SELECT * FROM g;
WITH c AS (SELECT patient_id FROM g) SELECT count(*) FROM c;
SELECT 1 WHERE EXISTS (SELECT 1 FROM g WHERE patient_id = 42);
CREATE VIEW innocent AS SELECT dx FROM g;
SELECT * FROM innocent;
EXPLAIN ANALYZE SELECT dp_count(patient_id, 0.1) FROM g;
-- a plain EXPLAIN shows the plan, never a value
EXPLAIN (COSTS OFF) SELECT patient_id FROM g;
-- a cursor is planned when it is declared
BEGIN;
DECLARE cur CURSOR FOR SELECT * FROM g;
ROLLBACK;

-- ANALYZE would read rows outside dstack_run() and publish them in pg_stats:
-- never under the guard, even with allow_analyze on
SET dstack_fdw.allow_analyze = on;
ANALYZE g;
SELECT count(*) AS stats_rows FROM pg_stats WHERE tablename = 'g';
RESET dstack_fdw.allow_analyze;

-- the guard cannot be switched off by a non-superuser
CREATE ROLE guard_analyst;
GRANT SELECT ON g TO guard_analyst;
SET ROLE guard_analyst;
SET dstack_fdw.output_guard = off;
SELECT * FROM g;
RESET ROLE;
REVOKE SELECT ON g FROM guard_analyst;
DROP ROLE guard_analyst;
DROP VIEW innocent;
DEALLOCATE rows_of_g;
DEALLOCATE agg_of_g;
