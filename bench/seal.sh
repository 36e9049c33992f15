#!/usr/bin/env bash
# bench/seal.sh: seal throughput and memory against COPY, in one script on the
# same table (bench/lib.sh's realistic cohort):
#   copy_binary  COPY cohort TO '/dev/null' (FORMAT binary): reading and serialising every row
#   seal         SELECT dstack_seal('cohort', NULL, PATH): reading, columnar
#                encoding, zstd, AES-256-GCM, manifest signature, fsync
# interleaved round by round (bench/lib.sh), each in the same warm session.
# What seal wrote is checked: a file sealed the same way is mounted through
# dstack_fdw (output guard off, superuser) and every row is compared with the
# heap's (md5 of each row's text), and every timed file passes dstack_seal_verify().
# Memory: the backend's peak (VmHWM) sealing MEM_SMALL vs MEM_LARGE rows, each
# in a fresh backend (SKIP_MEMORY=1 skips it).
# Targets: seal >= 1.0x COPY binary throughput; VmHWM large/small <= 1.1x.
# Usage: bench/seal.sh [ROWS]   (default 1000000; REPS=5; MEM_SMALL=1000000 MEM_LARGE=4000000)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROWS=${1:-1000000}
MEM_SMALL=${MEM_SMALL:-1000000}
MEM_LARGE=${MEM_LARGE:-4000000}
BENCH=seal
. "$ROOT/bench/lib.sh"

q -c "CREATE EXTENSION dstack_seal; CREATE EXTENSION dstack_fdw;" >/dev/null
echo "generating a cohort of $ROWS rows..." >&2
gen_cohort cohort "$ROWS"
mkdir -p "$WORK/runs"; [ "$(id -u)" = 0 ] && chown postgres: "$WORK/runs"

# what seal writes: mounted and compared with the heap, row by row
q -c "$RECIPE" -c "SELECT dstack_seal('cohort') IS NOT NULL" >/dev/null
mount_sealed
size_report cohort "$WORK/out/cohort.dseal"
check_rows cohort s.cohort

variant copy_binary "$BASE" "COPY cohort TO '/dev/null' (FORMAT binary)"
# each round writes its own file; the previous round's is removed untimed
variant seal "$BASE $RECIPE
\\! rm -f $WORK/runs/*.dseal $WORK/runs/*.json" "SELECT dstack_seal('cohort', NULL, '$WORK/runs/r@ROUND@.dseal') IS NOT NULL"
run_variants "$ROWS"
last=$(ls "$WORK"/runs/*.dseal | head -1)
v=$(q -c "SELECT dstack_seal_verify('$last')->>'valid', dstack_seal_verify('$last')->>'row_count'")
[ "$v" = "true|$ROWS" ] || { echo "FAIL dstack_seal_verify($last): $v" >&2; exit 1; }
echo "check: the last timed file verifies ($v), $(stat -c %s "$last") bytes" >&2

target seal_vs_copy "$(ratio "${MED[copy_binary]}" "${MED[seal]}")" ">=" 1.0 x "throughput, COPY binary time / seal time"
awk -v r="$ROWS" -v s="${MED[seal]}" -v c="${MED[copy_binary]}" 'BEGIN {
	printf "  seal %.0f rows/s, COPY binary %.0f rows/s\n", r / (s / 1000), r / (c / 1000) }'

# peak backend memory, small vs large, each in a fresh backend
if [ "${SKIP_MEMORY:-0}" != 1 ]; then
	hwm() { # hwm TABLE: VmHWM (kB) of a backend right after sealing TABLE
		q -c "$RECIPE" -c "SELECT dstack_seal('$1', NULL, '$WORK/runs/$1.dseal') IS NOT NULL" \
			-c "SELECT array_to_string(ARRAY(SELECT (regexp_match(pg_read_file('/proc/' || pg_backend_pid() || '/status'), f || ':\s+(\d+)'))[1]
			                                FROM unnest(ARRAY['VmHWM', 'RssAnon', 'RssShmem']) f), ' ')" | tail -1
	}
	echo "generating $MEM_SMALL and $MEM_LARGE row tables for the memory check..." >&2
	gen_cohort m_small "$MEM_SMALL" 0.11
	gen_cohort m_large "$MEM_LARGE" 0.12
	read -r h1 a1 s1 < <(hwm m_small); read -r h4 a4 s4 < <(hwm m_large)
	echo "backend after sealing: $MEM_SMALL rows: VmHWM $h1 kB (RssAnon $a1, RssShmem $s1); $MEM_LARGE rows: VmHWM $h4 kB (RssAnon $a4, RssShmem $s4)"
	echo "  (VmHWM counts the shared buffers the backend touched: RssShmem)"
	bench_line "figure=\"seal_vmhwm\"" "small_rows=$MEM_SMALL" "small_kb=$h1" "small_shmem_kb=$s1" "large_rows=$MEM_LARGE" "large_kb=$h4" "large_shmem_kb=$s4"
	target seal_memory_large_vs_small "$(ratio "$h4" "$h1")" "<=" 1.1 x "VmHWM $MEM_LARGE rows / $MEM_SMALL rows"
fi
