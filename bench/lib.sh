# bench/lib.sh: the set-up every benchmark shares.  Source it after setting
# ROOT; it brings up a one-owner consortium (anvil, contract, simulator) and
# a throw-away cluster, removes everything on exit, and defines:
#   q ARGS...      psql -At against the cluster
#   RECIPE         the SET statements of owner 1's sealing recipe
#   best_ms S Q    best wall time (ms) of REPS runs of query Q after setup S,
#                  measured by psql's \timing in one session
. "$ROOT/tools/lib/pg.sh"
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
SET dstack_seal.output_dir = '$WORK/out';"
best_ms() {
	{ echo "$1"; echo '\timing on'; for _ in $(seq 1 "$REPS"); do echo "$2;"; done; } |
		q 2>&1 | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | sort -n | head -1
}
