/*
 * tdx_quote.h: what pg_dstack reads in a TDX quote and a dstack event log.
 *
 * A TDX quote (version 4) is a 48-byte header, a 584-byte TD report (TDX 1.0)
 * and the signature data (a u32 length, then that many bytes).  The guest
 * agent's buffer may carry bytes after the signature data (a real capture
 * has 70 zero bytes there): they are allowed and counted, not read.
 *
 * Simulated quotes (tools/dstack-sim) are real captured quotes whose
 * report_data, MRCONFIGID and RTMR3 were replaced, so their signature does not
 * verify.  They carry one marker, defined here and nowhere else: the header's
 * 20-byte QE "user data" field (offset 28), where Intel's quoting enclave
 * writes its QE identifier, holds "DSTACK-SIMULATED" and four zero bytes.
 * Every part of pg_dstack that says whether a quote is simulated (the FDW's
 * receipts, the verifier) asks tdxq_is_simulated().
 *
 * dstack's runtime events (imr 3, event type 0x08000001) have the digest
 *   V1: sha384(u32le(0x08000001) ":" name ":" payload)
 *   V2: sha384(JCS canonical JSON {"name","payload" (hex),"type"})
 * and RTMR3 is their replay: mr = sha384(mr || digest), from 48 zero bytes.
 * dstack's guest agent strips the runtime events' digests from GetQuote's
 * event_log (it keeps their payloads): the replay here recomputes every
 * runtime digest from its payload and checks any digest that is present.
 */
#ifndef DSTACK_TDX_QUOTE_H
#define DSTACK_TDX_QUOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "derr.h"

#define TDXQ_HEADER_LEN			48
#define TDXQ_BODY_LEN			584
#define TDXQ_MR_LEN				48
#define TDXQ_MRTD_OFFSET		(48 + 136)
#define TDXQ_MRCONFIGID_OFFSET	(48 + 184)
#define TDXQ_MROWNER_OFFSET		(48 + 232)
#define TDXQ_MROWNERCONFIG_OFFSET (48 + 280)
#define TDXQ_RTMR_OFFSET		(48 + 328)
#define TDXQ_REPORT_DATA_OFFSET	(48 + 520)
#define TDXQ_SIGLEN_OFFSET		632
#define TDXQ_SIG_OFFSET			636
#define TDXQ_TEE_TDX			0x81u

#define TDXQ_SIM_MARKER			"DSTACK-SIMULATED"
#define TDXQ_SIM_MARKER_OFFSET	28

#define TDXQ_RUNTIME_EVENT_TYPE	0x08000001u

typedef struct TdxqReport
{
	uint8_t		mrtd[TDXQ_MR_LEN];
	uint8_t		mr_config_id[TDXQ_MR_LEN];
	uint8_t		mr_owner[TDXQ_MR_LEN];
	uint8_t		mr_owner_config[TDXQ_MR_LEN];
	uint8_t		rtmr[4][TDXQ_MR_LEN];
	uint8_t		report_data[64];
	uint32_t	sig_len;		/* signature data length */
	size_t		trailing;		/* bytes after the signature data */
} TdxqReport;

/*
 * The TD report of a quote: version 4, TEE type TDX, a signature data length
 * that fits.  DERR_FORMAT (detail naming the field) otherwise.
 */
extern bool tdxq_parse(const uint8_t *quote, size_t len, TdxqReport *r, DErr *err);

/* Whether a quote carries the simulation marker (see above); false for anything shorter than a header. */
extern bool tdxq_is_simulated(const uint8_t *quote, size_t len);

/* A runtime event's digest (version 1 or 2); DERR_ARG for another version. */
extern bool tdxq_event_digest(const char *name, const uint8_t *payload, size_t len, int version,
							  uint8_t out[TDXQ_MR_LEN], DErr *err);

/*
 * Replay the runtime events (imr 3) of a dstack event log (a JSON array of
 * {imr, event_type, digest, event, event_payload[, version, preimage]}) into
 * RTMR3, up to and including the first event named stop_after (NULL: all).
 * Runtime digests are recomputed from the payloads; a digest (or V2 preimage)
 * that is present and differs is DERR_INTEGRITY.  Events of other types in
 * imr 3 are extended with the digest they carry.
 */
extern bool tdxq_replay_rtmr3(json_t *event_log, const char *stop_after, uint8_t out[TDXQ_MR_LEN], DErr *err);

/*
 * The payload of the first runtime event named name (imr 3), hex-decoded
 * into a malloc()ed buffer; *found false (and *payload NULL) when there is
 * none.
 */
extern bool tdxq_event_payload(json_t *event_log, const char *name, uint8_t **payload, size_t *len,
							   bool *found, DErr *err);

/*
 * dstack's TDX measurements:
 *   mr_system     = sha256(MRTD || RTMR0 || RTMR1 || RTMR2 || mr_key_provider)
 *   mr_aggregated = sha256(MRTD || RTMR0..3 [|| MRCONFIGID || MROWNER || MROWNERCONFIG])
 * mr_key_provider is sha256 of the key-provider payload (32 zero bytes when
 * kpi_len is 0); the config registers are hashed only when one is not zero.
 */
extern void tdxq_measurements(const uint8_t mrtd[TDXQ_MR_LEN], const uint8_t rtmr[4][TDXQ_MR_LEN],
							  const uint8_t mr_config_id[TDXQ_MR_LEN], const uint8_t mr_owner[TDXQ_MR_LEN],
							  const uint8_t mr_owner_config[TDXQ_MR_LEN],
							  const uint8_t *key_provider_info, size_t kpi_len,
							  uint8_t mr_system[32], uint8_t mr_aggregated[32]);

/* MRCONFIGID as dstack's VMM writes it: V1 0x01 || compose_hash; V2 0x02 || keccak256(compose_hash || app_id || 2 || key provider id). */
extern void tdxq_mr_config_id_v1(const uint8_t compose_hash[32], uint8_t out[TDXQ_MR_LEN]);
extern void tdxq_mr_config_id_v2(const uint8_t compose_hash[32], const uint8_t app_id[20],
								 const uint8_t *key_provider_id, size_t kp_len, uint8_t out[TDXQ_MR_LEN]);

#endif							/* DSTACK_TDX_QUOTE_H */
