/*
 * tdx_quote.c: TDX quote fields, the simulation marker, dstack's runtime
 * event digests, RTMR3 replay and measurements (see tdx_quote.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "crypto.h"
#include "hex.h"
#include "tdx_quote.h"

static uint32_t
le32(const uint8_t *p)
{
	return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

bool
tdxq_parse(const uint8_t *q, size_t len, TdxqReport *r, DErr *err)
{
	memset(r, 0, sizeof(*r));
	if (q == NULL || len < TDXQ_SIG_OFFSET)
	{
		derr_set(err, DERR_FORMAT, "not a TDX quote");
		derr_detail(err, "A TDX quote v4 is at least %d bytes (header, TD report, signature length); this one is %zu.",
					TDXQ_SIG_OFFSET, len);
		return false;
	}
	if ((q[0] | q[1] << 8) != 4 || le32(q + 4) != TDXQ_TEE_TDX)
	{
		derr_set(err, DERR_FORMAT, "not a TDX quote");
		derr_detail(err, "The header says version %u, TEE type 0x%x; a TDX quote is version 4, TEE type 0x81.",
					(unsigned) (q[0] | q[1] << 8), le32(q + 4));
		return false;
	}
	r->sig_len = le32(q + TDXQ_SIGLEN_OFFSET);
	if (r->sig_len > len - TDXQ_SIG_OFFSET)
	{
		derr_set(err, DERR_FORMAT, "truncated TDX quote");
		derr_detail(err, "The signature data is %u bytes; only %zu follow its length.", r->sig_len,
					len - TDXQ_SIG_OFFSET);
		return false;
	}
	r->trailing = len - TDXQ_SIG_OFFSET - r->sig_len;
	memcpy(r->mrtd, q + TDXQ_MRTD_OFFSET, TDXQ_MR_LEN);
	memcpy(r->mr_config_id, q + TDXQ_MRCONFIGID_OFFSET, TDXQ_MR_LEN);
	memcpy(r->mr_owner, q + TDXQ_MROWNER_OFFSET, TDXQ_MR_LEN);
	memcpy(r->mr_owner_config, q + TDXQ_MROWNERCONFIG_OFFSET, TDXQ_MR_LEN);
	for (int i = 0; i < 4; i++)
		memcpy(r->rtmr[i], q + TDXQ_RTMR_OFFSET + TDXQ_MR_LEN * i, TDXQ_MR_LEN);
	memcpy(r->report_data, q + TDXQ_REPORT_DATA_OFFSET, 64);
	return true;
}

bool
tdxq_is_simulated(const uint8_t *q, size_t len)
{
	static const uint8_t zero4[4] = {0};

	return q != NULL && len >= TDXQ_HEADER_LEN && (q[0] | q[1] << 8) == 4 && le32(q + 4) == TDXQ_TEE_TDX &&
		memcmp(q + TDXQ_SIM_MARKER_OFFSET, TDXQ_SIM_MARKER, 16) == 0 &&
		memcmp(q + TDXQ_SIM_MARKER_OFFSET + 16, zero4, 4) == 0;
}

static void
sha384(const void *data, size_t len, uint8_t out[TDXQ_MR_LEN])
{
	unsigned int n = TDXQ_MR_LEN;

	EVP_Digest(data, len, out, &n, EVP_sha384(), NULL);
}

/* A JSON string as JCS writes it: short escapes, \u00xx lowercase, UTF-8 as is. */
static size_t
jcs_string(const char *s, char *out)
{
	size_t		n = 0;

	out[n++] = '"';
	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
	{
		const char *esc = NULL;

		switch (*p)
		{
			case '"': esc = "\\\""; break;
			case '\\': esc = "\\\\"; break;
			case '\b': esc = "\\b"; break;
			case '\f': esc = "\\f"; break;
			case '\n': esc = "\\n"; break;
			case '\r': esc = "\\r"; break;
			case '\t': esc = "\\t"; break;
			default: break;
		}
		if (esc != NULL)
		{
			memcpy(out + n, esc, 2);
			n += 2;
		}
		else if (*p < 0x20)
			n += (size_t) sprintf(out + n, "\\u%04x", *p);
		else
			out[n++] = (char) *p;
	}
	out[n++] = '"';
	return n;
}

