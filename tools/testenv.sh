#!/usr/bin/env bash
# tools/testenv.sh: bring up (or down) the chain + dstack environment that the
# SQL tests and the demo run against, all on this machine:
#   - anvil (local EVM node) on a free loopback port
#   - the consortium contract, deployed with N owners and threshold K,
#     approved by the first A owners
#   - the dstack guest-agent/KMS simulator on a Unix socket, booted with the
#     consortium's compose-hash (or another one, to test a wrong recipe)
#   - per owner: the owner key file (mode 0600, readable by the server user)
#     and the recipient key the CVM publishes for that owner
# Usage:
#   tools/testenv.sh up WORKDIR [--owners N] [--threshold K] [--approve A] [--cvm-compose-hash 0x..]
#   tools/testenv.sh down WORKDIR
# `up` writes WORKDIR/env.sh (exports DSTACK_TEST_*); source it to use the env.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$ROOT/tools/lib/pg.sh"
BIN=$ROOT/node_modules/.bin

# anvil's well-known development keys (mnemonic "test test ... junk"); account 0 deploys.
ANVIL_KEYS=(
	0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80
	0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d
	0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a
	0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6
	0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a
	0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba
)

wait_for() { # wait_for SECONDS CMD...: poll until CMD succeeds
	local t=$1; shift
	for _ in $(seq 1 $((t * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
	return 1
}

up() {
	local work=$1; shift
	local owners=4 threshold=3 approve=4 cvm_compose_hash=
	while [ $# -gt 0 ]; do
		case $1 in
			--owners) owners=$2; shift 2 ;;
			--threshold) threshold=$2; shift 2 ;;
			--approve) approve=$2; shift 2 ;;
			--cvm-compose-hash) cvm_compose_hash=$2; shift 2 ;;
			*) echo "testenv: unknown option $1" >&2; exit 1 ;;
		esac
	done
	mkdir -p "$work"
	chmod 755 "$work"
	local port rpc
	port=$(free_port)
	rpc=http://127.0.0.1:$port
	"$BIN/anvil" --host 127.0.0.1 --port "$port" --silent >"$work/anvil.log" 2>&1 &
	echo $! >"$work/anvil.pid"
	wait_for 30 "$BIN/cast" chain-id --rpc-url "$rpc" || { echo "testenv: anvil did not start" >&2; exit 1; }

	local compose_hash
	compose_hash=0x$(sha256sum "$ROOT/tools/demo/app-compose.json" | cut -d' ' -f1)
	local addrs=() i
	for i in $(seq 1 "$owners"); do addrs+=("$("$BIN/cast" wallet address --private-key "${ANVIL_KEYS[$i]}")"); done
	local app
	app=$("$ROOT/contracts/scripts/consortium.sh" deploy --rpc "$rpc" --key "${ANVIL_KEYS[0]}" \
		--owners "$(IFS=,; echo "${addrs[*]}")" --threshold "$threshold" --compose-hash "$compose_hash" \
		--epsilon-milli 1500 --min-group 10 --output-type dp-aggregate --privacy-unit patient_id 2>"$work/deploy.log")
	for i in $(seq 1 "$approve"); do
		"$ROOT/contracts/scripts/consortium.sh" approve --rpc "$rpc" --key "${ANVIL_KEYS[$i]}" --app "$app" >>"$work/deploy.log" 2>&1
	done

	# the simulated CVM boots with the pinned compose-hash unless told otherwise
	node "$ROOT/tools/dstack-sim/dstack-sim.mjs" --socket "$work/dstack.sock" --rpc "$rpc" --app-id "$app" \
		--compose-hash "${cvm_compose_hash:-$compose_hash}" --state-dir "$work/kms" --app-compose "$ROOT/tools/demo/app-compose.json" \
		--log "$work/dstack-sim.log" >"$work/dstack-sim.out" 2>&1 &
	echo $! >"$work/dstack-sim.pid"
	wait_for 30 test -S "$work/dstack.sock" || { cat "$work/dstack-sim.out" >&2; exit 1; }
	wait_for 10 test -s "$work/kms/kms-root.pub"

	{
		echo "export DSTACK_TEST_DIR=$work"
		echo "export DSTACK_TEST_RPC=$rpc"
		echo "export DSTACK_TEST_APP_ID=$app"
		echo "export DSTACK_TEST_COMPOSE_HASH=$compose_hash"
		echo "export DSTACK_TEST_KMS_ROOT=$(tr -d '[:space:]' <"$work/kms/kms-root.pub")"
		echo "export DSTACK_TEST_SOCKET=$work/dstack.sock"
		echo "export DSTACK_TEST_OWNERS=$owners"
		echo "export DSTACK_TEST_DEPLOYER_KEY=${ANVIL_KEYS[0]}"
	} >"$work/env.sh"
	for i in $(seq 1 "$owners"); do
		# owner key file, as a silo DBA would keep it
		printf '%s\n' "${ANVIL_KEYS[$i]#0x}" >"$work/owner$i.key"
		chmod 600 "$work/owner$i.key"
		[ "$(id -u)" = 0 ] && chown postgres: "$work/owner$i.key"
		{
			echo "export DSTACK_TEST_OWNER${i}_ADDR=${addrs[$((i - 1))]}"
			echo "export DSTACK_TEST_OWNER${i}_KEY=${ANVIL_KEYS[$i]}"
		} >>"$work/env.sh"
		# the recipient key the CVM publishes for this owner (public key + dstack
		# chain); the KMS releases it only while the consortium is approved
		if ! node "$ROOT/tools/dstack-sim/recipient-key.mjs" --socket "$work/dstack.sock" \
			--owner "${addrs[$((i - 1))]}" >"$work/recipient$i.json" 2>>"$work/deploy.log"; then
			rm -f "$work/recipient$i.json"
			continue
		fi
		# test-only: the recipient PRIVATE key, as only the CVM holds it (used by dseal-dump)
		local owner_hex
		owner_hex=$(echo "${addrs[$((i - 1))]#0x}" | tr 'A-F' 'a-f')
		curl -sf --unix-socket "$work/dstack.sock" -X POST http://dstack/GetKey \
			-H 'Content-Type: application/json' \
			-d "{\"path\":\"dstack-seal/v1/$owner_hex\",\"purpose\":\"dstack-seal/v1/$owner_hex\",\"algorithm\":\"secp256k1\"}" |
			node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).key.replace(/^0x/,"")))' \
			>"$work/recipient$i.key"
		chmod 644 "$work/recipient$i.key"
		{
			echo "export DSTACK_TEST_RECIPIENT${i}_PUB=$(node -e 'console.log(require(process.argv[1]).public_key)' "$work/recipient$i.json")"
			echo "export DSTACK_TEST_RECIPIENT${i}_CHAIN=$(node -e 'console.log(require(process.argv[1]).signature_chain.join(","))' "$work/recipient$i.json")"
		} >>"$work/env.sh"
	done
	echo "$work/env.sh"
}

down() {
	local work=$1 f
	for f in dstack-sim anvil; do
		[ -f "$work/$f.pid" ] && kill "$(cat "$work/$f.pid")" 2>/dev/null || true
		rm -f "$work/$f.pid"
	done
}

case "${1:-}" in
	up) shift; up "$@" ;;
	down) shift; down "$@" ;;
	*) echo "usage: tools/testenv.sh up|down WORKDIR [options]" >&2; exit 1 ;;
esac
