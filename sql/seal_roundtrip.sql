-- dstack_seal round trip: every supported type, NULLs everywhere, several
-- row groups, compression on and off, empty tables, column subsets.  The
-- sealed file is decrypted with the recipient key that only the CVM holds
-- (tools/dseal-dump, test-only) and compared value by value.
\i sql/include/seal_env.psql

CREATE TABLE alltypes (
    id int4, b bool, s int2, i int4, l int8, r float4, d float8,
    n numeric(14,4), t text, v varchar(20), c char(5), dt date,
    ts timestamp, tz timestamptz, u uuid, by bytea, j jsonb, a int[]
);
INSERT INTO alltypes
SELECT g,
       CASE WHEN g % 7 = 1 THEN NULL ELSE g % 2 = 0 END,
       CASE WHEN g % 7 = 2 THEN NULL ELSE (g * 37 % 65536 - 32768)::int2 END,
       CASE WHEN g % 7 = 3 THEN NULL ELSE g * 1000003 END,
       CASE WHEN g % 7 = 4 THEN NULL ELSE g::int8 * 9000000000000 END,
       CASE WHEN g % 7 = 5 THEN NULL ELSE g / 3.0::float4 END,
       CASE WHEN g % 7 = 6 THEN NULL ELSE g / 7.0 END,
       CASE WHEN g % 5 = 0 THEN NULL ELSE (g * 12.3457)::numeric(14,4) END,
       CASE WHEN g % 6 = 0 THEN NULL ELSE 'row ' || g || repeat('x', g % 40) END,
       CASE WHEN g % 8 = 0 THEN NULL ELSE 'v' || g END,
       CASE WHEN g % 9 = 0 THEN NULL ELSE 'c' || (g % 100) END,
       CASE WHEN g % 10 = 0 THEN NULL ELSE date '1970-01-01' + g * 17 END,
       CASE WHEN g % 11 = 0 THEN NULL ELSE timestamp '2001-02-03 04:05:06.789' + g * interval '1 hour 7 seconds' END,
       CASE WHEN g % 12 = 0 THEN NULL ELSE timestamptz '1999-12-31 23:59:59.123456+00' - g * interval '13 minutes' END,
       CASE WHEN g % 13 = 0 THEN NULL ELSE md5(g::text)::uuid END,
       CASE WHEN g % 14 = 0 THEN NULL ELSE decode(md5(g::text), 'hex') END,
       CASE WHEN g % 15 = 0 THEN NULL ELSE jsonb_build_object('g', g, 'tag', 't' || g % 3) END,
       CASE WHEN g % 16 = 0 THEN NULL ELSE ARRAY[g, g + 1, NULL] END
FROM generate_series(1, 1000) g;
-- values that break naive encoders
INSERT INTO alltypes (id, b, s, i, l, r, d, n, t, v, c, dt, ts, tz, u, by, j, a) VALUES
 (1001, true, -32768, -2147483648, -9223372036854775808, 'NaN', 'Infinity', -0.0001,
  E'tab\there\nnewline \\ backslash', '', 'x', '0044-03-15 BC', 'infinity', '-infinity',
  '00000000-0000-0000-0000-000000000000', '\x', '{}', '{}'),
 (1002, false, 32767, 2147483647, 9223372036854775807, '-Infinity', '-0', 9999999999.9999,
  'ünïcødé ✓ 漢字', repeat('z', 20), '     ', 'infinity', '4713-01-01 00:00:00 BC', '2262-04-11 23:47:16.854775+00',
  'ffffffff-ffff-ffff-ffff-ffffffffffff', '\x00ff00', '[1, "two", null]', '{NULL}'),
 (1003, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);

-- several row groups, compressed
SET dstack_seal.rows_per_group = 128;
SELECT m->>'format' AS format, m->>'row_count' AS row_count,
       jsonb_array_length(m->'row_groups') AS row_groups,
       m->'header'->>'table' AS "table",
       m->'header'->>'owner_id' = lower(:'owner1_addr') AS owner_is_owner1,
       m->'header'->'recipe'->>'compose_hash' = :'compose_hash' AS recipe_bound,
       (SELECT bool_or((c->>'zstd')::bool) FROM jsonb_array_elements(m->'row_groups'->0->'chunks') c) AS some_compressed
