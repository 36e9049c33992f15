/*
 * test_tdx_quote.c: TDX quotes and dstack event logs (tdx_quote.c) and the
 * boot information recomputed from Info (guest_agent.c ga_boot_info):
 *   - dstack's V1 runtime-event digest and the RTMR3 replay reproduce the
 *     RTMR3 of a real captured dstack quote (tools/dstack-sim's fixture);
 *   - the V2 (canonical JSON) digest matches values computed independently;
 *   - the quote parser reads the real quote (70 bytes after its signature
 *     data), refuses truncated and non-TDX ones; the simulation marker;
 *   - stripped logs (digests left out), wrong digests and preimages;
 *   - measurements and MRCONFIGID, and ga_boot_info against the boot info
 *     the simulator gave its KMS contract (checked in Python by hand).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "crypto.h"
#include "guest_agent.h"
#include "hex.h"
#include "tdx_quote.h"
#include "unit.h"

#define FIXTURE "../tools/dstack-sim/fixtures/attestation.bin"
#define FIXTURE_ROOT "tools/dstack-sim/fixtures/attestation.bin"
#define SIM_INFO "tests/data/sim-info.json"
#define SIM_INFO_ROOT "common/tests/data/sim-info.json"

/* The RTMR3 events of the captured attestation (dstack 0.6.0, nine events), payloads as hex. */
static const char *const real_events[][2] = {
	{"system-preparing", ""},
	{"app-id", "5bb4ff9a3837357f19dc176407a5709c62eb6c56"},
	{"compose-hash", "c143116fef3940e7f776bfc0919c256232ae5338a6e948c96b711e0b2383483a"},
	{"instance-id", "1691ed1b47506cad7d08834668691d88246f5b1f"},
	{"boot-mr-done", ""},
	{"os-image-hash", "e61be43dd1cc6a6f5edefd7c51b608983780839b0000ce60dd99737dcffe09b9"},
	{"key-provider", "7b226e616d65223a226b6d73222c226964223a2233303539333031333036303732613836343863653364303230313036"
	 "303832613836343863653364303330313037303334323030303431396232343537646439623861613634343664393830"
	 "663133366666663738313265636436633737373430656562306532386231306435366330633030303238613562366535"
	 "396463656133303764353833626431663730373639653963313136646632626366623137353861393564383631336537"
	 "64653163383438326330227d"},
	{"storage-fs", "7a6673"},
	{"system-ready", ""},
};
#define REAL_RTMR3 "f28a1490ee924e9396c2ccf2d93ad536b83cbe159a1d45024d1fd7acdcc102145efcfcd0cfa209416446c70226affadf"
#define REAL_APP_ID_DIGEST \
	"ddd202447c612b8bb8723d2ce3b9882b7cfc0ede203c36b15639cc80b181b61a7692850c5333a1c6effef82a73d0a4f2"

static uint8_t *
read_file(const char *a, const char *b, size_t *len)
{
	FILE	   *f = fopen(a, "rb");
	uint8_t    *buf;
	long		n;

	if (f == NULL)
		f = fopen(b, "rb");
	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t) n + 1);
	if (buf != NULL && fread(buf, 1, (size_t) n, f) != (size_t) n)
	{
		free(buf);
		buf = NULL;
	}
	fclose(f);
	if (buf != NULL)
	{
		buf[n] = 0;
		*len = (size_t) n;
	}
	return buf;
}

/* The event log of real_events as the agent's GetQuote sends it (digests stripped) or with digests. */
static json_t *
real_log(bool with_digests)
{
	json_t	   *log = json_array();

	for (size_t i = 0; i < sizeof(real_events) / sizeof(real_events[0]); i++)
	{
		uint8_t    *p = NULL;
		size_t		n = 0;
		uint8_t		d[TDXQ_MR_LEN];
		char		dh[2 * TDXQ_MR_LEN + 1] = "";
		DErr		err = {0};

		if (real_events[i][1][0])
			dhex_decode_alloc(real_events[i][1], &p, &n, "payload", &err);
		if (with_digests)
		{
			tdxq_event_digest(real_events[i][0], p, n, 1, d, &err);
			dhex_encode(d, TDXQ_MR_LEN, dh);
		}
		json_array_append_new(log, json_pack("{s:i, s:I, s:s, s:s, s:s}", "imr", 3, "event_type",
											 (json_int_t) TDXQ_RUNTIME_EVENT_TYPE, "digest", dh,
											 "event", real_events[i][0], "event_payload", real_events[i][1]));
		free(p);
	}
	return log;
}

