/*
 * test_tdx.c: unit tests of the quote verifier's primitives, each against a
 * published vector or a fixture from fixtures/ (fixtures/README.md says
 * where each comes from):
 *
 *   SHA-256, SHA-384          FIPS 180-2 "abc" vectors
 *   ECDSA P-256 / SHA-256     RFC 6979 A.2.5 (key, message "sample", signature)
 *   dstack event digest v1    the digests dstack itself wrote into the event
 *                             log of fixtures/dstack-quote-report.json
 *   dstack event digest v2    the canonical JSON texts of dstack's own tests
 *                             of its event log
 *   RTMR3 replay              the RTMR3 of the real quotes in two dstack fixtures
 *   quote layout, PCK chain, QE report, quote signature, TCB
 *                             the real quotes and Intel collateral in fixtures/,
 *                             with the verdicts the other verifier gives on them
 *                             (dcap-crosscheck.mjs)
 *
 *   ./test_tdx FIXTURES_DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "eventlog.h"
#include "hex.h"
#include "tdx_collateral.h"
#include "tdx_quote.h"

static int	passed,
			failed;
static const char *dir;

#define CHECK(cond, ...) do { \
	if (cond) passed++; \
	else { failed++; printf("FAIL %s:%d: ", __FILE__, __LINE__); printf(__VA_ARGS__); putchar('\n'); } \
} while (0)

static void
unhex(const char *s, uint8_t *out, size_t n)
{
	DErr		e;

	derr_clear(&e);
	if (!dhex_decode_exact(s, out, n, "vector", &e))
	{
		fprintf(stderr, "bad test vector %s\n", s);
		exit(2);
	}
}

static char *
slurp(const char *name, size_t *len)
{
	char		path[1024];
	FILE	   *f;
	char	   *buf;
	long		n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "rb");
	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
	{
		fprintf(stderr, "cannot read %s\n", path);
		exit(2);
	}
	buf = malloc((size_t) n + 1);
	if (buf == NULL || fread(buf, 1, (size_t) n, f) != (size_t) n)
		exit(2);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t) n;
	return buf;
}

/* A fixture's quote bytes: .bin raw, .hex text, .json a GetQuote response (event log returned too). */
static uint8_t *
fixture_quote(const char *name, size_t *len, char **event_log)
{
	size_t		n;
	char	   *text = slurp(name, &n);
	uint8_t    *q = NULL;
	DErr		e;

	derr_clear(&e);
	if (event_log)
		*event_log = NULL;
	if (strstr(name, ".bin"))
	{
		*len = n;
		return (uint8_t *) text;
	}
	if (strstr(name, ".hex"))
	{
		text[strcspn(text, "\r\n")] = '\0';
		if (!dhex_decode_alloc(text, &q, len, name, &e))
			exit(2);
	}
	else
	{
		json_t	   *j = json_loads(text, 0, NULL);

		if (!dhex_decode_alloc(json_string_value(json_object_get(j, "quote")), &q, len, name, &e))
			exit(2);
		if (event_log)
			*event_log = strdup(json_string_value(json_object_get(j, "event_log")));
		json_decref(j);
	}
	free(text);
	return q;
}

static void
test_hashes(void)
{
	uint8_t		d[48],
				want[48];

	EVP_Digest("abc", 3, d, NULL, EVP_sha256(), NULL);
	unhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", want, 32);
	CHECK(memcmp(d, want, 32) == 0, "SHA-256(\"abc\") (FIPS 180-2)");
	EVP_Digest("abc", 3, d, NULL, EVP_sha384(), NULL);
	unhex("cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7", want, 48);
	CHECK(memcmp(d, want, 48) == 0, "SHA-384(\"abc\") (FIPS 180-2)");
}

static void
test_ecdsa(void)
{
	uint8_t		xy[64],
				sig[64];
	EVP_PKEY   *k;

	/* RFC 6979 A.2.5: P-256 public key U, SHA-256, message "sample" */
	unhex("60fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6"
		  "7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299", xy, 64);
	unhex("efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716"
		  "f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8", sig, 64);
	k = tdx_p256_pubkey(xy);
	CHECK(k != NULL, "RFC 6979 A.2.5 public key parses");
	CHECK(k && tdx_ecdsa_p256_verify(k, (const uint8_t *) "sample", 6, sig), "RFC 6979 A.2.5 signature verifies");
	CHECK(k && !tdx_ecdsa_p256_verify(k, (const uint8_t *) "sample!", 7, sig), "... not over another message");
	sig[40] ^= 1;
	CHECK(k && !tdx_ecdsa_p256_verify(k, (const uint8_t *) "sample", 6, sig), "... not with a flipped s");
	EVP_PKEY_free(k);
	xy[63] ^= 1;
	k = tdx_p256_pubkey(xy);
	CHECK(k == NULL, "a point off the curve is refused");
	EVP_PKEY_free(k);
}

