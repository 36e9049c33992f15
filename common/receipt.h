/*
 * receipt.h: the signed receipt of an answer (docs/receipts.md).
 *
 * The CVM builds the body as JSON text; this code makes it canonical (keys
 * sorted, compact, ASCII; JSON reals refused so every language encodes it
 * the same way), hashes it, computes the digest the receipt key signs, and
 * assembles the final document.  tools/dstack-verify checks the same rules
 * with its own code.
 */
#ifndef DSTACK_RECEIPT_H
#define DSTACK_RECEIPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "derr.h"

#define DRECEIPT_FORMAT		"dstack-receipt/v1"
#define DRECEIPT_PURPOSE	"dstack-receipt/v1"

/* Canonical text of a body (malloc()ed) and its SHA-256; DERR_FORMAT on reals or bad JSON. */
extern bool dreceipt_canonical(const char *body_json, char **canon, uint8_t body_hash[DC_SHA256_LEN],
							   DErr *err);
/* What the receipt key signs: keccak256("dstack-receipt/v1:" || body_hash). */
extern void dreceipt_digest(const uint8_t body_hash[DC_SHA256_LEN], uint8_t digest[32]);
/* report_data of the quote: body_hash || 32 zero bytes. */
extern void dreceipt_report_data(const uint8_t body_hash[DC_SHA256_LEN], uint8_t report_data[64]);

typedef struct DReceiptParts
{
	const char *canon_body;
	uint8_t		body_hash[DC_SHA256_LEN];
	uint8_t		public_key[DC_PUBKEY_LEN];
	uint8_t		chain[2][DC_SIG_LEN];
	uint8_t		signature[DC_SIG_LEN];
	const uint8_t *quote;
	size_t		quote_len;
	uint8_t		report_data[64];
	const char *event_log;		/* may be NULL */
	bool		simulated;
} DReceiptParts;

/* The whole receipt as JSON text (malloc()ed). */
extern bool dreceipt_assemble(const DReceiptParts *p, char **out, DErr *err);

#endif							/* DSTACK_RECEIPT_H */
