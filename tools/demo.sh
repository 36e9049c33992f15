#!/usr/bin/env bash
# tools/demo.sh: the end-to-end demo (README's first command runs it through
# `./dev demo`).  Everything runs on this machine:
#   1. anvil (a local EVM node) and the cardio-renal consortium contract:
#      4 hospitals, threshold 3, compose-hash pinned, epsilon 1.5
#   2. the owners approve on chain
#   3. the dstack guest-agent/KMS simulator boots the analysis CVM's recipe and
#      publishes one recipient key per owner (signature chain to the KMS root)
#   4. four silo PostgreSQL clusters each generate their table and seal it with
#      dstack_seal, driven by a recipe file; dstack_seal_verify checks each file
#   5. the CVM side: keys come from the guest agent only while the contract
#      allows it; each dataset unwraps under the CVM's recipe and not under a
#      different compose-hash
#   6. one owner revokes; the next key request is refused
# Usage: tools/demo.sh [--scale small|seed] [--keep] [--test]
#   small (default): 1/100 of the seed sizes; seed: 820k EHR, 410k imaging,
#   230k assays, 56k samples.  --test: fail (exit 1) on any unexpected result.
#   --keep: leave the clusters, chain and files running in the work directory.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$ROOT/tools/lib/pg.sh"
BIN=$ROOT/node_modules/.bin

SCALE=small KEEP=0 TEST=0
while [ $# -gt 0 ]; do
	case $1 in
		--scale) SCALE=$2; shift 2 ;;
		--keep) KEEP=1; shift ;;
		--test) TEST=1; shift ;;
		*) echo "usage: tools/demo.sh [--scale small|seed] [--keep] [--test]" >&2; exit 2 ;;
	esac
done
case $SCALE in
	seed) SIZES=(820000 410000 230000 56000) ;;
	small) SIZES=(8200 4100 2300 560) ;;
	*) echo "demo: --scale is small or seed" >&2; exit 2 ;;
esac
HOSPITALS=("St Olaf Cardiology" "Rhine Renal Institute" "Lakeside Assay Lab" "Northgate Biobank")
TABLES=(ehr imaging assays samples)

WORK=$(mktemp -d /tmp/pg_dstack_demo.XXXXXX)
chmod 755 "$WORK"
SILOS=()
cleanup() {
	[ "$KEEP" = 1 ] && { echo "demo: left running in $WORK (tools/testenv.sh down $WORK/env to stop the chain)"; return; }
	for d in "${SILOS[@]}"; do pg_down "$d"; done
	"$ROOT/tools/testenv.sh" down "$WORK/env" >/dev/null 2>&1 || true
	rm -rf "$WORK"
}
trap cleanup EXIT

T0=$SECONDS
step() { printf '\033[1m[%3ds] %s\033[0m\n' $((SECONDS - T0)) "$*"; }
ok=0 bad=0 SUMMARY=()
expect() { # expect DESCRIPTION CONDITION-RESULT(0/1)
	if [ "$2" = 0 ]; then ok=$((ok + 1)); printf '   ok    %s\n' "$1"
	else bad=$((bad + 1)); printf '   FAIL  %s\n' "$1"; fi
}

# ---- 1-3: chain, approvals, simulator -------------------------------------
step "starting anvil, deploying the consortium (4 owners, k=3, epsilon 1.5), 4 approvals, dstack simulator"
"$ROOT/tools/testenv.sh" up "$WORK/env" --owners 4 --threshold 3 --approve 4 >/dev/null
. "$WORK/env/env.sh"
state=$("$ROOT/contracts/scripts/consortium.sh" state --rpc "$DSTACK_TEST_RPC" --app "$DSTACK_TEST_APP_ID")
echo "   app id (consortium contract): $DSTACK_TEST_APP_ID"
echo "   compose-hash (pinned):        $DSTACK_TEST_COMPOSE_HASH"
echo "   KMS root public key:          $DSTACK_TEST_KMS_ROOT"
echo "   on-chain state:               $state"
expect "contract reports 4 of 3 approvals, not revoked" \
	"$(node -e 'const s=JSON.parse(process.argv[1]);process.exit(Number(s.approvals)===4&&Number(s.threshold)===3&&!s.revoked?0:1)' "$state"; echo $?)"