static void
test_digests(void)
{
	uint8_t		d[TDXQ_MR_LEN];
	uint8_t		app[20];
	DErr		err = {0};
	static const uint8_t abcd[] = {0xab, 0xcd};
	static const uint8_t ff[] = {0xff};

	dhex_decode_exact(real_events[1][1], app, 20, "app", &err);
	CHECK(tdxq_event_digest("app-id", app, 20, 1, d, &err), "V1 digest computes");
	CHECK_HEX(d, TDXQ_MR_LEN, REAL_APP_ID_DIGEST, "V1 digest of app-id is the captured log's");
	CHECK(tdxq_event_digest("compose-hash", abcd, 2, 2, d, &err), "V2 digest computes");
	CHECK_HEX(d, TDXQ_MR_LEN,
			  "9dde1673f544faa94b921825209593ddde08d0baf9cd6990175dffaf3081f1bb10311d56de189491feb33842a050ad7b",
			  "V2 digest = sha384 of {\"name\":\"compose-hash\",\"payload\":\"abcd\",\"type\":134217729}");
	CHECK(tdxq_event_digest("a\"b\\c\n\x01", ff, 1, 2, d, &err), "V2 digest with escapes computes");
	CHECK_HEX(d, TDXQ_MR_LEN,
			  "6ed11f15e8f703e1821154ed590d329928367b342d754def695eb45760eb331996c0895920470a54a341ae82df9bc771",
			  "V2 escapes as JCS: \\\" \\\\ \\n \\u0001");
	derr_clear(&err);
	CHECK(!tdxq_event_digest("x", NULL, 0, 3, d, &err) && err.code == DERR_ARG, "version 3 is refused");
}

static void
test_replay(void)
{
	json_t	   *log;
	uint8_t		mr[TDXQ_MR_LEN];
	DErr		err = {0};
	uint8_t    *p;
	size_t		n;
	bool		found;

	log = real_log(false);
	CHECK(tdxq_replay_rtmr3(log, NULL, mr, &err), "replay of the stripped log (no digests)");
	CHECK_HEX(mr, TDXQ_MR_LEN, REAL_RTMR3, "  ... gives the captured quote's RTMR3");
	json_decref(log);

	log = real_log(true);
	CHECK(tdxq_replay_rtmr3(log, NULL, mr, &err), "replay of the log with digests");
	CHECK_HEX(mr, TDXQ_MR_LEN, REAL_RTMR3, "  ... gives the same RTMR3");
	CHECK(tdxq_replay_rtmr3(log, "boot-mr-done", mr, &err), "replay up to boot-mr-done");
	CHECK(memcmp(mr, (uint8_t[TDXQ_MR_LEN]) {0}, TDXQ_MR_LEN) != 0, "  ... is not all zero");
	CHECK(tdxq_event_payload(log, "storage-fs", &p, &n, &found, &err) && found && n == 3 && memcmp(p, "zfs", 3) == 0,
		  "payload of storage-fs is zfs");
	free(p);
	CHECK(tdxq_event_payload(log, "no-such", &p, &n, &found, &err) && !found && p == NULL, "absent event: not found");

	/* a digest that is not the payload's */
	json_object_set_new(json_array_get(log, 2), "digest", json_string(REAL_APP_ID_DIGEST));
	derr_clear(&err);
	CHECK(!tdxq_replay_rtmr3(log, NULL, mr, &err) && err.code == DERR_INTEGRITY && strstr(err.msg, "compose-hash"),
		  "a digest that is not its payload's: DERR_INTEGRITY naming the event");
	json_decref(log);

	/* an edited payload changes RTMR3 */
	log = real_log(false);
	json_object_set_new(json_array_get(log, 7), "event_payload", json_string("657874"));
	CHECK(tdxq_replay_rtmr3(log, NULL, mr, &err), "replay with an edited payload");
	{
		char		h[2 * TDXQ_MR_LEN + 1];

		dhex_encode(mr, TDXQ_MR_LEN, h);
		CHECK(strcmp(h, REAL_RTMR3) != 0, "  ... does not give the captured RTMR3");
	}
	/* a V2 event whose preimage is not canonical */
	json_object_set_new(json_array_get(log, 7), "version", json_integer(2));
	json_object_set_new(json_array_get(log, 7), "preimage", json_string("00"));
	derr_clear(&err);
	CHECK(!tdxq_replay_rtmr3(log, NULL, mr, &err) && err.code == DERR_INTEGRITY, "a V2 preimage that is not canonical");
	json_decref(log);

	derr_clear(&err);
	log = json_loads("[{\"imr\":\"3\"}]", 0, NULL);
	CHECK(!tdxq_replay_rtmr3(log, NULL, mr, &err) && err.code == DERR_FORMAT, "malformed event: DERR_FORMAT");
	json_decref(log);
	derr_clear(&err);
	log = json_object();
	CHECK(!tdxq_replay_rtmr3(log, NULL, mr, &err) && err.code == DERR_FORMAT, "not an array: DERR_FORMAT");
	json_decref(log);
}

