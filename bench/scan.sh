#!/usr/bin/env bash
# bench/scan.sh: aggregate over a sealed foreign table (dstack_fdw), as ratios
# to the same query over baselines run in the same script on the same data:
#   - the heap table it was sealed from
#   - file_fdw over a CSV export of it
# each serial and with 2 parallel workers.  The sealed scan includes the whole
# mount rule (guest agent Info, chain read, GetKey, unwrap, keyless pre-check
# of every needed chunk) because every statement pays it.
# The foreign scan is measured: gpu_scan.enabled = off (bench/gpu.sh measures GpuPreAgg).
# Usage: bench/scan.sh [ROWS]   (default 1600000)
# Targets: sealed >= 0.7x heap throughput, >= 3x file_fdw.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROWS=${1:-1600000}
. "$ROOT/bench/lib.sh"

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
$RECIPE
SELECT dstack_seal('cohort') IS NOT NULL;
COPY cohort TO '$WORK/out/cohort.csv' (FORMAT csv);
CREATE SERVER sealed FOREIGN DATA WRAPPER dstack_fdw OPTIONS
  (rpc_url '$DSTACK_TEST_RPC', guest_agent '$DSTACK_TEST_SOCKET', kms_root_pubkey '$DSTACK_TEST_KMS_ROOT',
   kms_contract '$DSTACK_TEST_KMS_CONTRACT', chain_id '$DSTACK_TEST_CHAIN_ID');
CREATE SCHEMA s;
IMPORT FOREIGN SCHEMA sealed FROM SERVER sealed INTO s OPTIONS (directory '$WORK/out');
CREATE SERVER csv FOREIGN DATA WRAPPER file_fdw;
CREATE FOREIGN TABLE cohort_csv (patient_id int8, age int4, female bool, egfr float8, creatinine numeric(6,2),
  dx_code text, admitted date, systolic_bp int4) SERVER csv OPTIONS (filename '$WORK/out/cohort.csv', format 'csv');
SQL

AGG="count(*), sum(age), avg(egfr), avg(creatinine)"
# the scan itself is measured, so the output guard is off (superuser);
# the sealed and heap answers must agree before anything is timed
a=$(q -c "SET dstack_fdw.output_guard = off" -c "SELECT count(*), sum(age), avg(creatinine) FROM s.cohort")
b=$(q -c "SELECT count(*), sum(age), avg(creatinine) FROM cohort")
[ "$a" = "$b" ] || { echo "sealed and heap answers differ: $a vs $b" >&2; exit 1; }

for w in 0 2; do
	setup="SET dstack_fdw.output_guard = off; SET gpu_scan.enabled = off; SET max_parallel_workers_per_gather = $w;
	SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;"
	heap=$(best_ms "$setup" "SELECT $AGG FROM cohort")
	sealed=$(best_ms "$setup" "SELECT $AGG FROM s.cohort")
	csv=$(best_ms "$setup" "SELECT $AGG FROM cohort_csv")
	echo "workers=$w rows=$ROWS heap_ms=$heap sealed_ms=$sealed file_fdw_ms=$csv (best of $REPS)"
	awk -v h="$heap" -v s="$sealed" -v c="$csv" -v w="$w" 'BEGIN {
		printf "RATIO workers=%d sealed/heap throughput = %.2fx (target >= 0.7x)\n", w, h / s;
		printf "RATIO workers=%d sealed/file_fdw throughput = %.2fx (target >= 3x)\n", w, c / s;
	}'
done
q -c "SET dstack_fdw.output_guard = off; SET max_parallel_workers_per_gather = 2; SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0;
      EXPLAIN (COSTS OFF) SELECT $AGG FROM s.cohort" | sed 's/^/  /'
