/*
 * derr_pg.c: the single boundary where library errors become ereport().
 *
 * common/ functions describe failures in a DErr (see derr.h); every caller in
 * the extensions passes that DErr here together with the hint that fits its
 * context, so error shape and SQLSTATEs are decided in one place.
 */
#include "postgres.h"

#include <errno.h>

#include "pg_common.h"

/* Default mapping of DErr codes to SQLSTATEs. */
int
derr_sqlstate(const DErr *err)
{
	switch (err->code)
	{
		case DERR_OK:
			return ERRCODE_INTERNAL_ERROR;
		case DERR_ARG:
			return ERRCODE_INVALID_PARAMETER_VALUE;
		case DERR_NOMEM:
			return ERRCODE_OUT_OF_MEMORY;
		case DERR_IO:
			switch (err->sys_errno)
			{
				case ENOENT:
					return ERRCODE_UNDEFINED_FILE;
				case EACCES:
				case EPERM:
					return ERRCODE_INSUFFICIENT_PRIVILEGE;
				case EEXIST:
					return ERRCODE_DUPLICATE_FILE;
				case ENOSPC:
					return ERRCODE_DISK_FULL;
				default:
					return ERRCODE_IO_ERROR;
			}
		case DERR_FORMAT:
		case DERR_INTEGRITY:
			return ERRCODE_DATA_CORRUPTED;
		case DERR_KEY:
		case DERR_CHAIN:
			return ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION;
		case DERR_CRYPTO:
			return ERRCODE_EXTERNAL_ROUTINE_EXCEPTION;
		case DERR_NETWORK:
			return ERRCODE_CONNECTION_FAILURE;
		case DERR_REMOTE:
			return ERRCODE_CONNECTION_EXCEPTION;
		case DERR_UNSUPPORTED:
			return ERRCODE_FEATURE_NOT_SUPPORTED;
	}
	return ERRCODE_INTERNAL_ERROR;
}

void
derr_ereport(const DErr *err, int sqlstate, const char *hint)
{
	ereport(ERROR,
			(errcode(sqlstate ? sqlstate : derr_sqlstate(err)),
			 errmsg("%s", err->msg[0] ? err->msg : "unknown failure"),
			 err->detail[0] ? errdetail("%s", err->detail) : 0,
			 hint ? errhint("%s", hint) : 0));
	pg_unreachable();
}
