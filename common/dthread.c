/*
 * dthread.c: worker threads that take no signal (dthread.h).
 */
#include <signal.h>

#include "dthread.h"

int
dc_thread_start(pthread_t *thread, void *(*fn) (void *), void *arg)
{
	sigset_t	all,
				old;
	int			rc;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(thread, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}
