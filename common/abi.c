/*
 * abi.c: Ethereum ABI encoding of the calls pg_dstack makes and strict
 * decoding of their return data (see abi.h for the contract of each
 * function).  Encoding follows the Solidity ABI specification: static values
 * in place, dynamic ones (string, T[], tuples holding them) as an offset in
 * the head pointing at their encoding in the tail.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abi.h"
#include "bytebuf.h"
#include "crypto.h"

/* ---------------------------------------------------------------- encoding */

/* Append one word holding an unsigned integer (offsets, lengths). */
void
abi_put_uint(DcBytes *b, uint64_t v)
{
	uint8_t		w[ABI_WORD];

	abi_word_uint64(v, w);
	dc_buf_put(b, w, ABI_WORD);
}

/* Size of a bytes or string tail: length word plus the bytes padded to 32. */
size_t
abi_bytes_size(size_t n)
{
	return ABI_WORD + (n + ABI_WORD - 1) / ABI_WORD * ABI_WORD;
}

/* Append a bytes or string tail: length, bytes, zero padding. */
void
abi_put_bytes(DcBytes *b, const void *p, size_t n)
{
	static const uint8_t zeros[ABI_WORD] = {0};

	abi_put_uint(b, n);
	dc_buf_put(b, p, n);
	dc_buf_put(b, zeros, (ABI_WORD - n % ABI_WORD) % ABI_WORD);
}

/* A string argument (NULL is empty): its tail size, and its tail. */
static size_t
abi_string_size(const char *s)
{
	return abi_bytes_size(s ? strlen(s) : 0);
}

static void
abi_put_string(DcBytes *b, const char *s)
{
	abi_put_bytes(b, s, s ? strlen(s) : 0);
}

/* Selector = keccak256(signature)[0..4], as every Ethereum tool computes it. */
void
abi_selector(const char *signature, uint8_t out[ABI_SELECTOR_LEN])
{
	uint8_t		h[DC_KECCAK256_LEN];

	dc_keccak256(signature, strlen(signature), h);
	memcpy(out, h, ABI_SELECTOR_LEN);
}

/* Addresses are right-aligned in their word (uint160). */
void
abi_word_address(const uint8_t addr[ABI_ADDR_LEN], uint8_t word[ABI_WORD])
{
	memset(word, 0, ABI_WORD - ABI_ADDR_LEN);
	memcpy(word + ABI_WORD - ABI_ADDR_LEN, addr, ABI_ADDR_LEN);
}

/* bytes32 fills its word as is. */
void
abi_word_bytes32(const uint8_t b[32], uint8_t word[ABI_WORD])
{
	memcpy(word, b, ABI_WORD);
}

/* Integers are big-endian, right-aligned. */
void
abi_word_uint64(uint64_t v, uint8_t word[ABI_WORD])
{
	memset(word, 0, ABI_WORD);
	for (int i = 0; i < 8; i++)
		word[ABI_WORD - 1 - i] = (uint8_t) (v >> (8 * i));
}

/* bool is a uint8 0 or 1. */
void
abi_word_bool(bool v, uint8_t word[ABI_WORD])
{
	memset(word, 0, ABI_WORD);
	word[ABI_WORD - 1] = v ? 1 : 0;
}

/* Static-only calls: the view getters and hasApproved(address). */
bool
abi_encode_static_call(const char *signature, const uint8_t (*words)[ABI_WORD], size_t n,
					   uint8_t **out, size_t *out_len, DErr *err)
{
	DcBytes		b = {0};
	uint8_t		sel[ABI_SELECTOR_LEN];

	abi_selector(signature, sel);
	dc_buf_put(&b, sel, sizeof(sel));
	for (size_t i = 0; i < n; i++)
		dc_buf_put(&b, words[i], ABI_WORD);
	return dc_buf_finish(&b, out, out_len, signature, err);
}

