/*
 * recipe.c: resolve and check the recipe a seal is bound to.
 *
 * Sources: the recipe JSON file named by dstack_seal.recipe_file, or the
 * individual GUCs.  Nothing is written before the recipe is complete and the
 * recipient key's dstack signature chain verifies back to the configured KMS
 * root for the configured app id: a silo must never encrypt to a key that a
 * CVM of the agreed recipe cannot prove it holds.
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "crypto.h"
#include "dstack_seal.h"
#include "hex.h"
#include "pg_common.h"
#include "sigchain.h"

/* Raw text values of a recipe before validation (palloc'd). */
typedef struct RecipeText
{
	char	   *kms_root_pubkey;
	char	   *app_id;
	char	   *compose_hash;
	char	   *owner_key_file;
	char	   *recipient_key;
	char	   *chain0;
	char	   *chain1;
	char	   *purpose;
	char	   *output_dir;
} RecipeText;

static char *
nz(const char *s)
{
	return (s && s[0]) ? pstrdup(s) : NULL;
}

/* "dstack-seal/v1/<owner hex>": the guest-agent path/purpose of an owner's recipient key. */
char *
seal_default_purpose(const uint8 owner_id[DC_ADDR_LEN])
{
	char		path[DSEAL_RECIPIENT_PATH_LEN];

	dseal_recipient_path(owner_id, path);
	return pstrdup(path);
}

static void
recipe_from_gucs(RecipeText *t)
{
	t->kms_root_pubkey = nz(dseal_guc_kms_root_pubkey);
	t->app_id = nz(dseal_guc_app_id);
	t->compose_hash = nz(dseal_guc_compose_hash);
	t->owner_key_file = nz(dseal_guc_owner_key_file);
	t->recipient_key = nz(dseal_guc_recipient_key);
	t->output_dir = nz(dseal_guc_output_dir);
	if (dseal_guc_recipient_key_chain && dseal_guc_recipient_key_chain[0])
	{
		char	   *copy = pstrdup(dseal_guc_recipient_key_chain);
		char	   *comma = strchr(copy, ',');

		if (comma == NULL || strchr(comma + 1, ',') != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("dstack_seal.recipient_key_chain must hold exactly two signatures"),
					 errdetail("The value is the guest agent's signature_chain: two hex strings separated by a comma."),
					 errhint("Copy signature_chain[0] and signature_chain[1] from the CVM's published recipient key.")));
		*comma = '\0';
		t->chain0 = copy;
		t->chain1 = comma + 1;
	}
}

/* Copy a string member of a jansson object into palloc memory. */
static char *
jstr(json_t *obj, const char *key)
{
	json_t	   *v = json_object_get(obj, key);

	return json_is_string(v) ? pstrdup(json_string_value(v)) : NULL;
}

/*
 * Parse the recipe file.  jansson allocates with malloc, so we copy every
 * value into palloc memory and free the tree before any ereport.
 */
static void
recipe_from_file(RecipeText *t, const char *path)
{
	json_error_t jerr;
	json_t	   *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	json_t	   *rcp;
	json_t	   *chain;
	bool		chain_ok;

	if (root == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("could not read recipe file \"%s\"", path),
				 errdetail("%s (line %d).", jerr.text, jerr.line),
				 errhint("Fix the file or clear dstack_seal.recipe_file to use the individual settings.")));
	rcp = json_object_get(root, "recipient");
	chain = json_object_get(rcp, "signature_chain");
	t->kms_root_pubkey = jstr(root, "kms_root_pubkey");
	t->app_id = jstr(root, "app_id");
	t->compose_hash = jstr(root, "compose_hash");
	t->owner_key_file = jstr(root, "owner_key_file");
	t->output_dir = jstr(root, "output_dir");
	t->recipient_key = jstr(rcp, "public_key");
	t->purpose = jstr(rcp, "purpose");
	chain_ok = json_is_array(chain) && json_array_size(chain) == 2;
	if (chain_ok)
	{
		t->chain0 = json_is_string(json_array_get(chain, 0)) ?
			pstrdup(json_string_value(json_array_get(chain, 0))) : NULL;
		t->chain1 = json_is_string(json_array_get(chain, 1)) ?
			pstrdup(json_string_value(json_array_get(chain, 1))) : NULL;
	}
	json_decref(root);
	if (rcp != NULL && !chain_ok)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("recipe file \"%s\" has no valid recipient.signature_chain", path),
				 errhint("Paste the CVM's published recipient key object unchanged: "
						 "{\"public_key\": ..., \"signature_chain\": [..., ...], \"purpose\": ...}.")));
	if (!dseal_guc_output_dir || !dseal_guc_output_dir[0] || t->output_dir)
		return;
	t->output_dir = pstrdup(dseal_guc_output_dir);
}

/* A missing piece of the recipe: say which setting supplies it. */
static void
require(const char *value, const char *guc, const char *what, const char *source)
{
	if (value == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the sealing recipe has no %s", what),
				 errdetail("The recipe is read from %s.", source),
				 errhint("Set dstack_seal.%s (or the \"%s\" key of the recipe file).", guc, guc)));
}

/* Decode a hex recipe value, raising an error that names the setting. */
static void
decode_or_fail(const char *text, uint8 *out, size_t len, const char *guc)
{
	DErr		err = {0};

	if (!dhex_decode_exact(text, out, len, guc, &err))
		derr_ereport(&err, ERRCODE_INVALID_PARAMETER_VALUE,
					 psprintf("Check dstack_seal.%s: it must be %zu bytes of hex.", guc, len));
}

