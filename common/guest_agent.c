/*
 * guest_agent.c: GetKey, GetQuote and Info against the dstack guest agent
 * (see guest_agent.h for the API as dstack defines it and where it was
 * verified).  Private key material passes through this file: the HTTP body
 * and the parsed JSON string that held it are scrubbed before they are freed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "guest_agent.h"
#include "hex.h"
#include "http.h"
#include "sigchain.h"
#include "tdx_quote.h"

#define GA_WHAT "dstack guest agent"

/* Copy a path into a fixed buffer, refusing silent truncation. */
static bool
ga_copy(char *dst, size_t dstlen, const char *src, DErr *err)
{
	if (strlen(src) >= dstlen)
	{
		derr_set(err, DERR_ARG, "guest agent endpoint is too long");
		derr_detail(err, "The endpoint \"%.64s...\" exceeds %zu characters.", src, dstlen - 1);
		return false;
	}
	strcpy(dst, src);
	return true;
}

/* Whether something exists at path (socket or not: http.c says which). */
static bool
ga_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* The socket paths the dstack SDKs probe, in their order (sdk/js/src/index.ts). */
static const char *const ga_socket_paths[] = {
	GA_DEFAULT_SOCKET,
	"/run/dstack.sock",
	"/var/run/dstack/dstack.sock",
	"/run/dstack/dstack.sock",
};

/* Copy an http(s) endpoint without trailing slashes, so "<url>/GetKey" is one path. */
static bool
ga_copy_url(GaEndpoint *ep, const char *url, DErr *err)
{
	size_t		n;

	if (!ga_copy(ep->url, sizeof(ep->url), url, err))
		return false;
	n = strlen(ep->url);
	while (n > 0 && ep->url[n - 1] == '/')
		ep->url[--n] = '\0';
	return true;
}

/*
 * The SDKs' order: an explicit endpoint, then the simulator override, then
 * the standard socket; the legacy tappd socket is our addition for CVMs on
 * dstack releases that predate dstack.sock.
 */
bool
ga_resolve_endpoint(const char *socket, GaEndpoint *ep, DErr *err)
{
	const char *env;

	memset(ep, 0, sizeof(*ep));
	if (socket != NULL && socket[0] != '\0')
	{
		const char *base = strrchr(socket, '/');

		if (strncmp(socket, "http://", 7) == 0 || strncmp(socket, "https://", 8) == 0)
			return ga_copy_url(ep, socket, err);
		/* an explicit tappd socket is the legacy one, whatever directory it is in */
		ep->legacy = strcmp(base ? base + 1 : socket, GA_LEGACY_SOCKET_NAME) == 0;
		return ga_copy(ep->socket, sizeof(ep->socket), socket, err);
	}
	env = getenv(GA_ENV_ENDPOINT);
	if (env != NULL && env[0] != '\0')
	{
		if (strncmp(env, "http://", 7) == 0 || strncmp(env, "https://", 8) == 0)
			return ga_copy_url(ep, env, err);
		if (env[0] == '/')
			return ga_copy(ep->socket, sizeof(ep->socket), env, err);
		derr_set(err, DERR_ARG, "invalid %s", GA_ENV_ENDPOINT);
		derr_detail(err, "It must be an absolute socket path or an http:// URL; got \"%.64s\".", env);
		return false;
	}
	for (size_t i = 0; i < sizeof(ga_socket_paths) / sizeof(ga_socket_paths[0]); i++)
		if (ga_exists(ga_socket_paths[i]))
			return ga_copy(ep->socket, sizeof(ep->socket), ga_socket_paths[i], err);
	if (ga_exists(GA_LEGACY_SOCKET))
	{
		ep->legacy = true;
		return ga_copy(ep->socket, sizeof(ep->socket), GA_LEGACY_SOCKET, err);
	}
	return ga_copy(ep->socket, sizeof(ep->socket), GA_DEFAULT_SOCKET, err);
}

static HttpOptions ga_opts;
static bool ga_opts_set;

