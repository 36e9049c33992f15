/*
 * dseal_writer_int.h: the writer's state, shared by dseal_writer.c (open,
 * manifest, exclusive publish, free) and dseal_pipe.c (the writer thread:
 * row groups sealed into chunks and written in order).  Internal to common/.
 */
#ifndef DSTACK_DSEAL_WRITER_INT_H
#define DSTACK_DSEAL_WRITER_INT_H

#include <pthread.h>
#include <sys/types.h>

#include <zstd.h>

#include "dseal.h"

/*
 * What one worker needs to seal a chunk: its own zstd and AES-GCM contexts
 * and plaintext scratch.  The writer thread has one, the caller's thread the
 * other (it seals chunks too when it would otherwise wait, see dseal_pipe.c).
 */
typedef struct DsealSealer
{
	DcGcm	   *gcm;
	ZSTD_CCtx  *zctx;			/* NULL: no compression */
	uint8_t    *plain;			/* serialized plaintext */
	size_t		plain_cap;
	uint8_t    *zbuf;			/* compressed plaintext */
	size_t		zbuf_cap;
} DsealSealer;

#define DSEAL_WORKER_THREAD 0
#define DSEAL_WORKER_CALLER 1

struct DsealWriter
{
	DsealManifest m;			/* header fields filled at open, chunks as we go */
	uint8_t		owner_sk[DC_SECKEY_LEN];
	int			zstd_level;
	int			fd;
	char	   *path;
	char	   *tmp_path;
	bool		write_detached;
	bool		finished;
	bool		tmp_gone;		/* the temporary name was consumed or removed */
	dev_t		dev;			/* identity of the file we wrote, so a rollback */
	ino_t		ino;			/* removes only our own final name */
	uint64_t	offset;			/* next write position (atomic: read for progress) */
	uint32_t	rg_cap;
	DsealSealer sealers[2];		/* [DSEAL_WORKER_THREAD], [DSEAL_WORKER_CALLER] */

	/*
	 * The row group in flight.  inflight, ct and fd belong to the thread
	 * while busy is set (a chunk to whichever worker claimed it), to the
	 * caller otherwise; mu guards the fields from busy on.
	 */
	DsealColBuf *inflight;		/* ncols buffers: the row group being sealed */
	uint8_t   **ct;				/* ncols: ciphertext || tag of each chunk */
	size_t	   *ct_cap;
	DsealChunkRef *inflight_refs;	/* its chunk records in the manifest */
	uint32_t	inflight_rg;
	pthread_t	thread;
	bool		thread_running;
	bool		sync_ok;		/* mu and cv are initialised */
	pthread_mutex_t mu;
	pthread_cond_t cv;			/* broadcast on every change below */
	bool		busy;			/* the thread holds a row group */
	bool		stop;			/* free(): abandon the row group and exit */
	bool		failed;			/* a worker failed: terr, sticky */
	DErr		terr;
	int			claim_lo;		/* next chunk the thread claims (from the front) */
	int			claim_hi;		/* chunks from here on were claimed by the caller */
	int			ndone;			/* claimed chunks sealed (or failed) */
	uint64_t	caller_chunks;	/* chunks the caller sealed (tests, profiling) */
};

/* write(2) all of buf at the writer's offset (dseal_pipe.c). */
extern bool dseal_write_all(DsealWriter *w, const void *buf, size_t len, DErr *err);
/* Create both workers' contexts under data_key and the per-column state. */
extern bool dseal_pipe_init(DsealWriter *w, const uint8_t data_key[DSEAL_DATA_KEY_LEN], DErr *err);
/* Start the writer thread, every signal blocked on it. */
extern bool dseal_pipe_start(DsealWriter *w, DErr *err);
/* Wait for (and help seal) the row group in flight, then stop the thread. */
extern bool dseal_pipe_drain(DsealWriter *w, DErr *err);
/* Stop and join the thread if it runs; release the workers' state, scrubbed. */
extern void dseal_pipe_free(DsealWriter *w);

#endif							/* DSTACK_DSEAL_WRITER_INT_H */