/* Bytes of one dynamic argument's tail: length word, then padded data or elements. */
static size_t
abi_arg_tail_size(const AbiArg *a)
{
	if (a->kind == ABI_ARG_UINT_ARRAY)
		return ABI_WORD + a->n * ABI_WORD;
	return ABI_WORD + (a->len + ABI_WORD - 1) / ABI_WORD * ABI_WORD;
}

/*
 * The general head/tail layout of the Solidity ABI for a flat argument list:
 * one head word per argument (value, or offset of the tail relative to the
 * start of the head), then the tails in argument order.
 */
bool
abi_encode_call(const char *signature, const AbiArg *args, size_t n,
				uint8_t **out, size_t *out_len, DErr *err)
{
	static const uint8_t zeros[ABI_WORD] = {0};
	DcBytes		b = {0};
	uint8_t		sel[ABI_SELECTOR_LEN];
	size_t		off = n * ABI_WORD;

	*out = NULL;
	*out_len = 0;
	for (size_t i = 0; i < n; i++)
	{
		if (args[i].kind == ABI_ARG_UINT_ARRAY ? (args[i].n > ABI_MAX_ARRAY || (args[i].n && !args[i].uints))
			: args[i].kind != ABI_ARG_WORD && (args[i].len > ABI_MAX_STRING || (args[i].len && !args[i].bytes)))
			return derr_set(err, DERR_ARG, "argument %zu of %s is too long or not set", i, signature);
	}
	abi_selector(signature, sel);
	dc_buf_put(&b, sel, sizeof(sel));
	for (size_t i = 0; i < n; i++)
	{
		if (args[i].kind == ABI_ARG_WORD)
			dc_buf_put(&b, args[i].word, ABI_WORD);
		else
		{
			abi_put_uint(&b, off);
			off += abi_arg_tail_size(&args[i]);
		}
	}
	for (size_t i = 0; i < n; i++)
	{
		const AbiArg *a = &args[i];

		if (a->kind == ABI_ARG_WORD)
			continue;
		if (a->kind == ABI_ARG_UINT_ARRAY)
		{
			abi_put_uint(&b, a->n);
			for (size_t k = 0; k < a->n; k++)
				abi_put_uint(&b, a->uints[k]);
			continue;
		}
		abi_put_uint(&b, a->len);
		if (a->len > 0)
			dc_buf_put(&b, a->bytes, a->len);
		dc_buf_put(&b, zeros, (ABI_WORD - a->len % ABI_WORD) % ABI_WORD);
	}
	return dc_buf_finish(&b, out, out_len, signature, err);
}

/*
 * isAppAllowed takes one tuple that contains dynamic members, so the tuple
 * itself is dynamic: the argument head holds its offset (0x20), the tuple has
 * nine head words (seven static values, then offsets of tcbStatus and
 * advisoryIds relative to the tuple's start), then the two tails.  A string[]
 * is its length, one offset per element (relative to the word after the
 * length), then the elements.
 */
