#!/usr/bin/env bash
# tools/dstack-verify/test.sh: valid receipts are accepted, and every tampered
# field, a wrong KMS root and a broken audit chain are rejected with the check
# that catches them.  Three sources of receipts:
#   1. make-receipt.mjs --local: an independent Node generator with its own
#      KMS root (no chain, no guest agent): offline checks and tampering;
#   2. make-receipt.mjs --socket --rpc against tools/testenv.sh (anvil, the
#      consortium contract, the dstack simulator): the --rpc checks;
#   3. real receipts from dstack_run() in PostgreSQL with both extensions.
# Then a revocation: receipts still verify at the block they cite.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$ROOT/tools/lib/pg.sh"
HERE=$ROOT/tools/dstack-verify
V=$HERE/dstack-verify
MR="node $HERE/make-receipt.mjs"
[ -x "$V" ] || make -s -C "$HERE" || exit 1
WORK=$(mktemp -d /tmp/dstack_verify_test.XXXXXX)
chmod 755 "$WORK"
trap 'pg_down "$WORK/pg"; "$ROOT/tools/testenv.sh" down "$WORK/env" >/dev/null 2>&1; rm -rf "$WORK"' EXIT

passed=0 failed=0
pass() { passed=$((passed + 1)); echo "ok   $*"; }
flunk() { failed=$((failed + 1)); echo "FAIL $*"; }
check() { # check NAME EXPECT ARGS...: EXPECT is pass, or the name of the check that must FAIL
	local name=$1 expect=$2; shift 2
	local out rc
	out=$("$V" "$@" 2>&1); rc=$?
	if [ "$expect" = pass ] && [ $rc -eq 0 ] && echo "$out" | grep -q '^receipt\( chain\)\? valid$'; then pass "$name"
	elif [ "$expect" != pass ] && [ $rc -eq 1 ] && [ "$(echo "$out" | grep -c '^FAIL')" = 1 ] &&
		echo "$out" | grep -q "^FAIL $expect: ."; then
		pass "$name ($(echo "$out" | grep '^FAIL' | cut -c1-150))"
	else flunk "$name: expected $expect, got rc=$rc:"; echo "$out" | sed 's/^/     /'; fi
}
checkout() { # checkout NAME REGEX ARGS...: exit 0 and a line of the output matches REGEX
	local name=$1 re=$2; shift 2
	local out rc
	out=$("$V" "$@" 2>&1); rc=$?
	if [ $rc -eq 0 ] && echo "$out" | grep -q -- "$re"; then pass "$name"
	else flunk "$name: expected rc=0 and /$re/, got rc=$rc:"; echo "$out" | sed 's/^/     /'; fi
}
checkrc() { # checkrc NAME RC ARGS...
	local name=$1 want=$2; shift 2
	"$V" "$@" >/dev/null 2>&1
	local rc=$?
	[ $rc -eq "$want" ] && pass "$name (exit $rc)" || flunk "$name: exit $rc, expected $want"
}
tamper() { # tamper IN OUT JS: edit receipt r (flip(hex, i) flips one hex digit), write it back
	node -e 'const fs=require("fs");const r=JSON.parse(fs.readFileSync(process.argv[1]));
		const flip=(h,i)=>h.slice(0,i)+((parseInt(h[i],16)^1).toString(16))+h.slice(i+1);
		'"$3"';fs.writeFileSync(process.argv[2],JSON.stringify(r));' "$1" "$2"
}
OTHER_KEY=0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798	# the generator point

# ---------------------------------------------------------------- 1. offline
echo "# offline, receipts from make-receipt.mjs --local"
L=$WORK/local
$MR --local "$L/kms" --query $'SELECT dp_count(x, 0.5) FROM ehr -- \u00e9 \u00fc \U0001F600 \uffff \x01 \x7f "q" \\ / \t' \
	--set 'result={"columns":["\uffff","\ud83d\ude00","a","\u00e9"],"rows":[["-0",null,true,false]],"\uffff":1,"\ud83d\ude00":[],"a":{}}' \
	>"$WORK/a.json" || exit 1
