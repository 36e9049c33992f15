#!/usr/bin/env bash
# test.sh: the contract's tests, offline.
#   1. forge unit tests (test/*.t.sol);
#   2. an integration run against a throwaway anvil: deploy with scripts/consortium.sh,
#      approve k of n, check isAppAllowed through eth_call, revoke, check again.
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
"$ANVIL" --host 127.0.0.1 --port "$port" >"$anvil_log" 2>&1 &
anvil_pid=$!
cleanup() { kill "$anvil_pid" 2>/dev/null; wait "$anvil_pid" 2>/dev/null; rm -f "$anvil_log"; }
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
WRONG="0x$(printf 'another recipe' | sha256sum | cut -c1-64)"
BOOT='isAppAllowed((address,bytes32,address,bytes32,bytes32,bytes32,bytes32,string,string[]))(bool,string)'

allowed() { # allowed COMPOSE_HASH -> prints "true"/"false" and the reason
    "$CAST" call --rpc-url "$rpc" "$app" "$BOOT" \
        "($app,$1,0x0000000000000000000000000000000000001234,0x$(printf '%064d' 0),0x$(printf '%064d' 0),0x$(printf '%064d' 0),0x$(printf '%064d' 0),UpToDate,[])"
}
first_is() { # first_is WANT OUTPUT
    [[ "$(printf '%s\n' "$2" | head -n 1)" == "$1" ]] || { printf '  got: %s\n' "$2"; return 1; }
}
json_field() { # json_field JSON FIELD
    node -e 'process.stdout.write(String(JSON.parse(process.argv[1])[process.argv[2]]))' "$1" "$2"
}

app="$("$SH" deploy --rpc "$rpc" --key "$K0" --owners "$A1,$A2,$A3" --threshold 2 \
    --compose-hash "$HASH" --epsilon-milli 1500 --min-group 10 \
    --output-type dp-aggregate --privacy-unit patient_id)"
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
    check "state: approvals 2" test "$(json_field "$st" approvals)" = 2
    check "state: threshold 2" test "$(json_field "$st" threshold)" = 2
    check "state: composeHash" test "$(json_field "$st" composeHash)" = "$HASH"
    check "state: not revoked" test "$(json_field "$st" revoked)" = false

    check "revoke by owner 3" "$SH" revoke --rpc "$rpc" --key "$K3" --app "$app" --reason "test revocation"
    out="$(allowed "$HASH")"
    check "not allowed after revoke" first_is false "$out"
    check "revocation reason names the owner" grep -q "revoked by owner $A3" <<<"$out"
    check "approve after revoke fails" bash -c '! "$0" approve --rpc "$1" --key "$2" --app "$3" 2>/dev/null' "$SH" "$rpc" "$K3" "$app"
    st="$("$SH" state --rpc "$rpc" --app "$app")"
    check "state: revoked" test "$(json_field "$st" revoked)" = true
else
    bad "deploy prints only the address (got '$app')"
fi

# Deploy must fail loudly on bad input (threshold above n).
check "deploy with threshold > n fails" bash -c '! "$0" deploy --rpc "$1" --key "$2" --owners "$3" --threshold 2 --compose-hash "$4" --epsilon-milli 1 --min-group 1 --output-type x --privacy-unit y >/dev/null 2>&1' "$SH" "$rpc" "$K0" "$A1" "$HASH"

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
