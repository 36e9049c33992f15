-- gpu_scan: GpuPreAgg and GpuScan over sealed tables give the answers
-- PostgreSQL gives over the original heap tables.  CI has no GPU: the
-- custom scans run their kernels' host build (gpu_scan.host_path), which is
-- the same per-row source nvcc compiles for the GPU; tools/gpucheck.sh runs
-- these queries on a GPU.
\i sql/include/fdw_env.psql
\set VERBOSITY default

CREATE SERVER gs_consortium FOREIGN DATA WRAPPER dstack_fdw
  OPTIONS (rpc_url :'rpc', guest_agent :'socket', kms_root_pubkey :'kms_root', kms_contract :'kms_contract', chain_id :'chain_id', app_contract :'app_id');
\! mkdir -p "$DSTACK_TEST_OUT/gpu" && chown postgres: "$DSTACK_TEST_OUT/gpu" 2>/dev/null; true
\set gout :out '/gpu'
SET dstack_seal.output_dir = :'gout';
SET dstack_seal.rows_per_group = 700;

-- every kernel type, NULLs in keys and values, NaN and infinities, several row groups
CREATE TABLE tx AS
  SELECT g::int8 AS id, (g % 3000 + 1)::int8 AS patient_id, (g % 7)::int2 AS branch, (g * 37 % 1000 - 500)::int4 AS amount,
         CASE WHEN g % 13 = 0 THEN NULL ELSE (g * 7919 % 100000)::int8 * 1000003 END AS big,
         CASE WHEN g % 17 = 0 THEN NULL WHEN g % 101 = 0 THEN 'NaN'::float8
              WHEN g = 500 THEN '-Infinity' WHEN g = 501 THEN 'Infinity'
              ELSE (g * 104729 % 100000) / 37.0 - 1000 END AS score,
         (g % 50 / 4.0)::float4 AS ratio, g % 3 = 0 AS flagged,
         date '2024-01-01' + g % 400 AS day, timestamp '2024-01-01' + g * interval '7 minutes' AS at,
         CASE WHEN g % 9 = 0 THEN NULL ELSE 'cat-' || (g % 5) END AS category,
         CASE WHEN g % 4 = 0 THEN NULL ELSE g % 6 END AS bucket,
         (g % 1000 / 10.0)::numeric(6,1) AS price
  FROM generate_series(1, 9000) g;
CREATE TABLE nothing (id int8, v int4);
-- avg: one group per kind of data (grp): near the int2/int4 maxima, near the
-- minima, both, ordinary; floats with Infinity (grp 0), Infinity and -Infinity
-- (grp 1), NaN (grp 2), values of 1e140 (grp 3); grp 5 all NULL
CREATE TABLE avgs AS
  SELECT g AS id, (g % 6)::int2 AS grp,
         (CASE WHEN g % 6 = 5 OR g % 7 = 0 THEN NULL WHEN g % 6 = 0 THEN 2147483647 - g / 6 % 3
               WHEN g % 6 = 1 THEN -2147483648 + g / 6 % 3
               WHEN g % 6 = 2 THEN CASE WHEN g % 4 < 2 THEN 2147483647 ELSE -2147483647 END
               ELSE g % 1000 - 500 END)::int4 AS i4,
         (CASE WHEN g % 6 = 5 OR g % 5 = 0 THEN NULL WHEN g % 6 = 0 THEN 32767 - g / 6 % 2
               WHEN g % 6 = 1 THEN -32768 + g / 6 % 2 ELSE g % 100 - 50 END)::int2 AS i2,
         (CASE WHEN g % 6 = 5 OR g % 9 = 0 THEN NULL WHEN g = 3 THEN 'Infinity' WHEN g = 4 THEN 'NaN'
               ELSE (g % 1000) / 8.0 - 60 END)::float4 AS f4,
         CASE WHEN g % 6 = 5 OR g % 8 = 0 THEN NULL WHEN g = 6 THEN 'Infinity'
              WHEN g = 1 THEN 'Infinity' WHEN g = 7 THEN '-Infinity' WHEN g = 2 THEN 'NaN'
              WHEN g % 6 = 3 THEN (g % 1000 - 500) * 1e140::float8
              ELSE (g * 104729 % 100000) / 37.0 - 1000 END AS f8
  FROM generate_series(1, 9000) g;
-- float sums and squared deviations beyond double precision (k 1, 2), huge but
-- constant (k 3), an overflow and Infinity (k 4)
CREATE TABLE avgs_big AS
  SELECT * FROM (VALUES (1, 1::int2, 1e308::float8), (2, 1, 1e308), (3, 2, 1e200), (4, 2, -1e200),
                        (5, 3, 1e160), (6, 3, 1e160), (7, 3, 1e160), (8, 4, 1e308), (9, 4, 1e308),
                        (10, 4, 'Infinity')) v(id, k, x);