static void
test_quote(void)
{
	size_t		len = 0;
	uint8_t    *att = read_file(FIXTURE, FIXTURE_ROOT, &len);
	uint8_t    *q;
	size_t		qlen;
	TdxqReport	r;
	DErr		err = {0};

	CHECK(att != NULL && len > 8 && att[0] == 0 && att[1] == 0 && (att[2] & 3) == 1, "read the captured attestation");
	if (att == NULL)
		return;
	/* VersionedAttestation::V0, DstackTdx, then the quote's SCALE compact length (2 bytes) */
	qlen = (size_t) ((att[2] | att[3] << 8) >> 2);
	q = att + 4;
	CHECK(tdxq_parse(q, qlen, &r, &err), "the real quote parses");
	CHECK(r.sig_len == 4304 && r.trailing == 70, "  ... 4304 bytes of signature data, 70 bytes after them");
	CHECK_HEX(r.rtmr[3], TDXQ_MR_LEN, REAL_RTMR3, "  ... its RTMR3 is the replay of its RTMR3 events");
	CHECK(r.mr_config_id[0] == 1, "  ... MRCONFIGID is dstack's V1 form");
	CHECK(!tdxq_is_simulated(q, qlen), "  ... and it is not simulated");

	memcpy(q + TDXQ_SIM_MARKER_OFFSET, TDXQ_SIM_MARKER "\0\0\0\0", 20);
	CHECK(tdxq_is_simulated(q, qlen), "with the marker in the QE user data it is simulated");
	q[TDXQ_SIM_MARKER_OFFSET + 19] = 1;
	CHECK(!tdxq_is_simulated(q, qlen), "  ... not when the marker's zero bytes are not zero");
	q[TDXQ_SIM_MARKER_OFFSET + 19] = 0;
	CHECK(!tdxq_is_simulated(q, 40), "  ... not when the header is cut");

	derr_clear(&err);
	CHECK(!tdxq_parse(q, 700, &r, &err) && err.code == DERR_FORMAT && strstr(err.msg, "truncated"),
		  "a truncated quote is refused");
	q[4] = 0;
	derr_clear(&err);
	CHECK(!tdxq_parse(q, qlen, &r, &err) && err.code == DERR_FORMAT, "a quote of another TEE type is refused");
	derr_clear(&err);
	CHECK(!tdxq_parse(q, 100, &r, &err) && err.code == DERR_FORMAT, "a short buffer is refused");
	free(att);
}