void
ga_set_http_options(const HttpOptions *opt)
{
	ga_opts_set = opt != NULL;
	if (opt != NULL)
		ga_opts = *opt;
}

/* Options for a local agent: quick connect, patient answer, no 5xx retry. */
static void
ga_http_options(HttpOptions *opt)
{
	if (ga_opts_set)
		*opt = ga_opts;
	else
	{
		http_options_default(opt);
		opt->connect_timeout_ms = 2000;
		opt->timeout_ms = 30000;	/* a TDX quote can take seconds */
		opt->retries = 2;
	}
	/* the agent's failures are answers (400), not glitches; a 5xx is no better */
	opt->retry_5xx = false;
}

/* Name of the endpoint for messages. */
static const char *
ga_name(const GaEndpoint *ep)
{
	return ep->socket[0] ? ep->socket : ep->url;
}

/*
 * One call: send body (may be NULL) to method, and return the answer as a
 * JSON object.  Agent errors ({"error": ...} or a non-200 status) become
 * DERR_REMOTE with the agent's text.  The raw body stays available in *hr for
 * callers that keep it (Info); callers free it with http_response_free().
 */
static bool
ga_call(const GaEndpoint *ep, const char *http_method, const char *method, const char *body,
		HttpResponse *hr, json_t **out, DErr *err)
{
	char		url[512];
	HttpOptions opt;
	json_error_t jerr;
	json_t	   *j;
	json_t	   *jerror;

	*out = NULL;
	ga_http_options(&opt);
	if (ep->socket[0])
		snprintf(url, sizeof(url), "http://localhost%s", method);
	else
		snprintf(url, sizeof(url), "%s%s", ep->url, method);
	if (!http_request(http_method, url, ep->socket[0] ? ep->socket : NULL, body, &opt, GA_WHAT, hr, err))
	{
		if (err != NULL && ep->socket[0] && !ga_exists(ep->socket))
			derr_detail(err, "No socket exists at %s. Outside a dstack CVM, run the simulator and set %s "
						"to its socket.", ep->socket, GA_ENV_ENDPOINT);
		return false;
	}
	j = json_loadb(hr->body, hr->len, 0, &jerr);
	jerror = json_is_object(j) ? json_object_get(j, "error") : NULL;
	if (jerror != NULL && !json_is_null(jerror))
	{
		/* Rocket's catchers answer {"error": {"code", "reason", "description"}} */
		json_t	   *jdesc = json_object_get(jerror, "description");
		const char *text = json_is_string(jerror) ? json_string_value(jerror)
			: json_is_string(jdesc) ? json_string_value(jdesc) : "(malformed error)";

		derr_set(err, DERR_REMOTE, "guest agent refused %s: %s", method + 1, text);
		derr_detail(err, "The agent at %s answered http %ld: %s", ga_name(ep), hr->status, text);
		json_decref(j);
		return false;
	}
	if (hr->status != 200)
	{
		derr_set(err, DERR_REMOTE, "guest agent answered http %ld to %s", hr->status, method + 1);
		derr_detail(err, "The agent at %s sent no error text; the method may not exist in this dstack release.",
					ga_name(ep));
		json_decref(j);
		return false;
	}
	if (!json_is_object(j))
	{
		derr_set(err, DERR_FORMAT, "guest agent sent a malformed answer to %s", method + 1);
		derr_detail(err, "The answer from %s is not a JSON object%s%s.", ga_name(ep),
					j == NULL ? ": " : "", j == NULL ? jerr.text : "");
		json_decref(j);
		return false;
	}
	*out = j;
	return true;
}

/* A required string member. */
static const char *
ga_string(json_t *obj, const char *name, const char *method, DErr *err)
{
	json_t	   *v = json_object_get(obj, name);

	if (!json_is_string(v))
	{
		derr_set(err, DERR_FORMAT, "guest agent answer to %s lacks \"%s\"", method, name);
		return NULL;
	}
	return json_string_value(v);
}

