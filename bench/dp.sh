#!/usr/bin/env bash
# bench/dp.sh: the cost of answering through DP aggregates and receipts, as
# ratios measured in the same script on the same sealed table:
#   - DP aggregate (dp_count, dp_sum, dp_avg) vs the plain aggregate
#     (count, sum, avg) over the same sealed foreign table, guard off for both
#   - dstack_run() (guard, budget charge, receipt: GetKey, signature, quote,
#     audit row) vs the same DP query run directly, on a 1000-row table:
#     the difference is the receipt time; with the ledger kept locally
#     (ledger 'local') and with the charge sent to the consortium contract on
#     anvil and awaited (ledger 'chain', the default)
# Both run on the foreign scan (gpu_scan.enabled = off): bench/gpu.sh measures GpuPreAgg.
# Usage: bench/dp.sh [ROWS]   (default 1600000)
# Targets: DP/plain <= 1.1x; receipt time <= 50 ms.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROWS=${1:-1600000}
. "$ROOT/bench/lib.sh"

echo "generating and sealing a cohort of $ROWS rows..." >&2
q >/dev/null <<SQL
CREATE EXTENSION dstack_seal; CREATE EXTENSION dstack_fdw;
CREATE TABLE cohort AS
  SELECT g::int8 AS patient_id, (18 + g % 80)::int4 AS age, (20 + (g::int8 * 7919) % 100)::float8 AS egfr
  FROM generate_series(1, $ROWS) g;
$RECIPE
SELECT dstack_seal('cohort') IS NOT NULL;
CREATE TABLE tiny AS SELECT * FROM cohort LIMIT 1000;
SELECT dstack_seal('tiny') IS NOT NULL;
CREATE SERVER sealed FOREIGN DATA WRAPPER dstack_fdw OPTIONS
  (rpc_url '$DSTACK_TEST_RPC', guest_agent '$DSTACK_TEST_SOCKET', kms_root_pubkey '$DSTACK_TEST_KMS_ROOT',
   kms_contract '$DSTACK_TEST_KMS_CONTRACT', chain_id '$DSTACK_TEST_CHAIN_ID', ledger 'local');
CREATE SCHEMA s;
IMPORT FOREIGN SCHEMA sealed FROM SERVER sealed INTO s OPTIONS (directory '$WORK/out');
SQL
# the budget of the test consortium (1.5) would run out: benchmarks use tiny epsilons
PLAIN="SELECT count(patient_id), sum(egfr), avg(egfr) FROM s.cohort"
DP="SELECT dp_count(patient_id, 0.0001), dp_sum(egfr, 0, 200, 0.0001), dp_avg(egfr, 0, 200, 0.0001) FROM s.cohort"
DP_TINY="${DP/s.cohort/s.tiny}"
plain=$(best_ms "SET dstack_fdw.output_guard = off; SET max_parallel_workers_per_gather = 0; SET gpu_scan.enabled = off;" "$PLAIN")
dp=$(best_ms "SET dstack_fdw.output_guard = off; SET max_parallel_workers_per_gather = 0; SET gpu_scan.enabled = off;" "$DP")
run=$(best_ms "SET max_parallel_workers_per_gather = 0; SET gpu_scan.enabled = off;" "SELECT dstack_run(\$q\$$DP\$q\$) IS NOT NULL")
tiny=$(best_ms "SET dstack_fdw.output_guard = off; SET gpu_scan.enabled = off;" "$DP_TINY")
tiny_run=$(best_ms "" "SELECT dstack_run(\$q\$$DP_TINY\$q\$) IS NOT NULL")
# the same with the charge on chain: the owner registers the file (budget 1000 epsilon)
REGISTER_BUDGET_MICRO=1000000000 "$ROOT/tools/register-dataset.sh" "$WORK/out/tiny.dseal" "$WORK/env/owner1.key"
q -c "ALTER SERVER sealed OPTIONS (SET ledger 'chain')" >/dev/null
tiny_chain=$(best_ms "" "SELECT dstack_run(\$q\$$DP_TINY\$q\$) IS NOT NULL")
echo "rows=$ROWS plain_ms=$plain dp_ms=$dp dstack_run_ms=$run; 1000 rows: dp_ms=$tiny dstack_run_ms=$tiny_run (local ledger) $tiny_chain (on-chain charge) (best of $REPS)"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
awk -v p="$plain" -v d="$dp" -v r="$run" -v t="$tiny" -v tr="$tiny_run" -v tc="$tiny_chain" 'BEGIN {
	printf "RATIO DP/plain aggregate time = %.3fx (target <= 1.1x) %s\n", d / p, d / p <= 1.1 ? "MET" : "MISSED";
	printf "RATIO dstack_run/DP query (guard, contribution bounding, budget, receipt) = %.2fx (target <= 1.3x) %s\n", r / d, r / d <= 1.3 ? "MET" : "MISSED";
	printf "receipt time (dstack_run - DP query, 1000-row table) = %.1f ms (target <= 50 ms) %s\n", tr - t, tr - t <= 50 ? "MET" : "MISSED";
	printf "receipt time with the charge on chain (anvil, mined at once) = %.1f ms; the on-chain charge adds %.1f ms\n", tc - t, tc - tr;
}'
echo "receipts in the audit table: $(q -c 'SELECT count(*) FROM dstack_receipts')"
