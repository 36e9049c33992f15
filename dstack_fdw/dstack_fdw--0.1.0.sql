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

REVOKE ALL ON dstack_budget, dstack_receipts FROM PUBLIC;
GRANT SELECT ON dstack_budget, dstack_receipts TO PUBLIC;

CREATE FUNCTION dstack_run(query text)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'dstack_run'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION dstack_run(text) IS
'Run a query of DP aggregates over sealed tables: charges the privacy budget and returns the signed receipt '
'(result, datasets, epsilon, app id, compose-hash, chain state, signature with its dstack chain, TDX quote).';
