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

/* A dataset an answer read. */
typedef struct DReceiptDataset
{
	const char *table;			/* qualified name in the CVM */
	uint8_t		owner[DC_ADDR_LEN];
	uint8_t		dataset_id[16];
	uint8_t		manifest_hash[DC_SHA256_LEN];
} DReceiptDataset;

/*
 * Everything a receipt body says (docs/receipts.md).  Epsilons are in
 * millionths and become decimal strings with six decimals; deltas are texts
 * as the policy writes them; hashes and addresses become hex.
 */
typedef struct DReceiptBody
{
	const char *query;
	const char *result_json;	/* {"columns": [...], "rows": [[...], ...]}, values as strings */
	const DReceiptDataset *datasets;
	size_t		n_datasets;
	int64_t		eps_charged;
	int64_t		eps_aggregates;
	int64_t		eps_selection;
	int64_t		eps_spent;		/* after this charge */
	int64_t		eps_total;
	const char *delta;			/* charged: "0" without partition selection */
	bool		selection;		/* grouped: keys released by partition selection */
	int64_t		selection_k;	/* rows one unit adds to the answer, at most */
	int64_t		selection_threshold;
	/* the policy the run was under */
	int64_t		pol_epsilon_total;
	const char *pol_delta;
	int64_t		pol_epsilon_select;
	uint32_t	pol_min_group_size;
	const char *pol_privacy_unit;
	int			pol_max_rows_per_unit;
	/* contribution bounding */
	int			rows_per_unit;
	int64_t		sensitivity;
	bool		seeded;			/* noise from the test seed: not private */
	int64_t		run_id;
	uint8_t		app_id[DC_ADDR_LEN];
	uint8_t		compose_hash[32];
	const char *instance_id;
	uint64_t	chain_id;
	uint64_t	block_number;
	uint8_t		block_hash[32];
	uint64_t	approvals;
	uint64_t	threshold;
	/* the charge on the consortium contract (ledger 'chain'); absent: a local ledger */
	bool		onchain;
	uint8_t		charge_tx[32];
	uint64_t	charge_block;
	uint64_t	charge_log_index;
	uint64_t	charge_index;
	uint8_t		charge_nonce[32];
	uint8_t		charge_query_hash[32];
	uint64_t	charge_delta_pico;
	uint8_t		charge_account[DC_ADDR_LEN];
	const char *issued_at;		/* ISO 8601, UTC */
	int64_t		sequence;
	const char *prev_receipt_hash;	/* 64 hex */
} DReceiptBody;

/*
 * The body as canonical JSON text (malloc()ed) and its SHA-256: the one
 * place a receipt body's layout is written.  DERR_FORMAT when result_json is
 * not a JSON object.
 */
extern bool dreceipt_body(const DReceiptBody *b, char **canon, uint8_t body_hash[DC_SHA256_LEN], DErr *err);

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
