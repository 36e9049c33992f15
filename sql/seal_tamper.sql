-- Tampering with a sealed dataset is detected: by dstack_seal_verify without
-- keys, and by the CVM-side decryption (tools/dseal-dump) with them.  A wrong
-- recipe (other compose-hash, app id or owner) fails to unwrap cleanly.
\i sql/include/seal_env.psql
SET dstack_seal.compression_level = 0;
SET dstack_seal.rows_per_group = 100;
CREATE TABLE cohort (patient_id int4, age int4, egfr float8, dx text);
INSERT INTO cohort SELECT g, 20 + g % 60, 30 + (g * 7) % 90, 'dx' || g % 5 FROM generate_series(1, 300) g;
\set f :out '/cohort.dseal'
SELECT m->>'row_count' AS row_count FROM dstack_seal('cohort') m;
\! cd "$DSTACK_TEST_OUT" && for t in flip swap trunc manifest; do cp cohort.dseal $t.dseal; chmod 644 $t.dseal; done
\! cd "$DSTACK_TEST_OUT" && node "$DSTACK_TEST_TOOLS/dseal-tamper.mjs" flip.dseal flip-chunk 1 2
\! cd "$DSTACK_TEST_OUT" && node "$DSTACK_TEST_TOOLS/dseal-tamper.mjs" swap.dseal swap-chunks 0 0 1
\! cd "$DSTACK_TEST_OUT" && node "$DSTACK_TEST_TOOLS/dseal-tamper.mjs" trunc.dseal truncate 100
\! cd "$DSTACK_TEST_OUT" && node "$DSTACK_TEST_TOOLS/dseal-tamper.mjs" manifest.dseal edit-manifest '"row_count":300' '"row_count":301'

-- keyless verification
SELECT t AS file, v->>'valid' AS valid, v->>'chunks_bad' AS bad_chunks,
       replace((v->'problems')::text, :'out' || '/', '') AS problems
FROM unnest(ARRAY['cohort', 'flip', 'swap', 'trunc', 'manifest']) t,
     dstack_seal_verify(:'out' || '/' || t || '.dseal') v;

-- decryption in the CVM's place: the intact file decrypts, each damaged one fails and prints no rows
\! cd "$DSTACK_TEST_OUT" && for t in cohort flip swap trunc manifest; do printf '%s: ' $t; $DSTACK_DSEAL_DUMP --key-file "$DSTACK_TEST_DIR/recipient1.key" --app-id $DSTACK_TEST_APP_ID --compose-hash $DSTACK_TEST_COMPOSE_HASH $t.dseal 2>&1 | grep -v '^[0-9]' | head -2; echo "rows=$($DSTACK_DSEAL_DUMP --key-file "$DSTACK_TEST_DIR/recipient1.key" --app-id $DSTACK_TEST_APP_ID --compose-hash $DSTACK_TEST_COMPOSE_HASH $t.dseal 2>/dev/null | wc -l)"; done

-- wrong recipe: another compose-hash, another app id, another owner's recipient key
\! cd "$DSTACK_TEST_OUT" && $DSTACK_DSEAL_DUMP --key-file "$DSTACK_TEST_DIR/recipient1.key" --app-id $DSTACK_TEST_APP_ID --compose-hash 0x$(printf '%064d' 1) cohort.dseal 2>&1 | head -1
\! cd "$DSTACK_TEST_OUT" && $DSTACK_DSEAL_DUMP --key-file "$DSTACK_TEST_DIR/recipient1.key" --app-id 0x000000000000000000000000000000000000beef --compose-hash $DSTACK_TEST_COMPOSE_HASH cohort.dseal 2>&1 | head -1
\! cd "$DSTACK_TEST_OUT" && $DSTACK_DSEAL_DUMP --key-file "$DSTACK_TEST_DIR/recipient2.key" --app-id $DSTACK_TEST_APP_ID --compose-hash $DSTACK_TEST_COMPOSE_HASH cohort.dseal 2>&1 | head -1

-- a dataset sealed for owner 2 carries owner 2's id and signature
SET dstack_seal.owner_key_file = :'owner2_key';
SET dstack_seal.recipient_key = :'recipient2_pub';
SET dstack_seal.recipient_key_chain = :'recipient2_chain';
SELECT m->'header'->>'owner_id' = lower(:'owner2_addr') AS owner2 FROM dstack_seal('cohort', NULL, :'out' || '/cohort2.dseal') m;
\! cd "$DSTACK_TEST_OUT" && $DSTACK_DSEAL_DUMP --key-file "$DSTACK_TEST_DIR/recipient2.key" --app-id $DSTACK_TEST_APP_ID --compose-hash $DSTACK_TEST_COMPOSE_HASH cohort2.dseal | wc -l
\! cd "$DSTACK_TEST_OUT" && $DSTACK_DSEAL_DUMP --key-file "$DSTACK_TEST_DIR/recipient1.key" --app-id $DSTACK_TEST_APP_ID --compose-hash $DSTACK_TEST_COMPOSE_HASH cohort2.dseal 2>&1 | head -1
