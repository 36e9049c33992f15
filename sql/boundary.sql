-- The output boundary, attacked as an analyst would: a role with SELECT on
-- the sealed foreign tables and CREATE in public, nothing else (no USAGE on
-- the server).  Every attempt is refused, or answered with DP noise and
-- charged in full.  Classes: plans the guard never saw, code run per row,
-- answers leaving before the charge, release rules, name capture and
-- privilege escalation.  See docs/output-guard.md.
\i sql/include/fdw_env.psql
\set VERBOSITY default
SET dstack_fdw.output_guard = on;
SET dstack_seal.rows_per_group = 500;
-- the victim: 2000 patients, one row each
CREATE TABLE b_ehr AS
  SELECT g::int8 AS patient_id, (g % 90)::int4 AS age, ((g * 7) % 120)::float8 + 0.5 AS egfr,
         'N18.' || g % 5 AS dx
  FROM generate_series(1, 2000) g;
\set bpath :out '/b_ehr.dseal'
SELECT (dstack_seal('b_ehr', NULL, :'bpath'))->>'row_count' AS sealed;
-- its owner registers the version on the consortium contract (ledger 'chain')
\! "$DSTACK_TEST_TOOLS/register-dataset.sh" "$DSTACK_TEST_OUT/b_ehr.dseal" "$DSTACK_TEST_DIR/owner1.key"
CREATE SERVER b_server FOREIGN DATA WRAPPER dstack_fdw
  OPTIONS (rpc_url :'rpc', guest_agent :'socket', kms_root_pubkey :'kms_root', kms_contract :'kms_contract', chain_id :'chain_id');
CREATE FOREIGN TABLE ehr (patient_id int8, age int4, egfr float8, dx text)
  SERVER b_server OPTIONS (path :'bpath', owner :'owner1_addr');
-- a copy whose chunk of row group 1, column 3 (dx) is flipped after sealing (signature intact)
\! cp -p "$DSTACK_TEST_OUT/b_ehr.dseal" "$DSTACK_TEST_OUT/b_flip.dseal" && cd "$DSTACK_TEST_OUT" && node "$DSTACK_TEST_TOOLS/dseal-tamper.mjs" b_flip.dseal flip-chunk 1 3 >/dev/null
\set fpath :out '/b_flip.dseal'
CREATE FOREIGN TABLE ehr_flipped (patient_id int8, age int4, egfr float8, dx text)
  SERVER b_server OPTIONS (path :'fpath', owner :'owner1_addr');
-- an operator's mistake an analyst would love: a domain that checks values
CREATE DOMAIN dx_code AS text CHECK (VALUE LIKE 'N18.%' AND VALUE <> 'N18.3');
CREATE FOREIGN TABLE ehr_domain (patient_id int8, dx dx_code)
  SERVER b_server OPTIONS (path :'bpath', owner :'owner1_addr');
-- the ledger as it was: restored at the end, so later suites see their budget
\set QUIET on
CREATE TEMP TABLE b_saved_budget AS SELECT * FROM dstack_budget;
CREATE TEMP TABLE b_saved_receipts AS SELECT * FROM dstack_receipts;
CREATE TEMP TABLE b_saved_runs AS SELECT * FROM dstack_runs;
-- whatever earlier suites spent of the local budget, or ran, does not count here
DELETE FROM dstack_budget;
DELETE FROM dstack_runs;
\o /dev/null
SELECT setval('dstack_runs_id_seq', 1, false);
\o
\set QUIET off
GRANT SELECT ON b_saved_runs TO PUBLIC;
CREATE ROLE b_analyst;
GRANT SELECT ON ehr, ehr_flipped, ehr_domain TO b_analyst;
GRANT CREATE ON SCHEMA public TO b_analyst;
CREATE TABLE b_sink (v text);
GRANT ALL ON b_sink TO b_analyst;
-- the operator's group limit of GpuPreAgg, below the victim's 2000 rows: a run
-- grouping by the unit must not fail on it (whether it failed would say how
-- many groups the rows hold); dstack_run() plans HashAggregate instead
SET gpu_scan.max_groups = 1000;
-- as deployed: gpu_scan's custom scans on (their host build without a GPU)
SET gpu_scan.enabled = on;
SET ROLE b_analyst;

