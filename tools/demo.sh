#!/usr/bin/env bash
# tools/demo.sh: the end-to-end demo (README's first command runs it through
# `./dev demo`).  Everything runs on this machine:
#   1. anvil (a local EVM node) and the cardio-renal consortium contract:
#      4 hospitals, threshold 3, compose-hash pinned, epsilon 1.5
#   2. the owners approve on chain
#   3. the dstack guest-agent/KMS simulator boots the analysis CVM's recipe (its
#      KMS asks dstack's KMS contract, which asks the consortium, once, at boot)
#      and publishes one recipient key per owner (signature chain to the KMS root)
#   4. four silo PostgreSQL clusters each generate their table and seal it with
#      dstack_seal, driven by a recipe file; dstack_seal_verify checks each file
#   5. the CVM side: every statement asks the KMS contract the KMS's question
#      and reads the consortium; each dataset unwraps under the CVM's recipe and
#      not under a different compose-hash
#   6. one owner revokes; the next query is refused by that per-statement
#      check (the booted CVM still holds its keys, as on real dstack; the KMS
#      refuses to sign a new TLS certificate)
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
	# the owner registers this version on the consortium contract: its own budget, on chain
	read -r dsid mhash < <(node "$ROOT/tools/dseal-id.mjs" "$WORK/published/$t.dseal")
	if "$ROOT/tools/register-dataset.sh" "$WORK/published/$t.dseal" "$WORK/env/owner$i.key"; then
		expect "owner $i registered $t on chain (dataset $dsid, manifest ${mhash:0:18}...)" 0
	else
		expect "owner $i registered $t on chain" 1
	fi
	SUMMARY+=("$(printf '%-22s %-8s %9s %10s  %s' "${HOSPITALS[$((i - 1))]}" "$t" "$rows" "$bytes" "${valid%% *}")")
done

# ---- 5: the CVM side ----------------------------------------------------------
step "CVM: PostgreSQL with dstack_fdw mounts the published datasets after checking the chain"
cvm=$WORK/cvm cvm_port=$((20000 + RANDOM % 20000))
pg_up "$cvm" "$cvm_port"
SILOS+=("$cvm")
cq() { pg_psql "$cvm" "$cvm_port" -d postgres "$@"; }
cq -c "CREATE EXTENSION dstack_fdw" \
	-c "CREATE SERVER cardio FOREIGN DATA WRAPPER dstack_fdw OPTIONS (rpc_url '$DSTACK_TEST_RPC',
	    guest_agent '$DSTACK_TEST_SOCKET', kms_root_pubkey '$DSTACK_TEST_KMS_ROOT', app_contract '$DSTACK_TEST_APP_ID',
	    kms_contract '$DSTACK_TEST_KMS_CONTRACT', chain_id '$DSTACK_TEST_CHAIN_ID')" \
	-c "CREATE ROLE analyst LOGIN" \
	-c "IMPORT FOREIGN SCHEMA sealed FROM SERVER cardio INTO public OPTIONS (directory '$WORK/published')" \
	-c "GRANT SELECT ON ehr, imaging, assays, samples TO analyst" >/dev/null
echo "   imported: $(cq -At -c "SELECT string_agg(foreign_table_name, ', ' ORDER BY 1) FROM information_schema.foreign_tables")"
consortia() { cq -c "SELECT server, approvals || '/' || threshold AS approvals, approval, revocation, recipe, owners, kms, overall FROM dstack_consortia" | sed 's/^/   /'; }
consortia
expect "the consortium matches every mount criterion" "$([ "$(cq -At -c "SELECT overall FROM dstack_consortia")" = match ]; echo $?)"
aq() { psql -X -q -h "$cvm" -p "$cvm_port" -U analyst -d postgres "$@"; }

if aq -At -c "SELECT patient_id, egfr FROM ehr LIMIT 3" >/dev/null 2>"$WORK/plain.err"; then
	expect "a plain SELECT of sealed rows is refused" 1
else
	expect "a plain SELECT of sealed rows is refused: $(head -1 "$WORK/plain.err" | sed 's/^ERROR:  //')" 0
fi

COHORT='SELECT e.sex, dp_count(e.patient_id, 0.25) AS patients, dp_avg(e.egfr, 0, 150, 0.25) AS mean_egfr
  FROM ehr e JOIN imaging i USING (patient_id) JOIN assays a USING (patient_id)
 WHERE i.lvef < 40 AND a.assay = '"'nt-probnp'"' GROUP BY e.sex'