bool
abi_encode_is_app_allowed(const AbiAppBootInfo *info, uint8_t **out, size_t *out_len, DErr *err)
{
	DcBytes		b = {0};
	uint8_t		sel[ABI_SELECTOR_LEN];
	uint8_t		w[ABI_WORD];
	const size_t head = 9 * ABI_WORD;
	size_t		off;

	*out = NULL;
	*out_len = 0;
	if (info->n_advisory_ids > ABI_MAX_ARRAY || (info->n_advisory_ids > 0 && info->advisory_ids == NULL))
		return derr_set(err, DERR_ARG, "invalid advisory id list for isAppAllowed");
	for (size_t i = 0; i < info->n_advisory_ids; i++)
		if (info->advisory_ids[i] == NULL)
			return derr_set(err, DERR_ARG, "advisory id %zu is not set", i);

	abi_selector(ABI_SIG_IS_APP_ALLOWED, sel);
	dc_buf_put(&b, sel, sizeof(sel));
	abi_put_uint(&b, ABI_WORD);	/* offset of the tuple */

	abi_word_address(info->app_id, w);
	dc_buf_put(&b, w, ABI_WORD);
	dc_buf_put(&b, info->compose_hash, ABI_WORD);
	abi_word_address(info->instance_id, w);
	dc_buf_put(&b, w, ABI_WORD);
	dc_buf_put(&b, info->device_id, ABI_WORD);
	dc_buf_put(&b, info->mr_aggregated, ABI_WORD);
	dc_buf_put(&b, info->mr_system, ABI_WORD);
	dc_buf_put(&b, info->os_image_hash, ABI_WORD);
	abi_put_uint(&b, head);	/* tcbStatus */
	abi_put_uint(&b, head + abi_string_size(info->tcb_status));	/* advisoryIds */

	abi_put_string(&b, info->tcb_status);

	abi_put_uint(&b, info->n_advisory_ids);
	off = info->n_advisory_ids * ABI_WORD;
	for (size_t i = 0; i < info->n_advisory_ids; i++)
	{
		abi_put_uint(&b, off);
		off += abi_string_size(info->advisory_ids[i]);
	}
	for (size_t i = 0; i < info->n_advisory_ids; i++)
		abi_put_string(&b, info->advisory_ids[i]);

	return dc_buf_finish(&b, out, out_len, "isAppAllowed calldata", err);
}

/* ---------------------------------------------------------------- decoding */

