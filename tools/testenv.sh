#!/usr/bin/env bash
# tools/testenv.sh: bring up (or down) the chain + dstack environment that the
# SQL tests and the demo run against, all on this machine:
#   - anvil (local EVM node) on a free loopback port
#   - the consortium contract, deployed with N owners and threshold K,
#     approved by the first A owners; it pins the compose-hash (sha256) of
#     the app-compose.json (tools/demo/app-compose.json unless --app-compose)
#     and records the policy that file's pg_dstack_policy states
#   - the dstack guest-agent/KMS simulator on a Unix socket (dstack.sock, and
#     the legacy tappd API on tappd.sock), booted from that
#     compose file (or from another one, --cvm-app-compose, to test a wrong
#     recipe; or reporting another compose-hash than its file has,
#     --cvm-compose-hash, to test an agent whose compose text is not the
#     measured one)
#   - with --filler-owners F: F more owners without keys listed before the N
#     (a consortium larger than any fixed-size copy of its lists)
#   - with --lying-rpc EPS_MILLI,MIN_GROUP,UNIT: a JSON-RPC node on loopback
#     (tools/lying-rpc.mjs) that forwards to anvil but answers policy() with
#     those values; its URL is DSTACK_TEST_LYING_RPC
#   - with --rpc-node KIND (repeatable): more JSON-RPC nodes of the same chain
#     (tools/lying-rpc.mjs), DSTACK_TEST_RPC_NODE1.. in order; KIND is honest,
#     hide-revocation, chain-id=N, chain-id-in-read=N (another chain only when
#     the contract is read) or hang
#   - dstack's KMS contract (DstackKms, tools/dstack-sim/kms-contract.mjs), set
#     up by its operator (anvil account 9: allowed OS image, KMS info), with the
#     consortium registered by its deployer (consortium.sh kms-register); the
#     simulated CVM's keys are released at boot only if DstackKms.isAppAllowed
#     (which asks the consortium contract) says so, as dstack's KMS decides.
#     --check-every-request starts a CVM that the KMS would refuse anyway and
#     asks it again on every key request (to test the FDW's own refusals);
#     --cvm-os-image 0x.. boots another OS image than the allowed one
#   - per owner: the owner key file (mode 0600, readable by the server user)
#     and the recipient key the CVM publishes for that owner
#   - the KMS root: made before the deployment (WORKDIR/kms/kms-root.key, which the
#     simulator then uses), since the contract pins its address; no dataset is registered
#   - the CVM's ledger account (GetKey at "dstack-ledger/v1"), funded with 10 ETH by the
#     deployer: DSTACK_TEST_LEDGER_ADDR
# Usage:
#   tools/testenv.sh up WORKDIR [--owners N] [--threshold K] [--approve A] [--app-compose FILE]
#                    [--cvm-app-compose FILE] [--cvm-compose-hash 0x..] [--lying-rpc EPS_MILLI,MIN_GROUP,UNIT]
#                    [--rpc-node KIND]... [--check-every-request] [--cvm-os-image 0x..] [--filler-owners F]
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
# anvil account 9: the operator of the test chain's dstack KMS (owner of DstackKms)
KMS_OWNER_KEY=0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6

