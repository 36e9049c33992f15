/*
 * ledger_pool.c: the background workers that write dstack_run()'s ledger
 * (ledger.c), kept running between requests.
 *
 * A ledger write must commit in a transaction of its own, so it runs in a
 * background worker connected as the ledger's owner.  Starting one per write
 * costs a fork and a backend's start-up (catalog caches, relation cache)
 * twice per dstack_run(), about half of a small run's cost.  So, when
 * dstack_fdw is preloaded, a few workers stay: each is bound to one database
 * and role, takes one request at a time from its slot in shared memory, runs
 * it as before (ledger.c: the fixed SQL, one transaction, commit, reply in
 * the request's DSM segment), and exits after dstack_fdw.ledger_worker_idle
 * without work (3 s: within the 5 s DROP DATABASE waits for other sessions
 * to leave; 0: no kept workers).
 *
 * A requester finds its database and role's worker, waits while it is busy,
 * or claims a free slot, leaves the request there and starts a worker for
 * it.  It waits on a condition variable until the slot's completed count
 * passes its ticket; a worker that dies with a request taken (terminated,
 * FATAL) frees its slot on the way out, which the waiter reads as "no
 * answer", exactly as the one-shot worker's exit without a reply.  When the
 * library is not preloaded, or every slot serves other databases, the
 * one-shot worker of ledger.c is used: the pool only saves time, it decides
 * nothing.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/wait_event.h"

#include "dstack_fdw.h"
#include "ledger_int.h"

#define LEDGER_POOL_SIZE	2	/* workers kept; each holds one of max_worker_processes */

typedef enum SlotState
{
	SLOT_FREE = 0,
	SLOT_STARTING,				/* launched with a request waiting for it */
	SLOT_IDLE,
	SLOT_BUSY
} SlotState;

typedef struct LedgerSlot
{
	SlotState	state;
	Oid			dbid;
	Oid			roleid;
	pid_t		pid;			/* the worker, once started */
	int			procno;			/* its PGPROC, for its latch */
	uint64		generation;		/* bumped at each launch */
	int			idle_ms;		/* how long to stay without work (the last requester's setting) */
	uint64		submitted;		/* requests handed to the slot, ever */
	uint64		done;			/* requests it completed, ever */
	dsm_handle	req;			/* the request being served */
} LedgerSlot;

typedef struct LedgerPool
{
	slock_t		mutex;
	ConditionVariable cv;		/* a slot changed: done, idle or free */
	LedgerSlot	slots[LEDGER_POOL_SIZE];
} LedgerPool;

static LedgerPool *pool = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
pool_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(LedgerPool)));
}

static void
pool_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	pool = ShmemInitStruct("dstack_fdw ledger pool", sizeof(LedgerPool), &found);
	if (!found)
	{
		memset(pool, 0, sizeof(LedgerPool));
		SpinLockInit(&pool->mutex);
		ConditionVariableInit(&pool->cv);
	}
	LWLockRelease(AddinShmemInitLock);
}

/* From _PG_init: the pool exists only when the library is preloaded. */
void
dfdw_ledger_pool_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = pool_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = pool_shmem_startup;
}

/* main_arg: the slot and the generation it was claimed at, so a late start cannot take another's slot. */
#define POOL_ARG(idx, gen)	Int64GetDatum((int64) (((gen) << 8) | (uint64) (idx)))

/* Start the slot's worker; false when it could not be registered or exited before it started. */
static bool
launch(int idx, uint64 gen)
{
	BackgroundWorker w;
	BackgroundWorkerHandle *handle;
	BgwHandleStatus status;
	pid_t		pid;

	dfdw_ledger_worker_spec(&w, "dfdw_ledger_pool_main", POOL_ARG(idx, gen));
	if (!RegisterDynamicBackgroundWorker(&w, &handle))
		return false;
	status = WaitForBackgroundWorkerStartup(handle, &pid);
	if (status == BGWH_POSTMASTER_DIED)
		ereport(FATAL,
				(errcode(ERRCODE_ADMIN_SHUTDOWN),
				 errmsg("postmaster exited while dstack_run() waited for its ledger worker")));
	return status == BGWH_STARTED;
}