/* Parsed JSON holding a key: zero the string in place before jansson frees it. */
static void
ga_scrub_json_string(json_t *v)
{
	if (json_is_string(v))
		explicit_bzero((char *) json_string_value(v), json_string_length(v));
}

/*
 * GetKey (legacy: Tappd.DeriveK256Key, same derivation and chain, fields
 * prefixed k256_).  The key is validated as a secp256k1 scalar and its
 * public key derived here, so callers never handle an unchecked key.
 */
bool
ga_get_key(const char *socket, const char *path, const char *purpose, GaKey *key, DErr *err)
{
	GaEndpoint	ep;
	HttpResponse hr = {0};
	json_t	   *req;
	json_t	   *j = NULL;
	json_t	   *jkey;
	json_t	   *jchain;
	char	   *body = NULL;
	const char *f_key;
	const char *f_chain;
	bool		ok = false;

	memset(key, 0, sizeof(*key));
	if (path == NULL || purpose == NULL)
		return derr_set(err, DERR_ARG, "key path and purpose are required");
	if (!ga_resolve_endpoint(socket, &ep, err))
		return false;
	f_key = ep.legacy ? "k256_key" : "key";
	f_chain = ep.legacy ? "k256_signature_chain" : "signature_chain";
	if (ep.legacy)
		req = json_pack("{s:s, s:s}", "path", path, "purpose", purpose);
	else
		req = json_pack("{s:s, s:s, s:s}", "path", path, "purpose", purpose, "algorithm", "secp256k1");
	if (req != NULL)
		body = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (body == NULL)
		return derr_set(err, DERR_NOMEM, "out of memory building GetKey");

	if (!ga_call(&ep, "POST", ep.legacy ? "/prpc/Tappd.DeriveK256Key" : "/GetKey", body, &hr, &j, err))
		goto done;
	jkey = json_object_get(j, f_key);
	jchain = json_object_get(j, f_chain);
	if (!json_is_string(jkey) ||
		!dhex_decode_exact(json_string_value(jkey), key->key, DC_SECKEY_LEN, "derived key", err))
	{
		derr_set(err, DERR_FORMAT, "guest agent sent no valid key in GetKey");
		derr_detail(err, "\"%s\" must be the hex of a 32-byte secp256k1 private key.", f_key);
		goto done;
	}
	if (!json_is_array(jchain) || json_array_size(jchain) != 2)
	{
		derr_set(err, DERR_FORMAT, "guest agent sent no valid signature chain in GetKey");
		derr_detail(err, "\"%s\" must hold exactly two signatures (app key, KMS root); it holds %zu.",
					f_chain, json_is_array(jchain) ? json_array_size(jchain) : (size_t) 0);
		goto done;
	}
	for (size_t i = 0; i < 2; i++)
	{
		json_t	   *s = json_array_get(jchain, i);

		if (!json_is_string(s) ||
			!dhex_decode_exact(json_string_value(s), key->chain[i], DC_SIG_LEN, "signature chain entry", err))
		{
			derr_set(err, DERR_FORMAT, "guest agent sent a malformed signature chain in GetKey");
			derr_detail(err, "Entry %zu is not the hex of a 65-byte recoverable signature.", i);
			goto done;
		}
	}
	if (!dc_seckey_verify(key->key, err) || !dc_pubkey_from_seckey(key->key, key->pub, err))
	{
		derr_set(err, DERR_FORMAT, "guest agent sent an invalid secp256k1 key in GetKey");
		goto done;
	}
	ok = true;

done:
	if (j != NULL)
	{
		ga_scrub_json_string(json_object_get(j, f_key));
		json_decref(j);
	}
	http_response_free(&hr);
	free(body);
	if (!ok)
		ga_key_scrub(key);
	return ok;
}

/* The private key must not outlive its use: callers end with this. */
void
ga_key_scrub(GaKey *key)
{
	if (key != NULL)
		explicit_bzero(key, sizeof(*key));
}

