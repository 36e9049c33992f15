#!/usr/bin/env bash
# tools/testenv.sh: bring up (or down) the chain + dstack environment that the
# SQL tests and the demo run against, all on this machine:
#   - anvil (local EVM node) on a free loopback port
#   - the consortium contract, deployed with N owners and threshold K,
#     approved by the first A owners; it pins the compose-hash (sha256) of
#     the app-compose.json (tools/demo/app-compose.json unless --app-compose)
#     and records the policy that file's pg_dstack_policy states
#   - the dstack guest-agent/KMS simulator on a Unix socket, booted from that
#     compose file (or from another one, --cvm-app-compose, to test a wrong
#     recipe; or reporting another compose-hash than its file has,
#     --cvm-compose-hash, to test an agent whose compose text is not the
#     measured one)
#   - with --filler-owners F: F more owners without keys listed before the N
#     (a consortium larger than any fixed-size copy of its lists)
#   - with --lying-rpc EPS_MILLI,MIN_GROUP,UNIT: a JSON-RPC node on loopback
#     (tools/lying-rpc.mjs) that forwards to anvil but answers policy() with
#     those values; its URL is DSTACK_TEST_LYING_RPC
#   - per owner: the owner key file (mode 0600, readable by the server user)
#     and the recipient key the CVM publishes for that owner
# Usage:
#   tools/testenv.sh up WORKDIR [--owners N] [--threshold K] [--approve A] [--app-compose FILE]
#                    [--cvm-app-compose FILE] [--cvm-compose-hash 0x..] [--lying-rpc EPS_MILLI,MIN_GROUP,UNIT]
#                    [--filler-owners F]
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
	local owners=4 threshold=3 approve=4 cvm_compose_hash= lying_rpc= filler=0
	local app_compose=$ROOT/tools/demo/app-compose.json cvm_app_compose=
	while [ $# -gt 0 ]; do
		case $1 in
			--owners) owners=$2; shift 2 ;;
			--threshold) threshold=$2; shift 2 ;;
			--approve) approve=$2; shift 2 ;;
			--app-compose) app_compose=$2; shift 2 ;;
			--cvm-app-compose) cvm_app_compose=$2; shift 2 ;;
			--cvm-compose-hash) cvm_compose_hash=$2; shift 2 ;;
			--lying-rpc) lying_rpc=$2; shift 2 ;;
			--filler-owners) filler=$2; shift 2 ;;
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

	local compose_hash cvm_hash
	compose_hash=0x$(sha256sum "$app_compose" | cut -d' ' -f1)
	cvm_app_compose=${cvm_app_compose:-$app_compose}
	cvm_hash=${cvm_compose_hash:-0x$(sha256sum "$cvm_app_compose" | cut -d' ' -f1)}
	# the contract records the policy the compose states (defaults where it states none that a contract can hold)
	local eps_milli min_group unit shape
	read -r eps_milli min_group unit shape < <(node -e '
		let p = {};
		try { p = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).pg_dstack_policy || {}; } catch {}
		const m = /^([0-9]{1,7})(?:\.([0-9]{1,3}))?$/.exec(typeof p.epsilon_total === "string" ? p.epsilon_total : "");
		const eps = m ? Number(m[1]) * 1000 + Number((m[2] || "").padEnd(3, "0")) : 1500;
		const mg = Number.isInteger(p.min_group_size) && p.min_group_size >= 0 && p.min_group_size < 2 ** 32 ? p.min_group_size : 10;
		const u = typeof p.privacy_unit === "string" && /^[A-Za-z_][A-Za-z0-9_$]*$/.test(p.privacy_unit) ? p.privacy_unit : "patient_id";
		const s = typeof p.allowed_query_shape === "string" && /^[a-z-]+$/.test(p.allowed_query_shape) ? p.allowed_query_shape : "dp-aggregate";
		console.log(eps, mg, u, s);' "$app_compose")
	local addrs=() fillers=() i
	for i in $(seq 1 "$owners"); do addrs+=("$("$BIN/cast" wallet address --private-key "${ANVIL_KEYS[$i]}")"); done
	for i in $(seq 1 "$filler"); do fillers+=("$(printf '0x%040x' $((0xf000 + i)))"); done
	local app
	app=$("$ROOT/contracts/scripts/consortium.sh" deploy --rpc "$rpc" --key "${ANVIL_KEYS[0]}" \
		--owners "$(IFS=,; echo "${fillers[*]}${fillers[*]:+,}${addrs[*]}")" --threshold "$threshold" --compose-hash "$compose_hash" \
		--epsilon-milli "$eps_milli" --min-group "$min_group" --output-type "$shape" --privacy-unit "$unit" \
		2>"$work/deploy.log")
	for i in $(seq 1 "$approve"); do
		"$ROOT/contracts/scripts/consortium.sh" approve --rpc "$rpc" --key "${ANVIL_KEYS[$i]}" --app "$app" >>"$work/deploy.log" 2>&1
	done

	# the simulated CVM boots from the pinned compose unless told otherwise
	node "$ROOT/tools/dstack-sim/dstack-sim.mjs" --socket "$work/dstack.sock" --rpc "$rpc" --app-id "$app" \
		--compose-hash "$cvm_hash" --state-dir "$work/kms" --app-compose "$cvm_app_compose" \
		--log "$work/dstack-sim.log" >"$work/dstack-sim.out" 2>&1 &
	echo $! >"$work/dstack-sim.pid"
	wait_for 30 test -S "$work/dstack.sock" || { cat "$work/dstack-sim.out" >&2; exit 1; }
	wait_for 10 test -s "$work/kms/kms-root.pub"

	local lying_url=
	if [ -n "$lying_rpc" ]; then
		local l_eps l_group l_unit
		IFS=, read -r l_eps l_group l_unit <<<"$lying_rpc"
		rm -f "$work/lying-rpc.port"
		node "$ROOT/tools/lying-rpc.mjs" --upstream "$rpc" --epsilon-milli "$l_eps" --min-group "$l_group" \
			--privacy-unit "$l_unit" --port-file "$work/lying-rpc.port" >"$work/lying-rpc.out" 2>"$work/lying-rpc.log" &
		echo $! >"$work/lying-rpc.pid"
		wait_for 10 test -s "$work/lying-rpc.port" || { cat "$work/lying-rpc.log" >&2; exit 1; }
		lying_url=http://127.0.0.1:$(tr -d '[:space:]' <"$work/lying-rpc.port")
	fi

	{
		echo "export DSTACK_TEST_DIR=$work"
		echo "export DSTACK_TEST_RPC=$rpc"
		echo "export DSTACK_TEST_APP_ID=$app"
		echo "export DSTACK_TEST_COMPOSE_HASH=$compose_hash"
		echo "export DSTACK_TEST_KMS_ROOT=$(tr -d '[:space:]' <"$work/kms/kms-root.pub")"
		echo "export DSTACK_TEST_SOCKET=$work/dstack.sock"
		echo "export DSTACK_TEST_OWNERS=$owners"
		echo "export DSTACK_TEST_DEPLOYER_KEY=${ANVIL_KEYS[0]}"
		if [ -n "$lying_url" ]; then echo "export DSTACK_TEST_LYING_RPC=$lying_url"; fi
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
	for f in lying-rpc dstack-sim anvil; do
		[ -f "$work/$f.pid" ] && kill "$(cat "$work/$f.pid")" 2>/dev/null || true
		rm -f "$work/$f.pid"
	done
}

case "${1:-}" in
	up) shift; up "$@" ;;
	down) shift; down "$@" ;;
	*) echo "usage: tools/testenv.sh up|down WORKDIR [options]" >&2; exit 1 ;;
esac