static void
test_v2_preimage(void)
{
	static const struct
	{
		const char *name;
		const char *payload_hex;
		const char *want;
	}			v[] = {
		{"compose-hash", "abcd", "{\"name\":\"compose-hash\",\"payload\":\"abcd\",\"type\":134217729}"},
		{"event\"with\\special\nchars", "ff", "{\"name\":\"event\\\"with\\\\special\\nchars\",\"payload\":\"ff\",\"type\":134217729}"},
		{"\b\f\n\r\t\x01", "", "{\"name\":\"\\b\\f\\n\\r\\t\\u0001\",\"payload\":\"\",\"type\":134217729}"},
		{"", "", "{\"name\":\"\",\"payload\":\"\",\"type\":134217729}"},
		{"test", "abcdef", "{\"name\":\"test\",\"payload\":\"abcdef\",\"type\":134217729}"},
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
	{
		uint8_t		p[8];
		size_t		pl = strlen(v[i].payload_hex) / 2,
					n;
		uint8_t    *pre;

		if (pl)
			unhex(v[i].payload_hex, p, pl);
		pre = eventlog_preimage(2, v[i].name, p, pl, &n);
		CHECK(pre && n == strlen(v[i].want) && memcmp(pre, v[i].want, n) == 0, "v2 preimage %zu (dstack's test): %.*s",
			  i, (int) n, pre ? (const char *) pre : "");
		free(pre);
	}
	{
		uint8_t		pl[4] = {0xde, 0xad, 0xbe, 0xef};
		size_t		n;
		uint8_t    *pre = eventlog_preimage(1, "app-id", pl, 4, &n);
		static const uint8_t want[] = {0x01, 0x00, 0x00, 0x08, ':', 'a', 'p', 'p', '-', 'i', 'd', ':', 0xde, 0xad, 0xbe, 0xef};

		CHECK(pre && n == sizeof(want) && memcmp(pre, want, n) == 0, "v1 preimage: u32le(0x08000001) : name : payload");
		free(pre);
	}
}

static void
test_eventlog(void)
{
	static const char *const files[] = {"dstack-quote-report.json", "dstack-tdx-lite-getquote.json"};

	for (int f = 0; f < 2; f++)
	{
		size_t		len;
		char	   *el;
		uint8_t    *raw = fixture_quote(files[f], &len, &el);
		TdxQuote	q;
		TdxErr		err;
		EventLog	log;
		bool		dup;

		CHECK(tdx_quote_parse(raw, len, false, &q, &err), "%s parses: %s", files[f], err.msg);
		/* quote-report.json states dstack's digests: parsing checks each against ours */
		CHECK(eventlog_parse(el, false, &log, &err), "%s event log (dstack's digests = ours): %s", files[f], err.msg);
		CHECK(memcmp(log.rtmr3, q.rtmr[3], 48) == 0, "%s: RTMR3 replays to the quote's", files[f]);
		CHECK(log.rules_used == 1 << 1, "%s: all RTMR3 events are v1 runtime events", files[f]);
		CHECK(eventlog_find(&log, "app-id", &dup) && !dup && eventlog_find(&log, "app-id", &dup)->payload_len == 20,
			  "%s: one 20-byte app-id event", files[f]);
		eventlog_free(&log);

		/* another app: the app-id payload edited, its digest recomputed: RTMR3 no longer replays */
		{
			json_t	   *arr = json_loads(el, 0, NULL),
					   *ev;
			size_t		i;
			char	   *t;

			json_array_foreach(arr, i, ev)
				if (strcmp(json_string_value(json_object_get(ev, "event")), "app-id") == 0)
			{
				json_object_set_new(ev, "event_payload", json_string("70997970c51812dc3a010c7d01b50e0d17dc79c8"));
				json_object_set_new(ev, "digest", json_string(""));
			}
			t = json_dumps(arr, 0);
			CHECK(eventlog_parse(t, false, &log, &err) && memcmp(log.rtmr3, q.rtmr[3], 48) != 0,
				  "%s: another app id does not replay to the quote's RTMR3", files[f]);
			eventlog_free(&log);
			free(t);
			json_decref(arr);
		}
		free(el);
		free(raw);
	}
	{
		TdxErr		err;
		EventLog	log;

		/* a stated digest that is not dstack's is refused */
		CHECK(!eventlog_parse("[{\"imr\":3,\"event_type\":134217729,\"digest\":\"" "00000000000000000000000000000000"
							  "0000000000000000000000000000000000000000000000000000000000000000\",\"event\":\"app-id\","
							  "\"event_payload\":\"00\"}]", false, &log, &err), "a wrong stated digest is refused");
		/* a non-runtime event named app-id is not taken for the app id */
		CHECK(eventlog_parse("[{\"imr\":3,\"event_type\":1,\"digest\":\"" "00000000000000000000000000000000"
							 "0000000000000000000000000000000000000000000000000000000000000000\",\"event\":\"app-id\","
							 "\"event_payload\":\"00\"}]", false, &log, &err), "a non-runtime event parses");
		{
			bool		dup;

			CHECK(eventlog_find(&log, "app-id", &dup) == NULL, "... and is not an app-id event");
		}
		eventlog_free(&log);
		CHECK(eventlog_parse("[]", false, &log, &err) && log.n_rtmr3 == 0, "an empty log replays to zeros");
		eventlog_free(&log);
		CHECK(!eventlog_parse("{}", false, &log, &err), "an object is not an event log");
	}
}

static void
test_quotes(void)
{
	static const char *const files[] = {
		"dstack-quote-report.json", "dstack-tdx-lite-getquote.json", "dstack-ra-tls-tdx_quote.bin",
		"dcap-qvl-tdx_quote.bin", "dcap-qvl-tdx_quote_outdated.bin", "dcap-qvl-tdx-quote.hex",
		"dcap-qvl-quote-from-tappd.hex",
	};
	time_t		at;

	tdx_parse_time("2026-03-01T00:00:00Z", &at);
	for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++)
	{
		size_t		len;
		uint8_t    *raw = fixture_quote(files[f], &len, NULL);
		TdxQuote	q;
		TdxErr		err;
		X509	   *leaf = NULL;
		TdxPckInfo	pck;
		bool		is_v5 = strstr(files[f], "outdated") != NULL;
		time_t		when = at;

		/* the lite fixture's PCK certificate was issued 2026-04-15 */
		if (strstr(files[f], "lite"))
			tdx_parse_time("2026-07-01T00:00:00Z", &when);
		CHECK(tdx_quote_parse(raw, len, false, &q, &err), "%s parses: %s", files[f], err.msg);
		CHECK(q.version == (is_v5 ? 5 : 4) && q.trailing == (is_v5 ? 0 : 70) && q.trailing_zero,
			  "%s: version %u, %zu bytes of zero padding", files[f], q.version, q.trailing);
		CHECK(tdx_pck_chain_verify(&q, when, NULL, &leaf, &pck, &err), "%s: PCK chain: %s", files[f], err.msg);
		CHECK(leaf && tdx_qe_report_verify(&q, leaf, &err), "%s: QE report: %s", files[f], err.msg);
		CHECK(tdx_quote_sig_verify(&q, &err), "%s: quote signature: %s", files[f], err.msg);
		CHECK(tdx_td_attributes_check(&q, &err), "%s: TD attributes: %s", files[f], err.msg);
		X509_free(leaf);

		/* forged variants */
		{
			uint8_t    *b = malloc(len + 1);
			TdxQuote	v;

			memcpy(b, raw, len);
			b[len] = 1;
			CHECK(!tdx_quote_parse(b, len + 1, false, &v, &err), "%s: a non-zero byte after the quote is refused", files[f]);
			CHECK(!tdx_quote_parse(b, q.end - 1, false, &v, &err), "%s: trimmed by one byte is refused", files[f]);
			memcpy(b, raw, len);
			b[q.report_data - raw] ^= 1;
			CHECK(tdx_quote_parse(b, len, false, &v, &err) && !tdx_quote_sig_verify(&v, &err),
				  "%s: report_data flipped: the signature fails", files[f]);
			memcpy(b, raw, len);
			b[q.signature - raw + 5] ^= 1;
			CHECK(tdx_quote_parse(b, len, false, &v, &err) && !tdx_quote_sig_verify(&v, &err),
				  "%s: signature flipped: it fails", files[f]);
			memcpy(b, raw, len);
			b[q.qe_report - raw + 64] ^= 1;	/* MRENCLAVE */
			leaf = NULL;
			CHECK(tdx_quote_parse(b, len, false, &v, &err) && tdx_pck_chain_verify(&v, when, NULL, &leaf, &pck, &err) &&
				  !tdx_qe_report_verify(&v, leaf, &err), "%s: QE report flipped: its signature fails", files[f]);
			X509_free(leaf);
			memcpy(b, raw, len);
			b[q.attest_key - raw + 3] ^= 1;
			leaf = NULL;
			CHECK(tdx_quote_parse(b, len, false, &v, &err) && tdx_pck_chain_verify(&v, when, NULL, &leaf, &pck, &err) &&
				  !tdx_qe_report_verify(&v, leaf, &err), "%s: another attestation key: the QE binding fails", files[f]);
			X509_free(leaf);
			/* one base64 character of the PCK leaf certificate's signature area changed */
			memcpy(b, raw, len);
			{
				uint8_t    *end = memmem(b + (q.cert_data - raw), q.cert_data_len, "-----END CERTIFICATE-----", 25);

				end[-20] = end[-20] == 'A' ? 'B' : 'A';
			}
			CHECK(tdx_quote_parse(b, len, false, &v, &err) && !tdx_pck_chain_verify(&v, when, NULL, NULL, &pck, &err),
				  "%s: PCK certificate altered: the chain fails", files[f]);
			free(b);
		}
		{
			time_t		t1990 = 631152000;

			CHECK(!tdx_pck_chain_verify(&q, t1990, NULL, NULL, &pck, &err), "%s: PCK chain not valid in 1990", files[f]);
		}
		free(raw);
	}
}

