-- dstack_fdw 0.1.0 -> 0.2.0: the output boundary at execution (CHANGELOG.md).
-- Everything sql/dstack_fdw.sql creates or changes since 0.1.0; the
-- extension_upgrade regression suite checks that an updated 0.1.0 is a fresh
-- 0.2.0, object for object.
\echo Use "ALTER EXTENSION dstack_fdw UPDATE TO '0.2.0'" to load this file. \quit

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

REVOKE ALL ON dstack_runs FROM PUBLIC;
GRANT SELECT ON dstack_runs TO PUBLIC;

-- dstack_run() parses the analyst's text under a pinned search_path, so a
-- temporary table or an analyst's operator cannot capture a name.
ALTER FUNCTION dstack_run(text) SET search_path = pg_catalog, @extschema@, pg_temp;

-- DP aggregates no longer suppress small groups themselves: dstack_run()
-- releases groups by DP partition selection.
COMMENT ON FUNCTION dp_count_final(internal) IS
  'final function of dp_count: true count plus discrete Laplace noise of scale 1/epsilon';
COMMENT ON AGGREGATE dp_count(anyelement, float8) IS
  'differentially private count of non-NULL values: dp_count(value, epsilon); discrete Laplace noise of scale 1/epsilon';

-- dstack_consortia grades whether dstack's KMS contract allows this CVM (a new
-- column before overall): the view and its function are created again.
DROP VIEW dstack_consortia;
DROP FUNCTION dstack_consortia();
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
