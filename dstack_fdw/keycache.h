/*
 * keycache.h: the guest agent's derived keys, verified once per backend
 * (keycache.c), for the mount rule, receipts and the chain ledger.
 */
#ifndef DSTACK_FDW_KEYCACHE_H
#define DSTACK_FDW_KEYCACHE_H

#include "guest_agent.h"

/*
 * ga_get_key_verified(), answered from this backend's verified keys when
 * dstack_fdw.key_cache is on and the same agent socket was asked the same
 * path and purpose for the same KMS root and app id.  The caller owns *key
 * as before and ends with ga_key_scrub().
 */
extern bool dfdw_agent_key(const char *socket, const char *path, const char *purpose,
						   const uint8 kms_root[DC_PUBKEY_LEN], const uint8 app_id[DC_ADDR_LEN],
						   GaKey *key, DErr *err);

#endif							/* DSTACK_FDW_KEYCACHE_H */
