-- dstack_fdw options that name a file or socket on the server (the table
-- option path, the server option guest_agent) and IMPORT FOREIGN SCHEMA
-- (which reads a directory and turns its files into path options) are for
-- superusers only: a role with USAGE on the server could otherwise point a
-- foreign table at any file the server can read.  Analysts need no USAGE on
-- the server at all; the CVM operator creates the foreign tables.
\i sql/include/fdw_env.psql
\set VERBOSITY default
CREATE SERVER fop_srv FOREIGN DATA WRAPPER dstack_fdw
  OPTIONS (rpc_url :'rpc', guest_agent :'socket', kms_root_pubkey :'kms_root', kms_contract :'kms_contract', chain_id :'chain_id');
CREATE SCHEMA fop;
CREATE ROLE fop_analyst;
GRANT USAGE ON FOREIGN SERVER fop_srv TO fop_analyst;
GRANT USAGE, CREATE ON SCHEMA fop TO fop_analyst;

SET ROLE fop_analyst;
-- a foreign table over a file of the analyst's choice
CREATE FOREIGN TABLE fop.passwd (line text) SERVER fop_srv
  OPTIONS (path '/etc/passwd', owner '0x70997970c51812dc3a010c7d01b50e0d17dc79c8');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- a directory of the analyst's choice, as the directory option or as the remote schema
IMPORT FOREIGN SCHEMA sealed FROM SERVER fop_srv INTO fop OPTIONS (directory '/etc');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
IMPORT FOREIGN SCHEMA "/etc" FROM SERVER fop_srv INTO fop;
SELECT count(*) AS analyst_tables FROM pg_class WHERE relnamespace = 'fop'::regnamespace;
RESET ROLE;

-- with USAGE on the wrapper, a server of its own with its own guest agent socket
GRANT USAGE ON FOREIGN DATA WRAPPER dstack_fdw TO fop_analyst;
SET ROLE fop_analyst;
CREATE SERVER fop_own FOREIGN DATA WRAPPER dstack_fdw
  OPTIONS (rpc_url :'rpc', guest_agent '/tmp/fake-agent.sock', kms_root_pubkey :'kms_root', kms_contract :'kms_contract', chain_id :'chain_id');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- a server without one is the analyst's to create; tables on it still need a superuser for path
CREATE SERVER fop_own FOREIGN DATA WRAPPER dstack_fdw OPTIONS (rpc_url :'rpc', kms_root_pubkey :'kms_root', kms_contract :'kms_contract', chain_id :'chain_id');
CREATE FOREIGN TABLE fop.own (line text) SERVER fop_own
  OPTIONS (path '/etc/passwd', owner '0x70997970c51812dc3a010c7d01b50e0d17dc79c8');
ALTER SERVER fop_own OPTIONS (ADD guest_agent '/tmp/fake-agent.sock');
DROP SERVER fop_own;
RESET ROLE;
REVOKE USAGE ON FOREIGN DATA WRAPPER dstack_fdw FROM fop_analyst;

-- the operator (a superuser) sets them as before
CREATE FOREIGN TABLE fop.by_operator (id int4) SERVER fop_srv
  OPTIONS (path '/var/lib/pg_dstack/sealed/x.dseal', owner '0x70997970c51812dc3a010c7d01b50e0d17dc79c8');
ALTER FOREIGN TABLE fop.by_operator OPTIONS (SET path '/var/lib/pg_dstack/sealed/y.dseal');
SELECT ftoptions FROM pg_foreign_table WHERE ftrelid = 'fop.by_operator'::regclass;
-- and once the operator hands such a table to another owner, that owner cannot repoint it
ALTER FOREIGN TABLE fop.by_operator OWNER TO fop_analyst;
SET ROLE fop_analyst;
ALTER FOREIGN TABLE fop.by_operator OPTIONS (SET path '/etc/passwd');
RESET ROLE;

DROP SCHEMA fop CASCADE;
REVOKE USAGE ON FOREIGN SERVER fop_srv FROM fop_analyst;
DROP SERVER fop_srv;
DROP ROLE fop_analyst;
