/*
 * guest_agent.h: client of the dstack guest agent inside a CVM.
 *
 * The guest agent is the CVM's only source of app keys (released by dstack's
 * KMS when the app's auth contract allows the boot), TDX quotes and the
 * identity of the running app.  It speaks HTTP with JSON bodies on a Unix
 * socket.  API as in Dstack-TEE/dstack (guest-agent/rpc/proto/agent_rpc.proto,
 * sdk/js/src/index.ts, sdk/python/src/dstack_sdk/dstack_client.py):
 *   POST /GetKey   {"path","purpose","algorithm":"secp256k1"}
 *                  -> {"key": hex, "signature_chain": [hex, hex]}
 *   POST /GetQuote {"report_data": hex, at most 64 bytes}
 *                  -> {"quote","event_log","report_data","vm_config"}
 *   POST /Info     {} -> {"app_id","instance_id","compose_hash","device_id",
 *                  "os_image_hash","key_provider_info","tcb_info" (JSON text), ...}
 *                  where tcb_info holds "app_compose": the text of the
 *                  app-compose.json the CVM booted from, whose sha256 is the
 *                  measured compose_hash (the agent's get_info: the
 *                  socket always includes it, the public port only when the
 *                  compose sets public_tcbinfo).
 *   errors: {"error": "..."} with status 400 (prpc's encode_error); a path
 *   the agent does not serve is Rocket's 404, whose JSON "error" is an object.
 * The SDKs send Info as POST with "{}"; a server that refuses that method
 * (404/405) is asked again with GET.
 *
 * Socket selection (ga_resolve_endpoint): an explicit socket argument wins
 * (one named tappd.sock, such as /var/run/tappd.sock, is the legacy socket);
 * else DSTACK_SIMULATOR_ENDPOINT when set (a path, or an http:// URL as the
 * SDKs allow); else the first of /var/run/dstack.sock, /run/dstack.sock,
 * /var/run/dstack/dstack.sock, /run/dstack/dstack.sock that exists (the
 * SDKs' probe order); else the legacy
 * /var/run/tappd.sock when it exists; else /var/run/dstack.sock, so that the
 * error names the expected path.  The legacy socket serves dstack's older
 * Tappd service under /prpc/: Tappd.DeriveK256Key ({"k256_key",
 * "k256_signature_chain"}), Tappd.RawQuote (exactly 64 bytes of report data,
 * no echo of it) and Tappd.Info.
 *
 * Every call honours the options of ga_set_http_options(): timeouts and the
 * caller's cancel check (a backend passes one that sees a query cancel).
 */
#ifndef DSTACK_GUEST_AGENT_H
#define DSTACK_GUEST_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "abi.h"
#include "crypto.h"
#include "derr.h"
#include "http.h"

#define GA_DEFAULT_SOCKET	"/var/run/dstack.sock"
#define GA_LEGACY_SOCKET	"/var/run/tappd.sock"
#define GA_ENV_ENDPOINT		"DSTACK_SIMULATOR_ENDPOINT"
#define GA_LEGACY_SOCKET_NAME "tappd.sock"

/* A derived app key.  Holds a private key: always end with ga_key_scrub(). */
typedef struct GaKey
{
	uint8_t		key[DC_SECKEY_LEN];	/* secp256k1 private key */
	uint8_t		pub[DC_PUBKEY_LEN];	/* its compressed public key */
	uint8_t		chain[2][DC_SIG_LEN];	/* [0] by the app key, [1] by the KMS root */
} GaKey;

typedef struct GaQuote
{
	uint8_t    *quote;			/* raw TDX quote, malloc()ed */
	size_t		quote_len;
	char	   *event_log;		/* JSON text as the agent sent it, malloc()ed */
	uint8_t		report_data[64];	/* as echoed by the agent (zero-padded) */
	char	   *vm_config;		/* malloc()ed; "" when absent */
	bool		simulated;		/* tdxq_is_simulated(quote): tools/dstack-sim's marker */
} GaQuote;

typedef struct GaInfo
{
	uint8_t		app_id[DC_ADDR_LEN];
	uint8_t		compose_hash[32];
	uint8_t		instance_id[32];	/* dstack: 20 bytes; length in instance_id_len */
	size_t		instance_id_len;
	uint8_t		device_id[32];
	size_t		device_id_len;
	uint8_t		mr_aggregated[32];	/* dstack >= 0.5; length 0 when absent */
	size_t		mr_aggregated_len;
	uint8_t		os_image_hash[32];	/* empty when not measured by the KMS */
	size_t		os_image_hash_len;
	char	   *key_provider_info;	/* malloc()ed; "" when absent */
	char	   *tcb_info;		/* JSON text, malloc()ed; "" when absent */
	char	   *app_compose;	/* tcb_info's app_compose, byte for byte as the agent
								 * sent it (malloc()ed, NUL-terminated); NULL when
								 * tcb_info has none */
	size_t		app_compose_len;
	char	   *raw_json;		/* the whole answer, malloc()ed */
} GaInfo;

