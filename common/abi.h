/*
 * abi.h: the slice of the Ethereum contract ABI that pg_dstack needs.
 *
 * Encoding: function selectors, static arguments (address, bytes32, uint256,
 * bool) and the one call with a dynamic argument, dstack's
 *   isAppAllowed((address,bytes32,address,bytes32,bytes32,bytes32,bytes32,string,string[]))
 * Decoding: return data of the consortium contract's views.  Return data comes
 * from a remote node, so every word, offset and length is bounds-checked and
 * anything malformed is DERR_FORMAT; nothing is read outside the buffer.
 *
 * Word access is by head index: word i of a tuple starts at byte 32*i of the
 * region being decoded, and dynamic members hold an offset relative to the
 * start of that region (the ABI's rule).
 */
#ifndef DSTACK_ABI_H
#define DSTACK_ABI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bytebuf.h"
#include "derr.h"

#define ABI_WORD		32
#define ABI_SELECTOR_LEN 4
#define ABI_ADDR_LEN	20

/* Strings and arrays longer than these are refused as malformed. */
#define ABI_MAX_STRING	(64u * 1024)
#define ABI_MAX_ARRAY	4096u

/* dstack's IAppAuth.AppBootInfo (kms/auth-eth/contracts/IAppAuth.sol). */
typedef struct AbiAppBootInfo
{
	uint8_t		app_id[ABI_ADDR_LEN];
	uint8_t		compose_hash[32];
	uint8_t		instance_id[ABI_ADDR_LEN];
	uint8_t		device_id[32];
	uint8_t		mr_aggregated[32];
	uint8_t		mr_system[32];
	uint8_t		os_image_hash[32];
	const char *tcb_status;		/* e.g. "UpToDate"; NULL means "" */
	const char *const *advisory_ids;	/* may be NULL when n_advisory_ids == 0 */
	size_t		n_advisory_ids;
} AbiAppBootInfo;

#define ABI_SIG_IS_APP_ALLOWED \
	"isAppAllowed((address,bytes32,address,bytes32,bytes32,bytes32,bytes32,string,string[]))"

/* ---- encoding ---- */

/* First 4 bytes of keccak-256 of the canonical signature, e.g. "approve(address)". */
extern void abi_selector(const char *signature, uint8_t out[ABI_SELECTOR_LEN]);

/* One 32-byte head word for each static type. */
extern void abi_word_address(const uint8_t addr[ABI_ADDR_LEN], uint8_t word[ABI_WORD]);
extern void abi_word_bytes32(const uint8_t b[32], uint8_t word[ABI_WORD]);
extern void abi_word_uint64(uint64_t v, uint8_t word[ABI_WORD]);
extern void abi_word_bool(bool v, uint8_t word[ABI_WORD]);

/* Tail pieces for encoders that build calldata by hand (ethtx.c). */
extern void abi_put_uint(DcBytes *b, uint64_t v);	/* one word */
extern void abi_put_bytes(DcBytes *b, const void *p, size_t n);	/* length, bytes, zero padding */
extern size_t abi_bytes_size(size_t n);	/* what abi_put_bytes() appends */

/*
 * Calldata for a function whose arguments are all static: the selector
 * followed by the n given words.  *out is malloc()ed.
 */
extern bool abi_encode_static_call(const char *signature, const uint8_t (*words)[ABI_WORD],
								   size_t n, uint8_t **out, size_t *out_len, DErr *err);

/*
 * General calldata for a flat argument list that may hold dynamic values:
 * static words, bytes, string and uint256[] (enough for the Solidity spec's
 * examples and any view pg_dstack may add).  Dynamic arguments go to the
 * tail in order, their head word holding the offset from the first head word.
 */
typedef enum AbiArgKind
{
	ABI_ARG_WORD,				/* any static value: use abi_word_*() to fill .word */
	ABI_ARG_BYTES,				/* bytes: .bytes, .len */
	ABI_ARG_STRING,				/* string: .bytes, .len (no NUL needed) */
	ABI_ARG_UINT_ARRAY			/* uint256[] of 64-bit values: .uints, .n */
} AbiArgKind;

