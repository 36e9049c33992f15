/*
 * http.c: JSON-over-HTTP with libcurl, bounded in time and size (see http.h).
 *
 * Both remote services pg_dstack talks to (an Ethereum JSON-RPC node and the
 * dstack guest agent) are reached through http_request(), so timeouts,
 * retries, size limits and error wording are decided once, here.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <curl/curl.h>

#include "http.h"

/* Body accumulator for the write callback. */
typedef struct HttpBuf
{
	char	   *data;
	size_t		len;
	size_t		cap;
	size_t		max;
	bool		too_big;
	bool		nomem;
} HttpBuf;

static pthread_once_t http_once = PTHREAD_ONCE_INIT;
static CURLcode http_init_rc = CURLE_FAILED_INIT;

/*
 * curl_global_init is not thread-safe and must run once per process; doing it
 * lazily means a backend that never talks to a remote never initialises curl.
 */
static void
http_global_init(void)
{
	http_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* Defaults sized for a backend: fail in seconds, never hang a query. */
void
http_options_default(HttpOptions *opt)
{
	opt->connect_timeout_ms = 2000;
	opt->timeout_ms = 10000;
	opt->retries = 2;
	opt->backoff_ms = 100;
	opt->max_response = 8u << 20;
	opt->retry_5xx = true;
	opt->should_abort = NULL;
	opt->abort_arg = NULL;
	opt->conns = NULL;
}

/* libcurl progress callback: the caller's cancel check, polled during transfers. */
static int
http_progress_cb(void *clientp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	const HttpOptions *opt = clientp;

	return opt->should_abort != NULL && opt->should_abort(opt->abort_arg) ? 1 : 0;
}

/* Monotonic milliseconds: wall-clock jumps must not stretch a deadline. */
static long
http_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleep between retries; EINTR just shortens the backoff. */
static void
http_sleep_ms(long ms)
{
	struct timespec ts;

	if (ms <= 0)
		return;
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	nanosleep(&ts, NULL);
}

/* Drop (and scrub) whatever an earlier attempt received. */
static void
http_buf_reset(HttpBuf *b)
{
	if (b->data != NULL)
	{
		explicit_bzero(b->data, b->cap);
		free(b->data);
	}
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->too_big = false;
	b->nomem = false;
}

/*
 * libcurl write callback.  It grows the buffer by copy-and-scrub rather than
 * realloc() so that no stale copy of a response that held a private key is
 * left behind in freed memory, and it stops the transfer at the size limit.
 */
static size_t
http_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	HttpBuf    *b = userdata;
	size_t		n = size * nmemb;

	if (n > b->max || b->len > b->max - n)
	{
		b->too_big = true;
		return 0;
	}
	if (b->len + n + 1 > b->cap)
	{
		size_t		ncap = b->cap ? b->cap : 4096;
		char	   *nd;

		while (ncap < b->len + n + 1)
			ncap *= 2;
		if (ncap > b->max + 1)
			ncap = b->max + 1;
		nd = malloc(ncap);
		if (nd == NULL)
		{
			b->nomem = true;
			return 0;
		}
		if (b->data != NULL)
		{
			memcpy(nd, b->data, b->len);
			explicit_bzero(b->data, b->cap);
			free(b->data);
		}
		b->data = nd;
		b->cap = ncap;
	}
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

/*
 * Name an endpoint for an error message without leaking secrets: RPC URLs
 * often carry an API key in the path, query or user-info, so only
 * scheme://host[:port] is shown.
 */
static void
http_endpoint_name(const char *url, const char *unix_socket, char *out, size_t outlen)
{
	const char *p;
	const char *host;
	const char *end;
	const char *at;

	if (unix_socket != NULL)
	{
		snprintf(out, outlen, "%s", unix_socket);
		return;
	}
	p = strstr(url, "://");
	if (p == NULL)
	{
		snprintf(out, outlen, "(malformed url)");
		return;
	}
	host = p + 3;
	end = host + strcspn(host, "/?#");
	at = memchr(host, '@', (size_t) (end - host));
	if (at != NULL)
		host = at + 1;
	snprintf(out, outlen, "%.*s://%.*s%s", (int) (p - url), url, (int) (end - host), host,
			 *end != '\0' && strcmp(end, "/") != 0 ? "/..." : "");
}

/* Transport failures worth another attempt: the remote may come back. */
static bool
http_retryable(CURLcode rc)
{
	switch (rc)
	{
		case CURLE_COULDNT_CONNECT:
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_OPERATION_TIMEDOUT:
		case CURLE_GOT_NOTHING:
		case CURLE_SEND_ERROR:
		case CURLE_RECV_ERROR:
		case CURLE_PARTIAL_FILE:
			return true;
		default:
			return false;
	}
}

/* The short reason for a transport failure, as a sentence fragment. */
static void
http_reason(CURLcode rc, long os_errno, long limit_ms, char *out, size_t outlen)
{
	if (rc == CURLE_COULDNT_CONNECT && os_errno != 0)
		snprintf(out, outlen, "%s", strerror((int) os_errno));
	else if (rc == CURLE_OPERATION_TIMEDOUT)
		snprintf(out, outlen, "Timed out (limit %ld ms)", limit_ms);
	else
		snprintf(out, outlen, "%s", curl_easy_strerror(rc));
}

/*
 * A Unix socket that does not exist is a configuration problem, not a
 * transient one: say so at once instead of retrying into the deadline.
 */
static bool
http_check_socket(const char *unix_socket, const char *what, DErr *err)
{
	struct stat st;

	if (stat(unix_socket, &st) != 0)
	{
		int			e = errno;

		derr_set(err, DERR_NETWORK, "cannot reach %s: socket %s does not exist", what, unix_socket);
		derr_detail(err, "stat() failed: %s. The service is not running or the socket path is wrong.",
					strerror(e));
		return false;
	}
	if (!S_ISSOCK(st.st_mode))
	{
		derr_set(err, DERR_NETWORK, "cannot reach %s: %s is not a unix socket", what, unix_socket);
		derr_detail(err, "The path exists but is not a socket; check the configured socket path.");
		return false;
	}
	return true;
}

struct HttpConns
{
	CURLSH	   *sh;
};

HttpConns *
http_conns_new(void)
{
#if LIBCURL_VERSION_NUM >= 0x073900
	HttpConns  *c;

	if (pthread_once(&http_once, http_global_init) != 0 || http_init_rc != CURLE_OK ||
		(c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	if ((c->sh = curl_share_init()) == NULL ||
		curl_share_setopt(c->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) != CURLSHE_OK)
	{
		http_conns_free(c);
		return NULL;
	}
	return c;
#else
	return NULL;				/* libcurl before 7.57 shares no connections */
#endif
}

void
http_conns_free(HttpConns *c)
{
	if (c == NULL)
		return;
	if (c->sh != NULL)
		curl_share_cleanup(c->sh);
	free(c);
}

/* Set every option of one attempt; false only if libcurl refuses one. */
static bool
http_setup(CURL *h, const char *method, const char *url, const char *unix_socket,
		   const char *json_body, const HttpOptions *opt, long attempt_timeout_ms,
		   struct curl_slist *headers, HttpBuf *buf, char *errbuf)
{
	bool		ok = true;

	ok &= curl_easy_setopt(h, CURLOPT_URL, url) == CURLE_OK;
	ok &= curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) == CURLE_OK;
	ok &= curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
						   opt->connect_timeout_ms < attempt_timeout_ms ?
						   opt->connect_timeout_ms : attempt_timeout_ms) == CURLE_OK;
	ok &= curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, attempt_timeout_ms) == CURLE_OK;
	ok &= curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK;
#if LIBCURL_VERSION_NUM >= 0x075500
	ok &= curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK;
#endif
	ok &= curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) opt->max_response) == CURLE_OK;
	ok &= curl_easy_setopt(h, CURLOPT_USERAGENT, "pg_dstack") == CURLE_OK;
	ok &= curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers) == CURLE_OK;
	ok &= curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, http_write_cb) == CURLE_OK;
	ok &= curl_easy_setopt(h, CURLOPT_WRITEDATA, buf) == CURLE_OK;
	ok &= curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf) == CURLE_OK;
	if (opt->conns != NULL)
		ok &= curl_easy_setopt(h, CURLOPT_SHARE, opt->conns->sh) == CURLE_OK;
	if (opt->should_abort != NULL)
	{
		ok &= curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, http_progress_cb) == CURLE_OK;
		ok &= curl_easy_setopt(h, CURLOPT_XFERINFODATA, opt) == CURLE_OK;
		ok &= curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L) == CURLE_OK;
	}
	if (unix_socket != NULL)
	{
		ok &= curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, unix_socket) == CURLE_OK;
		/* an http_proxy in the server's environment must not capture local agent traffic */
		ok &= curl_easy_setopt(h, CURLOPT_NOPROXY, "*") == CURLE_OK;
	}
	if (strcmp(method, "GET") == 0)
		ok &= curl_easy_setopt(h, CURLOPT_HTTPGET, 1L) == CURLE_OK;
	else
	{
		const char *b = json_body ? json_body : "";

		ok &= curl_easy_setopt(h, CURLOPT_POST, 1L) == CURLE_OK;
		ok &= curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long) strlen(b)) == CURLE_OK;
		ok &= curl_easy_setopt(h, CURLOPT_POSTFIELDS, b) == CURLE_OK;
		if (strcmp(method, "POST") != 0)
			ok &= curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method) == CURLE_OK;
	}
	return ok;
}

