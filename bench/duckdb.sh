#!/usr/bin/env bash
# bench/duckdb.sh: an outside anchor.  DuckDB (@duckdb/node-api, installed on
# demand into bench/.duckdb, bench-only) over a zstd Parquet file of the same
# rows (bench/lib.sh's realistic cohort), against aggregation inside the
# sealed scan (GpuPreAgg's host build: gpu_scan on, no GPU, use_gpu off).
# DuckDB's offline build decrypts encrypted Parquet with slow software AES, so
# the anchor is DuckDB's plain-Parquet time plus the time AES-256-GCM (OpenSSL,
# measured here, 64 KiB blocks, one core per thread) needs for the ciphertext
# of the sealed chunks the query reads (from the manifest).
#   Q: count(*), sum(amount), avg(age), avg(egfr) (GpuPreAgg takes all four)
# Variants, interleaved round by round: duck_1t, duck_2t (each a warm-up run,
# then one timed, in a fresh DuckDB per round), preagg_1t (read_ahead off: one
# thread), preagg (GpuPreAgg host build with its read-ahead thread: two threads,
# one backend), sealed_2w (the foreign scan with 2 workers, gpu_scan off),
# heap_2w (the heap, 2 workers, for reference).
# Answers: every variant's equals the heap's (numbers with a fraction within a relative 1e-8).
# Targets: preagg / anchor(1 thread) <= 2.0x; the best sealed plan at two
# threads (preagg, or sealed_2w) / anchor(2 threads) <= 2.0x.
# Usage: bench/duckdb.sh [ROWS]   (default 1000000; REPS=5)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROWS=${1:-1000000}
BENCH=duckdb
DUCK=$ROOT/bench/.duckdb
if [ ! -d "$DUCK/node_modules/@duckdb/node-api" ]; then
	echo "installing @duckdb/node-api into $DUCK (bench only)..." >&2
	npm install --prefix "$DUCK" --no-save --no-audit --no-fund @duckdb/node-api >/dev/null
fi
. "$ROOT/bench/lib.sh"
D="node $ROOT/bench/duckdb.mjs"

sealed_cohort "$ROWS"
mkdir -p "$WORK/duck"; [ "$(id -u)" = 0 ] && chown postgres: "$WORK/duck"
q -c "COPY cohort TO '$WORK/duck/cohort.csv' (FORMAT csv, HEADER)" >/dev/null
$D convert "$WORK/duck/cohort.csv" "$WORK/duck/cohort.parquet"
rm -f "$WORK/duck/cohort.csv"
PQ=$WORK/duck/cohort.parquet
echo "parquet (zstd): $(stat -c %s "$PQ") bytes; sealed file: $(stat -c %s "$WORK/out/cohort.dseal") bytes"

# one text for both: DuckDB's avg(age) is a double, PostgreSQL's a numeric (compared within 1e-8)
Q="SELECT count(*), sum(amount), avg(age), avg(egfr) FROM @T@"
SER="SET max_parallel_workers_per_gather = 0; SET jit = off;"
W2="SET max_parallel_workers_per_gather = 2; SET jit = off; $PAR"
PREAGG="RESET ALL; SET dstack_fdw.output_guard = off; SET gpu_scan.enabled = on; SET gpu_scan.host_path = on;
SET gpu_scan.use_gpu = off; SET client_min_messages = warning; $SER"
q -c "$PREAGG" -c "EXPLAIN (COSTS OFF) ${Q//@T@/s.cohort}" | tee "$WORK/plan" | sed 's/^/  /'
grep -q GpuPreAgg "$WORK/plan" || { echo "FAIL: GpuPreAgg was not planned for the query" >&2; exit 1; }

q -c "$BASE $SER" -c "${Q//@T@/cohort}" >"$WORK/ref"
$D answer "$PQ" "$Q" >"$WORK/duck.ans"
answers_equal "$WORK/ref" "$WORK/duck.ans" ||
	{ echo "FAIL DuckDB's answer differs from the heap's: $(cat "$WORK/duck.ans") vs $(cat "$WORK/ref")" >&2; exit 1; }
