#!/usr/bin/env bash
# bench/seal.sh: seal throughput and memory, as ratios to baselines run in
# the same script on the same table (absolute times on a shared machine mean
# little):
#   - COPY t TO '/dev/null' (FORMAT binary): reading + serialising, no crypto
#   - per-row pgp_sym_encrypt(row::text) (pgcrypto): the naive "encrypt in SQL" way
#   - backend peak memory (VmHWM) sealing 1M vs 4M rows: must stay flat
# Usage: bench/seal.sh [ROWS]   (default 1600000, the cohort size of the issue)
# Targets: seal >= 0.5x COPY throughput, >= 20x pgcrypto, flat memory.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROWS=${1:-1600000}
PGCRYPTO_ROWS=${PGCRYPTO_ROWS:-200000}
. "$ROOT/bench/lib.sh"


make_cohort() { # make_cohort NAME ROWS: a synthetic EHR cohort table
	q -c "CREATE TABLE $1 AS
	  SELECT g::int8 AS patient_id, (18 + g % 80)::int4 AS age, (g % 2 = 0) AS female,
	         (20 + (g::int8 * 7919) % 100)::float8 + (g % 10) / 10.0 AS egfr,
	         ((g::int8 * 31) % 900 / 100.0 + 0.4)::numeric(6,2) AS creatinine,
	         'I' || (10 + g % 40)::text || '.' || (g % 10)::text AS dx_code,
	         date '2015-01-01' + (g % 3000) AS admitted,
	         CASE WHEN g % 17 = 0 THEN NULL ELSE (g % 250)::int4 END AS systolic_bp
	  FROM generate_series(1, $2) g;" -c "VACUUM ANALYZE $1;" >/dev/null
}

ms() { echo $(( $(date +%s%N) / 1000000 )); }
timeit() { # timeit SQL: wall milliseconds of one statement in a fresh session
	local t0 t1
	t0=$(ms); q -c "$RECIPE $1" >/dev/null; t1=$(ms); echo $((t1 - t0))
}

q -c "CREATE EXTENSION dstack_seal; CREATE EXTENSION pgcrypto;" >/dev/null
echo "generating cohort of $ROWS rows..." >&2
make_cohort cohort "$ROWS"
q -c "CREATE TABLE cohort_small AS SELECT * FROM cohort LIMIT $PGCRYPTO_ROWS" >/dev/null

copy_ms=$(timeit "COPY cohort TO '/dev/null' (FORMAT binary);")
seal_ms=$(timeit "SELECT dstack_seal('cohort', NULL, '$WORK/out/c1.dseal') IS NOT NULL;")
copy2_ms=$(timeit "COPY cohort TO '/dev/null' (FORMAT binary);")
seal2_ms=$(timeit "SELECT dstack_seal('cohort', NULL, '$WORK/out/c2.dseal') IS NOT NULL;")
pgc_ms=$(timeit "SELECT count(pgp_sym_encrypt(c::text, 'benchmark-passphrase')) FROM cohort_small c;")
size=$(stat -c %s "$WORK/out/c1.dseal")
tbl=$(q -c "SELECT pg_table_size('cohort')")

copy_best=$((copy_ms < copy2_ms ? copy_ms : copy2_ms))
seal_best=$((seal_ms < seal2_ms ? seal_ms : seal2_ms))
echo "rows=$ROWS copy_binary_ms=$copy_best seal_ms=$seal_best pgcrypto_ms=$pgc_ms (on $PGCRYPTO_ROWS rows)"
echo "sealed file: $size bytes (heap table: $tbl bytes)"
awk -v r="$ROWS" -v c="$copy_best" -v s="$seal_best" -v p="$pgc_ms" -v pr="$PGCRYPTO_ROWS" 'BEGIN {
	seal_rps = r / (s / 1000); copy_rps = r / (c / 1000); pgc_rps = pr / (p / 1000);
	printf "seal throughput: %.0f rows/s; COPY binary: %.0f rows/s; pgcrypto: %.0f rows/s\n", seal_rps, copy_rps, pgc_rps;
	printf "RATIO seal/COPY = %.2fx (target >= 0.5x)\n", seal_rps / copy_rps;
	printf "RATIO seal/pgcrypto = %.1fx (target >= 20x)\n", seal_rps / pgc_rps;
}'

# peak backend memory, 1M vs 4M rows, each in a fresh backend
if [ "${SKIP_MEMORY:-0}" != 1 ]; then
	hwm() { # hwm TABLE: VmHWM (kB) of a backend right after sealing TABLE
		q -c "$RECIPE SELECT dstack_seal('$1', NULL, '$WORK/out/$1.dseal') IS NOT NULL;
		      SELECT (regexp_match(pg_read_file('/proc/' || pg_backend_pid() || '/status'), 'VmHWM:\s+(\d+)'))[1];" | tail -1
	}
	echo "generating 1M and 4M row tables for the memory check..." >&2
	make_cohort m1 1000000
	make_cohort m4 4000000
	h1=$(hwm m1); h4=$(hwm m4)
	echo "backend VmHWM: 1M rows = $h1 kB, 4M rows = $h4 kB"
	awk -v a="$h1" -v b="$h4" 'BEGIN { printf "RATIO memory 4M/1M = %.2fx (target: flat, ~1.0x)\n", b / a }'
fi
