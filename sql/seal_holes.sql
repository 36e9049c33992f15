-- dstack_seal holes, each closed with its test: an existing dataset is never
-- replaced, not even by a seal that was already running (two sessions);
-- the default file name cannot leave the output directory; every byte of the
-- 16-byte file header is checked and signed; a seal cancelled while its writer
-- thread holds row groups leaves no thread and no temporary file, and neither
-- does a terminated one (and the server does not restart).
\i sql/include/seal_env.psql
\set VERBOSITY default
\! mkdir -p "$DSTACK_TEST_OUT/holes/inner" && chown -R postgres: "$DSTACK_TEST_OUT/holes" 2>/dev/null; true
\set hdir :out '/holes'
SET dstack_seal.output_dir = :'hdir';
SET dstack_seal.compression_level = 0;
SET dstack_seal.rows_per_group = 20;
CREATE TABLE h_rows AS SELECT g AS id, 'v' || g AS v FROM generate_series(1, 50) g;

-- 1. a path that exists is refused, and the file there is left as it was
\! echo 'not a dataset' > "$DSTACK_TEST_OUT/holes/taken.dseal"
SELECT dstack_seal('h_rows', NULL, :'hdir' || '/taken.dseal') IS NOT NULL AS sealed;
\! cat "$DSTACK_TEST_OUT/holes/taken.dseal"
-- a dangling symlink counts as existing, and so does a lone .json manifest
\! ln -s /nonexistent/target "$DSTACK_TEST_OUT/holes/dangling.dseal"
SELECT dstack_seal('h_rows', NULL, :'hdir' || '/dangling.dseal') IS NOT NULL AS sealed;
\! echo '{}' > "$DSTACK_TEST_OUT/holes/lone.dseal.json"
SELECT dstack_seal('h_rows', NULL, :'hdir' || '/lone.dseal') IS NOT NULL AS sealed;

-- two sessions seal to one path: B starts first and passes the existence
-- check, then waits (advisory lock 4242, inside its sealing query) while A
-- seals the same path; B's publish must fail with 58P02 and remove its
-- temporary file, and the dataset stays A's.  The locks order the two.
CREATE FUNCTION h_wait() RETURNS bool LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  PERFORM pg_advisory_lock_shared(4242);
  PERFORM pg_advisory_unlock_shared(4242);
  RETURN true;
END $$;
CREATE VIEW h_race_view AS SELECT id, v FROM h_rows WHERE h_wait();
SELECT pg_advisory_lock(4242) IS NOT NULL AS a_holds_lock;
\setenv PGHOST :HOST
\setenv PGPORT :PORT
\setenv PGDATABASE :DBNAME
\setenv PGUSER :USER
\! ("$(pg_config --bindir)/psql" -X -q -f sql/include/seal_race_b.psql >"$DSTACK_TEST_OUT/holes/race_b.log" 2>&1; touch "$DSTACK_TEST_OUT/holes/race_b.done") </dev/null >/dev/null 2>&1 &
DO $$
BEGIN
  FOR i IN 1..1200 LOOP
    PERFORM 1 FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 AND NOT granted;
    IF FOUND THEN RETURN; END IF;
    PERFORM pg_sleep(0.05);
  END LOOP;
  RAISE EXCEPTION 'session B never reached its sealing query';
END $$;
-- B has created its temporary file and is sealing; A seals the same path
\! ls "$DSTACK_TEST_OUT/holes" | grep -c '^race\.dseal\.tmp\.'
SELECT m->'header'->>'dataset_id' AS a_dataset FROM dstack_seal('h_rows', NULL, :'hdir' || '/race.dseal') m \gset
SELECT pg_advisory_unlock(4242) AS a_released;
\! for i in $(seq 1 600); do [ -e "$DSTACK_TEST_OUT/holes/race_b.done" ] && break; sleep 0.05; done; cat "$DSTACK_TEST_OUT/holes/race_b.log"
-- B's temporary files are gone, and race.dseal (and its .json) are A's
\! ls "$DSTACK_TEST_OUT/holes" | grep '^race'
SELECT v->>'valid' AS valid, v->>'dataset_id' = :'a_dataset' AS is_a_dataset,
       pg_read_file(:'hdir' || '/race.dseal.json')::jsonb->'header'->>'dataset_id' = :'a_dataset' AS json_is_a
  FROM dstack_seal_verify(:'hdir' || '/race.dseal') v;

