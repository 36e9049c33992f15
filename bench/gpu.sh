#!/usr/bin/env bash
# bench/gpu.sh: gpu_scan's GpuPreAgg against the best plain CPU plan, in one
# script on the same data (bench/lib.sh's realistic cohort, ROWS rows, and an
# imaging table holding a random tenth of its patients):
#   grouped  SELECT visits, count(*), sum(amount), min(seen), max(seen) ... WHERE age > 30 GROUP BY visits
#   join     SELECT i.modality, count(*), sum(c.amount) FROM cohort c JOIN imaging i ON patient_id
#            WHERE i.lvef < 50 GROUP BY i.modality
# Variants, interleaved round by round:
#   heap_{serial,2w}_jit{off,on}  the heap tables (ANALYZEd: the join is a hash join), the baseline:
#                                 the best of them (printed); the 2-worker ones must launch 2 workers
#   sealed_cpu   the sealed tables, gpu_scan off, serial (sealed tables have no statistics:
#                PostgreSQL may pick a merge join; the plan is printed), for reference
#   host         GpuPreAgg running its kernels' host build (use_gpu off), one backend
#   gpu          GpuPreAgg on the GPU, only where the probe finds one.  BENCH_LIBCUDA=path
#                loads that driver library instead (tools/libcuda-sim/libcuda-sim.so: the
#                simulator; its answers are checked, its times mean nothing and get no ratio)
# Every variant's answer equals the heap's (numbers with a fraction within a relative 1e-8) before timing.
# Prints each path's speed-up over the best plain plan (no target: figures).
# Usage: bench/gpu.sh [ROWS]   (default 4000000; REPS=5)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROWS=${1:-4000000}
BENCH=gpu
if [ -n "${BENCH_LIBCUDA:-}" ]; then
	export PGOPTIONS="-c gpu_scan.libcuda=$(realpath "$BENCH_LIBCUDA") -c gpu_scan.libnvidia_ml=$(realpath "${BENCH_LIBNVML:-$BENCH_LIBCUDA}")"
fi
. "$ROOT/bench/lib.sh"

echo "generating and sealing a cohort of $ROWS rows and its imaging table..." >&2
q -c "CREATE EXTENSION dstack_seal; CREATE EXTENSION dstack_fdw;" >/dev/null
gen_cohort cohort "$ROWS"
gen_imaging imaging cohort 0.1
q -c "$RECIPE" -c "SELECT dstack_seal('cohort') IS NOT NULL" -c "SELECT dstack_seal('imaging') IS NOT NULL" >/dev/null
mount_sealed
size_report cohort "$WORK/out/cohort.dseal"