/* The verdicts on the fixtures (dcap-crosscheck.mjs finds @phala/dcap-qvl giving the same) */
static void
test_tcb(void)
{
	static const struct
	{
		const char *quote;
		const char *collateral;
		const char *at;
		const char *status;		/* NULL: verification fails */
		const char *error;		/* a substring of the failure */
	}			v[] = {
		{"dcap-qvl-tdx_quote.bin", "dcap-qvl-tdx_quote_collateral.json", "2025-07-01T00:00:00Z", "UpToDate", NULL},
		{"dstack-quote-report.json", "dcap-qvl-tdx_quote_outdated_collateral.json", "2026-03-01T00:00:00Z", "UpToDate", NULL},
		{"dcap-qvl-tdx_quote_outdated.bin", "dcap-qvl-tdx_quote_outdated_collateral.json", "2026-03-01T00:00:00Z", NULL, "no TCB level"},
		{"dstack-ra-tls-tdx_quote.bin", "dcap-qvl-tdx_quote_collateral.json", "2025-07-01T00:00:00Z", NULL, "no TCB level"},
		{"dstack-quote-report.json", "dcap-qvl-tdx_quote_collateral.json", "2025-07-01T00:00:00Z", NULL, "certificate is not yet valid"},
		{"dcap-qvl-tdx_quote.bin", "dcap-qvl-tdx_quote_outdated_collateral.json", "2026-03-01T00:00:00Z", NULL, "FMSPC"},
		{"dcap-qvl-tdx_quote.bin", "dcap-qvl-tdx_quote_collateral.json", "2025-08-01T00:00:00Z", NULL, "expired"},
		{"dcap-qvl-tdx_quote.bin", "dcap-qvl-tdx_quote_collateral.json", "2025-06-01T00:00:00Z", NULL, "after the verification time"},
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
	{
		char		path[1024];
		TdxErr		err;
		TdxCollateral *c;
		size_t		len;
		uint8_t    *raw = fixture_quote(v[i].quote, &len, NULL);
		TdxQuote	q;
		TdxPckInfo	pck;
		TdxTcbResult r;
		time_t		at;
		bool		ok;

		snprintf(path, sizeof(path), "%s/%s", dir, v[i].collateral);
		tdx_parse_time(v[i].at, &at);
		c = tdx_collateral_load(path, &err);
		CHECK(c != NULL, "%s loads: %s", v[i].collateral, err.msg);
		if (c == NULL)
			continue;
		ok = tdx_quote_parse(raw, len, false, &q, &err) && tdx_collateral_check(c, at, &err) &&
			tdx_pck_chain_verify(&q, at, tdx_collateral_crls(c), NULL, &pck, &err) &&
			tdx_tcb_evaluate(c, &q, &pck, &r, &err);
		if (v[i].status)
			CHECK(ok && strcmp(r.status, v[i].status) == 0, "%s with %s at %s: %s, got %s", v[i].quote, v[i].collateral,
				  v[i].at, v[i].status, ok ? r.status : err.msg);
		else
			CHECK(!ok && strstr(err.msg, v[i].error), "%s with %s at %s: fails with \"%s\", got %s", v[i].quote,
				  v[i].collateral, v[i].at, v[i].error, ok ? r.status : err.msg);
		tdx_collateral_free(c);
		free(raw);
	}
}

/* Collateral altered: each signature and CRL matters. */
static void
test_collateral_forged(void)
{
	static const char *const edits[][3] = {
		/* member, from, to */
		{"tcb_info", "\"UpToDate\"", "\"OutOfDate\""},
		{"qe_identity", "\"UpToDate\"", "\"Revoked\""},
		{"tcb_info_signature", "0", "1"},
		{"qe_identity_signature", "d", "e"},
	};
	size_t		n;
	char	   *text = slurp("dcap-qvl-tdx_quote_collateral.json", &n);
	time_t		at;

	tdx_parse_time("2025-07-01T00:00:00Z", &at);
	for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++)
	{
		json_t	   *j = json_loads(text, 0, NULL);
		char	   *s = strdup(json_string_value(json_object_get(j, edits[i][0])));
		char	   *p = strstr(s, edits[i][1]);
		char	   *out = malloc(strlen(s) + 16);
		char		path[] = "/tmp/test_tdx_collateral_XXXXXX";
		int			fd = mkstemp(path);
		TdxErr		err;
		TdxCollateral *c;

		*p = '\0';
		sprintf(out, "%s%s%s", s, edits[i][2], p + strlen(edits[i][1]));
		json_object_set_new(j, edits[i][0], json_string(out));
		json_dumpfd(j, fd, 0);
		close(fd);
		c = tdx_collateral_load(path, &err);
		CHECK(c && !tdx_collateral_check(c, at, &err) && strstr(err.msg, "signature"),
			  "collateral with %s edited is refused: %s", edits[i][0], c ? err.msg : "not loaded");
		tdx_collateral_free(c);
		unlink(path);
		free(out);
		free(s);
		json_decref(j);
	}
	free(text);
}

