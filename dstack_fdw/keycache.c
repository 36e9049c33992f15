/*
 * keycache.c: the guest agent's derived keys, verified once per backend.
 *
 * The mount rule asks the guest agent for the owner's recipient key
 * (GetKey at the owner's path), dstack_run() for the receipt key and the
 * chain ledger for its signing key, on every statement.  What GetKey
 * answers is fixed for the life of the CVM: dstack's guest agent derives
 * it from the app key the KMS released once, at boot.  So the key and its
 * signature chain, once verified to the configured KMS root for the app
 * id, are kept for the backend: a GetKey round trip and two signature
 * recoveries less per statement.
 *
 * What is not cached: the consortium check (mount.c reads the chain every
 * statement, before any key is used, so a revocation is seen by the next
 * statement as before) and the unwrapped data keys (per scan, scrubbed at
 * its end).
 *
 * An entry is keyed by everything the answer depends on: the agent's socket
 * file (path, device, inode, change time: another agent behind the same path
 * is a miss: identity.c's DfdwSocketId), the path and purpose asked for, the KMS
 * root and the app id the chain was verified against.  An agent reached
 * over HTTP (DSTACK_SIMULATOR_ENDPOINT, no socket file) is not cached.
 * Entries are plain memory (no palloc: nothing to leak into a context that
 * is later reused), scrubbed with explicit_bzero when replaced and when the
 * backend exits.
 */
#include "postgres.h"

#include "storage/ipc.h"

#include "dstack_fdw.h"
#include "guest_agent.h"
#include "identity.h"
#include "keycache.h"

#define KEYCACHE_SLOTS 16

typedef struct KeyEntry
{
	bool		valid;
	DfdwSocketId sock;
	char		path[DSEAL_RECIPIENT_PATH_LEN];
	char		purpose[DSEAL_RECIPIENT_PATH_LEN];
	uint8		kms_root[DC_PUBKEY_LEN];
	uint8		app_id[DC_ADDR_LEN];
	GaKey		key;
} KeyEntry;

static KeyEntry entries[KEYCACHE_SLOTS];
static int	next_victim = 0;
static bool exit_hook = false;

static void
scrub_entry(KeyEntry *e)
{
	explicit_bzero(e, sizeof(*e));
}

static void
scrub_all(int code, Datum arg)
{
	for (int i = 0; i < KEYCACHE_SLOTS; i++)
		scrub_entry(&entries[i]);
}

/* The entry key of a request; false when it cannot be cached. */
static bool
entry_key(const char *socket, const char *path, const char *purpose, const uint8 kms_root[DC_PUBKEY_LEN],
		  const uint8 app_id[DC_ADDR_LEN], KeyEntry *k)
{
	memset(k, 0, sizeof(*k));
	if (strlen(path) >= sizeof(k->path) || strlen(purpose) >= sizeof(k->purpose) ||
		!dfdw_agent_socket_id(socket, &k->sock))
		return false;
	strlcpy(k->path, path, sizeof(k->path));
	strlcpy(k->purpose, purpose, sizeof(k->purpose));
	memcpy(k->kms_root, kms_root, DC_PUBKEY_LEN);
	memcpy(k->app_id, app_id, DC_ADDR_LEN);
	return true;
}

static bool
same_key(const KeyEntry *a, const KeyEntry *b)
{
	return dfdw_socket_id_equal(&a->sock, &b->sock) &&
		strcmp(a->path, b->path) == 0 && strcmp(a->purpose, b->purpose) == 0 &&
		memcmp(a->kms_root, b->kms_root, DC_PUBKEY_LEN) == 0 && memcmp(a->app_id, b->app_id, DC_ADDR_LEN) == 0;
}

bool
dfdw_agent_key(const char *socket, const char *path, const char *purpose, const uint8 kms_root[DC_PUBKEY_LEN],
			   const uint8 app_id[DC_ADDR_LEN], GaKey *key, DErr *err)
{
	KeyEntry	k;
	bool		keyed = dfdw_guc_key_cache && entry_key(socket, path, purpose, kms_root, app_id, &k);

	if (keyed)
		for (int i = 0; i < KEYCACHE_SLOTS; i++)
			if (entries[i].valid && same_key(&entries[i], &k))
			{
				*key = entries[i].key;
				scrub_entry(&k);
				return true;
			}
	if (!ga_get_key_verified(socket, path, purpose, kms_root, app_id, key, err))
	{
		scrub_entry(&k);
		return false;
	}
	if (keyed)
	{
		KeyEntry   *e = &entries[next_victim];

		next_victim = (next_victim + 1) % KEYCACHE_SLOTS;
		if (!exit_hook)
		{
			on_proc_exit(scrub_all, (Datum) 0);
			exit_hook = true;
		}
		scrub_entry(e);
		*e = k;
		e->key = *key;
		e->valid = true;
	}
	scrub_entry(&k);
	return true;
}