step "CVM: the cardio-renal cohort query, through dstack_run() (epsilon 0.25 + 0.25 for the aggregates, 0.5 for releasing the groups: 1.0 of 1.5)"
echo "$COHORT" | sed 's/^/   /'
t1=$(date +%s%N)
aq -At -c "SELECT dstack_run(\$q\$$COHORT\$q\$)" >"$WORK/receipt.json"
t2=$(date +%s%N)
node -e '
	const r = JSON.parse(require("fs").readFileSync(process.argv[1]));
	const b = r.body;
	console.log("   answer (" + b.result.columns.join(", ") + "):");
	for (const row of b.result.rows) console.log("     " + row.join("  "));
	console.log("   epsilon charged " + b.epsilon.charged + ", left " + b.epsilon.left + " of " + b.epsilon.total +
		"; datasets: " + b.datasets.map(d => d.table).join(", "));
	console.log("   chain " + b.chain.chain_id + " block " + b.chain.block_number + ", approvals " + b.chain.approvals +
		"/" + b.chain.threshold + "; receipt " + r.body_sha256.slice(0, 16) + "... signed by " +
		r.signature.public_key.slice(0, 16) + "..., quote " + (r.quote.simulated ? "SIMULATED" : "TDX"));' "$WORK/receipt.json"
echo "   dstack_run took $(( (t2 - t1) / 1000000 )) ms"
expect "dstack_run returned a receipt over 3 datasets" \
	"$(node -e 'const b=JSON.parse(require("fs").readFileSync(process.argv[1])).body;process.exit(b.datasets.length===3&&b.result.rows.length>0?0:1)' "$WORK/receipt.json"; echo $?)"

step "anyone verifies the receipt: offline against the KMS root, and against the chain"
if "$ROOT/tools/dstack-verify/dstack-verify" --allow-simulated --kms-root "$DSTACK_TEST_KMS_ROOT" --kms-id "$DSTACK_TEST_KMS_ID" --rpc "$DSTACK_TEST_RPC" \
	"$WORK/receipt.json" | sed 's/^/   /'; then
	expect "dstack-verify accepts the receipt" 0
else
	expect "dstack-verify accepts the receipt" 1
fi
node -e '
	const fs = require("fs"); const r = JSON.parse(fs.readFileSync(process.argv[1]));
	r.body.result.rows[0][1] = String(Number(r.body.result.rows[0][1]) + 1);
	fs.writeFileSync(process.argv[2], JSON.stringify(r));' "$WORK/receipt.json" "$WORK/forged.json"
if "$ROOT/tools/dstack-verify/dstack-verify" --allow-simulated --kms-root "$DSTACK_TEST_KMS_ROOT" --kms-id "$DSTACK_TEST_KMS_ID" "$WORK/forged.json" >"$WORK/forged.out" 2>&1; then
	expect "a receipt with an edited result is rejected" 1
else
	expect "a receipt with an edited result is rejected: $(grep FAIL "$WORK/forged.out" | head -1)" 0
fi

step "the budget: a second query asking epsilon 1.0 exceeds the 0.5 left"
if aq -At -c "SELECT dstack_run(\$q\$$COHORT\$q\$)" >/dev/null 2>"$WORK/budget.err"; then
	expect "the ledger refuses a query over budget" 1
else
	expect "the ledger refuses a query over budget: $(head -1 "$WORK/budget.err" | sed 's/^ERROR:  //')" 0
fi
SMALL='SELECT dp_count(patient_id, 0.25) AS patients FROM ehr'
aq -At -c "SELECT dstack_run(\$q\$$SMALL\$q\$)" >"$WORK/receipt2.json"
expect "a query within the remaining budget is answered (epsilon 0.25)" "$([ -s "$WORK/receipt2.json" ]; echo $?)"
if "$ROOT/tools/dstack-verify/dstack-verify" --allow-simulated --kms-root "$DSTACK_TEST_KMS_ROOT" --kms-id "$DSTACK_TEST_KMS_ID" --chain "$WORK/receipt.json" \
	"$WORK/receipt2.json" >/dev/null 2>&1; then
	expect "the two receipts form a hash chain (attested run history)" 0
else
	expect "the two receipts form a hash chain (attested run history)" 1
fi