/*
 * The TCB rules on collateral edited after signing (tdx_tcb_evaluate reads what
 * tdx_collateral_check has verified; here it is called alone, on TCB info
 * edited after signing): statuses merged by severity, advisories joined,
 * Intel's level order not relied on, Revoked refused.
 */
typedef void (*Edit) (json_t *tcb_info, json_t *qe_identity);

static void
set_platform_status(json_t *ti, json_t *qi)
{
	json_t	   *l;
	size_t		i;

	(void) qi;
	json_array_foreach(json_object_get(ti, "tcbLevels"), i, l)
	{
		json_object_set_new(l, "tcbStatus", json_string("SWHardeningNeeded"));
		json_object_set_new(l, "advisoryIDs", json_pack("[s]", "INTEL-SA-00001"));
	}
}

static void
set_qe_status(json_t *ti, json_t *qi)
{
	(void) ti;
	json_object_set_new(json_array_get(json_object_get(qi, "tcbLevels"), 0), "tcbStatus", json_string("OutOfDate"));
	json_object_set_new(json_array_get(json_object_get(qi, "tcbLevels"), 0), "advisoryIDs",
						json_pack("[ss]", "INTEL-SA-00002", "INTEL-SA-00001"));
}

static void
set_module_status(json_t *ti, json_t *qi)
{
	json_t	   *id,
			   *l;
	size_t		i,
				j;

	(void) qi;
	json_array_foreach(json_object_get(ti, "tdxModuleIdentities"), i, id)
		json_array_foreach(json_object_get(id, "tcbLevels"), j, l)
			json_object_set_new(l, "tcbStatus", json_string("OutOfDate"));
}