/* One place for the wording of malformed-data errors. */
static bool
abi_malformed(DErr *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool
abi_malformed(DErr *err, const char *fmt, ...)
{
	va_list		ap;
	char		detail[sizeof(err->detail)];

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	derr_set(err, DERR_FORMAT, "malformed abi return data");
	derr_detail(err, "%s", detail);
	return false;
}

/* Locate word `index`; bounds-checked with overflow-safe arithmetic. */
static bool
abi_word_at(const uint8_t *data, size_t len, size_t index, const uint8_t **w, DErr *err)
{
	if (index >= len / ABI_WORD)
		return abi_malformed(err, "Word %zu lies past the end of the %zu-byte data.", index, len);
	*w = data + index * ABI_WORD;
	return true;
}

/* Read a big-endian word that must fit in `bits` bits. */
static bool
abi_word_uint(const uint8_t *w, unsigned bits, uint64_t *out, const char *what, DErr *err)
{
	size_t		nbytes = bits / 8;
	uint64_t	v = 0;

	for (size_t i = 0; i < ABI_WORD - nbytes; i++)
		if (w[i] != 0)
			return abi_malformed(err, "The %s does not fit in %u bits.", what, bits);
	for (size_t i = ABI_WORD - nbytes; i < ABI_WORD; i++)
		v = (v << 8) | w[i];
	*out = v;
	return true;
}

/* Narrow integers (uint32 in policy()) as well as uint256 counts. */
bool
abi_get_uint(const uint8_t *data, size_t len, size_t index, unsigned bits, uint64_t *out, DErr *err)
{
	const uint8_t *w = NULL;

	if (bits < 8 || bits > 64 || bits % 8 != 0)
		return derr_set(err, DERR_ARG, "unsupported integer width %u", bits);
	if (!abi_word_at(data, len, index, &w, err))
		return false;
	return abi_word_uint(w, bits, out, "integer", err);
}

/* Strict bool: a word of 0 or 1, nothing else (Solidity's decoder agrees). */
bool
abi_get_bool(const uint8_t *data, size_t len, size_t index, bool *out, DErr *err)
{
	const uint8_t *w = NULL;
	uint64_t	v = 0;

	if (!abi_word_at(data, len, index, &w, err))
		return false;
	if (!abi_word_uint(w, 8, &v, "bool", err))
		return false;
	if (v > 1)
		return abi_malformed(err, "Word %zu holds %" PRIu64 ", not a bool.", index, v);
	*out = v == 1;
	return true;
}

/* Strict address: the 12 high bytes must be zero. */
bool
abi_get_address(const uint8_t *data, size_t len, size_t index, uint8_t out[ABI_ADDR_LEN], DErr *err)
{
	const uint8_t *w = NULL;

	if (!abi_word_at(data, len, index, &w, err))
		return false;
	for (size_t i = 0; i < ABI_WORD - ABI_ADDR_LEN; i++)
		if (w[i] != 0)
			return abi_malformed(err, "Word %zu is not an address: its high 12 bytes are not zero.", index);
	memcpy(out, w + ABI_WORD - ABI_ADDR_LEN, ABI_ADDR_LEN);
	return true;
}

/* bytes32: any 32 bytes. */
bool
abi_get_bytes32(const uint8_t *data, size_t len, size_t index, uint8_t out[32], DErr *err)
{
	const uint8_t *w = NULL;

	if (!abi_word_at(data, len, index, &w, err))
		return false;
	memcpy(out, w, ABI_WORD);
	return true;
}

/* bytesN: the value fills the first n bytes, the rest of the word must be zero. */
bool
abi_get_bytes_n(const uint8_t *data, size_t len, size_t index, size_t n, uint8_t *out, DErr *err)
{
	const uint8_t *w = NULL;

	if (n < 1 || n > ABI_WORD)
		return derr_set(err, DERR_ARG, "unsupported bytesN width %zu", n);
	if (!abi_word_at(data, len, index, &w, err))
		return false;
	for (size_t i = n; i < ABI_WORD; i++)
		if (w[i] != 0)
			return abi_malformed(err, "Word %zu is not a bytes%zu: its %zu low bytes are not zero.",
								 index, n, ABI_WORD - n);
	memcpy(out, w, n);
	return true;
}

/*
 * Follow the offset in head word `index` to a dynamic value and read its
 * length word; checks the offset and that `elem_size * count` bytes follow.
 */
static bool
abi_dynamic_at(const uint8_t *data, size_t len, size_t index, size_t elem_size, size_t max_count,
			   const uint8_t **body, size_t *count, DErr *err)
{
	const uint8_t *w = NULL;
	uint64_t	off = 0;
	uint64_t	n = 0;

	if (!abi_word_at(data, len, index, &w, err))
		return false;
	if (!abi_word_uint(w, 64, &off, "offset", err))
		return false;
	if (off > len || len - off < ABI_WORD)
		return abi_malformed(err, "The offset %" PRIu64 " in word %zu points past the end of the %zu-byte data.",
							 off, index, len);
	if (!abi_word_uint(data + off, 64, &n, "length", err))
		return false;
	if (n > max_count)
		return abi_malformed(err, "The length %" PRIu64 " at offset %" PRIu64 " exceeds the limit of %zu.",
							 n, off, max_count);
	if (n * elem_size > len - off - ABI_WORD)
		return abi_malformed(err, "The value at offset %" PRIu64 " claims %" PRIu64 " bytes but only %zu remain.",
							 off, n * elem_size, (size_t) (len - off - ABI_WORD));
	*body = data + off + ABI_WORD;
	*count = (size_t) n;
	return true;
}

/* Strings come back NUL-terminated for C callers, so embedded NULs are refused. */
bool
abi_get_string(const uint8_t *data, size_t len, size_t index, char **out, DErr *err)
{
	const uint8_t *body;
	size_t		n;

	*out = NULL;
	if (!abi_dynamic_at(data, len, index, 1, ABI_MAX_STRING, &body, &n, err))
		return false;
	if (memchr(body, '\0', n) != NULL)
		return abi_malformed(err, "The string at word %zu contains a NUL byte.", index);
	*out = malloc(n + 1);
	if (*out == NULL)
		return derr_set(err, DERR_NOMEM, "out of memory decoding a string");
	memcpy(*out, body, n);
	(*out)[n] = '\0';
	return true;
}

/* address[]: a length and that many strict address words. */
bool
abi_get_address_array(const uint8_t *data, size_t len, size_t index,
					  uint8_t (**out)[ABI_ADDR_LEN], size_t *n, DErr *err)
{
	const uint8_t *body;
	size_t		count;
	uint8_t		(*arr)[ABI_ADDR_LEN] = NULL;

	*out = NULL;
	*n = 0;
	if (!abi_dynamic_at(data, len, index, ABI_WORD, ABI_MAX_ARRAY, &body, &count, err))
		return false;
	if (count > 0)
	{
		arr = calloc(count, ABI_ADDR_LEN);
		if (arr == NULL)
			return derr_set(err, DERR_NOMEM, "out of memory decoding an address array");
	}
	for (size_t i = 0; i < count; i++)
	{
		if (!abi_get_address(body, count * ABI_WORD, i, arr[i], err))
		{
			free(arr);
			return false;
		}
	}
	*out = arr;
	*n = count;
	return true;
}

/* bytes32[]: a length and that many words, taken as they are. */
bool
abi_get_bytes32_array(const uint8_t *data, size_t len, size_t index,
					  uint8_t (**out)[32], size_t *n, DErr *err)
{
	const uint8_t *body;
	size_t		count;
	uint8_t		(*arr)[32] = NULL;

	*out = NULL;
	*n = 0;
	if (!abi_dynamic_at(data, len, index, ABI_WORD, ABI_MAX_ARRAY, &body, &count, err))
		return false;
	if (count > 0)
	{
		arr = malloc(count * 32);
		if (arr == NULL)
			return derr_set(err, DERR_NOMEM, "out of memory decoding a bytes32 array");
		memcpy(arr, body, count * 32);
	}
	*out = arr;
	*n = count;
	return true;
}

/*
 * Checks shared by the whole-return decoders: empty data means the address
 * has no code (or no such function), which deserves its own words; ABI data
 * is always whole words.
 */
static bool
abi_check_return(const uint8_t *data, size_t len, size_t min_len, bool exact, DErr *err)
{
	(void) data;
	if (len == 0)
	{
		derr_set(err, DERR_FORMAT, "contract call returned no data");
		derr_detail(err, "The address holds no contract, or its contract has no such function.");
		return false;
	}
	if (len % ABI_WORD != 0)
		return abi_malformed(err, "The return data is %zu bytes, not a whole number of 32-byte words.", len);
	if (len < min_len || (exact && len != min_len))
		return abi_malformed(err, "The return data is %zu bytes; expected %s%zu.", len,
							 exact ? "" : "at least ", min_len);
	return true;
}

/* A whole return of one bool (revoked(), isApproved(), hasApproved()). */
bool
abi_decode_bool(const uint8_t *data, size_t len, bool *out, DErr *err)
{
	return abi_check_return(data, len, ABI_WORD, true, err) &&
		abi_get_bool(data, len, 0, out, err);
}

/* A whole return of one uint that must fit 64 bits (threshold(), approvalCount()). */
bool
abi_decode_uint64(const uint8_t *data, size_t len, uint64_t *out, DErr *err)
{
	return abi_check_return(data, len, ABI_WORD, true, err) &&
		abi_get_uint(data, len, 0, 64, out, err);
}

/* A whole return of one address (revokedBy()). */
bool
abi_decode_address(const uint8_t *data, size_t len, uint8_t out[ABI_ADDR_LEN], DErr *err)
{
	return abi_check_return(data, len, ABI_WORD, true, err) &&
		abi_get_address(data, len, 0, out, err);
}

/* A whole return of one bytes32 (composeHash()). */
bool
abi_decode_bytes32(const uint8_t *data, size_t len, uint8_t out[32], DErr *err)
{
	return abi_check_return(data, len, ABI_WORD, true, err) &&
		abi_get_bytes32(data, len, 0, out, err);
}

/* A whole return of one string (revokeReason()). */
bool
abi_decode_string(const uint8_t *data, size_t len, char **out, DErr *err)
{
	*out = NULL;
	return abi_check_return(data, len, 2 * ABI_WORD, false, err) &&
		abi_get_string(data, len, 0, out, err);
}

/* A whole return of one address[] (owners(), approvers()). */
bool
abi_decode_address_array(const uint8_t *data, size_t len, uint8_t (**out)[ABI_ADDR_LEN],
						 size_t *n, DErr *err)
{
	*out = NULL;
	*n = 0;
	return abi_check_return(data, len, 2 * ABI_WORD, false, err) &&
		abi_get_address_array(data, len, 0, out, n, err);
}

/* A whole return of (bool, string): isAppAllowed's (isAllowed, reason). */
bool
abi_decode_bool_string(const uint8_t *data, size_t len, bool *b, char **s, DErr *err)
{
	*s = NULL;
	return abi_check_return(data, len, 3 * ABI_WORD, false, err) &&
		abi_get_bool(data, len, 0, b, err) &&
		abi_get_string(data, len, 1, s, err);
}

/* strdup that reports through DErr. */
static bool
abi_strdup(const char *s, char **out, DErr *err)
{
	*out = strdup(s);
	if (*out == NULL)
		return derr_set(err, DERR_NOMEM, "out of memory describing revert data");
	return true;
}

/*
 * Reverts reach us as raw bytes in a JSON-RPC error; turning them into words
 * is what lets an operator see "not approved" instead of a hex blob.
 */
bool
abi_describe_revert(const uint8_t *data, size_t len, char **out, DErr *err)
{
	return abi_describe_revert_known(data, len, NULL, 0, out, err);
}

/*
 * The same, naming custom errors whose signatures the caller knows (the
 * consortium contract's), e.g. "custom error AlreadyRevoked()": a selector
 * alone means nothing to an operator.
 */
bool
abi_describe_revert_known(const uint8_t *data, size_t len, const char *const *known, size_t n_known,
						  char **out, DErr *err)
{
	static const uint8_t sel_error[4] = {0x08, 0xc3, 0x79, 0xa0};	/* Error(string) */
	static const uint8_t sel_panic[4] = {0x4e, 0x48, 0x7b, 0x71};	/* Panic(uint256) */
	char		buf[96];
	DErr		ignore = {0};

	*out = NULL;
	if (len == 0)
		return abi_strdup("no reason given", out, err);
	if (len >= 4 && memcmp(data, sel_error, 4) == 0 && (len - 4) % ABI_WORD == 0)
	{
		char	   *msg;

		if (abi_get_string(data + 4, len - 4, 0, &msg, &ignore))
		{
			*out = msg;
			return true;
		}
		if (ignore.code == DERR_NOMEM)
			return derr_set(err, DERR_NOMEM, "out of memory describing revert data");
	}
	if (len == 4 + ABI_WORD && memcmp(data, sel_panic, 4) == 0)
	{
		uint64_t	code = 0;

		if (abi_get_uint(data + 4, len - 4, 0, 64, &code, &ignore))
		{
			snprintf(buf, sizeof(buf), "panic 0x%" PRIx64, code);
			return abi_strdup(buf, out, err);
		}
	}
	for (size_t i = 0; len >= 4 && i < n_known; i++)
	{
		uint8_t		sel[ABI_SELECTOR_LEN];

		abi_selector(known[i], sel);
		if (memcmp(sel, data, 4) == 0)
		{
			char		named[192];

			snprintf(named, sizeof(named), "custom error %s", known[i]);
			return abi_strdup(named, out, err);
		}
	}
	if (len >= 4)
		snprintf(buf, sizeof(buf), "custom error 0x%02x%02x%02x%02x (%zu bytes)",
				 data[0], data[1], data[2], data[3], len);
	else
		snprintf(buf, sizeof(buf), "malformed revert data (%zu bytes)", len);
	return abi_strdup(buf, out, err);
}