-- 2. the default file name is the table name: it must stay one plain name in output_dir
\set inner :hdir '/inner'
SET dstack_seal.output_dir = :'inner';
CREATE TABLE "../escaped" (id int);
CREATE TABLE "a/b" (id int);
CREATE TABLE ".hidden" (id int);
CREATE TABLE U&"line\000Abreak" (id int);
SELECT dstack_seal('"../escaped"') IS NOT NULL AS sealed;
SELECT dstack_seal('"a/b"');
SELECT dstack_seal('".hidden"');
\set VERBOSITY terse
SELECT dstack_seal(U&'"line\000Abreak"');
\set VERBOSITY default
-- nothing was written, in the output directory or above it
\! ls -A "$DSTACK_TEST_OUT/holes/inner" | wc -l; ls "$DSTACK_TEST_OUT/holes" | grep -c escaped
-- an explicit path is still the caller's choice
SELECT (dstack_seal('"../escaped"', NULL, :'hdir' || '/escaped.dseal'))->>'row_count' AS explicit_path_rows;
-- an output directory that does not exist is named as such
SET dstack_seal.output_dir = '/nonexistent/sealed';
SELECT dstack_seal('h_rows');
SET dstack_seal.output_dir = :'hdir';

-- 3. the file header: magic, version and the reserved flags (bytes 12-15) are checked,
-- and the 16 bytes are recorded in the signed manifest header
SELECT m->'header'->>'file_header' AS file_header FROM dstack_seal('h_rows', NULL, :'hdir' || '/hdr.dseal') m;
\! cd "$DSTACK_TEST_OUT/holes" && for t in magic version flags12 flags13 flags14 flags15 record resigned; do cp hdr.dseal $t.dseal; chmod 644 $t.dseal; done
\! cd "$DSTACK_TEST_OUT/holes" && T="node $DSTACK_TEST_TOOLS/dseal-tamper.mjs" && $T magic.dseal flip-header 0 && $T version.dseal flip-header 9 && $T flags12.dseal flip-header 12 && $T flags13.dseal flip-header 13 2 && $T flags14.dseal flip-header 14 16 && $T flags15.dseal flip-header 15 128
-- the record edited in place breaks the header hash; re-signed by the owner's key, the
-- record is consistent but no longer matches the file's bytes
\! cd "$DSTACK_TEST_OUT/holes" && node "$DSTACK_TEST_TOOLS/dseal-tamper.mjs" record.dseal edit-manifest '"file_header":"4453544b5345414c0100000000000000"' '"file_header":"4453544b5345414c0100000001000000"'
\! cd "$DSTACK_TEST_OUT/holes" && node "$DSTACK_TEST_TOOLS/dseal-tamper.mjs" resigned.dseal resign "$DSTACK_TEST_DIR/owner1.key" 'header.file_header="4453544b5345414c0100000001000000"'
SELECT t AS file, v->>'valid' AS valid, replace((v->'problems')::text, :'hdir' || '/', '') AS problems
FROM unnest(ARRAY['hdr', 'magic', 'version', 'flags12', 'flags13', 'flags14', 'flags15', 'record', 'resigned']) t,
     dstack_seal_verify(:'hdir' || '/' || t || '.dseal') v;
