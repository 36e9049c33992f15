/*
 * scan.h: the state of one sealed scan, shared by the files that run it
 * (internal to dstack_fdw; dstack_fdw.h is the extension's map):
 *
 *   exec.c      the FDW's scan callbacks, set-up, Datums and slots, the batch
 *               interface gpu_scan reads through, the parallel scan
 *   rowgroup.c  reading row groups: the counter, the read-ahead thread,
 *               contribution bounding's call, the chunk checks
 *   analyze.c   ANALYZE's sample (refused under the output guard)
 */
#ifndef DSTACK_FDW_SCAN_H
#define DSTACK_FDW_SCAN_H

#include "port/atomics.h"

#include "dstack_fdw.h"
#include "pg_common.h"

/* Shared by the leader and the workers of one parallel scan. */
typedef struct DfdwShared
{
	pg_atomic_uint32 next_rg;
	int			participants;	/* planned workers, and the leader if it takes part */
	uint8		data_key[DSEAL_DATA_KEY_LEN];
	Size		manifest_len;
	uint8		manifest[FLEXIBLE_ARRAY_MEMBER];	/* the leader's, dseal_manifest_flatten() */
} DfdwShared;

#define MEMO_SLOTS		4096		/* power of two */
#define MEMO_PROBE		8
#define MEMO_TRIAL		2048		/* lookups before judging the hit rate */

typedef struct MemoEntry
{
	const uint8 *p;				/* into the current row group's column buffer */
	uint32		len;
	uint32		hash;
	Datum		value;
} MemoEntry;

typedef struct TextMemo
{
	MemoEntry  *slots;			/* NULL: memo off for this column */
	uint32		used;
	uint64		lookups;
	uint64		hits;
} TextMemo;

typedef struct DfdwScan
{
	MemoryContext scan_cxt;		/* the scan; its reset callback releases resources */
	MemoryContext batch_cxt;	/* Datums of the current row group */
	Relation	rel;
	char	   *path;
	DsealReader *reader;
	const DsealManifest *m;
	int			nneeded;
	int		   *attno;			/* needed attnos (1-based) */
	int		   *mcol;			/* their column in the manifest */
	DsealTypeMap *tm;
	DsealColBuf *bufs;
	TextMemo   *memo;			/* per needed column; see memo_datum() */
	Datum	  **vals;			/* per needed column: the row group's Datums ... */
	bool	  **nulls;			/* ... and NULL flags, built by decode_row_group() */
	uint32		max_rows;		/* largest row group: the arrays' length */
	bool		decoded;		/* vals/nulls hold the current row group */
	bool		slot_nulls_set; /* unneeded columns marked NULL in this row group */
	int			nbufs_init;
	bool		key_installed;
	/* contribution bounding inside dstack_run() (guard.c, rule R7) */
	int			unit_mcol;		/* manifest column of the privacy unit; -1: no bounding */
	DsealColBuf unit_buf;		/* the unit's chunk when the query does not read it */
	bool		unit_buf_init;
	DsealColBuf *unit;			/* &unit_buf, or the needed column's buffer */
	DfdwBound  *bound;			/* rows kept per unit */
	uint8	   *keep;			/* the current row group's kept rows (LSB first) */
	DfdwMount	mount;
	/* read-ahead: a thread decodes the next row group (dseal_prefetch.c) */
	DsealPrefetch *pf;			/* NULL: reading on this thread */
	bool		pf_tried;		/* started once, or decided not to */
	int			pf_ncols;		/* needed columns, plus the unit when not needed */
	DsealColBuf *pf_out;		/* pf_ncols buffers handed to dseal_prefetch_wait() */
	MemoryContextCallback pf_cb;
	/* cursor */
	bool		have_rg;
	uint32		cur_rg;
	uint32		cur_row;
	uint32		cur_nrows;
	uint32		next_serial_rg;
	DfdwShared *shared;			/* NULL: serial */
} DfdwScan;

/* ---- exec.c ---- */
extern DfdwScan *dfdw_scan_open(Relation rel, const char *path, List *attnos, MemoryContext parent,
								DsealManifest *given);
extern void dfdw_scan_mount(DfdwScan *s);
extern void dfdw_scan_fill_slot(DfdwScan *s, TupleTableSlot *slot);
/* A new row group replaced the buffers: forget what was decoded from the old ones. */
extern void dfdw_scan_new_row_group(DfdwScan *s);

/* ---- rowgroup.c ---- */
/* Read the next row group this process is given into s->bufs (and s->keep); false at the end. */
extern bool dfdw_next_row_group(DfdwScan *s);
/* Stop the read-ahead thread (a MemoryContextCallback function; safe to call twice). */
extern void dfdw_prefetch_stop(void *arg);
/* With dstack_fdw.verify_before_scan: check every chunk the scan can read, before any row. */
extern void dfdw_verify_chunks(DfdwScan *s);
/* Inside dstack_run(): check the chunks of the row groups the scan never reached. */
extern void dfdw_verify_unread_chunks(DfdwScan *s);

#endif							/* DSTACK_FDW_SCAN_H */
