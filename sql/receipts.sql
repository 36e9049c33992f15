-- dstack_run(): DP answers over sealed tables leave with a signed receipt,
-- charged to the consortium's budget (epsilon 1.5 from the policy) before any
-- sealed row is read, recorded in the hash-chained audit table, and checkable
-- by tools/dstack-verify.  Groups are released by DP partition selection
-- (epsilon_select 0.5 per grouped query, delta 1e-6).
\i sql/include/fdw_env.psql
\set VERBOSITY default
SET dstack_fdw.output_guard = on;
SET dstack_seal.rows_per_group = 1000;
CREATE TABLE rc_cohort AS
  SELECT g::int8 AS patient_id, g % 90 AS age, ((g * 7) % 120)::float8 + 0.5 AS egfr, 'N18.' || g % 3 AS dx
  FROM generate_series(1, 3000) g;
\set rcpath :out '/rc_cohort.dseal'
SELECT (dstack_seal('rc_cohort', NULL, :'rcpath'))->>'row_count' AS sealed;
\! "$DSTACK_TEST_TOOLS/register-dataset.sh" "$DSTACK_TEST_OUT/rc_cohort.dseal" "$DSTACK_TEST_DIR/owner1.key"
CREATE SERVER rc_server FOREIGN DATA WRAPPER dstack_fdw
  OPTIONS (rpc_url :'rpc', guest_agent :'socket', kms_root_pubkey :'kms_root', kms_contract :'kms_contract', chain_id :'chain_id');
CREATE FOREIGN TABLE rc (patient_id int8, age int4, egfr float8, dx text)
  SERVER rc_server OPTIONS (path :'rcpath', owner :'owner1_addr');

-- a grouped DP answer: rows, epsilon, provenance
SELECT dstack_run($$SELECT dx, dp_count(patient_id, 0.15) AS n, dp_avg(egfr, 0, 150, 0.1) AS mean_egfr
                    FROM rc WHERE age >= 18 GROUP BY dx$$) AS r \gset