/* A key is only trusted when its chain ends at the configured KMS root. */
bool
ga_get_key_verified(const char *socket, const char *path, const char *purpose,
					const uint8_t kms_root[DC_PUBKEY_LEN], const uint8_t app_id[DC_ADDR_LEN],
					GaKey *key, DErr *err)
{
	if (!ga_get_key(socket, path, purpose, key, err))
		return false;
	if (!dstack_sigchain_verify(kms_root, app_id, purpose, key->pub, key->chain[0], key->chain[1],
								NULL, err))
	{
		ga_key_scrub(key);
		return false;
	}
	return true;
}

/* strdup of an optional string member; "" when absent. */
static bool
ga_dup_opt(json_t *obj, const char *name, char **out, DErr *err)
{
	json_t	   *v = json_object_get(obj, name);

	*out = strdup(json_is_string(v) ? json_string_value(v) : "");
	if (*out == NULL)
		return derr_set(err, DERR_NOMEM, "out of memory reading the guest agent's answer");
	return true;
}

/*
 * GetQuote (legacy: Tappd.RawQuote, which wants exactly 64 bytes, so the
 * report data is zero-padded as the agent itself does).
 */
bool
ga_get_quote(const char *socket, const uint8_t *report_data, size_t len, GaQuote *quote, DErr *err)
{
	GaEndpoint	ep;
	HttpResponse hr = {0};
	uint8_t		rd[64] = {0};
	char		rd_hex[129];
	char		body[160];
	json_t	   *j = NULL;
	const char *s;
	bool		ok = false;

	memset(quote, 0, sizeof(*quote));
	if (len > 64 || (len > 0 && report_data == NULL))
	{
		derr_set(err, DERR_ARG, "report data is too long for a quote");
		derr_detail(err, "A TDX quote carries at most 64 bytes of report data; got %zu.", len);
		return false;
	}
	if (!ga_resolve_endpoint(socket, &ep, err))
		return false;
	if (len > 0)
		memcpy(rd, report_data, len);
	dhex_encode(rd, ep.legacy ? 64 : len, rd_hex);
	snprintf(body, sizeof(body), "{\"report_data\":\"%s\"}", rd_hex);
	if (!ga_call(&ep, "POST", ep.legacy ? "/prpc/Tappd.RawQuote" : "/GetQuote", body, &hr, &j, err))
		goto done;
	if ((s = ga_string(j, "quote", "GetQuote", err)) == NULL ||
		!dhex_decode_alloc(s, &quote->quote, &quote->quote_len, "quote", err))
		goto done;
	if (quote->quote_len == 0)
	{
		derr_set(err, DERR_FORMAT, "guest agent sent an empty quote");
		goto done;
	}
	quote->simulated = tdxq_is_simulated(quote->quote, quote->quote_len);
	if (!ga_dup_opt(j, "event_log", &quote->event_log, err) ||
		!ga_dup_opt(j, "vm_config", &quote->vm_config, err))
		goto done;
	memcpy(quote->report_data, rd, sizeof(rd));
	s = json_string_value(json_object_get(j, "report_data"));
	if (s != NULL && s[0] != '\0')
	{
		uint8_t    *echo = NULL;
		size_t		elen = 0;

		if (!dhex_decode_alloc(s, &echo, &elen, "report_data", err))
			goto done;
		/* The agent pads to 64 bytes; what it echoes must start with what we sent. */
		if (elen > 64 || elen < len || memcmp(echo, rd, len) != 0)
		{
			free(echo);
			derr_set(err, DERR_INTEGRITY, "guest agent quoted other report data");
			derr_detail(err, "The report_data echoed in the answer does not match the request.");
			goto done;
		}
		memset(quote->report_data, 0, sizeof(quote->report_data));
		memcpy(quote->report_data, echo, elen);
		free(echo);
	}
	ok = true;

done:
	json_decref(j);
	http_response_free(&hr);
	if (!ok)
		ga_quote_free(quote);
	return ok;
}

/* Free the quote buffers and zero the struct; NULL-safe. */
void
ga_quote_free(GaQuote *quote)
{
	if (quote == NULL)
		return;
	free(quote->quote);
	free(quote->event_log);
	free(quote->vm_config);
	memset(quote, 0, sizeof(*quote));
}

