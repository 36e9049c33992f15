/*
 * hex.h: hex encoding for keys, hashes and addresses in manifests and GUCs.
 */
#ifndef DSTACK_HEX_H
#define DSTACK_HEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "derr.h"

/* Lower-case hex, NUL-terminated; out must hold 2*len+1 bytes. */
extern void dhex_encode(const uint8_t *in, size_t len, char *out);
/*
 * Decode exactly out_len bytes from text (an optional "0x" prefix and
 * surrounding whitespace are accepted).  DERR_ARG names `what` on failure.
 */
extern bool dhex_decode_exact(const char *text, uint8_t *out, size_t out_len,
							 const char *what, DErr *err);
/* Decode any even-length hex; *out is malloc()ed.  DERR_ARG on bad input. */
extern bool dhex_decode_alloc(const char *text, uint8_t **out, size_t *out_len,
							 const char *what, DErr *err);

#endif							/* DSTACK_HEX_H */