$MR --local "$L/kms" --prev "$WORK/a.json" >"$WORK/b.json" || exit 1
$MR --local "$L/kms" --prev "$WORK/b.json" >"$WORK/c.json" || exit 1
K=(--kms-root "$(cat "$L/kms/root.pub")")
A=$WORK/a.json
check "generated receipt (non-ASCII, controls, key order) verifies" pass "${K[@]}" "$A"
node -e 'const fs=require("fs");const r=JSON.parse(fs.readFileSync(process.argv[1]));
	const rev=(v)=>Array.isArray(v)?v.map(rev):v&&typeof v==="object"?Object.fromEntries(Object.keys(v).reverse().map(k=>[k,rev(v[k])])):v;
	fs.writeFileSync(process.argv[2],JSON.stringify(rev(r),null,"\t").replace(/"query": "S/,"\"query\": \"\\u0053"))' "$A" "$WORK/reformatted.json"
check "same receipt reformatted (keys reversed, indented, escaped)" pass "${K[@]}" "$WORK/reformatted.json"
out=$("$V" --quiet "${K[@]}" "$A"); rc=$?
[ $rc -eq 0 ] && [ -z "$out" ] && pass "--quiet prints nothing on success" || flunk "--quiet: rc=$rc, output: $out"
tamper "$A" "$WORK/t.json" 'r.body.result.rows[0][0]="1"'
check "body: result edited" "body hash" "${K[@]}" "$WORK/t.json"
tamper "$A" "$WORK/t.json" 'r.body.epsilon.charged="0.000001"'
check "body: epsilon edited" "body hash" "${K[@]}" "$WORK/t.json"
tamper "$A" "$WORK/t.json" 'r.body.query+=" "'
check "body: query edited" "body hash" "${K[@]}" "$WORK/t.json"
tamper "$A" "$WORK/t.json" 'r.body.app_id="0x"+flip(r.body.app_id.slice(2),3)'
check "body: app_id edited" "body hash" "${K[@]}" "$WORK/t.json"
tamper "$A" "$WORK/t.json" 'r.body.chain.block_number+=1'
check "body: block number edited" "body hash" "${K[@]}" "$WORK/t.json"
tamper "$A" "$WORK/t.json" 'r.body.extra=1'
check "body: field added" "body hash" "${K[@]}" "$WORK/t.json"
tamper "$A" "$WORK/t.json" 'r.body.min_group_size=10.5'
check "body: a JSON real" "body hash" "${K[@]}" "$WORK/t.json"
out=$("$V" "${K[@]}" "$WORK/t.json"); echo "$out" | grep -q 'real number' && pass "  ... named as a real number" || flunk "real number not named"
tamper "$A" "$WORK/t.json" 'r.body.policy.min_group_size=0'
check "body: policy edited" "body hash" "${K[@]}" "$WORK/t.json"
tamper "$A" "$WORK/t.json" 'r.body_sha256=flip(r.body_sha256,0)'
check "body_sha256 edited" "body hash" "${K[@]}" "$WORK/t.json"
tamper "$A" "$WORK/t.json" 'r.body.format="dstack-receipt/v2"'
check "body.format not v1" receipt "${K[@]}" "$WORK/t.json"
tamper "$A" "$WORK/t.json" 'r.signature.value=flip(r.signature.value,10)'
check "signature value flipped" signature "${K[@]}" "$WORK/t.json"
tamper "$A" "$WORK/t.json" 'r.signature.value=r.signature.value.slice(0,128)+(parseInt(r.signature.value.slice(128),16)+27).toString(16)'
check "signature v as 27/28" signature "${K[@]}" "$WORK/t.json"
tamper "$A" "$WORK/t.json" "r.signature.public_key=\"$OTHER_KEY\""
check "another public key" signature "${K[@]}" "$WORK/t.json"
tamper "$A" "$WORK/t.json" 'r.signature.signature_chain[0]=flip(r.signature.signature_chain[0],4)'
check "key chain link 0 flipped" "key chain" "${K[@]}" "$WORK/t.json"
tamper "$A" "$WORK/t.json" 'r.signature.signature_chain[1]=flip(r.signature.signature_chain[1],4)'
check "key chain link 1 flipped" "key chain" "${K[@]}" "$WORK/t.json"
tamper "$A" "$WORK/t.json" 'r.signature.signature_chain.reverse()'
check "key chain links swapped" "key chain" "${K[@]}" "$WORK/t.json"
tamper "$A" "$WORK/t.json" 'r.signature.signature_chain.pop()'
check "key chain link missing" "key chain" "${K[@]}" "$WORK/t.json"
tamper "$A" "$WORK/t.json" 'r.signature.purpose="dstack-seal/v1"'
check "signature purpose edited" "key chain" "${K[@]}" "$WORK/t.json"
$MR --local "$L/kms" --set 'app_id="0x70997970c51812dc3a010c7d01b50e0d17dc79c8"' >"$WORK/t.json"
check "app id not the key's (re-signed)" "key chain" "${K[@]}" "$WORK/t.json"
check "wrong --kms-root" "key chain" --kms-root "$OTHER_KEY" "$A"
$MR --local "$L/kms2" >"$WORK/t.json"
check "a receipt from another KMS" "key chain" "${K[@]}" "$WORK/t.json"
tamper "$A" "$WORK/t.json" 'r.quote.report_data=flip(r.quote.report_data,2)'
check "quote report_data edited" quote "${K[@]}" "$WORK/t.json"
tamper "$A" "$WORK/t.json" 'r.quote.quote=flip(r.quote.quote,2*568+1)'
check "quote bytes: report_data inside the quote" quote "${K[@]}" "$WORK/t.json"
tamper "$A" "$WORK/t.json" 'r.quote.quote=flip(r.quote.quote,2*520)'
check "quote bytes: RTMR3 (no longer the event log's replay)" quote "${K[@]}" "$WORK/t.json"
tamper "$A" "$WORK/t.json" 'r.quote.quote=flip(r.quote.quote,2*28)'
check "quote bytes: header marker" quote "${K[@]}" "$WORK/t.json"
tamper "$A" "$WORK/t.json" 'const e=JSON.parse(r.quote.event_log);e.find(x=>x.event==="compose-hash").event_payload="00".repeat(32);r.quote.event_log=JSON.stringify(e)'
check "quote event log: another compose-hash measured" quote "${K[@]}" "$WORK/t.json"
tamper "$A" "$WORK/t.json" 'r.quote.event_log=""'
check "quote event log: missing" quote "${K[@]}" "$WORK/t.json"
tamper "$A" "$WORK/t.json" 'r.quote.quote=r.quote.quote.slice(0,2*700)'
check "quote bytes: truncated" quote "${K[@]}" "$WORK/t.json"
tamper "$A" "$WORK/t.json" 'r.quote.simulated=false'
check "quote.simulated edited" quote "${K[@]}" "$WORK/t.json"
checkout "the policy is printed offline" \
	'^ok   policy epsilon_total 1.500000, delta 1e-6, epsilon_select 0.100000, min_group_size 10, privacy_unit patient_id, max_rows_per_unit 1$' \
	"${K[@]}" "$A"
