/*
 * fuzz_manifest.c: the .dseal manifest parser (manifest.c) on arbitrary
 * text.  A manifest comes with a published file: anyone who can put a file
 * in the import directory writes these bytes.
 */
#include <stdlib.h>

#include "../dseal.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	DErr		err = {0};
	DsealManifest *m = dseal_manifest_parse((const char *) data, size, &err);

	if (m != NULL)
	{
		uint8_t		hh[DC_SHA256_LEN];

		/* a parsed manifest is internally consistent: its header hashes to its header_hash */
		if (!dseal_manifest_header_hash(m, hh, &err) || !dc_equal(hh, m->header_hash, DC_SHA256_LEN))
			abort();
		dseal_manifest_free(m);
	}
	return 0;
}
