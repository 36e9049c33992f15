#!/usr/bin/env bash
# tools/dstack-verify/test.sh: valid receipts are accepted, and every tampered
# field, a wrong KMS root and a broken audit chain are rejected with the check
# that catches them.  Sources of quotes and receipts:
#   0. real TDX quotes and Intel collateral from fixtures/ (dstack, dcap-qvl):
#      test_tdx's vectors, dstack-verify --quote with and without collateral,
#      forged quotes and collateral, and the cross-check with @phala/dcap-qvl;
#   1. make-receipt.mjs --local: an independent Node generator with its own
#      KMS root (no chain, no guest agent): offline checks and tampering, and
#      receipts around the real quotes of fixtures/;
#   2. make-receipt.mjs --socket --rpc against tools/testenv.sh (anvil, the
#      consortium contract, the dstack simulator): the --rpc checks;
#   3. real receipts from dstack_run() in PostgreSQL with both extensions.
# Then a revocation: receipts still verify at the block they cite. Last, the public
# audit of the privacy-budget ledger (test-ledger.sh).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$ROOT/tools/lib/pg.sh"
HERE=$ROOT/tools/dstack-verify
V=$HERE/dstack-verify
FX=$HERE/fixtures
MR="node $HERE/make-receipt.mjs"
make -s -C "$HERE" dstack-verify test_tdx || exit 1
WORK=$(mktemp -d /tmp/dstack_verify_test.XXXXXX)
chmod 755 "$WORK"
trap 'pg_down "$WORK/pg"; "$ROOT/tools/testenv.sh" down "$WORK/env" >/dev/null 2>&1; rm -rf "$WORK"' EXIT

