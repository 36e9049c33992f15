#!/usr/bin/env bash
# tools/regress.sh: run the pg_regress suites (sql/*.sql, expected/*.out)
# against a throw-away PostgreSQL cluster, with anvil, the consortium and the
# dstack simulator up (tools/testenv.sh).  Tests are discovered by wildcard.
# Usage: tools/regress.sh [test names...]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$ROOT/tools/lib/pg.sh"
cd "$ROOT"

# a fixed directory: paths appear in expected error messages
WORK=${DSTACK_REGRESS_DIR:-/tmp/pg_dstack_regress}
if [ -d "$WORK" ]; then
	for e in "$WORK"/env "$WORK"/env-*; do [ -d "$e" ] && "$ROOT/tools/testenv.sh" down "$e" || true; done
	pg_down "$WORK/pg"
	rm -rf "$WORK"
fi
mkdir -p "$WORK"
chmod 755 "$WORK"
cleanup() {
	pg_down "$WORK/pg"
	# the suites may start further consortia (env-*) for refusal tests
	for e in "$WORK"/env "$WORK"/env-*; do [ -d "$e" ] && "$ROOT/tools/testenv.sh" down "$e" || true; done
	[ "${KEEP_WORK:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT

"$ROOT/tools/testenv.sh" up "$WORK/env" --owners 4 --threshold 3 --approve 4 >/dev/null
. "$WORK/env/env.sh"
PORT=$((20000 + RANDOM % 20000))
pg_up "$WORK/pg" "$PORT"
export DSTACK_TEST_TOOLS=$ROOT/tools
export DSTACK_DSEAL_DUMP=$ROOT/tools/dseal-dump/dseal-dump
mkdir -p "$WORK/out"
[ "$(id -u)" = 0 ] && chown postgres: "$WORK/out"
export DSTACK_TEST_OUT=$WORK/out
export DSTACK_TEST_WORK=$WORK

# REGRESS_INPUTDIR: suites from another directory (tools/gpucheck.sh runs a
# variant of gpu_scan.sql there); \i paths stay relative to the repository
INDIR=${REGRESS_INPUTDIR:-.}
if [ $# -gt 0 ]; then tests=("$@"); else
	tests=(); for f in "$INDIR"/sql/*.sql; do tests+=("$(basename "$f" .sql)"); done
fi
PG_REGRESS=$(dirname "$(pg_config --pgxs)")/../test/regress/pg_regress
rm -rf "$INDIR/results"
set +e
"$PG_REGRESS" --host="$WORK/pg" --port="$PORT" --user=postgres --inputdir="$INDIR" --outputdir="$INDIR" \
	--bindir="$(pg_config --bindir)" --dbname=dstack_regress "${tests[@]}"
rc=$?
set -e
[ $rc -ne 0 ] && [ -f "$INDIR/regression.diffs" ] && head -200 "$INDIR/regression.diffs"
exit $rc
