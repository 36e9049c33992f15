-- dstack_fdw scans: three owners seal their tables for the consortium's
-- recipe; the CVM imports them, mounts them after the on-chain check, and
-- every answer equals the same query over the original heap tables.
\i sql/include/fdw_env.psql
\set VERBOSITY default

CREATE SERVER consortium FOREIGN DATA WRAPPER dstack_fdw
  OPTIONS (rpc_url :'rpc', guest_agent :'socket', kms_root_pubkey :'kms_root', kms_contract :'kms_contract', chain_id :'chain_id', app_contract :'app_id');

-- this suite's datasets go to their own directory, which IMPORT reads
\! mkdir -p "$DSTACK_TEST_OUT/scan" && chown postgres: "$DSTACK_TEST_OUT/scan" 2>/dev/null; true
\set out :out '/scan'
SET dstack_seal.output_dir = :'out';

-- the silos' tables (several row groups each)
SET dstack_seal.rows_per_group = 1000;
CREATE TABLE ehr AS
  SELECT g::int8 AS patient_id, (30 + g % 60)::int2 AS age, (g % 2 = 0) AS female,
         CASE WHEN g % 11 = 0 THEN NULL ELSE 15 + (g * 7919) % 90 + (g % 10) / 10.0 END::float8 AS egfr,
         ((g * 31) % 600 / 100.0 + 0.5)::numeric(5,2) AS creatinine,
         date '2018-01-01' + g % 2000 AS admitted, 'N18.' || (1 + g % 5) AS dx_code
  FROM generate_series(1, 5000) g;
CREATE TABLE imaging AS
  SELECT (1 + (g * 7) % 5000)::int8 AS patient_id, md5('i' || g)::uuid AS study_id,
         (ARRAY['echo','mri','ct'])[1 + g % 3] AS modality, (25 + g % 45)::float4 AS lvef,
         timestamptz '2019-01-01 00:00+00' + g * interval '17 minutes' AS taken_at
  FROM generate_series(1, 3000) g;
CREATE TABLE assays AS
  SELECT (1 + (g * 13) % 5000)::int8 AS patient_id, (ARRAY['nt-probnp','troponin'])[1 + g % 2] AS assay,
         ((g * 104729) % 5000 / 10.0)::float8 AS value, g % 3 = 0 AS flagged
  FROM generate_series(1, 2500) g;
CREATE TABLE "Sparse Data" AS
  SELECT g AS id, CASE WHEN g % 10 = 0 THEN g END AS rare, NULL::text AS never
  FROM generate_series(1, 2222) g;
CREATE TABLE empty_cohort (patient_id int8, note text);

-- each owner seals its own table under its own key and recipient key
SELECT (dstack_seal('ehr'))->>'row_count' AS ehr_rows;
SELECT (dstack_seal('"Sparse Data"', NULL, :'out' || '/sparse.dseal'))->>'row_count' AS sparse_rows;
SELECT (dstack_seal('empty_cohort'))->>'row_count' AS empty_rows;
SET dstack_seal.owner_key_file = :'owner2_key';
SET dstack_seal.recipient_key = :'recipient2_pub';
SET dstack_seal.recipient_key_chain = :'recipient2_chain';
SELECT (dstack_seal('imaging'))->>'row_count' AS imaging_rows;
SET dstack_seal.owner_key_file = :'owner3_key';
SET dstack_seal.recipient_key = :'recipient3_pub';
SET dstack_seal.recipient_key_chain = :'recipient3_chain';
SELECT (dstack_seal('assays'))->>'row_count' AS assays_rows;

-- IMPORT FOREIGN SCHEMA: LIMIT TO, EXCEPT, then everything
CREATE SCHEMA only_ehr;
IMPORT FOREIGN SCHEMA sealed LIMIT TO (ehr) FROM SERVER consortium INTO only_ehr OPTIONS (directory :'out');
SELECT foreign_table_name FROM information_schema.foreign_tables WHERE foreign_table_schema = 'only_ehr';
CREATE SCHEMA not_ehr;
IMPORT FOREIGN SCHEMA sealed EXCEPT (ehr, imaging) FROM SERVER consortium INTO not_ehr OPTIONS (directory :'out');
SELECT foreign_table_name FROM information_schema.foreign_tables WHERE foreign_table_schema = 'not_ehr' ORDER BY 1;
CREATE SCHEMA s;
IMPORT FOREIGN SCHEMA sealed FROM SERVER consortium INTO s OPTIONS (directory :'out');
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
 WHERE attrelid = 's.ehr'::regclass AND attnum > 0 ORDER BY attnum;