step "one budget on chain: a second CVM database of the consortium starts with an empty local ledger"
cq -c "CREATE DATABASE cvm2" >/dev/null
pg_psql "$cvm" "$cvm_port" -d cvm2 -c "CREATE EXTENSION dstack_fdw" \
	-c "CREATE SERVER cardio FOREIGN DATA WRAPPER dstack_fdw OPTIONS (rpc_url '$DSTACK_TEST_RPC',
	    guest_agent '$DSTACK_TEST_SOCKET', kms_root_pubkey '$DSTACK_TEST_KMS_ROOT', app_contract '$DSTACK_TEST_APP_ID',
	    kms_contract '$DSTACK_TEST_KMS_CONTRACT', chain_id '$DSTACK_TEST_CHAIN_ID')" \
	-c "IMPORT FOREIGN SCHEMA sealed FROM SERVER cardio INTO public OPTIONS (directory '$WORK/published')" \
	-c "GRANT SELECT ON ehr, imaging, assays, samples TO analyst" >/dev/null
echo "   cvm2's local ledger: $(pg_psql "$cvm" "$cvm_port" -d cvm2 -At -c "SELECT count(*) FROM dstack_budget") rows"
if psql -X -q -h "$cvm" -p "$cvm_port" -U analyst -d cvm2 -At -c "SELECT dstack_run(\$q\$$COHORT\$q\$)" >/dev/null 2>"$WORK/cvm2.err"; then
	expect "the chain refuses the cohort query in the second database (ehr has 0.25 of 1.5 left on chain)" 1
else
	expect "the chain refuses the cohort query in the second database: $(head -1 "$WORK/cvm2.err" | sed 's/^ERROR:  //')" 0
fi
if "$ROOT/tools/dstack-verify/dstack-verify" --ledger --rpc "$DSTACK_TEST_RPC" --app "$DSTACK_TEST_APP_ID" >"$WORK/ledger.out" 2>&1; then
	sed 's/^/   /' "$WORK/ledger.out" | tail -8
	expect "dstack-verify --ledger totals the spend from the chain alone: within every budget" 0
else
	sed 's/^/   /' "$WORK/ledger.out" | tail -8
	expect "dstack-verify --ledger totals the spend from the chain alone" 1
fi

# ---- 6: revocation ----------------------------------------------------------
step "owner 4 revokes on chain (one transaction, final)"
"$ROOT/contracts/scripts/consortium.sh" revoke --rpc "$DSTACK_TEST_RPC" --key "$DSTACK_TEST_OWNER4_KEY" \
	--app "$DSTACK_TEST_APP_ID" --reason "demo: withdrawal of consent" >/dev/null 2>&1
if aq -At -c "SELECT dstack_run(\$q\$$SMALL\$q\$)" >/dev/null 2>"$WORK/revoked.err"; then
	expect "the next query is refused after revocation" 1
else
	expect "the next query is refused after revocation: $(head -1 "$WORK/revoked.err" | sed 's/^ERROR:  //')" 0
fi
consortia
expect "the consortia view grades the revoked consortium a miss" "$([ "$(cq -At -c "SELECT overall FROM dstack_consortia")" = miss ]; echo $?)"
getkey=$(curl -s --unix-socket "$DSTACK_TEST_SOCKET" -X POST http://dstack/GetKey -H 'Content-Type: application/json' \
	-d '{"path":"dstack-seal/v1/x","purpose":"x","algorithm":"secp256k1"}')
expect "the booted CVM still holds its keys (the KMS released them at boot): only the per-statement check stops it" \
	"$(echo "$getkey" | grep -q '"key"'; echo $?)"
tls_refused=$(curl -s --unix-socket "$DSTACK_TEST_SOCKET" -X POST http://dstack/GetTlsKey -H 'Content-Type: application/json' \
	-d '{"subject":"cvm"}')
expect "the KMS refuses to sign a new TLS key: $(echo "$tls_refused" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{console.log(JSON.parse(s).error)}catch{console.log(s)}})')" \
	"$(echo "$tls_refused" | grep -q 'Boot denied'; echo $?)"

step "summary"
printf '%-22s %-8s %9s %10s  %s\n' "silo" "table" "rows" "bytes" "verified"
printf '%s\n' "${SUMMARY[@]}"
node -e '
	const fs = require("fs");
	for (const f of process.argv.slice(1)) {
		const b = JSON.parse(fs.readFileSync(f)).body;
		console.log("receipt " + b.sequence + ": " + b.result.rows.length + " group(s), epsilon " + b.epsilon.charged +
			" charged, " + b.epsilon.left + " left; datasets " + b.datasets.length + "; verified by dstack-verify");
	}' "$WORK/receipt.json" "$WORK/receipt2.json"
echo "after revocation: queries refused, new TLS keys refused, consortium graded miss"
echo "$ok passed, $bad failed ($((SECONDS - T0)) s)"
if [ "$TEST" = 1 ] && [ "$bad" -gt 0 ]; then exit 1; fi
exit 0
