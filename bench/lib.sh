# bench/lib.sh: the machinery every benchmark shares.  Source it after setting
# ROOT (and BENCH, the bench's name); it brings up a one-owner consortium
# (anvil, contract, simulator) and a throw-away cluster under a mktemp
# directory, removes everything on exit, and defines:
#
#   q ARGS...            psql -At against the cluster (ON_ERROR_STOP)
#   RECIPE               the SET statements of owner 1's sealing recipe
#   SERVER_SQL [opts]    CREATE SERVER sealed ... for the test consortium
#   gen_cohort T ROWS    realistic random table T (see below), VACUUM ANALYZEd
#   gen_imaging T FROM F a second table for joins: a random F-fraction of FROM's patient_ids
#   mount_sealed         IMPORT FOREIGN SCHEMA of $WORK/out into schema s
#   sealed_cohort ROWS   the cohort table, sealed, mounted as s.cohort, sizes printed
#   size_report T FILE   heap size, sealed size and their ratio (BENCH line)
#   check_rows H F       every row of foreign table F equals heap table H
#   check_answer N S1 Q1 S2 Q2   the full answers of two queries agree (every field;
#                        numbers with a fraction within a relative 1e-8); fails loudly otherwise
#   check_workers N S Q W  EXPLAIN ANALYZE shows "Workers Launched: W"
#   variant N SETUP SQL [WORKERS]  declare a timed SQL variant
#   shell_variant N CMD [N2...]  a variant timed by CMD, which prints "@@T N ms"
#                        (and "@@T N2 ms" for more figures it times itself)
#   run_variants         REPS rounds (after one warm-up round), each variant once
#                        per round, order rotated per round, all in one warm psql
#                        session; fills MED[N], MIN[N], MAX[N]; prints them and
#                        one BENCH line per variant
#   best_of N1 N2...     the name with the lowest median
#   target NAME VALUE OP LIMIT [UNIT] [NOTE]   TARGET line + BENCH line
#
# Every figure is also printed as one machine-readable line
#   BENCH {"bench":"scan","figure":"...","median_ms":..,"min_ms":..,"max_ms":..,"n":..,"rows":..,"load":..}
# bench/run-all.sh collects those.
#
# The data (gen_cohort): random values, reproducible (setseed), shaped like a
# clinical cohort rather than generate_series arithmetic, so zstd compresses it
# about as much as real data (bench prints the sealed/heap size ratio):
#   patient_id int8  a random permutation of 1..ROWS (rows stored in random order)
#   age     int4     ~normal(52, 17), 0..105
#   visits  int4     skewed count (geometric-like, long tail), 2% NULL
#   egfr    float8   lab value ~normal(85, 22), 1 decimal, 5..160, 5% NULL
#   amount  float8   billed amount, log-normal (long tail), 2 decimals
#   code    text     ~2000 ICD-like codes, Zipf-like skew; 15% carry a free-text
#                    note (words, numbers) after the code; 1% NULL
#   seen    date     uniform over 10 years
. "$ROOT/tools/lib/pg.sh"
BENCH=${BENCH:-bench}
REPS=${REPS:-5}
WORK=$(mktemp -d /tmp/pg_dstack_bench.XXXXXX)
chmod 755 "$WORK"
trap 'pg_down "$WORK/pg"; "$ROOT/tools/testenv.sh" down "$WORK/env"; rm -rf "$WORK"' EXIT
"$ROOT/tools/testenv.sh" up "$WORK/env" --owners 1 --threshold 1 --approve 1 >/dev/null
. "$WORK/env/env.sh"
PORT=$((20000 + RANDOM % 20000))
pg_up "$WORK/pg" "$PORT"
mkdir -p "$WORK/out"; [ "$(id -u)" = 0 ] && chown postgres: "$WORK/out"
q() { pg_psql "$WORK/pg" "$PORT" -d postgres -At "$@"; }
RECIPE="SET dstack_seal.kms_root_pubkey = '$DSTACK_TEST_KMS_ROOT';
SET dstack_seal.app_id = '$DSTACK_TEST_APP_ID';
SET dstack_seal.compose_hash = '$DSTACK_TEST_COMPOSE_HASH';
SET dstack_seal.owner_key_file = '$WORK/env/owner1.key';
SET dstack_seal.recipient_key = '$DSTACK_TEST_RECIPIENT1_PUB';
SET dstack_seal.recipient_key_chain = '$DSTACK_TEST_RECIPIENT1_CHAIN';
SET dstack_seal.output_dir = '$WORK/out';
SET client_min_messages = warning;"
SERVER_SQL="CREATE SERVER sealed FOREIGN DATA WRAPPER dstack_fdw OPTIONS
  (rpc_url '$DSTACK_TEST_RPC', guest_agent '$DSTACK_TEST_SOCKET', kms_root_pubkey '$DSTACK_TEST_KMS_ROOT',
   kms_contract '$DSTACK_TEST_KMS_CONTRACT', chain_id '$DSTACK_TEST_CHAIN_ID'"
# the plain and sealed variants all start from this (the scan itself is measured: guard off, superuser)
BASE="RESET ALL; SET dstack_fdw.output_guard = off; SET gpu_scan.enabled = off; SET work_mem = '256MB';
SET client_min_messages = warning;"
# a parallel plan whenever workers are allowed (the variants say how many)
PAR="SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;"

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
LOAD_START=$(loadavg)
echo "# $BENCH: $(nproc) cores, load $LOAD_START, $(date -u +%Y-%m-%dT%H:%M:%SZ), REPS=$REPS" >&2

# bench_line KEY=JSONVALUE...: one BENCH line (values given already JSON-encoded)
bench_line() {
	local out="{\"bench\":\"$BENCH\"" kv
	for kv in "$@"; do out+=",\"${kv%%=*}\":${kv#*=}"; done
	echo "BENCH $out}"
}

gen_cohort() { # gen_cohort TABLE ROWS [SEED]
	local t=$1 n=$2 seed=${3:-0.42}
	q >/dev/null <<SQL
SELECT setseed($seed);
CREATE TABLE $t AS
WITH p AS (SELECT g AS id FROM generate_series(1, $n) g ORDER BY random()),
     r AS (SELECT id, random() AS u1, random() AS u2, random() AS u3, random() AS u4, random() AS u5,
                  random() AS u6, random() AS u7, random() AS u8, random() AS u9, random() AS u10 FROM p),
     z AS (SELECT *, sqrt(-2 * ln(1 - u1)) * cos(2 * pi() * u2) AS n1,
                     sqrt(-2 * ln(1 - u1)) * sin(2 * pi() * u2) AS n2,
                     sqrt(-2 * ln(1 - u3)) * cos(2 * pi() * u4) AS n3,
                     floor(power(2000, u5))::int AS k FROM r)
SELECT id::int8 AS patient_id,
       greatest(0, least(105, round(52 + 17 * n1)))::int4 AS age,
       CASE WHEN u6 < 0.02 THEN NULL ELSE floor(ln(1 - u7) / ln(0.82))::int4 END AS visits,
       CASE WHEN u8 < 0.05 THEN NULL ELSE round(greatest(5, least(160, 85 + 22 * n2))::numeric, 1)::float8 END AS egfr,
       round(exp(4.5 + 1.3 * n3)::numeric, 2)::float8 AS amount,
       CASE WHEN u6 > 0.99 THEN NULL
            ELSE chr(65 + k % 26) || lpad(((k / 26) * 37 % 100)::text, 2, '0') || '.' || ((k * 13) % 10)::text
                 || CASE WHEN u7 > 0.85 THEN ': ' ||
                      (ARRAY['follow-up','referred','stable','worsening','improved','see notes','repeat lab',
                             'medication changed','dose reduced','no change','patient reports pain','fasting',
                             'after dialysis','outpatient','inpatient','telehealth','second opinion','imaging ordered',
                             'ECG normal','BP elevated','allergy noted','smoker','former smoker','diabetic',
                             'hypertensive','CKD stage 3','CKD stage 4','post-op','pre-op','discharged'])[1 + floor(u9 * u9 * 30)::int]
                      || ' ' || (floor(u10 * 997) + 3)::text || CASE WHEN u9 > 0.5 THEN ' mg' ELSE ' days' END
                    ELSE '' END END AS code,
       date '2016-01-01' + floor(u10 * 3652)::int AS seen
FROM z;
VACUUM ANALYZE $t;
SQL
}

gen_imaging() { # gen_imaging TABLE FROM FRACTION: a second table for joins, keyed on FROM's ids
	local t=$1 from=$2 f=$3
	q >/dev/null <<SQL
SELECT setseed(0.17);
CREATE TABLE $t AS
SELECT patient_id, round(greatest(10, least(80, 55 + 11 * sqrt(-2 * ln(1 - u1)) * cos(2 * pi() * u2)))::numeric, 1)::float8 AS lvef,
       (ARRAY['MRI','CT','echo','echo','echo','x-ray','x-ray','PET'])[1 + floor(u2 * 8)::int] AS modality
FROM (SELECT patient_id, random() AS u1, random() AS u2, random() AS u3 FROM $from) s WHERE u3 < $f;
VACUUM ANALYZE $t;
SQL
}

mount_sealed() { # mount_sealed [SERVER OPTIONS]: the sealed files of $WORK/out as foreign tables in schema s
	q >/dev/null <<SQL
$SERVER_SQL${1:+, $1});
CREATE SCHEMA s;
IMPORT FOREIGN SCHEMA sealed FROM SERVER sealed INTO s OPTIONS (directory '$WORK/out');
SQL
}

