/*
 * eventlog.c: parse dstack's event log and replay RTMR3 (see eventlog.h).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "eventlog.h"

static bool
sha384(const uint8_t *p, size_t n, uint8_t out[48])
{
	return EVP_Digest(p, n, out, NULL, EVP_sha384(), NULL) == 1;
}

/* hex (no 0x, either case) to a malloc'd buffer; "" gives an empty one */
static bool
unhex_alloc(const char *s, uint8_t **out, size_t *n)
{
	size_t		len = strlen(s);

	if (len % 2)
		return false;
	*n = len / 2;
	*out = malloc(*n ? *n : 1);
	if (*out == NULL)
		return false;
	for (size_t i = 0; i < *n; i++)
	{
		int			hi = s[2 * i],
					lo = s[2 * i + 1];

		if (!isxdigit(hi) || !isxdigit(lo))
		{
			free(*out);
			*out = NULL;
			return false;
		}
		hi = isdigit(hi) ? hi - '0' : (tolower(hi) - 'a' + 10);
		lo = isdigit(lo) ? lo - '0' : (tolower(lo) - 'a' + 10);
		(*out)[i] = (uint8_t) (hi << 4 | lo);
	}
	return true;
}

/* Append a JSON string as RFC 8785 (JCS) writes it: only " \ and controls escaped, \u00xx lowercase. */
static size_t
jcs_string(const char *s, char *out)
{
	size_t		n = 0;

	out[n++] = '"';
	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
	{
		switch (*p)
		{
			case '"':
				out[n++] = '\\';
				out[n++] = '"';
				break;
			case '\\':
				out[n++] = '\\';
				out[n++] = '\\';
				break;
			case '\b':
				out[n++] = '\\';
				out[n++] = 'b';
				break;
			case '\f':
				out[n++] = '\\';
				out[n++] = 'f';
				break;
			case '\n':
				out[n++] = '\\';
				out[n++] = 'n';
				break;
			case '\r':
				out[n++] = '\\';
				out[n++] = 'r';
				break;
			case '\t':
				out[n++] = '\\';
				out[n++] = 't';
				break;
			default:
				if (*p < 0x20)
					n += (size_t) sprintf(out + n, "\\u%04x", *p);
				else
					out[n++] = (char) *p;
		}
	}
	out[n++] = '"';
	return n;
}

uint8_t *
eventlog_preimage(int version, const char *name, const uint8_t *payload, size_t len, size_t *out_len)
{
	size_t		nl = strlen(name);
	uint8_t    *buf;
	size_t		n = 0;

	if (version == 1)
	{
		buf = malloc(4 + 1 + nl + 1 + len + 1);
		if (buf == NULL)
			return NULL;
		buf[0] = DSTACK_RUNTIME_EVENT_TYPE & 0xff;
		buf[1] = (DSTACK_RUNTIME_EVENT_TYPE >> 8) & 0xff;
		buf[2] = (DSTACK_RUNTIME_EVENT_TYPE >> 16) & 0xff;
		buf[3] = (DSTACK_RUNTIME_EVENT_TYPE >> 24) & 0xff;
		buf[4] = ':';
		memcpy(buf + 5, name, nl);
		buf[5 + nl] = ':';
		if (len)
			memcpy(buf + 6 + nl, payload, len);
		*out_len = 6 + nl + len;
		return buf;
	}
	/* version 2: {"name":...,"payload":"hex","type":134217729}, keys in JCS (sorted) order */
	buf = malloc(64 + 6 * nl + 2 * len);
	if (buf == NULL)
		return NULL;
	n += (size_t) sprintf((char *) buf, "{\"name\":");
	n += jcs_string(name, (char *) buf + n);
	n += (size_t) sprintf((char *) buf + n, ",\"payload\":\"");
	for (size_t i = 0; i < len; i++)
		n += (size_t) sprintf((char *) buf + n, "%02x", payload[i]);
	n += (size_t) sprintf((char *) buf + n, "\",\"type\":%u}", DSTACK_RUNTIME_EVENT_TYPE);
	*out_len = n;
	return buf;
}

void
eventlog_free(EventLog *log)
{
	for (size_t i = 0; log->e && i < log->n; i++)
		free(log->e[i].payload);
	free(log->e);
	json_decref(log->json);
	memset(log, 0, sizeof(*log));
}

static bool
entry_fail(EventLog *log, TdxErr *err, size_t i, const char *name, const char *what)
{
	char		label[160];

	snprintf(label, sizeof(label), "event %zu%s%.64s%s", i, name ? " (" : "", name ? name : "", name ? ")" : "");
	tdx_err(err, "%s: %s", label, what);
	eventlog_free(log);
	return false;
}