-- sum/avg of int8 beyond int8's range (k 0, 1), both ends (k 2), ordinary (k 3),
-- all NULL (k 4); text and varchar for min/max and length(): empty strings,
-- prefixes of each other, a space, multibyte characters (bytes >= 0x80 sort
-- after ASCII under "C"), NULLs, long tails
CREATE TABLE gswide AS
  SELECT g AS id, (g % 5)::int2 AS k,
         (CASE WHEN g % 5 = 4 OR g % 11 = 0 THEN NULL
               WHEN g % 5 = 0 THEN 9223372036854775807 - g
               WHEN g % 5 = 1 THEN -9223372036854775807 + g
               WHEN g % 5 = 2 THEN CASE WHEN g % 4 = 2 THEN 9223372036854775807 ELSE -9223372036854775807 END
               ELSE g::int8 * 1000003 END)::int8 AS v,
         CASE WHEN g % 7 = 0 THEN NULL
              ELSE (ARRAY['', 'a', 'ab', 'abc', 'b', 'Z', 'é', 'ée', 'z', 'ä€𝄞', 'a b'])[1 + g % 11]
                   || CASE WHEN g % 3 = 0 THEN repeat('x', g % 40) ELSE '' END END AS t,
         (CASE WHEN g % 6 = 0 THEN NULL ELSE (ARRAY['mm', 'm', 'mé', 'M', 'm m'])[1 + g % 5] || (g % 13) END)::varchar(20) AS vc
  FROM generate_series(1, 3000) g;
-- the smaller side of joins: some patients twice, some never, NULL keys
CREATE TABLE people AS
  SELECT CASE WHEN g % 97 = 0 THEN NULL ELSE (g % 3300 + 1)::int8 END AS patient_id,
         (18 + g % 70)::int4 AS age, (ARRAY['north','south','east','west'])[1 + g % 4] AS region,
         CASE WHEN g % 5 = 0 THEN NULL ELSE (g % 3)::int2 END AS tier
  FROM generate_series(1, 3500) g;
SELECT (dstack_seal('tx'))->>'row_count' AS tx_rows;
SELECT (dstack_seal('people'))->>'row_count' AS people_rows;
SELECT (dstack_seal('nothing'))->>'row_count' AS nothing_rows;
SELECT (dstack_seal('avgs'))->>'row_count' AS avgs_rows, (dstack_seal('avgs_big'))->>'row_count' AS avgs_big_rows;
SELECT (dstack_seal('gswide'))->>'row_count' AS wide_rows;
-- registered on chain with a budget of 10 each: this suite compares paths, not budgets
\! for f in tx people; do REGISTER_BUDGET_MICRO=10000000 "$DSTACK_TEST_TOOLS/register-dataset.sh" "$DSTACK_TEST_OUT/gpu/$f.dseal" "$DSTACK_TEST_DIR/owner1.key"; done
CREATE SCHEMA g;
IMPORT FOREIGN SCHEMA sealed FROM SERVER gs_consortium INTO g OPTIONS (directory :'gout');

SET gpu_scan.enabled = on;
SET gpu_scan.host_path = on;
-- the host build even on a machine with a GPU, so this output is the same everywhere
SET gpu_scan.use_gpu = off;

-- the plan: Finalize Agg over GpuPreAgg, every condition in the kernel
EXPLAIN (COSTS OFF)
SELECT branch, count(*), sum(amount), min(score), max(day)
  FROM g.tx WHERE amount > -400 AND (flagged OR bucket IS NULL) GROUP BY branch;

-- grouped aggregates of every kind: equal to the heap's, both ways
SELECT count(*) AS differing FROM (
  (SELECT branch, flagged, count(*), count(big), sum(amount), min(big), max(big), min(day), max(at),
          min(ratio), max(ratio), count(score), avg(amount), avg(branch), avg(ratio)
     FROM g.tx WHERE amount > -400 AND (flagged OR bucket IS NULL) GROUP BY branch, flagged
   EXCEPT ALL
   SELECT branch, flagged, count(*), count(big), sum(amount), min(big), max(big), min(day), max(at),
          min(ratio), max(ratio), count(score), avg(amount), avg(branch), avg(ratio)
     FROM tx WHERE amount > -400 AND (flagged OR bucket IS NULL) GROUP BY branch, flagged)
  UNION ALL
  (SELECT branch, flagged, count(*), count(big), sum(amount), min(big), max(big), min(day), max(at),
          min(ratio), max(ratio), count(score), avg(amount), avg(branch), avg(ratio)
     FROM tx WHERE amount > -400 AND (flagged OR bucket IS NULL) GROUP BY branch, flagged
   EXCEPT ALL
   SELECT branch, flagged, count(*), count(big), sum(amount), min(big), max(big), min(day), max(at),
          min(ratio), max(ratio), count(score), avg(amount), avg(branch), avg(ratio)
     FROM g.tx WHERE amount > -400 AND (flagged OR bucket IS NULL) GROUP BY branch, flagged)) d;
