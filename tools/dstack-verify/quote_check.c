/*
 * quote_check.c: the quote checks of dstack-verify, one line each (see
 * quote_check.h for the list and the exit statuses).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "crypto.h"
#include "eventlog.h"
#include "hex.h"
#include "quote_check.h"

bool		qc_quiet = false;
const char *qc_tag = "";

static void
line(const char *prefix, const char *fmt, va_list ap)
{
	fputs(prefix, stdout);
	vprintf(fmt, ap);
	fputs(qc_tag, stdout);
	fputc('\n', stdout);
}

void
qc_ok(const char *fmt,...)
{
	va_list		ap;

	if (qc_quiet)
		return;
	va_start(ap, fmt);
	line("ok   ", fmt, ap);
	va_end(ap);
}

void
qc_note(const char *fmt,...)
{
	va_list		ap;

	if (qc_quiet)
		return;
	va_start(ap, fmt);
	line("note ", fmt, ap);
	va_end(ap);
}

void
qc_fail(const char *check, const char *fmt,...)
{
	va_list		ap;

	printf("FAIL %s: ", check);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputs(qc_tag, stdout);
	fputc('\n', stdout);
	exit(QC_EXIT_FAIL);
}

bool
quote_read_file(const char *path, uint8_t **quote, size_t *len, char **event_log, TdxErr *err)
{
	FILE	   *f = fopen(path, "rb");
	char	   *buf = NULL;
	size_t		n = 0,
				cap = 0,
				got;
	json_t	   *j;
	DErr		derr;
	bool		ok = true;

	*quote = NULL;
	*event_log = NULL;
	if (f == NULL)
		return tdx_err(err, "%s", strerror(errno));
	do
	{
		if (n + 4096 + 1 > cap)
		{
			char	   *nb = realloc(buf, cap = 2 * cap + 8192);

			if (nb == NULL)
			{
				free(buf);
				fclose(f);
				return tdx_err(err, "out of memory");
			}
			buf = nb;
		}
		got = fread(buf + n, 1, 4096, f);
		n += got;
	} while (got > 0);
	fclose(f);
	buf[n] = '\0';
	derr_clear(&derr);
	j = json_loadb(buf, n, JSON_REJECT_DUPLICATES, NULL);
	if (json_is_object(j))
	{
		json_t	   *q = json_object_get(j, "quote"),
				   *el = json_object_get(j, "event_log");

		if (!json_is_string(q) || !dhex_decode_alloc(json_string_value(q), quote, len, "quote", &derr))
			ok = tdx_err(err, "a JSON file needs a hex string member \"quote\" (a GetQuote response)");
		else if (json_is_string(el))
			*event_log = strdup(json_string_value(el));
		else if (json_is_array(el))
			*event_log = json_dumps(el, JSON_COMPACT);
	}
	else if (n > 0 && strspn(buf, "0123456789abcdefABCDEFx \t\r\n") == n)
	{
		char	   *t = buf + strspn(buf, " \t\r\n");

		t[strcspn(t, " \t\r\n")] = '\0';
		if (!dhex_decode_alloc(t, quote, len, "quote", &derr))
			ok = tdx_err(err, "not hex");
	}
	else
	{
		*quote = (uint8_t *) buf;
		*len = n;
		buf = NULL;
	}
	json_decref(j);
	free(buf);
	return ok;
}

bool
quote_parse_time_arg(const char *s, time_t *out)
{
	char	   *end;
	long long	v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (*s && *end == '\0' && errno == 0 && v >= 0)
	{
		*out = (time_t) v;
		return true;
	}
	return tdx_parse_time(s, out);
}

bool
quote_is_simulated(const uint8_t *quote, size_t len)
{
	return memmem(quote, len, QUOTE_SIM_MARKER, strlen(QUOTE_SIM_MARKER)) != NULL;
}

static const char *
hexs(const uint8_t *p, size_t n)
{
	static char buf[4][2 * 128 + 1];
	static int	k;

	k = (k + 1) % 4;
	if (n > 128)
		n = 128;
	dhex_encode(p, n, buf[k]);
	return buf[k];
}

static const char *
utc(time_t t)
{
	static char buf[32];
	struct tm	tm;

	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

/* A check that a simulated quote may fail: FAIL for a real one, a note for a simulated one. */
static void
soft_fail(bool simulated, const char *check, const char *msg)
{
	if (!simulated)
		qc_fail(check, "%s", msg);
	qc_note("%s: not valid, as expected of a simulated quote (%s)", check, msg);
}