$MR --local "$L/kms" --unset policy >"$WORK/t.json"
checkout "a receipt without policy (older) verifies, saying so" '^note the receipt states no policy' "${K[@]}" "$WORK/t.json"
check "  ... and is valid" pass "${K[@]}" "$WORK/t.json"
for bad in 'policy.epsilon_total="1.5"' 'policy.epsilon_total="0.000000"' 'policy.epsilon_select="-0.100000"' \
	'policy.delta="0"' 'policy.delta="nan"' 'policy.min_group_size="10"' 'policy.min_group_size=-1' \
	'policy.max_rows_per_unit=0' 'policy.privacy_unit=""' 'policy.privacy_unit=null' 'policy=[]'; do
	$MR --local "$L/kms" --set "$bad" >"$WORK/t.json"
	check "malformed policy, re-signed: $bad" policy "${K[@]}" "$WORK/t.json"
done
check "audit chain of three" pass "${K[@]}" --chain "$WORK/a.json" "$WORK/b.json" "$WORK/c.json"
check "audit chain out of order" "audit chain" "${K[@]}" --chain "$WORK/b.json" "$WORK/a.json"
check "audit chain with a gap" "audit chain" "${K[@]}" --chain "$WORK/a.json" "$WORK/c.json"
check "audit chain repeating a receipt" "audit chain" "${K[@]}" --chain "$WORK/a.json" "$WORK/a.json"
$MR --local "$L/kms" --prev "$WORK/a.json" --set "prev_receipt_hash=\"$(printf '%064d' 0)\"" >"$WORK/t.json"
check "audit chain with a broken link (re-signed)" "audit chain" "${K[@]}" --chain "$WORK/a.json" "$WORK/t.json"
check "not JSON" receipt "${K[@]}" /etc/hostname
echo '{"body":{"format":"dstack-receipt/v1"},"body":{}}' >"$WORK/t.json"
check "duplicate keys" receipt "${K[@]}" "$WORK/t.json"
checkrc "usage: no arguments" 2
checkrc "usage: no --kms-root" 2 "$A"
checkrc "usage: bad --kms-root" 2 --kms-root 02zz "$A"
checkrc "usage: two receipts without --chain" 2 "${K[@]}" "$A" "$A"
checkrc "usage: unknown option" 2 "${K[@]}" --frobnicate "$A"

