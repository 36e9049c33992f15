#!/usr/bin/env bash
# tools/dstack-verify/test-ledger.sh: the public audit of the privacy-budget ledger
# (dstack-verify --ledger) against tools/testenv.sh (anvil, the consortium contract, the
# dstack simulator). Two owners register datasets, the simulated CVM signs charges with
# its ledger key (GetKey at "dstack-ledger/v1") and pays for them from its own funded
# account, an owner supersedes a dataset; the audit must list every charge and agree
# with the contract. Then the contract's storage is altered behind its back (anvil):
# a spend that is not the sum of its charges, a spend over its budget, a wrong current
# flag; the audit must say so and exit 1. Run by test.sh; prints "N passed, M failed".
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/tools/dstack-verify
V=$HERE/dstack-verify
SH=$ROOT/contracts/scripts/consortium.sh
SIGN=$ROOT/contracts/scripts/sign-charge.mjs
CAST=$ROOT/node_modules/.bin/cast
[ -x "$V" ] || make -s -C "$HERE" || exit 1
WORK=$(mktemp -d /tmp/dstack_verify_ledger.XXXXXX)
trap '"$ROOT/tools/testenv.sh" down "$WORK/env" >/dev/null 2>&1; rm -rf "$WORK"' EXIT

passed=0 failed=0
pass() { passed=$((passed + 1)); echo "ok   $*"; }
flunk() { failed=$((failed + 1)); echo "FAIL $*"; }
audit() { "$V" --ledger --rpc "$DSTACK_TEST_RPC" --app "$DSTACK_TEST_APP_ID" "$@"; }
expect() { # expect NAME RC REGEX [ARGS...]: audit exits RC and a line matches REGEX
	local name=$1 want=$2 re=$3; shift 3
	local out rc
	out=$(audit "$@" 2>&1); rc=$?
	if [ $rc -eq "$want" ] && grep -q -- "$re" <<<"$out"; then pass "$name"
	else flunk "$name: expected rc=$want and /$re/, got rc=$rc:"; sed 's/^/     /' <<<"$out"; fi
}
checkrc() { # checkrc NAME RC ARGS...: dstack-verify ARGS exits RC
	local name=$1 want=$2; shift 2
	"$V" "$@" >/dev/null 2>&1
	local rc=$?
	[ $rc -eq "$want" ] && pass "$name (exit $rc)" || flunk "$name: exit $rc, expected $want"
}

"$ROOT/tools/testenv.sh" up "$WORK/env" --owners 3 --threshold 2 --approve 2 >/dev/null || { flunk "testenv up"; exit 1; }
. "$WORK/env/env.sh"

expect "an empty ledger is consistent" 0 '^ledger consistent: 0 charges, 0 dataset versions'

DS1=0x$(printf 'ehr' | sha256sum | cut -c1-32)
DS2=0x$(printf 'imaging' | sha256sum | cut -c1-32)
M1=0x$(printf 'ehr manifest v1' | sha256sum | cut -c1-64)
M1B=0x$(printf 'ehr manifest v2' | sha256sum | cut -c1-64)
M2=0x$(printf 'imaging manifest v1' | sha256sum | cut -c1-64)
reg() { "$SH" "$@" --rpc "$DSTACK_TEST_RPC" --app "$DSTACK_TEST_APP_ID" 2>>"$WORK/sh.log"; }
reg register --key "$DSTACK_TEST_OWNER1_KEY" --dataset-id "$DS1" --manifest-hash "$M1" --budget-micro 500000 &&
	reg register --key "$DSTACK_TEST_OWNER2_KEY" --dataset-id "$DS2" --manifest-hash "$M2" ||
	{ flunk "register"; cat "$WORK/sh.log"; exit 1; }

# The CVM signs with the simulator's ledger key and relays from its own funded account.
charge() { # charge FILE EPS MANIFESTS: sign through the guest agent, relay with the ledger key
	node "$SIGN" --socket "$DSTACK_TEST_SOCKET" --app "$DSTACK_TEST_APP_ID" --rpc "$DSTACK_TEST_RPC" \
		--epsilon-micro "$2" --delta-pico 1000000 --manifests "$3" --print-key >"$1" &&
		reg charge --key "$(node -p 'require(process.argv[1]).ledgerKey' "$1")" --signed "$1"
}
bal0=$("$CAST" balance --rpc-url "$DSTACK_TEST_RPC" "$DSTACK_TEST_LEDGER_ADDR")
[ "$(charge "$WORK/c0.json" 300000 "$M1,$M2")" = 0 ] && pass "charge 0 (ehr + imaging), sent from the CVM's ledger account" ||
	{ flunk "charge 0"; tail -3 "$WORK/sh.log"; }