declare -A SQL_OF=(
	[grouped]="SELECT visits, count(*), sum(amount), min(seen), max(seen) FROM @C@ WHERE age > 30 GROUP BY visits ORDER BY visits"
	[join]="SELECT i.modality, count(*), sum(c.amount) FROM @C@ c JOIN @I@ i ON c.patient_id = i.patient_id WHERE i.lvef < 50 GROUP BY i.modality ORDER BY i.modality"
)
sql_on() { local s=${SQL_OF[$1]//@C@/$2}; echo "${s//@I@/$3}"; }
JOFF="SET jit = off;"
JON="SET jit = on; SET jit_above_cost = 0;"
W0="SET max_parallel_workers_per_gather = 0;"
W2="SET max_parallel_workers_per_gather = 2; $PAR"
G="RESET ALL; SET dstack_fdw.output_guard = off; SET work_mem = '256MB'; SET client_min_messages = warning; $W0 $JOFF
SET gpu_scan.enabled = on;"
HOST="$G SET gpu_scan.host_path = on; SET gpu_scan.use_gpu = off;"
# test data: a test machine's GPU need not be in confidential-computing mode (BENCH_REQUIRE_CC=on to require it)
GPU="$G SET gpu_scan.host_path = off; SET gpu_scan.use_gpu = on; SET gpu_scan.require_confidential_gpu = ${BENCH_REQUIRE_CC:-off};"

plan=$(q -c "$GPU" -c "EXPLAIN (COSTS OFF) $(sql_on grouped s.cohort s.imaging)" 2>&1 || true)
gpu=
if echo "$plan" | grep -q "Device: GPU"; then
	gpu=gpu
	case ${BENCH_LIBCUDA:-} in *sim*) gpu=gpu_simulated
		echo "NOTE the GPU path runs on the libcuda simulator ($BENCH_LIBCUDA): its answers are checked, its times are not a GPU's" >&2 ;;
	esac
else
	why=$(q -c "$G SET gpu_scan.host_path = on; SET gpu_scan.use_gpu = on;" -c "EXPLAIN (COSTS OFF) $(sql_on grouped s.cohort s.imaging)" | sed -n 's/.*Device: CPU (host build of the kernels): //p' | head -1)
	echo "NOTE no usable GPU here (${why:-unknown}): timing the CPU plans and GpuPreAgg's host build only" >&2
fi

for qn in grouped join; do
	h=$(sql_on $qn cohort imaging); s=$(sql_on $qn s.cohort s.imaging)
	for w in serial 2w; do
		[ $w = serial ] && ws=$W0 || ws=$W2
		plan=$(q -c "$BASE $ws" -c "EXPLAIN (COSTS OFF) $h")
		if [ $qn = join ] && ! echo "$plan" | grep -q "Hash Join"; then
			echo "NOTE the heap's $w join plan is not a hash join:" >&2; echo "$plan" | sed 's/^/  /' >&2
		fi
	done
	echo "$qn: the sealed tables' plain plan (gpu_scan off, serial):" >&2
	q -c "$BASE $W0" -c "EXPLAIN (COSTS OFF) $s" | grep -E "Join|Aggregate|Scan on" | sed 's/^/  /' >&2
	check_answer "$qn heap 2 workers vs heap serial" "$BASE $W0" "$h" "$BASE $W2" "$h"
	check_answer "$qn sealed_cpu vs heap" "$BASE $W0" "$h" "$BASE $W0" "$s"
	for p in host $gpu; do
		[ $p = host ] && setup=$HOST || setup=$GPU
		q -c "$setup" -c "EXPLAIN (COSTS OFF) $s" | grep -q GpuPreAgg || { echo "FAIL $qn: the $p path did not plan GpuPreAgg" >&2; exit 1; }
		check_answer "$qn $p vs heap" "$BASE $W0" "$h" "$setup" "$s"
	done
	variant "${qn}_heap_serial_jitoff" "$BASE $W0 $JOFF" "$h"
	variant "${qn}_heap_serial_jiton" "$BASE $W0 $JON" "$h"
	variant "${qn}_heap_2w_jitoff" "$BASE $W2 $JOFF" "$h" 2
	variant "${qn}_heap_2w_jiton" "$BASE $W2 $JON" "$h" 2
	variant "${qn}_sealed_cpu" "$BASE $W0 $JOFF" "$s"
	variant "${qn}_host" "$HOST" "$s"
	[ -z "$gpu" ] || variant "${qn}_$gpu" "$GPU" "$s"
done
run_variants "$ROWS"

for qn in grouped join; do
	b=$(best_of "${qn}_heap_serial_jitoff" "${qn}_heap_serial_jiton" "${qn}_heap_2w_jitoff" "${qn}_heap_2w_jiton")
	echo "$qn: best plain plan: $b (${MED[$b]} ms)"
	for p in sealed_cpu host $gpu; do
		[ $p = gpu_simulated ] && { echo "  $qn gpu_simulated: ${MED[${qn}_$p]} ms on the simulator (not a GPU's time; no ratio)"; continue; }
		r=$(ratio "${MED[$b]}" "${MED[${qn}_$p]}")
		echo "  $qn $p: ${r}x the best plain plan's throughput"
		bench_line "figure=\"${qn}_${p}_speedup\"" "value=$r" "baseline=\"$b\"" "rows=$ROWS"
	done
done