-- the same comparison ran through GpuPreAgg on the sealed side
EXPLAIN (COSTS OFF)
SELECT branch, flagged, count(*) FROM g.tx WHERE amount > -400 GROUP BY branch, flagged
EXCEPT ALL SELECT branch, flagged, count(*) FROM tx WHERE amount > -400 GROUP BY branch, flagged;

-- float min/max order NaN above Infinity; float sums agree to 1e-9 relative
SELECT category, min(score), max(score), count(*) FROM g.tx GROUP BY category ORDER BY category;
SELECT category, min(score), max(score), count(*) FROM tx GROUP BY category ORDER BY category;
SELECT bool_and(abs(a.s - b.s) <= 1e-9 * greatest(abs(b.s), 1)) AS float_sums_agree, count(*) AS groups
  FROM (SELECT bucket, sum(score) AS s FROM g.tx WHERE score > -1e300 AND score < 1e300 GROUP BY bucket) a
  JOIN (SELECT bucket, sum(score) AS s FROM tx WHERE score > -1e300 AND score < 1e300 GROUP BY bucket) b
    ON a.bucket IS NOT DISTINCT FROM b.bucket;

-- avg(int2|int4|float4|float8): the kernels build the transition states of
-- int4_avg_accum ({count, sum}) and float8_accum ({N, Sx, Sxx}), the Finalize
-- Agg combines and finishes them with PostgreSQL's own functions
EXPLAIN (COSTS OFF)
SELECT grp, avg(i4), avg(i2), avg(f4), avg(f8) FROM g.avgs WHERE id > 0 GROUP BY grp;
EXPLAIN (VERBOSE, COSTS OFF)
SELECT avg(i4), avg(f8) FROM g.avgs;
-- integers: exact, near the bounds, NULLs, an all-NULL group (grp 5)
SELECT grp, avg(i4), avg(i2), count(i4), count(i2) FROM g.avgs GROUP BY grp ORDER BY grp;
SELECT count(*) AS differing FROM (
  (SELECT grp, avg(i4), avg(i2), avg(i4::float8), avg(i2::float8) FROM g.avgs GROUP BY grp
   EXCEPT ALL SELECT grp, avg(i4), avg(i2), avg(i4::float8), avg(i2::float8) FROM avgs GROUP BY grp)
  UNION ALL
  (SELECT grp, avg(i4), avg(i2), avg(i4::float8), avg(i2::float8) FROM avgs GROUP BY grp
   EXCEPT ALL SELECT grp, avg(i4), avg(i2), avg(i4::float8), avg(i2::float8) FROM g.avgs GROUP BY grp)) d;
SELECT avg(i4), avg(i2), avg(i4::float8) FROM g.avgs;
SELECT avg(i4), avg(i2), avg(i4::float8) FROM avgs;
-- no row, and only NULLs: NULL, as on the heap
SELECT avg(i4), avg(i2), avg(f4), avg(f8), count(*) FROM g.avgs WHERE id < 0;
SELECT avg(i4), avg(i2), avg(f4), avg(f8), count(*) FROM g.avgs WHERE grp = 5;
SELECT grp, avg(i4) FROM g.avgs WHERE id < 0 GROUP BY grp;
-- floats: Infinity, -Infinity with Infinity (NaN), NaN, NULL exactly as on the
-- heap; the finite answers within 1e-12 (a GPU adds in another order)
SELECT grp, CASE WHEN avg(f8) IN ('Infinity', '-Infinity', 'NaN') THEN avg(f8)::text ELSE 'finite' END AS f8,
       CASE WHEN avg(f4) IN ('Infinity', '-Infinity', 'NaN') THEN avg(f4)::text ELSE 'finite' END AS f4
  FROM g.avgs GROUP BY grp ORDER BY grp;
SELECT grp, avg(f8) AS f8, avg(f4) AS f4 FROM avgs GROUP BY grp ORDER BY grp;
SELECT count(*) AS groups,
       bool_and(a.f8 IS NOT DISTINCT FROM b.f8 OR abs(a.f8 - b.f8) <= 1e-12 * greatest(abs(b.f8), 1)) AS f8_agree,
       bool_and(a.f4 IS NOT DISTINCT FROM b.f4 OR abs(a.f4 - b.f4) <= 1e-12 * greatest(abs(b.f4), 1)) AS f4_agree
  FROM (SELECT grp, avg(f8) AS f8, avg(f4) AS f4 FROM g.avgs GROUP BY grp) a
  JOIN (SELECT grp, avg(f8) AS f8, avg(f4) AS f4 FROM avgs GROUP BY grp) b USING (grp);
