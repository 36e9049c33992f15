-- gpu_scan: GpuPreAgg is built only for aggregates it can split.  The
-- Finalize Agg above it combines (and, for an internal state, deserializes)
-- the partial states, so an aggregate without a combine function, or with an
-- internal state but no serial/deserial functions, must stay on PostgreSQL's
-- own nodes; one named like a DP aggregate in the extension's schema must
-- really be dstack_fdw's before the kernels compute its state.  Each such
-- aggregate used to reach GpuPreAgg: "cache lookup failed for function 0"
-- (XX000), or a crashed backend.
\i sql/include/fdw_env.psql
\set VERBOSITY default
CREATE SERVER gsh_consortium FOREIGN DATA WRAPPER dstack_fdw
  OPTIONS (rpc_url :'rpc', guest_agent :'socket', kms_root_pubkey :'kms_root', kms_contract :'kms_contract', chain_id :'chain_id', app_contract :'app_id');
\! mkdir -p "$DSTACK_TEST_OUT/gpu_holes" && chown postgres: "$DSTACK_TEST_OUT/gpu_holes" 2>/dev/null; true
\set gsh_out :out '/gpu_holes'
SET dstack_seal.output_dir = :'gsh_out';
SET dstack_seal.rows_per_group = 300;
CREATE TABLE gsh_t AS
  SELECT g::int8 AS id, (g % 5)::int4 AS k, (g % 97)::int8 AS n, (g % 89)::int2 AS s
  FROM generate_series(1, 1000) g;
SELECT (dstack_seal('gsh_t'))->>'row_count' AS sealed_rows;
CREATE SCHEMA gsh;
IMPORT FOREIGN SCHEMA sealed FROM SERVER gsh_consortium INTO gsh OPTIONS (directory :'gsh_out');

SET gpu_scan.enabled = on;
SET gpu_scan.host_path = on;
SET gpu_scan.use_gpu = off;
SET gpu_scan.debug_planner = on;

-- no combine function: a user's sum, and one named dp_count in the extension's schema
CREATE AGGREGATE gsh_sum(int4) (SFUNC = int4_sum, STYPE = int8);
CREATE AGGREGATE dp_count(int4) (SFUNC = int4_sum, STYPE = int8);
-- an internal state with a combine function but no serial/deserial functions
CREATE AGGREGATE dp_count(int2) (SFUNC = int2_accum, STYPE = internal,
  FINALFUNC = numeric_poly_var_samp, COMBINEFUNC = numeric_poly_combine);
-- combinable, but not dstack_fdw's DP state: the kernels must not compute it
CREATE AGGREGATE dp_count(int8) (SFUNC = int8pl, STYPE = int8, COMBINEFUNC = int8pl);

EXPLAIN (COSTS OFF) SELECT k, gsh_sum(k) FROM gsh.gsh_t GROUP BY k;
EXPLAIN (COSTS OFF) SELECT k, dp_count(k) FROM gsh.gsh_t GROUP BY k;
SELECT k, dp_count(k) FROM gsh.gsh_t GROUP BY k ORDER BY k;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
EXPLAIN (COSTS OFF) SELECT k, dp_count(s) FROM gsh.gsh_t GROUP BY k;
SELECT k, round(dp_count(s), 6) FROM gsh.gsh_t GROUP BY k ORDER BY k;
EXPLAIN (COSTS OFF) SELECT k, dp_count(n) FROM gsh.gsh_t GROUP BY k;
SELECT k, dp_count(n) FROM gsh.gsh_t GROUP BY k ORDER BY k;
-- the answers equal the heap table's
SELECT count(*) AS differing FROM (
  (SELECT k, gsh_sum(k), dp_count(k), round(dp_count(s), 6), dp_count(n) FROM gsh.gsh_t GROUP BY k
   EXCEPT ALL
   SELECT k, gsh_sum(k), dp_count(k), round(dp_count(s), 6), dp_count(n) FROM gsh_t GROUP BY k)
  UNION ALL
  (SELECT k, gsh_sum(k), dp_count(k), round(dp_count(s), 6), dp_count(n) FROM gsh_t GROUP BY k
   EXCEPT ALL
   SELECT k, gsh_sum(k), dp_count(k), round(dp_count(s), 6), dp_count(n) FROM gsh.gsh_t GROUP BY k)) d;
-- with a refused aggregate beside it, a kernel aggregate runs on PostgreSQL's nodes too
EXPLAIN (COSTS OFF) SELECT k, count(*), gsh_sum(k) FROM gsh.gsh_t GROUP BY k;
-- dstack_fdw's own DP aggregates and the built-in ones still get GpuPreAgg
RESET gpu_scan.debug_planner;
EXPLAIN (COSTS OFF)
SELECT k, count(*), sum(k), dp_count(id, 1.0), dp_sum(n, 0::int8, 100::int8, 1.0), dp_avg(id::float8, 0, 1000, 1.0)
  FROM gsh.gsh_t GROUP BY k;

DROP AGGREGATE gsh_sum(int4);
DROP AGGREGATE dp_count(int4);
DROP AGGREGATE dp_count(int2);
DROP AGGREGATE dp_count(int8);
DROP SCHEMA gsh CASCADE;
DROP TABLE gsh_t;
DROP SERVER gsh_consortium;
