#!/usr/bin/env bash
# tools/gpucheck.sh: the GPU checks of gpu_scan, for a machine with an NVIDIA
# GPU (sm_90 or newer, or any GPU that can JIT the embedded compute_90 PTX).
# `make gpucheck` runs it.
#
#   1. build with nvcc (the kernels are embedded in dstack_fdw.so) and install
#   2. run the gpu_scan regression suite twice, kernels on the GPU and kernels'
#      host build, and require every answer to be identical: the two outputs
#      may differ only where they name the device or count bytes sent to it
#      (and in the planner's cost notes); the GPU run must show Device: GPU
#   3. bench/gpu.sh (ROWS, default 16000000): grouped aggregate and join,
#      GPU vs host build vs PostgreSQL's own plan, speed-ups and GB/s
#
# Usage: tools/gpucheck.sh [ROWS]        GPUCHECK_SKIP_BENCH=1: steps 1-2 only
#   GPUCHECK_LIBCUDA=path   the driver library to load (default libcuda.so.1);
#                           tools/libcuda-sim/libcuda-sim.so runs step 2 without a GPU
#   GPUCHECK_LIBNVML=path   NVML (default libnvidia-ml.so.1; the simulator answers it too)
#   GPUCHECK_REQUIRE_CC=on  require confidential-computing mode (gpu_scan's default);
#                           off by default here: a test machine's GPU often runs without it,
#                           and the suite's data are test data
# Step 2 runs the GPU suite twice: with the planner's device table size, and
# with a 4-slot one (gpu_scan.device_table_slots), so rows overflow to the host.
# Exit status: 0 all good, 1 a check failed, 2 no usable GPU (nothing run).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROWS=${1:-16000000}
cd "$ROOT"

NVCC=$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null || true)
[ -n "$NVCC" ] || { echo "gpucheck: nvcc not found; install the CUDA toolkit (the kernels are built with it)" >&2; exit 2; }
if command -v nvidia-smi >/dev/null; then nvidia-smi -L || true; fi

echo "== build with $NVCC"
make -s >/dev/null
make -s install >/dev/null
grep -q "gs_fatbin_len = sizeof" gpu_scan/gs_fatbin.c ||
	{ echo "gpucheck: the build has no kernels (gpu_scan/gs_fatbin.c is empty)" >&2; exit 1; }

work=$(mktemp -d /tmp/gpucheck.XXXXXX)
trap 'rm -rf "$work"' EXIT
run_suite() { # run_suite DIR on|off [SLOTS]: the gpu_scan suite with gpu_scan.use_gpu set so
	local dir=$1 use=$2 slots=${3:-0}
	mkdir -p "$dir/sql" "$dir/expected"
	sed "s/^SET gpu_scan.use_gpu = off;/SET gpu_scan.use_gpu = $use;/" sql/gpu_scan.sql >"$dir/sql/gpu_scan.sql"
	cp expected/gpu_scan.out "$dir/expected/gpu_scan.out"
	PGOPTIONS="-c gpu_scan.libcuda=${GPUCHECK_LIBCUDA:-libcuda.so.1} -c gpu_scan.device_table_slots=$slots
		-c gpu_scan.libnvidia_ml=${GPUCHECK_LIBNVML:-libnvidia-ml.so.1}
		-c gpu_scan.require_confidential_gpu=${GPUCHECK_REQUIRE_CC:-off}" \
		REGRESS_INPUTDIR="$dir" tools/regress.sh gpu_scan >"$dir/regress.log" 2>&1 || true
	[ -f "$dir/results/gpu_scan.out" ] || { cat "$dir/regress.log" >&2; echo "gpucheck: the suite did not run" >&2; exit 1; }
}
# what may differ between the two runs: the device, bytes moved, kernel time, cost notes,
# and so the width of EXPLAIN's one column and its row count
normalize() {
	sed -e 's/Device: GPU.*/Device: <device>/' -e 's/Device: CPU (host build of the kernels).*/Device: <device>/' \
		-e 's/offered on the GPU: \(.*\), cost [0-9.]*.*/offered: \1/' \
		-e 's/offered on the CPU (host build): \(.*\), cost [0-9.]*.*/offered: \1/' \
		-e 's/^ *SET gpu_scan.use_gpu = \(on\|off\);/SET gpu_scan.use_gpu = <x>;/' \
		-e '/Bytes To GPU\|Bytes From GPU\|Rows Aggregated On Host\|Kernel Time/d' \
		-e '/not offered: no usable GPU/d' -e '/^([0-9]* rows\?)$/d' \
		-e '/^ *QUERY PLAN *$/d' -e '/^-*$/d' "$1"
}

echo "== gpu_scan suite: kernels on the GPU vs their host build"
run_suite "$work/gpu" on
if ! grep -q "Device: GPU" "$work/gpu/results/gpu_scan.out"; then
	grep -m1 "Device:" "$work/gpu/results/gpu_scan.out" >&2 || true
	echo "gpucheck: no usable GPU in the backend (see the Device line above and the server log)" >&2
	exit 2
fi
echo "     $(grep -m1 "Device: GPU" "$work/gpu/results/gpu_scan.out" | sed 's/^ *//')"
run_suite "$work/gpu4" on 4
run_suite "$work/host" off
for g in gpu gpu4; do
	if diff <(normalize "$work/host/results/gpu_scan.out") <(normalize "$work/$g/results/gpu_scan.out") >"$work/diff"; then
		n=$(grep -c "Device: GPU" "$work/$g/results/gpu_scan.out")
		what="device table sized by the planner"; [ $g = gpu4 ] && what="4-slot device table, groups overflowing to the host"
		echo "ok   every answer of the suite is the same on the GPU ($n GPU plans; $what) and on the host build"
	else
		cat "$work/diff" >&2
		echo "FAIL the GPU's answers ($g) differ from the host build's (diff above)" >&2
		exit 1
	fi
done
# the overflow path really ran: EXPLAIN ANALYZE counted rows the host aggregated
grep -q "Rows Aggregated On Host (table overflow): [1-9]" "$work/gpu4/results/gpu_scan.out" ||
	{ echo "FAIL the 4-slot run sent no rows to the host" >&2; exit 1; }

if [ "${GPUCHECK_SKIP_BENCH:-0}" != 1 ]; then
	echo "== bench/gpu.sh $ROWS"
	bench/gpu.sh "$ROWS"
fi
