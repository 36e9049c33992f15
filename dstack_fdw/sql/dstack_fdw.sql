-- dstack_fdw 0.1.0: sealed datasets as foreign tables inside a dstack CVM.
\echo Use "CREATE EXTENSION dstack_fdw" to load this file. \quit

CREATE FUNCTION dstack_fdw_handler()
RETURNS fdw_handler
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

COMMENT ON FUNCTION dstack_fdw_handler() IS
'Foreign data wrapper handler of dstack_fdw.';

CREATE FUNCTION dstack_fdw_validator(text[], oid)
RETURNS void
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

COMMENT ON FUNCTION dstack_fdw_validator(text[], oid) IS
'Checks dstack_fdw server options (rpc_url, app_contract, guest_agent, kms_root_pubkey, confirmations, '
'connect_timeout_ms, timeout_ms, retries) and table options (path, owner).';

CREATE FOREIGN DATA WRAPPER dstack_fdw
  HANDLER dstack_fdw_handler
  VALIDATOR dstack_fdw_validator;

COMMENT ON FOREIGN DATA WRAPPER dstack_fdw IS
'Sealed datasets, mounted only after the consortium approved on chain; keys from the dstack guest agent.';

-- The privacy-budget ledger, one row per consortium (app id).  Written only
-- by dstack_run() with the extension owner's rights; survives restarts and
-- is included in pg_dump.
CREATE TABLE dstack_budget (
    app_id       text PRIMARY KEY,
    total_micro  bigint NOT NULL CHECK (total_micro >= 0),
    spent_micro  bigint NOT NULL CHECK (spent_micro >= 0 AND spent_micro <= total_micro),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE dstack_budget IS
'Privacy budget per consortium, in millionths of epsilon: the total comes from the consortium contract''s policy.';
SELECT pg_catalog.pg_extension_config_dump('dstack_budget', '');

-- The attested run history: every receipt, hash-chained by prev_hash.
CREATE TABLE dstack_receipts (
    seq            bigint PRIMARY KEY,
    body_sha256    text NOT NULL UNIQUE,
    prev_hash      text NOT NULL,
    epsilon_micro  bigint NOT NULL,
    issued_at      timestamptz NOT NULL DEFAULT now(),
    receipt        jsonb NOT NULL
);
COMMENT ON TABLE dstack_receipts IS
'Every receipt dstack_run() released, in order; prev_hash is the previous receipt''s body hash.';
SELECT pg_catalog.pg_extension_config_dump('dstack_receipts', '');

-- Every dstack_run(), charged or refused, in order: written by a background
-- worker in its own transaction before the query reads a row, so no rollback
-- of the caller's can undo a charge.  status: charged (running, or ended
-- without an answer), answered, failed (the charge stays), refused (budget).
CREATE TABLE dstack_runs (
    id             bigserial PRIMARY KEY,
    app_id         text NOT NULL,
    query          text NOT NULL,
    epsilon_micro  bigint NOT NULL CHECK (epsilon_micro >= 0),
    delta          text NOT NULL,
    datasets       jsonb NOT NULL,
    status         text NOT NULL CHECK (status IN ('charged', 'answered', 'failed', 'refused')),
    error_class    text,
    receipt_seq    bigint,
    started_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz
);
COMMENT ON TABLE dstack_runs IS
'Audit of every dstack_run(): its charge is committed here before any sealed row is read; failed runs keep theirs.';
SELECT pg_catalog.pg_extension_config_dump('dstack_runs', '');
SELECT pg_catalog.pg_extension_config_dump('dstack_runs_id_seq', '');

REVOKE ALL ON dstack_budget, dstack_receipts, dstack_runs FROM PUBLIC;
GRANT SELECT ON dstack_budget, dstack_receipts, dstack_runs TO PUBLIC;

CREATE FUNCTION dstack_run(query text)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'dstack_run'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, @extschema@, pg_temp;

COMMENT ON FUNCTION dstack_run(text) IS
'Run a query of DP aggregates over sealed tables: charges the privacy budget and returns the signed receipt '
'(result, datasets, epsilon, app id, compose-hash, chain state, signature with its dstack chain, TDX quote).';

