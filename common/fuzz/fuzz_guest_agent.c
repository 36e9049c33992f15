/*
 * fuzz_guest_agent.c: the guest-agent client (guest_agent.c) on answers
 * as an agent sends them (the scripted transport of fuzz.h).  The low two
 * bits of byte 0 pick the call: GetKey with its chain checked against the
 * seeds' KMS root, GetQuote over (byte 0 >> 2) + 1 bytes of report data, or
 * Info followed by what a mount does with it (the measured
 * app-compose, then its pg_dstack_policy).
 */
#include <stdlib.h>
#include <string.h>

#include "../guest_agent.h"
#include "../policy.h"
#include "../sigchain.h"
#include "fuzz.h"
#include "seeds.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	static uint8_t root_pub[DC_PUBKEY_LEN];
	static uint8_t app_id[DC_ADDR_LEN];
	DErr		err = {0};

	if (!ready)
	{
		if (!fuzz_seed_kms(root_pub, app_id, &err))
			abort();
		ready = true;
	}
	if (size < 1)
		return 0;
	fuzz_http_script(data + 1, size - 1);
	switch (data[0] & 3)
	{
		case 0:
			{
				GaKey		key;

				if (ga_get_key_verified("/fuzz/dstack.sock", FUZZ_SEED_KEY_PATH, FUZZ_SEED_KEY_PATH,
										root_pub, app_id, &key, &err))
					ga_key_scrub(&key);
				break;
			}
		case 1:
			{
				GaQuote		q;
				uint8_t		rd[64];

				memset(rd, 0x5a, sizeof(rd));
				if (ga_get_quote("/fuzz/dstack.sock", rd, (size_t) (data[0] >> 2) + 1, &q, &err))
					ga_quote_free(&q);
				break;
			}
		case 2:
		case 3:
			{
				GaInfo		info;

				if (ga_info("/fuzz/dstack.sock", &info, &err))
				{
					DPolicy		pol;

					if (info.app_compose != NULL)
						dpolicy_from_compose(info.app_compose, info.app_compose_len, &pol, &err);
					ga_app_compose_measured(&info, &err);
					ga_info_free(&info);
				}
				break;
			}
	}
	return 0;
}
