/*
 * hex.c: hex encoding and strict decoding (see hex.h).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "hex.h"

/* Encode lower-case: manifests are canonical, so case must be fixed. */
void
dhex_encode(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++)
	{
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0xf];
	}
	out[2 * len] = '\0';
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Trim whitespace and an optional 0x prefix; returns start and sets *len. */
static const char *
hex_span(const char *text, size_t *len)
{
	const char *end;

	while (*text && isspace((unsigned char) *text))
		text++;
	if (text[0] == '0' && (text[1] == 'x' || text[1] == 'X'))
		text += 2;
	end = text + strlen(text);
	while (end > text && isspace((unsigned char) end[-1]))
		end--;
	*len = (size_t) (end - text);
	return text;
}

static bool
hex_decode_span(const char *p, size_t n, uint8_t *out, const char *what, DErr *err)
{
	for (size_t i = 0; i < n / 2; i++)
	{
		int			hi = hexval((unsigned char) p[2 * i]);
		int			lo = hexval((unsigned char) p[2 * i + 1]);

		if (hi < 0 || lo < 0)
		{
			derr_set(err, DERR_ARG, "invalid hex in %s", what);
			derr_detail(err, "Character %zu is not a hexadecimal digit.", 2 * i + (hi < 0 ? 0 : 1) + 1);
			return false;
		}
		out[i] = (uint8_t) ((hi << 4) | lo);
	}
	return true;
}

/* Strict: wrong length is an error, never a silent truncation. */
bool
dhex_decode_exact(const char *text, uint8_t *out, size_t out_len, const char *what, DErr *err)
{
	size_t		n;
	const char *p;

	if (text == NULL)
		return derr_set(err, DERR_ARG, "%s is not set", what);
	p = hex_span(text, &n);
	if (n != 2 * out_len)
	{
		derr_set(err, DERR_ARG, "invalid length for %s", what);
		derr_detail(err, "Expected %zu hex digits (%zu bytes), got %zu.", 2 * out_len, out_len, n);
		return false;
	}
	return hex_decode_span(p, n, out, what, err);
}

/* For variable-length values such as quotes and signatures. */
bool
dhex_decode_alloc(const char *text, uint8_t **out, size_t *out_len, const char *what, DErr *err)
{
	size_t		n;
	const char *p;

	*out = NULL;
	*out_len = 0;
	if (text == NULL)
		return derr_set(err, DERR_ARG, "%s is not set", what);
	p = hex_span(text, &n);
	if (n % 2 != 0)
	{
		derr_set(err, DERR_ARG, "invalid length for %s", what);
		derr_detail(err, "A hex string needs an even number of digits; got %zu.", n);
		return false;
	}
	*out = malloc(n / 2 + 1);
	if (*out == NULL)
		return derr_set(err, DERR_NOMEM, "out of memory decoding %s", what);
	if (!hex_decode_span(p, n, *out, what, err))
	{
		free(*out);
		*out = NULL;
		return false;
	}
	*out_len = n / 2;
	return true;
}
