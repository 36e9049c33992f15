#!/usr/bin/env bash
# bench/plan.sh: the cost of planning a query over a sealed table must not grow
# with the table.  Two sealed tables of bench/lib.sh's cohort, SMALL rows and
# ROWS rows; EXPLAIN (no ANALYZE: planning, including the mount rule the
# planner runs) of the same grouped DP query over each, with gpu_scan on (as
# deployed: GpuPreAgg is costed) and off (the foreign scan), interleaved round
# by round, PLAN_REPS rounds.
# Target: EXPLAIN time large / small <= 1.2x, for each setting.
# Usage: bench/plan.sh [ROWS]   (default 1000000; SMALL=10000; PLAN_REPS=20)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROWS=${1:-1000000}
SMALL=${SMALL:-10000}
BENCH=plan
. "$ROOT/bench/lib.sh"
REPS=${PLAN_REPS:-20}

echo "generating and sealing cohorts of $SMALL and $ROWS rows..." >&2
q -c "CREATE EXTENSION dstack_seal; CREATE EXTENSION dstack_fdw;" >/dev/null
gen_cohort cohort_small "$SMALL" 0.3
gen_cohort cohort_large "$ROWS" 0.4
q -c "$RECIPE" -c "SELECT dstack_seal('cohort_small') IS NOT NULL" -c "SELECT dstack_seal('cohort_large') IS NOT NULL" >/dev/null
mount_sealed
size_report cohort_large "$WORK/out/cohort_large.dseal"

Q="SELECT visits, dp_count(patient_id, 0.001), dp_avg(egfr, 0, 200, 0.001) FROM @T@ WHERE age > 40 GROUP BY visits"
for g in on off; do
	setup="RESET ALL; SET dstack_fdw.output_guard = off; SET gpu_scan.enabled = $g; SET client_min_messages = warning;"
	for t in small large; do variant "explain_gpuscan_${g}_$t" "$setup" "EXPLAIN ${Q//@T@/s.cohort_$t}"; done
	echo "plan with gpu_scan = $g (large):" >&2
	q -c "$setup" -c "EXPLAIN (COSTS OFF) ${Q//@T@/s.cohort_large}" | sed 's/^/  /' >&2
done
run_variants "$ROWS"
for g in on off; do
	target "plan_large_vs_small_gpuscan_$g" "$(ratio "${MED[explain_gpuscan_${g}_large]}" "${MED[explain_gpuscan_${g}_small]}")" "<=" 1.2 x \
		"EXPLAIN time, $ROWS vs $SMALL rows"
done