sealed_cohort() { # sealed_cohort ROWS: table cohort of ROWS rows, sealed and mounted as s.cohort, sizes printed
	echo "generating and sealing a cohort of $1 rows..." >&2
	q -c "CREATE EXTENSION dstack_seal; CREATE EXTENSION dstack_fdw;" >/dev/null
	gen_cohort cohort "$1"
	q -c "$RECIPE" -c "SELECT dstack_seal('cohort') IS NOT NULL" >/dev/null
	mount_sealed
	size_report cohort "$WORK/out/cohort.dseal"
}

size_report() { # size_report TABLE FILE: heap vs sealed bytes
	local heap sealed
	heap=$(q -c "SELECT pg_table_size('$1')")
	sealed=$(stat -c %s "$2")
	awk -v h="$heap" -v s="$sealed" -v t="$1" 'BEGIN { printf "size %s: heap %.1f MB, sealed %.1f MB, sealed/heap = %.2f\n", t, h / 1e6, s / 1e6, s / h }'
	bench_line "figure=\"size_$1\"" "heap_bytes=$heap" "sealed_bytes=$sealed" \
		"ratio=$(awk -v h="$heap" -v s="$sealed" 'BEGIN { printf "%.3f", s / h }')"
}

# every row of the foreign table equals the heap's: count and an order-free
# 64-bit sum of the md5 of each row's text (PostgreSQL prints floats exactly)
ROWHASH="count(*), sum(('x' || substr(md5(t::text), 1, 16))::bit(64)::int8::numeric), sum(('x' || substr(md5(t::text), 17, 16))::bit(64)::int8::numeric)"
check_rows() { # check_rows HEAP FOREIGN
	local a b
	a=$(q -c "SELECT $ROWHASH FROM $1 t")
	b=$(q -c "SET dstack_fdw.output_guard = off; SET gpu_scan.enabled = off" -c "SELECT $ROWHASH FROM $2 t")
	[ "$a" = "$b" ] || { echo "FAIL rows of $2 differ from $1's: $a vs $b" >&2; exit 1; }
	echo "check: every row of $2 equals $1's ($(echo "$a" | cut -d'|' -f1) rows, md5 per row)" >&2
}