-- ==== 1. plans the boundary never checked ====================================
SELECT * FROM ehr LIMIT 1;
SELECT count(*) FROM ehr;
SELECT dp_count(patient_id, 0.1) FROM ehr;
PREPARE p1 AS SELECT patient_id, dx FROM ehr;
EXPLAIN (COSTS OFF) EXECUTE p1;
EXECUTE p1;
EXPLAIN (COSTS OFF) SELECT * FROM ehr;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT * FROM ehr;
-- plain EXPLAIN cached a generic plan: executing it still reads nothing
PREPARE p2(int) AS SELECT dx FROM ehr WHERE age > $1;
EXPLAIN (COSTS OFF) EXECUTE p2(1);
EXECUTE p2(1);
BEGIN;
DECLARE c1 CURSOR FOR SELECT * FROM ehr;
ROLLBACK;
COPY (SELECT * FROM ehr) TO STDOUT;
CREATE TABLE b_stolen AS SELECT * FROM ehr;
SELECT * INTO b_stolen2 FROM ehr;
INSERT INTO b_sink SELECT dx FROM ehr;
CREATE VIEW b_view AS SELECT * FROM ehr;
SELECT * FROM b_view;
CREATE MATERIALIZED VIEW b_mv AS SELECT dx FROM ehr;
-- functions that read a sealed table: at plan time, at run time, in EXPLAIN
CREATE FUNCTION b_fold() RETURNS bigint IMMUTABLE LANGUAGE sql AS 'SELECT count(*) FROM public.ehr';
SELECT b_fold();
EXPLAIN (COSTS OFF) SELECT b_fold();
CREATE FUNCTION b_plpgsql() RETURNS SETOF text IMMUTABLE LANGUAGE plpgsql AS
  $$ BEGIN RETURN QUERY SELECT dx FROM public.ehr; END $$;
EXPLAIN (COSTS OFF) SELECT b_plpgsql();
SELECT * FROM b_plpgsql() LIMIT 1;
DO $$ DECLARE v text; BEGIN SELECT dx INTO v FROM public.ehr LIMIT 1; RAISE NOTICE 'got %', v; END $$;
CREATE FUNCTION b_dyn() RETURNS text LANGUAGE plpgsql AS
  $$ DECLARE v text; BEGIN EXECUTE 'SELECT dx FROM public.ehr LIMIT 1' INTO v; RETURN v; END $$;
SELECT b_dyn();
-- a function planned and cached inside dstack_run() cannot even be called there
CREATE FUNCTION b_leak(v int4) RETURNS bool LANGUAGE plpgsql AS
  $$ BEGIN INSERT INTO public.b_sink VALUES (v::text); RAISE NOTICE 'age %', v; RETURN true; END $$;
SELECT dstack_run($$SELECT dp_count(patient_id, 0.1) FROM ehr WHERE b_leak(age)$$);
ANALYZE ehr;
SELECT count(*) AS sink_rows FROM b_sink;