/* The digest preimage of a runtime event (malloc()ed). */
static uint8_t *
event_preimage(const char *name, const uint8_t *payload, size_t len, int version, size_t *out_len, DErr *err)
{
	size_t		nlen = strlen(name);
	uint8_t    *buf;
	size_t		n = 0;

	if (version != 1 && version != 2)
	{
		derr_set(err, DERR_ARG, "unknown event log version %d", version);
		derr_detail(err, "dstack's runtime events are version 1 (binary digest) or 2 (canonical JSON).");
		return NULL;
	}
	/* V2 worst case: every name byte a 6-character escape, the payload as hex */
	buf = malloc(version == 1 ? 4 + 2 + nlen + len : 64 + 6 * nlen + 2 * len);
	if (buf == NULL)
	{
		derr_set(err, DERR_NOMEM, "out of memory hashing an event");
		return NULL;
	}
	if (version == 1)
	{
		uint32_t	t = TDXQ_RUNTIME_EVENT_TYPE;

		for (int i = 0; i < 4; i++)
			buf[n++] = (uint8_t) (t >> (8 * i));
		buf[n++] = ':';
		memcpy(buf + n, name, nlen);
		n += nlen;
		buf[n++] = ':';
		if (len > 0)
			memcpy(buf + n, payload, len);
		n += len;
	}
	else
	{
		char	   *o = (char *) buf;

		n = (size_t) sprintf(o, "{\"name\":");
		n += jcs_string(name, o + n);
		n += (size_t) sprintf(o + n, ",\"payload\":\"");
		dhex_encode(payload, len, o + n);
		n += 2 * len;
		n += (size_t) sprintf(o + n, "\",\"type\":%u}", TDXQ_RUNTIME_EVENT_TYPE);
	}
	*out_len = n;
	return buf;
}

bool
tdxq_event_digest(const char *name, const uint8_t *payload, size_t len, int version, uint8_t out[TDXQ_MR_LEN],
				  DErr *err)
{
	size_t		n = 0;
	uint8_t    *pre = event_preimage(name, payload, len, version, &n, err);

	if (pre == NULL)
		return false;
	sha384(pre, n, out);
	free(pre);
	return true;
}

/* A hex member that may be absent or "": *out NULL, *len 0. */
static bool
hex_member(json_t *ev, const char *key, size_t index, uint8_t **out, size_t *len, DErr *err)
{
	json_t	   *v = json_object_get(ev, key);

	*out = NULL;
	*len = 0;
	if (v == NULL || json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0))
		return true;
	if (!json_is_string(v) || !dhex_decode_alloc(json_string_value(v), out, len, key, err))
	{
		derr_set(err, DERR_FORMAT, "malformed event log");
		derr_detail(err, "Event %zu's \"%s\" is not a hex string.", index, key);
		return false;
	}
	return true;
}

/* imr, event_type and name of one event; false with err on a malformed one. */
static bool
event_head(json_t *ev, size_t i, json_int_t *imr, json_int_t *type, const char **name, DErr *err)
{
	json_t	   *jimr = json_object_get(ev, "imr");
	json_t	   *jtype = json_object_get(ev, "event_type");
	json_t	   *jname = json_object_get(ev, "event");

	if (!json_is_object(ev) || !json_is_integer(jimr) || !json_is_integer(jtype) ||
		(jname != NULL && !json_is_string(jname)))
	{
		derr_set(err, DERR_FORMAT, "malformed event log");
		derr_detail(err, "Event %zu is not an object with integer imr and event_type and a string event.", i);
		return false;
	}
	*imr = json_integer_value(jimr);
	*type = json_integer_value(jtype);
	*name = jname ? json_string_value(jname) : "";
	return true;
}

/* The event log must be a JSON array of events. */
static bool
log_is_array(json_t *log, DErr *err)
{
	if (json_is_array(log))
		return true;
	derr_set(err, DERR_FORMAT, "malformed event log");
	derr_detail(err, "The event log is not a JSON array.");
	return false;
}

bool
tdxq_replay_rtmr3(json_t *log, const char *stop_after, uint8_t out[TDXQ_MR_LEN], DErr *err)
{
	uint8_t		mr[2 * TDXQ_MR_LEN];

	memset(mr, 0, sizeof(mr));
	if (!log_is_array(log, err))
		return false;
	for (size_t i = 0; i < json_array_size(log); i++)
	{
		json_t	   *ev = json_array_get(log, i);
		json_int_t	imr,
					type;
		const char *name;
		uint8_t    *payload = NULL,
				   *digest = NULL,
				   *pre = NULL;
		size_t		plen,
					dlen,
					prelen;
		uint8_t		d[TDXQ_MR_LEN];
		bool		ok = true;

		if (!event_head(ev, i, &imr, &type, &name, err))
			return false;
		if (imr != 3)
			continue;
		if (!hex_member(ev, "event_payload", i, &payload, &plen, err) ||
			!hex_member(ev, "digest", i, &digest, &dlen, err) ||
			!hex_member(ev, "preimage", i, &pre, &prelen, err))
		{
			free(payload);
			free(digest);
			return false;
		}
		if (type == TDXQ_RUNTIME_EVENT_TYPE)
		{
			json_t	   *jv = json_object_get(ev, "version");
			int			version = json_is_integer(jv) ? (int) json_integer_value(jv) : 1;
			uint8_t    *canon = NULL;
			size_t		clen = 0;

			canon = event_preimage(name, payload, plen, version, &clen, err);
			ok = canon != NULL;
			if (ok)
				sha384(canon, clen, d);
			if (ok && pre != NULL && (prelen != clen || memcmp(pre, canon, clen) != 0))
			{
				derr_set(err, DERR_INTEGRITY, "event log entry %zu (\"%.64s\") is not what it claims", i, name);
				derr_detail(err, "Its preimage is not the canonical form of its name and payload.");
				ok = false;
			}
			free(canon);
			if (ok && dlen != 0 && (dlen != TDXQ_MR_LEN || memcmp(digest, d, TDXQ_MR_LEN) != 0))
			{
				derr_set(err, DERR_INTEGRITY, "event log entry %zu (\"%.64s\") is not what it claims", i, name);
				derr_detail(err, "Its digest is not dstack's digest of its name and payload.");
				ok = false;
			}
		}
		else if (dlen != TDXQ_MR_LEN)
		{
			derr_set(err, DERR_FORMAT, "malformed event log");
			derr_detail(err, "Event %zu in imr 3 (type %lld) has no 48-byte digest.", i, (long long) type);
			ok = false;
		}
		else
			memcpy(d, digest, TDXQ_MR_LEN);
		free(payload);
		free(digest);
		free(pre);
		if (!ok)
			return false;
		memcpy(mr + TDXQ_MR_LEN, d, TDXQ_MR_LEN);
		sha384(mr, sizeof(mr), mr);
		if (stop_after != NULL && strcmp(name, stop_after) == 0)
			break;
	}
	memcpy(out, mr, TDXQ_MR_LEN);
	return true;
}

