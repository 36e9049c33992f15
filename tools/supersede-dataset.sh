#!/usr/bin/env bash
# tools/supersede-dataset.sh OLD.dseal NEW.dseal OWNER_KEY_FILE [RPC APP]: the
# owner declares NEW the current version of OLD's dataset on the consortium
# contract; OLD can then no longer be read, and NEW has its own budget.
# RPC and APP default to DSTACK_TEST_RPC and DSTACK_TEST_APP_ID.  Prints
# nothing on success.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
old=$1 new=$2 keyfile=$3 rpc=${4:-${DSTACK_TEST_RPC:?}} app=${5:-${DSTACK_TEST_APP_ID:?}}
read -r id _ < <(node "$ROOT/tools/dseal-id.mjs" "$old")
read -r _ hash < <(node "$ROOT/tools/dseal-id.mjs" "$new")
key=$(tr -d ' \n' <"$keyfile")
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! "$ROOT/contracts/scripts/consortium.sh" supersede --rpc "$rpc" --key "0x${key#0x}" --app "$app" \
	--dataset-id "$id" --manifest-hash "$hash" ${REGISTER_BUDGET_MICRO:+--budget-micro "$REGISTER_BUDGET_MICRO"} \
	>"$log" 2>&1; then
	cat "$log" >&2
	exit 1
fi
