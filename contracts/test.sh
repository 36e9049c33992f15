#!/usr/bin/env bash
# test.sh: the contract's tests, offline.
#   1. forge unit tests (test/*.t.sol);
#   2. an integration run against a throwaway anvil: deploy with scripts/consortium.sh,
#      approve k of n, check isAppAllowed through eth_call, pin the platform by a k-of-n
#      proposal, register and supersede datasets, relay charges signed off-chain with a
#      dstack chain (scripts/sign-charge.mjs, and cast), read the ledger, revoke.
# Prints "N passed, M failed" and exits nonzero if anything failed.
set -uo pipefail

here="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)"
root="$(cd "$here/.." && pwd)"
FORGE="$root/node_modules/.bin/forge"
CAST="$root/node_modules/.bin/cast"
ANVIL="$root/node_modules/.bin/anvil"
SH="$here/scripts/consortium.sh"
export FOUNDRY_OFFLINE=true

pass=0 fail=0
ok() { pass=$((pass + 1)); printf 'ok   %s\n' "$1"; }
bad() { fail=$((fail + 1)); printf 'FAIL %s\n' "$1"; }
check() { # check NAME COMMAND... : passes when the command succeeds
    local name="$1"; shift
    if "$@"; then ok "$name"; else bad "$name"; fi
}

# ---- 1. forge unit tests --------------------------------------------------------
if (cd "$here" && "$FORGE" test --offline); then ok "forge test"; else bad "forge test"; fi

# ---- 2. integration against anvil --------------------------------------------------
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
rpc="http://127.0.0.1:$port"
anvil_log="$(mktemp)"
tmpd="$(mktemp -d)"
"$ANVIL" --host 127.0.0.1 --port "$port" >"$anvil_log" 2>&1 &
anvil_pid=$!
cleanup() { kill "$anvil_pid" 2>/dev/null; wait "$anvil_pid" 2>/dev/null; rm -rf "$anvil_log" "$tmpd"; }
trap cleanup EXIT

for _ in $(seq 1 100); do
    "$CAST" chain-id --rpc-url "$rpc" >/dev/null 2>&1 && break
    sleep 0.1
done

# anvil's well-known dev accounts: 0 deploys, 1..3 own.
K0=0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80
K1=0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d
K2=0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a
K3=0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6
A1="$("$CAST" wallet address "$K1")"; A2="$("$CAST" wallet address "$K2")"; A3="$("$CAST" wallet address "$K3")"
HASH="0x$(printf '{"name":"pg_dstack-test"}' | sha256sum | cut -c1-64)"
# the KMS root of this test (a dstack KMS root is a secp256k1 key); its compressed public key
ROOT_SK="$(printf 'pg_dstack contracts/test.sh kms root' | sha256sum | cut -c1-64)"
ROOT_PUB="$(node --input-type=module -e '
    const { secp256k1 } = await import(process.argv[1] + "/@noble/curves/secp256k1.js");
    process.stdout.write(Buffer.from(secp256k1.getPublicKey(Buffer.from(process.argv[2], "hex"), true)).toString("hex"));
' "$root/node_modules" "$ROOT_SK")"
ROOT_ADDR="$("$CAST" wallet address --private-key "0x$ROOT_SK")"
SIGN="$here/scripts/sign-charge.mjs"
WRONG="0x$(printf 'another recipe' | sha256sum | cut -c1-64)"
BOOT='isAppAllowed((address,bytes32,address,bytes32,bytes32,bytes32,bytes32,string,string[]))(bool,string)'

allowed() { # allowed COMPOSE_HASH [TCB_STATUS OS_IMAGE DEVICE] -> prints "true"/"false" and the reason
    "$CAST" call --rpc-url "$rpc" "$app" "$BOOT" \
        "($app,$1,0x0000000000000000000000000000000000001234,${4:-0x$(printf '%064d' 0)},0x$(printf '%064d' 0),0x$(printf '%064d' 0),${3:-0x$(printf '%064d' 0)},${2:-UpToDate},[])"
}
first_is() { # first_is WANT OUTPUT
    [[ "$(printf '%s\n' "$2" | head -n 1)" == "$1" ]] || { printf '  got: %s\n' "$2"; return 1; }
}
json_field() { # json_field JSON FIELD
    node -e 'process.stdout.write(String(JSON.parse(process.argv[1])[process.argv[2]]))' "$1" "$2"
}

app="$("$SH" deploy --rpc "$rpc" --key "$K0" --owners "$A1,$A2,$A3" --threshold 2 \
    --compose-hash "$HASH" --epsilon-milli 1500 --min-group 10 \
    --output-type dp-aggregate --privacy-unit patient_id --kms-root-pubkey "$ROOT_PUB")"