bool
tdxq_event_payload(json_t *log, const char *name, uint8_t **payload, size_t *len, bool *found, DErr *err)
{
	*payload = NULL;
	*len = 0;
	*found = false;
	if (!log_is_array(log, err))
		return false;
	for (size_t i = 0; i < json_array_size(log); i++)
	{
		json_t	   *ev = json_array_get(log, i);
		json_int_t	imr,
					type;
		const char *n;

		if (!event_head(ev, i, &imr, &type, &n, err))
			return false;
		if (imr != 3 || type != TDXQ_RUNTIME_EVENT_TYPE || strcmp(n, name) != 0)
			continue;
		if (!hex_member(ev, "event_payload", i, payload, len, err))
			return false;
		*found = true;
		return true;
	}
	return true;
}

static bool
all_zero(const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b[i] != 0)
			return false;
	return true;
}

void
tdxq_measurements(const uint8_t mrtd[TDXQ_MR_LEN], const uint8_t rtmr[4][TDXQ_MR_LEN],
				  const uint8_t cfg[TDXQ_MR_LEN], const uint8_t owner[TDXQ_MR_LEN],
				  const uint8_t owner_cfg[TDXQ_MR_LEN], const uint8_t *kpi, size_t kpi_len,
				  uint8_t mr_system[32], uint8_t mr_aggregated[32])
{
	uint8_t		buf[8 * TDXQ_MR_LEN];
	uint8_t		mkp[32] = {0};
	size_t		n;

	if (kpi_len > 0)
		dc_sha256(kpi, kpi_len, mkp);
	memcpy(buf, mrtd, TDXQ_MR_LEN);
	for (int i = 0; i < 3; i++)
		memcpy(buf + TDXQ_MR_LEN * (1 + i), rtmr[i], TDXQ_MR_LEN);
	memcpy(buf + 4 * TDXQ_MR_LEN, mkp, 32);
	dc_sha256(buf, 4 * TDXQ_MR_LEN + 32, mr_system);
	memcpy(buf + 4 * TDXQ_MR_LEN, rtmr[3], TDXQ_MR_LEN);
	n = 5 * TDXQ_MR_LEN;
	if (!all_zero(cfg, TDXQ_MR_LEN) || !all_zero(owner, TDXQ_MR_LEN) || !all_zero(owner_cfg, TDXQ_MR_LEN))
	{
		memcpy(buf + n, cfg, TDXQ_MR_LEN);
		memcpy(buf + n + TDXQ_MR_LEN, owner, TDXQ_MR_LEN);
		memcpy(buf + n + 2 * TDXQ_MR_LEN, owner_cfg, TDXQ_MR_LEN);
		n += 3 * TDXQ_MR_LEN;
	}
	dc_sha256(buf, n, mr_aggregated);
}

void
tdxq_mr_config_id_v1(const uint8_t compose_hash[32], uint8_t out[TDXQ_MR_LEN])
{
	memset(out, 0, TDXQ_MR_LEN);
	out[0] = 1;
	memcpy(out + 1, compose_hash, 32);
}

void
tdxq_mr_config_id_v2(const uint8_t compose_hash[32], const uint8_t app_id[20], const uint8_t *kp_id,
					 size_t kp_len, uint8_t out[TDXQ_MR_LEN])
{
	static const uint8_t kms_kind = 2;
	DcBuf		parts[4] = {{compose_hash, 32}, {app_id, 20}, {&kms_kind, 1}, {kp_id, kp_len}};

	memset(out, 0, TDXQ_MR_LEN);
	out[0] = 2;
	dc_keccak256_parts(parts, 4, out + 1);
}
