#!/usr/bin/env bash
# tools/dstack-verify/test.sh: receipts made by a real dstack_run() (anvil,
# consortium, simulator, PostgreSQL with both extensions) are accepted, and
# every tampered field, a wrong KMS root and a broken audit chain are rejected
# with the check that catches them.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$ROOT/tools/lib/pg.sh"
V=$ROOT/tools/dstack-verify/dstack-verify
WORK=$(mktemp -d /tmp/dstack_verify_test.XXXXXX)
chmod 755 "$WORK"
trap 'pg_down "$WORK/pg"; "$ROOT/tools/testenv.sh" down "$WORK/env" >/dev/null 2>&1; rm -rf "$WORK"' EXIT
"$ROOT/tools/testenv.sh" up "$WORK/env" --owners 2 --threshold 2 --approve 2 >/dev/null || exit 1
. "$WORK/env/env.sh"
PORT=$((20000 + RANDOM % 20000))
pg_up "$WORK/pg" "$PORT" || exit 1
mkdir -p "$WORK/out"; [ "$(id -u)" = 0 ] && chown postgres: "$WORK/out"
q() { pg_psql "$WORK/pg" "$PORT" -d postgres -At "$@"; }
q >/dev/null <<SQL || exit 1
CREATE EXTENSION dstack_seal; CREATE EXTENSION dstack_fdw;
CREATE TABLE t AS SELECT g AS patient_id, g % 7 AS k FROM generate_series(1, 500) g;
SET dstack_seal.kms_root_pubkey = '$DSTACK_TEST_KMS_ROOT';
SET dstack_seal.app_id = '$DSTACK_TEST_APP_ID';
SET dstack_seal.compose_hash = '$DSTACK_TEST_COMPOSE_HASH';
SET dstack_seal.owner_key_file = '$WORK/env/owner1.key';
SET dstack_seal.recipient_key = '$DSTACK_TEST_RECIPIENT1_PUB';
SET dstack_seal.recipient_key_chain = '$DSTACK_TEST_RECIPIENT1_CHAIN';
SELECT dstack_seal('t', NULL, '$WORK/out/t.dseal') IS NOT NULL;
CREATE SERVER s FOREIGN DATA WRAPPER dstack_fdw OPTIONS
  (rpc_url '$DSTACK_TEST_RPC', guest_agent '$DSTACK_TEST_SOCKET', kms_root_pubkey '$DSTACK_TEST_KMS_ROOT');
CREATE FOREIGN TABLE st (patient_id int4, k int4) SERVER s OPTIONS (path '$WORK/out/t.dseal', owner '$DSTACK_TEST_OWNER1_ADDR');
SQL
q -c 'SELECT dstack_run($$SELECT k, dp_count(patient_id, 0.2) FROM st GROUP BY k$$)' >"$WORK/r1.json"
q -c 'SELECT dstack_run($$SELECT dp_count(patient_id, 0.2) FROM st$$)' >"$WORK/r2.json"

