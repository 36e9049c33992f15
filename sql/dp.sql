-- dp: the differentially private aggregates dp_count, dp_sum, dp_avg
-- (dstack_fdw/dp_agg.c) on an ordinary heap table: a seeded, reproducible
-- part (test-only GUC dstack_fdw.dp_test_seed) and a CSPRNG part checked by
-- ranges wide enough that a correct sampler misses them with probability
-- below e^-40.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS dstack_fdw;
RESET client_min_messages;

CREATE TABLE dp_t AS
  SELECT g AS id, (g % 100)::float8 AS v, g::int8 AS i, (g % 3) AS grp
  FROM generate_series(1, 10000) g;
INSERT INTO dp_t VALUES (10001, NULL, NULL, 3), (10002, 'NaN', NULL, 3);
-- a group of five rows (the aggregates release every group: which groups
-- dstack_run() releases is decided by partition selection, see receipts.sql)
INSERT INTO dp_t SELECT 20000 + g, 1, 1, 9 FROM generate_series(1, 5) g;
ANALYZE dp_t;

-- true values, for reading the noisy ones below
SELECT count(v) FILTER (WHERE v = v) AS n, sum(v) FILTER (WHERE v = v) AS sum_v,
       sum(i) AS sum_i, avg(v) FILTER (WHERE v = v) AS avg_v
FROM dp_t WHERE grp < 3;

-- ---- seeded: reproducible ------------------------------------------------
SET dstack_fdw.dp_test_seed = '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f';
SELECT dp_count(id, 1.0) AS n, dp_sum(v, 0, 100, 1.0) AS sum_v,
       dp_sum(i, 0::int8, 10000::int8, 1.0) AS sum_i, dp_avg(v, 0, 100, 1.0) AS avg_v
FROM dp_t WHERE grp < 3;
-- the same seed again gives the same answer
SET dstack_fdw.dp_test_seed = '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f';
SELECT dp_count(id, 1.0) AS n, dp_sum(v, 0, 100, 1.0) AS sum_v,
       dp_sum(i, 0::int8, 10000::int8, 1.0) AS sum_i, dp_avg(v, 0, 100, 1.0) AS avg_v
FROM dp_t WHERE grp < 3;

-- NULL values are not counted; NaN counts as NULL in the float8 forms;
-- the group of five is noised like any other (no exact suppression).
-- Sorted grouping: noise is drawn in the order groups are finalised, so the
-- seeded output depends on that order; a hash table's order is not pinned.
SET enable_hashagg = off;
SELECT grp, dp_count(v, 0.5) AS n, dp_sum(v, 0, 100, 0.5) AS s, dp_avg(v, 0, 100, 0.5) AS a
FROM dp_t GROUP BY grp ORDER BY grp;
-- an all-NULL group and an empty input get noise, never NULL (NULL would
-- say "no rows" exactly); the constants come from the Aggref
SELECT dp_count(v, 1.0) FROM dp_t WHERE grp = 3;
SELECT dp_count(v, 1.0), dp_sum(v, 0, 1, 1.0) FROM dp_t WHERE false;
SELECT dp_count(v, 1.0) IS NOT NULL AS c, dp_sum(i, 0::int8, 5::int8, 1.0) IS NOT NULL AS s,
       dp_avg(v, 0, 1, 1.0) IS NOT NULL AS a, dp_quantile(v, 0.5, 0, 10, 1.0) IS NOT NULL AS q
FROM dp_t WHERE false;
-- the removed minimum-group setting is gone for good
SET dstack_fdw.dp_min_group_size = 0;

-- clamping: values outside [lower, upper] count as the bound
SELECT dp_avg(v, 200, 300, 1.0) AS clamped_to_lower, dp_avg(v, -10, -5, 1.0) AS clamped_to_upper
FROM dp_t WHERE grp < 3;

-- ---- parallel aggregation: combine/serialise are exact ----------------------
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
EXPLAIN (COSTS OFF)
SELECT dp_count(id, 1.0), dp_sum(v, 0, 100, 1.0), dp_sum(i, 0::int8, 10000::int8, 1.0), dp_avg(v, 0, 100, 1.0)
FROM dp_t WHERE grp < 3;
-- same seed, parallel plan: the same answer as the serial plan gave above
SET dstack_fdw.dp_test_seed = '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f';
SELECT dp_count(id, 1.0) AS n, dp_sum(v, 0, 100, 1.0) AS sum_v,
       dp_sum(i, 0::int8, 10000::int8, 1.0) AS sum_i, dp_avg(v, 0, 100, 1.0) AS avg_v
FROM dp_t WHERE grp < 3;
EXPLAIN (COSTS OFF)
SELECT grp, dp_count(v, 0.5) FROM dp_t GROUP BY grp ORDER BY grp;
SELECT grp, dp_count(v, 0.5) IS NULL AS is_null FROM dp_t GROUP BY grp ORDER BY grp;
RESET parallel_leader_participation;
RESET enable_hashagg;

