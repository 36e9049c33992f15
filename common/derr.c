/*
 * derr.c: filling in DErr values (see derr.h for why common/ never ereports).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "derr.h"

/* Record the failure; the first error wins unless the caller clears it. */
bool
derr_set(DErr *err, DErrCode code, const char *fmt,...)
{
	va_list		ap;

	if (err == NULL)
		return false;
	err->code = code;
	err->sys_errno = (code == DERR_IO) ? errno : 0;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	err->detail[0] = '\0';
	return false;
}

/* Detail is separate so a low-level failure can be explained by its caller. */
void
derr_detail(DErr *err, const char *fmt,...)
{
	va_list		ap;

	if (err == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
	va_end(ap);
}

/* Reset before reuse so stale messages never leak into a later report. */
void
derr_clear(DErr *err)
{
	if (err == NULL)
		return;
	memset(err, 0, sizeof(*err));
}

/* Names used by the command-line tools and in test output. */
const char *
derr_code_name(DErrCode code)
{
	switch (code)
	{
		case DERR_OK: return "ok";
		case DERR_ARG: return "invalid argument";
		case DERR_NOMEM: return "out of memory";
		case DERR_IO: return "i/o error";
		case DERR_FORMAT: return "format error";
		case DERR_INTEGRITY: return "integrity failure";
		case DERR_KEY: return "key mismatch";
		case DERR_CRYPTO: return "crypto library failure";
		case DERR_CHAIN: return "signature chain failure";
		case DERR_NETWORK: return "network failure";
		case DERR_REMOTE: return "remote error";
		case DERR_UNSUPPORTED: return "unsupported";
	}
	return "unknown";
}