SELECT :'r'::jsonb #>> '{body,format}' AS format,
       :'r'::jsonb #> '{body,result,columns}' AS columns,
       jsonb_array_length(:'r'::jsonb #> '{body,result,rows}') AS groups,
       :'r'::jsonb #> '{body,epsilon}' AS epsilon, :'r'::jsonb #> '{body,delta}' AS delta,
       :'r'::jsonb #> '{body,selection}' AS selection, :'r'::jsonb #>> '{body,noise}' AS noise,
       :'r'::jsonb #>> '{body,datasets,0,table}' AS dataset,
       (:'r'::jsonb #>> '{body,datasets,0,owner}') = lower(:'owner1_addr') AS owner_matches,
       :'r'::jsonb #>> '{body,app_id}' = lower(:'app_id') AS app_id_matches,
       '0x' || (:'r'::jsonb #>> '{body,compose_hash}') = :'compose_hash' AS compose_hash_matches,
       :'r'::jsonb #> '{body,chain,approvals}' AS approvals,
       :'r'::jsonb #>> '{signature,purpose}' AS key_purpose,
       length(:'r'::jsonb #>> '{quote,report_data}') AS report_data_hex_len,
       left(:'r'::jsonb #>> '{quote,report_data}', 64) = :'r'::jsonb #>> '{body_sha256}' AS quote_binds_body;
-- the noisy counts are near the true ones (800 per group, Laplace scale 6.7)
SELECT bool_and(abs((row->>1)::int - 1000 * 72 / 90) < 100) AS counts_near_truth,
       bool_and((row->>2)::float8 BETWEEN 0 AND 150) AS means_in_bounds
  FROM jsonb_array_elements(:'r'::jsonb #> '{body,result,rows}') AS row;

-- the receipt verifies offline and against the chain; a tampered one does not
\pset tuples_only on
\pset format unaligned
\set rfile :out '/receipt1.json'
\o :rfile
SELECT receipt FROM dstack_receipts WHERE seq = 1;
\o
\pset tuples_only off
\pset format aligned
\! "$DSTACK_TEST_TOOLS/dstack-verify/dstack-verify" --allow-simulated --quiet --kms-root "$DSTACK_TEST_KMS_ROOT" --kms-id "$DSTACK_TEST_KMS_ID" --rpc "$DSTACK_TEST_RPC" "$DSTACK_TEST_OUT/receipt1.json" && echo "receipt 1: valid"
\! sed 's/"charged": "0.750000"/"charged": "0.010000"/' "$DSTACK_TEST_OUT/receipt1.json" > "$DSTACK_TEST_OUT/forged.json"; "$DSTACK_TEST_TOOLS/dstack-verify/dstack-verify" --allow-simulated --quiet --kms-root "$DSTACK_TEST_KMS_ROOT" --kms-id "$DSTACK_TEST_KMS_ID" "$DSTACK_TEST_OUT/forged.json" >/dev/null 2>&1 || echo "forged receipt: rejected"

-- contribution bounding on the policy's privacy unit (patient_id): each sealed
-- table keeps at most dstack_fdw.max_rows_per_unit rows per patient
CREATE TABLE rc_visits AS
  SELECT (g % 500) + 1 AS patient_id, g AS visit, (g % 7)::float8 AS score FROM generate_series(1, 1500) g;
\set rvpath :out '/rc_visits.dseal'
SELECT (dstack_seal('rc_visits', NULL, :'rvpath'))->>'row_count' AS sealed;
\! "$DSTACK_TEST_TOOLS/register-dataset.sh" "$DSTACK_TEST_OUT/rc_visits.dseal" "$DSTACK_TEST_DIR/owner1.key"
CREATE FOREIGN TABLE rcv (patient_id int4, visit int4, score float8)
  SERVER rc_server OPTIONS (path :'rvpath', owner :'owner1_addr');
SELECT r #> '{body,contribution}' AS contribution, r #>> '{body,epsilon,charged}' AS charged,
       abs((r #>> '{body,result,rows,0,0}')::int - 500) < 200 AS counts_patients_not_visits
  FROM dstack_run($$SELECT dp_count(patient_id, 0.1) FROM rcv$$) r;
-- which rows bounding keeps: the first per unit in file order, NULL units
-- dropped, across row groups, for a fixed-width unit (counted by value) and a
-- text unit (counted by hash).  With the noise seeded, a bounded table and a
-- table holding exactly those rows give the same answer only if the same
-- rows were kept.
SET dstack_seal.rows_per_group = 300;
CREATE TABLE rb_int AS
  SELECT CASE WHEN g % 11 = 0 THEN NULL ELSE (g * 7919) % 613 END AS patient_id, g AS visit, (g % 13)::float8 AS score
  FROM generate_series(1, 2000) g;
CREATE TABLE rb_int_first AS
  SELECT DISTINCT ON (patient_id) * FROM rb_int WHERE patient_id IS NOT NULL ORDER BY patient_id, visit;
CREATE TABLE rb_text AS SELECT 'p-' || patient_id AS patient_id, visit, score FROM rb_int;
CREATE TABLE rb_text_first AS SELECT 'p-' || patient_id AS patient_id, visit, score FROM rb_int_first;
\set rbdir :out '/'
SELECT string_agg(t || '=' || ((dstack_seal(t, NULL, :'rbdir' || t || '.dseal'))->>'row_count'), ' ') AS sealed
  FROM unnest(ARRAY['rb_int', 'rb_int_first', 'rb_text', 'rb_text_first']) t;
RESET dstack_seal.rows_per_group;
\! for t in rb_int rb_int_first rb_text rb_text_first; do "$DSTACK_TEST_TOOLS/register-dataset.sh" "$DSTACK_TEST_OUT/$t.dseal" "$DSTACK_TEST_DIR/owner1.key"; done
CREATE SCHEMA rbs;
IMPORT FOREIGN SCHEMA sealed LIMIT TO (rb_int, rb_int_first, rb_text, rb_text_first)
  FROM SERVER rc_server INTO rbs OPTIONS (directory :'out');
SELECT count(*) AS distinct_units, sum(score) FROM rb_int_first;
-- (the seed is set again before each run, so each draws the same noise; the
-- local ledger and run history are put back afterwards: later tests count on them)
\set QUIET on
CREATE TEMP TABLE rb_saved_budget AS SELECT * FROM dstack_budget;
CREATE TEMP TABLE rb_saved_receipts AS SELECT * FROM dstack_receipts;
CREATE TEMP TABLE rb_saved_runs AS SELECT * FROM dstack_runs;
\set QUIET off
SET dstack_fdw.dp_test_seed = '202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f';
SELECT dstack_run($$SELECT dp_count(patient_id, 0.02), dp_sum(score, 0, 20, 0.02) FROM rbs.rb_int$$) #> '{body,result,rows,0}' AS bounded_int;
SET dstack_fdw.dp_test_seed = '202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f';
SELECT dstack_run($$SELECT dp_count(patient_id, 0.02), dp_sum(score, 0, 20, 0.02) FROM rbs.rb_int_first$$) #> '{body,result,rows,0}' AS first_rows_int;
SET dstack_fdw.dp_test_seed = '202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f';
SELECT dstack_run($$SELECT dp_count(patient_id, 0.02), dp_sum(score, 0, 20, 0.02) FROM rbs.rb_text$$) #> '{body,result,rows,0}' AS bounded_text;
SET dstack_fdw.dp_test_seed = '202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f';
SELECT dstack_run($$SELECT dp_count(patient_id, 0.02), dp_sum(score, 0, 20, 0.02) FROM rbs.rb_text_first$$) #> '{body,result,rows,0}' AS first_rows_text;
-- the same bounding on the backend's own thread (read_ahead off) as on the read-ahead thread
SET dstack_fdw.read_ahead = off;
SET dstack_fdw.dp_test_seed = '202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f';
SELECT dstack_run($$SELECT dp_count(patient_id, 0.02), dp_sum(score, 0, 20, 0.02) FROM rbs.rb_int$$) #> '{body,result,rows,0}' AS bounded_int_one_thread;
-- read_ahead = always (an analyst may set it: threads even in parallel scans) changes
-- nothing either: a run plans its sealed scans serially while it bounds
SET dstack_fdw.read_ahead = always;
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET dstack_fdw.dp_test_seed = '202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f';
SELECT dstack_run($$SELECT dp_count(patient_id, 0.02), dp_sum(score, 0, 20, 0.02) FROM rbs.rb_int$$) #> '{body,result,rows,0}' AS bounded_int_always_parallel_asked;
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET dstack_fdw.read_ahead;
-- the ledger's writes: through a kept worker (it stays for the next run), one started
-- per write (ledger_worker_idle 0), or a new kept worker after the last was terminated;
-- every way commits the same rows and answers the same
SET dstack_fdw.ledger_worker_idle = '60s';
SELECT coalesce(max(id), 0) AS last_run FROM dstack_runs \gset
SET dstack_fdw.dp_test_seed = '202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f';
SELECT dstack_run($$SELECT dp_count(patient_id, 0.02), dp_sum(score, 0, 20, 0.02) FROM rbs.rb_int$$) #> '{body,result,rows,0}' AS kept_worker;
SELECT count(*) AS kept_ledger_workers FROM pg_stat_activity WHERE backend_type = 'dstack_fdw ledger';
SELECT pg_terminate_backend(pid) AS terminated FROM pg_stat_activity WHERE backend_type = 'dstack_fdw ledger';
SET dstack_fdw.dp_test_seed = '202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f';
SELECT dstack_run($$SELECT dp_count(patient_id, 0.02), dp_sum(score, 0, 20, 0.02) FROM rbs.rb_int$$) #> '{body,result,rows,0}' AS after_terminate;
SET dstack_fdw.ledger_worker_idle = 0;
SET dstack_fdw.dp_test_seed = '202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f';
SELECT dstack_run($$SELECT dp_count(patient_id, 0.02), dp_sum(score, 0, 20, 0.02) FROM rbs.rb_int$$) #> '{body,result,rows,0}' AS one_worker_per_write;
RESET dstack_fdw.ledger_worker_idle;
-- four sessions at once, three runs each, through the kept worker: every run answered,
-- every receipt in the chain (one sequence, each naming the one before)
\setenv PGDATABASE :DBNAME
\! for s in 1 2 3 4; do (for i in 1 2 3; do psql -X -q -At -d "$PGDATABASE" -c "SELECT dstack_run('SELECT dp_count(patient_id, 0.01) FROM rbs.rb_int') IS NOT NULL"; done) & done; wait
SELECT status, receipt_seq IS NOT NULL AS has_receipt, count(*) FROM dstack_runs WHERE id > :last_run
  GROUP BY 1, 2;
SELECT count(*) = count(DISTINCT seq) AS distinct_seqs,
       bool_and(prev_hash = coalesce(prev, repeat('0', 64))) AS chained
  FROM (SELECT seq, prev_hash, lag(body_sha256) OVER (ORDER BY seq) AS prev FROM dstack_receipts) r;
-- an analyst cannot choose how the ledger is written
CREATE ROLE rc_pool_analyst;
SET ROLE rc_pool_analyst;
SET dstack_fdw.ledger_worker_idle = 0;
RESET ROLE;
DROP ROLE rc_pool_analyst;
\set QUIET on
SET dstack_fdw.output_guard = off;
DELETE FROM dstack_receipts; DELETE FROM dstack_budget; DELETE FROM dstack_runs;
INSERT INTO dstack_budget SELECT * FROM rb_saved_budget;
INSERT INTO dstack_receipts SELECT * FROM rb_saved_receipts;
INSERT INTO dstack_runs SELECT * FROM rb_saved_runs;
SELECT setval('dstack_runs_id_seq', coalesce(max(id), 0) + 1, false) > 0 AS rewound FROM dstack_runs \g /dev/null
SET dstack_fdw.output_guard = on;
\set QUIET off
RESET dstack_fdw.dp_test_seed;
-- two tables joined on the unit: still one row per patient (the policy's
-- max_rows_per_unit is 1 here; fdw_policy.sql charges a policy of 2 rows
-- per unit, 4 times the epsilon for a join of two tables)
SELECT r #> '{body,contribution}' AS contribution, r #>> '{body,epsilon,charged}' AS charged
  FROM dstack_run($$SELECT dp_count(rc.patient_id, 0.1) FROM rc JOIN rcv USING (patient_id)$$) r;
-- A7: sealed tables must carry the unit and be joined on it
CREATE TABLE rc_nounit AS SELECT g AS id, g % 3 AS k FROM generate_series(1, 100) g;
\set nupath :out '/rc_nounit.dseal'
SELECT (dstack_seal('rc_nounit', NULL, :'nupath'))->>'row_count' AS sealed;
\! "$DSTACK_TEST_TOOLS/register-dataset.sh" "$DSTACK_TEST_OUT/rc_nounit.dseal" "$DSTACK_TEST_DIR/owner1.key"
CREATE FOREIGN TABLE rcn (id int4, k int4) SERVER rc_server OPTIONS (path :'nupath', owner :'owner1_addr');
SELECT dstack_run($$SELECT dp_count(id, 0.1) FROM rcn$$);
SELECT dstack_run($$SELECT dp_count(rc.patient_id, 0.1) FROM rc JOIN rcv ON rc.age = rcv.visit$$);
SELECT dstack_run($$SELECT dp_count(rc.patient_id, 0.1) FROM rc, rcv WHERE rc.patient_id = rcv.patient_id OR rc.age = 1$$);

-- partition selection: a group of one patient (N18.0 holds only patient 3
-- here) is dropped, key included, with probability above 1 - 1e-6; the
-- receipt counts nothing it dropped.  A grouped answer needs no dp_count.
SELECT r #> '{body,selection}' AS selection, r #> '{body,epsilon,selection}' AS eps_selection,
       r #> '{body,suppressed_groups}' AS suppressed,
       (SELECT string_agg(g->>0, ', ' ORDER BY g->>0) FROM jsonb_array_elements(r #> '{body,result,rows}') g) AS released_groups
  FROM dstack_run($$SELECT dx, dp_avg(egfr, 0, 150, 0.02) FROM rc WHERE patient_id <= 3 OR dx <> 'N18.0' GROUP BY dx$$) r;

-- the budget: 1.47 of 1.5 spent; asking 0.6 is refused before anything is read
SELECT dstack_run($$SELECT dp_count(patient_id, 0.6) FROM rc$$);
SELECT app_id = lower(:'app_id') AS app, total_micro, spent_micro FROM dstack_budget;
SELECT (dstack_run($$SELECT dp_count(patient_id, 0.03) FROM rc$$)) #> '{body,epsilon}' AS epsilon;
SELECT dstack_run($$SELECT dp_count(patient_id, 0.02) FROM rc$$);
-- every run is in the audit table, the refused ones too, committed on their own
SELECT status, epsilon_micro, delta, jsonb_array_length(datasets) AS datasets, receipt_seq IS NOT NULL AS has_receipt
  FROM dstack_runs ORDER BY id;

-- dstack_run() is the top-level statement: not inside BEGIN, a subtransaction,
-- a DO block or a function (the boundary suite tries many more)
BEGIN;
SELECT dstack_run($$SELECT dp_count(patient_id, 0.1) FROM rc$$);
ROLLBACK;
DO $$ BEGIN PERFORM dstack_run('SELECT dp_count(patient_id, 0.1) FROM rc'); EXCEPTION WHEN division_by_zero THEN NULL; END $$;
DO $$ BEGIN PERFORM dstack_run('SELECT dp_count(patient_id, 0.1) FROM rc'); END $$;

-- the attested run history: a hash chain
SELECT seq, prev_hash = coalesce(lag(body_sha256) OVER (ORDER BY seq), repeat('0', 64)) AS chained,
       epsilon_micro, receipt #>> '{body,sequence}' AS body_seq
  FROM dstack_receipts ORDER BY seq;
-- an analyst can read the ledger and the history but not change them
CREATE ROLE rc_analyst;
SET ROLE rc_analyst;
SELECT count(*) FROM dstack_receipts;
UPDATE dstack_budget SET spent_micro = 0;
DELETE FROM dstack_receipts;
RESET ROLE;
DROP ROLE rc_analyst;

-- queries that are not about sealed data are not dstack_run()'s business
SELECT dstack_run('SELECT 1');
SELECT dstack_run('DELETE FROM rc_cohort');
