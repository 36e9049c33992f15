#!/usr/bin/env bash
# bench/gpu.sh: gpu_scan's GpuPreAgg against PostgreSQL's own plan over the
# same sealed tables, in one script on the same data:
#   cpu   gpu_scan.enabled = off: foreign scan + HashAggregate / Hash Join
#   host  GpuPreAgg running its kernels' host build (gpu_scan.use_gpu = off)
#   gpu   GpuPreAgg on the GPU (only where one is usable)
# over a generated transactions table (78M rows by default) and an accounts
# table (1/50 of it) for the join:
#   grouped  SELECT category, count(*), sum(amount), min(at), max(at) ... GROUP BY category
#   join     SELECT a.region, count(*), sum(t.amount) ... JOIN accounts USING (account_id) GROUP BY a.region
# Every path's answer must equal the cpu path's before anything is timed.
# Prints best-of-REPS times, each path's speed-up over cpu, and the
# achieved rate against the byte floor: the plaintext bytes of the columns
# the query reads (values + validity bitmaps), which is the least any path
# must decrypt and, on a GPU, copy to the device.
# Usage: bench/gpu.sh [ROWS]   (default 78000000; REPS=3)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROWS=${1:-78000000}
REPS=${REPS:-3}
ACCOUNTS=$((ROWS / 50 > 1000 ? ROWS / 50 : 1000))
. "$ROOT/bench/lib.sh"

echo "generating and sealing $ROWS transactions and $ACCOUNTS accounts..." >&2
t0=$(date +%s)
q >/dev/null <<SQL
CREATE EXTENSION dstack_seal; CREATE EXTENSION dstack_fdw;
CREATE UNLOGGED TABLE transactions AS
  SELECT g::int8 AS id, (1 + (g::int8 * 7919) % $ACCOUNTS)::int8 AS account_id,
         ((g::int8 * 104729) % 200000 - 50000)::int4 AS amount, (g % 16)::int2 AS category,
         timestamp '2025-01-01' + (g % 31536000) * interval '1 second' AS at
  FROM generate_series(1, $ROWS) g;
CREATE UNLOGGED TABLE accounts AS
  SELECT g::int8 AS account_id, (ARRAY['north','south','east','west','central'])[1 + g % 5] AS region,
         (g % 4)::int2 AS tier
  FROM generate_series(1, $ACCOUNTS) g;
$RECIPE
SET client_min_messages = warning;
SELECT dstack_seal('transactions') IS NOT NULL;
SELECT dstack_seal('accounts') IS NOT NULL;
DROP TABLE transactions; DROP TABLE accounts;
CREATE SERVER sealed FOREIGN DATA WRAPPER dstack_fdw OPTIONS
  (rpc_url '$DSTACK_TEST_RPC', guest_agent '$DSTACK_TEST_SOCKET', kms_root_pubkey '$DSTACK_TEST_KMS_ROOT',
   kms_contract '$DSTACK_TEST_KMS_CONTRACT', chain_id '$DSTACK_TEST_CHAIN_ID');
CREATE SCHEMA s;
IMPORT FOREIGN SCHEMA sealed FROM SERVER sealed INTO s OPTIONS (directory '$WORK/out');
SQL
echo "sealed in $(( $(date +%s) - t0 )) s" >&2

GROUPED="SELECT category, count(*), sum(amount), min(at), max(at) FROM s.transactions WHERE amount > -40000 GROUP BY category ORDER BY category"
JOIN="SELECT a.region, count(*), sum(t.amount) FROM s.transactions t JOIN s.accounts a USING (account_id) WHERE a.tier > 0 GROUP BY a.region ORDER BY a.region"
# plaintext bytes the queries must read: values + validity bitmaps (no NULLs here: values only)
FLOOR_GROUPED=$((ROWS * (4 + 2 + 8)))
FLOOR_JOIN=$((ROWS * (8 + 4) + ACCOUNTS * (8 + 8 + 2)))

BASE="SET dstack_fdw.output_guard = off; SET max_parallel_workers_per_gather = 0; SET work_mem = '1GB';"
CPU="$BASE SET gpu_scan.enabled = off;"
HOST="$BASE SET gpu_scan.enabled = on; SET gpu_scan.host_path = on; SET gpu_scan.use_gpu = off;"
# test data: a test machine's GPU need not be in confidential-computing mode (BENCH_REQUIRE_CC=on to require it)
GPU="$BASE SET gpu_scan.enabled = on; SET gpu_scan.host_path = off; SET gpu_scan.use_gpu = on;
SET gpu_scan.require_confidential_gpu = ${BENCH_REQUIRE_CC:-off};"

# is there a GPU?  (the plan says where GpuPreAgg would run)
plan=$(q -c "$GPU" -c "EXPLAIN (COSTS OFF) $GROUPED" 2>&1 || true)
if echo "$plan" | grep -q "Device: GPU"; then paths="cpu host gpu"; else
	paths="cpu host"
	why=$(q -c "$BASE SET gpu_scan.enabled = on; SET gpu_scan.host_path = on;" -c "EXPLAIN (COSTS OFF) $GROUPED" |
		sed -n 's/.*Device: CPU (host build of the kernels): //p' | head -1)
	echo "NOTE no usable GPU here (${why:-unknown}): timing the cpu and host paths only" >&2
fi

setup_of() { case $1 in cpu) echo "$CPU" ;; host) echo "$HOST" ;; gpu) echo "$GPU" ;; esac; }

for name in grouped join; do
	if [ $name = grouped ]; then sql=$GROUPED; floor=$FLOOR_GROUPED; else sql=$JOIN; floor=$FLOOR_JOIN; fi
	ref=$(q -c "$CPU" -c "$sql")
	declare -A ms=()
	for p in $paths; do
		got=$(q -c "$(setup_of $p)" -c "$sql")
		[ "$got" = "$ref" ] || { echo "FAIL $name: the $p path's answer differs from the cpu path's" >&2;
			diff <(echo "$ref") <(echo "$got") >&2 || true; exit 1; }
		node=$(q -c "$(setup_of $p)" -c "EXPLAIN (COSTS OFF) $sql" | grep -c "GpuPreAgg" || true)
		[ $p = cpu ] || [ "$node" -ge 1 ] || { echo "FAIL $name: the $p path did not plan GpuPreAgg" >&2; exit 1; }
		ms[$p]=$(best_ms "$(setup_of $p)" "$sql")
		echo "$name path=$p rows=$ROWS best_ms=${ms[$p]} (best of $REPS; answers equal the cpu path's)"
	done
	for p in $paths; do
		[ $p = cpu ] && continue
		awk -v c="${ms[cpu]}" -v x="${ms[$p]}" -v p="$p" -v n="$name" -v f="$floor" 'BEGIN {
			printf "RATIO %s %s/cpu speed-up = %.2fx; %s at %.2f GB/s of the %.2f GB byte floor (cpu path %.2f GB/s)\n",
				n, p, c / x, p, f / (x / 1000) / 1e9, f / 1e9, f / (c / 1000) / 1e9;
		}'
	done
	if [[ " $paths " == *" gpu "* ]]; then
		q -c "$GPU" -c "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) $sql" |
			grep -E "Bytes To GPU|Bytes From GPU|Kernel Time|Rows Read|Aggregated On Host" | sed 's/^ */  gpu: /'
	fi
	unset ms
done