SELECT abs(a.f8 - b.f8) <= 1e-12 * greatest(abs(b.f8), 1) AS f8_agree,
       abs(a.f4 - b.f4) <= 1e-12 * greatest(abs(b.f4), 1) AS f4_agree
  FROM (SELECT avg(f8) AS f8, avg(f4) AS f4 FROM g.avgs WHERE id > 10) a,
       (SELECT avg(f8) AS f8, avg(f4) AS f4 FROM avgs WHERE id > 10) b;
SELECT avg(score) AS inf, (SELECT avg(score) FROM g.tx WHERE id IN (500, 501)) AS nan,
       (SELECT avg(score) FROM g.tx WHERE id BETWEEN 503 AND 505) AS with_nan FROM g.tx WHERE id IN (501, 502);
SELECT avg(score) AS inf, (SELECT avg(score) FROM tx WHERE id IN (500, 501)) AS nan,
       (SELECT avg(score) FROM tx WHERE id BETWEEN 503 AND 505) AS with_nan FROM tx WHERE id IN (501, 502);
-- finite inputs whose sum or squared deviations overflow: float8_accum's error, on both
SELECT avg(x) FROM g.avgs_big WHERE k = 1;
SELECT avg(x) FROM avgs_big WHERE k = 1;
SELECT avg(x) FROM g.avgs_big WHERE k = 2;
SELECT avg(x) FROM avgs_big WHERE k = 2;
-- sum(float8): finite inputs whose sum overflows are float8pl's error, on both; with an
-- infinite input the sum is that infinity, on both
EXPLAIN (COSTS OFF) SELECT sum(x) FROM g.avgs_big WHERE k = 1;
SELECT sum(x) FROM g.avgs_big WHERE k = 1;
SELECT sum(x) FROM avgs_big WHERE k = 1;
SELECT k, sum(x) FROM g.avgs_big WHERE k IN (2, 3) GROUP BY k ORDER BY k;
SELECT k, sum(x) FROM avgs_big WHERE k IN (2, 3) GROUP BY k ORDER BY k;
SELECT sum(x) FROM g.avgs_big WHERE id = 10 OR id = 1;
SELECT sum(x) FROM avgs_big WHERE id = 10 OR id = 1;
-- values whose squares overflow but whose deviations do not: no error
SELECT avg(x) FROM g.avgs_big WHERE k = 3;
SELECT avg(x) FROM avgs_big WHERE k = 3;
-- an overflow and an Infinity: PostgreSQL raises the error only when the
-- overflow comes first in the order it reads the rows (with parallel workers,
-- it depends on which reads which); GpuPreAgg, which keeps no order, answers
-- Infinity, as PostgreSQL does when the Infinity comes first
EXPLAIN (COSTS OFF) SELECT avg(x) FROM g.avgs_big WHERE k = 4;
SELECT avg(x) FROM g.avgs_big WHERE k = 4;
SELECT avg(x ORDER BY id) FROM avgs_big WHERE k = 4;
SELECT avg(x ORDER BY id DESC) FROM avgs_big WHERE k = 4;
-- recognised by its support functions and initial state, not its name
CREATE AGGREGATE gs_mean(int4) (sfunc = int4_avg_accum, stype = int8[], finalfunc = int8_avg,
  combinefunc = int4_avg_combine, initcond = '{0,0}');
CREATE AGGREGATE gs_mean_from_one(int4) (sfunc = int4_avg_accum, stype = int8[], finalfunc = int8_avg,
  combinefunc = int4_avg_combine, initcond = '{1,1}');
CREATE AGGREGATE gs_sum_as_avg(int4) (sfunc = int4_avg_accum, stype = int8[], finalfunc = int2int4_sum,
  combinefunc = int4_avg_combine, initcond = '{0,0}');
SET gpu_scan.debug_planner = on;
SELECT grp, gs_mean(i4) = avg(i4) AS same FROM g.avgs WHERE grp < 3 GROUP BY grp ORDER BY grp;
SELECT gs_mean_from_one(i4) FROM g.avgs WHERE grp = 4;
SELECT gs_sum_as_avg(i4) FROM g.avgs WHERE grp = 4;
SELECT avg(big) FROM g.tx;
RESET gpu_scan.debug_planner;
DROP AGGREGATE gs_mean(int4);
DROP AGGREGATE gs_mean_from_one(int4);
DROP AGGREGATE gs_sum_as_avg(int4);

-- text keys (dictionary-coded on the host), NULL keys, IN lists, NOT, IS NOT NULL
SELECT category, bucket, count(*), sum(amount) FROM g.tx
 WHERE branch IN (1, 3, 5) AND NOT flagged AND big IS NOT NULL GROUP BY category, bucket ORDER BY 1, 2;