-- ---- CSPRNG: results within wide ranges of the truth ------------------------
RESET dstack_fdw.dp_test_seed;
-- Laplace scales at epsilon 1: count 1, sum 100 (int sum 10000), avg 2 and 200;
-- P(|Lap(b)| > 40 b) = e^-40.
SELECT abs(dp_count(id, 1.0) - 10000) <= 40 AS count_ok,
       abs(dp_sum(v, 0, 100, 1.0) - 495000) <= 4000 AS sum_ok,
       abs(dp_sum(i, 0::int8, 10000::int8, 1.0) - 50005000) <= 400000 AS sum_i_ok,
       abs(dp_avg(v, 0, 100, 1.0) - 49.5) <= 1 AS avg_ok
FROM dp_t WHERE grp < 3;
-- the same query twice without a seed gives different noise (P(equal) < 1e-3)
SELECT (SELECT dp_sum(i, 0::int8, 10000::int8, 1.0) FROM dp_t WHERE grp < 3) <>
       (SELECT dp_sum(i, 0::int8, 10000::int8, 1.0) FROM dp_t WHERE grp < 3) AS differs;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;

-- ---- errors -------------------------------------------------------------------
\set VERBOSITY default
SELECT dp_count(id, 0) FROM dp_t;
SELECT dp_count(id, -1) FROM dp_t;
SELECT dp_count(id, 'NaN') FROM dp_t;
SELECT dp_count(id, NULL) FROM dp_t;
SELECT dp_count(id, 1000) FROM dp_t;
SELECT dp_count(id, 1e-9) FROM dp_t;
SELECT dp_count(id, CASE WHEN id < 10 THEN 0.5 ELSE 1.0 END) FROM dp_t;
SELECT dp_sum(v, 100, 0, 1.0) FROM dp_t;
SELECT dp_sum(v, 5, 5, 1.0) FROM dp_t;
SELECT dp_sum(i, 10::int8, 1::int8, 1.0) FROM dp_t;
SELECT dp_avg(v, 0, NULL, 1.0) FROM dp_t;
SELECT dp_sum(v, 0, 'Infinity', 1.0) FROM dp_t;
SELECT dp_sum(v, 0, 1e13, 1.0) FROM dp_t;
SELECT dp_sum(v, 0, id, 1.0) FROM dp_t;
SET dstack_fdw.dp_test_seed = 'abcd';

DROP TABLE dp_t;

-- dp_quantile: a bounded quantile by Report Noisy Max over 1024 buckets
CREATE TABLE q_data AS SELECT (g % 1000) / 10.0 AS v, g % 4 AS k FROM generate_series(1, 100000) g;
SELECT abs(dp_quantile(v::float8, 0.5, 0, 100, 1.0) - 50) < 1 AS median_near,
       abs(dp_quantile(v::float8, 0.9, 0, 100, 1.0) - 90) < 1 AS p90_near,
       abs(dp_quantile(v::float8, 0.1, 0, 100, 1.0) - 10) < 1 AS p10_near,
       dp_quantile(v::float8, 0.5, 0, 100, 1.0) BETWEEN 0 AND 100 AS in_bounds
  FROM q_data;
-- values outside the bounds are clamped, so the answer stays inside them
SELECT dp_quantile(v::float8 * 10, 0.5, 0, 100, 1.0) > 90 AS clamped_high FROM q_data;
-- seeded: the serial and the parallel plan give the same answer (histograms combine exactly)
SET dstack_fdw.dp_test_seed = '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f';
SELECT dp_quantile(v::float8, 0.5, 0, 100, 1.0) AS serial FROM q_data;
SET dstack_fdw.dp_test_seed = '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f';
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT dp_quantile(v::float8, 0.5, 0, 100, 1.0) FROM q_data;
SELECT dp_quantile(v::float8, 0.5, 0, 100, 1.0) AS parallel FROM q_data;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
RESET dstack_fdw.dp_test_seed;
-- empty and small groups are suppressed; parameters are checked
SELECT dp_quantile(v::float8, 0.5, 0, 100, 1.0) IS NULL AS empty_is_null FROM q_data WHERE false;
SELECT dp_quantile(v::float8, 0.5, 0, 100, 1.0) IS NULL AS small_is_null FROM (SELECT v FROM q_data LIMIT 5) s;
SELECT dp_quantile(v::float8, 1.5, 0, 100, 1.0) FROM q_data;
SELECT dp_quantile(v::float8, 0.5, 100, 0, 1.0) FROM q_data;
SELECT dp_quantile(v::float8, 0.5, 0, 100, 0) FROM q_data;
SELECT dp_quantile(v::float8, k::float8 / 10, 0, 100, 1.0) FROM q_data;
DROP TABLE q_data;
