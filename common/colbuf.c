/*
 * colbuf.c: column buffers and their chunk serialization (see colbuf.h).
 *
 * Buffers grow by doubling and are reused across row groups (reset keeps the
 * allocation), so a seal or scan allocates once per column, not per row group.
 */
#include <stdlib.h>
#include <string.h>

#include "colbuf.h"

/* Width of a fixed-width encoding; 0 for variable width. */
int
dseal_enc_width(DsealEnc enc)
{
	switch (enc)
	{
		case DSEAL_ENC_BOOL: return 1;
		case DSEAL_ENC_I16: return 2;
		case DSEAL_ENC_I32: return 4;
		case DSEAL_ENC_I64: return 8;
		case DSEAL_ENC_F32: return 4;
		case DSEAL_ENC_F64: return 8;
		case DSEAL_ENC_B16: return 16;
		case DSEAL_ENC_VAR: return 0;
	}
	return -1;
}

static const char *const enc_names[] = {
	NULL, "bool", "i16", "i32", "i64", "f32", "f64", "b16", "var"
};

/* Names as written in the manifest's schema. */
const char *
dseal_enc_name(DsealEnc enc)
{
	if (enc < DSEAL_ENC_BOOL || enc > DSEAL_ENC_VAR)
		return "invalid";
	return enc_names[enc];
}

bool
dseal_enc_from_name(const char *name, DsealEnc *enc)
{
	for (int i = DSEAL_ENC_BOOL; i <= DSEAL_ENC_VAR; i++)
		if (strcmp(name, enc_names[i]) == 0)
		{
			*enc = (DsealEnc) i;
			return true;
		}
	return false;
}

/* Allocate for cap rows; the buffer then grows on demand. */
bool
colbuf_init(DsealColBuf *cb, DsealEnc enc, uint32_t cap, DErr *err)
{
	memset(cb, 0, sizeof(*cb));
	cb->enc = enc;
	cb->width = dseal_enc_width(enc);
	if (cb->width < 0)
		return derr_set(err, DERR_ARG, "invalid column encoding %d", (int) enc);
	if (cap == 0)
		cap = 1024;
	cb->cap = cap;
	cb->validity = calloc((cap + 7) / 8, 1);
	if (cb->width > 0)
		cb->fixed = calloc(cap, cb->width);
	else
	{
		cb->offsets = calloc((size_t) cap + 1, sizeof(uint32_t));
		cb->data_cap = 4096;
		cb->data = malloc(cb->data_cap);
	}
	if (!cb->validity || (cb->width > 0 && !cb->fixed) ||
		(cb->width == 0 && (!cb->offsets || !cb->data)))
	{
		colbuf_free(cb);
		return derr_set(err, DERR_NOMEM, "out of memory allocating a column buffer");
	}
	return true;
}

/* Empty the buffer for the next row group, keeping its memory. */
void
colbuf_reset(DsealColBuf *cb)
{
	cb->nrows = 0;
	cb->any_null = false;
	cb->data_len = 0;
	memset(cb->validity, 0, (cb->cap + 7) / 8);
	if (cb->offsets)
		cb->offsets[0] = 0;
}

void
colbuf_free(DsealColBuf *cb)
{
	free(cb->validity);
	free(cb->fixed);
	free(cb->offsets);
	free(cb->data);
	cb->validity = NULL;
	cb->fixed = NULL;
	cb->offsets = NULL;
	cb->data = NULL;
	cb->nrows = cb->cap = 0;
}

/* Double the row capacity; validity bits for new rows start cleared. */
static bool
colbuf_grow_rows(DsealColBuf *cb, DErr *err)
{
	uint32_t	ncap = cb->cap * 2;
	uint8_t    *v;

	if (ncap <= cb->cap)
		return derr_set(err, DERR_ARG, "column buffer row count overflow");
	v = realloc(cb->validity, (ncap + 7) / 8);
	if (!v)
		return derr_set(err, DERR_NOMEM, "out of memory growing a column buffer");
	memset(v + (cb->cap + 7) / 8, 0, (ncap + 7) / 8 - (cb->cap + 7) / 8);
	cb->validity = v;
	if (cb->width > 0)
	{
		uint8_t    *f = realloc(cb->fixed, (size_t) ncap * cb->width);

		if (!f)
			return derr_set(err, DERR_NOMEM, "out of memory growing a column buffer");
		cb->fixed = f;
	}
	else
	{
		uint32_t   *o = realloc(cb->offsets, ((size_t) ncap + 1) * sizeof(uint32_t));

		if (!o)
			return derr_set(err, DERR_NOMEM, "out of memory growing a column buffer");
		cb->offsets = o;
	}
	cb->cap = ncap;
	return true;
}

