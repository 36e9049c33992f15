-- A consortium larger than a fixed-size copy of its lists: 70 owners without
-- keys come before owner 1, the one that approved and sealed.  The mount rule
-- kept at most 64 owners and 64 approvers per statement, so owner 1 (the 71st)
-- looked like no owner of the consortium and its dataset was refused; the
-- rule now keeps the whole lists.
\i sql/include/fdw_env.psql
\set VERBOSITY default
\! mkdir -p "$DSTACK_TEST_OUT/owners" && chown postgres: "$DSTACK_TEST_OUT/owners" 2>/dev/null; true
\! "$DSTACK_TEST_TOOLS/testenv.sh" up "$DSTACK_TEST_WORK/env-owners71" --owners 1 --threshold 1 --approve 1 --filler-owners 70 >/dev/null
\set m_env :work '/env-owners71'
\set m_rpc `. "$DSTACK_TEST_WORK/env-owners71/env.sh"; echo "$DSTACK_TEST_RPC"`
\set m_socket `. "$DSTACK_TEST_WORK/env-owners71/env.sh"; echo "$DSTACK_TEST_SOCKET"`
\set m_root `. "$DSTACK_TEST_WORK/env-owners71/env.sh"; echo "$DSTACK_TEST_KMS_ROOT"`
\set m_kms_contract `. "$DSTACK_TEST_WORK/env-owners71/env.sh"; echo "$DSTACK_TEST_KMS_CONTRACT"`
\set m_chain_id `. "$DSTACK_TEST_WORK/env-owners71/env.sh"; echo "$DSTACK_TEST_CHAIN_ID"`
\set m_r1_pub `. "$DSTACK_TEST_WORK/env-owners71/env.sh"; echo "$DSTACK_TEST_RECIPIENT1_PUB"`
\set m_r1_chain `. "$DSTACK_TEST_WORK/env-owners71/env.sh"; echo "$DSTACK_TEST_RECIPIENT1_CHAIN"`
\set m_owner1_key :m_env '/owner1.key'
\set m_file :out '/owners/o_cohort.dseal'
-- the consortium as the chain lists it
\! . "$DSTACK_TEST_WORK/env-owners71/env.sh" && "$DSTACK_TEST_TOOLS/../node_modules/.bin/cast" call --rpc-url "$DSTACK_TEST_RPC" "$DSTACK_TEST_APP_ID" 'owners()(address[])' | tr ',' '\n' | grep -c 0x

SET dstack_seal.kms_root_pubkey = :'m_root';
SET dstack_seal.owner_key_file = :'m_owner1_key';
SET dstack_seal.recipient_key = :'m_r1_pub';
SET dstack_seal.recipient_key_chain = :'m_r1_chain';
CREATE TABLE o_cohort AS SELECT g::int8 AS patient_id, g % 90 AS age FROM generate_series(1, 100) g;
SELECT (dstack_seal('o_cohort', NULL, :'m_file'))->>'row_count' AS sealed;

CREATE SERVER o_many FOREIGN DATA WRAPPER dstack_fdw
  OPTIONS (rpc_url :'m_rpc', guest_agent :'m_socket', kms_root_pubkey :'m_root',
           kms_contract :'m_kms_contract', chain_id :'m_chain_id');
CREATE FOREIGN TABLE o_owner1 (patient_id int8, age int4) SERVER o_many OPTIONS (path :'m_file', owner :'owner1_addr');
-- mounted: owner 1 is found among the 71 owners and its single approval
SELECT count(*), sum(age) FROM o_owner1;

DROP FOREIGN TABLE o_owner1;
DROP SERVER o_many;
DROP TABLE o_cohort;
RESET dstack_seal.kms_root_pubkey;
RESET dstack_seal.owner_key_file;
RESET dstack_seal.recipient_key;
RESET dstack_seal.recipient_key_chain;
