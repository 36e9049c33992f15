/*
 * seeds.c: the fixed test identities of the fuzz seeds (see seeds.h).
 */
#include <stdio.h>
#include <string.h>

#include "../hex.h"
#include "../sigchain.h"
#include "seeds.h"

bool
fuzz_seed_recipe(DsealRecipe *recipe, uint8_t recipient_sk[DC_SECKEY_LEN], uint8_t owner_sk[DC_SECKEY_LEN],
				 DErr *err)
{
	uint8_t		root_sk[DC_SECKEY_LEN];

	memset(root_sk, 0x33, sizeof(root_sk));
	if (recipient_sk != NULL)
		memset(recipient_sk, 0x22, DC_SECKEY_LEN);
	if (owner_sk != NULL)
		memset(owner_sk, 0x11, DC_SECKEY_LEN);
	if (recipe == NULL)
		return true;
	memset(recipe, 0, sizeof(*recipe));
	memset(recipe->app_id, 0xaa, sizeof(recipe->app_id));
	memset(recipe->compose_hash, 0xbb, sizeof(recipe->compose_hash));
	return dc_pubkey_from_seckey(root_sk, recipe->kms_root_pubkey, err);
}

bool
fuzz_seed_kms(uint8_t root_pub[DC_PUBKEY_LEN], uint8_t app_id[DC_ADDR_LEN], DErr *err)
{
	uint8_t		root[DC_SECKEY_LEN];

	memset(root, 0x01, sizeof(root));
	memset(app_id, 0xaa, DC_ADDR_LEN);
	return dc_pubkey_from_seckey(root, root_pub, err);
}

bool
fuzz_seed_getkey(char *out, size_t outlen, DErr *err)
{
	uint8_t		root[32],
				app[32],
				der[32],
				root_pub[DC_PUBKEY_LEN],
				app_pub[DC_PUBKEY_LEN],
				der_pub[DC_PUBKEY_LEN],
				app_id[DC_ADDR_LEN],
				dg[32],
				s0[DC_SIG_LEN],
				s1[DC_SIG_LEN];
	char		hk[65],
				h0[2 * DC_SIG_LEN + 1],
				h1[2 * DC_SIG_LEN + 1];

	memset(root, 0x01, 32);
	memset(app, 0x02, 32);
	memset(der, 0x03, 32);
	if (!fuzz_seed_kms(root_pub, app_id, err) ||
		!dc_pubkey_from_seckey(app, app_pub, err) || !dc_pubkey_from_seckey(der, der_pub, err))
		return false;
	dstack_sigchain_app_digest(FUZZ_SEED_KEY_PATH, der_pub, dg);
	if (!dc_sign_recoverable(app, dg, s0, err))
		return false;
	dstack_sigchain_kms_digest(app_id, app_pub, dg);
	if (!dc_sign_recoverable(root, dg, s1, err))
		return false;
	dhex_encode(der, 32, hk);
	dhex_encode(s0, DC_SIG_LEN, h0);
	dhex_encode(s1, DC_SIG_LEN, h1);
	snprintf(out, outlen, "{\"key\":\"%s\",\"signature_chain\":[\"%s\",\"%s\"]}", hk, h0, h1);
	return true;
}