SELECT ftoptions[2] AS owner_option FROM pg_foreign_table WHERE ftrelid = 's.imaging'::regclass;

-- aggregates equal the heap's
SELECT count(*), sum(age), round(avg(egfr)::numeric, 6) AS avg_egfr, sum(creatinine), min(admitted), max(dx_code)
  FROM s.ehr;
SELECT count(*), sum(age), round(avg(egfr)::numeric, 6) AS avg_egfr, sum(creatinine), min(admitted), max(dx_code)
  FROM ehr;
-- group by, and a row-by-row comparison of a whole table (EXCEPT both ways)
SELECT female, count(*), count(egfr) FROM s.ehr GROUP BY female ORDER BY female;
SELECT count(*) AS differing FROM ((TABLE s.ehr EXCEPT TABLE ehr) UNION ALL (TABLE ehr EXCEPT TABLE s.ehr)) d;
SELECT count(*) AS differing FROM ((TABLE s.imaging EXCEPT TABLE imaging) UNION ALL (TABLE imaging EXCEPT TABLE s.imaging)) d;

-- a join across three owners' datasets
SELECT i.modality, count(*) AS n, round(avg(e.egfr)::numeric, 4) AS egfr, round(sum(a.value)::numeric, 1) AS assay_sum
  FROM s.ehr e JOIN s.imaging i USING (patient_id) JOIN s.assays a USING (patient_id)
 WHERE e.age > 40
 GROUP BY i.modality ORDER BY 1;
SELECT i.modality, count(*) AS n, round(avg(e.egfr)::numeric, 4) AS egfr, round(sum(a.value)::numeric, 1) AS assay_sum
  FROM ehr e JOIN imaging i USING (patient_id) JOIN assays a USING (patient_id)
 WHERE e.age > 40
 GROUP BY i.modality ORDER BY 1;

-- only the referenced columns are decrypted (target list and quals)
EXPLAIN (COSTS OFF) SELECT sum(lvef) FROM s.imaging WHERE modality = 'mri';
EXPLAIN (COSTS OFF) SELECT count(*) FROM s.assays;
EXPLAIN (COSTS OFF, VERBOSE) SELECT e FROM s.ehr e LIMIT 1;
SELECT sum(lvef) FROM s.imaging WHERE modality = 'mri';
SELECT sum(lvef) FROM imaging WHERE modality = 'mri';
SELECT count(*) FROM s.assays;

-- NULL-heavy and empty datasets
SELECT count(*), count(rare), sum(rare), count(never) FROM s.sparse;
SELECT count(*), count(rare), sum(rare), count(never) FROM "Sparse Data";
SELECT count(*), count(note) FROM s.empty_cohort;

-- parallel scan: row groups shared by 2 workers; identical results
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
-- (read-ahead threads in the workers too, whatever the cores: that path is tested here)
SET dstack_fdw.read_ahead = always;
EXPLAIN (COSTS OFF) SELECT count(*), sum(age), sum(egfr) FROM s.ehr;
SELECT count(*), sum(age), sum(egfr)::numeric(20,4) FROM s.ehr;
SELECT count(*) AS differing FROM ((TABLE s.ehr EXCEPT TABLE ehr) UNION ALL (TABLE ehr EXCEPT TABLE s.ehr)) d;
-- a sealed table that is not scanned in parallel but is read in each worker
-- (the inner side of a hash join under Gather) mounts itself there
SET enable_parallel_hash = off;
SET enable_mergejoin = off;
SET enable_nestloop = off;
EXPLAIN (COSTS OFF) SELECT count(*), sum(i.lvef) FROM s.ehr e JOIN s.imaging i USING (patient_id);
SELECT count(*), sum(i.lvef) FROM s.ehr e JOIN s.imaging i USING (patient_id);
SELECT count(*), sum(i.lvef) FROM ehr e JOIN imaging i USING (patient_id);
RESET enable_parallel_hash;
RESET enable_mergejoin;
RESET enable_nestloop;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
RESET dstack_fdw.read_ahead;

-- row estimates come from the signed manifest; ANALYZE is off by default
SELECT reltuples FROM pg_class WHERE oid = 's.ehr'::regclass;
EXPLAIN SELECT * FROM s.assays;
ANALYZE s.ehr;
SELECT count(*) AS stats_rows FROM pg_stats WHERE schemaname = 's';
SHOW dstack_fdw.allow_analyze;

