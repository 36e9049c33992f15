/*
 * seeds.h: the fixed test identities of the fuzz seeds (the keys of
 * tests/test_dseal_file.c and tests/test_http.c), shared by make_seeds.c,
 * which writes corpus/, and by the targets that must get past a signature
 * or an unwrap to reach deeper code.  Test keys only: never a real one.
 */
#ifndef DSTACK_FUZZ_SEEDS_H
#define DSTACK_FUZZ_SEEDS_H

#include <stdbool.h>
#include <stdint.h>

#include "../crypto.h"
#include "../derr.h"
#include "../wrap.h"

#define FUZZ_SEED_KEY_PATH	"dstack-seal/v1/fuzz"

/*
 * The sealing recipe of the seed .dseal files: KMS root key 0x33.., app id
 * 0xaa.., compose-hash 0xbb..; recipient key 0x22..; owner key 0x11.. (any
 * of the out parameters may be NULL).
 */
extern bool fuzz_seed_recipe(DsealRecipe *recipe, uint8_t recipient_sk[DC_SECKEY_LEN],
							 uint8_t owner_sk[DC_SECKEY_LEN], DErr *err);

/* The KMS root (key 0x01..) and app id (0xaa..) of the seed GetKey answers. */
extern bool fuzz_seed_kms(uint8_t root_pub[DC_PUBKEY_LEN], uint8_t app_id[DC_ADDR_LEN], DErr *err);

/*
 * A GetKey answer as dstack's KMS builds it for FUZZ_SEED_KEY_PATH: derived
 * key 0x03.., chain[0] by app key 0x02.., chain[1] by the root above.
 */
extern bool fuzz_seed_getkey(char *out, size_t outlen, DErr *err);

#endif							/* DSTACK_FUZZ_SEEDS_H */