/*
 * One transfer.  With a cancel check, through the multi interface so that the
 * check runs every 100 ms whatever the transfer is doing (libcurl calls its
 * progress callback only about once a second on an idle connection).
 */
static CURLcode
http_perform(CURL *h, const HttpOptions *opt)
{
	CURLM	   *m;
	CURLcode	rc = CURLE_OK;
	int			running = 1;
	bool		done = false;

	if (opt->should_abort == NULL || (m = curl_multi_init()) == NULL)
		return curl_easy_perform(h);
	if (curl_multi_add_handle(m, h) != CURLM_OK)
	{
		curl_multi_cleanup(m);
		return curl_easy_perform(h);
	}
	for (;;)
	{
		CURLMsg    *msg;
		int			queued;

		if (curl_multi_perform(m, &running) != CURLM_OK)
		{
			rc = CURLE_FAILED_INIT;
			break;
		}
		while ((msg = curl_multi_info_read(m, &queued)) != NULL)
			if (msg->msg == CURLMSG_DONE && msg->easy_handle == h)
			{
				rc = msg->data.result;
				done = true;
			}
		if (done || running == 0)
			break;
		if (opt->should_abort(opt->abort_arg))
		{
			rc = CURLE_ABORTED_BY_CALLBACK;
			break;
		}
		if (curl_multi_poll(m, NULL, 0, 100, NULL) != CURLM_OK)
		{
			rc = CURLE_FAILED_INIT;
			break;
		}
	}
	curl_multi_remove_handle(m, h);
	curl_multi_cleanup(m);
	return rc;
}