-- options are validated when they are set
CREATE SERVER bad1 FOREIGN DATA WRAPPER dstack_fdw OPTIONS (rpc 'http://x');
CREATE SERVER bad2 FOREIGN DATA WRAPPER dstack_fdw OPTIONS (rpc_url 'ftp://x');
CREATE SERVER bad3 FOREIGN DATA WRAPPER dstack_fdw OPTIONS (confirmations '-1');
CREATE SERVER bad4 FOREIGN DATA WRAPPER dstack_fdw OPTIONS (kms_root_pubkey '0x02');
CREATE FOREIGN TABLE bad5 (x int) SERVER consortium OPTIONS (path 'relative.dseal', owner '0x01');
CREATE FOREIGN TABLE bad6 (x int) SERVER consortium OPTIONS (path '/x.dseal', owner '0x1234');
CREATE FOREIGN TABLE bad7 (x int) SERVER consortium OPTIONS (path '/x.dseal', app_id '0x1234');
-- a column the dataset does not have, and a type that does not decode it
\set ehr_path :out '/ehr.dseal'
CREATE FOREIGN TABLE wrong_col (patient_id int8, weight float8) SERVER consortium
  OPTIONS (path :'ehr_path', owner :'owner1_addr');
\set VERBOSITY terse
SELECT sum(weight) FROM wrong_col;
\set VERBOSITY default
CREATE FOREIGN TABLE wrong_type (patient_id int4) SERVER consortium
  OPTIONS (path :'ehr_path', owner :'owner1_addr');
SELECT sum(patient_id) FROM wrong_type;

-- values stored as text (numeric, jsonb) are rebuilt through a per-row-group
-- memo: low- and high-cardinality columns, NULLs, across row groups
CREATE TABLE nums AS
  SELECT g AS id, (g * 1.01)::numeric AS uniq, (g % 7)::numeric(4,1) AS low,
         CASE WHEN g % 5 = 0 THEN NULL ELSE jsonb_build_object('k', g % 3) END AS j
  FROM generate_series(1, 5000) g;
\set nums_path :out '/nums.dseal'
SELECT (dstack_seal('nums', NULL, :'nums_path'))->>'row_count' AS nums_rows;
CREATE FOREIGN TABLE nums_s (id int4, uniq numeric, low numeric(4,1), j jsonb) SERVER consortium
  OPTIONS (path :'nums_path', owner :'owner3_addr');
SELECT count(*) AS differing FROM (
  (SELECT id, uniq, low, j::text FROM nums_s EXCEPT SELECT id, uniq, low, j::text FROM nums)
  UNION ALL (SELECT id, uniq, low, j::text FROM nums EXCEPT SELECT id, uniq, low, j::text FROM nums_s)) d;
SELECT sum(uniq), sum(low), count(j) FROM nums_s;
SELECT sum(uniq), sum(low), count(j) FROM nums;

-- values decoded a row group at a time: every binary encoding, NULLs, text
-- and bytea short (1-byte header) and long (4-byte header, 127 bytes and
-- up), compared with the heap value by value and through text functions,
-- a hash join and a group by on the decoded text
CREATE TABLE wide AS
  SELECT g AS id, CASE WHEN g % 5 = 0 THEN NULL ELSE g % 2 = 0 END AS b, (g % 300)::int2 AS s,
         CASE WHEN g % 7 = 0 THEN NULL ELSE (g * 1.5)::float4 END AS r, md5(g::text)::uuid AS u,
         CASE WHEN g % 3 = 0 THEN NULL ELSE repeat(chr(97 + g % 26), g % 300) END AS t,
         decode(repeat(md5(g::text), 1 + g % 9), 'hex') AS by, ('v' || g)::varchar(12) AS v,
         ('c' || g % 10)::char(4) AS c, timestamptz '2020-01-01 00:00:00+00' + g * interval '1 minute' AS tz
  FROM generate_series(1, 3000) g;
SET dstack_seal.rows_per_group = 1000;
\set wide_path :out '/wide.dseal'
SELECT (dstack_seal('wide', NULL, :'wide_path'))->>'row_count' AS wide_rows;
RESET dstack_seal.rows_per_group;
CREATE FOREIGN TABLE wide_s (id int4, b bool, s int2, r float4, u uuid, t text, by bytea, v varchar(12), c char(4), tz timestamptz)
  SERVER consortium OPTIONS (path :'wide_path', owner :'owner3_addr');
