/*
 * identity.c: which CVM this is, from the dstack guest agent's Info (step 1
 * of the mount rule, mount.c).
 *
 * Info is checked before any of it is used: its app-compose.json against
 * the measured compose-hash (the analysis policy is read from it), its
 * registers against the RTMR3 event log, and from them the boot information
 * the KMS saw (ga_boot_info), which the chain read asks the KMS contract
 * about.  None of it can change while the CVM runs: it is what the CVM was
 * booted and measured as.  So a backend asks once per agent socket and keeps
 * the checked result, keyed by the socket file's path, device, inode and
 * change time: an agent that is restarted (a new socket) or moved is asked
 * again.  What it saves is a round trip and the parse of Info's event log,
 * about a third of a sealed statement's fixed cost.  Failures are never kept.
 */
#include "postgres.h"

#include <sys/stat.h>

#include "miscadmin.h"

#include "dstack_fdw.h"
#include "guest_agent.h"
#include "hex.h"
#include "identity.h"
#include "pg_common.h"

typedef struct IdentityCache
{
	bool		valid;
	DfdwSocketId sock;
	DfdwCvmIdentity id;
} IdentityCache;

static IdentityCache cache;

bool
dfdw_agent_socket_id(const char *socket, DfdwSocketId *id)
{
	GaEndpoint	ep;
	DErr		err;
	struct stat st;

	memset(id, 0, sizeof(*id));
	derr_clear(&err);
	if (!ga_resolve_endpoint(socket, &ep, &err) || ep.socket[0] == '\0' || strlen(ep.socket) >= sizeof(id->socket) ||
		stat(ep.socket, &st) != 0 || !S_ISSOCK(st.st_mode))
		return false;
	strlcpy(id->socket, ep.socket, sizeof(id->socket));
	id->dev = st.st_dev;
	id->ino = st.st_ino;
	id->ctime = st.st_ctim;
	return true;
}

bool
dfdw_socket_id_equal(const DfdwSocketId *a, const DfdwSocketId *b)
{
	return strcmp(a->socket, b->socket) == 0 && a->dev == b->dev && a->ino == b->ino &&
		a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

/* The analysis policy: pg_dstack_policy of the app-compose.json Info carries, checked against its hash. */
static void
compose_policy(ForeignServer *server, GaInfo *info, DPolicy *pol)
{
	DErr		err;

	derr_clear(&err);
	if (!ga_app_compose_measured(info, &err))
	{
		ga_info_free(info);
		if (err.code == DERR_INTEGRITY)
			derr_ereport(&err, ERRCODE_DATA_CORRUPTED,
						 psprintf("The guest agent must report the app-compose.json this CVM was measured with; "
								  "check which agent server \"%s\"'s guest_agent option (or "
								  "DSTACK_SIMULATOR_ENDPOINT) names, and do not mount until it does.",
								  server->servername));
		derr_ereport(&err, ERRCODE_FEATURE_NOT_SUPPORTED,
					 psprintf("The analysis policy is read from the measured app-compose.json only; point server "
							  "\"%s\"'s guest_agent option at dstack's guest agent socket, which reports it.",
							  server->servername));
	}
	if (!dpolicy_from_compose(info->app_compose, info->app_compose_len, pol, &err))
	{
		ga_info_free(info);
		derr_ereport(&err, ERRCODE_CONFIG_FILE_ERROR,
					 "Correct pg_dstack_policy in the analysis app-compose.json (docs/operations.md lists its "
					 "members); the corrected file has a new compose-hash, which the owners must pin and approve "
					 "in a new consortium.");
	}
}

/* Ask the agent and check what it says. */
static void
read_identity(ForeignServer *server, const char *socket, DfdwCvmIdentity *id)
{
	GaInfo		info;
	DErr		err;

	memset(&info, 0, sizeof(info));
	memset(id, 0, sizeof(*id));
	derr_clear(&err);
	if (!ga_info(socket, &info, &err))
	{
		CHECK_FOR_INTERRUPTS();	/* a cancel is PostgreSQL's cancel error */
		derr_ereport(&err, ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION,
					 psprintf("Check that the dstack guest agent is running and that server \"%s\"'s "
							  "guest_agent option (or DSTACK_SIMULATOR_ENDPOINT) names its socket.",
							  server->servername));
	}
	memcpy(id->app_id, info.app_id, DC_ADDR_LEN);
	memcpy(id->compose_hash, info.compose_hash, 32);
	dhex_encode(info.instance_id, Min(info.instance_id_len, 32), id->instance_id);
	compose_policy(server, &info, &id->policy);
	if (!ga_boot_info(&info, &id->boot, &err))
	{
		ga_info_free(&info);
		derr_ereport(&err, err.code == DERR_INTEGRITY ? ERRCODE_DATA_CORRUPTED : ERRCODE_FDW_ERROR,
					 psprintf("The KMS's question is asked with the boot information recomputed from the guest "
							  "agent's Info; point server \"%s\"'s guest_agent option at dstack's guest agent.",
							  server->servername));
	}
	ga_info_free(&info);
}

void
dfdw_cvm_identity(ForeignServer *server, const char *socket, DfdwCvmIdentity *id)
{
	DfdwSocketId sock;
	bool		keyed = dfdw_agent_socket_id(socket, &sock);

	if (keyed && cache.valid && dfdw_socket_id_equal(&cache.sock, &sock))
	{
		*id = cache.id;
		return;
	}
	cache.valid = false;
	read_identity(server, socket, id);
	if (keyed)
	{
		cache.sock = sock;
		cache.id = *id;
		cache.valid = true;
	}
}