static void
revoke_platform(json_t *ti, json_t *qi)
{
	json_t	   *l;
	size_t		i;

	(void) qi;
	json_array_foreach(json_object_get(ti, "tcbLevels"), i, l)
		json_object_set_new(l, "tcbStatus", json_string("Revoked"));
}

static void
reverse_levels(json_t *ti, json_t *qi)
{
	json_t	   *a = json_object_get(ti, "tcbLevels"),
			   *r = json_array();

	(void) qi;
	for (size_t i = json_array_size(a); i > 0; i--)
		json_array_append(r, json_array_get(a, i - 1));
	json_object_set_new(ti, "tcbLevels", r);
}

static void
test_tcb_rules(void)
{
	static const struct
	{
		const char *what;
		Edit		edit;
		const char *status;		/* NULL: refused */
		const char *advisories;
	}			v[] = {
		{"Intel's levels in reverse order", reverse_levels, "UpToDate", ""},
		{"platform level SWHardeningNeeded", set_platform_status, "SWHardeningNeeded", "INTEL-SA-00001"},
		{"QE level OutOfDate", set_qe_status, "OutOfDate", "INTEL-SA-00002,INTEL-SA-00001"},
		{"TDX module level OutOfDate", set_module_status, "OutOfDate", ""},
		{"platform Revoked", revoke_platform, NULL, NULL},
	};
	size_t		n;
	char	   *text = slurp("dcap-qvl-tdx_quote_collateral.json", &n);
	size_t		len;
	uint8_t    *raw = fixture_quote("dcap-qvl-tdx_quote.bin", &len, NULL);
	TdxQuote	q;
	TdxPckInfo	pck;
	TdxErr		err;
	time_t		at;

	tdx_parse_time("2025-07-01T00:00:00Z", &at);
	if (!tdx_quote_parse(raw, len, false, &q, &err) || !tdx_pck_chain_verify(&q, at, NULL, NULL, &pck, &err))
		exit(2);
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
	{
		json_t	   *j = json_loads(text, 0, NULL);
		json_t	   *ti = json_loads(json_string_value(json_object_get(j, "tcb_info")), 0, NULL);
		json_t	   *qi = json_loads(json_string_value(json_object_get(j, "qe_identity")), 0, NULL);
		char		path[] = "/tmp/test_tdx_tcb_XXXXXX";
		int			fd = mkstemp(path);
		TdxCollateral *c;
		TdxTcbResult r;
		bool		ok;

		char	   *t1,
				   *t2;

		v[i].edit(ti, qi);
		t1 = json_dumps(ti, JSON_COMPACT);
		t2 = json_dumps(qi, JSON_COMPACT);
		json_object_set_new(j, "tcb_info", json_string(t1));
		json_object_set_new(j, "qe_identity", json_string(t2));
		free(t1);
		free(t2);
		json_dumpfd(j, fd, 0);
		close(fd);
		c = tdx_collateral_load(path, &err);
		ok = c && tdx_tcb_evaluate(c, &q, &pck, &r, &err);
		if (v[i].status)
			CHECK(ok && strcmp(r.status, v[i].status) == 0 && strcmp(r.advisories, v[i].advisories) == 0 &&
				  r.up_to_date == (strcmp(v[i].status, "UpToDate") == 0),
				  "%s: %s [%s], got %s [%s]", v[i].what, v[i].status, v[i].advisories, ok ? r.status : err.msg,
				  ok ? r.advisories : "");
		else
			CHECK(!ok, "%s: refused, got %s", v[i].what, ok ? r.status : "");
		tdx_collateral_free(c);
		unlink(path);
		json_decref(ti);
		json_decref(qi);
		json_decref(j);
	}
	free(raw);
	free(text);
}

static void
test_misc(void)
{
	time_t		t;
	TdxErr		err;
	X509	   *root = tdx_intel_root_ca(&err);

	CHECK(root != NULL, "the embedded Intel SGX Root CA parses and has SHA-256 %s", tdx_intel_root_ca_sha256);
	X509_free(root);
	CHECK(tdx_parse_time("2025-06-19T10:16:03Z", &t) && t == 1750328163, "tdx_parse_time");
	CHECK(!tdx_parse_time("2025-06-19 10:16:03", &t) && !tdx_parse_time("2025-06-19T10:16:03Zx", &t),
		  "tdx_parse_time refuses other forms");
}

int
main(int argc, char **argv)
{
	if (argc != 2)
	{
		fprintf(stderr, "usage: test_tdx FIXTURES_DIR\n");
		return 2;
	}
	dir = argv[1];
	test_hashes();
	test_ecdsa();
	test_v2_preimage();
	test_eventlog();
	test_quotes();
	test_tcb();
	test_collateral_forged();
	test_tcb_rules();
	test_misc();
	printf("test_tdx: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
