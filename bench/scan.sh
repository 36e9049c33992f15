#!/usr/bin/env bash
# bench/scan.sh: aggregates over a sealed foreign table (dstack_fdw's columnar
# scan) against the best plain plan over the heap table it was sealed from, in
# one script on the same data (bench/lib.sh's realistic cohort):
#   all   every column read, text included:
#         count(*), sum(patient_id), sum(age), sum(visits), sum(egfr), sum(amount),
#         sum(length(code)), min/max(code), min/max(seen)
#   num3  three numeric columns: count(*), avg(age), avg(egfr), sum(amount)
# Variants, interleaved round by round (bench/lib.sh): the heap serial and with
# 2 workers, each with JIT off and on (jit_above_cost = 0); the sealed table
# serial and with 2 workers (JIT off; gpu_scan off: bench/duckdb.sh and
# bench/gpu.sh measure GpuPreAgg).  The sealed scan includes the whole mount
# rule (guest agent Info, chain read, GetKey, unwrap) because every statement
# pays it; serial sealed scans run with their read-ahead thread (the default)
# and, as sealed_*_serial_1t, without it.  num3 also as deployed (gpu_scan on:
# GpuPreAgg's host build aggregates inside the scan), printed beside the targets.
# Before timing: every row of the sealed table equals the heap's, each sealed
# query's full answer equals the heap's, the 2-worker variants launch 2 workers.
# Targets (throughput = baseline time / sealed time; the baseline is the best
# of the heap's JIT off/on plans with the same number of workers):
#   all serial >= 1.0x, all 2 workers >= 1.5x, num3 serial and 2 workers >= 1.5x
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
for qn in all num3; do
	h=${SQL_OF[$qn]//@T@/cohort}; s=${SQL_OF[$qn]//@T@/s.cohort}
	check_answer "$qn sealed serial vs heap" "$BASE $W0" "$h" "$BASE $W0 $JOFF" "$s"
	check_answer "$qn sealed 2 workers vs heap" "$BASE $W0" "$h" "$BASE $W2 $JOFF" "$s"
	variant "heap_${qn}_serial_jitoff" "$BASE $W0 $JOFF" "$h"
	variant "heap_${qn}_serial_jiton" "$BASE $W0 $JON" "$h"
	variant "heap_${qn}_2w_jitoff" "$BASE $W2 $JOFF" "$h" 2
	variant "heap_${qn}_2w_jiton" "$BASE $W2 $JON" "$h" 2
	variant "sealed_${qn}_serial" "$BASE $W0 $JOFF" "$s"
	# the same without the read-ahead thread: the serial sealed scan on one thread
	variant "sealed_${qn}_serial_1t" "$BASE $W0 $JOFF SET dstack_fdw.read_ahead = off;" "$s"
	variant "sealed_${qn}_2w" "$BASE $W2 $JOFF" "$s" 2
done
# num3 as deployed (gpu_scan on, its default): GpuPreAgg's host build aggregates
# inside the scan; informational, the targets above are the foreign scan's
NUM3_PREAGG="${SQL_OF[num3]//@T@/s.cohort}"
check_answer "num3 GpuPreAgg vs heap" "$BASE $W0" "${SQL_OF[num3]//@T@/cohort}" "$BASE $W0 $JOFF SET gpu_scan.enabled = on;" "$NUM3_PREAGG"
q -c "$BASE $W0 SET gpu_scan.enabled = on;" -c "EXPLAIN (COSTS OFF) $NUM3_PREAGG" | grep -q GpuPreAgg || { echo "FAIL num3 did not plan GpuPreAgg" >&2; exit 1; }
variant "sealed_num3_preagg" "$BASE $W0 $JOFF SET gpu_scan.enabled = on;" "$NUM3_PREAGG"
run_variants "$ROWS"

for qn in all num3; do
	bs=$(best_of "heap_${qn}_serial_jitoff" "heap_${qn}_serial_jiton")
	b2=$(best_of "heap_${qn}_2w_jitoff" "heap_${qn}_2w_jiton")
	ba=$(best_of "heap_${qn}_serial_jitoff" "heap_${qn}_serial_jiton" "heap_${qn}_2w_jitoff" "heap_${qn}_2w_jiton")
	lim=1.5; [ $qn = all ] && lim=1.0
	target "scan_${qn}_serial" "$(ratio "${MED[$bs]}" "${MED[sealed_${qn}_serial]}")" ">=" $lim x "baseline $bs; no parallel workers, the backend and its read-ahead thread"
	echo "  $qn: serial on one thread (read_ahead off) against $bs: $(ratio "${MED[$bs]}" "${MED[sealed_${qn}_serial_1t]}")x"
	bench_line "figure=\"scan_${qn}_serial_1thread_vs_heap\"" "value=$(ratio "${MED[$bs]}" "${MED[sealed_${qn}_serial_1t]}")" "plain=\"$bs\""
	note="baseline $b2"; [ "${V_PAR[sealed_${qn}_2w]}" = true ] || note="$note; the sealed scan did not launch 2 workers"
	target "scan_${qn}_2w" "$(ratio "${MED[$b2]}" "${MED[sealed_${qn}_2w]}")" ">=" 1.5 x "$note"
	sb=$(best_of "sealed_${qn}_serial" "sealed_${qn}_2w")
	echo "  $qn: the best sealed plan ($sb) against the best plain plan ($ba): $(ratio "${MED[$ba]}" "${MED[$sb]}")x"
	bench_line "figure=\"scan_${qn}_best_vs_best\"" "value=$(ratio "${MED[$ba]}" "${MED[$sb]}")" "sealed=\"$sb\"" "plain=\"$ba\""
done
bs=$(best_of heap_num3_serial_jitoff heap_num3_serial_jiton)
echo "  num3 as deployed (gpu_scan on: GpuPreAgg host build, serial, with read-ahead) against $bs: $(ratio "${MED[$bs]}" "${MED[sealed_num3_preagg]}")x"
bench_line "figure=\"scan_num3_preagg_vs_heap_serial\"" "value=$(ratio "${MED[$bs]}" "${MED[sealed_num3_preagg]}")" "plain=\"$bs\""
q -c "$BASE $W2" -c "EXPLAIN (COSTS OFF) ${SQL_OF[num3]//@T@/s.cohort}" | sed 's/^/  /'
