/*
 * keccak.c: Keccak-f[1600] and Ethereum's keccak-256.
 *
 * OpenSSL 3.0 ships SHA3-256 but not the original Keccak padding that
 * Ethereum (addresses, signature digests) and dstack's signature chain use,
 * so we carry our own small implementation.
 *
 * Reference: G. Bertoni, J. Daemen, M. Peeters, G. Van Assche, "The Keccak
 * reference", version 3.0 (2011), sections 1.2 (Keccak-f permutation: theta,
 * rho, pi, chi, iota) and 5.1 (multi-rate padding pad10*1), and the
 * "Keccak-readable-and-compact.c" reference code of the Keccak team.
 * keccak-256 here is Keccak[r=1088, c=512] with the original padding: the
 * first pad byte is 0x01 (FIPS 202 SHA3 uses 0x06), the last byte of the
 * block gets 0x80.  Lanes are little-endian 64-bit words.
 */
#include <string.h>

#include "crypto.h"

#define KECCAK_ROUNDS	24
#define KECCAK256_RATE	136				/* bytes: (1600 - 2*256) / 8 */

/* Round constants RC[i] of the iota step (Keccak reference, table 1.1). */
static const uint64_t keccak_rc[KECCAK_ROUNDS] = {
	0x0000000000000001ULL, 0x0000000000008082ULL, 0x800000000000808aULL,
	0x8000000080008000ULL, 0x000000000000808bULL, 0x0000000080000001ULL,
	0x8000000080008081ULL, 0x8000000000008009ULL, 0x000000000000008aULL,
	0x0000000000000088ULL, 0x0000000080008009ULL, 0x000000008000000aULL,
	0x000000008000808bULL, 0x800000000000008bULL, 0x8000000000008089ULL,
	0x8000000000008003ULL, 0x8000000000008002ULL, 0x8000000000000080ULL,
	0x000000000000800aULL, 0x800000008000000aULL, 0x8000000080008081ULL,
	0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL
};

/*
 * Rotation offsets of rho and the lane order of pi, walked together along
 * the (x, y) -> (y, 2x + 3y) cycle that starts at lane 1 (the compact
 * formulation of the reference code).
 */
static const unsigned keccak_rho[24] = {
	1, 3, 6, 10, 15, 21, 28, 36, 45, 55, 2, 14,
	27, 41, 56, 8, 25, 43, 62, 18, 39, 61, 20, 44
};
static const unsigned keccak_pi[24] = {
	10, 7, 11, 17, 18, 3, 5, 16, 8, 21, 24, 4,
	15, 23, 19, 13, 12, 2, 20, 14, 22, 9, 6, 1
};

/* Rotate left; n is never 0 or 64 here (rho offsets are 1..62). */
static inline uint64_t
rotl64(uint64_t v, unsigned n)
{
	return (v << n) | (v >> (64 - n));
}

/* Keccak-f[1600]: 24 rounds of theta, rho+pi, chi, iota on 25 lanes A[x + 5y]. */
static void
keccak_f1600(uint64_t a[25])
{
	for (int round = 0; round < KECCAK_ROUNDS; round++)
	{
		uint64_t	c[5];
		uint64_t	t;

		/* theta: xor each lane with the parities of two neighbouring columns */
		for (int x = 0; x < 5; x++)
			c[x] = a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20];
		for (int x = 0; x < 5; x++)
		{
			uint64_t	d = c[(x + 4) % 5] ^ rotl64(c[(x + 1) % 5], 1);

			for (int y = 0; y < 25; y += 5)
				a[y + x] ^= d;
		}

		/* rho and pi: rotate each lane and move it to its new position */
		t = a[1];
		for (int i = 0; i < 24; i++)
		{
			unsigned	j = keccak_pi[i];
			uint64_t	tmp = a[j];

			a[j] = rotl64(t, keccak_rho[i]);
			t = tmp;
		}

		/* chi: the only non-linear step, row by row */
		for (int y = 0; y < 25; y += 5)
		{
			for (int x = 0; x < 5; x++)
				c[x] = a[y + x];
			for (int x = 0; x < 5; x++)
				a[y + x] = c[x] ^ ((~c[(x + 1) % 5]) & c[(x + 2) % 5]);
		}

		/* iota: break symmetry with the round constant */
		a[0] ^= keccak_rc[round];
	}
}

/* XOR one byte into the state at byte offset pos of the rate, lanes little-endian. */
static inline void
keccak_xor_byte(uint64_t a[25], size_t pos, uint8_t b)
{
	a[pos / 8] ^= (uint64_t) b << (8 * (pos % 8));
}

/*
 * Ethereum keccak-256 over the concatenation of several buffers: absorb the
 * bytes 136 at a time, pad the tail with 0x01 ... 0x80 (pad10*1; the two
 * marks share one byte as 0x81 when a single byte is left), squeeze 32 bytes.
 * Taking parts lets callers hash "prefix || value || value" without building
 * (and allocating) the concatenation.
 */
void
dc_keccak256_parts(const DcBuf *parts, size_t nparts, uint8_t out[DC_KECCAK256_LEN])
{
	uint64_t	a[25];
	size_t		pos = 0;		/* bytes absorbed into the current block */

	memset(a, 0, sizeof(a));
	for (size_t k = 0; k < nparts; k++)
	{
		const uint8_t *p = parts[k].data;

		for (size_t i = 0; i < parts[k].len; i++)
		{
			keccak_xor_byte(a, pos, p[i]);
			if (++pos == KECCAK256_RATE)
			{
				keccak_f1600(a);
				pos = 0;
			}
		}
	}
	keccak_xor_byte(a, pos, 0x01);
	keccak_xor_byte(a, KECCAK256_RATE - 1, 0x80);
	keccak_f1600(a);

	for (size_t i = 0; i < DC_KECCAK256_LEN; i++)
		out[i] = (uint8_t) (a[i / 8] >> (8 * (i % 8)));

	/* the input may be secret (it never is today, but be safe) */
	explicit_bzero(a, sizeof(a));
}

/* The common single-buffer case. */
void
dc_keccak256(const void *data, size_t len, uint8_t out[DC_KECCAK256_LEN])
{
	DcBuf		part = {data, len};

	dc_keccak256_parts(&part, 1, out);
}
