/*
 * identity.h: this CVM's identity as its guest agent reports it (identity.c),
 * for the mount rule (mount.c).
 */
#ifndef DSTACK_FDW_IDENTITY_H
#define DSTACK_FDW_IDENTITY_H

#include "foreign/foreign.h"

#include "abi.h"
#include "crypto.h"
#include "policy.h"

typedef struct DfdwCvmIdentity
{
	uint8		app_id[DC_ADDR_LEN];
	uint8		compose_hash[32];
	char		instance_id[65];	/* hex */
	DPolicy		policy;			/* pg_dstack_policy of the measured app-compose.json */
	AbiAppBootInfo boot;		/* the boot as the KMS saw it (its strings are static) */
} DfdwCvmIdentity;

/*
 * Info from the guest agent at socket (NULL: the default), checked (the
 * app-compose against its hash, the registers against the event log) and
 * reduced to what the mount rule uses; errors name server.  Read once per
 * backend and agent socket (see identity.c).
 */
extern void dfdw_cvm_identity(ForeignServer *server, const char *socket, DfdwCvmIdentity *id);

#endif							/* DSTACK_FDW_IDENTITY_H */