CREATE FUNCTION dstack_consortia(
    OUT server text, OUT app_id text, OUT approvals bigint, OUT threshold bigint, OUT revoked boolean,
    OUT epsilon_total text, OUT approval text, OUT revocation text, OUT recipe text, OUT owners text,
    OUT kms text, OUT overall text, OUT block_number bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'dstack_consortia'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION dstack_consortia() IS
'Each consortium (dstack_fdw server) read from the chain now, graded match/partial/miss against the mount criteria.';

CREATE VIEW dstack_consortia AS SELECT * FROM dstack_consortia();
COMMENT ON VIEW dstack_consortia IS
'On-chain state of each consortium against its criteria: approval, revocation, recipe (compose-hash), owners of mounted tables, and whether dstack''s KMS contract allows this CVM.';
-- dp_agg.sql: differentially private aggregates (C in dp_agg.c).
-- All noise is integer-exact discrete Laplace, added once in the final
-- function; a group without rows gets noise too.  Which groups dstack_run()
-- releases is decided there, by DP partition selection.

-- support functions (internal state; parallel-safe, combinable) --------------

CREATE FUNCTION dp_count_trans(internal, anyelement, float8)
RETURNS internal
AS 'MODULE_PATHNAME', 'dfdw_dp_count_trans'
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
COMMENT ON FUNCTION dp_count_trans(internal, anyelement, float8) IS
  'transition function of dp_count: counts non-NULL values, fixes epsilon for the group';

CREATE FUNCTION dp_sum_int8_trans(internal, int8, int8, int8, float8)
RETURNS internal
AS 'MODULE_PATHNAME', 'dfdw_dp_sum_int8_trans'
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
COMMENT ON FUNCTION dp_sum_int8_trans(internal, int8, int8, int8, float8) IS
  'transition function of dp_sum(int8, ...): clamps into [lower, upper], exact 128-bit sum';

CREATE FUNCTION dp_sum_float8_trans(internal, float8, float8, float8, float8)
RETURNS internal
AS 'MODULE_PATHNAME', 'dfdw_dp_sum_float8_trans'
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
COMMENT ON FUNCTION dp_sum_float8_trans(internal, float8, float8, float8, float8) IS
  'transition function of dp_sum(float8, ...) and dp_avg: clamps, fixed-point at 1e-6, exact sum';

CREATE FUNCTION dp_combine(internal, internal)
RETURNS internal
AS 'MODULE_PATHNAME', 'dfdw_dp_combine'
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
COMMENT ON FUNCTION dp_combine(internal, internal) IS
  'combine function of the DP aggregates: merges partial states of parallel workers';

CREATE FUNCTION dp_serialize(internal)
RETURNS bytea
AS 'MODULE_PATHNAME', 'dfdw_dp_serialize'
LANGUAGE C STRICT PARALLEL SAFE;
COMMENT ON FUNCTION dp_serialize(internal) IS
  'serial function of the DP aggregates (worker to leader)';

CREATE FUNCTION dp_deserialize(bytea, internal)
RETURNS internal
AS 'MODULE_PATHNAME', 'dfdw_dp_deserialize'
LANGUAGE C STRICT PARALLEL SAFE;
COMMENT ON FUNCTION dp_deserialize(bytea, internal) IS
  'deserial function of the DP aggregates (worker to leader)';

CREATE FUNCTION dp_count_final(internal)
RETURNS bigint
AS 'MODULE_PATHNAME', 'dfdw_dp_count_final'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION dp_count_final(internal) IS
  'final function of dp_count: true count plus discrete Laplace noise of scale 1/epsilon';

CREATE FUNCTION dp_sum_int8_final(internal)
RETURNS numeric
AS 'MODULE_PATHNAME', 'dfdw_dp_sum_int8_final'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION dp_sum_int8_final(internal) IS
  'final function of dp_sum(int8, ...): sum plus discrete Laplace noise of scale max(|lower|,|upper|)/epsilon';

CREATE FUNCTION dp_sum_float8_final(internal)
RETURNS float8
AS 'MODULE_PATHNAME', 'dfdw_dp_sum_float8_final'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION dp_sum_float8_final(internal) IS
  'final function of dp_sum(float8, ...): fixed-point sum plus discrete Laplace noise in units of 1e-6';

CREATE FUNCTION dp_avg_final(internal)
RETURNS float8
AS 'MODULE_PATHNAME', 'dfdw_dp_avg_final'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION dp_avg_final(internal) IS
  'final function of dp_avg: noisy sum / noisy count with epsilon split in half, clamped into [lower, upper]';

-- the aggregates --------------------------------------------------------------

CREATE AGGREGATE dp_count(anyelement, float8) (
  SFUNC = dp_count_trans,
  STYPE = internal,
  FINALFUNC = dp_count_final,
  COMBINEFUNC = dp_combine,
  SERIALFUNC = dp_serialize,
  DESERIALFUNC = dp_deserialize,
  PARALLEL = SAFE
);
COMMENT ON AGGREGATE dp_count(anyelement, float8) IS
  'differentially private count of non-NULL values: dp_count(value, epsilon); discrete Laplace noise of scale 1/epsilon';

CREATE AGGREGATE dp_sum(int8, int8, int8, float8) (
  SFUNC = dp_sum_int8_trans,
  STYPE = internal,
  FINALFUNC = dp_sum_int8_final,
  COMBINEFUNC = dp_combine,
  SERIALFUNC = dp_serialize,
  DESERIALFUNC = dp_deserialize,
  PARALLEL = SAFE
);
COMMENT ON AGGREGATE dp_sum(int8, int8, int8, float8) IS
  'differentially private sum: dp_sum(value, lower, upper, epsilon); values clamped into [lower, upper]; noise scale max(|lower|,|upper|)/epsilon; numeric result';

CREATE AGGREGATE dp_sum(float8, float8, float8, float8) (
  SFUNC = dp_sum_float8_trans,
  STYPE = internal,
  FINALFUNC = dp_sum_float8_final,
  COMBINEFUNC = dp_combine,
  SERIALFUNC = dp_serialize,
  DESERIALFUNC = dp_deserialize,
  PARALLEL = SAFE
);
COMMENT ON AGGREGATE dp_sum(float8, float8, float8, float8) IS
  'differentially private sum: dp_sum(value, lower, upper, epsilon); clamped, summed exactly at resolution 1e-6; noise scale max(|lower|,|upper|)/epsilon';

CREATE AGGREGATE dp_avg(float8, float8, float8, float8) (
  SFUNC = dp_sum_float8_trans,
  STYPE = internal,
  FINALFUNC = dp_avg_final,
  COMBINEFUNC = dp_combine,
  SERIALFUNC = dp_serialize,
  DESERIALFUNC = dp_deserialize,
  PARALLEL = SAFE
);
COMMENT ON AGGREGATE dp_avg(float8, float8, float8, float8) IS
  'differentially private mean: dp_avg(value, lower, upper, epsilon); noisy sum / noisy count, epsilon split in half, result clamped into [lower, upper]';

-- dp_quantile: a bounded DP quantile (C in dp_quantile.c) -------------------

CREATE FUNCTION dp_quantile_trans(internal, float8, float8, float8, float8, float8)
RETURNS internal
AS 'MODULE_PATHNAME', 'dfdw_dp_quantile_trans'
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
COMMENT ON FUNCTION dp_quantile_trans(internal, float8, float8, float8, float8, float8) IS
  'transition function of dp_quantile: counts the clamped value in one of 1024 buckets of [lower, upper]';

CREATE FUNCTION dp_quantile_combine(internal, internal)
RETURNS internal
AS 'MODULE_PATHNAME', 'dfdw_dp_quantile_combine'
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
COMMENT ON FUNCTION dp_quantile_combine(internal, internal) IS
  'combine function of dp_quantile: adds histograms (exact)';

CREATE FUNCTION dp_quantile_serialize(internal)
RETURNS bytea
AS 'MODULE_PATHNAME', 'dfdw_dp_quantile_serialize'
LANGUAGE C STRICT PARALLEL SAFE;
COMMENT ON FUNCTION dp_quantile_serialize(internal) IS
  'serialises a dp_quantile histogram for parallel aggregation';

CREATE FUNCTION dp_quantile_deserialize(bytea, internal)
RETURNS internal
AS 'MODULE_PATHNAME', 'dfdw_dp_quantile_deserialize'
LANGUAGE C STRICT PARALLEL SAFE;
COMMENT ON FUNCTION dp_quantile_deserialize(bytea, internal) IS
  'deserialises a dp_quantile histogram for parallel aggregation';

CREATE FUNCTION dp_quantile_final(internal)
RETURNS float8
AS 'MODULE_PATHNAME', 'dfdw_dp_quantile_final'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION dp_quantile_final(internal) IS
  'final function of dp_quantile: Report Noisy Max with discrete Laplace noise over the buckets';

CREATE AGGREGATE dp_quantile(value float8, q float8, lower float8, upper float8, epsilon float8) (
    SFUNC = dp_quantile_trans,
    STYPE = internal,
    FINALFUNC = dp_quantile_final,
    COMBINEFUNC = dp_quantile_combine,
    SERIALFUNC = dp_quantile_serialize,
    DESERIALFUNC = dp_quantile_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE dp_quantile(float8, float8, float8, float8, float8) IS
  'epsilon-DP q-quantile of values clamped to [lower, upper], to a resolution of (upper - lower)/1024';
