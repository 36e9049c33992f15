#!/usr/bin/env bash
# bench/dp.sh: the cost of answering through DP aggregates and receipts, in
# one script on the same sealed table (bench/lib.sh's realistic cohort),
# variants interleaved round by round:
#   plain      count(patient_id), sum(egfr), avg(egfr) over the sealed table (guard off)
#   dp         dp_count, dp_sum, dp_avg of the same (guard off)
#   run        dstack_run() of the dp query: output guard, validation, contribution
#              bounding, budget charge (ledger 'local'), receipt (GetKey, signature,
#              quote, audit row)
#   tiny_dp, tiny_run   the same on a 1000-row table: the difference is the receipt
#   tiny_heap, tiny_plain  the plain query on that table, heap and sealed: the difference
#                       is a sealed statement's fixed cost (CVM identity, chain read, GetKey)
#   tiny_run_chain      dstack_run() with the charge sent to the consortium contract
#                       on anvil and awaited (ledger 'chain'; informational)
# All serial (dstack_run() keeps sealed scans serial) on the foreign scan
# (gpu_scan off: bench/duckdb.sh and bench/gpu.sh measure GpuPreAgg).
# Answer checks before timing, with dstack_fdw.dp_test_seed set (then the noise
# is a function of the seed, so answers can be compared): plain over the sealed
# table = plain over the heap, dp over the sealed table = dp over the heap, and
# the answer in dstack_run()'s receipt = the dp query run directly.
# Targets: dp / plain <= 1.1x; run / dp <= 1.3x; receipt (tiny_run - tiny_dp) <= 25 ms.
# Usage: bench/dp.sh [ROWS]   (default 1000000; REPS=5)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROWS=${1:-1000000}
BENCH=dp
. "$ROOT/bench/lib.sh"

echo "generating and sealing a cohort of $ROWS rows..." >&2
q -c "CREATE EXTENSION dstack_seal; CREATE EXTENSION dstack_fdw;" >/dev/null
gen_cohort cohort "$ROWS"
q -c "CREATE TABLE tiny AS SELECT * FROM cohort ORDER BY patient_id LIMIT 1000" >/dev/null
q -c "$RECIPE" -c "SELECT dstack_seal('cohort') IS NOT NULL" -c "SELECT dstack_seal('tiny') IS NOT NULL" >/dev/null
mount_sealed "ledger 'local'"
# the same files behind a second server whose charges go on chain (the owner registers tiny)
REGISTER_BUDGET_MICRO=1000000000 "$ROOT/tools/register-dataset.sh" "$WORK/out/tiny.dseal" "$WORK/env/owner1.key"
q >/dev/null <<SQL
${SERVER_SQL/SERVER sealed/SERVER sealed_chain}, ledger 'chain');
CREATE SCHEMA sc;
IMPORT FOREIGN SCHEMA sealed LIMIT TO (tiny) FROM SERVER sealed_chain INTO sc OPTIONS (directory '$WORK/out');
SQL

# the budget of the test consortium (1.5) would run out: tiny epsilons
PLAIN="SELECT count(patient_id), sum(egfr), avg(egfr) FROM @T@"
DP="SELECT dp_count(patient_id, 0.0001), dp_sum(egfr, 0, 200, 0.0001), dp_avg(egfr, 0, 200, 0.0001) FROM @T@"
SEED="SET dstack_fdw.dp_test_seed = '$(printf '%064d' 7)';"
SER="SET max_parallel_workers_per_gather = 0; SET jit = off;"
RUNSET="RESET ALL; SET gpu_scan.enabled = off; $SER SET client_min_messages = warning;"
run_of() { echo "SELECT dstack_run(\$q\$$1\$q\$)"; }
# the answer inside a receipt, as the direct query prints it
answer_of() { echo "SELECT string_agg(v, '|' ORDER BY o) FROM ($(run_of "$1")) r(j),
	LATERAL jsonb_array_elements(j->'body'->'result'->'rows'->0) WITH ORDINALITY AS e(x, o), LATERAL (SELECT x #>> '{}') AS t(v)"; }

check_answer "plain over sealed vs heap" "$BASE $SER" "${PLAIN//@T@/cohort}" "$BASE $SER" "${PLAIN//@T@/s.cohort}"
check_answer "plain over sealed vs heap (1000 rows)" "$BASE $SER" "${PLAIN//@T@/tiny}" "$BASE $SER" "${PLAIN//@T@/s.tiny}"
check_answer "dp over sealed vs heap (test seed)" "$BASE $SER $SEED" "${DP//@T@/cohort}" "$BASE $SER $SEED" "${DP//@T@/s.cohort}"
if ! q -c "$RUNSET $SEED" -c "$(run_of "${DP//@T@/s.tiny}")" | grep -q '"result": {"rows"'; then
	echo "FAIL dstack_run() returned no answer:" >&2; q -c "$RUNSET $SEED" -c "$(run_of "${DP//@T@/s.tiny}")" >&2; exit 1
fi
for t in s.tiny s.cohort; do
	check_answer "dstack_run() receipt answer vs the dp query ($t, test seed)" \
		"$BASE $SER $SEED" "${DP//@T@/$t}" "$RUNSET $SEED" "$(answer_of "${DP//@T@/$t}")"
done

variant plain "$BASE $SER" "${PLAIN//@T@/s.cohort}"
variant dp "$BASE $SER" "${DP//@T@/s.cohort}"
variant run "$RUNSET" "$(run_of "${DP//@T@/s.cohort}") IS NOT NULL"
variant tiny_heap "$BASE $SER" "${PLAIN//@T@/tiny}"
variant tiny_plain "$BASE $SER" "${PLAIN//@T@/s.tiny}"
variant tiny_dp "$BASE $SER" "${DP//@T@/s.tiny}"
variant tiny_run "$RUNSET" "$(run_of "${DP//@T@/s.tiny}") IS NOT NULL"
variant tiny_run_chain "$RUNSET" "$(run_of "${DP//@T@/sc.tiny}") IS NOT NULL"
run_variants "$ROWS"

target dp_vs_plain "$(ratio "${MED[dp]}" "${MED[plain]}")" "<=" 1.1 x "time, $ROWS rows, serial"
target run_vs_dp "$(ratio "${MED[run]}" "${MED[dp]}")" "<=" 1.3 x "time, $ROWS rows"
target receipt_ms "$(awk -v a="${MED[tiny_run]}" -v b="${MED[tiny_dp]}" 'BEGIN { printf "%.2f", a - b }')" "<=" 25 " ms" \
	"dstack_run - dp query, 1000 rows, ledger local"
fc=$(awk -v a="${MED[tiny_plain]}" -v b="${MED[tiny_heap]}" 'BEGIN { printf "%.2f", a - b }')
echo "  fixed cost of a sealed statement (1000 rows, sealed - heap: identity, chain read, key): $fc ms"
bench_line "figure=\"statement_fixed_ms\"" "value=$fc"
rc=$(awk -v a="${MED[tiny_run_chain]}" -v b="${MED[tiny_dp]}" 'BEGIN { printf "%.2f", a - b }')
echo "  receipt with the charge on chain (anvil, mined at once): $rc ms"
bench_line "figure=\"receipt_chain_ms\"" "value=$rc"
echo "receipts in the audit table: $(q -c 'SELECT count(*) FROM dstack_receipts')"