/*
 * tools/dstack-sim's first layout: a v4 header with the marker at 12, a TD
 * report body, L = 120, then the KMS root's recoverable secp256k1 signature
 * over sha256(quote[0..632]), the root's compressed key and the marker.
 */
#define LEGACY_SIG_LEN	(65 + 33 + 22)
#define LEGACY_LEN		(636 + LEGACY_SIG_LEN)

static bool
is_legacy_sim(const uint8_t *q, size_t len)
{
	return len == LEGACY_LEN && q[0] == 4 && q[1] == 0 && q[632] == LEGACY_SIG_LEN && !q[633] && !q[634] && !q[635] &&
		memcmp(q + 12, QUOTE_SIM_MARKER_FIRST, 22) == 0 && memcmp(q + LEGACY_LEN - 22, QUOTE_SIM_MARKER_FIRST, 22) == 0;
}

static void
legacy_fields(const uint8_t *raw, size_t len, TdxQuote *q)
{
	memset(q, 0, sizeof(*q));
	q->raw = raw;
	q->raw_len = len;
	q->version = 4;
	q->body = raw + 48;
	q->body_len = TDX_TD10_BODY_LEN;
	q->signed_len = 632;
	q->mr_td = q->body + 136;
	for (int i = 0; i < 4; i++)
		q->rtmr[i] = q->body + 328 + 48 * i;
	q->report_data = q->body + 520;
	q->end = len;
}

/* Compare an RTMR3 event's payload with what the receipt claims; print it when nothing is claimed. */
static void
event_equals(const EventLog *log, const char *name, const uint8_t *want, size_t want_len, const char *source,
			 const char *field)
{
	bool		dup;
	const EventLogEntry *ev = eventlog_find(log, name, &dup);

	if (ev == NULL)
	{
		if (want)
			qc_fail(name, "the event log has no %s event before system-ready: the quote does not say which %s the "
					"CVM runs", name, name);
		qc_note("event %s: none before system-ready", name);
		return;
	}
	if (dup)
		qc_fail(name, "the event log has two %s events before system-ready", name);
	if (want == NULL)
	{
		qc_note("event %s %s", name, hexs(ev->payload, ev->payload_len));
		return;
	}
	if (ev->payload_len != want_len || memcmp(ev->payload, want, want_len) != 0)
		qc_fail(name, "the quote's %s event is %s, %s.%s is %s: the receipt is not from this CVM", name,
				hexs(ev->payload, ev->payload_len), source, field, hexs(want, want_len));
	qc_ok("event %s = %s.%s %s", name, source, field, hexs(want, want_len));
}

/* key-provider: {"name":"kms","id":"<hex>"} (tools/dstack-sim's first layout: "type" for "name"). */
static void
key_provider(const EventLog *log, const QuoteCheckOptions *o, const QuoteExpect *e, bool legacy)
{
	bool		dup;
	const EventLogEntry *ev = eventlog_find(log, "key-provider", &dup);
	json_t	   *j;
	const char *kind,
			   *id;
	uint8_t    *idb = NULL;
	size_t		idn = 0;
	DErr		err;
	char		shown[200];

	if (ev == NULL)
	{
		if (e->key_provider)
			qc_fail("key-provider", "the event log has no key-provider event before system-ready: the quote does "
					"not say which KMS gave the CVM its keys");
		qc_note("event key-provider: none before system-ready");
		return;
	}
	if (dup)
		qc_fail("key-provider", "the event log has two key-provider events before system-ready");
	j = json_loadb((const char *) ev->payload, ev->payload_len, JSON_REJECT_DUPLICATES, NULL);
	kind = json_string_value(json_object_get(j, "name"));
	if (kind == NULL && legacy)
		kind = json_string_value(json_object_get(j, "type"));
	id = json_string_value(json_object_get(j, "id"));
	if (!json_is_object(j) || kind == NULL || id == NULL)
	{
		json_decref(j);
		qc_fail("key-provider", "the key-provider event's payload is not {\"name\": ..., \"id\": ...}");
	}
	snprintf(shown, sizeof(shown), "%.16s %.40s%s", kind, id, strlen(id) > 40 ? "..." : "");
	derr_clear(&err);
	if (!dhex_decode_alloc(id, &idb, &idn, "key-provider id", &err))
		idb = NULL;
	if (!e->key_provider)
	{
		qc_note("event key-provider %s", shown);
		json_decref(j);
		free(idb);
		return;
	}
	if (strcmp(kind, "kms") != 0)
		qc_fail("key-provider", "the CVM's keys come from \"%s\", not from a KMS: a receipt key chain to a KMS root "
				"cannot be its", kind);
	if (idb && o->kms_root && idn == DC_PUBKEY_LEN && memcmp(idb, o->kms_root, DC_PUBKEY_LEN) == 0)
		qc_ok("event key-provider: kms, id = --kms-root");
	else if (idb && o->kms_id && idn == o->kms_id_len && memcmp(idb, o->kms_id, idn) == 0)
		qc_ok("event key-provider: kms, id = --kms-id %.40s...", id);
	else
		qc_fail("key-provider", "the CVM's KMS is %s, which is neither --kms-root nor %s: the CVM got its keys from "
				"another KMS (give the KMS's CA public key as dstack measures it with --kms-id HEX)",
				shown, o->kms_id ? "--kms-id" : "a --kms-id (none given)");
	json_decref(j);
	free(idb);
}

