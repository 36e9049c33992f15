#!/usr/bin/env bash
# bench/run-all.sh: every benchmark at one size; each one's output goes to
# OUT/<bench>.log, every BENCH line to OUT/bench.jsonl (the JSON after
# "BENCH "), and the TARGET lines are printed at the end.
# Usage: bench/run-all.sh [ROWS] [BENCH...]   (default 1000000; seal scan dp plan duckdb gpu)
#   OUT=dir            where the logs go (default: a new /tmp/pg_dstack_bench_results.XXXXXX)
#   REPS=n             rounds per bench (default 5)
#   INSTALL_LOCK=file  run "make install" and each bench under flock -o FILE (shared machines:
#                      nobody else's install replaces the extensions while one runs)
# A benchmark is not a test: nothing here runs in ./dev test or CI.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROWS=${1:-1000000}
shift || true
BENCHES=("$@")
[ ${#BENCHES[@]} -gt 0 ] || BENCHES=(seal scan dp plan duckdb gpu)
OUT=${OUT:-$(mktemp -d /tmp/pg_dstack_bench_results.XXXXXX)}
mkdir -p "$OUT"
cd "$ROOT"
echo "# run-all: ROWS=$ROWS REPS=${REPS:-5} on $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%M:%SZ); logs in $OUT"
fail=0
for b in "${BENCHES[@]}"; do
	echo "== bench/$b.sh $ROWS"
	if [ -n "${INSTALL_LOCK:-}" ]; then
		# -o: the lock is flock's alone; the servers a bench starts must not inherit it
		# (a cluster left running would hold it for everybody)
		cmd=(flock -o "$INSTALL_LOCK" -c "make install >/dev/null && bench/$b.sh $ROWS")
	else
		cmd=("bench/$b.sh" "$ROWS")
	fi
	if ! "${cmd[@]}" >"$OUT/$b.log" 2>&1; then
		echo "FAIL bench/$b.sh (see $OUT/$b.log):"; tail -5 "$OUT/$b.log" | sed 's/^/  /'; fail=1
	fi
	grep -E '^(TARGET|NOTE|FAIL)' "$OUT/$b.log" | sed 's/^/  /' || true
done
grep -h '^BENCH ' "$OUT"/*.log | sed 's/^BENCH //' >"$OUT/bench.jsonl" || true
echo "# $(wc -l <"$OUT/bench.jsonl") BENCH lines in $OUT/bench.jsonl; load now $(cut -d' ' -f1-3 /proc/loadavg)"
exit $fail