bool
eventlog_parse(const char *text, bool legacy_sim, EventLog *log, TdxErr *err)
{
	json_error_t je;
	json_t	   *arr,
			   *ev;
	size_t		i;

	memset(log, 0, sizeof(*log));
	log->json = json_loads(text, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (log->json && json_is_string(log->json))
	{
		json_t	   *inner = json_loads(json_string_value(log->json), JSON_REJECT_DUPLICATES, &je);

		json_decref(log->json);
		log->json = inner;
	}
	arr = log->json;
	if (!json_is_array(arr))
	{
		tdx_err(err, "the event log is not a JSON array%s%s", arr ? "" : ": ", arr ? "" : je.text);
		eventlog_free(log);
		return false;
	}
	log->n = json_array_size(arr);
	log->e = calloc(log->n ? log->n : 1, sizeof(EventLogEntry));
	if (log->e == NULL)
		return entry_fail(log, err, 0, NULL, "out of memory");
	json_array_foreach(arr, i, ev)
	{
		EventLogEntry *e = &log->e[i];
		json_t	   *imr = json_object_get(ev, "imr"),
				   *type = json_object_get(ev, "event_type"),
				   *name = json_object_get(ev, "event"),
				   *payload = json_object_get(ev, "event_payload"),
				   *digest = json_object_get(ev, "digest"),
				   *version = json_object_get(ev, "version"),
				   *preimage = json_object_get(ev, "preimage");
		uint8_t    *logged = NULL;
		size_t		logged_len = 0;
		int			ver = 1;

		if (!json_is_integer(imr) || json_integer_value(imr) < 0 || json_integer_value(imr) > 3 ||
			!json_is_integer(type) || json_integer_value(type) < 0 || json_integer_value(type) > 0xffffffffLL ||
			!json_is_string(name) || !json_is_string(payload) || (digest && !json_is_string(digest)))
			return entry_fail(log, err, i, json_is_string(name) ? json_string_value(name) : NULL,
							  "needs integer imr (0-3) and event_type, string event and event_payload, string digest");
		if (json_string_length(name) != strlen(json_string_value(name)))
			return entry_fail(log, err, i, NULL, "its name holds a NUL character");
		e->imr = (int) json_integer_value(imr);
		e->event_type = (uint32_t) json_integer_value(type);
		e->name = json_string_value(name);
		if (!unhex_alloc(json_string_value(payload), &e->payload, &e->payload_len))
			return entry_fail(log, err, i, e->name, "event_payload is not hex");
		if (digest && !unhex_alloc(json_string_value(digest), &logged, &logged_len))
			return entry_fail(log, err, i, e->name, "digest is not hex");
		if (logged_len != 0 && logged_len != 48)
		{
			free(logged);
			return entry_fail(log, err, i, e->name, "digest is not 48 bytes (SHA-384)");
		}
		if (version)
		{
			if (!json_is_integer(version) || (json_integer_value(version) != 1 && json_integer_value(version) != 2))
			{
				free(logged);
				return entry_fail(log, err, i, e->name, "version is not 1 or 2");
			}
			ver = (int) json_integer_value(version);
		}

		if (e->event_type == DSTACK_RUNTIME_EVENT_TYPE)
		{
			size_t		pl;
			uint8_t    *pre = eventlog_preimage(ver, e->name, e->payload, e->payload_len, &pl);

			if (pre == NULL || !sha384(pre, pl, e->digest))
			{
				free(pre);
				free(logged);
				return entry_fail(log, err, i, e->name, "out of memory");
			}
			if (preimage)
			{
				uint8_t    *given = NULL;
				size_t		gl = 0;
				bool		same = json_is_string(preimage) &&
					unhex_alloc(json_string_value(preimage), &given, &gl) && gl == pl && memcmp(given, pre, pl) == 0;

				free(given);
				if (!same)
				{
					free(pre);
					free(logged);
					return entry_fail(log, err, i, e->name,
									  "its preimage is not dstack's canonical preimage of its name and payload");
				}
			}
			free(pre);
			e->rule = ver;
			if (logged_len == 48 && memcmp(logged, e->digest, 48) != 0)
			{
				/* tools/dstack-sim before it followed dstack: SHA-384(name ":" payload) */
				uint8_t    *sim = malloc(strlen(e->name) + 1 + e->payload_len + 1);
				uint8_t		d[48] = {0};
				bool		is_sim = false;

				if (legacy_sim && sim)
				{
					size_t		nl = strlen(e->name);

					memcpy(sim, e->name, nl);
					sim[nl] = ':';
					if (e->payload_len)
						memcpy(sim + nl + 1, e->payload, e->payload_len);
					is_sim = sha384(sim, nl + 1 + e->payload_len, d) && memcmp(d, logged, 48) == 0;
				}
				free(sim);
				if (!is_sim)
				{
					free(logged);
					return entry_fail(log, err, i, e->name,
									  "the digest in the log is not dstack's digest of its name and payload");
				}
				memcpy(e->digest, d, 48);
				e->rule = 9;
			}
		}
		else
		{
			if (logged_len != 48)
				return entry_fail(log, err, i, e->name, "not a dstack runtime event, and no 48-byte digest");
			memcpy(e->digest, logged, 48);
			e->rule = 0;
		}
		free(logged);

		if (e->imr == 3)
		{
			uint8_t		buf[96];

			memcpy(buf, log->rtmr3, 48);
			memcpy(buf + 48, e->digest, 48);
			if (!sha384(buf, 96, log->rtmr3))
				return entry_fail(log, err, i, e->name, "SHA-384 failed");
			log->n_rtmr3++;
			log->rules_used |= 1 << e->rule;
		}
	}
	return true;
}

const EventLogEntry *
eventlog_find(const EventLog *log, const char *name, bool *dup)
{
	const EventLogEntry *found = NULL;

	*dup = false;
	for (size_t i = 0; i < log->n; i++)
	{
		const EventLogEntry *e = &log->e[i];

		/* only runtime events: their payload is what the digest covers */
		if (e->imr != 3 || e->event_type != DSTACK_RUNTIME_EVENT_TYPE)
			continue;
		if (strcmp(e->name, "system-ready") == 0)
			break;
		if (strcmp(e->name, name) == 0)
		{
			if (found)
			{
				*dup = true;
				return found;
			}
			found = e;
		}
	}
	return found;
}