/* Optional hex member of at most maxlen bytes; absent or "" gives length 0. */
static bool
ga_hex_opt(json_t *obj, const char *name, uint8_t *out, size_t maxlen, size_t *outlen, DErr *err)
{
	const char *s = json_string_value(json_object_get(obj, name));
	uint8_t    *buf = NULL;
	size_t		n = 0;

	*outlen = 0;
	if (s == NULL || s[0] == '\0')
		return true;
	if (!dhex_decode_alloc(s, &buf, &n, name, err))
		return false;
	if (n > maxlen)
	{
		free(buf);
		derr_set(err, DERR_FORMAT, "guest agent sent a too long %s", name);
		derr_detail(err, "Expected at most %zu bytes, got %zu.", maxlen, n);
		return false;
	}
	memcpy(out, buf, n);
	*outlen = n;
	free(buf);
	return true;
}

/*
 * tcb_info's app_compose, kept byte for byte (jansson decodes the JSON
 * string escapes; the result is exactly the text the agent encoded).  tcb_info
 * is JSON text in a string (dstack) or, from some simulators, the object
 * itself; an empty or absent one (hidden by the agent) leaves app_compose NULL.
 */
static bool
ga_tcb_app_compose(json_t *tcb, const char *agent, GaInfo *info, DErr *err)
{
	json_t	   *obj = NULL;
	json_t	   *ac;
	json_error_t jerr;
	bool		ok = false;

	if (tcb == NULL || json_is_null(tcb) || (json_is_string(tcb) && json_string_length(tcb) == 0))
		return true;
	if (json_is_object(tcb))
		obj = json_incref(tcb);
	else if (json_is_string(tcb))
		obj = json_loadb(json_string_value(tcb), json_string_length(tcb), 0, &jerr);
	if (!json_is_object(obj))
	{
		derr_set(err, DERR_FORMAT, "guest agent sent a malformed tcb_info in Info");
		derr_detail(err, "The agent at %s sent a tcb_info that is not a JSON object (as text or itself)%s%s.",
					agent, obj == NULL && json_is_string(tcb) ? ": " : "",
					obj == NULL && json_is_string(tcb) ? jerr.text : "");
		goto done;
	}
	ac = json_object_get(obj, "app_compose");
	if (ac == NULL || json_is_null(ac))
	{
		ok = true;
		goto done;
	}
	if (!json_is_string(ac))
	{
		derr_set(err, DERR_FORMAT, "guest agent sent a malformed app_compose in Info");
		derr_detail(err, "tcb_info.app_compose from the agent at %s is not a string (the compose file's text).",
					agent);
		goto done;
	}
	info->app_compose_len = json_string_length(ac);
	info->app_compose = malloc(info->app_compose_len + 1);
	if (info->app_compose == NULL)
	{
		derr_set(err, DERR_NOMEM, "out of memory reading the guest agent's answer");
		goto done;
	}
	memcpy(info->app_compose, json_string_value(ac), info->app_compose_len);
	info->app_compose[info->app_compose_len] = '\0';
	ok = true;

done:
	json_decref(obj);
	return ok;
}

/*
 * Info is what the CVM believes about itself: the app id and compose-hash
 * used in the wrap-key HKDF must come from here, never from a user.
 */
