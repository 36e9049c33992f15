-- The output guard: a query over sealed tables may return only DP aggregates
-- and their group keys, through dstack_run().  Every refusal names its rule
-- and comes before anything runs (no guest agent or chain call is made).
\i sql/include/fdw_env.psql
\set VERBOSITY default
SET dstack_fdw.output_guard = on;
SET dstack_seal.rows_per_group = 500;
CREATE TABLE g_cohort AS
  SELECT g::int8 AS patient_id, g % 90 AS age, (g * 7) % 120 + 0.5 AS egfr, 'N18.' || g % 5 AS dx
  FROM generate_series(1, 2000) g;
\set gpath :out '/g_cohort.dseal'
SELECT (dstack_seal('g_cohort', NULL, :'gpath'))->>'row_count' AS sealed;
CREATE SERVER g_server FOREIGN DATA WRAPPER dstack_fdw
  OPTIONS (rpc_url :'rpc', guest_agent :'socket', kms_root_pubkey :'kms_root');
CREATE FOREIGN TABLE g (patient_id int8, age int4, egfr numeric, dx text)
  SERVER g_server OPTIONS (path :'gpath', owner :'owner1_addr');

-- R4: rows, columns and exact aggregates never leave
SELECT * FROM g;
SELECT patient_id FROM g WHERE age > 80;
SELECT count(*) FROM g;
SELECT sum(age), dp_count(patient_id, 0.1) FROM g;
SELECT dx FROM g GROUP BY dx;
SELECT dx, dp_count(patient_id, 0.1) + 1 FROM g GROUP BY dx;
SELECT dx, dp_count(patient_id, 0.1) FROM g GROUP BY ROLLUP (dx);
-- R3: even a DP aggregate leaves only through dstack_run() (budget, receipt)
SELECT dp_count(patient_id, 0.1) FROM g;
-- R2: statements that send rows elsewhere
COPY (SELECT patient_id FROM g) TO STDOUT;
CREATE TABLE stolen AS SELECT * FROM g;
SELECT * INTO stolen FROM g;
CREATE MATERIALIZED VIEW mv AS SELECT dx, dp_count(patient_id, 0.1) FROM g GROUP BY dx;
CREATE TABLE sink (id int8);
INSERT INTO sink SELECT patient_id FROM g;
EXPLAIN ANALYZE SELECT dp_count(patient_id, 0.1) FROM g;
SELECT patient_id FROM g FOR UPDATE;
SELECT dp_count(patient_id, 0.1) FROM g UNION ALL SELECT 1;
SELECT dp_count(patient_id, 0.1) OVER () FROM g;
-- R1: sealed tables behind views, subqueries, CTEs and sub-selects
CREATE VIEW innocent AS SELECT dx, dp_count(patient_id, 0.1) AS n FROM g GROUP BY dx;
SELECT * FROM innocent;
SELECT dp_count(x, 0.1) FROM (SELECT patient_id AS x FROM g) s;
WITH c AS (SELECT patient_id FROM g) SELECT dp_count(patient_id, 0.1) FROM c;
SELECT dp_count(patient_id, 0.1) FROM g WHERE age IN (SELECT age FROM g WHERE patient_id = 42);
-- R5: functions that could reveal a value through an error or a side effect
CREATE FUNCTION leak(v int4) RETURNS bool LANGUAGE plpgsql AS $$ BEGIN RAISE NOTICE 'age %', v; RETURN true; END $$;
SELECT dp_count(patient_id, 0.1) FROM g WHERE leak(age);
SELECT dp_count(patient_id, 0.1) FROM g WHERE 1 / (age - 42) = 0;
SELECT dp_count(patient_id, 0.1) FROM g WHERE dx::int > 3;
SELECT dp_count(patient_id, 0.1) FROM g WHERE pg_sleep(age) IS NULL;
-- (a volatile function that does not touch sealed values, e.g. random(), is harmless)
SELECT dp_sum(egfr::float8, 0, 150, 0.1) FROM g;
-- R6: epsilon must be a positive constant
SELECT dp_count(patient_id, age::float8) FROM g;
SELECT dp_count(patient_id, 0) FROM g;

-- allowed shapes pass the guard (they stop at R3 here, outside dstack_run)
SELECT dx, dp_count(patient_id, 0.1) FROM g WHERE age > 40 AND dx <> 'N18.0' GROUP BY dx ORDER BY dx;
SELECT dp_count(patient_id, 0.1), dp_quantile(age::float8, 0.5, 0, 120, 0.1) FROM g;
-- a plain EXPLAIN shows the plan, never a value
EXPLAIN (COSTS OFF) SELECT patient_id FROM g;

-- the guard cannot be switched off by a non-superuser
CREATE ROLE guard_analyst;
GRANT SELECT ON g TO guard_analyst;
SET ROLE guard_analyst;
SET dstack_fdw.output_guard = off;
SELECT * FROM g;
RESET ROLE;
REVOKE SELECT ON g FROM guard_analyst;
DROP ROLE guard_analyst;
