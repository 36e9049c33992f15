/*
 * identity.h: this CVM's identity as its guest agent reports it (identity.c),
 * for the mount rule (mount.c).
 */
#ifndef DSTACK_FDW_IDENTITY_H
#define DSTACK_FDW_IDENTITY_H

#include <sys/stat.h>

#include "foreign/foreign.h"

#include "abi.h"
#include "crypto.h"
#include "policy.h"

/*
 * The guest agent's socket file as a cache key: its path, device, inode and
 * change time, so that another agent behind the same path (restarted,
 * moved, repointed) is another key.
 */
typedef struct DfdwSocketId
{
	char		socket[256];
	dev_t		dev;
	ino_t		ino;
	struct timespec ctime;
} DfdwSocketId;

/* The id of the agent at socket (NULL: the default); false when it is not a socket file (an http override). */
extern bool dfdw_agent_socket_id(const char *socket, DfdwSocketId *id);
extern bool dfdw_socket_id_equal(const DfdwSocketId *a, const DfdwSocketId *b);

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