[ "$(node -p 'require(process.argv[1]).ledgerAddress' "$WORK/c0.json")" = "$(tr 'A-F' 'a-f' <<<"$DSTACK_TEST_LEDGER_ADDR")" ] &&
	pass "the key GetKey(dstack-ledger/v1) gives is DSTACK_TEST_LEDGER_ADDR's" || flunk "ledger address differs"
bal1=$("$CAST" balance --rpc-url "$DSTACK_TEST_RPC" "$DSTACK_TEST_LEDGER_ADDR")
node -e 'process.exit(BigInt(process.argv[1]) < BigInt(process.argv[2]) ? 0 : 1)' "$bal1" "$bal0" &&
	pass "the ledger account paid the gas" || flunk "ledger account balance $bal0 -> $bal1"
[ "$(charge "$WORK/c1.json" 100000 "$M2")" = 1 ] && pass "charge 1 (imaging)" || flunk "charge 1"
reg supersede --key "$DSTACK_TEST_OWNER1_KEY" --dataset-id "$DS1" --manifest-hash "$M1B" --budget-micro 250000 ||
	flunk "supersede"
[ "$(charge "$WORK/c2.json" 250000 "$M1B")" = 2 ] && pass "charge 2 (ehr v2, to its budget)" || flunk "charge 2"
charge "$WORK/c3.json" 1 "$M1B" >/dev/null 2>&1 && flunk "a charge past ehr v2's budget was accepted" ||
	pass "a charge past ehr v2's budget is refused"

nonce0=$(node -p 'require(process.argv[1]).request.nonce' "$WORK/c0.json")
expect "the audit passes" 0 '^ledger consistent: 3 charges, 3 dataset versions, every version within its budget'
expect "  ... lists charge 0 with its epsilon, delta, nonce and datasets" 0 \
	"^charge 0 block [0-9]* epsilon 0.300000 delta_pico 1000000 query 0x[0-9a-f]\{64\} nonce $nonce0 datasets "
expect "  ... ehr v1: superseded, 0.3 of 0.5" 0 "^dataset $DS1 version $M1 owner .* superseded spent 0.300000 of 0.500000 (charges 0.300000)$"
expect "  ... imaging: current, 0.4 of the policy's 1.5" 0 "^dataset $DS2 version $M2 owner .* current spent 0.400000 of 1.500000 (charges 0.400000)$"
expect "  ... ehr v2: current, 0.25 of 0.25" 0 "^dataset $DS1 version $M1B owner .* current spent 0.250000 of 0.250000 (charges 0.250000)$"
expect "  ... with the KMS root the contract pins" 0 '(the key given with --kms-root)$' --kms-root "$DSTACK_TEST_KMS_ROOT"
expect "  ... not with another KMS root" 1 '^FAIL ledger: the contract pins KMS root address' \
	--kms-root 0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798
out=$(audit --quiet); rc=$?
[ $rc -eq 0 ] && [ -z "$out" ] && pass "--quiet prints nothing on success" || flunk "--quiet: rc=$rc, output: $out"