wait_for() { # wait_for SECONDS CMD...: poll until CMD succeeds
	local t=$1; shift
	for _ in $(seq 1 $((t * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
	return 1
}

up() {
	local work=$1; shift
	local owners=4 threshold=3 approve=4 cvm_compose_hash= lying_rpc=
	local rpc_nodes=() check_every= cvm_os_image= filler=0
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
			--rpc-node) rpc_nodes+=("$2"); shift 2 ;;
			--check-every-request) check_every=--check-every-request; shift ;;
			--cvm-os-image) cvm_os_image=$2; shift 2 ;;
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
	# The contract pins the KMS root (charges must chain to it) and is deployed before the
	# simulator starts (the simulator needs the app id), so the simulator's root key is made
	# here, in the file and format the simulator reads from its state dir and then reuses.
	mkdir -p "$work/kms"
	if [ ! -s "$work/kms/kms-root.key" ]; then
		(umask 077; node --input-type=module -e '
			const { secp256k1 } = await import(process.argv[1] + "/@noble/curves/secp256k1.js");
			process.stdout.write(Buffer.from(secp256k1.utils.randomSecretKey()).toString("hex") + "\n");' \
			"$ROOT/node_modules" >"$work/kms/kms-root.key")
	fi
	local root_pub
	root_pub=$(node --input-type=module -e '
		import { readFileSync } from "node:fs";
		const { secp256k1 } = await import(process.argv[1] + "/@noble/curves/secp256k1.js");
		const sk = Buffer.from(readFileSync(process.argv[2], "utf8").trim(), "hex");
		process.stdout.write(Buffer.from(secp256k1.getPublicKey(sk, true)).toString("hex"));' \
		"$ROOT/node_modules" "$work/kms/kms-root.key")
	for i in $(seq 1 "$filler"); do fillers+=("$(printf '0x%040x' $((0xf000 + i)))"); done
	local app
	app=$("$ROOT/contracts/scripts/consortium.sh" deploy --rpc "$rpc" --key "${ANVIL_KEYS[0]}" \
		--owners "$(IFS=,; echo "${fillers[*]}${fillers[*]:+,}${addrs[*]}")" --threshold "$threshold" --compose-hash "$compose_hash" \
		--epsilon-milli "$eps_milli" --min-group "$min_group" --output-type "$shape" --privacy-unit "$unit" \
		--kms-root-pubkey "$root_pub" 2>"$work/deploy.log")
	for i in $(seq 1 "$approve"); do
		"$ROOT/contracts/scripts/consortium.sh" approve --rpc "$rpc" --key "${ANVIL_KEYS[$i]}" --app "$app" >>"$work/deploy.log" 2>&1
	done

	local kms
	kms=$(kms_up "$work" "$rpc" "$app")

	# the simulated CVM boots from the pinned compose unless told otherwise
	node "$ROOT/tools/dstack-sim/dstack-sim.mjs" --socket "$work/dstack.sock" --tappd-socket "$work/tappd.sock" \
		--rpc "$rpc" --app-id "$app" --kms-contract "$kms" --compose-hash "$cvm_hash" --state-dir "$work/kms" --app-compose "$cvm_app_compose" \
		${cvm_os_image:+--os-image-hash "$cvm_os_image"} $check_every \
		--log "$work/dstack-sim.log" >"$work/dstack-sim.out" 2>&1 &
	echo $! >"$work/dstack-sim.pid"
	wait_for 30 test -S "$work/dstack.sock" || { cat "$work/dstack-sim.out" >&2; exit 1; }
	wait_for 10 test -s "$work/kms/kms-root.pub"
	if [ "$(tr -d '[:space:]' <"$work/kms/kms-root.pub")" != "$root_pub" ]; then
		echo "testenv: the simulator's KMS root is not the one the contract pins" >&2; exit 1
	fi

	# The CVM pays for its charges from its own ledger account, the address of the guest
	# agent's GetKey key at "dstack-ledger/v1"; the consortium funds it (here the deployer).
	# The simulator releases the key only while the consortium is approved; otherwise the
	# address is derived from the KMS root as the simulator derives it.
	local sign=$ROOT/contracts/scripts/sign-charge.mjs ledger_addr
	ledger_addr=$(node "$sign" --socket "$work/dstack.sock" --app "$app" --address-only 2>>"$work/deploy.log") ||
		ledger_addr=$(node "$sign" --kms-root-key "$(tr -d '[:space:]' <"$work/kms/kms-root.key")" --app "$app" --address-only)
	ledger_addr=$("$BIN/cast" to-check-sum-address "$ledger_addr")
	"$BIN/cast" send --rpc-url "$rpc" --private-key "${ANVIL_KEYS[0]}" --value 10ether "$ledger_addr" >>"$work/deploy.log" 2>&1 ||
		{ echo "testenv: cannot fund the ledger account $ledger_addr" >&2; exit 1; }

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
	local n=0 node_urls=() kind
	for kind in "${rpc_nodes[@]}"; do
		n=$((n + 1))
		local lie=()
		case $kind in
			honest) ;;
			hide-revocation) lie=(--hide-revocation) ;;
			chain-id=*) lie=(--chain-id "${kind#chain-id=}") ;;
			chain-id-in-read=*) lie=(--chain-id-in-read "${kind#chain-id-in-read=}") ;;
			hang) lie=(--hang) ;;
			*) echo "testenv: unknown --rpc-node kind $kind" >&2; exit 1 ;;
		esac
		rm -f "$work/rpc-node$n.port"
		node "$ROOT/tools/lying-rpc.mjs" --upstream "$rpc" "${lie[@]}" --port-file "$work/rpc-node$n.port" \
			>/dev/null 2>"$work/rpc-node$n.log" &
		echo $! >"$work/rpc-node$n.pid"
		wait_for 10 test -s "$work/rpc-node$n.port" || { cat "$work/rpc-node$n.log" >&2; exit 1; }
		node_urls+=("http://127.0.0.1:$(tr -d '[:space:]' <"$work/rpc-node$n.port")")
	done

	{
		echo "export DSTACK_TEST_DIR=$work"
		echo "export DSTACK_TEST_RPC=$rpc"
		echo "export DSTACK_TEST_APP_ID=$app"
		echo "export DSTACK_TEST_COMPOSE_HASH=$compose_hash"
		echo "export DSTACK_TEST_KMS_ROOT=$(tr -d '[:space:]' <"$work/kms/kms-root.pub")"
		echo "export DSTACK_TEST_SOCKET=$work/dstack.sock"
		echo "export DSTACK_TEST_TAPPD_SOCKET=$work/tappd.sock"
		echo "export DSTACK_TEST_OWNERS=$owners"
		echo "export DSTACK_TEST_DEPLOYER_KEY=${ANVIL_KEYS[0]}"
		echo "export DSTACK_TEST_LEDGER_ADDR=$ledger_addr"
		if [ -n "$lying_url" ]; then echo "export DSTACK_TEST_LYING_RPC=$lying_url"; fi
		echo "export DSTACK_TEST_KMS_CONTRACT=$kms"
		echo "export DSTACK_TEST_KMS_ID=$(tr -d '[:space:]' <"$work/kms/kms-ca.pub")"
		echo "export DSTACK_TEST_CHAIN_ID=$("$BIN/cast" chain-id --rpc-url "$rpc")"
		for n in "${!node_urls[@]}"; do echo "export DSTACK_TEST_RPC_NODE$((n + 1))=${node_urls[$n]}"; done
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

# ---- dstack's KMS contract: kms_up WORK RPC APP prints the DstackKms address.
# The KMS operator deploys it and allows the OS image the simulated CVM boots
# (the captured image of tools/dstack-sim/fixtures) and records the KMS keys; the
# consortium's deployer registers the app, as on real dstack.
kms_up() {
	local work=$1 rpc=$2 app=$3 owner kms os_image
	node "$ROOT/tools/dstack-sim/dstack-sim.mjs" --keygen --state-dir "$work/kms" >/dev/null
	owner=$("$BIN/cast" wallet address --private-key "$KMS_OWNER_KEY")
	kms=$(node "$ROOT/tools/dstack-sim/kms-contract.mjs" deploy --rpc "$rpc" --from "$owner")
	os_image=0x$(node -e 'import(process.argv[1]).then((t) => console.log(t.loadFixture(process.argv[2]).osImageHash))' \
		"$ROOT/tools/dstack-sim/tdx.mjs" "$ROOT/tools/dstack-sim/fixtures/attestation.bin")
	node "$ROOT/tools/dstack-sim/kms-contract.mjs" setup --rpc "$rpc" --from "$owner" --kms "$kms" \
		--os-image "$os_image" --k256-pubkey "0x$(tr -d '[:space:]' <"$work/kms/kms-root.pub")" \
		--ca-pubkey "0x$(tr -d '[:space:]' <"$work/kms/kms-ca.pub")"
	"$ROOT/contracts/scripts/consortium.sh" kms-register --rpc "$rpc" --key "${ANVIL_KEYS[0]}" --kms "$kms" --app "$app" \
		>>"$work/deploy.log" 2>&1
	echo "$kms"
}

down() {
	local work=$1 f
	for f in "$work"/rpc-node*.pid; do
		[ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
		rm -f "$f"
	done
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
