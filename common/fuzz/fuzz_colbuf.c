/*
 * fuzz_colbuf.c: a chunk's plaintext through colbuf_deserialize().  A chunk
 * that authenticates was written by whoever holds the data key -- the owner
 * who sealed it -- so the CVM must not trust its layout either.  Input:
 * byte 0 picks the encoding, the rest is the plaintext.  What parses must
 * serialise back to the same bytes, and every value must be readable.
 */
#include <stdlib.h>
#include <string.h>

#include "../colbuf.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	DsealColBuf cb = {0};
	DErr		err = {0};
	DsealEnc	enc;

	if (size < 1)
		return 0;
	enc = (DsealEnc) (DSEAL_ENC_BOOL + data[0] % (DSEAL_ENC_VAR - DSEAL_ENC_BOOL + 1));
	if (colbuf_deserialize(&cb, enc, data + 1, size - 1, &err))
	{
		size_t		n = colbuf_serialized_size(&cb);
		uint8_t    *out = malloc(n ? n : 1);
		uint64_t	sum = 0;

		if (out == NULL)
			abort();
		colbuf_serialize(&cb, out);
		if (n != size - 1 || memcmp(out, data + 1, n) != 0)
			abort();
		free(out);
		for (uint32_t i = 0; i < cb.nrows; i++)
		{
			if (colbuf_is_null(&cb, i))
				continue;
			if (cb.width > 0)
				sum += colbuf_fixed_at(&cb, i)[cb.width - 1];
			else
			{
				uint32_t	len;
				const uint8_t *v = colbuf_var_at(&cb, i, &len);

				if (len > 0)
					sum += v[len - 1];
			}
		}
		(void) sum;
	}
	colbuf_free(&cb);
	return 0;
}
