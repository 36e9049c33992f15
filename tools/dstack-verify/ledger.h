/*
 * ledger.h: the public audit of a consortium's privacy-budget ledger
 * (dstack-verify --ledger --rpc URL --app ADDR [--kms-root HEX] [--quiet]).
 */
#ifndef DSTACK_VERIFY_LEDGER_H
#define DSTACK_VERIFY_LEDGER_H

#include <stdbool.h>

/*
 * Read the ledger of the ConsortiumApp at app_hex through rpc_url, at one
 * block: print every charge and every dataset version with the total of the
 * charges naming it, and check each total against the version's recorded
 * spend and budget.  kms_root_hex (may be NULL) is the KMS root public key the
 * contract must pin.  Returns the exit status: 0 when the ledger is
 * consistent and within every budget, 1 when it is not or cannot be read,
 * 2 on bad arguments.
 */
extern int dstack_verify_ledger(const char *rpc_url, const char *app_hex, const char *kms_root_hex, bool quiet);

#endif							/* DSTACK_VERIFY_LEDGER_H */
