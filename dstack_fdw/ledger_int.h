/*
 * ledger_int.h: between ledger.c (the requests and their SQL) and
 * ledger_pool.c (the kept workers that run them).
 */
#ifndef DSTACK_FDW_LEDGER_INT_H
#define DSTACK_FDW_LEDGER_INT_H

#include "postmaster/bgworker.h"
#include "storage/dsm.h"

/* The BackgroundWorker of a ledger worker whose entry point is fn (ledger.c). */
extern void dfdw_ledger_worker_spec(BackgroundWorker *w, const char *fn, Datum arg);

/* Run the request in segment h (ledger.c); nothing when the segment is gone. */
extern void dfdw_ledger_serve(dsm_handle h);

/*
 * Hand the request in seg to a kept worker of (dbid, roleid) and wait.
 * False: no kept worker could take it (use a one-shot worker).  True: taken;
 * *answered is false when the worker exited before completing it.
 */
extern bool dfdw_ledger_pool_call(dsm_segment *seg, Oid dbid, Oid roleid, bool *answered);

#endif							/* DSTACK_FDW_LEDGER_INT_H */