passed=0 failed=0
pass() { passed=$((passed + 1)); echo "ok   $*"; }
flunk() { failed=$((failed + 1)); echo "FAIL $*"; }
# run the verifier; a simulated quote's " [SIMULATED]" line suffix is taken off (tested apart)
run() { "$V" "$@" 2>&1 | sed 's/ \[SIMULATED\]$//'; return "${PIPESTATUS[0]}"; }
check() { # check NAME EXPECT ARGS...: EXPECT is pass (exit 0), tcb-unknown (3), tcb-not-current (4), or the check that must FAIL (1)
	local name=$1 expect=$2; shift 2
	local out rc want=0
	out=$(run "$@"); rc=$?
	case $expect in tcb-unknown) want=3 ;; tcb-not-current) want=4 ;; esac
	if [ "$expect" = pass ] || [ $want -ne 0 ]; then
		if [ $rc -eq $want ] && echo "$out" | grep -q '^\(receipt\|receipt chain\|quote\) valid'; then pass "$name (exit $rc)"
		else flunk "$name: expected $expect (exit $want), got rc=$rc:"; echo "$out" | sed 's/^/     /'; fi
	elif [ $rc -eq 1 ] && [ "$(echo "$out" | grep -c '^FAIL')" = 1 ] && echo "$out" | grep -q "^FAIL $expect: ."; then
		pass "$name ($(echo "$out" | grep '^FAIL' | cut -c1-150))"
	else flunk "$name: expected FAIL $expect, got rc=$rc:"; echo "$out" | sed 's/^/     /'; fi
}
checkout() { # checkout NAME REGEX ARGS...: exit 0 (or $RC) and a line of the output matches REGEX
	local name=$1 re=$2; shift 2
	local out rc
	out=$(run "$@"); rc=$?
	if [ $rc -eq "${RC:-0}" ] && echo "$out" | grep -q -- "$re"; then pass "$name"
	else flunk "$name: expected rc=${RC:-0} and /$re/, got rc=$rc:"; echo "$out" | sed 's/^/     /'; fi
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
qtamper() { # qtamper IN OUT JS: edit the quote q (a Buffer) of a fixture; OUT is a GetQuote JSON {quote, event_log}
	node -e 'const fs=require("fs");const f=process.argv[1];const b=fs.readFileSync(f);let q,event_log="";
		if(f.endsWith(".json")){const j=JSON.parse(b);q=Buffer.from(j.quote,"hex");event_log=j.event_log}
		else if(f.endsWith(".hex"))q=Buffer.from(b.toString().trim().replace(/^0x/,""),"hex");else q=Buffer.from(b);
		const pem=()=>{const s=q.indexOf("-----BEGIN CERTIFICATE-----");return s};
		'"$3"';fs.writeFileSync(process.argv[2],JSON.stringify({quote:q.toString("hex"),event_log}));' "$1" "$2"
}
OTHER_KEY=0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798	# the generator point

# ---------------------------------------------------------------- 0. TDX quotes
echo "# real TDX quotes and Intel collateral (fixtures/README.md); no network"
if out=$("$HERE/test_tdx" "$FX"); then pass "test_tdx: $(echo "$out" | tail -1)"
else flunk "test_tdx:"; echo "$out" | sed 's/^/     /'; fi
C17=(--collateral "$FX/dcap-qvl-tdx_quote_collateral.json" --at 2025-07-01T00:00:00Z)	# FMSPC B0C06F000000
C18=(--collateral "$FX/dcap-qvl-tdx_quote_outdated_collateral.json" --at 2026-03-01T00:00:00Z)	# FMSPC 90C06F000000
check "dcap-qvl's TDX quote with its collateral: UpToDate" pass --quote "$FX/dcap-qvl-tdx_quote.bin" "${C17[@]}"
checkout "  ... one line per check, the TCB included" '^ok   tcb: UpToDate (platform UpToDate, TDX module UpToDate, QE UpToDate' \
	--quote "$FX/dcap-qvl-tdx_quote.bin" "${C17[@]}"
check "dstack's quote-report (event log, RTMR3) with collateral: UpToDate" pass --quote "$FX/dstack-quote-report.json" "${C18[@]}"
checkout "  ... RTMR3 replays from its event log with dstack's digests" \
	'^ok   rtmr3: the quote.s RTMR3 is the replay of the event log.s 8 RTMR3 events (dstack runtime event digests)$' \
	--quote "$FX/dstack-quote-report.json" "${C18[@]}"
check "dcap-qvl's v5 quote: no TCB level matches" tcb --quote "$FX/dcap-qvl-tdx_quote_outdated.bin" "${C18[@]}"
for f in dstack-ra-tls-tdx_quote.bin dcap-qvl-tdx-quote.hex dcap-qvl-quote-from-tappd.hex; do
	check "$f: no TCB level matches" tcb --quote "$FX/$f" "${C17[@]}"
done
check "dstack's lite quote: PCK not yet valid at the collateral's time" "pck chain" --quote "$FX/dstack-tdx-lite-getquote.json" "${C18[@]}"
check "collateral of another platform (FMSPC)" tcb --quote "$FX/dcap-qvl-tdx_quote.bin" "${C18[@]}"
check "collateral expired at the verification time" collateral --quote "$FX/dcap-qvl-tdx_quote.bin" --collateral "$FX/dcap-qvl-tdx_quote_collateral.json" --at 2025-08-01T00:00:00Z
for f in dstack-quote-report.json dstack-tdx-lite-getquote.json dstack-ra-tls-tdx_quote.bin dcap-qvl-tdx_quote.bin \
	dcap-qvl-tdx_quote_outdated.bin dcap-qvl-tdx-quote.hex dcap-qvl-quote-from-tappd.hex; do
	check "$f without collateral: valid, TCB not evaluated" tcb-unknown --quote "$FX/$f" --at 2026-07-01T00:00:00Z
done
RC=3 checkout "  ... said plainly" '^note tcb: not evaluated: no --collateral' --quote "$FX/dcap-qvl-tdx_quote.bin"
RC=3 checkout "  ... and on the last line" '^quote valid, TCB not evaluated (no --collateral)$' --quote "$FX/dcap-qvl-tdx_quote.bin"
RC=3 checkout "--report-data that the quote carries" '^ok   report_data = --report-data$' --quote "$FX/dstack-quote-report.json" --report-data 1234
check "--report-data that it does not carry" report_data --quote "$FX/dstack-quote-report.json" --report-data 1235
Q=$FX/dstack-quote-report.json
qtamper "$Q" "$WORK/q.json" 'q=q.subarray(0,4935)'
check "forged quote: trimmed into its signature data" quote --quote "$WORK/q.json" "${C18[@]}"
qtamper "$Q" "$WORK/q.json" 'q=q.subarray(0,4936)'
check "  ... trimmed to its signature data (no padding): valid" pass --quote "$WORK/q.json" "${C18[@]}"
qtamper "$Q" "$WORK/q.json" 'q[q.length-1]=1'
check "forged quote: a non-zero byte in the padding" quote --quote "$WORK/q.json" "${C18[@]}"
qtamper "$Q" "$WORK/q.json" 'q=Buffer.concat([q,Buffer.from("00","hex")])'
check "  ... one more zero byte of padding: valid" pass --quote "$WORK/q.json" "${C18[@]}"
qtamper "$Q" "$WORK/q.json" 'q[636+10]^=1'
check "forged quote: signature flipped" "quote signature" --quote "$WORK/q.json" "${C18[@]}"
qtamper "$Q" "$WORK/q.json" 'q[568+3]^=1'
check "forged quote: report_data changed" "quote signature" --quote "$WORK/q.json" "${C18[@]}"
qtamper "$Q" "$WORK/q.json" 'q[48+472+5]^=1'
check "forged quote: RTMR3 changed" "quote signature" --quote "$WORK/q.json" "${C18[@]}"
qtamper "$Q" "$WORK/q.json" 'q[636+128+6+64]^=1'
check "forged quote: QE report changed" "qe report" --quote "$WORK/q.json" "${C18[@]}"
qtamper "$Q" "$WORK/q.json" 'q[636+64+7]^=1'
check "forged quote: another attestation key" "qe report" --quote "$WORK/q.json" "${C18[@]}"
qtamper "$Q" "$WORK/q.json" 'const e=q.indexOf("-----END CERTIFICATE-----");q[e-20]=q[e-20]===65?66:65'
check "forged quote: PCK certificate altered (broken chain)" "pck chain" --quote "$WORK/q.json" "${C18[@]}"
qtamper "$Q" "$WORK/q.json" 'const s=q.indexOf("-----BEGIN CERTIFICATE-----",q.indexOf("-----BEGIN CERTIFICATE-----")+1);const e=q.indexOf("-----END CERTIFICATE-----",s)+26;q=Buffer.concat([q.subarray(0,s),Buffer.alloc(e-s,0x20),q.subarray(e)])'
check "forged quote: PCK chain without its CA" "pck chain" --quote "$WORK/q.json" "${C18[@]}"
qtamper "$Q" "$WORK/q.json" 'const l=JSON.parse(event_log);const a=l.find(e=>e.event==="app-id");a.event_payload="70997970c51812dc3a010c7d01b50e0d17dc79c8";a.digest="";event_log=JSON.stringify(l)'
check "forged event log: another app id" rtmr3 --quote "$WORK/q.json" "${C18[@]}"
qtamper "$Q" "$WORK/q.json" 'const l=JSON.parse(event_log);l.splice(l.findIndex(e=>e.event==="instance-id"),1);event_log=JSON.stringify(l)'
check "forged event log: an event left out" rtmr3 --quote "$WORK/q.json" "${C18[@]}"
qtamper "$Q" "$WORK/q.json" 'const l=JSON.parse(event_log);const a=l.find(e=>e.event==="compose-hash");a.event_type=1;a.event_payload="00".repeat(32);event_log=JSON.stringify(l)'
checkout "forged event log: compose-hash as another event type (digest kept, payload changed): not taken for the compose-hash" \
	'^note event compose-hash: none before system-ready$' --quote "$WORK/q.json" "${C18[@]}"
qtamper "$Q" "$WORK/q.json" 'q.write("DSTACK-SIMULATED\0\0\0\0",28,"latin1")'
check "the simulator's marker in a real quote, no --allow-simulated" quote --quote "$WORK/q.json" "${C18[@]}"
checkout "  ... with --allow-simulated: SIMULATED, its broken signature reported" \
	'^note quote signature: not valid, as expected of a simulated quote' --quote "$WORK/q.json" "${C18[@]}" --allow-simulated
out=$("$V" --quote "$WORK/q.json" --allow-simulated 2>&1); rc=$?
[ $rc -eq 0 ] && [ -z "$(echo "$out" | grep -v ' \[SIMULATED\]$')" ] && pass "  ... every line says SIMULATED (exit 0)" ||
	{ flunk "  ... every line says SIMULATED: rc=$rc"; echo "$out" | sed 's/^/     /'; }
node -e 'const fs=require("fs");const c=JSON.parse(fs.readFileSync(process.argv[1]));
	c.tcb_info=c.tcb_info.replace("\"OutOfDate\"","\"UpToDate\"");fs.writeFileSync(process.argv[2],JSON.stringify(c))' \
	"$FX/dcap-qvl-tdx_quote_collateral.json" "$WORK/c.json"
check "forged collateral: a TCB level's status edited" collateral --quote "$FX/dcap-qvl-tdx_quote.bin" --collateral "$WORK/c.json" --at 2025-07-01T00:00:00Z
node -e 'const fs=require("fs");const c=JSON.parse(fs.readFileSync(process.argv[1]));
	c.qe_identity_signature=c.qe_identity_signature.replace(/^./,x=>x==="0"?"1":"0");fs.writeFileSync(process.argv[2],JSON.stringify(c))' \
	"$FX/dcap-qvl-tdx_quote_collateral.json" "$WORK/c.json"
check "forged collateral: QE identity signature flipped" collateral --quote "$FX/dcap-qvl-tdx_quote.bin" --collateral "$WORK/c.json" --at 2025-07-01T00:00:00Z
checkrc "usage: --at garbage" 2 --quote "$FX/dcap-qvl-tdx_quote.bin" --at yesterday
checkrc "usage: --collateral missing" 2 --quote "$FX/dcap-qvl-tdx_quote.bin" --collateral /nonexistent
checkrc "usage: --report-data without --quote" 2 --kms-root 02 --report-data 12 x.json
if [ -d "$ROOT/node_modules/@phala/dcap-qvl" ]; then
	if out=$(node "$HERE/dcap-crosscheck.mjs" "$V" 2>&1); then pass "cross-check with @phala/dcap-qvl: $(echo "$out" | tail -1)"
	else flunk "cross-check with @phala/dcap-qvl:"; echo "$out" | sed 's/^/     /'; fi
else
	flunk "cross-check with @phala/dcap-qvl: node_modules/@phala/dcap-qvl is missing (npm ci)"
fi

# ---------------------------------------------------------------- 1. offline
echo "# offline, receipts from make-receipt.mjs --local"
L=$WORK/local
$MR --local "$L/kms" --query $'SELECT dp_count(x, 0.5) FROM ehr -- \u00e9 \u00fc \U0001F600 \uffff \x01 \x7f "q" \\ / \t' \
	--set 'result={"columns":["\uffff","\ud83d\ude00","a","\u00e9"],"rows":[["-0",null,true,false]],"\uffff":1,"\ud83d\ude00":[],"a":{}}' \
	>"$WORK/a.json" || exit 1
$MR --local "$L/kms" --prev "$WORK/a.json" >"$WORK/b.json" || exit 1
$MR --local "$L/kms" --prev "$WORK/b.json" >"$WORK/c.json" || exit 1
KR=(--kms-root "$(cat "$L/kms/root.pub")")
K=("${KR[@]}" --allow-simulated)	# --local quotes are simulated (tools/dstack-sim's first layout)
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
check "quote report_data edited" report_data "${K[@]}" "$WORK/t.json"
tamper "$A" "$WORK/t.json" 'r.quote.quote=flip(r.quote.quote,2*568+1)'
check "quote bytes: report_data inside the quote" quote "${K[@]}" "$WORK/t.json"
tamper "$A" "$WORK/t.json" 'r.quote.quote=flip(r.quote.quote,2*100)'
check "quote bytes: TD report (simulated signature breaks)" quote "${K[@]}" "$WORK/t.json"
tamper "$A" "$WORK/t.json" 'r.quote.quote=flip(r.quote.quote,2*12)'
check "quote bytes: header marker" quote "${K[@]}" "$WORK/t.json"
tamper "$A" "$WORK/t.json" 'r.quote.quote=flip(r.quote.quote,2*636+3)'
check "quote bytes: signature" quote "${K[@]}" "$WORK/t.json"
tamper "$A" "$WORK/t.json" 'r.quote.quote=r.quote.quote.slice(0,2*700)'
check "quote bytes: truncated" quote "${K[@]}" "$WORK/t.json"
tamper "$A" "$WORK/t.json" 'r.quote.simulated=false'
check "quote.simulated edited" quote "${K[@]}" "$WORK/t.json"
tamper "$A" "$WORK/t.json" 'r.quote.quote=flip(r.quote.quote,2*(48+472)+1)'
check "quote bytes: RTMR3 (simulated signature breaks)" quote "${K[@]}" "$WORK/t.json"
# the simulated quote, its event log and RTMR3
check "a simulated receipt without --allow-simulated" quote "${KR[@]}" "$A"
out=$("$V" "${K[@]}" "$A" 2>&1); rc=$?
[ $rc -eq 0 ] && [ -z "$(echo "$out" | grep -v ' \[SIMULATED\]$')" ] && pass "  ... with it: valid, every line says SIMULATED" ||
	{ flunk "  ... with it: rc=$rc"; echo "$out" | sed 's/^/     /'; }
checkout "  ... its RTMR3 replays to the body's app, compose-hash, instance and KMS" '^ok   event key-provider: kms, id = --kms-root$' "${K[@]}" "$A"
MARK=$(printf DSTACK-SIMULATED-QUOTE | od -An -tx1 | tr -d ' \n')	# the simulator's first layout
MARK16=$(printf DSTACK-SIMULATED | od -An -tx1 | tr -d ' \n')		# and a real layout's
tamper "$A" "$WORK/t.json" "r.quote.quote=r.quote.quote.split('$MARK').join('00'.repeat(22))"
check "simulated quote with its marker zeroed" quote "${K[@]}" "$WORK/t.json"
check "  ... without --allow-simulated too" quote "${KR[@]}" "$WORK/t.json"
tamper "$A" "$WORK/t.json" 'r.quote.quote=r.quote.quote.slice(0,-2)'
check "simulated quote trimmed by a byte" quote "${K[@]}" "$WORK/t.json"
$MR --local "$L/kms" --app-id 0x70997970c51812dc3a010c7d01b50e0d17dc79c8 >"$WORK/other-app.json" || exit 1
tamper "$A" "$WORK/t.json" 'r.quote.event_log=JSON.parse(require("fs").readFileSync(process.argv[1].replace(/a\.json$/,"other-app.json"))).quote.event_log'
check "event log of another app (same KMS)" rtmr3 "${K[@]}" "$WORK/t.json"
tamper "$A" "$WORK/t.json" 'const l=JSON.parse(r.quote.event_log);l.splice(2,1);r.quote.event_log=JSON.stringify(l)'
check "event log with an event left out" rtmr3 "${K[@]}" "$WORK/t.json"
tamper "$A" "$WORK/t.json" 'r.quote.event_log=""'
check "no event log" "event log" "${K[@]}" "$WORK/t.json"
tamper "$A" "$WORK/t.json" 'r.quote.event_log="[{\"imr\":3}]"'
check "a malformed event log" "event log" "${K[@]}" "$WORK/t.json"
$MR --local "$L/kms" --set "compose_hash=\"$(printf '%064d' 7)\"" >"$WORK/t.json"
check "compose-hash the CVM did not measure (re-signed)" compose-hash "${K[@]}" "$WORK/t.json"
$MR --local "$L/kms" --set "instance_id=\"$(printf '%040d' 7)\"" >"$WORK/t.json"
check "instance id the CVM did not measure (re-signed)" instance-id "${K[@]}" "$WORK/t.json"
# a faithful simulator's layout: a real quote, report_data and RTMR3 replaced, the marker in it
$MR --local "$L/kms" --real-layout "$FX/dstack-tdx-lite-getquote.json" >"$WORK/sim12.json" || exit 1
$MR --local "$L/kms" --real-layout "$FX/dstack-tdx-lite-getquote.json" --marker-at end >"$WORK/simend.json" || exit 1
check "real-layout simulated quote (marker in the header's user data)" pass "${K[@]}" "$WORK/sim12.json"
checkout "  ... its Intel signature reported broken, as expected" '^note quote signature: not valid, as expected of a simulated quote' \
	"${K[@]}" "$WORK/sim12.json"
check "  ... without --allow-simulated" quote "${KR[@]}" "$WORK/sim12.json"
check "real-layout simulated quote (marker in the padding)" pass "${K[@]}" "$WORK/simend.json"
check "  ... without --allow-simulated" quote "${KR[@]}" "$WORK/simend.json"
tamper "$WORK/sim12.json" "$WORK/t.json" "r.quote.quote=r.quote.quote.split('$MARK16').join('00'.repeat(16));r.quote.simulated=false"
check "  ... marker in the header zeroed" "quote signature" "${K[@]}" "$WORK/t.json"
tamper "$WORK/simend.json" "$WORK/t.json" "r.quote.quote=r.quote.quote.split('$MARK16').join('00'.repeat(16));r.quote.simulated=false"
check "  ... marker in the padding zeroed" "quote signature" "${K[@]}" "$WORK/t.json"
# receipts around real quotes (fixtures): every check before report_data passes, then report_data fails
ev() { node -e 'const j=require(process.argv[1]);const e=JSON.parse(j.event_log).find(e=>e.event===process.argv[2]);
	const p=Buffer.from(e.event_payload,"hex");console.log(process.argv[2]==="key-provider"?JSON.parse(p).id:p.toString("hex"))' "$1" "$2"; }
LITE=$FX/dstack-tdx-lite-getquote.json
LITE_AT=(--at 2026-07-01T00:00:00Z)
LITE_BODY=(--app-id "0x$(ev "$LITE" app-id)" --set "compose_hash=\"$(ev "$LITE" compose-hash)\"" --set "instance_id=\"$(ev "$LITE" instance-id)\"")
$MR --local "$L/kms" --quote-file "$LITE" "${LITE_BODY[@]}" >"$WORK/real.json" || exit 1
check "receipt around dstack's real quote (KMS mode): fails only at report_data" report_data \
	"${KR[@]}" --kms-id "$(ev "$LITE" key-provider)" "${LITE_AT[@]}" "$WORK/real.json"
for re in '^ok   quote signature: by the attestation key' '^ok   pck chain: Intel SGX PCK Certificate <- Intel SGX PCK Platform CA <- Intel SGX Root CA' \
	'^ok   rtmr3: ' '^ok   event app-id = body.app_id ' '^ok   event compose-hash = body.compose_hash ' \
	'^ok   event instance-id = body.instance_id ' '^ok   event key-provider: kms, id = --kms-id ' '^note tcb: not evaluated'; do
	RC=1 checkout "  ... $re" "$re" "${KR[@]}" --kms-id "$(ev "$LITE" key-provider)" "${LITE_AT[@]}" "$WORK/real.json"
done
check "  ... no --kms-id: the quote's KMS is not the one given" key-provider "${KR[@]}" "${LITE_AT[@]}" "$WORK/real.json"
check "  ... --allow-simulated does not change a real quote's verdict" report_data "${K[@]}" --kms-id "$(ev "$LITE" key-provider)" \
	"${LITE_AT[@]}" "$WORK/real.json"
$MR --local "$L/kms" --quote-file "$LITE" --set "compose_hash=\"$(ev "$LITE" compose-hash)\"" \
	--set "instance_id=\"$(ev "$LITE" instance-id)\"" >"$WORK/t.json"
check "a real quote whose event log names another app than the receipt" app-id "${KR[@]}" "${LITE_AT[@]}" "$WORK/t.json"
$MR --local "$L/kms" --quote-file "$LITE" --event-log "$FX/dstack-quote-report.json" "${LITE_BODY[@]}" >"$WORK/t.json"
check "a real quote with another CVM's event log" rtmr3 "${KR[@]}" "${LITE_AT[@]}" "$WORK/t.json"
tamper "$WORK/real.json" "$WORK/t.json" 'r.quote.quote=r.quote.quote.slice(0,-2)+"01"'
check "a real quote with a non-zero byte in its padding" quote "${KR[@]}" "${LITE_AT[@]}" "$WORK/t.json"
tamper "$WORK/real.json" "$WORK/t.json" 'r.quote.quote=flip(r.quote.quote,2*(636+20))'
check "a real quote with its signature flipped" "quote signature" "${KR[@]}" "${LITE_AT[@]}" "$WORK/t.json"
REP=$FX/dstack-quote-report.json
$MR --local "$L/kms" --quote-file "$REP" --app-id "0x$(ev "$REP" app-id)" --set "compose_hash=\"$(ev "$REP" compose-hash)\"" \
	--set "instance_id=\"$(ev "$REP" instance-id)\"" >"$WORK/t.json"
check "receipt around a real quote of a CVM whose keys are local (local-sgx), with collateral" key-provider "${KR[@]}" "${C18[@]}" "$WORK/t.json"
RC=1 checkout "  ... its TCB evaluated on the way" '^ok   tcb: UpToDate' "${KR[@]}" "${C18[@]}" "$WORK/t.json"
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
K=(--kms-root "$DSTACK_TEST_KMS_ROOT" --kms-id "$DSTACK_TEST_KMS_ID" --allow-simulated)	# the simulator's quotes, its KMS CA key
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
check "compose-hash not pinned (re-signed): the quote's compose-hash event says otherwise" compose-hash "${K[@]}" "${R[@]}" "$WORK/t.json"
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
	# the owner registers the file on the consortium contract (ledger 'chain')
	"$ROOT/tools/register-dataset.sh" "$WORK/out/t.dseal" "$WORK/env/owner1.key" || flunk "registering the dataset"
	q -c 'SELECT dstack_run($$SELECT k, dp_count(patient_id, 0.2) FROM st GROUP BY k$$)' >"$WORK/r1.json"
	q -c 'SELECT dstack_run($$SELECT dp_count(patient_id, 0.2) FROM st /* caf\u00e9 */$$)' >"$WORK/r2.json"
	check "dstack_run receipt verifies offline" pass "${K[@]}" "$WORK/r1.json"
	check "  ... not without --allow-simulated (the simulator's quote)" quote --kms-root "$DSTACK_TEST_KMS_ROOT" "$WORK/r1.json"
	for re in '^ok   rtmr3: ' '^ok   event app-id = body.app_id ' '^ok   event compose-hash = body.compose_hash ' \
		'^ok   event instance-id = body.instance_id ' '^ok   event key-provider: kms, id = --kms-id ' '^ok   report_data = '; do
		checkout "  ... $re" "$re" "${K[@]}" "$WORK/r1.json"
	done
	check "  ... and against the chain" pass "${K[@]}" "${R[@]}" "$WORK/r1.json"
	checkout "  ... its charge is on the consortium contract, equal to the receipt" '^ok   charge [0-9]* on chain at block ' \
		"${K[@]}" "${R[@]}" "$WORK/r1.json"
	# the KMS root and the KMS id read from dstack's KMS contract instead of given
	check "  ... with the KMS root and id read from the KMS contract (--kms-contract)" pass --allow-simulated \
		--kms-contract "$DSTACK_TEST_KMS_CONTRACT" "${R[@]}" "$WORK/r1.json"
	check "  ... not when --kms-root names another key than the KMS contract records" "kms root" --allow-simulated \
		--kms-contract "$DSTACK_TEST_KMS_CONTRACT" --kms-root "$(cat "$L/kms/root.pub")" "${R[@]}" "$WORK/r1.json"
	# re-signed receipts citing r1's on-chain charge: consistent, then each field changed
	cj=$(node -e 'const b=JSON.parse(require("fs").readFileSync(process.argv[1])).body;process.stdout.write(JSON.stringify({charge:b.charge,epsilon:b.epsilon,datasets:b.datasets,query:b.query}))' "$WORK/r1.json")
	mr_charge() { # mr_charge OUT [--set ...]: a receipt with r1's charge, query, epsilon and datasets
		local out=$1; shift
		$MR --socket "$DSTACK_TEST_SOCKET" --rpc "$DSTACK_TEST_RPC" \
			--set "charge=$(node -e 'console.log(JSON.stringify(JSON.parse(process.argv[1]).charge))' "$cj")" \
			--set "epsilon=$(node -e 'console.log(JSON.stringify(JSON.parse(process.argv[1]).epsilon))' "$cj")" \
			--set "datasets=$(node -e 'console.log(JSON.stringify(JSON.parse(process.argv[1]).datasets))' "$cj")" \
			--query "$(node -e 'console.log(JSON.parse(process.argv[1]).query)' "$cj")" "$@" >"$out"
	}
	mr_charge "$WORK/c.json"
	check "a re-signed receipt citing that charge verifies against the chain" pass "${K[@]}" "${R[@]}" "$WORK/c.json"
	mr_charge "$WORK/c.json" --set 'epsilon.charged="0.010000"'
	check "  ... with another epsilon (re-signed)" charge "${K[@]}" "${R[@]}" "$WORK/c.json"
	mr_charge "$WORK/c.json" --query 'SELECT dp_count(patient_id, 0.2) FROM st'
	check "  ... for another query (re-signed)" charge "${K[@]}" "${R[@]}" "$WORK/c.json"
	mr_charge "$WORK/c.json" --set 'charge.nonce="0x1111111111111111111111111111111111111111111111111111111111111111"'
	check "  ... with another nonce (re-signed)" charge "${K[@]}" "${R[@]}" "$WORK/c.json"
	mr_charge "$WORK/c.json" --set 'datasets=[]'
	check "  ... naming other datasets (re-signed)" charge "${K[@]}" "${R[@]}" "$WORK/c.json"
	mr_charge "$WORK/c.json" --set 'charge.index=999'
	check "  ... citing a charge that does not exist (re-signed)" charge "${K[@]}" "${R[@]}" "$WORK/c.json"
	check "two dstack_run receipts form an audit chain" pass "${K[@]}" "${R[@]}" --chain "$WORK/r1.json" "$WORK/r2.json"
	check "  ... not in the other order" "audit chain" "${K[@]}" --chain "$WORK/r2.json" "$WORK/r1.json"
	tamper "$WORK/r1.json" "$WORK/t.json" 'r.body.result.rows[0][1]=String(Number(r.body.result.rows[0][1])+1)'
	check "dstack_run receipt: result edited" "body hash" "${K[@]}" "$WORK/t.json"
	tamper "$WORK/r1.json" "$WORK/t.json" 'r.quote.quote=flip(r.quote.quote,2*568+1)'
	check "dstack_run receipt: quote edited (report_data inside it)" report_data "${K[@]}" "$WORK/t.json"
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
check "a receipt citing a revoked block" consortium "${KR[@]}" --allow-simulated "${R[@]}" "$WORK/t.json"

# ---------------------------------------------------------------- the ledger
echo "# the privacy-budget ledger on chain (test-ledger.sh)"
out=$("$HERE/test-ledger.sh" 2>&1); rc=$?
printf '%s\n' "$out" | sed '$d'
p=$(printf '%s\n' "$out" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p' | tail -1)
f=$(printf '%s\n' "$out" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p' | tail -1)
if [ -z "$p" ]; then flunk "test-ledger.sh did not finish (rc $rc)"; p=0 f=0; fi
[ $rc -ne 0 ] && [ "$f" -eq 0 ] && flunk "test-ledger.sh exited $rc"
passed=$((passed + p)) failed=$((failed + f))

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