/*
 * A launch that failed, or was interrupted: the slot is freed and its request
 * withdrawn, unless the worker got as far as taking it (then its own exit or
 * its answer settles it).
 */
static bool
withdraw(LedgerSlot *s, uint64 gen)
{
	bool		withdrawn = false;

	SpinLockAcquire(&pool->mutex);
	if (s->generation == gen && s->state == SLOT_STARTING && s->pid == 0)
	{
		s->state = SLOT_FREE;
		s->done = s->submitted;
		withdrawn = true;
	}
	SpinLockRelease(&pool->mutex);
	ConditionVariableBroadcast(&pool->cv);
	return withdrawn;
}

/* Launch for a claimed slot; false when the request was withdrawn (no worker will take it). */
static bool
start_worker(LedgerSlot *s, int idx, uint64 gen)
{
	volatile bool started = false;

	PG_TRY();
	{
		started = launch(idx, gen);
	}
	PG_CATCH();
	{
		withdraw(s, gen);		/* a cancel while it starts */
		PG_RE_THROW();
	}
	PG_END_TRY();
	return started || !withdraw(s, gen);
}

/*
 * Serve the request in seg through a kept worker and wait for it.  False
 * when the pool cannot take it (not preloaded, no slot, no worker could be
 * started): the caller uses a one-shot worker.  True when the request was
 * taken; *answered says whether the worker completed it (its reply is in the
 * segment) or exited first.
 */
