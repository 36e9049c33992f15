#!/usr/bin/env bash
# tools/register-dataset.sh FILE.dseal OWNER_KEY_FILE [RPC APP]: the owner
# registers a sealed dataset version on the consortium contract (what a CVM
# with ledger 'chain' requires before it reads the file).  RPC and APP
# default to DSTACK_TEST_RPC and DSTACK_TEST_APP_ID (tools/testenv.sh);
# REGISTER_BUDGET_MICRO sets the version's budget (default: the policy's
# total).  Prints nothing on success.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
file=$1 keyfile=$2 rpc=${3:-${DSTACK_TEST_RPC:?}} app=${4:-${DSTACK_TEST_APP_ID:?}}
read -r id hash < <(node "$ROOT/tools/dseal-id.mjs" "$file")
key=$(tr -d ' \n' <"$keyfile")
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! "$ROOT/contracts/scripts/consortium.sh" register --rpc "$rpc" --key "0x${key#0x}" --app "$app" \
	--dataset-id "$id" --manifest-hash "$hash" ${REGISTER_BUDGET_MICRO:+--budget-micro "$REGISTER_BUDGET_MICRO"} \
	>"$log" 2>&1; then
	cat "$log" >&2
	exit 1
fi
