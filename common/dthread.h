/*
 * dthread.h: starting the library's worker threads (the seal writer,
 * dseal_pipe.c; the scan's read-ahead, dseal_prefetch.c) inside a host
 * process such as a PostgreSQL backend.
 */
#ifndef DSTACK_DTHREAD_H
#define DSTACK_DTHREAD_H

#include <pthread.h>

/*
 * pthread_create() with every signal blocked in the new thread: the host's
 * handlers (PostgreSQL's cancel, terminate, latches) must only ever run on
 * its own thread.  The new thread inherits the full mask; the caller's mask
 * is restored before returning.  Returns pthread_create()'s result.
 */
extern int	dc_thread_start(pthread_t *thread, void *(*fn) (void *), void *arg);

#endif							/* DSTACK_DTHREAD_H */
