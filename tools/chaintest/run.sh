#!/usr/bin/env bash
# tools/chaintest/run.sh: common/'s JSON-RPC and guest-agent clients against a
# live chain and the dstack simulator, all on loopback (tools/testenv.sh):
#   1. 3 owners, threshold 2, 2 approvals      -> approved (key + chain + state,
#      with an honest second node and one that hides revocations)
#   2. owner 1 revokes                          -> revoked
#   3. anvil killed; a node that hangs          -> node-down (DERR_NETWORK in time)
#   4. 3 owners, threshold 2, 1 approval        -> underapproved (a CVM the KMS
#      would not boot: the simulator asks it on every request)
#   5. 2 approvals, CVM with another recipe     -> wrong-compose (likewise)
#   6. no agent socket                          -> no-socket
#   7. (txtest) transactions signed in C: transfer, receipt, replay, wrong chain
# Prints every check and a total "N passed, N failed"; exits non-zero on failure.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
BIN=$ROOT/tools/chaintest/chaintest
TIMEOUT_MS=${CHAINTEST_TIMEOUT_MS:-2000}

for f in contracts/scripts/consortium.sh tools/dstack-sim/dstack-sim.mjs tools/testenv.sh node_modules/.bin/anvil; do
	if [ ! -e "$f" ]; then
		echo "chaintest: SKIPPED, $f is missing"
		exit 0
	fi
done
make -s -C common >/dev/null && make -s -C tools/chaintest >/dev/null || { echo "chaintest: build failed"; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/chaintest.XXXXXX")
envs=()
cleanup() {
	for w in "${envs[@]}"; do tools/testenv.sh down "$w" >/dev/null 2>&1; done
	[ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

total_p=0 total_f=0
# run SCENARIO [args]: one chaintest run, its counts added to the totals
run() {
	local out rc p f
	out=$("$BIN" "$@" 2>&1); rc=$?
	printf '%s\n' "$out"
	p=$(printf '%s\n' "$out" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p' | tail -1)
	f=$(printf '%s\n' "$out" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p' | tail -1)
	if [ -z "$p" ]; then p=0; f=1; echo "FAIL chaintest $1 did not finish (rc $rc)"; fi
	[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
	total_p=$((total_p + p)); total_f=$((total_f + f))
}
# env_up NAME testenv-options...: bring an environment up and source its env.sh
env_up() {
	local name=$1; shift
	local w=$WORK/$name
	envs+=("$w")
	if ! tools/testenv.sh up "$w" "$@" >"$WORK/$name.up.log" 2>&1; then
		echo "FAIL testenv up $name $*"; cat "$WORK/$name.up.log"; total_f=$((total_f + 1)); return 1
	fi
	# shellcheck disable=SC1091
	. "$w/env.sh"
}

if env_up approved --owners 3 --threshold 2 --approve 2 --rpc-node honest --rpc-node hide-revocation; then
	run approved --timeout-ms "$TIMEOUT_MS"
	BIN=$ROOT/tools/chaintest/txtest run "$DSTACK_TEST_RPC"
	if contracts/scripts/consortium.sh revoke --rpc "$DSTACK_TEST_RPC" --key "$DSTACK_TEST_OWNER1_KEY" \
		--app "$DSTACK_TEST_APP_ID" >"$WORK/revoke.log" 2>&1; then
		run revoked --timeout-ms "$TIMEOUT_MS"
	else
		echo "FAIL consortium.sh revoke"; cat "$WORK/revoke.log"; total_f=$((total_f + 1))
	fi
	kill "$(cat "$DSTACK_TEST_DIR/anvil.pid")" 2>/dev/null
	sleep 0.3
	run node-down --timeout-ms "$TIMEOUT_MS"
	run no-socket --socket "$DSTACK_TEST_DIR/absent.sock"
fi
if env_up under --owners 3 --threshold 2 --approve 1 --check-every-request; then
	run underapproved --timeout-ms "$TIMEOUT_MS"
fi
if env_up wrongcompose --owners 3 --threshold 2 --approve 2 --check-every-request \
	--cvm-compose-hash 0x1111111111111111111111111111111111111111111111111111111111111111; then
	run wrong-compose --timeout-ms "$TIMEOUT_MS"
fi

echo "chaintest total: $total_p passed, $total_f failed"
[ "$total_f" -eq 0 ]