/* Info from the simulator, and the boot info it asked its KMS contract with. */
static void
test_boot_info(void)
{
	size_t		len = 0;
	char	   *text = (char *) read_file(SIM_INFO, SIM_INFO_ROOT, &len);
	json_t	   *doc,
			   *ji,
			   *jb;
	GaInfo		info;
	AbiAppBootInfo b;
	DErr		err = {0};
	uint8_t		want[32];

	CHECK(text != NULL, "read the simulator's Info");
	if (text == NULL)
		return;
	doc = json_loads(text, 0, NULL);
	ji = json_object_get(doc, "info");
	jb = json_object_get(doc, "boot");
	memset(&info, 0, sizeof(info));
#define HEXF(field, name) \
	info.field##_len = 0; \
	dhex_decode_exact(json_string_value(json_object_get(ji, name)), info.field, sizeof(info.field), name, &err); \
	info.field##_len = sizeof(info.field)
	dhex_decode_exact(json_string_value(json_object_get(ji, "app_id")), info.app_id, 20, "app_id", &err);
	dhex_decode_exact(json_string_value(json_object_get(ji, "compose_hash")), info.compose_hash, 32, "c", &err);
	dhex_decode_exact(json_string_value(json_object_get(ji, "instance_id")), info.instance_id, 20, "i", &err);
	info.instance_id_len = 20;
	HEXF(device_id, "device_id");
	HEXF(mr_aggregated, "mr_aggregated");
	HEXF(os_image_hash, "os_image_hash");
#undef HEXF
	info.key_provider_info = strdup(json_string_value(json_object_get(ji, "key_provider_info")));
	info.tcb_info = strdup(json_string_value(json_object_get(ji, "tcb_info")));

	CHECK(ga_boot_info(&info, &b, &err), "ga_boot_info of the simulator's Info");
	dhex_decode_exact(json_string_value(json_object_get(jb, "mrAggregated")), want, 32, "m", &err);
	CHECK(memcmp(b.mr_aggregated, want, 32) == 0, "  ... mrAggregated is the boot-time one the KMS was asked with");
	dhex_decode_exact(json_string_value(json_object_get(jb, "mrSystem")), want, 32, "m", &err);
	CHECK(memcmp(b.mr_system, want, 32) == 0, "  ... mrSystem too (no key provider yet)");
	dhex_decode_exact(json_string_value(json_object_get(jb, "deviceId")), want, 32, "m", &err);
	CHECK(memcmp(b.device_id, want, 32) == 0 && memcmp(b.app_id, info.app_id, 20) == 0 &&
		  memcmp(b.instance_id, info.instance_id, 20) == 0 && memcmp(b.os_image_hash, info.os_image_hash, 32) == 0 &&
		  strcmp(b.tcb_status, "UpToDate") == 0 && b.n_advisory_ids == 0,
		  "  ... and the identity fields, tcbStatus UpToDate, no advisories");

	/* Info that does not add up is refused */
	info.mr_aggregated[0] ^= 1;
	derr_clear(&err);
	CHECK(!ga_boot_info(&info, &b, &err) && err.code == DERR_INTEGRITY && strstr(err.msg, "mr_aggregated"),
		  "an mr_aggregated that is no aggregate of the registers: DERR_INTEGRITY");
	info.mr_aggregated[0] ^= 1;
	info.compose_hash[5] ^= 1;
	derr_clear(&err);
	CHECK(!ga_boot_info(&info, &b, &err) && err.code == DERR_INTEGRITY && strstr(err.msg, "compose-hash"),
		  "a compose_hash the event log does not measure: DERR_INTEGRITY");
	info.compose_hash[5] ^= 1;
	{
		char	   *t = info.tcb_info;
		char	   *r3 = strstr(t, "\"rtmr3\":\"");

		CHECK(r3 != NULL, "tcb_info has rtmr3");
		if (r3 != NULL)
		{
			char		was = r3[10];

			r3[10] = was == '0' ? '1' : '0';
			derr_clear(&err);
			CHECK(!ga_boot_info(&info, &b, &err) && err.code == DERR_INTEGRITY && strstr(err.msg, "RTMR3"),
				  "an RTMR3 that is not the replay of the log: DERR_INTEGRITY");
			r3[10] = was;
		}
	}
	free(info.key_provider_info);
	info.key_provider_info = strdup("{\"name\":\"kms\",\"id\":\"00\"}");
	derr_clear(&err);
	CHECK(!ga_boot_info(&info, &b, &err) && err.code == DERR_INTEGRITY && strstr(err.msg, "key_provider_info"),
		  "a key_provider_info that is not the measured one: DERR_INTEGRITY");
	free(info.tcb_info);
	info.tcb_info = strdup("");
	derr_clear(&err);
	CHECK(!ga_boot_info(&info, &b, &err) && err.code == DERR_FORMAT, "no tcb_info: DERR_FORMAT");
	ga_info_free(&info);
	json_decref(doc);
	free(text);
}

static void
test_measurements(void)
{
	uint8_t		mrtd[TDXQ_MR_LEN] = {1},
				rtmr[4][TDXQ_MR_LEN] = {{2}, {3}, {4}, {5}},
				zero[TDXQ_MR_LEN] = {0},
				cfg[TDXQ_MR_LEN],
				compose[32] = {9},
				app[20] = {7};
	uint8_t		sys[32],
				agg[32],
				sys2[32],
				agg2[32];

	tdxq_measurements(mrtd, (const uint8_t (*)[TDXQ_MR_LEN]) rtmr, zero, zero, zero, NULL, 0, sys, agg);
	tdxq_mr_config_id_v1(compose, cfg);
	CHECK(cfg[0] == 1 && cfg[1] == 9 && cfg[33] == 0, "MRCONFIGID V1 is 0x01 || compose-hash, zero-padded");
	tdxq_measurements(mrtd, (const uint8_t (*)[TDXQ_MR_LEN]) rtmr, cfg, zero, zero, NULL, 0, sys2, agg2);
	CHECK(memcmp(sys, sys2, 32) == 0 && memcmp(agg, agg2, 32) != 0,
		  "a non-zero MRCONFIGID joins mr_aggregated, not mr_system");
	tdxq_measurements(mrtd, (const uint8_t (*)[TDXQ_MR_LEN]) rtmr, zero, zero, zero, (const uint8_t *) "k", 1, sys2, agg2);
	CHECK(memcmp(sys, sys2, 32) != 0 && memcmp(agg, agg2, 32) == 0,
		  "the key provider joins mr_system, not mr_aggregated");
	tdxq_mr_config_id_v2(compose, app, (const uint8_t *) "id", 2, cfg);
	CHECK(cfg[0] == 2 && cfg[33] == 0, "MRCONFIGID V2 is 0x02 || keccak256(...), zero-padded");
}

int
main(void)
{
	test_digests();
	test_replay();
	test_quote();
	test_measurements();
	test_boot_info();
	UNIT_DONE();
}
