/*
 * bytebuf.h: a growable byte buffer for encoders (ABI calldata, RLP
 * transactions).  Appends never fail visibly: the first allocation failure
 * sticks and is reported once, by dc_buf_finish().
 */
#ifndef DSTACK_BYTEBUF_H
#define DSTACK_BYTEBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "derr.h"

typedef struct DcBytes
{
	uint8_t    *data;
	size_t		len;
	size_t		cap;
	bool		failed;
} DcBytes;

/* Append n bytes, growing geometrically (nothing after a failure). */
extern void dc_buf_put(DcBytes *b, const void *p, size_t n);
/*
 * Hand the bytes to the caller (who frees them), or free them and report
 * DERR_NOMEM "out of memory encoding <what>".
 */
extern bool dc_buf_finish(DcBytes *b, uint8_t **out, size_t *out_len, const char *what, DErr *err);

/*
 * A scratch buffer reused across chunks: grow *buf to at least need bytes
 * (nothing when it is large enough).  DERR_NOMEM "out of memory <what> of
 * <need> bytes"; *buf is left as it was.
 */
extern bool dc_buf_reserve(uint8_t **buf, size_t *cap, size_t need, const char *what, DErr *err);

#endif
