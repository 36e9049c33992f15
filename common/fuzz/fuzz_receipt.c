/*
 * fuzz_receipt.c: the receipt canonicaliser (receipt.c) on arbitrary body
 * text.  A canonical body is a fixed point: canonicalising it again gives
 * the same bytes and the same hash.
 */
#include <stdlib.h>
#include <string.h>

#include "../receipt.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *body = fuzz_strndup(data, size);
	char	   *canon = NULL;
	char	   *again = NULL;
	uint8_t		h1[DC_SHA256_LEN],
				h2[DC_SHA256_LEN];
	DErr		err = {0};

	if (dreceipt_canonical(body, &canon, h1, &err))
	{
		if (!dreceipt_canonical(canon, &again, h2, &err) || strcmp(canon, again) != 0 ||
			memcmp(h1, h2, sizeof(h1)) != 0)
			abort();
		free(again);
		free(canon);
	}
	free(body);
	return 0;
}