if [[ "$app" =~ ^0x[0-9a-fA-F]{40}$ ]]; then
    ok "deploy prints only the address ($app)"

    check "not allowed before approvals" first_is false "$(allowed "$HASH")"
    check "approve by owner 1" "$SH" approve --rpc "$rpc" --key "$K1" --app "$app"
    check "not allowed at 1 of 2" first_is false "$(allowed "$HASH")"
    check "double approval fails" bash -c '! "$0" approve --rpc "$1" --key "$2" --app "$3" 2>/dev/null' "$SH" "$rpc" "$K1" "$app"
    check "non-owner approval fails" bash -c '! "$0" approve --rpc "$1" --key "$2" --app "$3" 2>/dev/null' "$SH" "$rpc" "$K0" "$app"
    check "approve by owner 2" "$SH" approve --rpc "$rpc" --key "$K2" --app "$app"
    check "allowed at 2 of 2 with the pinned compose hash" first_is true "$(allowed "$HASH")"
    check "not allowed with a wrong compose hash" first_is false "$(allowed "$WRONG")"
    check "hasApproved(owner 2)" first_is true "$("$CAST" call --rpc-url "$rpc" "$app" 'hasApproved(address)(bool)' "$A2")"
    check "hasApproved(owner 3) is false" first_is false "$("$CAST" call --rpc-url "$rpc" "$app" 'hasApproved(address)(bool)' "$A3")"
    check "supportsInterface(0x1e079198)" first_is true "$("$CAST" call --rpc-url "$rpc" "$app" 'supportsInterface(bytes4)(bool)' 0x1e079198)"

    st="$("$SH" state --rpc "$rpc" --app "$app")"
    check "state: kmsRootAddress is the address of --kms-root-pubkey" \
        test "$(json_field "$st" kmsRootAddress)" = "$ROOT_ADDR"
    check "state: approvals 2" test "$(json_field "$st" approvals)" = 2
    check "state: threshold 2" test "$(json_field "$st" threshold)" = 2
    check "state: composeHash" test "$(json_field "$st" composeHash)" = "$HASH"
    check "state: not revoked" test "$(json_field "$st" revoked)" = false

    # ---- platform pins, k of n
    IMG="0x$(printf 'os image' | sha256sum | cut -c1-64)"
    DEV="0x$(printf 'device' | sha256sum | cut -c1-64)"
    OTHER="0x$(printf 'other' | sha256sum | cut -c1-64)"
    pid="$("$SH" platform-propose --rpc "$rpc" --key "$K1" --app "$app" --require-tcb true --os-images "$IMG" --devices "$DEV")"
    check "platform-propose prints the proposal id" test "$pid" = 0
    check "not in force at 1 of 2: any platform allowed" first_is true "$(allowed "$HASH" OutOfDate "$OTHER" "$OTHER")"
    check "platform-approve by owner 3" "$SH" platform-approve --rpc "$rpc" --key "$K3" --app "$app" --id 0
    check "pinned: out-of-date TCB refused" grep -q "TCB status is not up to date" <<<"$(allowed "$HASH" OutOfDate "$IMG" "$DEV")"
    check "pinned: another OS image refused" grep -q "OS image not allowed" <<<"$(allowed "$HASH" UpToDate "$OTHER" "$DEV")"
    check "pinned: another device refused" grep -q "device not allowed" <<<"$(allowed "$HASH" UpToDate "$IMG" "$OTHER")"
    check "pinned: the pinned platform allowed" first_is true "$(allowed "$HASH" UpToDate "$IMG" "$DEV")"
    check "platform-approve of an applied proposal fails" bash -c '! "$0" platform-approve --rpc "$1" --key "$2" --app "$3" --id 0 2>/dev/null' "$SH" "$rpc" "$K2" "$app"
    st="$("$SH" state --rpc "$rpc" --app "$app")"
    check "state: platform generation 1, TCB required" \
        test "$(node -p 'const p=JSON.parse(process.argv[1]).platform; p.generation+","+p.requireTcbUpToDate+","+p.osImageHashes' "$st")" = "1,true,$IMG"
    "$SH" platform-propose --rpc "$rpc" --key "$K2" --app "$app" --require-tcb false >/dev/null 2>&1
    "$SH" platform-approve --rpc "$rpc" --key "$K1" --app "$app" --id 1 2>/dev/null
    check "pins lifted by a second proposal" first_is true "$(allowed "$HASH" OutOfDate "$OTHER" "$OTHER")"

    # ---- the ledger: registry, charges signed off-chain, the audit view
    DS1=0x$(printf 'dataset 1' | sha256sum | cut -c1-32)
    DS2=0x$(printf 'dataset 2' | sha256sum | cut -c1-32)
    M1=0x$(printf 'manifest 1 v1' | sha256sum | cut -c1-64)
    M1B=0x$(printf 'manifest 1 v2' | sha256sum | cut -c1-64)
    M2=0x$(printf 'manifest 2 v1' | sha256sum | cut -c1-64)
    check "register dataset 1 by owner 1 (budget 0.5)" "$SH" register --rpc "$rpc" --key "$K1" --app "$app" --dataset-id "$DS1" --manifest-hash "$M1" --budget-micro 500000
    check "register dataset 2 by owner 2 (the policy's 1.5)" "$SH" register --rpc "$rpc" --key "$K2" --app "$app" --dataset-id "$DS2" --manifest-hash "$M2"
    check "register by a non-owner fails" bash -c '! "$0" register --rpc "$1" --key "$2" --app "$3" --dataset-id "$4" --manifest-hash "$5" 2>/dev/null' "$SH" "$rpc" "$K0" "$app" "0x$(printf %032d 9)" "0x$(printf %064d 9)"
    check "register of a registered dataset fails" bash -c '! "$0" register --rpc "$1" --key "$2" --app "$3" --dataset-id "$4" --manifest-hash "$5" 2>/dev/null' "$SH" "$rpc" "$K3" "$app" "$DS1" "0x$(printf %064d 9)"
    check "datasetVersion(M2): budget 1500000" \
        grep -q '^1500000' <<<"$("$CAST" call --rpc-url "$rpc" "$app" 'datasetVersion(bytes32)(address,bytes16,uint64,uint64,bool)' "$M2" | sed -n 3p)"

    sign() { node "$SIGN" --kms-root-key "$ROOT_SK" --app "$app" --rpc "$rpc" "$@"; }
    sign --epsilon-micro 300000 --delta-pico 1000000 --manifests "$M1,$M2" --print-key >"$tmpd/c1.json"
    check "sign-charge's digest equals the contract's chargeDigest" test "$(node -p 'require(process.argv[1]).digest' "$tmpd/c1.json")" = \
        "$("$CAST" call --rpc-url "$rpc" "$app" 'chargeDigest((bytes32,uint64,uint64,bytes32[],bytes32))(bytes32)' \
            "$(node -p 'const r=require(process.argv[1]).request; `(${r.queryHash},${r.epsilonMicro},${r.deltaPico},[${r.manifestHashes}],${r.nonce})`' "$tmpd/c1.json")")"
    idx="$("$SH" charge --rpc "$rpc" --key "$K0" --app "$app" --signed "$tmpd/c1.json")"
    check "charge relayed by a non-owner, index 0" test "$idx" = 0
    check "the same charge again (replayed nonce) fails" bash -c '! "$0" charge --rpc "$1" --key "$2" --app "$3" --signed "$4" 2>/dev/null' "$SH" "$rpc" "$K0" "$app" "$tmpd/c1.json"

    # the charge signature made by cast instead (raw digest, no prefix): the same key, another signer
    sign --epsilon-micro 100000 --manifests "$M2" --print-key >"$tmpd/c2.json"
    csig="$("$CAST" wallet sign --no-hash --private-key "$(node -p 'require(process.argv[1]).ledgerKey' "$tmpd/c2.json")" \
        "$(node -p 'require(process.argv[1]).digest' "$tmpd/c2.json")")"
    node -e 'const fs=require("fs"),j=JSON.parse(fs.readFileSync(process.argv[1]));j.sig.signature=process.argv[2];fs.writeFileSync(process.argv[1],JSON.stringify(j))' "$tmpd/c2.json" "$csig"
    check "a charge signed with cast wallet sign --no-hash (v 27/28), index 1" test "$("$SH" charge --rpc "$rpc" --key "$K3" --app "$app" --signed "$tmpd/c2.json" 2>/dev/null)" = 1

    sign --epsilon-micro 200001 --manifests "$M1" >"$tmpd/c3.json"
    check "a charge past dataset 1's budget fails" bash -c '! "$0" charge --rpc "$1" --key "$2" --app "$3" --signed "$4" 2>/dev/null' "$SH" "$rpc" "$K0" "$app" "$tmpd/c3.json"
    node "$SIGN" --kms-root-key "$(printf '%064x' 7)" --app "$app" --rpc "$rpc" --epsilon-micro 1 --manifests "$M2" >"$tmpd/c4.json"
    check "a charge chained to another KMS root fails" bash -c '! "$0" charge --rpc "$1" --key "$2" --app "$3" --signed "$4" 2>/dev/null' "$SH" "$rpc" "$K0" "$app" "$tmpd/c4.json"

    check "supersede dataset 1 by owner 2 (not its owner) fails" bash -c '! "$0" supersede --rpc "$1" --key "$2" --app "$3" --dataset-id "$4" --manifest-hash "$5" 2>/dev/null' "$SH" "$rpc" "$K2" "$app" "$DS1" "$M1B"
    check "supersede dataset 1 by its owner" "$SH" supersede --rpc "$rpc" --key "$K1" --app "$app" --dataset-id "$DS1" --manifest-hash "$M1B" --budget-micro 250000
    check "currentManifest(dataset 1) is the new version" test "$("$CAST" call --rpc-url "$rpc" "$app" 'currentManifest(bytes16)(bytes32)' "$DS1")" = "$M1B"
    sign --epsilon-micro 1000 --manifests "$M1" >"$tmpd/c5.json"
    check "a charge of the superseded version fails" bash -c '! "$0" charge --rpc "$1" --key "$2" --app "$3" --signed "$4" 2>/dev/null' "$SH" "$rpc" "$K0" "$app" "$tmpd/c5.json"
    sign --epsilon-micro 250000 --manifests "$M1B,$M2" >"$tmpd/c6.json"
    check "a charge of the new version and dataset 2, index 2" test "$("$SH" charge --rpc "$rpc" --key "$K0" --app "$app" --signed "$tmpd/c6.json" 2>/dev/null)" = 2

    led="$("$SH" ledger --rpc "$rpc" --app "$app")"
    check "ledger: 3 charges, 3 versions, consistent" \
        test "$(node -p 'const l=JSON.parse(process.argv[1]); [l.charges.length,l.datasets.length,l.consistent].join()' "$led")" = "3,3,true"
    check "ledger: per version spent/charged/budget/current" \
        test "$(node -p 'JSON.parse(process.argv[1]).datasets.map(d=>[d.spentMicro,d.chargedMicro,d.budgetMicro,d.current].join("/")).join(" ")' "$led")" = \
        "300000/300000/500000/false 650000/650000/1500000/true 250000/250000/250000/true"

    check "revoke by owner 3" "$SH" revoke --rpc "$rpc" --key "$K3" --app "$app" --reason "test revocation"
    sign --epsilon-micro 1 --manifests "$M2" >"$tmpd/c7.json"
    check "a charge after the revocation fails" bash -c '! "$0" charge --rpc "$1" --key "$2" --app "$3" --signed "$4" 2>/dev/null' "$SH" "$rpc" "$K0" "$app" "$tmpd/c7.json"
    out="$(allowed "$HASH")"
    check "not allowed after revoke" first_is false "$out"
    check "revocation reason names the owner" grep -q "revoked by owner $A3" <<<"$out"
    check "approve after revoke fails" bash -c '! "$0" approve --rpc "$1" --key "$2" --app "$3" 2>/dev/null' "$SH" "$rpc" "$K3" "$app"
    st="$("$SH" state --rpc "$rpc" --app "$app")"
    check "state: revoked" test "$(json_field "$st" revoked)" = true