/*
 * The attempt loop.  Every attempt gets what is left of the call's deadline,
 * so the caller's timeout bounds the whole call, backoff included.
 */
bool
http_request(const char *method, const char *url, const char *unix_socket,
			 const char *json_body, const HttpOptions *opt_in, const char *what,
			 HttpResponse *resp, DErr *err)
{
	HttpOptions opt;
	HttpBuf		buf = {0};
	char		errbuf[CURL_ERROR_SIZE];
	char		name[160];
	struct curl_slist *headers = NULL;
	struct curl_slist *h2;
	CURL	   *h = NULL;
	CURLcode	rc = CURLE_OK;
	long		os_errno = 0;
	long		start;
	long		deadline;
	long		backoff;
	int			attempt = 0;
	bool		ok = false;

	memset(resp, 0, sizeof(*resp));
	if (opt_in != NULL)
		opt = *opt_in;
	else
		http_options_default(&opt);
	if (opt.timeout_ms <= 0 || opt.connect_timeout_ms <= 0 || opt.retries < 0 || opt.max_response == 0)
		return derr_set(err, DERR_ARG, "invalid http options for %s", what);
	buf.max = opt.max_response;
	http_endpoint_name(url, unix_socket, name, sizeof(name));

	if (pthread_once(&http_once, http_global_init) != 0 || http_init_rc != CURLE_OK)
	{
		derr_set(err, DERR_NETWORK, "cannot initialise libcurl");
		derr_detail(err, "curl_global_init() failed: %s.", curl_easy_strerror(http_init_rc));
		return false;
	}
	if (unix_socket != NULL && !http_check_socket(unix_socket, what, err))
		return false;

	h = curl_easy_init();
	headers = curl_slist_append(NULL, "Content-Type: application/json");
	if (headers != NULL && (h2 = curl_slist_append(headers, "Accept: application/json")) != NULL)
		headers = h2;
	else
	{
		curl_slist_free_all(headers);
		headers = NULL;
	}
	if (headers != NULL && (h2 = curl_slist_append(headers, "Expect:")) != NULL)
		headers = h2;
	else
	{
		curl_slist_free_all(headers);
		headers = NULL;
	}
	if (h == NULL || headers == NULL)
	{
		derr_set(err, DERR_NOMEM, "out of memory preparing a request to %s %s", what, name);
		goto done;
	}

	start = http_now_ms();
	deadline = start + opt.timeout_ms;
	backoff = opt.backoff_ms;
	for (;;)
	{
		long		left = deadline - http_now_ms();
		long		status = 0;
		bool		again;

		attempt++;
		http_buf_reset(&buf);
		errbuf[0] = '\0';
		if (left < 1)
			left = 1;
		if (!http_setup(h, method, url, unix_socket, json_body, &opt, left, headers, &buf, errbuf))
		{
			derr_set(err, DERR_NETWORK, "cannot configure a request to %s %s", what, name);
			derr_detail(err, "libcurl rejected an option; this libcurl build lacks a needed feature.");
			goto done;
		}
		rc = http_perform(h, &opt);
		resp->attempts = attempt;
		resp->elapsed_ms = http_now_ms() - start;
		os_errno = 0;
		curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os_errno);
		if (rc == CURLE_OK)
			curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);

		if (buf.nomem)
		{
			derr_set(err, DERR_NOMEM, "out of memory reading the answer of %s %s", what, name);
			goto done;
		}
		if (buf.too_big || rc == CURLE_FILESIZE_EXCEEDED)
		{
			derr_set(err, DERR_FORMAT, "answer of %s %s is too large", what, name);
			derr_detail(err, "The response exceeded the limit of %zu bytes.", opt.max_response);
			goto done;
		}

		if (rc == CURLE_OK)
			again = status >= 500 && opt.retry_5xx;
		else
			again = http_retryable(rc);
		if (rc == CURLE_ABORTED_BY_CALLBACK ||
			(again && opt.should_abort != NULL && opt.should_abort(opt.abort_arg)))
		{
			derr_set(err, DERR_NETWORK, "request to %s %s cancelled", what, name);
			derr_detail(err, "The caller abandoned the call after %d attempt%s and %ld ms.", attempt,
						attempt == 1 ? "" : "s", resp->elapsed_ms);
			goto done;
		}
		if (again && attempt <= opt.retries && http_now_ms() + backoff < deadline)
		{
			/* in slices, so that a cancel during the backoff is seen too */
			for (long slept = 0; slept < backoff; slept += 50)
			{
				if (opt.should_abort != NULL && opt.should_abort(opt.abort_arg))
					break;
				http_sleep_ms(backoff - slept < 50 ? backoff - slept : 50);
			}
			backoff *= 2;
			continue;
		}
		break;
	}

	resp->attempts = attempt;
	resp->elapsed_ms = http_now_ms() - start;
	if (rc != CURLE_OK)
	{
		char		reason[128];

		http_reason(rc, os_errno, opt.timeout_ms, reason, sizeof(reason));
		if (rc == CURLE_OPERATION_TIMEDOUT)
			derr_set(err, DERR_NETWORK, "cannot reach %s %s: timed out after %ld ms", what, name,
					 resp->elapsed_ms);
		else
			derr_set(err, DERR_NETWORK, "cannot reach %s %s: %s", what, name, reason);
		derr_detail(err, "%s after %d attempt%s over %ld ms.%s%s%s", reason, attempt,
					attempt == 1 ? "" : "s", resp->elapsed_ms,
					errbuf[0] ? " libcurl said: " : "", errbuf,
					errbuf[0] ? "." : "");
		goto done;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
	if (buf.data == NULL)
	{
		buf.data = calloc(1, 1);
		if (buf.data == NULL)
		{
			derr_set(err, DERR_NOMEM, "out of memory reading the answer of %s %s", what, name);
			goto done;
		}
		buf.cap = 1;
	}
	resp->body = buf.data;
	resp->len = buf.len;
	buf.data = NULL;
	ok = true;

done:
	http_buf_reset(&buf);
	curl_slist_free_all(headers);
	if (h != NULL)
		curl_easy_cleanup(h);
	if (!ok)
	{
		int			a = resp->attempts;
		long		e = resp->elapsed_ms;

		memset(resp, 0, sizeof(*resp));
		resp->attempts = a;
		resp->elapsed_ms = e;
	}
	return ok;
}

/* Responses may carry private keys (GetKey): scrub before freeing. */
void
http_response_free(HttpResponse *resp)
{
	if (resp == NULL)
		return;
	if (resp->body != NULL)
	{
		explicit_bzero(resp->body, resp->len);
		free(resp->body);
	}
	resp->body = NULL;
	resp->len = 0;
}
