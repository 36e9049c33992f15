/*
 * quote_check.h: every check of a TDX quote that dstack-verify makes, one
 * output line per check, for a receipt's quote or a bare quote (--quote).
 *
 *   quote            layout (version 4/5, TDX, P-256), zero padding only after it
 *   collateral       (--collateral) TCB info and QE identity: signatures, chains, dates
 *   pck chain        the quote's PCK chain to the embedded Intel SGX Root CA
 *   qe report        signed by the PCK key; binds the attestation key
 *   quote signature  by the attestation key over header and TD report
 *   td attributes    not a debug TD, SEPT_VE_DISABLE
 *   tcb              (--collateral) the TCB status; without it "TCB not evaluated"
 *   event log, rtmr3 the event log parses and replays to the quote's RTMR3
 *   app-id, compose-hash, instance-id, key-provider   the RTMR3 events equal
 *                    what the receipt claims
 *   report_data      the quote's report_data is the expected 64 bytes
 *
 * The first failure prints "FAIL <check>: <reason>" and exits 1.  A quote
 * carrying tools/dstack-sim's marker fails unless allow_simulated; then every
 * line says SIMULATED and the Intel checks are reported, not enforced.
 */
#ifndef DSTACK_QUOTE_CHECK_H
#define DSTACK_QUOTE_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "tdx_collateral.h"

/*
 * tools/dstack-sim's marker.  Its first layout writes "DSTACK-SIMULATED-QUOTE"
 * at offset 12 (QE vendor id and user data); a real layout "DSTACK-SIMULATED"
 * and four zero bytes in the header's user data (offset 28).  A quote with
 * "DSTACK-SIMULATED" anywhere is simulated.
 */
#define QUOTE_SIM_MARKER		"DSTACK-SIMULATED"
#define QUOTE_SIM_MARKER_FIRST	"DSTACK-SIMULATED-QUOTE"

/* exit statuses shared with dstack-verify.c */
#define QC_EXIT_VALID			0
#define QC_EXIT_FAIL			1
#define QC_EXIT_USAGE			2
#define QC_EXIT_TCB_UNKNOWN		3	/* every check passed; TCB not evaluated (no --collateral) */
#define QC_EXIT_TCB_NOT_CURRENT 4	/* every check passed; TCB evaluated, not UpToDate */

/* Output: "ok   ...", "note ...", "FAIL <check>: ..." with qc_tag appended; nothing but FAIL when qc_quiet. */
extern bool qc_quiet;
extern const char *qc_tag;		/* "" or " [SIMULATED]" */
extern void qc_ok(const char *fmt,...) __attribute__((format(printf, 1, 2)));
extern void qc_note(const char *fmt,...) __attribute__((format(printf, 1, 2)));
extern void qc_fail(const char *check, const char *fmt,...) __attribute__((format(printf, 2, 3), noreturn));

typedef struct QuoteCheckOptions
{
	bool		allow_simulated;
	TdxCollateral *collateral;	/* NULL: TCB not evaluated */
	time_t		at;				/* verification time */
	const uint8_t *kms_root;	/* 33 bytes or NULL */
	const uint8_t *kms_id;		/* --kms-id bytes or NULL */
	size_t		kms_id_len;
} QuoteCheckOptions;

/* What the quote must say; NULL members are printed, not compared. */
typedef struct QuoteExpect
{
	bool		need_event_log; /* a receipt's quote must come with its event log */
	const uint8_t *report_data; /* 64 */
	const uint8_t *app_id;		/* 20 */
	const uint8_t *compose_hash;	/* 32 */
	const uint8_t *instance_id;
	size_t		instance_id_len;
	bool		key_provider;	/* the key-provider event must name the KMS (kms_root or kms_id) */
	const char *source;			/* "body" or "--report-data", for the lines */
} QuoteExpect;

/*
 * --quote FILE: a guest agent GetQuote response ({"quote": hex, "event_log":
 * string or array}), hex text, or the raw quote.  *event_log is NULL when the
 * file has none.  Both results are malloc'd.
 */
extern bool quote_read_file(const char *path, uint8_t **quote, size_t *len, char **event_log, TdxErr *err);

/* --at: Unix seconds or YYYY-MM-DDThh:mm:ssZ. */
extern bool quote_parse_time_arg(const char *s, time_t *out);

/* Does the quote carry the simulator's marker anywhere? */
extern bool quote_is_simulated(const uint8_t *quote, size_t len);

/*
 * Run the checks.  event_log may be NULL or "" (then RTMR3 is not replayed,
 * which fails when e->need_event_log).  Returns QC_EXIT_VALID,
 * QC_EXIT_TCB_UNKNOWN or QC_EXIT_TCB_NOT_CURRENT; a failed check exits 1.
 */
extern int	quote_check(const uint8_t *quote, size_t len, const char *event_log,
						const QuoteCheckOptions *o, const QuoteExpect *e);

#endif							/* DSTACK_QUOTE_CHECK_H */