-- the CVM's reader refuses them the same way (no row is printed)
\! cd "$DSTACK_TEST_OUT/holes" && for t in hdr flags12 resigned; do printf '%s: ' $t; $DSTACK_DSEAL_DUMP --key-file "$DSTACK_TEST_DIR/recipient1.key" --app-id $DSTACK_TEST_APP_ID --compose-hash $DSTACK_TEST_COMPOSE_HASH $t.dseal 2>&1 | grep -v '^[0-9]' | head -1; echo "rows=$($DSTACK_DSEAL_DUMP --key-file "$DSTACK_TEST_DIR/recipient1.key" --app-id $DSTACK_TEST_APP_ID --compose-hash $DSTACK_TEST_COMPOSE_HASH $t.dseal 2>/dev/null | wc -l)"; done

-- 4. cancelled half-way: four row groups went to the writer's thread before the
-- query sleeps at row 5000 and statement_timeout cancels it; the error path
-- joins the thread and removes the temporary file
CREATE FUNCTION h_slow(i int) RETURNS int LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  IF i = 5000 THEN PERFORM pg_sleep(60); END IF;
  RETURN i;
END $$;
CREATE VIEW h_slow_view AS SELECT h_slow(g) AS id, g::float8 / 7 AS x FROM generate_series(1, 10000) g;
SET dstack_seal.rows_per_group = 1000;
SET statement_timeout = '1s';
SELECT dstack_seal('h_slow_view', NULL, :'hdir' || '/slow.dseal') IS NOT NULL AS sealed;
RESET statement_timeout;
SET dstack_seal.rows_per_group = 20;
\! ls "$DSTACK_TEST_OUT/holes" | grep -c '^slow' || true
SELECT (regexp_match(pg_read_file('/proc/' || pg_backend_pid() || '/status'), 'Threads:\s+(\d+)'))[1] AS backend_threads;

-- 5. terminated half-way (FATAL: no PG_FINALLY): session B seals h_slow_view and sleeps
-- at row 5000 with its writer's thread running; A terminates it.  The callback on
-- the seal's memory context joins the thread before the backend exits and removes
-- the temporary file; the server keeps running (no backend crashed)
SELECT pg_postmaster_start_time() AS started \gset
\! ("$(pg_config --bindir)/psql" -X -q -f sql/include/seal_term_b.psql >"$DSTACK_TEST_OUT/holes/term_b.log" 2>&1; touch "$DSTACK_TEST_OUT/holes/term_b.done") </dev/null >/dev/null 2>&1 &
DO $$
BEGIN
  FOR i IN 1..1200 LOOP
    PERFORM pg_stat_clear_snapshot();
    PERFORM 1 FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND query LIKE '%h_slow_view%' AND pid <> pg_backend_pid();
    IF FOUND THEN RETURN; END IF;
    PERFORM pg_sleep(0.05);
  END LOOP;
  RAISE EXCEPTION 'session B never reached row 5000 of its seal';
END $$;
\! ls "$DSTACK_TEST_OUT/holes" | grep -c '^term\.dseal\.tmp\.'
SELECT pg_terminate_backend(pid, 60000) AS terminated FROM pg_stat_activity
 WHERE wait_event = 'PgSleep' AND query LIKE '%h_slow_view%' AND pid <> pg_backend_pid();
\! for i in $(seq 1 600); do [ -e "$DSTACK_TEST_OUT/holes/term_b.done" ] && break; sleep 0.05; done; grep -c 'terminating connection due to administrator command' "$DSTACK_TEST_OUT/holes/term_b.log"
\! ls "$DSTACK_TEST_OUT/holes" | grep -c '^term\.' || true
SELECT pg_postmaster_start_time() = :'started' AS server_not_restarted;

-- no temporary file is left behind by any of the above
\! ls -R "$DSTACK_TEST_OUT/holes" | grep -c '\.tmp\.' || true
DROP VIEW h_race_view, h_slow_view;
DROP FUNCTION h_wait(), h_slow(int);
DROP TABLE h_rows, "../escaped", "a/b", ".hidden", U&"line\000Abreak";