bool
ga_info(const char *socket, GaInfo *info, DErr *err)
{
	GaEndpoint	ep;
	HttpResponse hr = {0};
	json_t	   *j = NULL;
	const char *s;
	const char *method;
	bool		ok = false;

	memset(info, 0, sizeof(*info));
	if (!ga_resolve_endpoint(socket, &ep, err))
		return false;
	method = ep.legacy ? "/prpc/Tappd.Info" : "/Info";
	if (!ga_call(&ep, "POST", method, "{}", &hr, &j, err))
	{
		/* a server that only knows GET /Info answers POST with 404/405 */
		if (hr.status != 404 && hr.status != 405)
			goto done;
		http_response_free(&hr);
		derr_clear(err);
		if (!ga_call(&ep, "GET", method, NULL, &hr, &j, err))
			goto done;
	}
	if ((s = ga_string(j, "app_id", "Info", err)) == NULL ||
		!dhex_decode_exact(s, info->app_id, DC_ADDR_LEN, "app_id", err) ||
		(s = ga_string(j, "compose_hash", "Info", err)) == NULL ||
		!dhex_decode_exact(s, info->compose_hash, 32, "compose_hash", err))
	{
		if (err != NULL && err->code == DERR_ARG)
			err->code = DERR_FORMAT;
		goto done;
	}
	if (!ga_hex_opt(j, "instance_id", info->instance_id, sizeof(info->instance_id), &info->instance_id_len, err) ||
		!ga_hex_opt(j, "device_id", info->device_id, sizeof(info->device_id), &info->device_id_len, err) ||
		!ga_hex_opt(j, "mr_aggregated", info->mr_aggregated, sizeof(info->mr_aggregated),
					&info->mr_aggregated_len, err) ||
		!ga_hex_opt(j, "os_image_hash", info->os_image_hash, sizeof(info->os_image_hash),
					&info->os_image_hash_len, err))
	{
		if (err != NULL && err->code == DERR_ARG)
			err->code = DERR_FORMAT;
		goto done;
	}
	if (!ga_dup_opt(j, "key_provider_info", &info->key_provider_info, err))
		goto done;
	/* tcb_info is JSON text inside a string; some simulators send the object itself */
	if (json_is_object(json_object_get(j, "tcb_info")))
		info->tcb_info = json_dumps(json_object_get(j, "tcb_info"), JSON_COMPACT);
	else if (!ga_dup_opt(j, "tcb_info", &info->tcb_info, err))
		goto done;
	info->raw_json = strndup(hr.body, hr.len);
	if (info->tcb_info == NULL || info->raw_json == NULL)
	{
		derr_set(err, DERR_NOMEM, "out of memory reading the guest agent's answer");
		goto done;
	}
	if (!ga_tcb_app_compose(json_object_get(j, "tcb_info"), ga_name(&ep), info, err))
		goto done;
	ok = true;

done:
	json_decref(j);
	http_response_free(&hr);
	if (!ok)
		ga_info_free(info);
	return ok;
}

/* Free the strings and zero the struct; NULL-safe. */
void
ga_info_free(GaInfo *info)
{
	if (info == NULL)
		return;
	free(info->key_provider_info);
	free(info->tcb_info);
	free(info->app_compose);
	free(info->raw_json);
	memset(info, 0, sizeof(*info));
}

/*
 * The compose text is only worth reading if it is the measured one: dstack
 * measures sha256 of the file's bytes as the compose-hash, so the text must
 * hash to exactly what Info reports.
 */
bool
ga_app_compose_measured(const GaInfo *info, DErr *err)
{
	uint8_t		h[DC_SHA256_LEN];
	char		got[2 * DC_SHA256_LEN + 1];
	char		want[2 * DC_SHA256_LEN + 1];

	if (info->app_compose == NULL)
	{
		derr_set(err, DERR_FORMAT, "the guest agent's Info carries no app-compose");
		derr_detail(err, "Info has no tcb_info.app_compose, the text of the app-compose.json this CVM booted "
					"from; dstack's guest agent sends it on its socket.");
		return false;
	}
	dc_sha256(info->app_compose, info->app_compose_len, h);
	if (!dc_equal(h, info->compose_hash, DC_SHA256_LEN))
	{
		dhex_encode(h, DC_SHA256_LEN, got);
		dhex_encode(info->compose_hash, DC_SHA256_LEN, want);
		derr_set(err, DERR_INTEGRITY, "the guest agent's app-compose is not the measured one");
		derr_detail(err, "The app-compose text in Info (%zu bytes) has sha256 0x%s, but the compose-hash "
					"measured at boot is 0x%s.", info->app_compose_len, got, want);
		return false;
	}
	return true;
}

