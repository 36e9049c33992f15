/*
 * dstack_seal.h: map of the silo-side extension.
 *
 *   dstack_seal.c  module init and the GUCs (recipe settings, tuning)
 *   recipe.c       loads and checks the recipe: KMS root, app id, compose-hash,
 *                  owner key file, recipient key + its dstack signature chain
 *   seal.c         dstack_seal(): streams a query's rows into a .dseal writer
 *   verify.c       dstack_seal_verify(): keyless integrity report of a file
 *
 * Format and crypto live in ../common (no PostgreSQL), Datum conversion and
 * the DErr -> ereport boundary in ../pg_common.
 */
#ifndef DSTACK_SEAL_H
#define DSTACK_SEAL_H

#include "postgres.h"

#include "dseal.h"

/* GUC values (dstack_seal.c) */
extern char *dseal_guc_recipe_file;
extern char *dseal_guc_kms_root_pubkey;
extern char *dseal_guc_app_id;
extern char *dseal_guc_compose_hash;
extern char *dseal_guc_owner_key_file;
extern char *dseal_guc_recipient_key;
extern char *dseal_guc_recipient_key_chain;
extern char *dseal_guc_output_dir;
extern int	dseal_guc_rows_per_group;
extern int	dseal_guc_compression_level;
extern int	dseal_guc_progress_interval;

/* The resolved recipe of one seal; owner_sk is scrubbed by seal_recipe_scrub(). */
typedef struct SealRecipe
{
	DsealRecipe recipe;
	uint8		owner_sk[DC_SECKEY_LEN];
	uint8		owner_id[DC_ADDR_LEN];
	uint8		recipient_pub[DC_PUBKEY_LEN];
	uint8		recipient_chain[2][DC_SIG_LEN];
	char	   *recipient_purpose;
	char	   *output_dir;		/* may be NULL */
	const char *source;			/* "recipe file <path>" or "GUCs", for messages */
} SealRecipe;

/* recipe.c */
extern void seal_recipe_load(SealRecipe *r);
extern void seal_recipe_scrub(SealRecipe *r);
extern char *seal_default_purpose(const uint8 owner_id[DC_ADDR_LEN]);

#endif							/* DSTACK_SEAL_H */