# ---------------------------------------------------------------- 2. --rpc
echo "# against the chain, receipts from make-receipt.mjs --socket (dstack simulator)"
"$ROOT/tools/testenv.sh" up "$WORK/env" --owners 4 --threshold 3 --approve 4 >/dev/null || { flunk "testenv up"; exit 1; }
. "$WORK/env/env.sh"
K=(--kms-root "$DSTACK_TEST_KMS_ROOT")
S=(--socket "$DSTACK_TEST_SOCKET" --rpc "$DSTACK_TEST_RPC")
R=(--rpc "$DSTACK_TEST_RPC")
$MR "${S[@]}" >"$WORK/s.json" || exit 1
N=$(node -e 'console.log(require(process.argv[1]).body.chain.block_number)' "$WORK/s.json")
checkout "simulator receipt verifies against the chain" "^ok   consortium approved 4/3, not revoked, compose-hash pinned at block $N$" "${K[@]}" "${R[@]}" "$WORK/s.json"
check "simulator receipt verifies offline" pass "${K[@]}" "$WORK/s.json"
checkout "  ... its policy (from the measured compose) agrees with the contract's policy()" \
	"^ok   policy agrees with the contract's policy() at block $N (epsilon_total, min_group_size, privacy_unit)$" \
	"${K[@]}" "${R[@]}" "$WORK/s.json"
# a forged policy: a CVM (or anyone with the receipt key) claiming laxer terms than the owners approved
$MR "${S[@]}" --set 'policy.min_group_size=0' >"$WORK/t.json"
check "forged policy: min_group_size 0 (re-signed)" policy "${K[@]}" "${R[@]}" "$WORK/t.json"
check "  ... passes offline (the chain is not consulted)" pass "${K[@]}" "$WORK/t.json"
$MR "${S[@]}" --set 'policy.epsilon_total="1000.000000"' >"$WORK/t.json"
check "forged policy: epsilon_total 1000 (re-signed)" policy "${K[@]}" "${R[@]}" "$WORK/t.json"
$MR "${S[@]}" --set 'policy.privacy_unit="visit_id"' >"$WORK/t.json"
check "forged policy: another privacy unit (re-signed)" policy "${K[@]}" "${R[@]}" "$WORK/t.json"
$MR "${S[@]}" --unset policy >"$WORK/t.json"
check "a receipt without policy (older) against the chain" pass "${K[@]}" "${R[@]}" "$WORK/t.json"
$MR "${S[@]}" --set "chain.block_hash=\"0x$(printf '%064d' 1)\"" >"$WORK/t.json"
check "wrong block hash (re-signed)" chain "${K[@]}" "${R[@]}" "$WORK/t.json"
check "  ... passes offline (the chain is not consulted)" pass "${K[@]}" "$WORK/t.json"
$MR "${S[@]}" --set "chain.block_number=$((N - 1))" >"$WORK/t.json"
check "wrong block number (re-signed)" chain "${K[@]}" "${R[@]}" "$WORK/t.json"
$MR "${S[@]}" --set "chain.block_number=999999" >"$WORK/t.json"
check "block not on chain (re-signed)" chain "${K[@]}" "${R[@]}" "$WORK/t.json"
$MR "${S[@]}" --set "chain.chain_id=1" >"$WORK/t.json"
check "wrong chain id (re-signed)" chain "${K[@]}" "${R[@]}" "$WORK/t.json"
$MR "${S[@]}" --set "chain.approvals=3" >"$WORK/t.json"
check "wrong approval count (re-signed)" consortium "${K[@]}" "${R[@]}" "$WORK/t.json"
$MR "${S[@]}" --set "compose_hash=\"$(printf '%064d' 1)\"" >"$WORK/t.json"
check "compose-hash not the one the quote measures (re-signed)" quote "${K[@]}" "${R[@]}" "$WORK/t.json"
$MR "${S[@]}" --set 'app_id="0x70997970c51812dc3a010c7d01b50e0d17dc79c8"' >"$WORK/t.json"
check "app id not the key's (re-signed)" "key chain" "${K[@]}" "${R[@]}" "$WORK/t.json"
tamper "$WORK/s.json" "$WORK/t.json" 'r.body.chain.block_hash="0x"+flip(r.body.chain.block_hash.slice(2),5)'
check "block hash edited" "body hash" "${K[@]}" "${R[@]}" "$WORK/t.json"
check "wrong --kms-root with --rpc" "key chain" --kms-root "$OTHER_KEY" "${R[@]}" "$WORK/s.json"
check "unreachable --rpc" chain "${K[@]}" --rpc http://127.0.0.1:1 "$WORK/s.json"