# ---- 4: silos seal ----------------------------------------------------------
gen_sql() { # gen_sql TABLE ROWS: deterministic synthetic data of one silo
	local n=$2
	case $1 in
		ehr) echo "CREATE TABLE ehr AS SELECT g::int8 AS patient_id, (30 + (g * 37) % 60)::int2 AS age,
			CASE WHEN g % 2 = 0 THEN 'F' ELSE 'M' END::text AS sex,
			round((15 + (g::int8 * 7919) % 90 + (g % 10) / 10.0)::numeric, 1)::float8 AS egfr,
			((g::int8 * 31) % 600 / 100.0 + 0.5)::numeric(5,2) AS creatinine,
			(g % 7 = 0) AS diabetes, CASE WHEN g % 13 = 0 THEN NULL ELSE (100 + g % 90)::int4 END AS systolic_bp,
			date '2018-01-01' + (g % 2000) AS admitted, ('N18.' || (1 + g % 5))::varchar(8) AS dx_code
			FROM generate_series(1, $n) g;" ;;
		imaging) echo "CREATE TABLE imaging AS SELECT (1 + (g::int8 * 2654435761) % ${SIZES[0]})::int8 AS patient_id,
			md5('img' || g)::uuid AS study_id, (ARRAY['echo','mri','ct'])[1 + g % 3] AS modality,
			(25 + (g * 13) % 45)::float4 AS lvef, timestamptz '2019-01-01 00:00+00' + g * interval '17 minutes' AS taken_at
			FROM generate_series(1, $n) g;" ;;
		assays) echo "CREATE TABLE assays AS SELECT (1 + (g::int8 * 40503) % ${SIZES[0]})::int8 AS patient_id,
			(ARRAY['nt-probnp','troponin','cystatin-c'])[1 + g % 3] AS assay,
			((g::int8 * 104729) % 5000 / 10.0)::float8 AS value, timestamp '2020-01-01' + g * interval '1 hour' AS measured_at
			FROM generate_series(1, $n) g;" ;;
		samples) echo "CREATE TABLE samples AS SELECT (1 + (g::int8 * 7) % ${SIZES[0]})::int8 AS patient_id,
			md5('smp' || g)::uuid AS sample_id, (ARRAY['serum','plasma','urine','dna'])[1 + g % 4] AS kind,
			((g % 50) / 10.0 + 0.5)::numeric(4,1) AS volume_ml, decode(md5('b' || g), 'hex') AS barcode
			FROM generate_series(1, $n) g;" ;;
	esac
}

mkdir -p "$WORK/published"
[ "$(id -u)" = 0 ] && chown postgres: "$WORK/published"
for i in 1 2 3 4; do
	t=${TABLES[$((i - 1))]} n=${SIZES[$((i - 1))]} dir=$WORK/silo$i port=$((20000 + RANDOM % 20000))
	step "silo $i (${HOSPITALS[$((i - 1))]}): generating $n rows of $t, sealing with dstack_seal"
	pg_up "$dir" "$port"
	SILOS+=("$dir")
	# the recipe file the silo DBA installs: values published by the consortium and the CVM
	node -e '
		const [kms, app, ch, key, out, rcp] = process.argv.slice(1);
		console.log(JSON.stringify({kms_root_pubkey: kms, app_id: app, compose_hash: ch,
			owner_key_file: key, output_dir: out, recipient: require(rcp)}, null, 2));' \
		"$DSTACK_TEST_KMS_ROOT" "$DSTACK_TEST_APP_ID" "$DSTACK_TEST_COMPOSE_HASH" \
		"$WORK/env/owner$i.key" "$WORK/published" "$WORK/env/recipient$i.json" >"$dir/recipe.json"
	chmod 644 "$dir/recipe.json"
	pg_psql "$dir" "$port" -d postgres -c "CREATE EXTENSION dstack_seal;" -c "$(gen_sql "$t" "$n")" >/dev/null
	t1=$SECONDS
	manifest=$(pg_psql "$dir" "$port" -d postgres -At \
		-c "SET dstack_seal.recipe_file = '$dir/recipe.json'" \
		-c "SET dstack_seal.progress_interval = $((n / 4 + 1))" \
		-c "SELECT dstack_seal('$t')" 2> >(sed 's/^/   /' >&2))
	report=$(pg_psql "$dir" "$port" -d postgres -At -c "SELECT dstack_seal_verify('$WORK/published/$t.dseal')")
	rows=$(node -e 'console.log(JSON.parse(process.argv[1]).row_count)' "$manifest")
	valid=$(node -e 'const r=JSON.parse(process.argv[1]);console.log(r.valid+" ("+r.chunks_checked+" chunks, signature "+r.signature+", recipient chain "+r.recipient_chain+")")' "$report")
	bytes=$(stat -c %s "$WORK/published/$t.dseal")
	echo "   sealed $rows rows into $t.dseal ($bytes bytes) in $((SECONDS - t1)) s; verify: $valid"
	expect "silo $i sealed all $n rows and the file verifies without keys" \
		"$([ "$rows" = "$n" ] && [ "${valid%% *}" = true ]; echo $?)"
	SUMMARY+=("$(printf '%-22s %-8s %9s %10s  %s' "${HOSPITALS[$((i - 1))]}" "$t" "$rows" "$bytes" "${valid%% *}")")