/* A 48-byte register of tcb_info, as hex. */
static bool
ga_tcb_mr(json_t *tcb, const char *name, uint8_t out[TDXQ_MR_LEN], DErr *err)
{
	json_t	   *v = json_object_get(tcb, name);

	if (!json_is_string(v) || !dhex_decode_exact(json_string_value(v), out, TDXQ_MR_LEN, name, err))
	{
		derr_set(err, DERR_FORMAT, "the guest agent's tcb_info has no valid %s", name);
		derr_detail(err, "tcb_info.%s must be the hex of a 48-byte TDX register.", name);
		return false;
	}
	return true;
}

/* The log's event `name` must carry exactly `want` (when the log has it). */
static bool
ga_event_is(json_t *log, const char *name, const uint8_t *want, size_t want_len, bool required, DErr *err)
{
	uint8_t    *p = NULL;
	size_t		n = 0;
	bool		found;
	char		got[2 * 64 + 1];
	char		exp[2 * 64 + 1];

	if (!tdxq_event_payload(log, name, &p, &n, &found, err))
		return false;
	if (!found && !required)
		return true;
	if (found && n == want_len && (n == 0 || memcmp(p, want, n) == 0))
	{
		free(p);
		return true;
	}
	dhex_encode(p, n < 64 ? n : 64, got);
	dhex_encode(want, want_len < 64 ? want_len : 64, exp);
	free(p);
	derr_set(err, DERR_INTEGRITY, "the guest agent's event log does not measure its %s", name);
	if (found)
		derr_detail(err, "The RTMR3 event \"%s\" carries %s; Info reports %s.", name, got, exp);
	else
		derr_detail(err, "RTMR3 has no \"%s\" event; Info reports %s.", name, exp);
	return false;
}