/*
 * Where the agent is: fills unix_socket (or url for an http:// override) and
 * reports whether it is the legacy tappd API.  Exposed for diagnostics.
 */
typedef struct GaEndpoint
{
	char		socket[256];	/* "" when url is used */
	char		url[256];		/* "" when socket is used */
	bool		legacy;			/* tappd.sock: /prpc/Tappd.* methods */
} GaEndpoint;
extern bool ga_resolve_endpoint(const char *socket, GaEndpoint *ep, DErr *err);

/*
 * HTTP options for every later guest-agent call of this process: connect
 * and total timeouts, retries, and a cancel check (should_abort).  NULL
 * restores the defaults (2 s connect, 30 s per call, 2 retries, no cancel
 * check).  5xx answers are never retried whatever opt says: the agent's
 * refusals are answers.
 */
extern void ga_set_http_options(const HttpOptions *opt);

/*
 * GetKey at `path` for `purpose` (secp256k1).  socket NULL: see above.
 * Refusals by the agent/KMS are DERR_REMOTE carrying the agent's text.
 */
extern bool ga_get_key(const char *socket, const char *path, const char *purpose,
					   GaKey *key, DErr *err);
/* Scrub a GaKey (explicit_bzero); NULL-safe. */
extern void ga_key_scrub(GaKey *key);

/*
 * ga_get_key, then dstack_sigchain_verify against kms_root for app_id: only a
 * key whose chain ends at the configured root is returned (DERR_CHAIN else,
 * with the key already scrubbed).
 */
extern bool ga_get_key_verified(const char *socket, const char *path, const char *purpose,
								const uint8_t kms_root[DC_PUBKEY_LEN],
								const uint8_t app_id[DC_ADDR_LEN], GaKey *key, DErr *err);

/* TDX quote over report_data (at most 64 bytes).  Free with ga_quote_free(). */
extern bool ga_get_quote(const char *socket, const uint8_t *report_data, size_t len,
						 GaQuote *quote, DErr *err);
extern void ga_quote_free(GaQuote *quote);

/*
 * Identity of the running app.  Free with ga_info_free().  A tcb_info that
 * is present but not a JSON object, or whose app_compose is not a string, is
 * DERR_FORMAT; an absent tcb_info or app_compose leaves app_compose NULL (the
 * caller decides whether it needs it).  Nothing here checks app_compose
 * against compose_hash: see ga_app_compose_measured().
 */
extern bool ga_info(const char *socket, GaInfo *info, DErr *err);
extern void ga_info_free(GaInfo *info);

/*
 * Whether info->app_compose is the measured compose file: present, and its
 * sha256 equal to info->compose_hash.  DERR_FORMAT when absent,
 * DERR_INTEGRITY (detail with both hashes) when it hashes to something else.
 */
extern bool ga_app_compose_measured(const GaInfo *info, DErr *err);

/*
 * The AppBootInfo dstack's KMS judged this CVM by when it released its keys
 * at boot, recomputed from Info: app id, compose-hash, instance id, device
 * id and OS image hash as Info reports them, and the boot-time measurements
 * (dstack's boottime_mr): RTMR3 replayed up to boot-mr-done, mr_system with
 * no key provider, mr_aggregated over that RTMR3 and MRCONFIGID.  Info does
 * not report MRCONFIGID: the one dstack's VMM writes (zero, V1 or V2) that
 * reproduces Info's mr_aggregated over the full RTMR3 is taken (MROWNER and
 * MROWNERCONFIG assumed zero, as dstack leaves them).  Checked on the way:
 * tcb_info's RTMR3 is the replay of its event log, the log's app-id,
 * compose-hash, instance-id and key-provider events are Info's values
 * (DERR_INTEGRITY otherwise).  tcb_status is "UpToDate" (the TCB status comes
 * from quote verification, which the CVM cannot do on itself) and there are
 * no advisory ids.  DERR_FORMAT when Info carries no tcb_info.
 */
extern bool ga_boot_info(const GaInfo *info, AbiAppBootInfo *boot, DErr *err);

#endif							/* DSTACK_GUEST_AGENT_H */
