/*
 * dstack_seal.c: module initialisation and settings of the silo extension.
 *
 * Every setting that names a key, a file or the recipe is superuser-only
 * (PGC_SUSET): a user who could point the owner key file elsewhere could make
 * the server sign a manifest for them.  Hex settings are checked when they
 * are set, so a typo is reported at SET time, not in the middle of a seal.
 */
#include "postgres.h"

#include <limits.h>

#include "fmgr.h"
#include "utils/guc.h"

#include "crypto.h"
#include "dstack_seal.h"
#include "hex.h"

PG_MODULE_MAGIC;

char	   *dseal_guc_recipe_file = NULL;
char	   *dseal_guc_kms_root_pubkey = NULL;
char	   *dseal_guc_app_id = NULL;
char	   *dseal_guc_compose_hash = NULL;
char	   *dseal_guc_owner_key_file = NULL;
char	   *dseal_guc_recipient_key = NULL;
char	   *dseal_guc_recipient_key_chain = NULL;
char	   *dseal_guc_output_dir = NULL;
int			dseal_guc_rows_per_group = DSEAL_DEFAULT_ROWS_PER_GROUP;
int			dseal_guc_compression_level = 3;
int			dseal_guc_progress_interval = 1000000;

void		_PG_init(void);

/* Shared body of the hex check hooks: empty is allowed (= not configured). */
static bool
check_hex_len(char **newval, size_t len, const char *what)
{
	DErr		err = {0};
	uint8		buf[64];

	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	if (!dhex_decode_exact(*newval, buf, len, what, &err))
	{
		GUC_check_errdetail("%s", err.detail[0] ? err.detail : err.msg);
		return false;
	}
	return true;
}

static bool
check_kms_root(char **newval, void **extra, GucSource source)
{
	uint8		raw[DC_PUBKEY_LEN],
				norm[DC_PUBKEY_LEN];
	DErr		err = {0};

	if (!check_hex_len(newval, DC_PUBKEY_LEN, "kms_root_pubkey"))
		return false;
	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	dhex_decode_exact(*newval, raw, DC_PUBKEY_LEN, "kms_root_pubkey", &err);
	if (!dc_pubkey_normalize(raw, DC_PUBKEY_LEN, norm, &err))
	{
		GUC_check_errdetail("The value is not a point on secp256k1 (a 33-byte compressed public key).");
		return false;
	}
	return true;
}

static bool
check_app_id(char **newval, void **extra, GucSource source)
{
	return check_hex_len(newval, DC_ADDR_LEN, "app_id");
}

static bool
check_compose_hash(char **newval, void **extra, GucSource source)
{
	return check_hex_len(newval, DSEAL_COMPOSE_HASH_LEN, "compose_hash");
}

void
_PG_init(void)
{
	DefineCustomStringVariable("dstack_seal.recipe_file",
							   "Path of a recipe JSON file; when set it supplies the whole recipe.",
							   "Keys: kms_root_pubkey, app_id, compose_hash, owner_key_file, recipient "
							   "{public_key, signature_chain, purpose}, output_dir.",
							   &dseal_guc_recipe_file, "", PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("dstack_seal.kms_root_pubkey",
							   "dstack KMS root public key (33-byte compressed secp256k1, hex).",
							   NULL, &dseal_guc_kms_root_pubkey, "", PGC_SUSET, 0,
							   check_kms_root, NULL, NULL);
	DefineCustomStringVariable("dstack_seal.app_id",
							   "Analysis app id: the consortium contract address (20 bytes, hex).",
							   NULL, &dseal_guc_app_id, "", PGC_SUSET, 0, check_app_id, NULL, NULL);
	DefineCustomStringVariable("dstack_seal.compose_hash",
							   "Compose-hash of the agreed analysis recipe (32 bytes, hex).",
							   NULL, &dseal_guc_compose_hash, "", PGC_SUSET, 0,
							   check_compose_hash, NULL, NULL);
	DefineCustomStringVariable("dstack_seal.owner_key_file",
							   "File holding the data owner's secp256k1 private key (hex, mode 0600).",
							   "The same key approves on chain; its address is the owner id.",
							   &dseal_guc_owner_key_file, "", PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("dstack_seal.recipient_key",
							   "Recipient public key published by the analysis CVM (33 bytes, hex).",
							   NULL, &dseal_guc_recipient_key, "", PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("dstack_seal.recipient_key_chain",
							   "dstack signature chain of the recipient key: two hex signatures separated by a comma.",
							   NULL, &dseal_guc_recipient_key_chain, "", PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("dstack_seal.output_dir",
							   "Directory where dstack_seal() writes <table>.dseal when no path is given.",
							   NULL, &dseal_guc_output_dir, "", PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("dstack_seal.rows_per_group",
							"Rows per sealed row group; bounds the memory of a seal and of a scan.",
							NULL, &dseal_guc_rows_per_group, DSEAL_DEFAULT_ROWS_PER_GROUP,
							1, 16 * 1024 * 1024, PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("dstack_seal.compression_level",
							"zstd level for sealed chunks (0 disables compression).",
							NULL, &dseal_guc_compression_level, 3, 0, 19, PGC_USERSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("dstack_seal.progress_interval",
							"Report a progress NOTICE every this many rows (0 disables).",
							"Progress is also visible in pg_stat_progress_copy.",
							&dseal_guc_progress_interval, 1000000, 0, INT_MAX, PGC_USERSET, 0,
							NULL, NULL, NULL);
	MarkGUCPrefixReserved("dstack_seal");
}
