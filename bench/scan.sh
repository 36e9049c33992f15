#!/usr/bin/env bash
# bench/scan.sh: aggregate over a sealed foreign table (dstack_fdw), as ratios
# to the same query over baselines run in the same script on the same data:
#   - the heap table it was sealed from
#   - file_fdw over a CSV export of it
# each serial and with 2 parallel workers.  The sealed scan includes the whole
# mount rule (guest agent Info, chain read, GetKey, unwrap, keyless pre-check
# of every needed chunk) because every statement pays it.
# Usage: bench/scan.sh [ROWS]   (default 1600000)
# Targets: sealed >= 0.7x heap throughput, >= 3x file_fdw.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$ROOT/tools/lib/pg.sh"
ROWS=${1:-1600000}
REPS=${REPS:-5}

WORK=$(mktemp -d /tmp/pg_dstack_bench.XXXXXX)
chmod 755 "$WORK"
trap 'pg_down "$WORK/pg"; "$ROOT/tools/testenv.sh" down "$WORK/env"; rm -rf "$WORK"' EXIT
"$ROOT/tools/testenv.sh" up "$WORK/env" --owners 1 --threshold 1 --approve 1 >/dev/null
. "$WORK/env/env.sh"
PORT=$((20000 + RANDOM % 20000))
pg_up "$WORK/pg" "$PORT"
mkdir -p "$WORK/out"; [ "$(id -u)" = 0 ] && chown postgres: "$WORK/out"
q() { pg_psql "$WORK/pg" "$PORT" -d postgres -At "$@"; }

echo "generating and sealing a cohort of $ROWS rows..." >&2
q >/dev/null <<SQL
CREATE EXTENSION dstack_seal; CREATE EXTENSION dstack_fdw; CREATE EXTENSION file_fdw;
CREATE TABLE cohort AS
  SELECT g::int8 AS patient_id, (18 + g % 80)::int4 AS age, (g % 2 = 0) AS female,
         (20 + (g::int8 * 7919) % 100)::float8 + (g % 10) / 10.0 AS egfr,
         ((g::int8 * 31) % 900 / 100.0 + 0.4)::numeric(6,2) AS creatinine,
         'I' || (10 + g % 40)::text || '.' || (g % 10)::text AS dx_code,
         date '2015-01-01' + (g % 3000) AS admitted,
         CASE WHEN g % 17 = 0 THEN NULL ELSE (g % 250)::int4 END AS systolic_bp
  FROM generate_series(1, $ROWS) g;
VACUUM ANALYZE cohort;
SET dstack_seal.kms_root_pubkey = '$DSTACK_TEST_KMS_ROOT';
SET dstack_seal.app_id = '$DSTACK_TEST_APP_ID';
SET dstack_seal.compose_hash = '$DSTACK_TEST_COMPOSE_HASH';
SET dstack_seal.owner_key_file = '$WORK/env/owner1.key';
SET dstack_seal.recipient_key = '$DSTACK_TEST_RECIPIENT1_PUB';
SET dstack_seal.recipient_key_chain = '$DSTACK_TEST_RECIPIENT1_CHAIN';
SET dstack_seal.output_dir = '$WORK/out';
SELECT dstack_seal('cohort') IS NOT NULL;
COPY cohort TO '$WORK/out/cohort.csv' (FORMAT csv);
CREATE SERVER sealed FOREIGN DATA WRAPPER dstack_fdw OPTIONS
  (rpc_url '$DSTACK_TEST_RPC', guest_agent '$DSTACK_TEST_SOCKET', kms_root_pubkey '$DSTACK_TEST_KMS_ROOT');
CREATE SCHEMA s;
IMPORT FOREIGN SCHEMA sealed FROM SERVER sealed INTO s OPTIONS (directory '$WORK/out');
CREATE SERVER csv FOREIGN DATA WRAPPER file_fdw;
CREATE FOREIGN TABLE cohort_csv (patient_id int8, age int4, female bool, egfr float8, creatinine numeric(6,2),
  dx_code text, admitted date, systolic_bp int4) SERVER csv OPTIONS (filename '$WORK/out/cohort.csv', format 'csv');
SQL

AGG="count(*), sum(age), avg(egfr), avg(creatinine)"
# best of REPS runs of one query, in ms, measured inside one session with \timing
best_ms() { # best_ms WORKERS TABLE
	local setup="SET dstack_fdw.output_guard = off; SET max_parallel_workers_per_gather = $1; SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0;
	SET min_parallel_table_scan_size = 0;"
	{ echo "$setup"; echo '\timing on'; for _ in $(seq 1 "$REPS"); do echo "SELECT $AGG FROM $2;"; done; } |
		q 2>&1 | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | sort -n | head -1
}
# the scan itself is measured, so the output guard is off (superuser);
# the sealed and heap answers must agree before anything is timed
a=$(q -c "SET dstack_fdw.output_guard = off" -c "SELECT count(*), sum(age), avg(creatinine) FROM s.cohort")
b=$(q -c "SELECT count(*), sum(age), avg(creatinine) FROM cohort")
[ "$a" = "$b" ] || { echo "sealed and heap answers differ: $a vs $b" >&2; exit 1; }

for w in 0 2; do
	heap=$(best_ms $w cohort)
	sealed=$(best_ms $w s.cohort)
	csv=$(best_ms $w cohort_csv)
	echo "workers=$w rows=$ROWS heap_ms=$heap sealed_ms=$sealed file_fdw_ms=$csv (best of $REPS)"
	awk -v h="$heap" -v s="$sealed" -v c="$csv" -v w="$w" 'BEGIN {
		printf "RATIO workers=%d sealed/heap throughput = %.2fx (target >= 0.7x)\n", w, h / s;
		printf "RATIO workers=%d sealed/file_fdw throughput = %.2fx (target >= 3x)\n", w, c / s;
	}'
done
q -c "SET dstack_fdw.output_guard = off; SET max_parallel_workers_per_gather = 2; SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0;
      EXPLAIN (COSTS OFF) SELECT $AGG FROM s.cohort" | sed 's/^/  /'