# answers compared field by field: exactly, except that two numbers of which one has a
# fraction or exponent may differ by a relative 1e-8 (sums of millions of floats in another order
# differ in the last bits; a missing or changed row moves a sum far more)
answers_equal() { # answers_equal FILE1 FILE2
	awk -F'|' '
		function num(x) { return x ~ /^-?[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?$/ }
		function frac(x) { return x ~ /[.eE]/ }
		NR == FNR { a[FNR] = $0; n1 = FNR; next }
		{ n2 = FNR; if (!(FNR in a)) exit 1
		  k = split(a[FNR], x, "|"); if (k != NF) exit 1
		  for (i = 1; i <= NF; i++) {
			if (x[i] == $i) continue
			if (!(num(x[i]) && num($i) && (frac(x[i]) || frac($i)))) exit 1
			d = x[i] - $i; d = d < 0 ? -d : d; m = x[i] < 0 ? -x[i] : x[i]; m2 = $i < 0 ? -$i : $i
			if (d > 1e-8 * (m > m2 ? m : m2)) exit 1
		  } }
		END { if (n1 != n2) exit 1 }' "$1" "$2"
}
check_answer() { # check_answer WHAT SETUP1 QUERY1 SETUP2 QUERY2
	q -c "$2" -c "$3" >"$WORK/ans1"
	q -c "$4" -c "$5" >"$WORK/ans2"
	if ! answers_equal "$WORK/ans1" "$WORK/ans2"; then
		echo "FAIL $1: answers differ" >&2; diff "$WORK/ans1" "$WORK/ans2" >&2 || true; exit 1
	fi
	echo "check: $1: answers equal ($(wc -l <"$WORK/ans1") rows)" >&2
}

check_workers() { # check_workers NAME SETUP QUERY WORKERS: 0 if the plan launched them
	local got
	got=$(q -c "$2" -c "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) $3" |
		sed -n 's/.*Workers Launched: \([0-9]*\).*/\1/p' | sort -n | tail -1)
	if [ "${got:-0}" = "$4" ]; then echo "check: $1 launched $got workers" >&2; return 0; fi
	echo "NOTE $1 did not run parallel: Workers Launched: ${got:-none} (wanted $4)" >&2
	return 1
}

declare -a V_NAMES=()
declare -A V_SETUP=() V_SQL=() V_CMD=() V_WORKERS=() V_PAR=() MED=() MIN=() MAX=() NRUN=()
variant() { # variant NAME SETUP SQL [WORKERS]
	V_NAMES+=("$1"); V_SETUP[$1]=$2; V_SQL[$1]=$3; V_WORKERS[$1]=${4:-0}
}
declare -a V_ALSO=()
shell_variant() {
	V_NAMES+=("$1"); V_CMD[$1]=$2; V_WORKERS[$1]=0
	local n; for n in "${@:3}"; do V_ALSO+=("$n"); V_WORKERS[$n]=0; done
}

run_variants() { # run_variants [ROWS]: time the declared variants
	local rows=${1:-${ROWS:-0}} n=${#V_NAMES[@]} r i v script out l0 l1
	for v in "${V_NAMES[@]}"; do
		V_PAR[$v]=null
		if [ "${V_WORKERS[$v]}" -gt 0 ]; then
			if check_workers "$v" "${V_SETUP[$v]}" "${V_SQL[$v]}" "${V_WORKERS[$v]}"; then V_PAR[$v]=true; else V_PAR[$v]=false; fi
		fi
	done
	script=$WORK/variants.sql
	{
		echo '\o /dev/null'
		for r in $(seq 0 "$REPS"); do # round 0 warms up and is not counted
			for i in $(seq 0 $((n - 1))); do
				v=${V_NAMES[$(((i + r) % n))]}
				if [ -n "${V_CMD[$v]:-}" ]; then
					echo "\\! $(echo "${V_CMD[$v]}" | sed "s/@ROUND@/$r/g") | sed 's/^/@@R$r /'"
				else
					echo "${V_SETUP[$v]//@ROUND@/$r}"
					echo "\\echo @@V $r $v"
					echo '\timing on'
					echo "${V_SQL[$v]//@ROUND@/$r};"
					echo '\timing off'
				fi
			done
		done
	} >"$script"
	l0=$(loadavg)
	out=$(q -f "$script" 2>&1) || { echo "$out" | tail -20 >&2; echo "FAIL: a timed variant failed" >&2; exit 1; }
	l1=$(loadavg)
	# rows of: name ms (round 0 dropped)
	echo "$out" | awk '
		/^@@V / { r = $2; cur = $3; next }
		/^Time: / { if (r > 0) print cur, $2; next }
		/^@@R[0-9]+ @@T / { rr = substr($1, 4); if (rr > 0) print $3, $4 }' >"$WORK/times"
	for v in "${V_NAMES[@]}" "${V_ALSO[@]}"; do
		[ -n "${V_PAR[$v]:-}" ] || V_PAR[$v]=null
		read -r MED[$v] MIN[$v] MAX[$v] NRUN[$v] < <(awk -v v="$v" '$1 == v { print $2 }' "$WORK/times" | sort -g |
			awk '{ a[NR] = $1 } END { if (NR == 0) { print "nan nan nan 0"; exit }
				m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%.3f %.3f %.3f %d\n", m, a[1], a[NR], NR }')
		[ "${NRUN[$v]}" = "$REPS" ] || { echo "FAIL: variant $v has ${NRUN[$v]} timings, not $REPS" >&2; exit 1; }
		printf '%-28s median %10.2f ms  min %10.2f  max %10.2f  (n=%d%s)\n' "$v" "${MED[$v]}" "${MIN[$v]}" "${MAX[$v]}" \
			"${NRUN[$v]}" "$([ "${V_PAR[$v]}" = null ] || echo ", parallel launched: ${V_PAR[$v]}")"
		bench_line "figure=\"$v\"" "median_ms=${MED[$v]}" "min_ms=${MIN[$v]}" "max_ms=${MAX[$v]}" "n=${NRUN[$v]}" \
			"rows=$rows" "workers=${V_WORKERS[$v]}" "workers_launched_ok=${V_PAR[$v]}" "load_before=\"$l0\"" "load_after=\"$l1\""
	done
	echo "load: before $l0, after $l1 ($(nproc) cores)"
}

best_of() { # best_of NAME...: the one with the lowest median (skipping parallel ones that did not launch)
	local b= v
	for v in "$@"; do
		[ "${V_PAR[$v]:-null}" = false ] && continue
		if [ -z "$b" ] || awk -v a="${MED[$v]}" -v c="${MED[$b]}" 'BEGIN { exit !(a < c) }'; then b=$v; fi
	done
	echo "$b"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

target() { # target NAME VALUE OP LIMIT [UNIT] [NOTE]
	local name=$1 val=$2 op=$3 lim=$4 unit=${5:-x} note=${6:-} met
	met=$(awk -v a="$val" -v o="$op" -v l="$lim" 'BEGIN { m = (o == ">=") ? a >= l : a <= l; print m ? "MET" : "MISSED" }')
	printf 'TARGET %s = %.2f%s (target %s %s%s) %s%s\n' "$name" "$val" "$unit" "$op" "$lim" "$unit" "$met" "${note:+  [$note]}"
	bench_line "target=\"$name\"" "value=$val" "unit=\"$unit\"" "op=\"$op\"" "limit=$lim" \
		"met=$([ "$met" = MET ] && echo true || echo false)" "note=\"$note\"" "load=\"$(loadavg)\""
}
