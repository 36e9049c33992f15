/*
 * colbuf.h: one column's values for one row group, in the plain binary
 * layout that is sealed into a chunk (docs/format.md, "A chunk").
 *
 * Serialized layout of a chunk's plaintext (all integers little-endian):
 *   u32 nrows
 *   u8  flags            bit 0: a validity bitmap follows
 *   [validity]           ceil(nrows/8) bytes, bit i (LSB first) set = row i not NULL
 *   fixed-width encodings: nrows * width bytes (NULL slots are zero)
 *   variable-width:        (nrows+1) u32 offsets, then the bytes
 * This is Arrow's shape on purpose: a GPU or a vectorised scan gets plain
 * arrays without per-row decoding.
 */
#ifndef DSTACK_COLBUF_H
#define DSTACK_COLBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "derr.h"

typedef enum DsealEnc
{
	DSEAL_ENC_BOOL = 1,			/* 1 byte, 0 or 1 */
	DSEAL_ENC_I16,				/* int2 */
	DSEAL_ENC_I32,				/* int4, date (days since 2000-01-01) */
	DSEAL_ENC_I64,				/* int8, timestamp(tz) (us since 2000-01-01) */
	DSEAL_ENC_F32,				/* float4, IEEE 754 */
	DSEAL_ENC_F64,				/* float8, IEEE 754 */
	DSEAL_ENC_B16,				/* uuid, 16 bytes */
	DSEAL_ENC_VAR				/* bytes: text, bytea, or a type's text form */
} DsealEnc;

typedef struct DsealColBuf
{
	DsealEnc	enc;
	int			width;			/* bytes per value; 0 for DSEAL_ENC_VAR */
	uint32_t	nrows;
	uint32_t	cap;			/* rows allocated */
	bool		any_null;
	uint8_t    *validity;		/* ceil(cap/8) bytes */
	uint8_t    *fixed;			/* cap * width bytes */
	uint32_t   *offsets;		/* cap + 1 entries (var only) */
	uint8_t    *data;			/* var bytes */
	size_t		data_len;
	size_t		data_cap;
} DsealColBuf;

extern int	dseal_enc_width(DsealEnc enc);
extern const char *dseal_enc_name(DsealEnc enc);
extern bool dseal_enc_from_name(const char *name, DsealEnc *enc);

extern bool colbuf_init(DsealColBuf *cb, DsealEnc enc, uint32_t cap, DErr *err);
extern void colbuf_reset(DsealColBuf *cb);
extern void colbuf_free(DsealColBuf *cb);
extern bool colbuf_append_null(DsealColBuf *cb, DErr *err);
extern bool colbuf_append_fixed(DsealColBuf *cb, const void *value, DErr *err);
extern bool colbuf_append_var(DsealColBuf *cb, const void *value, size_t len, DErr *err);

/*
 * Record row nrows as present: once a column has a NULL its validity bits are
 * kept explicitly; before that every row is implied present (colbuf.c).
 */
static inline void
colbuf_mark_present(DsealColBuf *cb)
{
	uint32_t	r = cb->nrows;

	if (cb->any_null)
		cb->validity[r >> 3] |= (uint8_t) (1u << (r & 7));
}

/*
 * Append a width-byte value when there is room for the row; false means
 * "call colbuf_append_fixed()", which grows the buffer.  Inline, with width
 * a constant at the call site: the per-value path of a seal.
 */
static inline bool
colbuf_append_fixed_inline(DsealColBuf *cb, const void *value, int width)
{
	if (cb->nrows >= cb->cap)
		return false;
	colbuf_mark_present(cb);
	memcpy(cb->fixed + (size_t) cb->nrows * width, value, width);
	cb->nrows++;
	return true;
}

static inline bool
colbuf_is_null(const DsealColBuf *cb, uint32_t row)
{
	return cb->any_null && !(cb->validity[row >> 3] & (1u << (row & 7)));
}

static inline const uint8_t *
colbuf_fixed_at(const DsealColBuf *cb, uint32_t row)
{
	return cb->fixed + (size_t) row * cb->width;
}

static inline const uint8_t *
colbuf_var_at(const DsealColBuf *cb, uint32_t row, uint32_t *len)
{
	*len = cb->offsets[row + 1] - cb->offsets[row];
	return cb->data + cb->offsets[row];
}

/* Size of the serialized plaintext. */
extern size_t colbuf_serialized_size(const DsealColBuf *cb);
/* Serialize into out (colbuf_serialized_size bytes). */
extern void colbuf_serialize(const DsealColBuf *cb, uint8_t *out);
/*
 * Parse a chunk plaintext into cb (reinitialised with enc); every length and
 * offset is bounds-checked before anything is allocated, and the plaintext
 * must be canonical (no validity bit past the last row, bools 0 or 1):
 * DERR_FORMAT on anything else.
 */
extern bool colbuf_deserialize(DsealColBuf *cb, DsealEnc enc, const uint8_t *in, size_t len,
							   DErr *err);

#endif							/* DSTACK_COLBUF_H */
