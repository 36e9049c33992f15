/*
 * fuzz_abi.c: the ABI decoders (abi.c) on return data as a JSON-RPC node
 * sends it.  Byte 0 is a head index for the abi_get_* readers; the rest is
 * the return data, which every whole-data decoder reads too.
 */
#include <stdlib.h>

#include "../abi.h"
#include "fuzz.h"

static const char *const known[] = {"NotOwner(address)", "InvalidThreshold(uint256,uint256)", "ZeroOwner()"};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	DErr		err = {0};
	const uint8_t *d;
	size_t		n,
				idx;
	uint64_t	u;
	bool		b;
	uint8_t		a[ABI_ADDR_LEN],
				w[32];
	uint8_t		(*arr)[ABI_ADDR_LEN] = NULL;
	size_t		narr = 0;
	char	   *s = NULL;

	if (size < 1)
		return 0;
	idx = data[0] % 16;
	d = data + 1;
	n = size - 1;

	abi_decode_bool(d, n, &b, &err);
	abi_decode_uint64(d, n, &u, &err);
	abi_decode_address(d, n, a, &err);
	abi_decode_bytes32(d, n, w, &err);
	if (abi_decode_string(d, n, &s, &err))
		free(s);
	s = NULL;
	if (abi_decode_address_array(d, n, &arr, &narr, &err))
		free(arr);
	arr = NULL;
	if (abi_decode_bool_string(d, n, &b, &s, &err))
		free(s);
	s = NULL;
	if (abi_describe_revert(d, n, &s, &err))
		free(s);
	s = NULL;
	if (abi_describe_revert_known(d, n, known, sizeof(known) / sizeof(known[0]), &s, &err))
		free(s);
	s = NULL;

	for (unsigned bits = 8; bits <= 64; bits *= 2)
		abi_get_uint(d, n, idx, bits, &u, &err);
	abi_get_bool(d, n, idx, &b, &err);
	abi_get_address(d, n, idx, a, &err);
	abi_get_bytes32(d, n, idx, w, &err);
	if (abi_get_string(d, n, idx, &s, &err))
		free(s);
	if (abi_get_address_array(d, n, idx, &arr, &narr, &err))
		free(arr);
	return 0;
}