else
    bad "deploy prints only the address (got '$app')"
fi

# Deploy must fail loudly on bad input (threshold above n, no or a bad KMS root).
check "deploy with threshold > n fails" bash -c '! "$0" deploy --rpc "$1" --key "$2" --owners "$3" --threshold 2 --compose-hash "$4" --epsilon-milli 1 --min-group 1 --output-type x --privacy-unit y --kms-root-address "$3" >/dev/null 2>&1' "$SH" "$rpc" "$K0" "$A1" "$HASH"
check "deploy without a KMS root fails" bash -c '! "$0" deploy --rpc "$1" --key "$2" --owners "$3" --threshold 1 --compose-hash "$4" --epsilon-milli 1 --min-group 1 --output-type x --privacy-unit y >/dev/null 2>&1' "$SH" "$rpc" "$K0" "$A1" "$HASH"
check "deploy with a KMS root pubkey off the curve fails" bash -c '! "$0" deploy --rpc "$1" --key "$2" --owners "$3" --threshold 1 --compose-hash "$4" --epsilon-milli 1 --min-group 1 --output-type x --privacy-unit y --kms-root-pubkey 02$(printf %064d 5) >/dev/null 2>&1' "$SH" "$rpc" "$K0" "$A1" "$HASH"
a2="$("$SH" deploy --rpc "$rpc" --key "$K0" --owners "$A1" --threshold 1 --compose-hash "$HASH" --epsilon-milli 1 --min-group 1 --output-type x --privacy-unit y --kms-root-address "$ROOT_ADDR" 2>/dev/null)"
check "deploy with --kms-root-address" test "$("$CAST" call --rpc-url "$rpc" "$a2" 'kmsRootAddress()(address)' 2>/dev/null)" = "$ROOT_ADDR"

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