SELECT count(*) AS differing FROM (
  (SELECT category, bucket, count(*), sum(amount) FROM g.tx
    WHERE branch IN (1, 3, 5) AND NOT flagged AND big IS NOT NULL GROUP BY category, bucket
   EXCEPT ALL
   SELECT category, bucket, count(*), sum(amount) FROM tx
    WHERE branch IN (1, 3, 5) AND NOT flagged AND big IS NOT NULL GROUP BY category, bucket)) d;

-- no GROUP BY; widening casts (int2 vs int8 constant, float4 column vs float8); dates and timestamps
SELECT count(*), sum(amount), min(at), max(day), min(ratio)
  FROM g.tx WHERE branch < 4::int8 AND ratio >= 2.5::float8 AND day BETWEEN '2024-02-01' AND '2024-06-30';
SELECT count(*), sum(amount), min(at), max(day), min(ratio)
  FROM tx WHERE branch < 4::int8 AND ratio >= 2.5::float8 AND day BETWEEN '2024-02-01' AND '2024-06-30';
-- nothing qualifies: one row of zero and NULLs without GROUP BY, no rows with it
SELECT count(*), sum(amount), max(big) FROM g.tx WHERE amount > 100000;
SELECT branch, count(*) FROM g.tx WHERE amount > 100000 GROUP BY branch;
SELECT count(*), min(v) FROM g.nothing;
-- HAVING is applied by the Finalize Agg
SELECT bucket, count(*) FROM g.tx GROUP BY bucket HAVING count(*) > 1400 ORDER BY 1;
SELECT bucket, count(*) FROM tx GROUP BY bucket HAVING count(*) > 1400 ORDER BY 1;

-- a hash join of two sealed tables inside GpuPreAgg: the smaller one loaded
-- whole and hashed, conditions on either side and across both in the kernel
EXPLAIN (COSTS OFF)
SELECT p.region, t.branch, count(*), sum(t.amount), max(p.age)
  FROM g.tx t JOIN g.people p USING (patient_id)
 WHERE t.amount > 0 AND p.age > 30 AND t.amount > p.age GROUP BY p.region, t.branch;
SELECT count(*) AS differing FROM (
  (SELECT p.region, t.branch, count(*) AS n, sum(t.amount), max(p.age), min(p.tier), count(p.tier), max(t.day), avg(t.amount), avg(p.age)
     FROM g.tx t JOIN g.people p USING (patient_id)
    WHERE t.amount > 0 AND p.age > 30 AND t.amount > p.age GROUP BY p.region, t.branch
   EXCEPT ALL
   SELECT p.region, t.branch, count(*), sum(t.amount), max(p.age), min(p.tier), count(p.tier), max(t.day), avg(t.amount), avg(p.age)
     FROM tx t JOIN people p USING (patient_id)
    WHERE t.amount > 0 AND p.age > 30 AND t.amount > p.age GROUP BY p.region, t.branch)
  UNION ALL
  (SELECT p.region, t.branch, count(*), sum(t.amount), max(p.age), min(p.tier), count(p.tier), max(t.day), avg(t.amount), avg(p.age)
     FROM tx t JOIN people p USING (patient_id)
    WHERE t.amount > 0 AND p.age > 30 AND t.amount > p.age GROUP BY p.region, t.branch
   EXCEPT ALL
   SELECT p.region, t.branch, count(*), sum(t.amount), max(p.age), min(p.tier), count(p.tier), max(t.day), avg(t.amount), avg(p.age)
     FROM g.tx t JOIN g.people p USING (patient_id)
    WHERE t.amount > 0 AND p.age > 30 AND t.amount > p.age GROUP BY p.region, t.branch)) d;
SELECT count(*), sum(t.amount) FROM g.tx t JOIN g.people p ON p.patient_id = t.patient_id;
SELECT count(*), sum(t.amount) FROM tx t JOIN people p ON p.patient_id = t.patient_id;

-- DP aggregates: the partial states are the ones the DP transition functions
-- build, so under one test seed the noisy answers are identical
SET dstack_fdw.dp_test_seed = '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f';
SELECT dp_count(id, 0.5) AS n, dp_count(category, 0.5) AS n_cat, dp_sum(big, 0, 50000000000, 0.5) AS big_sum,
       dp_sum(score, -500, 1500, 0.5) AS score_sum, dp_avg(amount, -500, 500, 0.5) AS amount_avg,
       dp_sum(length(category), 0, 10, 0.5) AS cat_len
  FROM g.tx WHERE branch <> 2;
