/*
 * derr.h: the error value that every common/ function fills in.
 *
 * common/ never calls ereport(): it is linked into the extensions, the
 * command-line tools and the unit tests alike.  Functions return false (or
 * NULL) and describe the failure in a DErr; the PostgreSQL glue turns a DErr
 * into an ereport() at exactly one boundary (see dstack_seal/seal_errors.c),
 * mapping DErrCode to a SQLSTATE there.
 */
#ifndef DSTACK_DERR_H
#define DSTACK_DERR_H

#include <stdarg.h>

typedef enum DErrCode
{
	DERR_OK = 0,
	DERR_ARG,					/* caller passed a malformed value (hex, key, hash) */
	DERR_NOMEM,					/* allocation failed */
	DERR_IO,					/* read/write/open/fsync/rename failed (errno kept) */
	DERR_FORMAT,				/* file or JSON is not a valid .dseal / manifest */
	DERR_INTEGRITY,				/* tag, hash or signature mismatch: tampering */
	DERR_KEY,					/* key does not fit: wrong recipe, wrong owner */
	DERR_CRYPTO,				/* library failure inside OpenSSL / libsecp256k1 */
	DERR_CHAIN,					/* dstack signature chain does not verify */
	DERR_NETWORK,				/* HTTP / JSON-RPC / guest-agent transport failure */
	DERR_REMOTE,				/* the remote side answered with an error */
	DERR_UNSUPPORTED			/* version or type this build does not know */
} DErrCode;

typedef struct DErr
{
	DErrCode	code;
	int			sys_errno;		/* errno for DERR_IO, else 0 */
	char		msg[256];		/* lower-case, one line: what failed */
	char		detail[512];	/* full sentences: why, with values; may be "" */
} DErr;

/* Set code and message (printf-style); returns false so callers can "return derr_set(...)". */
extern bool derr_set(DErr *err, DErrCode code, const char *fmt,...)
			__attribute__((format(printf, 3, 4)));
/* Add or replace the detail sentence(s). */
extern void derr_detail(DErr *err, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));
/* Reset to DERR_OK. */
extern void derr_clear(DErr *err);
/* Stable lower-case name of a code, for logs and tools. */
extern const char *derr_code_name(DErrCode code);

#endif							/* DSTACK_DERR_H */
