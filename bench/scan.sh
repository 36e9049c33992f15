#!/usr/bin/env bash
# bench/scan.sh: aggregates over a sealed foreign table against the best plain
# plan over the heap table it was sealed from, in one script on the same data
# (bench/lib.sh's realistic cohort):
#   all   every column read, text included:
#         count(*), sum(patient_id), sum(age), sum(visits), sum(egfr), sum(amount),
#         sum(length(code)), min/max(code), min/max(seen)
#   num3  three numeric columns: count(*), avg(age), avg(egfr), sum(amount)
# Variants, interleaved round by round (bench/lib.sh): the heap serial and with
# 2 workers, each with JIT off and on (jit_above_cost = 0); the sealed query as
# deployed (gpu_scan on, its default: the planner's choice, which for both
# queries is GpuPreAgg, whose host build aggregates inside the scan, with the
# scan's read-ahead thread), with workers off and with 2 workers allowed; and
# the foreign scan alone (gpu_scan off: rows go up to PostgreSQL's Agg),
# serial, serial on one thread (read_ahead off) and with 2 workers.  Every
# sealed variant includes the whole mount rule (guest agent Info, chain read,
# GetKey, unwrap), because every statement pays it.  JIT off on sealed plans.
# Before timing: every row of the sealed table equals the heap's, each sealed
# query's full answer equals the heap's (every variant), the deployed plans are
# GpuPreAgg, the 2-worker variants launch 2 workers.
# Targets (throughput = baseline time / sealed time; the baseline is the best
# of the heap's JIT off/on plans with the same number of workers), on the
# sealed query as deployed:
#   all serial >= 1.0x, all 2 workers >= 1.5x, num3 serial and 2 workers >= 1.5x
# The foreign scan alone is printed against the same baselines as figures.
# Usage: bench/scan.sh [ROWS]   (default 1000000; REPS=5)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROWS=${1:-1000000}
BENCH=scan
. "$ROOT/bench/lib.sh"

sealed_cohort "$ROWS"
check_rows cohort s.cohort

declare -A SQL_OF=(
	[all]="SELECT count(*), sum(patient_id), sum(age), sum(visits), sum(egfr), sum(amount), sum(length(code)), min(code), max(code), min(seen), max(seen) FROM @T@"
	[num3]="SELECT count(*), avg(age), avg(egfr), sum(amount) FROM @T@"
)
JOFF="SET jit = off;"
JON="SET jit = on; SET jit_above_cost = 0;"
W0="SET max_parallel_workers_per_gather = 0;"
W2="SET max_parallel_workers_per_gather = 2; $PAR"
GPU="SET gpu_scan.enabled = on;"
for qn in all num3; do
	h=${SQL_OF[$qn]//@T@/cohort}; s=${SQL_OF[$qn]//@T@/s.cohort}
	check_answer "$qn sealed as deployed vs heap" "$BASE $W0" "$h" "$BASE $W0 $JOFF $GPU" "$s"
	check_answer "$qn sealed as deployed, 2 workers allowed, vs heap" "$BASE $W0" "$h" "$BASE $W2 $JOFF $GPU" "$s"
	check_answer "$qn foreign scan serial vs heap" "$BASE $W0" "$h" "$BASE $W0 $JOFF" "$s"
	check_answer "$qn foreign scan 2 workers vs heap" "$BASE $W0" "$h" "$BASE $W2 $JOFF" "$s"
	for w in "$W0" "$W2"; do
		q -c "$BASE $w $GPU" -c "EXPLAIN (COSTS OFF) $s" | grep -q GpuPreAgg ||
			{ echo "FAIL $qn as deployed ($w) did not plan GpuPreAgg" >&2; exit 1; }
	done
	variant "heap_${qn}_serial_jitoff" "$BASE $W0 $JOFF" "$h"
	variant "heap_${qn}_serial_jiton" "$BASE $W0 $JON" "$h"
	variant "heap_${qn}_2w_jitoff" "$BASE $W2 $JOFF" "$h" 2
	variant "heap_${qn}_2w_jiton" "$BASE $W2 $JON" "$h" 2
	variant "sealed_${qn}_deployed" "$BASE $W0 $JOFF $GPU" "$s"
	variant "sealed_${qn}_deployed_w2" "$BASE $W2 $JOFF $GPU" "$s"
	variant "sealed_${qn}_fscan_serial" "$BASE $W0 $JOFF" "$s"
	# the same without the read-ahead thread: the serial foreign scan on one thread
	variant "sealed_${qn}_fscan_serial_1t" "$BASE $W0 $JOFF SET dstack_fdw.read_ahead = off;" "$s"
	variant "sealed_${qn}_fscan_2w" "$BASE $W2 $JOFF" "$s" 2
done
run_variants "$ROWS"

for qn in all num3; do
	bs=$(best_of "heap_${qn}_serial_jitoff" "heap_${qn}_serial_jiton")
	b2=$(best_of "heap_${qn}_2w_jitoff" "heap_${qn}_2w_jiton")
	ba=$(best_of "heap_${qn}_serial_jitoff" "heap_${qn}_serial_jiton" "heap_${qn}_2w_jitoff" "heap_${qn}_2w_jiton")
	lim=1.5; [ $qn = all ] && lim=1.0
	target "scan_${qn}_serial" "$(ratio "${MED[$bs]}" "${MED[sealed_${qn}_deployed]}")" ">=" $lim x \
		"baseline $bs; as deployed: GpuPreAgg host build, workers off, the scan's read-ahead thread"
	target "scan_${qn}_2w" "$(ratio "${MED[$b2]}" "${MED[sealed_${qn}_deployed_w2]}")" ">=" 1.5 x \
		"baseline $b2; as deployed with 2 workers allowed: the planner keeps GpuPreAgg (no workers), with its read-ahead thread"
	for v in fscan_serial fscan_serial_1t fscan_2w; do
		base=$bs; [ $v = fscan_2w ] && base=$b2
		note=""; [ $v = fscan_2w ] && [ "${V_PAR[sealed_${qn}_fscan_2w]}" != true ] && note=" (did not launch 2 workers)"
		echo "  $qn: the foreign scan alone, $v$note, against $base: $(ratio "${MED[$base]}" "${MED[sealed_${qn}_$v]}")x"
		bench_line "figure=\"scan_${qn}_${v}_vs_heap\"" "value=$(ratio "${MED[$base]}" "${MED[sealed_${qn}_$v]}")" "plain=\"$base\""
	done
	sb=$(best_of "sealed_${qn}_deployed" "sealed_${qn}_deployed_w2" "sealed_${qn}_fscan_serial" "sealed_${qn}_fscan_2w")
	echo "  $qn: the best sealed plan ($sb) against the best plain plan ($ba): $(ratio "${MED[$ba]}" "${MED[$sb]}")x"
	bench_line "figure=\"scan_${qn}_best_vs_best\"" "value=$(ratio "${MED[$ba]}" "${MED[$sb]}")" "sealed=\"$sb\"" "plain=\"$ba\""
done
q -c "$BASE $W2 $GPU" -c "EXPLAIN (COSTS OFF) ${SQL_OF[all]//@T@/s.cohort}" | sed 's/^/  /'