/*
 * Validity is tracked lazily: until the first NULL, every bit is implied set.
 * On the first NULL we set the bits of all earlier rows.
 */
static void
colbuf_mark_null(DsealColBuf *cb)
{
	uint32_t	r = cb->nrows;

	if (!cb->any_null)
	{
		for (uint32_t i = 0; i < r; i++)
			cb->validity[i >> 3] |= (uint8_t) (1u << (i & 7));
		cb->any_null = true;
	}
}

bool
colbuf_append_null(DsealColBuf *cb, DErr *err)
{
	if (cb->nrows == cb->cap && !colbuf_grow_rows(cb, err))
		return false;
	colbuf_mark_null(cb);
	if (cb->width > 0)
		memset(cb->fixed + (size_t) cb->nrows * cb->width, 0, cb->width);
	else
		cb->offsets[cb->nrows + 1] = (uint32_t) cb->data_len;
	cb->nrows++;
	return true;
}

bool
colbuf_append_fixed(DsealColBuf *cb, const void *value, DErr *err)
{
	if (cb->nrows == cb->cap && !colbuf_grow_rows(cb, err))
		return false;
	colbuf_mark_present(cb);
	memcpy(cb->fixed + (size_t) cb->nrows * cb->width, value, cb->width);
	cb->nrows++;
	return true;
}

/* Variable-width values: offsets are u32, so one chunk holds < 4 GiB of bytes. */
bool
colbuf_append_var(DsealColBuf *cb, const void *value, size_t len, DErr *err)
{
	if (cb->nrows == cb->cap && !colbuf_grow_rows(cb, err))
		return false;
	if (cb->data_len + len > UINT32_MAX)
	{
		derr_set(err, DERR_ARG, "row group too large for one chunk");
		derr_detail(err, "A variable-width chunk holds at most 4 GiB; lower dstack_seal.rows_per_group.");
		return false;
	}
	if (cb->data_len + len > cb->data_cap)
	{
		size_t		ncap = cb->data_cap;
		uint8_t    *d;

		while (ncap < cb->data_len + len)
			ncap *= 2;
		d = realloc(cb->data, ncap);
		if (!d)
			return derr_set(err, DERR_NOMEM, "out of memory growing a column buffer");
		cb->data = d;
		cb->data_cap = ncap;
	}
	colbuf_mark_present(cb);
	if (len)
		memcpy(cb->data + cb->data_len, value, len);
	cb->data_len += len;
	cb->offsets[cb->nrows + 1] = (uint32_t) cb->data_len;
	cb->nrows++;
	return true;
}

size_t
colbuf_serialized_size(const DsealColBuf *cb)
{
	size_t		n = 5;

	if (cb->any_null)
		n += (cb->nrows + 7) / 8;
	if (cb->width > 0)
		n += (size_t) cb->nrows * cb->width;
	else
		n += ((size_t) cb->nrows + 1) * 4 + cb->data_len;
	return n;
}

static void
put_u32le(uint8_t *p, uint32_t v)
{
	p[0] = v;
	p[1] = v >> 8;
	p[2] = v >> 16;
	p[3] = v >> 24;
}

static uint32_t
get_u32le(const uint8_t *p)
{
	return (uint32_t) p[0] | ((uint32_t) p[1] << 8) | ((uint32_t) p[2] << 16) | ((uint32_t) p[3] << 24);
}

/* Write the layout described in colbuf.h. */
void
colbuf_serialize(const DsealColBuf *cb, uint8_t *out)
{
	uint8_t    *p = out;

	put_u32le(p, cb->nrows);
	p[4] = cb->any_null ? 1 : 0;
	p += 5;
	if (cb->any_null)
	{
		size_t		vb = (cb->nrows + 7) / 8;

		memcpy(p, cb->validity, vb);
		/* clear padding bits past nrows so the plaintext is canonical */
		if (cb->nrows & 7)
			p[vb - 1] &= (uint8_t) ((1u << (cb->nrows & 7)) - 1);
		p += vb;
	}
	if (cb->width > 0)
	{
		memcpy(p, cb->fixed, (size_t) cb->nrows * cb->width);
		return;
	}
	for (uint32_t i = 0; i <= cb->nrows; i++)
		put_u32le(p + 4 * (size_t) i, cb->offsets[i]);
	p += ((size_t) cb->nrows + 1) * 4;
	memcpy(p, cb->data, cb->data_len);
}