passed=0 failed=0
check() { # check NAME EXPECT(pass|FAIL-check) ARGS...
	local name=$1 expect=$2; shift 2
	local out rc
	out=$("$V" "$@" 2>&1); rc=$?
	if [ "$expect" = pass ] && [ $rc -eq 0 ]; then passed=$((passed + 1)); echo "ok   $name"
	elif [ "$expect" != pass ] && [ $rc -eq 1 ] && echo "$out" | grep -q "^FAIL ${expect#FAIL-}:"; then
		passed=$((passed + 1)); echo "ok   $name ($(echo "$out" | grep '^FAIL' | head -1))"
	else failed=$((failed + 1)); echo "FAIL $name: expected $expect, got rc=$rc:"; echo "$out" | sed 's/^/     /'; fi
}
tamper() { # tamper OUT JS-EXPRESSION-ON-r
	node -e 'const fs=require("fs");const r=JSON.parse(fs.readFileSync(process.argv[1]));
		const flip=(h,i)=>h.slice(0,i)+((parseInt(h[i],16)^1).toString(16))+h.slice(i+1);
		'"$2"';fs.writeFileSync(process.argv[2],JSON.stringify(r));' "$WORK/r1.json" "$WORK/$1"
}
K=(--kms-root "$DSTACK_TEST_KMS_ROOT")
check "a real receipt verifies offline" pass "${K[@]}" "$WORK/r1.json"
check "and against the chain" pass "${K[@]}" --rpc "$DSTACK_TEST_RPC" "$WORK/r1.json"
check "two receipts form an audit chain" pass "${K[@]}" --chain "$WORK/r1.json" "$WORK/r2.json"
tamper result.json 'r.body.result.rows[0][1]=String(Number(r.body.result.rows[0][1])+1)'
check "edited result" FAIL-"body hash" "${K[@]}" "$WORK/result.json"
tamper eps.json 'r.body.epsilon.charged="0.000001"'
check "edited epsilon" FAIL-"body hash" "${K[@]}" "$WORK/eps.json"
tamper query.json 'r.body.query="SELECT 1"'
check "edited query" FAIL-"body hash" "${K[@]}" "$WORK/query.json"
tamper hash.json 'r.body_sha256=flip(r.body_sha256,0)'
check "edited body_sha256" FAIL-"body hash" "${K[@]}" "$WORK/hash.json"
tamper sig.json 'r.signature.value=flip(r.signature.value,10)'
check "flipped signature" FAIL-signature "${K[@]}" "$WORK/sig.json"
tamper pub.json 'r.signature.public_key="0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"'
check "another public key" FAIL-signature "${K[@]}" "$WORK/pub.json"
tamper chain0.json 'r.signature.signature_chain[0]=flip(r.signature.signature_chain[0],4)'
check "flipped chain link 0" FAIL-"key chain" "${K[@]}" "$WORK/chain0.json"
tamper chain1.json 'r.signature.signature_chain[1]=flip(r.signature.signature_chain[1],4)'
check "flipped chain link 1" FAIL-"key chain" "${K[@]}" "$WORK/chain1.json"
tamper rd.json 'r.quote.report_data=flip(r.quote.report_data,2)'
check "edited report_data" FAIL-quote "${K[@]}" "$WORK/rd.json"
tamper quote.json 'r.quote.quote=flip(r.quote.quote,2*568+1)'
check "edited quote body" FAIL-quote "${K[@]}" "$WORK/quote.json"
tamper qsig.json 'r.quote.quote=flip(r.quote.quote,2*100)'
check "quote no longer signed" FAIL-quote "${K[@]}" "$WORK/qsig.json"
check "wrong KMS root" FAIL-"key chain" --kms-root 0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798 "$WORK/r1.json"
check "receipts out of order" FAIL-"audit chain" "${K[@]}" --chain "$WORK/r2.json" "$WORK/r1.json"
check "a receipt missing from the chain" FAIL-"audit chain" "${K[@]}" --chain "$WORK/r1.json" "$WORK/r1.json"
check "not JSON" FAIL-receipt "${K[@]}" /etc/hostname
"$V" >/dev/null 2>&1; [ $? -eq 2 ] && { passed=$((passed + 1)); echo "ok   usage error exits 2"; } || { failed=$((failed + 1)); echo "FAIL usage exit code"; }
# after a revocation the receipt still verifies at the block it cites: it
# attests the state when it was issued (history is not rewritten)
"$ROOT/contracts/scripts/consortium.sh" revoke --rpc "$DSTACK_TEST_RPC" --key "$DSTACK_TEST_OWNER2_KEY" \
	--app "$DSTACK_TEST_APP_ID" --reason test >/dev/null 2>&1
check "after revocation, valid at its cited block" pass "${K[@]}" --rpc "$DSTACK_TEST_RPC" "$WORK/r1.json"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