SELECT count(*) AS differing FROM ((TABLE wide_s EXCEPT ALL TABLE wide) UNION ALL (TABLE wide EXCEPT ALL TABLE wide_s)) d;
SELECT count(*) FILTER (WHERE length(t) > 126) AS long_texts, sum(length(t)), sum(octet_length(by)),
       count(*) FILTER (WHERE t LIKE 'z%'), max(upper(t) || v), count(DISTINCT c), sum(length(c))
FROM wide_s;
SELECT count(*) FILTER (WHERE length(t) > 126) AS long_texts, sum(length(t)), sum(octet_length(by)),
       count(*) FILTER (WHERE t LIKE 'z%'), max(upper(t) || v), count(DISTINCT c), sum(length(c))
FROM wide;
SET enable_mergejoin = off; SET enable_nestloop = off;
SELECT count(*) AS joined FROM wide_s a JOIN wide b ON a.t = b.t AND a.by = b.by AND a.u = b.u;
RESET enable_mergejoin; RESET enable_nestloop;
SELECT length(t) AS len, count(*) FROM wide_s WHERE length(t) BETWEEN 125 AND 128 GROUP BY 1 ORDER BY 1;
-- the same rows on the backend's own thread (read_ahead off), and when a scan
-- stops early (LIMIT) with a row group requested from the read-ahead thread
SET dstack_fdw.read_ahead = off;
SELECT count(*) AS differing_without_read_ahead FROM ((TABLE wide_s EXCEPT ALL TABLE wide) UNION ALL (TABLE wide EXCEPT ALL TABLE wide_s)) d;
RESET dstack_fdw.read_ahead;
SELECT count(*) AS first_rows FROM (SELECT id FROM wide_s LIMIT 1500) x;
SELECT sum(id) AS rescanned FROM generate_series(1, 3) g, LATERAL (SELECT id FROM wide_s WHERE id <= g OFFSET 0) x;
-- ANALYZE's sample, where an operator allows it with the guard off (analyze.c):
-- every column gets statistics, read through the same row-group reader
SET dstack_fdw.allow_analyze = on;
ANALYZE wide_s;
SELECT count(*) AS columns_with_stats, max(null_frac) > 0 AS saw_nulls FROM pg_stats WHERE tablename = 'wide_s';
RESET dstack_fdw.allow_analyze;

-- the guest agent's keys are verified once per backend (keycache.c): a fresh
-- backend asks GetKey once for an owner's dataset, then not again, while the
-- consortium is still read every statement; with dstack_fdw.key_cache off,
-- every statement asks (the simulator logs each request it answers)
\c
\i sql/include/fdw_env.psql
\getenv simdir DSTACK_TEST_DIR
\set simlog :simdir '/dstack-sim.log'
CREATE FUNCTION pg_temp.getkey_requests(log text) RETURNS bigint LANGUAGE sql
  AS $$SELECT count(*) FROM regexp_split_to_table(pg_read_file(log), '\n') l WHERE l LIKE '%"/GetKey"%'$$;
SELECT count(*) AS n FROM s.ehr \gset first_
\! sleep 1
SELECT pg_temp.getkey_requests(:'simlog') AS before \gset
SELECT count(*) = :first_n AS same FROM s.ehr;
SELECT count(*) = :first_n AS same FROM s.ehr;
SELECT count(*) = :first_n AS same FROM s.ehr;
\! sleep 1
SELECT pg_temp.getkey_requests(:'simlog') - :before AS getkey_requests_cached;
SET dstack_fdw.key_cache = off;
SELECT count(*) = :first_n AS same FROM s.ehr;
SELECT count(*) = :first_n AS same FROM s.ehr;
\! sleep 1
SELECT pg_temp.getkey_requests(:'simlog') - :before AS getkey_requests_uncached;
RESET dstack_fdw.key_cache;
-- with this root's key cached, a server naming the same agent with another KMS
-- root (here secp256k1's generator) is refused at the recipe, before any key
-- is asked for or taken from the cache (whose entries are per root and app)
CREATE SERVER other_root FOREIGN DATA WRAPPER dstack_fdw
  OPTIONS (rpc_url :'rpc', guest_agent :'socket', kms_contract :'kms_contract', chain_id :'chain_id', app_contract :'app_id',
           kms_root_pubkey '0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798');
CREATE FOREIGN TABLE other_root_ehr (patient_id int8) SERVER other_root OPTIONS (path :'ehr_path', owner :'owner1_addr');
SELECT count(*) FROM other_root_ehr;
DROP SERVER other_root CASCADE;
