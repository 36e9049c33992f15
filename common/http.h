/*
 * http.h: the one HTTP client that the JSON-RPC and guest-agent clients share.
 *
 * A thin libcurl wrapper for JSON requests, either to a URL (an Ethereum node)
 * or over a Unix socket (the dstack guest agent).  It bounds everything a
 * backend cares about: connect time, the total time of a call including its
 * retries, and the response size.  Transport failures and 5xx answers are
 * retried with exponential backoff; 4xx answers never are.  Any HTTP answer,
 * whatever its status, is returned to the caller, which knows how to read the
 * remote's error body; only transport failures are errors here (DERR_NETWORK),
 * and their message names the endpoint.
 */
#ifndef DSTACK_HTTP_H
#define DSTACK_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "derr.h"

typedef struct HttpOptions
{
	long		connect_timeout_ms; /* per attempt (default 2000) */
	long		timeout_ms;		/* whole call, all attempts and backoff (default 10000) */
	int			retries;		/* attempts after the first (default 2) */
	long		backoff_ms;		/* first retry delay, doubled each time (default 100) */
	size_t		max_response;	/* largest body accepted, bytes (default 8 MiB) */
	bool		retry_5xx;		/* retry 5xx answers too (default true) */
	/*
	 * Polled about every 100 ms while a request runs and before each retry;
	 * returning true abandons the call (DERR_NETWORK "cancelled").  Lets the
	 * PostgreSQL glue honour a query cancel.  NULL (default): never.
	 */
	bool		(*should_abort) (void *arg);
	void	   *abort_arg;
	/*
	 * NULL (default): a connection per call.  Else calls reuse the open
	 * connections kept there (keep-alive: no TCP or TLS handshake again);
	 * one thread at a time.
	 */
	struct HttpConns *conns;
} HttpOptions;

/* Connections kept between calls (HttpOptions.conns); NULL when libcurl cannot share them. */
typedef struct HttpConns HttpConns;
extern HttpConns *http_conns_new(void);
extern void http_conns_free(HttpConns *c);	/* NULL-safe; closes them */

typedef struct HttpResponse
{
	long		status;			/* HTTP status code */
	char	   *body;			/* NUL-terminated, malloc()ed; "" when empty */
	size_t		len;			/* body length without the NUL */
	int			attempts;		/* how many attempts the call took */
	long		elapsed_ms;		/* wall time of the whole call */
} HttpResponse;

/* Fill in the defaults documented above. */
extern void http_options_default(HttpOptions *opt);

/*
 * One JSON request.  method is "GET" or "POST"; url is the full URL (for a
 * Unix socket, "http://localhost/<path>"); unix_socket is NULL for TCP.
 * json_body may be NULL (no body).  what names the remote in errors, e.g.
 * "json-rpc node" or "dstack guest agent".  opt NULL means the defaults.
 * On success resp holds the answer (any status); free it with
 * http_response_free().  On failure resp has no body (attempts and
 * elapsed_ms still say how long it tried) and err says what failed.
 */
extern bool http_request(const char *method, const char *url, const char *unix_socket,
						 const char *json_body, const HttpOptions *opt, const char *what,
						 HttpResponse *resp, DErr *err);

/* Scrub and free the body (it may have held a key); NULL-safe, idempotent. */
extern void http_response_free(HttpResponse *resp);

#endif							/* DSTACK_HTTP_H */