done

# ---- 5: the CVM side ----------------------------------------------------------
step "CVM: fetching each owner's key from the guest agent (released only while the contract allows it)"
getkey() { # getkey OWNER OUTFILE: GetKey at the owner's recipient path, as the CVM does
	local owner_hex
	owner_hex=$(echo "${1#0x}" | tr 'A-F' 'a-f')
	curl -s --unix-socket "$DSTACK_TEST_SOCKET" -X POST http://dstack/GetKey -H 'Content-Type: application/json' \
		-d "{\"path\":\"dstack-seal/v1/$owner_hex\",\"purpose\":\"dstack-seal/v1/$owner_hex\",\"algorithm\":\"secp256k1\"}" |
		node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const r=JSON.parse(s);
			if(!r.key){console.error(r.error);process.exit(1)}console.log(r.key.replace(/^0x/,""))})' >"$2"
}
for i in 1 2 3 4; do
	t=${TABLES[$((i - 1))]} n=${SIZES[$((i - 1))]}
	owner=$(eval echo "\$DSTACK_TEST_OWNER${i}_ADDR")
	getkey "$owner" "$WORK/cvm$i.key"
	decrypted=$("$ROOT/tools/dseal-dump/dseal-dump" --key-file "$WORK/cvm$i.key" \
		--app-id "$DSTACK_TEST_APP_ID" --compose-hash "$DSTACK_TEST_COMPOSE_HASH" \
		--kms-root "$DSTACK_TEST_KMS_ROOT" "$WORK/published/$t.dseal" | wc -l)
	expect "$t (owner $owner) unwraps under the CVM's recipe: $decrypted rows" "$([ "$decrypted" = "$n" ]; echo $?)"
	other=0x$(printf '%064d' 0)
	if "$ROOT/tools/dseal-dump/dseal-dump" --key-file "$WORK/cvm$i.key" --app-id "$DSTACK_TEST_APP_ID" \
		--compose-hash "$other" "$WORK/published/$t.dseal" >/dev/null 2>"$WORK/wrong.err"; then
		expect "$t refuses a CVM with another compose-hash" 1
	else
		expect "$t refuses a CVM with another compose-hash ($(head -1 "$WORK/wrong.err"))" 0
	fi
done

# ---- 6: revocation ----------------------------------------------------------
step "owner 4 revokes on chain (one transaction, final)"
"$ROOT/contracts/scripts/consortium.sh" revoke --rpc "$DSTACK_TEST_RPC" --key "$DSTACK_TEST_OWNER4_KEY" \
	--app "$DSTACK_TEST_APP_ID" --reason "demo: withdrawal of consent" >/dev/null
if getkey "$DSTACK_TEST_OWNER1_ADDR" "$WORK/revoked.key" 2>"$WORK/revoked.err"; then
	expect "the guest agent refuses keys after revocation" 1
else
	expect "the guest agent refuses keys after revocation: $(tail -1 "$WORK/revoked.err")" 0
fi

step "summary"
printf '%-22s %-8s %9s %10s  %s\n' "silo" "table" "rows" "bytes" "verified"
printf '%s\n' "${SUMMARY[@]}"
echo "$ok passed, $bad failed ($((SECONDS - T0)) s)"
if [ "$TEST" = 1 ] && [ "$bad" -gt 0 ]; then exit 1; fi
exit 0
