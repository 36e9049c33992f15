/*
 * bytebuf.c: the growable byte buffer of the encoders (bytebuf.h).
 */
#include <stdlib.h>
#include <string.h>

#include "bytebuf.h"

void
dc_buf_put(DcBytes *b, const void *p, size_t n)
{
	if (b->failed || n == 0)
		return;
	if (b->len + n > b->cap)
	{
		size_t		ncap = b->cap ? b->cap * 2 : 256;
		uint8_t    *nd;

		while (ncap < b->len + n)
			ncap *= 2;
		nd = realloc(b->data, ncap);
		if (nd == NULL)
		{
			b->failed = true;
			return;
		}
		b->data = nd;
		b->cap = ncap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

bool
dc_buf_finish(DcBytes *b, uint8_t **out, size_t *out_len, const char *what, DErr *err)
{
	if (b->failed)
	{
		free(b->data);
		*out = NULL;
		*out_len = 0;
		return derr_set(err, DERR_NOMEM, "out of memory encoding %s", what);
	}
	*out = b->data;
	*out_len = b->len;
	return true;
}

bool
dc_buf_reserve(uint8_t **buf, size_t *cap, size_t need, const char *what, DErr *err)
{
	uint8_t    *n;

	if (*cap >= need)
		return true;
	n = realloc(*buf, need);
	if (n == NULL)
		return derr_set(err, DERR_NOMEM, "out of memory %s of %zu bytes", what, need);
	*buf = n;
	*cap = need;
	return true;
}
