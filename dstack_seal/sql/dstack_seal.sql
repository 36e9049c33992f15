-- dstack_seal 0.1.0: silo-side sealing of tables into .dseal datasets.
\echo Use "CREATE EXTENSION dstack_seal" to load this file. \quit

CREATE FUNCTION dstack_seal(tbl regclass, columns text[] DEFAULT NULL, path text DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'dstack_seal'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION dstack_seal(regclass, text[], text) IS
'Seal a table (optionally only the listed columns) into <dstack_seal.output_dir>/<table>.dseal '
'or the given absolute path, bound to the configured recipe; returns the signed manifest.';

CREATE FUNCTION dstack_seal_verify(path text)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'dstack_seal_verify'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

COMMENT ON FUNCTION dstack_seal_verify(text) IS
'Check a sealed dataset without keys: owner signature, recipient key chain, every chunk''s hash and tag.';

REVOKE ALL ON FUNCTION dstack_seal(regclass, text[], text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dstack_seal(regclass, text[], text) TO pg_write_server_files;
REVOKE ALL ON FUNCTION dstack_seal_verify(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dstack_seal_verify(text) TO pg_read_server_files;
