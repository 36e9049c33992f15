-- Extension versions: the scripts each version installs, and the upgrade
-- path.  An installed dstack_fdw 0.1.0 brought up to date with ALTER
-- EXTENSION ... UPDATE must be exactly a fresh install of the current
-- version: every member, comment, column, constraint, privilege, function
-- setting (dstack_run()'s pinned search_path), aggregate and pg_dump
-- configuration, compared line for line (sql/include/ext_describe.psql).
-- When you add an object to dstack_fdw/sql/dstack_fdw.sql, add it to the
-- upgrade script from the last release too; this suite says what is missing.
SELECT name, version, superuser, relocatable
  FROM pg_available_extension_versions WHERE name IN ('dstack_fdw', 'dstack_seal') ORDER BY 1, 2;
SELECT name, default_version FROM pg_available_extensions WHERE name IN ('dstack_fdw', 'dstack_seal') ORDER BY 1;
SELECT source, target, path FROM pg_extension_update_paths('dstack_fdw') WHERE path IS NOT NULL ORDER BY 1, 2;

CREATE DATABASE dstack_ext_fresh;
CREATE DATABASE dstack_ext_updated;

-- a fresh install of the default version
\c dstack_ext_fresh
\set ECHO none
\i sql/include/ext_describe.psql
\set ECHO all
CREATE EXTENSION dstack_fdw;
SELECT extversion FROM pg_extension WHERE extname = 'dstack_fdw';
SELECT string_agg(line, E'\n' ORDER BY line) AS fresh, count(*) AS fresh_lines
  FROM pg_temp.ext_describe('dstack_fdw') AS line \gset
SELECT :fresh_lines > 100 AS described;

-- 0.1.0, then the update
\c dstack_ext_updated
\set ECHO none
\i sql/include/ext_describe.psql
\set ECHO all
CREATE EXTENSION dstack_fdw VERSION '0.1.0';
SELECT extversion FROM pg_extension WHERE extname = 'dstack_fdw';
SELECT count(*) AS runs_table_in_010 FROM pg_class WHERE relname = 'dstack_runs';
ALTER EXTENSION dstack_fdw UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'dstack_fdw';

-- the difference to the fresh install, both ways: no rows
SELECT 'only after the update' AS side, line FROM pg_temp.ext_describe('dstack_fdw') AS line
EXCEPT SELECT 'only after the update', regexp_split_to_table(:'fresh', E'\n')
UNION ALL
(SELECT 'only in a fresh install', regexp_split_to_table(:'fresh', E'\n')
 EXCEPT SELECT 'only in a fresh install', line FROM pg_temp.ext_describe('dstack_fdw') AS line)
ORDER BY 1, 2;
SELECT count(*) = :fresh_lines AS same_number_of_facts FROM pg_temp.ext_describe('dstack_fdw');

-- what the update brought, as the catalog has it
SELECT line FROM pg_temp.ext_describe('dstack_fdw') AS line
 WHERE line ~ 'dstack_runs|function dstack_run\(text\)|comment .*dp_count'
 ORDER BY 1;

\c dstack_regress
DROP DATABASE dstack_ext_fresh;
DROP DATABASE dstack_ext_updated;