typedef struct AbiArg
{
	AbiArgKind	kind;
	uint8_t		word[ABI_WORD];
	const uint8_t *bytes;
	size_t		len;
	const uint64_t *uints;
	size_t		n;
} AbiArg;

extern bool abi_encode_call(const char *signature, const AbiArg *args, size_t n,
							uint8_t **out, size_t *out_len, DErr *err);

/* Calldata for IAppAuth.isAppAllowed(bootInfo).  *out is malloc()ed. */
extern bool abi_encode_is_app_allowed(const AbiAppBootInfo *info, uint8_t **out,
									  size_t *out_len, DErr *err);

/* ---- decoding: one member of a tuple at head word `index` ---- */

/* Unsigned integer that must fit in `bits` (8..64); larger values are DERR_FORMAT. */
extern bool abi_get_uint(const uint8_t *data, size_t len, size_t index, unsigned bits,
						 uint64_t *out, DErr *err);
extern bool abi_get_bool(const uint8_t *data, size_t len, size_t index, bool *out, DErr *err);
extern bool abi_get_address(const uint8_t *data, size_t len, size_t index,
							uint8_t out[ABI_ADDR_LEN], DErr *err);
extern bool abi_get_bytes32(const uint8_t *data, size_t len, size_t index,
							uint8_t out[32], DErr *err);
/*
 * bytesN (1 <= n <= 32, e.g. bytes16): left-aligned in its word; the 32 - n
 * trailing bytes must be zero.
 */
extern bool abi_get_bytes_n(const uint8_t *data, size_t len, size_t index, size_t n,
							uint8_t *out, DErr *err);
/* Dynamic string; *out is malloc()ed and NUL-terminated (embedded NULs are refused). */
extern bool abi_get_string(const uint8_t *data, size_t len, size_t index, char **out, DErr *err);
/* Dynamic address[]; *out is malloc()ed (NULL when empty), *n the count. */
extern bool abi_get_address_array(const uint8_t *data, size_t len, size_t index,
								  uint8_t (**out)[ABI_ADDR_LEN], size_t *n, DErr *err);

/* Dynamic bytes32[]; *out is malloc()ed (NULL when empty), *n the count. */
extern bool abi_get_bytes32_array(const uint8_t *data, size_t len, size_t index,
								  uint8_t (**out)[32], size_t *n, DErr *err);

/* ---- decoding: whole return data of common shapes ---- */
extern bool abi_decode_bool(const uint8_t *data, size_t len, bool *out, DErr *err);
/* uint256 return that must fit in a uint64 (counts, thresholds). */
extern bool abi_decode_uint64(const uint8_t *data, size_t len, uint64_t *out, DErr *err);
extern bool abi_decode_address(const uint8_t *data, size_t len, uint8_t out[ABI_ADDR_LEN], DErr *err);
extern bool abi_decode_bytes32(const uint8_t *data, size_t len, uint8_t out[32], DErr *err);
extern bool abi_decode_string(const uint8_t *data, size_t len, char **out, DErr *err);
extern bool abi_decode_address_array(const uint8_t *data, size_t len,
									 uint8_t (**out)[ABI_ADDR_LEN], size_t *n, DErr *err);
/* (bool, string), e.g. isAppAllowed's (isAllowed, reason). */
extern bool abi_decode_bool_string(const uint8_t *data, size_t len, bool *b, char **s, DErr *err);

/*
 * Describe revert data in words: Error(string) gives its message,
 * Panic(uint256) "panic 0x11", anything else "custom error 0x<selector>",
 * empty data "no reason given".  *out is malloc()ed; false only on ENOMEM.
 */
extern bool abi_describe_revert(const uint8_t *data, size_t len, char **out, DErr *err);
/* The same, naming a custom error whose signature (e.g. "NotOwner()") is in known[]. */
extern bool abi_describe_revert_known(const uint8_t *data, size_t len, const char *const *known,
									  size_t n_known, char **out, DErr *err);

#endif							/* DSTACK_ABI_H */