int
quote_check(const uint8_t *raw, size_t len, const char *event_log, const QuoteCheckOptions *o, const QuoteExpect *e)
{
	TdxQuote	q;
	TdxErr		err;
	bool		simulated = quote_is_simulated(raw, len);
	bool		legacy = false;
	int			outcome = QC_EXIT_VALID;

	if (simulated && !o->allow_simulated)
		qc_fail("quote", "the quote carries tools/dstack-sim's marker %s: it comes from the simulator, not from a "
				"TDX CVM (--allow-simulated accepts it, for development)", QUOTE_SIM_MARKER);

	/* ---- layout */
	if (simulated && is_legacy_sim(raw, len))
	{
		uint8_t		digest[32],
					pub[DC_PUBKEY_LEN];
		DErr		derr;

		legacy = true;
		legacy_fields(raw, len, &q);
		derr_clear(&derr);
		if (o->kms_root == NULL)
			qc_fail("quote", "a simulated quote of tools/dstack-sim's first layout is signed by the KMS root: give "
					"--kms-root");
		dc_sha256(raw, 632, digest);
		if (!dc_recover_pubkey(digest, raw + 636, pub, &derr) || !dc_equal(pub, o->kms_root, DC_PUBKEY_LEN))
			qc_fail("quote", "the simulated quote is not signed by the KMS root (over its first 632 bytes)");
		qc_ok("quote: tools/dstack-sim's first layout (%zu bytes), signed by the KMS root over header and TD report; "
			  "no Intel signature", len);
		qc_note("pck chain, qe report, quote signature, td attributes, tcb: not checked (simulated quote)");
	}
	else
	{
		if (!tdx_quote_parse(raw, len, simulated, &q, &err))
			qc_fail("quote", "%s", err.msg);
		qc_ok("quote: TDX quote v%u, TD %s report, %zu bytes (%zu of quote data%s%zu%s)", q.version,
			  q.body_type == 3 ? "1.5" : "1.0", len, q.end, q.trailing ? ", then " : "", q.trailing,
			  q.trailing ? (q.trailing_zero ? " zero bytes of padding" : " bytes of padding") : "");

		if (memcmp(q.qe_vendor_id, tdx_intel_qe_vendor_id, 16) != 0)
			soft_fail(simulated, "quote", "the QE vendor id is not Intel's (939a7233f79c4ca9940a0db3957f0607)");

		/* ---- Intel: collateral, PCK chain, QE report, signature, attributes, TCB */
		{
			X509	   *leaf = NULL;
			TdxPckInfo	pck;
			STACK_OF(X509_CRL) *crls = NULL;
			bool		chain_ok;

			if (o->collateral && !simulated)
			{
				if (!tdx_collateral_check(o->collateral, o->at, &err))
					qc_fail("collateral", "%s", err.msg);
				qc_ok("collateral: TCB info and QE identity signed by Intel (chains to the Intel SGX Root CA), "
					  "valid at %s; %s", utc(o->at), tdx_collateral_describe(o->collateral));
				crls = tdx_collateral_crls(o->collateral);
			}
			chain_ok = tdx_pck_chain_verify(&q, o->at, crls, &leaf, &pck, &err);
			if (chain_ok)
				qc_ok("pck chain: %s <- %s <- Intel SGX Root CA (SHA-256 %.16s...), valid at %s; revocation %s",
					  pck.leaf_subject, pck.issuer_subject, tdx_intel_root_ca_sha256, utc(o->at),
					  crls ? "checked against the collateral's CRLs" : "not checked (no --collateral)");
			else
				soft_fail(simulated, "pck chain", err.msg);
			if (leaf && tdx_qe_report_verify(&q, leaf, &err))
				qc_ok("qe report: signed by the PCK key; its report_data is sha256(attestation key || QE auth data)");
			else if (leaf)
				soft_fail(simulated, "qe report", err.msg);
			if (tdx_quote_sig_verify(&q, &err))
				qc_ok("quote signature: by the attestation key over header and TD report (%zu bytes)", q.signed_len);
			else
				soft_fail(simulated, "quote signature", err.msg);
			if (tdx_td_attributes_check(&q, &err))
				qc_ok("td attributes: not a debug TD, no reserved bit, SEPT_VE_DISABLE set");
			else
				soft_fail(simulated, "td attributes", err.msg);

			qc_note("measurements (the OS image: not checked) MRTD %s RTMR0 %s RTMR1 %s RTMR2 %s", hexs(q.mr_td, 48),
					hexs(q.rtmr[0], 48), hexs(q.rtmr[1], 48), hexs(q.rtmr[2], 48));
			if (simulated)
				qc_note("tcb: not evaluated (simulated quote)");
			else if (o->collateral)
			{
				TdxTcbResult r;

				if (!tdx_tcb_evaluate(o->collateral, &q, &pck, &r, &err))
					qc_fail("tcb", "%s", err.msg);
				if (r.up_to_date)
					qc_ok("tcb: UpToDate (platform %s%s%s, QE %s; TCB level of %s)", r.platform,
						  r.module[0] ? ", TDX module " : "", r.module, r.qe, r.tcb_date);
				else
				{
					qc_note("tcb: %s (platform %s%s%s, QE %s; TCB level of %s)%s%s: the platform lacks updates "
							"Intel published", r.status, r.platform, r.module[0] ? ", TDX module " : "", r.module,
							r.qe, r.tcb_date, r.advisories[0] ? "; advisories " : "", r.advisories);
					outcome = QC_EXIT_TCB_NOT_CURRENT;
				}
			}
			else
			{
				qc_note("tcb: not evaluated: no --collateral (Intel's TCB info and QE identity for FMSPC %s); the "
						"platform may lack security updates", hexs(pck.fmspc, 6));
				outcome = QC_EXIT_TCB_UNKNOWN;
			}
			X509_free(leaf);
		}
	}

	/* ---- event log and RTMR3 */
	if (event_log == NULL || event_log[0] == '\0')
	{
		if (e->need_event_log)
			qc_fail("event log", "the receipt has no quote.event_log: RTMR3 cannot be replayed, so nothing ties "
					"the quote to an app, a compose-hash or a KMS");
		qc_note("event log: none given; RTMR3 %s not replayed", hexs(q.rtmr[3], 48));
	}
	else
	{
		EventLog	log;

		if (!eventlog_parse(event_log, legacy, &log, &err))
			qc_fail("event log", "%s", err.msg);
		if (memcmp(log.rtmr3, q.rtmr[3], 48) != 0)
			qc_fail("rtmr3", "the event log's %zu RTMR3 events replay to %.24s..., the quote's RTMR3 is %.24s...: the "
					"event log is not this CVM's", log.n_rtmr3, hexs(log.rtmr3, 48), hexs(q.rtmr[3], 48));
		qc_ok("rtmr3: the quote's RTMR3 is the replay of the event log's %zu RTMR3 events (%s)", log.n_rtmr3,
			  (log.rules_used & (1 << 9)) ? "tools/dstack-sim's first digests"
			  : (log.rules_used & 4) ? "dstack runtime event digests, versions 1 and 2"
			  : "dstack runtime event digests");
		event_equals(&log, "app-id", e->app_id, 20, e->source, "app_id");
		event_equals(&log, "compose-hash", e->compose_hash, 32, e->source, "compose_hash");
		event_equals(&log, "instance-id", e->instance_id, e->instance_id_len, e->source, "instance_id");
		key_provider(&log, o, e, legacy);
		{
			bool		dup;
			const EventLogEntry *os = eventlog_find(&log, "os-image-hash", &dup);

			if (os)
				qc_note("event os-image-hash %s (not checked)",
						hexs(os->payload, os->payload_len));
		}
		eventlog_free(&log);
	}

	/* ---- report_data */
	if (e->report_data)
	{
		if (memcmp(q.report_data, e->report_data, 64) != 0)
			qc_fail("report_data", "the quote's report_data is %.32s..., not %s (%s): the quote is not over this %s",
					hexs(q.report_data, 64), e->source && strcmp(e->source, "body") == 0 ?
					"the body hash followed by 32 zero bytes" : "the expected value", hexs(e->report_data, 32),
					e->source && strcmp(e->source, "body") == 0 ? "receipt" : "data");
		qc_ok("report_data = %s", e->source && strcmp(e->source, "body") == 0 ?
			  "the body hash || 32 zero bytes" : "--report-data");
	}
	else
		qc_note("report_data %s", hexs(q.report_data, 64));
	return outcome;
}
