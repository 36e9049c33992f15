/*
 * http_mock.c: http.h for the fuzz targets -- a scripted remote instead of
 * libcurl (see fuzz.h).  Linked in place of http.c, so rpc.c and
 * guest_agent.c run unchanged on answers the fuzzer writes.
 */
#include <stdlib.h>
#include <string.h>

#include "../http.h"
#include "fuzz.h"

static const uint8_t *script;
static size_t script_len;
static size_t script_pos;
static int	requests;

void
fuzz_http_script(const uint8_t *data, size_t size)
{
	script = data;
	script_len = size;
	script_pos = 0;
	requests = 0;
}

int
fuzz_http_requests(void)
{
	return requests;
}

char *
fuzz_strndup(const uint8_t *data, size_t size)
{
	char	   *s = malloc(size + 1);

	if (s == NULL)
		abort();
	if (size > 0)
		memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

void
http_options_default(HttpOptions *opt)
{
	memset(opt, 0, sizeof(*opt));
	opt->connect_timeout_ms = 2000;
	opt->timeout_ms = 10000;
	opt->retries = 2;
	opt->backoff_ms = 100;
	opt->max_response = 8 * 1024 * 1024;
	opt->retry_5xx = true;
}

/* The scripted transport has no connections to keep. */
HttpConns *
http_conns_new(void)
{
	return NULL;
}

void
http_conns_free(HttpConns *c)
{
	(void) c;
}

bool
http_request(const char *method, const char *url, const char *unix_socket, const char *json_body,
			 const HttpOptions *opt, const char *what, HttpResponse *resp, DErr *err)
{
	const uint8_t *start;
	const uint8_t *nul;
	size_t		n;

	memset(resp, 0, sizeof(*resp));
	requests++;
	if (script_pos > script_len)
		return derr_set(err, DERR_NETWORK, "cannot reach %s %s: script ended", what, url);
	start = script + script_pos;
	nul = script_len > script_pos ? memchr(start, '\0', script_len - script_pos) : NULL;
	n = nul ? (size_t) (nul - start) : script_len - script_pos;
	script_pos += n + 1;		/* past the NUL; past the end when there was none */
	resp->status = 200;
	if (n >= 4 && start[0] == '@' && start[1] >= '1' && start[1] <= '5' &&
		start[2] >= '0' && start[2] <= '9' && start[3] >= '0' && start[3] <= '9')
	{
		resp->status = (start[1] - '0') * 100 + (start[2] - '0') * 10 + (start[3] - '0');
		start += 4;
		n -= 4;
	}
	resp->body = fuzz_strndup(start, n);
	resp->len = n;
	resp->attempts = 1;
	return true;
}

void
http_response_free(HttpResponse *resp)
{
	if (resp == NULL)
		return;
	free(resp->body);
	resp->body = NULL;
	resp->len = 0;
}