/*
 * Parse a decrypted chunk.  The bytes passed GCM authentication, so they are
 * what the sealing owner's writer produced: a failure here is a writer bug, a
 * format version mismatch or an owner crafting its chunks.  Every bound is
 * checked before anything is allocated or read, and the plaintext must be
 * canonical (exactly what colbuf_serialize() writes), so a kernel and
 * PostgreSQL never read one value two ways.
 */
bool
colbuf_deserialize(DsealColBuf *cb, DsealEnc enc, const uint8_t *in, size_t len, DErr *err)
{
	uint32_t	nrows;
	bool		has_validity;
	const uint8_t *p = in;
	const uint8_t *end = in + len;
	int			width = dseal_enc_width(enc);

	if (len < 5)
		return derr_set(err, DERR_FORMAT, "column chunk is too short");
	nrows = get_u32le(p);
	has_validity = (p[4] & 1) != 0;
	if (p[4] & ~1)
		return derr_set(err, DERR_FORMAT, "column chunk has unknown flags 0x%02x", p[4]);
	p += 5;

	/*
	 * The row count comes from the chunk: check that the bytes for that many
	 * rows are there before allocating for them (a 13-byte chunk must not
	 * make the reader allocate gigabytes).
	 */
	{
		size_t		need = has_validity ? ((size_t) nrows + 7) / 8 : 0;

		need += width > 0 ? (size_t) nrows * width : ((size_t) nrows + 1) * 4;
		if ((size_t) (end - p) < need)
			return derr_set(err, DERR_FORMAT, "column chunk is too short for its %u rows", nrows);
	}
	if (cb->cap < nrows || cb->enc != enc)
	{
		colbuf_free(cb);
		if (!colbuf_init(cb, enc, nrows ? nrows : 1, err))
			return false;
	}
	colbuf_reset(cb);
	if (has_validity)
	{
		size_t		vb = (nrows + 7) / 8;

		if ((size_t) (end - p) < vb)
			return derr_set(err, DERR_FORMAT, "column chunk validity bitmap is truncated");
		memcpy(cb->validity, p, vb);
		/* canonical, as colbuf_serialize() writes it: no bit past the last row */
		if ((nrows & 7) && (p[vb - 1] & (uint8_t) ~((1u << (nrows & 7)) - 1)))
			return derr_set(err, DERR_FORMAT, "column chunk validity bitmap has bits past its %u rows", nrows);
		cb->any_null = true;
		p += vb;
	}
	if (width > 0)
	{
		size_t		need = (size_t) nrows * width;

		if ((size_t) (end - p) != need)
			return derr_set(err, DERR_FORMAT, "column chunk has %zu value bytes, expected %zu",
							(size_t) (end - p), need);
		/* a bool is one byte, 0 or 1: another value would be true to PostgreSQL but its own group to a kernel */
		if (enc == DSEAL_ENC_BOOL)
			for (size_t i = 0; i < need; i++)
				if (p[i] > 1)
					return derr_set(err, DERR_FORMAT, "column chunk has a bool byte that is neither 0 nor 1");
		memcpy(cb->fixed, p, need);
	}
	else
	{
		size_t		obytes = ((size_t) nrows + 1) * 4;
		size_t		dlen;

		if ((size_t) (end - p) < obytes)
			return derr_set(err, DERR_FORMAT, "column chunk offsets are truncated");
		dlen = (size_t) (end - p) - obytes;
		for (uint32_t i = 0; i <= nrows; i++)
		{
			cb->offsets[i] = get_u32le(p + 4 * (size_t) i);
			if ((i == 0 && cb->offsets[0] != 0) ||
				(i > 0 && cb->offsets[i] < cb->offsets[i - 1]) ||
				cb->offsets[i] > dlen)
				return derr_set(err, DERR_FORMAT, "column chunk offset %u is out of order or out of range", i);
		}
		if (cb->offsets[nrows] != dlen)
			return derr_set(err, DERR_FORMAT, "column chunk has trailing bytes");
		if (dlen > cb->data_cap)
		{
			uint8_t    *d = realloc(cb->data, dlen);

			if (!d)
				return derr_set(err, DERR_NOMEM, "out of memory reading a column chunk");
			cb->data = d;
			cb->data_cap = dlen;
		}
		memcpy(cb->data, p + obytes, dlen);
		cb->data_len = dlen;
	}
	cb->nrows = nrows;
	return true;
}