# ---------------------------------------------------------------- 3. dstack_run
echo "# real receipts from dstack_run()"
PORT=$((20000 + RANDOM % 20000))
if pg_up "$WORK/pg" "$PORT"; then
	mkdir -p "$WORK/out"; [ "$(id -u)" = 0 ] && chown postgres: "$WORK/out"
	q() { pg_psql "$WORK/pg" "$PORT" -d postgres -At "$@"; }
	q >/dev/null <<SQL || flunk "PostgreSQL setup"
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
  (rpc_url '$DSTACK_TEST_RPC', guest_agent '$DSTACK_TEST_SOCKET', kms_root_pubkey '$DSTACK_TEST_KMS_ROOT',
   kms_contract '$DSTACK_TEST_KMS_CONTRACT', chain_id '$DSTACK_TEST_CHAIN_ID');
CREATE FOREIGN TABLE st (patient_id int4, k int4) SERVER s OPTIONS (path '$WORK/out/t.dseal', owner '$DSTACK_TEST_OWNER1_ADDR');
SQL
	q -c 'SELECT dstack_run($$SELECT k, dp_count(patient_id, 0.2) FROM st GROUP BY k$$)' >"$WORK/r1.json"
	q -c 'SELECT dstack_run($$SELECT dp_count(patient_id, 0.2) FROM st /* caf\u00e9 */$$)' >"$WORK/r2.json"
	check "dstack_run receipt verifies offline" pass "${K[@]}" "$WORK/r1.json"
	check "  ... and against the chain" pass "${K[@]}" "${R[@]}" "$WORK/r1.json"
	check "two dstack_run receipts form an audit chain" pass "${K[@]}" "${R[@]}" --chain "$WORK/r1.json" "$WORK/r2.json"
	check "  ... not in the other order" "audit chain" "${K[@]}" --chain "$WORK/r2.json" "$WORK/r1.json"
	tamper "$WORK/r1.json" "$WORK/t.json" 'r.body.result.rows[0][1]=String(Number(r.body.result.rows[0][1])+1)'
	check "dstack_run receipt: result edited" "body hash" "${K[@]}" "$WORK/t.json"
	tamper "$WORK/r1.json" "$WORK/t.json" 'r.quote.quote=flip(r.quote.quote,2*568+1)'
	check "dstack_run receipt: quote edited" quote "${K[@]}" "$WORK/t.json"
	tamper "$WORK/r1.json" "$WORK/t.json" 'r.signature.signature_chain[1]=flip(r.signature.signature_chain[1],4)'
	check "dstack_run receipt: key chain edited" "key chain" "${K[@]}" "$WORK/t.json"
else
	flunk "PostgreSQL did not start (dstack_run receipts not tested)"
fi

# ---------------------------------------------------------------- revocation
# A receipt attests the consortium's state at the block it cites: after a
# revocation it still verifies (history is not rewritten), with a note; a
# receipt citing a block at or after the revocation fails.
echo "# after a revocation"
"$ROOT/contracts/scripts/consortium.sh" revoke --rpc "$DSTACK_TEST_RPC" --key "$DSTACK_TEST_OWNER2_KEY" \
	--app "$DSTACK_TEST_APP_ID" --reason test >/dev/null 2>&1 || flunk "revoke"
checkout "receipt before the revocation still verifies at its block" '^note the consortium was revoked after this receipt' \
	"${K[@]}" "${R[@]}" "$WORK/s.json"
[ -f "$WORK/r1.json" ] && check "  ... so does the dstack_run receipt" pass "${K[@]}" "${R[@]}" "$WORK/r1.json"
$MR --local "$L/kms" --app-id "$DSTACK_TEST_APP_ID" --rpc "$DSTACK_TEST_RPC" >"$WORK/t.json" 2>/dev/null
check "a receipt citing a revoked block" consortium --kms-root "$(cat "$L/kms/root.pub")" "${R[@]}" "$WORK/t.json"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