/*
 * Read the owner key file.  Like PostgreSQL's own ssl_key_file, the file
 * must not be accessible to group or others: it is the owner's signing key.
 */
static void
load_owner_key(SealRecipe *r, const char *path)
{
	struct stat st;
	char		buf[130];
	ssize_t		n;
	int			fd;
	DErr		err = {0};

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open owner key file \"%s\": %m", path),
				 errhint("Set dstack_seal.owner_key_file to a file readable by the server's operating-system user.")));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
	{
		close(fd);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("owner key file \"%s\" is not a regular file", path)));
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO))
	{
		close(fd);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("owner key file \"%s\" has group or world access", path),
				 errdetail("The file holds the owner's signing key."),
				 errhint("Run: chmod 600 %s", path)));
	}
	n = read(fd, buf, sizeof(buf) - 1);
	{
		int			save_errno = errno;	/* for %m: close() may change errno */

		close(fd);
		errno = save_errno;
	}
	if (n < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read owner key file \"%s\": %m", path)));
	buf[n] = '\0';
	if (!dhex_decode_exact(buf, r->owner_sk, DC_SECKEY_LEN, "owner key", &err) ||
		!dc_seckey_verify(r->owner_sk, &err))
	{
		explicit_bzero(buf, sizeof(buf));
		explicit_bzero(r->owner_sk, sizeof(r->owner_sk));
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("owner key file \"%s\" does not hold a secp256k1 private key", path),
				 errdetail("The file must contain 64 hex digits (an optional 0x prefix is allowed)."),
				 errhint("Write the owner's Ethereum private key to the file, e.g. with: cast wallet new.")));
	}
	explicit_bzero(buf, sizeof(buf));
}

/* Verify the recipient key's chain against the recipe (see sigchain.h). */
static void
check_recipient_chain(SealRecipe *r)
{
	DErr		err = {0};

	if (!dstack_sigchain_verify(r->recipe.kms_root_pubkey, r->recipe.app_id, r->recipient_purpose,
								r->recipient_pub, r->recipient_chain[0], r->recipient_chain[1],
								NULL, &err))
		derr_ereport(&err, ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
					 psprintf("Fetch the recipient key again from the analysis CVM (GetKey at \"%s\") and "
							  "check that dstack_seal.kms_root_pubkey and dstack_seal.app_id name the agreed recipe.",
							  r->recipient_purpose));
}

void
seal_recipe_load(SealRecipe *r)
{
	RecipeText	t = {0};
	DErr		err = {0};
	uint8		raw[DC_PUBKEY_LEN];
	uint8		pub[DC_PUBKEY_LEN];

	memset(r, 0, sizeof(*r));
	if (dseal_guc_recipe_file && dseal_guc_recipe_file[0])
	{
		recipe_from_file(&t, dseal_guc_recipe_file);
		r->source = psprintf("recipe file \"%s\"", dseal_guc_recipe_file);
	}
	else
	{
		recipe_from_gucs(&t);
		r->source = "the dstack_seal.* settings";
	}
	require(t.kms_root_pubkey, "kms_root_pubkey", "KMS root public key", r->source);
	require(t.app_id, "app_id", "app id", r->source);
	require(t.compose_hash, "compose_hash", "compose-hash", r->source);
	require(t.owner_key_file, "owner_key_file", "owner key file", r->source);
	require(t.recipient_key, "recipient_key", "recipient key", r->source);
	require(t.chain0, "recipient_key_chain", "recipient key signature chain", r->source);

	decode_or_fail(t.kms_root_pubkey, raw, DC_PUBKEY_LEN, "kms_root_pubkey");
	if (!dc_pubkey_normalize(raw, DC_PUBKEY_LEN, r->recipe.kms_root_pubkey, &err))
		derr_ereport(&err, ERRCODE_INVALID_PARAMETER_VALUE,
					 "Set dstack_seal.kms_root_pubkey to the KMS root key of the consortium's dstack KMS.");
	decode_or_fail(t.app_id, r->recipe.app_id, DC_ADDR_LEN, "app_id");
	decode_or_fail(t.compose_hash, r->recipe.compose_hash, DSEAL_COMPOSE_HASH_LEN, "compose_hash");
	decode_or_fail(t.recipient_key, raw, DC_PUBKEY_LEN, "recipient_key");
	if (!dc_pubkey_normalize(raw, DC_PUBKEY_LEN, r->recipient_pub, &err))
		derr_ereport(&err, ERRCODE_INVALID_PARAMETER_VALUE,
					 "Set dstack_seal.recipient_key to the public key the analysis CVM published.");
	decode_or_fail(t.chain0, r->recipient_chain[0], DC_SIG_LEN, "recipient_key_chain");
	decode_or_fail(t.chain1, r->recipient_chain[1], DC_SIG_LEN, "recipient_key_chain");

	load_owner_key(r, t.owner_key_file);
	if (!dc_pubkey_from_seckey(r->owner_sk, pub, &err) ||
		!dc_pubkey_to_address(pub, DC_PUBKEY_LEN, r->owner_id, &err))
	{
		seal_recipe_scrub(r);
		derr_ereport(&err, 0, NULL);
	}
	r->recipient_purpose = t.purpose ? t.purpose : seal_default_purpose(r->owner_id);
	r->output_dir = t.output_dir;
	check_recipient_chain(r);
}

void
seal_recipe_scrub(SealRecipe *r)
{
	explicit_bzero(r->owner_sk, sizeof(r->owner_sk));
}