-- ==== 2. code that would run per row ==========================================
SELECT dstack_run($$SELECT dp_count(patient_id, 0.1) FROM ehr WHERE CASE WHEN age > 50 THEN b_leak(age) ELSE true END$$);
SELECT dstack_run($$SELECT dp_count(patient_id, 0.1) FROM ehr WHERE age > 50 AND b_leak(age)$$);
SELECT dstack_run($$SELECT dp_count(patient_id, 0.1) FROM ehr WHERE set_config('b.x', dx, false) IS NOT NULL$$);
SELECT dstack_run($$SELECT dp_count(patient_id, 0.1) FROM ehr WHERE pg_sleep(age / 1000.0) IS NOT NULL$$);
SELECT dstack_run($$SELECT dp_count(patient_id, 0.1) FROM ehr WHERE dx::int > 3$$);
SELECT dstack_run($$SELECT dp_count(patient_id, 0.1) FROM ehr WHERE 1 / (age - 42) = 0$$);
SELECT dstack_run($$SELECT dp_count(patient_id, 0.1) FROM ehr WHERE age + 2147483600 > 0$$);
SELECT dstack_run($$SELECT dp_count(patient_id, 0.1) FROM ehr WHERE egfr::numeric > 3$$);
SELECT dstack_run($$SELECT dp_count(patient_id, 0.1) FROM ehr WHERE upper(dx) = 'N18.1'$$);
SELECT dstack_run($$SELECT dp_count(patient_id, 0.1) FROM ehr WHERE dx ~ '^N18\.[0-2]$'$$);
SELECT dstack_run($$SELECT dp_count(patient_id, 0.1) FROM ehr WHERE dx COLLATE "C" > 'N'$$);
SELECT dstack_run($$SELECT dp_count(patient_id, 0.1) FROM ehr WHERE (age, egfr) > (1, 2)$$);
SELECT dstack_run($$SELECT dp_count(patient_id, 0.1) FROM ehr WHERE greatest(age, 3) > 4$$);
SELECT dstack_run($$SELECT dp_count(patient_id, 0.1) FROM ehr WHERE age IN (SELECT age FROM ehr WHERE patient_id = 42)$$);
SELECT dstack_run($$SELECT dp_count(patient_id, 0.1) FROM ehr WHERE EXISTS (SELECT 1)$$);
SELECT dstack_run($$SELECT dp_count(e.patient_id, 0.1) FROM ehr e, LATERAL (SELECT e.age) l$$);
SELECT dstack_run($$SELECT dp_count(patient_id, 0.1) FROM ehr, generate_series(1, 100) g$$);
SELECT dstack_run($$SELECT dp_count(patient_id, 0.1) FROM ehr, (VALUES (1), (2)) v(x)$$);
CREATE TEMP TABLE b_mult AS SELECT g FROM generate_series(1, 100) g;
SELECT dstack_run($$SELECT dp_count(patient_id, 0.1) FROM ehr, b_mult$$);
SELECT dstack_run($$SELECT dp_count(patient_id, 0.1) FROM ehr, b_sink$$);
SELECT dstack_run($$SELECT dp_count(patient_id, 0.1) FROM ehr e LEFT JOIN ehr f USING (patient_id)$$);
SELECT dstack_run($$WITH c AS (SELECT patient_id FROM ehr) SELECT dp_count(patient_id, 0.1) FROM c$$);
SELECT dstack_run($$SELECT dp_count(x, 0.1) FROM (SELECT patient_id AS x FROM ehr) s$$);
SELECT dstack_run($$SELECT dp_count(patient_id, 0.1) OVER () FROM ehr$$);
SELECT dstack_run($$SELECT DISTINCT dx, dp_count(patient_id, 0.1) FROM ehr GROUP BY dx$$);
SELECT dstack_run($$SELECT dx, dp_count(patient_id, 0.1) FROM ehr GROUP BY dx ORDER BY 2$$);
SELECT dstack_run($$SELECT dp_count(patient_id, 0.1) FROM ehr LIMIT 1$$);
SELECT dstack_run($$SELECT dp_count(patient_id, 0.1) FROM ehr UNION ALL SELECT 1$$);
SELECT dstack_run($$SELECT dx, dp_count(patient_id, 0.1) FROM ehr GROUP BY ROLLUP (dx)$$);
SELECT dstack_run($$SELECT dp_count(patient_id, 0.1) FROM ehr TABLESAMPLE SYSTEM (50)$$);
SELECT dstack_run($$SELECT dp_count(ehr, 0.1) FROM ehr$$);
SELECT dstack_run($$SELECT dp_count(ctid, 0.1) FROM ehr$$);
SELECT dstack_run($$SELECT dp_count(patient_id, 0.1), generate_series(1, 3) FROM ehr$$);
SELECT dstack_run($$SELECT dp_count(patient_id, 0.1) FROM ehr FOR UPDATE$$);
SELECT dstack_run($$SELECT dp_count(patient_id, 0.1) FROM ehr WHERE dx = $1$$);
-- an error PostgreSQL raises only for values that match the pattern's start
-- (LIKE's trailing escape), a pattern taken from a column, LIKE ANY, too long
SELECT dstack_run($$SELECT dp_count(patient_id, 0.1) FROM ehr WHERE age > 50 AND dx LIKE 'N18.1\'$$);
SELECT dstack_run($$SELECT dp_count(patient_id, 0.1) FROM ehr WHERE dx NOT LIKE 'N18\'$$);
SELECT dstack_run($$SELECT dp_count(patient_id, 0.1) FROM ehr WHERE dx LIKE ANY (ARRAY['Z%', 'N18\'])$$);
SELECT dstack_run($$SELECT dp_count(patient_id, 0.1) FROM ehr WHERE dx LIKE ANY ('{Z%,N18\\}')$$);
SELECT dstack_run($$SELECT dp_count(e.patient_id, 0.1) FROM ehr e JOIN ehr f USING (patient_id) WHERE e.dx LIKE f.dx$$);
SELECT dstack_run(format($$SELECT dp_count(patient_id, 0.1) FROM ehr WHERE dx LIKE '%s'$$, repeat('%N', 600)));
-- ... an error inside the validated plan is one fixed error, the run failed, the charge stays
SELECT dstack_run($$SELECT dp_count(patient_id, 0.01) FROM ehr_flipped WHERE dx = 'N18.1'$$);
-- ... and a damaged chunk fails every run that could read it, whatever the rows:
-- a hash join whose outer side matches nothing never reads its inner side, so
-- without the check of every chunk before the first row, failed-or-answered
-- would tell whether the filter matched
SELECT dstack_run($$SELECT dp_count(e.patient_id, 0.01) FROM ehr_flipped e JOIN ehr_flipped f USING (patient_id) WHERE e.age > 1000 AND f.dx = 'N18.1'$$);
SELECT dstack_run($$SELECT dp_count(e.patient_id, 0.01) FROM ehr_flipped e JOIN ehr_flipped f USING (patient_id) WHERE e.age > 0 AND f.dx = 'N18.1'$$);
SELECT dstack_run($$SELECT dp_count(e.patient_id, 0.01) FROM ehr_flipped e JOIN ehr_flipped f USING (patient_id) WHERE f.age > 1000 AND e.dx = 'N18.1'$$);
SELECT dstack_run($$SELECT dp_count(e.patient_id, 0.01) FROM ehr_flipped e JOIN ehr_flipped f USING (patient_id) WHERE f.age > 0 AND e.dx = 'N18.1'$$);
-- (a column of the damaged file that no run reads is never reached)
SELECT dstack_run($$SELECT dp_count(patient_id, 0.01) FROM ehr_flipped WHERE age > 1000$$) IS NOT NULL AS answered;
SELECT status, epsilon_micro, error_class FROM dstack_runs
 ORDER BY id;

-- ==== 3. the answer before the charge ==========================================
BEGIN;
SELECT dstack_run($$SELECT dp_count(patient_id, 0.1) FROM ehr$$);
ROLLBACK;
BEGIN;
SAVEPOINT s;
SELECT dstack_run($$SELECT dp_count(patient_id, 0.1) FROM ehr$$);
ROLLBACK;
DO $$ DECLARE r jsonb; BEGIN r := dstack_run('SELECT dp_count(patient_id, 0.1) FROM ehr'); RAISE EXCEPTION '%', r; END $$;
CREATE FUNCTION b_wrap() RETURNS jsonb LANGUAGE plpgsql AS
  $$ BEGIN RETURN dstack_run('SELECT dp_count(patient_id, 0.1) FROM ehr'); END $$;
SELECT b_wrap();
CREATE FUNCTION b_wrap_sql() RETURNS jsonb IMMUTABLE LANGUAGE sql AS
  $$ SELECT dstack_run('SELECT dp_count(patient_id, 0.1) FROM ehr') $$;
SELECT b_wrap_sql();
EXPLAIN (COSTS OFF) SELECT dstack_run('SELECT dp_count(patient_id, 0.1) FROM ehr');
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT dstack_run('SELECT dp_count(patient_id, 0.1) FROM ehr');
COPY (SELECT dstack_run('SELECT dp_count(patient_id, 0.1) FROM ehr')) TO STDOUT;
CREATE TABLE b_r AS SELECT dstack_run('SELECT dp_count(patient_id, 0.1) FROM ehr');
PREPARE p3 AS SELECT dstack_run($$SELECT dp_count(patient_id, 0.1) FROM ehr$$);
SELECT dstack_run($$SELECT dstack_run('x')$$);
-- two calls in one statement: the second is refused and nothing reaches the client;
-- the first was charged and recorded as it started
SELECT dstack_run($$SELECT dp_count(patient_id, 0.01) FROM ehr$$) FROM generate_series(1, 2);
SELECT dstack_run($$SELECT dp_count(patient_id, 0.01) FROM ehr$$), dstack_run($$SELECT dp_count(patient_id, 0.01) FROM ehr$$);
-- the statement failed after the answer was computed: the charges are committed all the same
SELECT status, epsilon_micro FROM dstack_runs
 ORDER BY id;
-- a valid call answers; so does one in FROM, post-processed in the same statement
-- (with a LIKE pattern that escapes a backslash, well formed, and a numeric literal
-- cast to float8 when the plan is made: both allowed)
SELECT r #> '{body,result,columns}' AS columns, (r #>> '{body,result,rows,0,0}')::int BETWEEN 1700 AND 2300 AS near,
       r #>> '{body,epsilon,charged}' AS charged, r #>> '{body,noise}' AS noise
  FROM dstack_run($$SELECT dp_count(patient_id, 0.05) FROM ehr WHERE (dx IS NULL OR dx NOT LIKE 'Q\\%') AND egfr > 0.25$$) r;

-- ==== 4. the release rules =====================================================
-- several statements in one text
SELECT dstack_run($$SELECT dp_count(patient_id, 0.1) FROM ehr; SELECT 1$$);
SELECT dstack_run($$SET dstack_fdw.output_guard = off$$);
SELECT dstack_run($$DELETE FROM b_sink$$);
SELECT dstack_run($$SELECT 1$$);
-- full rows as group keys at a tiny epsilon: partition selection releases
-- (almost) nothing; 2000 one-row groups, each released with probability < 1e-6
SELECT jsonb_array_length(r #> '{body,result,rows}') <= 1 AS at_most_one_group,
       r #> '{body,selection}' AS selection, r #>> '{body,delta}' AS delta, r #>> '{body,epsilon,charged}' AS charged
  FROM dstack_run($$SELECT patient_id, age, egfr, dx, dp_count(patient_id, 0.000001) FROM ehr
                    GROUP BY patient_id, age, egfr, dx$$) r;
-- 2000 groups, more than gpu_scan.max_groups (1000, set above): answered, never
-- failed (GpuPreAgg's limit failed it with class 54000: an exact group-count oracle)
SELECT jsonb_array_length(r #> '{body,result,rows}') <= 1 AS at_most_one_group
  FROM dstack_run($$SELECT patient_id, dp_count(patient_id, 0.000001) FROM ehr GROUP BY patient_id$$) r;
-- an empty group answers noise, never NULL; nothing exact is in the receipt
SELECT r #> '{body,result,rows,0,0}' IS NOT NULL AND r #>> '{body,result,rows,0,0}' IS NOT NULL AS noised,
       r #> '{body,suppressed_groups}' AS suppressed_groups
  FROM dstack_run($$SELECT dp_count(patient_id, 0.05) FROM ehr WHERE age > 1000$$) r;
-- HAVING, FILTER, DISTINCT, ORDER BY inside, parameters from columns
SELECT dstack_run($$SELECT dx, dp_count(patient_id, 0.1) FROM ehr GROUP BY dx HAVING dp_count(patient_id, 0.1) > 5$$);
SELECT dstack_run($$SELECT dp_count(patient_id, 0.1) FILTER (WHERE age > 3) FROM ehr$$);
SELECT dstack_run($$SELECT dp_count(DISTINCT patient_id, 0.1) FROM ehr$$);
SELECT dstack_run($$SELECT dp_count(patient_id, age::float8) FROM ehr$$);
SELECT dstack_run($$SELECT dp_avg(0, egfr, 1e12, 0.1) FROM ehr$$);
SELECT dstack_run($$SELECT dp_avg(egfr, 0, egfr, 0.1) FROM ehr$$);
SELECT dstack_run($$SELECT dp_sum(egfr, 150, 0, 0.1) FROM ehr$$);
SELECT dstack_run($$SELECT dp_quantile(egfr, 0.5, -1.7e308, 1.7e308, 0.1) FROM ehr$$);
SELECT dstack_run($$SELECT dp_quantile(egfr, 2, 0, 150, 0.1) FROM ehr$$);
SELECT dstack_run($$SELECT dp_count(patient_id, 0) FROM ehr$$);
SELECT dstack_run($$SELECT dp_count(patient_id, 0.1) + 1 FROM ehr$$);
SELECT dstack_run($$SELECT dx FROM ehr GROUP BY dx$$);
SELECT dstack_run($$SELECT count(*), dp_count(patient_id, 0.1) FROM ehr$$);
SELECT dstack_run($$SELECT age / 10, dp_count(patient_id, 0.1) FROM ehr GROUP BY age / 10$$);
SELECT dstack_run($$SELECT 'x' AS tag, dp_count(patient_id, 0.1) FROM ehr$$);
SELECT dstack_run($$SELECT dp_count(patient_id, b_fold()::float8) FROM ehr$$);
-- joins with anything unsealed are refused above; a join on anything but the unit too
SELECT dstack_run($$SELECT dp_count(e.patient_id, 0.1) FROM ehr e JOIN ehr f ON e.age = f.age$$);
SELECT dstack_run($$SELECT dp_count(e.patient_id, 0.1) FROM ehr e, ehr f WHERE e.patient_id = f.patient_id OR e.age = 1$$);

-- ==== 5. name capture and privilege escalation ================================
-- an analyst's own dp_count, in public, with the exact argument types
CREATE FUNCTION public.b_cnt_sfunc(int8, int8, float8) RETURNS int8 LANGUAGE sql AS 'SELECT $1 + 1';
CREATE AGGREGATE public.dp_count(int8, float8) (SFUNC = b_cnt_sfunc, STYPE = int8, INITCOND = '0');
SELECT dstack_run($$SELECT dp_count(patient_id, 0.1) FROM ehr$$);
SELECT dstack_run($$SELECT public.dp_count(patient_id, 0.1) FROM ehr$$);
DROP AGGREGATE public.dp_count(int8, float8);
-- an operator that would run as whoever evaluates it, then search_path first
CREATE TABLE b_calls (who text);
GRANT INSERT ON b_calls TO PUBLIC;
CREATE FUNCTION public.b_plus(a int8, b int8) RETURNS int8 LANGUAGE plpgsql AS
  $$ BEGIN INSERT INTO public.b_calls VALUES (current_user); BEGIN ALTER ROLE b_analyst SUPERUSER; EXCEPTION WHEN OTHERS THEN NULL; END; RETURN a - b; END $$;
CREATE OPERATOR public.+ (LEFTARG = int8, RIGHTARG = int8, FUNCTION = public.b_plus);
CREATE OPERATOR public.= (LEFTARG = int8, RIGHTARG = int8, FUNCTION = public.b_plus);
SET search_path = public, pg_catalog;
SELECT (dstack_run($$SELECT dp_count(patient_id, 0.02) FROM ehr WHERE patient_id = 5$$)) #>> '{body,epsilon,charged}' AS charged;
SELECT dstack_run($$SELECT dp_count(patient_id, 0.1) FROM ehr WHERE patient_id OPERATOR(public.+) 1 > 0$$);
SELECT (dstack_run($$SELECT dp_count(e.patient_id, 0.02) FROM ehr e JOIN ehr f USING (patient_id)$$)) #>> '{body,epsilon,charged}' AS charged;
RESET search_path;
SELECT count(*) AS calls_of_the_operator FROM b_calls;
SELECT rolsuper FROM pg_roles WHERE rolname = 'b_analyst';
DROP OPERATOR public.+ (int8, int8);
DROP OPERATOR public.= (int8, int8);
-- a temp table named like the sealed one does not capture it
CREATE TEMP TABLE ehr (patient_id int8, age int4);
SELECT r #>> '{body,datasets,0,table}' AS read FROM dstack_run($$SELECT dp_count(patient_id, 0.01) FROM ehr$$) r;
DROP TABLE pg_temp.ehr;
-- a column declared as a domain or another type: refused before anything is read
SELECT dstack_run($$SELECT dp_count(patient_id, 0.1) FROM ehr_domain WHERE dx = 'N18.1'$$);
-- no USAGE on the server: no foreign tables, no IMPORT
CREATE FOREIGN TABLE b_mine (patient_id int8, dx int4) SERVER b_server OPTIONS (path :'bpath', owner :'owner1_addr');
-- settings an analyst cannot change
SET dstack_fdw.output_guard = off;
SET dstack_fdw.dp_test_seed = '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f';
SET gpu_scan.max_groups = 1000;
SET dstack_fdw.verify_before_scan = on;
SET dstack_fdw.allow_analyze = on;
ANALYZE ehr;
-- dstack_fdw.read_ahead is the analyst's: it moves work between two threads of
-- the backend, never what is read, bounded or answered (receipts.sql compares)
SET dstack_fdw.read_ahead = off;
SELECT (r #>> '{body,result,rows,0,0}')::int BETWEEN 1700 AND 2300 AS near
  FROM dstack_run($$SELECT dp_count(patient_id, 0.05) FROM ehr$$) r;
RESET dstack_fdw.read_ahead;
-- aggregates GpuPreAgg computes in the scan (sum of int8, min/max of text,
-- aggregates of length()): exact answers, so refused inside dstack_run() and
-- outside it; plain EXPLAIN shows the plan and no value; the key cache is not
-- the analyst's to switch
SELECT dstack_run($$SELECT min(dx) FROM ehr$$);
SELECT dstack_run($$SELECT sum(patient_id) FROM ehr$$);
SELECT dstack_run($$SELECT dp_sum(length(dx), 0, 10, 0.1) FROM ehr$$);
SELECT max(dx), sum(patient_id), sum(length(dx)) FROM ehr;
EXPLAIN (COSTS OFF) SELECT max(dx), sum(patient_id), sum(length(dx)) FROM ehr;
SET dstack_fdw.key_cache = off;
-- the ledger is read-only for analysts
UPDATE dstack_budget SET spent_micro = 0;
DELETE FROM dstack_runs;
INSERT INTO dstack_receipts VALUES (999, 'x', 'y', 0, now(), '{}');
SELECT dstack_fdw_handler();

-- every answered run is charged, every run recorded (failed and refused too)
SELECT status, epsilon_micro, delta, receipt_seq IS NOT NULL AS has_receipt FROM dstack_runs
 ORDER BY id;
RESET ROLE;
SELECT spent_micro AS spent_here FROM dstack_budget;

-- put everything back
DROP FUNCTION b_fold(), b_plpgsql(), b_dyn(), b_leak(int4), b_wrap(), b_wrap_sql(), b_plus(int8, int8), b_cnt_sfunc(int8, int8, float8);
DROP TABLE b_calls, b_sink, b_mult;
DROP TABLE IF EXISTS b_stolen, b_stolen2, b_r;
DROP VIEW IF EXISTS b_view;
REVOKE CREATE ON SCHEMA public FROM b_analyst;
DROP OWNED BY b_analyst;
DROP ROLE b_analyst;
\set QUIET on
DELETE FROM dstack_receipts;
DELETE FROM dstack_budget;
DELETE FROM dstack_runs;
INSERT INTO dstack_budget SELECT * FROM b_saved_budget;
INSERT INTO dstack_receipts SELECT * FROM b_saved_receipts;
INSERT INTO dstack_runs SELECT * FROM b_saved_runs;
\set QUIET off
SELECT setval('dstack_runs_id_seq', coalesce(max(id), 0) + 1, false) > 0 AS run_ids_rewound FROM dstack_runs;
DROP SERVER b_server CASCADE;
DROP DOMAIN dx_code;
DROP TABLE b_ehr;
