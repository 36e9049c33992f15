/*
 * eventlog.h: dstack's event log (the guest agent's GetQuote event_log) and
 * the replay of RTMR3 from it.
 *
 * The log is a JSON array of {imr, event_type, digest, event, event_payload
 * [, version] [, preimage]} (digest, payload and preimage in hex).  RTMR3
 * starts as 48 zero bytes and each event with imr 3 extends it:
 * RTMR3 = SHA-384(RTMR3 || digest).  For dstack's runtime events (event_type
 * 0x08000001) the digest is computed here from name and payload, never taken
 * from the log:
 *   version 1 (or absent): SHA-384(u32le(0x08000001) || ":" || name || ":" || payload)
 *   version 2:             SHA-384(JCS {"name":name,"payload":hex(payload),"type":134217729})
 * (dstack's two digest versions).  A digest the log states must
 * equal the computed one; so must a preimage.  Other event types keep the
 * digest the log gives.
 *
 * dstack's boot events in RTMR3, in order: system-preparing, app-id,
 * compose-hash, [init-script-hash...], instance-id, boot-mr-done,
 * os-image-hash (KMS), key-provider, storage-fs, system-ready; the app's own
 * events follow system-ready.  eventlog_find looks only before
 * system-ready, as dstack's verifier does.
 */
#ifndef DSTACK_EVENTLOG_H
#define DSTACK_EVENTLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "tdx_quote.h"

#define DSTACK_RUNTIME_EVENT_TYPE	0x08000001u

typedef struct EventLogEntry
{
	int			imr;
	uint32_t	event_type;
	const char *name;			/* points into the parsed JSON */
	uint8_t    *payload;
	size_t		payload_len;
	uint8_t		digest[48];		/* the one extended */
	int			rule;			/* 1, 2 (dstack versions), 0 (digest taken from the log), 9 (legacy simulator) */
} EventLogEntry;

typedef struct EventLog
{
	json_t	   *json;
	EventLogEntry *e;
	size_t		n;
	size_t		n_rtmr3;		/* events with imr 3 */
	int			rules_used;		/* bit (1 << rule) for every rule seen in RTMR3 */
	uint8_t		rtmr3[48];		/* replayed */
} EventLog;

/*
 * Parse text (a JSON array, or a JSON string holding one) and replay RTMR3.
 * legacy_sim: also accept, for a runtime event whose logged digest is
 * SHA-384(name || ":" || payload), that digest (tools/dstack-sim before it
 * used dstack's rule); the caller allows it only for simulated quotes.
 */
extern bool eventlog_parse(const char *text, bool legacy_sim, EventLog *log, TdxErr *err);
extern void eventlog_free(EventLog *log);

/*
 * The payload of the first RTMR3 event named name before system-ready; NULL
 * when there is none.  *dup is set when the name occurs again before
 * system-ready.
 */
extern const EventLogEntry *eventlog_find(const EventLog *log, const char *name, bool *dup);

/* Exposed for the unit tests: the digest preimage of a runtime event (malloc'd). */
extern uint8_t *eventlog_preimage(int version, const char *name, const uint8_t *payload, size_t len, size_t *out_len);

#endif							/* DSTACK_EVENTLOG_H */
