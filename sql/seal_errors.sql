-- dstack_seal refusals: each with its SQLSTATE, detail and hint, and no file
-- left behind.
\i sql/include/seal_env.psql
\set VERBOSITY default
CREATE TABLE patients (patient_id int, name text, dob date);
INSERT INTO patients SELECT g, 'p' || g, date '1950-01-01' + g FROM generate_series(1, 100) g;

-- malformed settings are refused when they are set
SET dstack_seal.app_id = '0x1234';
SET dstack_seal.compose_hash = 'zz';
SET dstack_seal.kms_root_pubkey = '020000000000000000000000000000000000000000000000000000000000000000';

-- bad arguments
SELECT dstack_seal('patients', ARRAY['patient_id', 'nope']);
SELECT dstack_seal('patients', ARRAY[]::text[]);
SELECT dstack_seal('patients', NULL, 'relative/path.dseal');
SELECT dstack_seal('no_such_table');

-- a recipient key whose chain belongs to another key (the detail names the
-- recovered and the configured KMS roots, which differ from run to run)
\set VERBOSITY terse
SET dstack_seal.recipient_key_chain = :'recipient2_chain';
SELECT dstack_seal('patients');
SET dstack_seal.recipient_key_chain = 'abcd';
SELECT dstack_seal('patients');
SET dstack_seal.recipient_key_chain = :'recipient1_chain';

-- a recipe for another app id: the recipient chain no longer ends at the KMS root for it
SET dstack_seal.app_id = '0x000000000000000000000000000000000000dead';
SELECT dstack_seal('patients');
SET dstack_seal.app_id = :'app_id';
\set VERBOSITY default

-- missing pieces of the recipe
RESET dstack_seal.owner_key_file;
SELECT dstack_seal('patients');
SET dstack_seal.owner_key_file = '/nonexistent/owner.key';
SELECT dstack_seal('patients');
SET dstack_seal.owner_key_file = :'owner1_key';
RESET dstack_seal.output_dir;
SELECT dstack_seal('patients');
SET dstack_seal.output_dir = :'out';

-- an owner key readable by others is refused
\! chmod 644 "$DSTACK_TEST_DIR/owner1.key"
SELECT dstack_seal('patients');
\! chmod 600 "$DSTACK_TEST_DIR/owner1.key"

-- an unwritable directory fails cleanly
\set VERBOSITY terse
SELECT dstack_seal('patients', NULL, '/proc/patients.dseal');
\set VERBOSITY default

-- success, then the same output again is refused instead of overwritten
SELECT m->>'row_count' AS row_count FROM dstack_seal('patients') m;
SELECT dstack_seal('patients');
-- no temporary files are left behind by any of the failures
\! ls "$DSTACK_TEST_OUT" | grep -c '\.tmp\.' || true

-- a role without pg_write_server_files may not seal, even with SELECT on the table
CREATE ROLE analyst_nopriv;
GRANT SELECT ON patients TO analyst_nopriv;
SET ROLE analyst_nopriv;
SELECT dstack_seal('patients', NULL, :'out' || '/other.dseal');
RESET ROLE;

-- verify on a missing file is an error, on a non-dseal file a finding
SELECT dstack_seal_verify('/nonexistent/missing.dseal');
SELECT v->>'valid' AS valid, v->'problems' AS problems FROM dstack_seal_verify('/etc/hostname') v;