checkrc "usage: --ledger without --app" 2 --ledger --rpc "$DSTACK_TEST_RPC"
checkrc "usage: --ledger without --rpc" 2 --ledger --app "$DSTACK_TEST_APP_ID"
checkrc "usage: --ledger with a receipt file" 2 --ledger --rpc "$DSTACK_TEST_RPC" --app "$DSTACK_TEST_APP_ID" "$WORK/c0.json"
checkrc "usage: a bad --app" 2 --ledger --rpc "$DSTACK_TEST_RPC" --app 0x1234
checkrc "usage: --app without --ledger" 2 --kms-root "$DSTACK_TEST_KMS_ROOT" --app "$DSTACK_TEST_APP_ID" "$WORK/c0.json"
out=$("$V" --ledger --rpc http://127.0.0.1:1 --app "$DSTACK_TEST_APP_ID" 2>&1); rc=$?
[ $rc -eq 1 ] && grep -q '^FAIL chain: ' <<<"$out" && pass "an unreachable node (exit 1)" || flunk "unreachable node: rc=$rc $out"
out=$("$V" --ledger --rpc "$DSTACK_TEST_RPC" --app "$DSTACK_TEST_OWNER1_ADDR" 2>&1); rc=$?
[ $rc -eq 1 ] && grep -q '^FAIL chain: ' <<<"$out" && pass "an address without a contract (exit 1)" || flunk "no contract: rc=$rc $out"

# ---- a ledger that does not add up: storage altered behind the contract's back
# Slots from the compiler's storage layout: _versions[h] is a DatasetVersion at
# keccak256(h ‖ slot of _versions); budgetMicro and spentMicro are uint64 at their offsets.
layout=$(cd "$ROOT/contracts" && "$ROOT/node_modules/.bin/forge" inspect ConsortiumApp storageLayout --json 2>/dev/null)
poke() { # poke MANIFEST FIELD VALUE: set one uint64/bool member of _versions[MANIFEST]
	node --input-type=module -e '
		const [nm, layoutText, rpc, app, h, field, value] = process.argv.slice(1);
		const { keccak_256 } = await import(nm + "/@noble/hashes/sha3.js");
		const layout = JSON.parse(layoutText);
		const base = BigInt(layout.storage.find((s) => s.label === "_versions").slot);
		const t = Object.values(layout.types).find((t) => t.label === "struct ConsortiumApp.DatasetVersion");
		const m = t.members.find((m) => m.label === field);
		const bits = field === "current" ? 8n : 64n;
		const slot = BigInt("0x" + Buffer.from(keccak_256(Buffer.concat([Buffer.from(h.slice(2), "hex"),
			Buffer.from(base.toString(16).padStart(64, "0"), "hex")]))).toString("hex")) + BigInt(m.slot);
		const call = async (method, params) => (await (await fetch(rpc, { method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }) })).json());
		const key = "0x" + slot.toString(16).padStart(64, "0");
		let word = BigInt((await call("eth_getStorageAt", [app, key, "latest"])).result);
		const shift = 8n * BigInt(m.offset), mask = ((1n << bits) - 1n) << shift;
		word = (word & ~mask) | (BigInt(value) << shift);
		const r = await call("anvil_setStorageAt", [app, key, "0x" + word.toString(16).padStart(64, "0")]);
		if (r.error) throw new Error(JSON.stringify(r.error));
		await call("evm_mine", []);
	' "$ROOT/node_modules" "$layout" "$DSTACK_TEST_RPC" "$DSTACK_TEST_APP_ID" "$1" "$2" "$3"
}
snap=$("$CAST" rpc --rpc-url "$DSTACK_TEST_RPC" evm_snapshot | tr -d '"')
poke "$M2" spentMicro 350000 || flunk "poke spentMicro"
expect "a spend that is not the sum of its charges" 1 \
	"^FAIL ledger: version $M2: its charges add up to 0.400000, but it records 0.350000 spent$"
expect "  ... ends NOT consistent" 1 '^ledger NOT consistent: 1 problem at block'
poke "$M2" spentMicro 400000 && poke "$M2" budgetMicro 300000 || flunk "poke budgetMicro"
expect "a spend over its budget" 1 "^FAIL ledger: version $M2: spent 0.400000 is over its budget 0.300000$"
poke "$M2" budgetMicro 1500000 && poke "$M1" current 1 || flunk "poke current"
expect "a superseded version marked current" 1 "^FAIL ledger: version $M1 is marked current, but currentManifest($DS1) is $M1B$"
out=$(audit --quiet); rc=$?
[ $rc -eq 1 ] && [ "$(grep -c '^FAIL' <<<"$out")" = 1 ] && ! grep -q '^charge ' <<<"$out" &&
	pass "--quiet prints only the failures" || flunk "--quiet with a problem: rc=$rc, output: $out"
"$CAST" rpc --rpc-url "$DSTACK_TEST_RPC" evm_revert "$snap" >/dev/null
expect "restored: consistent again" 0 '^ledger consistent: 3 charges'

# ---- after a revocation the ledger stays readable and consistent; nothing more is charged
"$SH" revoke --rpc "$DSTACK_TEST_RPC" --key "$DSTACK_TEST_OWNER3_KEY" --app "$DSTACK_TEST_APP_ID" --reason test 2>>"$WORK/sh.log" ||
	flunk "revoke"
expect "after a revocation: consistent, and said to be revoked" 0 'REVOKED (nothing more can be charged)'
node "$SIGN" --kms-root-key "$(tr -d '[:space:]' <"$DSTACK_TEST_DIR/kms/kms-root.key")" --app "$DSTACK_TEST_APP_ID" \
	--rpc "$DSTACK_TEST_RPC" --epsilon-micro 1 --manifests "$M2" >"$WORK/c4.json"
reg charge --key "$DSTACK_TEST_DEPLOYER_KEY" --signed "$WORK/c4.json" >/dev/null 2>&1 &&
	flunk "a charge after the revocation was accepted" || pass "a charge after the revocation is refused"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
