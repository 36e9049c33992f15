/*
 * fuzz_dseal_reader.c: a whole .dseal file through the reader
 * (dseal_reader.c): header, trailer, manifest, chunk layout; then, when it
 * opens, every chunk's keyless check and, with the seeds' test recipe and
 * recipient key (make_seeds.c), the unwrap, decryption, decompression and
 * column parsing of every chunk.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../dseal.h"
#include "fuzz.h"
#include "seeds.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int	fd = -1;
	static char path[64];
	static DsealRecipe recipe;
	static uint8_t recipient_sk[DC_SECKEY_LEN];
	DErr		err = {0};
	DsealReader *r;

	if (fd < 0)
	{
		fd = memfd_create("fuzz.dseal", 0);
		if (fd < 0)
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		if (!fuzz_seed_recipe(&recipe, recipient_sk, NULL, &err))
			abort();
	}
	if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t) size)
		abort();
	r = dseal_reader_open(path, &err);
	if (r == NULL)
		return 0;
	{
		const DsealManifest *m = dseal_reader_manifest(r);
		bool		keyed = dseal_reader_unwrap(r, &recipe, recipient_sk, &err);

		for (uint32_t g = 0; g < m->nrowgroups; g++)
			for (int c = 0; c < m->ncols; c++)
			{
				DsealColBuf cb = {0};

				dseal_reader_check_chunk(r, g, (uint32_t) c, &err);
				if (keyed && dseal_reader_read_chunk(r, g, (uint32_t) c, &cb, &err) &&
					cb.nrows != m->rowgroups[g].nrows)
					abort();
				colbuf_free(&cb);
			}
	}
	dseal_reader_close(r);
	return 0;
}