bool
dfdw_ledger_pool_call(dsm_segment *seg, Oid dbid, Oid roleid, bool *answered)
{
	LedgerSlot *s = NULL;
	uint64		ticket = 0;
	uint64		gen = 0;
	int			idx = -1;
	int			latch_of = -1;
	bool		start = false;

	*answered = false;
	if (pool == NULL || dfdw_guc_ledger_idle_ms <= 0)
		return false;

	/* a slot: this database and role's worker when idle, else a free one to start */
	for (;;)
	{
		int			mine = -1,
					freeslot = -1;

		SpinLockAcquire(&pool->mutex);
		for (int i = 0; i < LEDGER_POOL_SIZE; i++)
		{
			LedgerSlot *c = &pool->slots[i];

			if (c->state != SLOT_FREE && c->dbid == dbid && c->roleid == roleid && mine < 0)
				mine = i;
			else if (c->state == SLOT_FREE && freeslot < 0)
				freeslot = i;
		}
		if (mine >= 0 && pool->slots[mine].state == SLOT_IDLE)
		{
			idx = mine;
			s = &pool->slots[idx];
			s->state = SLOT_BUSY;
			latch_of = s->procno;
		}
		else if (mine < 0 && freeslot >= 0)
		{
			idx = freeslot;
			s = &pool->slots[idx];
			s->state = SLOT_STARTING;
			s->dbid = dbid;
			s->roleid = roleid;
			s->pid = 0;
			s->generation++;
			start = true;
		}
		if (s != NULL)
		{
			s->idle_ms = dfdw_guc_ledger_idle_ms;
			s->req = dsm_segment_handle(seg);
			ticket = ++s->submitted;
			gen = s->generation;
		}
		SpinLockRelease(&pool->mutex);
		if (s != NULL)
			break;
		if (mine < 0)
		{
			ConditionVariableCancelSleep();
			return false;		/* every slot serves another database or role */
		}
		/* our worker is busy or starting: wait for it */
		ConditionVariableSleep(&pool->cv, PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();

	if (start && !start_worker(s, idx, gen))
		return false;
	if (latch_of >= 0)
		SetLatch(&ProcGlobal->allProcs[latch_of].procLatch);

	/* wait until it is done, or the worker is gone without doing it */
	for (;;)
	{
		bool		finished,
					gone;

		SpinLockAcquire(&pool->mutex);
		finished = s->done >= ticket;
		gone = !finished && (s->generation != gen || s->state == SLOT_FREE);
		SpinLockRelease(&pool->mutex);
		if (finished || gone)
		{
			*answered = finished;
			break;
		}
		ConditionVariableSleep(&pool->cv, PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();
	return true;
}

/* A worker leaving, normally or not: its slot is free, its taken request unanswered. */
static void
pool_worker_exit(int code, Datum arg)
{
	LedgerSlot *s = &pool->slots[DatumGetInt32(arg)];

	SpinLockAcquire(&pool->mutex);
	if (s->pid == MyProcPid)
	{
		s->state = SLOT_FREE;
		s->pid = 0;
	}
	SpinLockRelease(&pool->mutex);
	ConditionVariableBroadcast(&pool->cv);
}

void
dfdw_ledger_pool_main(Datum arg)
{
	uint64		a = (uint64) DatumGetInt64(arg);
	int			idx = (int) (a & 0xff);
	uint64		gen = a >> 8;
	LedgerSlot *s;
	Oid			dbid,
				roleid;
	bool		mine;
	bool		idle_timeout = false;
	MemoryContext cxt;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	if (pool == NULL || idx >= LEDGER_POOL_SIZE)
		proc_exit(0);
	s = &pool->slots[idx];
	SpinLockAcquire(&pool->mutex);
	mine = s->generation == gen && s->state == SLOT_STARTING && s->pid == 0;
	if (mine)
	{
		s->pid = MyProcPid;
		s->procno = MyProc->pgprocno;
	}
	dbid = s->dbid;
	roleid = s->roleid;
	SpinLockRelease(&pool->mutex);
	if (!mine)
		proc_exit(0);			/* launched for a request that was withdrawn */
	before_shmem_exit(pool_worker_exit, Int32GetDatum(idx));

	BackgroundWorkerInitializeConnectionByOid(dbid, roleid, 0);
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
	pgstat_report_appname("dstack_fdw ledger");
	cxt = AllocSetContextCreate(TopMemoryContext, "dstack_fdw ledger request", ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		dsm_handle	h = DSM_HANDLE_INVALID;
		bool		take;
		int			rc;
		int			idle_ms;

		SpinLockAcquire(&pool->mutex);
		take = s->submitted > s->done;
		if (take)
		{
			h = s->req;
			s->state = SLOT_BUSY;
		}
		else if (idle_timeout)
		{
			s->state = SLOT_FREE;
			s->pid = 0;
		}
		else
			s->state = SLOT_IDLE;
		SpinLockRelease(&pool->mutex);
		if (!take && idle_timeout)
		{
			ConditionVariableBroadcast(&pool->cv);
			proc_exit(0);
		}
		if (take)
		{
			MemoryContext old = MemoryContextSwitchTo(cxt);

			pgstat_report_activity(STATE_RUNNING, "dstack_fdw ledger write");
			dfdw_ledger_serve(h);
			pgstat_report_activity(STATE_IDLE, NULL);
			MemoryContextSwitchTo(old);
			MemoryContextReset(cxt);
			SpinLockAcquire(&pool->mutex);
			s->done = s->submitted;
			s->state = SLOT_IDLE;
			SpinLockRelease(&pool->mutex);
			ConditionVariableBroadcast(&pool->cv);
			idle_timeout = false;
			continue;
		}
		ConditionVariableBroadcast(&pool->cv);	/* idle: a waiter may hand it work */
		SpinLockAcquire(&pool->mutex);
		idle_ms = Max(s->idle_ms, 1);
		SpinLockRelease(&pool->mutex);
		rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, idle_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		idle_timeout = (rc & WL_TIMEOUT) != 0 && (rc & WL_LATCH_SET) == 0;
	}
}
