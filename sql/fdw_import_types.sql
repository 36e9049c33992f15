-- IMPORT FOREIGN SCHEMA and the manifest's type names.  A manifest is signed
-- by its owner, but an owner (or whoever holds an owner's key) can sign any
-- type text, and import used to splice it into CREATE FOREIGN TABLE: a type
-- such as "integer) SERVER other OPTIONS (path ...) --" rewrote the table's
-- server and file.  Each type text must now parse as one type name, name an
-- existing type that is not a pseudo-type, and decode the sealed encoding;
-- the DDL gets PostgreSQL's own printing of it.  The crafted manifests are
-- re-signed with the owner's key (tools/dseal-tamper.mjs resign).
\i sql/include/fdw_env.psql
\set VERBOSITY default
\! mkdir -p "$DSTACK_TEST_OUT/import_types" && chown postgres: "$DSTACK_TEST_OUT/import_types" 2>/dev/null; true
\set itdir :out '/import_types'
SET dstack_seal.output_dir = :'itdir';
CREATE SERVER fit_srv FOREIGN DATA WRAPPER dstack_fdw
  OPTIONS (rpc_url :'rpc', guest_agent :'socket', kms_root_pubkey :'kms_root', kms_contract :'kms_contract', chain_id :'chain_id');
-- the server an injected statement would point the table at
CREATE SERVER fit_evil FOREIGN DATA WRAPPER dstack_fdw
  OPTIONS (rpc_url 'http://127.0.0.1:9', kms_root_pubkey :'kms_root', kms_contract :'kms_contract', chain_id :'chain_id');
CREATE TYPE "fit mood" AS ENUM ('calm', 'busy');
CREATE TABLE honest AS
  SELECT g AS id, ('n' || g)::varchar(20) AS name, (g / 3.0)::numeric(10,2) AS amount,
         timestamptz '2026-01-01 00:00+00' + g * interval '1 hour' AS at, ARRAY[g, g + 1] AS tags,
         (CASE WHEN g % 2 = 0 THEN 'calm' ELSE 'busy' END)::"fit mood" AS mood, g * 0.5::float8 AS score
  FROM generate_series(1, 30) g;
SELECT (dstack_seal('honest'))->>'row_count' AS sealed_rows;

-- an honest manifest imports with its types, typmods and quoted names intact
CREATE SCHEMA fit;
IMPORT FOREIGN SCHEMA sealed LIMIT TO (honest) FROM SERVER fit_srv INTO fit OPTIONS (directory :'itdir');
SELECT attname, format_type(atttypid, atttypmod) AS type
  FROM pg_attribute WHERE attrelid = 'fit.honest'::regclass AND attnum > 0 ORDER BY attnum;
SELECT count(*), sum(amount), max(at), max(tags[2]), count(*) FILTER (WHERE mood = 'calm') AS calm FROM fit.honest;

-- crafted manifests, consistently re-signed by owner 1
\! cd "$DSTACK_TEST_OUT/import_types" && for t in inject addcol nosuch pseudo mismatch typmod; do cp honest.dseal $t.dseal; chmod 644 $t.dseal; done
\! cd "$DSTACK_TEST_OUT/import_types" && node "$DSTACK_TEST_TOOLS/dseal-tamper.mjs" inject.dseal resign "$DSTACK_TEST_DIR/owner1.key" "header.columns.0.type=\"integer) SERVER fit_evil OPTIONS (path '/etc/passwd', owner '0x0000000000000000000000000000000000000001') --\""
\! cd "$DSTACK_TEST_OUT/import_types" && node "$DSTACK_TEST_TOOLS/dseal-tamper.mjs" addcol.dseal resign "$DSTACK_TEST_DIR/owner1.key" 'header.columns.0.type="integer, smuggled text"'
\! cd "$DSTACK_TEST_OUT/import_types" && node "$DSTACK_TEST_TOOLS/dseal-tamper.mjs" nosuch.dseal resign "$DSTACK_TEST_DIR/owner1.key" 'header.columns.0.type="no_such_type"'
\! cd "$DSTACK_TEST_OUT/import_types" && node "$DSTACK_TEST_TOOLS/dseal-tamper.mjs" pseudo.dseal resign "$DSTACK_TEST_DIR/owner1.key" 'header.columns.0.type="internal"'
\! cd "$DSTACK_TEST_OUT/import_types" && node "$DSTACK_TEST_TOOLS/dseal-tamper.mjs" mismatch.dseal resign "$DSTACK_TEST_DIR/owner1.key" 'header.columns.0.type="text"'
\! cd "$DSTACK_TEST_OUT/import_types" && node "$DSTACK_TEST_TOOLS/dseal-tamper.mjs" typmod.dseal resign "$DSTACK_TEST_DIR/owner1.key" 'header.columns.1.type="character varying(0)"'
-- the signatures verify: only the type names are wrong
SELECT t AS file, v->>'valid' AS valid, v->>'signature' AS signature
  FROM unnest(ARRAY['inject', 'addcol', 'nosuch', 'pseudo', 'mismatch', 'typmod']) t,
       dstack_seal_verify(:'itdir' || '/' || t || '.dseal') v;

IMPORT FOREIGN SCHEMA sealed LIMIT TO (inject) FROM SERVER fit_srv INTO fit OPTIONS (directory :'itdir');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
IMPORT FOREIGN SCHEMA sealed LIMIT TO (addcol) FROM SERVER fit_srv INTO fit OPTIONS (directory :'itdir');
IMPORT FOREIGN SCHEMA sealed LIMIT TO (nosuch) FROM SERVER fit_srv INTO fit OPTIONS (directory :'itdir');
IMPORT FOREIGN SCHEMA sealed LIMIT TO (pseudo) FROM SERVER fit_srv INTO fit OPTIONS (directory :'itdir');
IMPORT FOREIGN SCHEMA sealed LIMIT TO (mismatch) FROM SERVER fit_srv INTO fit OPTIONS (directory :'itdir');
IMPORT FOREIGN SCHEMA sealed LIMIT TO (typmod) FROM SERVER fit_srv INTO fit OPTIONS (directory :'itdir');
-- nothing but the honest table was created, and nothing points at the other server
SELECT c.relname, s.srvname, ft.ftoptions
  FROM pg_foreign_table ft JOIN pg_class c ON c.oid = ft.ftrelid JOIN pg_foreign_server s ON s.oid = ft.ftserver
 WHERE c.relnamespace = 'fit'::regnamespace OR s.srvname = 'fit_evil' ORDER BY 1;

DROP SCHEMA fit CASCADE;
DROP TABLE honest;
DROP TYPE "fit mood";
DROP SERVER fit_srv;
DROP SERVER fit_evil;