echo "check: DuckDB's answer equals the heap's" >&2
check_answer "preagg vs heap" "$BASE $SER" "${Q//@T@/cohort}" "$PREAGG" "${Q//@T@/s.cohort}"
check_answer "sealed 2 workers vs heap" "$BASE $SER" "${Q//@T@/cohort}" "$BASE $W2" "${Q//@T@/s.cohort}"

# ciphertext bytes (with tags) of the chunks of the columns the query reads, from the
# manifest (the trailer gives its offset and length: docs/format.md)
CT=$(node -e '
	const fs = require("fs"), fd = fs.openSync(process.argv[1], "r"), size = fs.fstatSync(fd).size, t = Buffer.alloc(24);
	fs.readSync(fd, t, 0, 24, size - 24);
	const mb = Buffer.alloc(Number(t.readBigUInt64LE(8)));
	fs.readSync(fd, mb, 0, mb.length, Number(t.readBigUInt64LE(0)));
	const m = JSON.parse(mb.toString("utf8"));
	const find = (o, k) => { if (o && typeof o === "object") { if (k in o) return o[k]; for (const v of Object.values(o)) { const r = find(v, k); if (r) return r; } } };
	const cols = find(m, "columns").map((c) => c.name), want = ["age", "egfr", "amount"];
	let n = 0;
	for (const g of find(m, "row_groups")) want.forEach((w) => { n += g.chunks[cols.indexOf(w)].length; });
	console.log(n);' "$WORK/out/cohort.dseal")
aes() { openssl speed -evp aes-256-gcm -bytes 65536 -seconds 1 2>/dev/null | awk '/^AES-256-GCM/ { sub(/k$/, "", $2); printf "%.0f\n", $2 * 1000 }'; }
AES1=$(aes)

# one command times both thread counts (order rotated by round)
shell_variant duck_1t "$D time $PQ '$Q' @ROUND@" duck_2t
# GpuPreAgg with the read-ahead thread (the default: 2 threads) and without it (1 thread)
variant preagg "$PREAGG" "${Q//@T@/s.cohort}"
variant preagg_1t "$PREAGG SET dstack_fdw.read_ahead = off;" "${Q//@T@/s.cohort}"
variant sealed_2w "$BASE $W2" "${Q//@T@/s.cohort}" 2
variant heap_2w "$BASE $W2" "${Q//@T@/cohort}" 2
run_variants "$ROWS"
AES2=$(aes)
AES=$(awk -v a="$AES1" -v b="$AES2" 'BEGIN { printf "%.0f\n", (a > b) ? a : b }')
read -r anc1 anc2 aesms < <(awk -v d1="${MED[duck_1t]}" -v d2="${MED[duck_2t]}" -v b="$CT" -v s="$AES" \
	'BEGIN { t = b / s * 1000; printf "%.3f %.3f %.3f\n", d1 + t, d2 + t / 2, t }')
echo "AES-256-GCM (openssl, 64 KiB): $(awk -v s="$AES" 'BEGIN { printf "%.2f GB/s", s / 1e9 }') one core; ciphertext read: $CT bytes = $aesms ms on one core"
echo "anchor: 1 thread $anc1 ms, 2 threads $anc2 ms"
bench_line "figure=\"duckdb_anchor\"" "anchor_1t_ms=$anc1" "anchor_2t_ms=$anc2" "aes_bytes_per_s=$AES" "ciphertext_bytes=$CT" \
	"parquet_bytes=$(stat -c %s "$PQ")" "rows=$ROWS"
# one thread against one: GpuPreAgg without its read-ahead thread; the default (backend +
# read-ahead thread) is a two-thread plan
target preagg_vs_duckdb_1t "$(ratio "${MED[preagg_1t]}" "$anc1")" "<=" 2.0 x "time, GpuPreAgg host build, read_ahead off / DuckDB+AES, 1 thread"
b2=$(best_of preagg sealed_2w)
target sealed_vs_duckdb_2t "$(ratio "${MED[$b2]}" "$anc2")" "<=" 2.0 x "time, best sealed plan at 2 threads ($b2) / DuckDB+AES, 2 threads"