bool
ga_boot_info(const GaInfo *info, AbiAppBootInfo *boot, DErr *err)
{
	json_t	   *tcb = NULL;
	json_t	   *log;
	json_error_t jerr;
	uint8_t		mrtd[TDXQ_MR_LEN],
				rtmr[4][TDXQ_MR_LEN],
				replayed[TDXQ_MR_LEN],
				cfg[TDXQ_MR_LEN],
				zero[TDXQ_MR_LEN] = {0};
	uint8_t    *kpi = NULL;
	size_t		kpi_len = 0;
	bool		has_kpi;
	bool		ok = false;
	bool		cfg_found = false;

	memset(boot, 0, sizeof(*boot));
	if (info->tcb_info != NULL && info->tcb_info[0] != '\0')
		tcb = json_loads(info->tcb_info, 0, &jerr);
	if (!json_is_object(tcb))
	{
		derr_set(err, DERR_FORMAT, "the guest agent's Info carries no tcb_info");
		derr_detail(err, "Info.tcb_info (registers and RTMR3 event log) is what the KMS's view of this boot is "
					"recomputed from; dstack's guest agent sends it on its socket.");
		goto done;
	}
	log = json_object_get(tcb, "event_log");
	if (!ga_tcb_mr(tcb, "mrtd", mrtd, err) || !ga_tcb_mr(tcb, "rtmr0", rtmr[0], err) ||
		!ga_tcb_mr(tcb, "rtmr1", rtmr[1], err) || !ga_tcb_mr(tcb, "rtmr2", rtmr[2], err) ||
		!ga_tcb_mr(tcb, "rtmr3", rtmr[3], err) || !tdxq_replay_rtmr3(log, NULL, replayed, err))
		goto done;
	if (memcmp(replayed, rtmr[3], TDXQ_MR_LEN) != 0)
	{
		derr_set(err, DERR_INTEGRITY, "the guest agent's RTMR3 is not the replay of its event log");
		derr_detail(err, "tcb_info.rtmr3 differs from the replay of tcb_info.event_log's runtime events.");
		goto done;
	}
	if (!ga_event_is(log, "app-id", info->app_id, DC_ADDR_LEN, true, err) ||
		!ga_event_is(log, "compose-hash", info->compose_hash, 32, true, err) ||
		!ga_event_is(log, "instance-id", info->instance_id, info->instance_id_len, info->instance_id_len > 0, err) ||
		!tdxq_event_payload(log, "key-provider", &kpi, &kpi_len, &has_kpi, err))
		goto done;
	if (has_kpi && info->key_provider_info != NULL && info->key_provider_info[0] != '\0' &&
		(strlen(info->key_provider_info) != kpi_len || memcmp(info->key_provider_info, kpi, kpi_len) != 0))
	{
		derr_set(err, DERR_INTEGRITY, "the guest agent's event log does not measure its key_provider_info");
		derr_detail(err, "Info.key_provider_info is not the payload of the RTMR3 \"key-provider\" event.");
		goto done;
	}

	/* MRCONFIGID: the one of dstack's forms that gives Info's mr_aggregated */
	if (info->mr_aggregated_len == 32)
	{
		uint8_t		cand[3][TDXQ_MR_LEN];
		uint8_t    *kp_id = NULL;
		size_t		kp_id_len = 0;
		json_t	   *kj = has_kpi ? json_loadb((const char *) kpi, kpi_len, 0, &jerr) : NULL;
		json_t	   *jid = json_object_get(kj, "id");

		memset(cand[0], 0, TDXQ_MR_LEN);
		tdxq_mr_config_id_v1(info->compose_hash, cand[1]);
		if (json_is_string(jid))
		{
			DErr		ignore;

			derr_clear(&ignore);
			if (!dhex_decode_alloc(json_string_value(jid), &kp_id, &kp_id_len, "key provider id", &ignore))
				kp_id_len = 0;
		}
		tdxq_mr_config_id_v2(info->compose_hash, info->app_id, kp_id, kp_id_len, cand[2]);
		free(kp_id);
		json_decref(kj);
		for (int c = 0; c < 3 && !cfg_found; c++)
		{
			uint8_t		sys[32],
						agg[32];

			tdxq_measurements(mrtd, (const uint8_t (*)[TDXQ_MR_LEN]) rtmr, cand[c], zero, zero, kpi, kpi_len,
							  sys, agg);
			if (memcmp(agg, info->mr_aggregated, 32) == 0)
			{
				memcpy(cfg, cand[c], TDXQ_MR_LEN);
				cfg_found = true;
			}
		}
	}
	if (!cfg_found)
	{
		derr_set(err, DERR_INTEGRITY, "the guest agent's mr_aggregated is not dstack's aggregate of its registers");
		derr_detail(err, "Info.mr_aggregated%s is not sha256 of MRTD, RTMR0-3 and any MRCONFIGID dstack writes "
					"(none, V1 or V2 of this compose-hash, app id and key provider).",
					info->mr_aggregated_len == 32 ? "" : " is absent, or");
		goto done;
	}

	/* the boot as the KMS saw it: RTMR3 up to boot-mr-done, no key provider yet */
	if (!tdxq_replay_rtmr3(log, "boot-mr-done", rtmr[3], err))
		goto done;
	tdxq_measurements(mrtd, (const uint8_t (*)[TDXQ_MR_LEN]) rtmr, cfg, zero, zero, NULL, 0,
					  boot->mr_system, boot->mr_aggregated);
	memcpy(boot->app_id, info->app_id, DC_ADDR_LEN);
	memcpy(boot->compose_hash, info->compose_hash, 32);
	if (info->instance_id_len == DC_ADDR_LEN)
		memcpy(boot->instance_id, info->instance_id, DC_ADDR_LEN);
	if (info->device_id_len == 32)
		memcpy(boot->device_id, info->device_id, 32);
	if (info->os_image_hash_len == 32)
		memcpy(boot->os_image_hash, info->os_image_hash, 32);
	boot->tcb_status = "UpToDate";
	boot->advisory_ids = NULL;
	boot->n_advisory_ids = 0;
	ok = true;

done:
	free(kpi);
	json_decref(tcb);
	if (!ok)
		memset(boot, 0, sizeof(*boot));
	return ok;
}