EXPLAIN (COSTS OFF) SELECT dp_sum(length(category), 0, 10, 0.5) FROM g.tx WHERE branch <> 2;
SET gpu_scan.enabled = off;
SET dstack_fdw.dp_test_seed = '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f';
SELECT dp_count(id, 0.5) AS n, dp_count(category, 0.5) AS n_cat, dp_sum(big, 0, 50000000000, 0.5) AS big_sum,
       dp_sum(score, -500, 1500, 0.5) AS score_sum, dp_avg(amount, -500, 500, 0.5) AS amount_avg,
       dp_sum(length(category), 0, 10, 0.5) AS cat_len
  FROM g.tx WHERE branch <> 2;
SET gpu_scan.enabled = on;
-- grouped: at epsilon 100 the discrete Laplace noise of a count is 0 except with probability 1e-43
SELECT branch, dp_count(id, 100) AS n, count(*) FROM g.tx GROUP BY branch ORDER BY branch;
-- invalid DP arguments fail as in the transition function
SELECT dp_sum(big, 10, 5, 0.5) FROM g.tx;
SELECT dp_count(id, 0) FROM g.tx;
RESET dstack_fdw.dp_test_seed;

-- dstack_run() through GpuPreAgg: the same contribution bounding (one row per
-- patient_id, the policy's privacy unit), the same receipt, the same answer.
-- This suite leaves the ledger and the run history as it found them.
-- (quietly: what earlier suites left there varies with the order suites run in)
\set QUIET on
CREATE TEMP TABLE saved_budget AS SELECT * FROM dstack_budget;
CREATE TEMP TABLE saved_receipts AS SELECT * FROM dstack_receipts;
CREATE TEMP TABLE saved_runs AS SELECT * FROM dstack_runs;
-- whatever earlier suites spent of the local budget: this suite compares paths
DELETE FROM dstack_budget;
\set QUIET off
-- noise is drawn in the order groups are finalised: sorted grouping pins it on both paths
SET enable_hashagg = off;
SET dstack_fdw.output_guard = on;
SET gpu_scan.debug_planner = on;
SET dstack_fdw.dp_test_seed = '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f';
SELECT r #> '{body,result,rows}' AS gpu_rows, r #> '{body,epsilon,charged}' AS gpu_epsilon
  FROM dstack_run($$SELECT category, dp_count(patient_id, 0.1) AS n, dp_avg(score, -1000, 2000, 0.1) AS s
                    FROM g.tx WHERE branch <> 2 GROUP BY category$$) r \gset
RESET gpu_scan.debug_planner;
SET gpu_scan.enabled = off;
SET dstack_fdw.dp_test_seed = '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f';
SELECT r #> '{body,result,rows}' = :'gpu_rows'::jsonb AS same_rows, r #> '{body,epsilon,charged}' = :'gpu_epsilon'::jsonb AS same_charge,
       jsonb_array_length(r #> '{body,result,rows}') AS groups, r #>> '{body,datasets,0,table}' AS dataset
  FROM dstack_run($$SELECT category, dp_count(patient_id, 0.1) AS n, dp_avg(score, -1000, 2000, 0.1) AS s
                    FROM g.tx WHERE branch <> 2 GROUP BY category$$) r;
-- and a join: each sealed table bounded on its own, as the foreign scans do
-- (two grouped answers at 0.7 each used most of the 1.5 budget: a test-only
-- reset by the superuser, the suite restores the ledger at its end)
DELETE FROM dstack_budget;
SET dstack_fdw.output_guard = on;
SET dstack_fdw.dp_test_seed = '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f';
SET gpu_scan.enabled = on;
SELECT r #> '{body,result,rows}' AS join_rows FROM dstack_run($$SELECT p.region, dp_count(patient_id, 0.1)
  FROM g.tx t JOIN g.people p USING (patient_id) WHERE t.amount > 0 GROUP BY p.region$$) r \gset
SET gpu_scan.enabled = off;
SET dstack_fdw.dp_test_seed = '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f';
SELECT r #> '{body,result,rows}' = :'join_rows'::jsonb AS same_join_rows,
       jsonb_array_length(r #> '{body,datasets}') AS datasets
  FROM dstack_run($$SELECT p.region, dp_count(patient_id, 0.1)
  FROM g.tx t JOIN g.people p USING (patient_id) WHERE t.amount > 0 GROUP BY p.region$$) r;
-- bounded: 3000 patients, at most one row each (a true count near 3000 * 6/7 * 8/9, not 9000 * 6/7 * 8/9)
SELECT bool_and((row->>1)::int < 700) AS counts_bounded FROM jsonb_array_elements(:'gpu_rows'::jsonb) row;
SET gpu_scan.enabled = on;
RESET dstack_fdw.dp_test_seed;
SET dstack_fdw.output_guard = off;
RESET enable_hashagg;
\set QUIET on
DELETE FROM dstack_receipts;
DELETE FROM dstack_budget;
DELETE FROM dstack_runs;
INSERT INTO dstack_budget SELECT * FROM saved_budget;
INSERT INTO dstack_receipts SELECT * FROM saved_receipts;
INSERT INTO dstack_runs SELECT * FROM saved_runs;
\set QUIET off
SELECT setval('dstack_runs_id_seq', coalesce(max(id), 0) + 1, false) > 0 AS run_ids_rewound FROM dstack_runs;

-- GpuScan: the kernel filters, the rest stays a CPU filter, rows equal the heap's
EXPLAIN (COSTS OFF)
SELECT id, category FROM g.tx WHERE score > 100 AND flagged AND category LIKE 'cat-1%';
SELECT count(*) AS differing FROM (
  (SELECT id, category, price FROM g.tx WHERE score > 100 AND flagged AND category LIKE 'cat-1%'
   EXCEPT ALL SELECT id, category, price FROM tx WHERE score > 100 AND flagged AND category LIKE 'cat-1%')
  UNION ALL
  (SELECT id, category, price FROM tx WHERE score > 100 AND flagged AND category LIKE 'cat-1%'
   EXCEPT ALL SELECT id, category, price FROM g.tx WHERE score > 100 AND flagged AND category LIKE 'cat-1%')) d;

-- sum(int8) and avg(int8): the kernels keep PostgreSQL's int128 sum and hand
-- the Finalize Agg int8_avg_serialize's state; length(), char_length(),
-- octet_length() of text: int4 columns the host counts for the kernels;
-- min/max of text (one group, "C" collation): folded by the host in the scan
EXPLAIN (COSTS OFF)
SELECT sum(v), avg(v), min(t), max(t), sum(length(t)), min(vc), max(vc) FROM g.gswide;
EXPLAIN (COSTS OFF)
SELECT k, sum(v), avg(v), sum(octet_length(t)), max(char_length(vc)) FROM g.gswide WHERE id > 10 GROUP BY k;
SELECT sum(v), avg(v), count(v), min(t), max(t), sum(length(t)), sum(octet_length(t)), min(vc), max(vc),
       avg(char_length(t)), max(character_length(vc)), min(length(t)), count(length(t)) FROM g.gswide;
SELECT sum(v), avg(v), count(v), min(t), max(t), sum(length(t)), sum(octet_length(t)), min(vc), max(vc),
       avg(char_length(t)), max(character_length(vc)), min(length(t)), count(length(t)) FROM gswide;
SELECT k, sum(v), avg(v), sum(length(t)), max(octet_length(t)), sum(length(vc)) FROM g.gswide GROUP BY k ORDER BY k;
SELECT k, sum(v), avg(v), sum(length(t)), max(octet_length(t)), sum(length(vc)) FROM gswide GROUP BY k ORDER BY k;
-- a filter: min/max of text see the rows the kernels aggregate, not the others
SELECT min(t), max(t), sum(v), min(vc) FROM g.gswide WHERE id > 1500 AND k <> 2 AND t <> '';
SELECT min(t), max(t), sum(v), min(vc) FROM gswide WHERE id > 1500 AND k <> 2 AND t <> '';
SELECT min(t), max(t), sum(v), avg(v), sum(length(t)) FROM g.gswide WHERE id > 2500 AND k = 4;
SELECT min(t), max(t), sum(v), avg(v), sum(length(t)) FROM g.gswide WHERE id < 0;
SELECT count(*) AS differing FROM (
  (SELECT k, sum(v), avg(v), sum(length(t)), sum(octet_length(vc)) FROM g.gswide WHERE id <= 2000 GROUP BY k
   EXCEPT ALL SELECT k, sum(v), avg(v), sum(length(t)), sum(octet_length(vc)) FROM gswide WHERE id <= 2000 GROUP BY k)
  UNION ALL
  (SELECT k, sum(v), avg(v), sum(length(t)), sum(octet_length(vc)) FROM gswide WHERE id <= 2000 GROUP BY k
   EXCEPT ALL SELECT k, sum(v), avg(v), sum(length(t)), sum(octet_length(vc)) FROM g.gswide WHERE id <= 2000 GROUP BY k)) d;
-- name capture through search_path: a length(text) and a max(text) of the
-- user's ahead of pg_catalog are other functions; GpuPreAgg recognises only
-- the built-ins (by OID and support functions), so the captured names stay on
-- PostgreSQL's nodes and answer as they do over the heap
CREATE SCHEMA gs_capture;
CREATE FUNCTION gs_capture.length(text) RETURNS int4 LANGUAGE sql IMMUTABLE AS 'SELECT 1000';
CREATE FUNCTION gs_capture.keep_first(text, text) RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT ''captured''';
CREATE AGGREGATE gs_capture.max(text) (SFUNC = gs_capture.keep_first, STYPE = text);
SET search_path = gs_capture, pg_catalog, public;
SET gpu_scan.debug_planner = on;
SELECT sum(length(t)) AS len, max(t) AS mx FROM g.gswide;
RESET gpu_scan.debug_planner;
SELECT sum(length(t)) AS len, max(t) AS mx FROM gswide;
RESET search_path;
DROP SCHEMA gs_capture CASCADE;
-- under another deterministic collation they compare as text_smaller does (varstr_cmp)
CREATE COLLATION gs_c_utf8 (provider = libc, locale = 'C.UTF-8');
CREATE COLLATION gs_icu (provider = icu, locale = 'de-u-kn-true');
EXPLAIN (COSTS OFF) SELECT min(t COLLATE gs_icu), max(t COLLATE gs_icu) FROM g.gswide WHERE id > 5;
SELECT min(t COLLATE gs_icu), max(t COLLATE gs_icu), min(vc COLLATE gs_c_utf8), max(vc COLLATE gs_c_utf8)
  FROM g.gswide WHERE id > 5;
SELECT min(t COLLATE gs_icu), max(t COLLATE gs_icu), min(vc COLLATE gs_c_utf8), max(vc COLLATE gs_c_utf8)
  FROM gswide WHERE id > 5;
-- where they stay with PostgreSQL's Agg: per group, and under a nondeterministic
-- collation (strings equal under it but not the same: the answer would depend on row order)
CREATE COLLATION gs_nd (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
SET gpu_scan.debug_planner = on;
SELECT k, min(t) FROM g.gswide GROUP BY k ORDER BY k LIMIT 1;
SELECT max(t COLLATE gs_nd) IS NOT NULL AS has_max FROM g.gswide WHERE id > 5;
RESET gpu_scan.debug_planner;

-- EXPLAIN ANALYZE: rows read and selected, groups; nothing goes to a GPU here
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
SELECT branch, count(*) FROM g.tx WHERE amount > 0 GROUP BY branch;

-- what the planner was told, and why a GPU path was not offered
SET gpu_scan.debug_planner = on;
SELECT count(DISTINCT branch) FROM g.tx;
SELECT sum(big) FROM g.tx;
SELECT count(*) FROM g.tx WHERE price > 50;
SELECT count(*) FROM g.tx a JOIN g.tx b USING (id) WHERE a.branch = 1;
SELECT count(*) FROM g.tx t JOIN g.people p ON t.patient_id < p.patient_id WHERE p.age = 18 AND t.id < 10;
SELECT count(*) FROM g.tx t LEFT JOIN g.people p USING (patient_id) WHERE t.id < 10;
SET gpu_scan.enable_preagg = off;
SELECT count(*) FROM g.tx WHERE branch = 1;
RESET gpu_scan.enable_preagg;
SET gpu_scan.host_path = off;
SET gpu_scan.use_gpu TO off;  -- (tools/gpucheck.sh keeps this one off on a GPU machine)
SELECT count(*) FROM g.tx WHERE branch = 1;
RESET gpu_scan.debug_planner;
RESET gpu_scan.host_path;
RESET gpu_scan.use_gpu;
-- the in-memory group table stops, with advice, where HashAggregate would spill
SET gpu_scan.max_groups = 1000;
SELECT id, count(*) FROM g.tx GROUP BY id;
RESET gpu_scan.max_groups;

-- no GPU is never an error: a library that is not there is a reason in EXPLAIN
\c
\i sql/include/fdw_env.psql
SET gpu_scan.enabled = on;
SET gpu_scan.host_path = on;
SET gpu_scan.libcuda = '/nonexistent/libcuda.so.1';
SET dstack_fdw.explain_stable = off;
CREATE FUNCTION gs_plan_lines(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE l text;
BEGIN
  FOR l IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP RETURN NEXT l; END LOOP;
END $$;
SELECT trim(l) AS line FROM gs_plan_lines('SELECT count(*) FROM g.tx') l WHERE l LIKE '%Device%';
SELECT count(*) FROM g.tx;
-- a GPU outside confidential-computing mode is not used: decrypted columns
-- would cross PCIe in the clear (tools/libcuda-sim simulates the driver and NVML)
\c
\i sql/include/fdw_env.psql
\getenv tools DSTACK_TEST_TOOLS
\set simcuda :tools '/libcuda-sim/libcuda-sim.so'
\set simnvml :tools '/libcuda-sim/libnvml-sim-cc-off.so'
SET gpu_scan.enabled = on;
SET dstack_fdw.explain_stable = off;
SET gpu_scan.libcuda = :'simcuda';
SET gpu_scan.libnvidia_ml = :'simnvml';
SELECT trim(l) AS line FROM gs_plan_lines('SELECT count(*) FROM g.tx') l WHERE l LIKE '%Device%';