FROM (SELECT dstack_seal('alltypes') AS m) s;
-- the detached manifest equals the embedded one; its schema records each encoding
SELECT jsonb_pretty(pg_read_file(:'out' || '/alltypes.dseal.json')::jsonb->'header'->'columns');
-- the detached manifest is byte for byte the embedded one: its SHA-256 is the manifest hash
-- that receipts and the on-chain registry cite
SELECT encode(sha256(pg_read_binary_file(:'out' || '/alltypes.dseal.json')), 'hex') =
       (dstack_seal_verify(:'out' || '/alltypes.dseal'))->>'manifest_hash' AS detached_is_embedded;
SELECT v->>'valid' AS valid, v->>'row_count' AS row_count, v->>'chunks_checked' AS chunks,
       v->>'recipient_chain' AS chain, v->'problems' AS problems
FROM dstack_seal_verify(:'out' || '/alltypes.dseal') v;

CREATE TABLE back (LIKE alltypes);
\set cmd :dump1 ' ' :out '/alltypes.dseal'
COPY back FROM PROGRAM :'cmd';
SELECT count(*) AS restored FROM back;
SELECT count(*) AS missing FROM (SELECT * FROM alltypes EXCEPT ALL SELECT * FROM back) x;
SELECT count(*) AS extra FROM (SELECT * FROM back EXCEPT ALL SELECT * FROM alltypes) x;

-- uncompressed, one row group, a column subset in a chosen order
SET dstack_seal.compression_level = 0;
RESET dstack_seal.rows_per_group;
SELECT m->>'row_count' AS row_count, jsonb_array_length(m->'row_groups') AS row_groups,
       (SELECT string_agg(c->>'name', ',') FROM jsonb_array_elements(m->'header'->'columns') c) AS columns,
       (SELECT bool_or((c->>'zstd')::bool) FROM jsonb_array_elements(m->'row_groups'->0->'chunks') c) AS compressed
FROM (SELECT dstack_seal('alltypes', ARRAY['t', 'id', 'tz'], :'out' || '/subset.dseal') AS m) s;
CREATE TABLE back_subset (t text, id int4, tz timestamptz);
\set cmd :dump1 ' ' :out '/subset.dseal'
COPY back_subset FROM PROGRAM :'cmd';
SELECT count(*) AS mismatches FROM (
  (SELECT t, id, tz FROM alltypes EXCEPT ALL SELECT * FROM back_subset)
  UNION ALL (SELECT * FROM back_subset EXCEPT ALL SELECT t, id, tz FROM alltypes)) x;
RESET dstack_seal.compression_level;

-- empty table: a valid dataset with no row groups
CREATE TABLE empty_t (id int, note text);
SELECT m->>'row_count' AS row_count, jsonb_array_length(m->'row_groups') AS row_groups
FROM (SELECT dstack_seal('empty_t') AS m) s;
SELECT v->>'valid' AS valid, v->>'chunks_checked' AS chunks FROM dstack_seal_verify(:'out' || '/empty_t.dseal') v;
\set cmd :dump1 ' ' :out '/empty_t.dseal'
CREATE TABLE back_empty (LIKE empty_t);
COPY back_empty FROM PROGRAM :'cmd';
SELECT count(*) FROM back_empty;

-- a domain and a quoted, mixed-case column name survive too
CREATE DOMAIN positive AS int CHECK (VALUE > 0);
CREATE TABLE "Mixed Case" ("Patient Id" positive, "select" text);
INSERT INTO "Mixed Case" VALUES (1, 'a'), (2, NULL), (NULL, 'c');
SELECT m->'header'->>'table' AS "table", m->'header'->'columns'->0->>'name' AS col0,
       m->'header'->'columns'->0->>'type' AS type0
FROM (SELECT dstack_seal('"Mixed Case"', NULL, :'out' || '/mixed.dseal') AS m) s;
