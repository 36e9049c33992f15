#!/usr/bin/env bash
# tools/test-all.sh: every test suite, in dependency order, with a summary.
# Called by `./dev test` (after deps and build) and so by CI.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

passed=0 failed=0 names=() results=()
stage() { # stage NAME CMD...
	local name=$1; shift
	printf '\n\033[1m=== %s\033[0m\n' "$name"
	local t0=$SECONDS
	if "$@"; then passed=$((passed + 1)); results+=("ok    $name ($((SECONDS - t0)) s)")
	else failed=$((failed + 1)); results+=("FAIL  $name ($((SECONDS - t0)) s)"); fi
}

stage "C unit tests (common/)" make -s -C common check
stage "C unit tests under ASan/UBSan" make -s -C common asancheck
stage "gpu_scan kernels, host build (unit + ASan/UBSan)" make -s -C gpu_scan check asancheck
# every reader of untrusted bytes in common/ under libFuzzer, a couple of seconds each
if command -v clang >/dev/null; then
	stage "fuzz targets, briefly (common/fuzz, ASan/UBSan)" make -s -C common fuzzcheck
else
	echo "skip  fuzz targets: clang not found (./dev deps installs it)"
fi
stage "no symbol clashes with the postgres executable" tools/check-symbols.sh
[ -x contracts/test.sh ] && stage "contracts (forge + anvil)" contracts/test.sh
[ -f tools/dstack-sim/test.mjs ] && stage "dstack simulator" node --test tools/dstack-sim/test.mjs
[ -x tools/chaintest/run.sh ] && stage "chain + guest agent from C" tools/chaintest/run.sh
[ -x tools/dstack-verify/test.sh ] && stage "receipt verifier (tampered receipts)" tools/dstack-verify/test.sh
stage "pg_regress" tools/regress.sh
# gpu_scan's GPU path (gs_cuda.c) end to end on the libcuda simulator: needs nvcc for the fatbin
if command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ]; then
	stage "gpu_scan GPU path on the simulated libcuda (suite: GPU == host build)" \
		env GPUCHECK_LIBCUDA="$ROOT/tools/libcuda-sim/libcuda-sim.so" GPUCHECK_LIBNVML="$ROOT/tools/libcuda-sim/libcuda-sim.so" \
		GPUCHECK_REQUIRE_CC=on GPUCHECK_SKIP_BENCH=1 tools/gpucheck.sh
else
	echo "skip  gpu_scan GPU path on the simulated libcuda: nvcc not found, this build has no kernels"
fi
[ -x tools/demo.sh ] && stage "end-to-end demo" tools/demo.sh --test

printf '\n=== summary\n'
printf '%s\n' "${results[@]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
