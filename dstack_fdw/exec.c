/*
 * exec.c: the columnar scan of a sealed dataset, serial and parallel.
 *
 * A scan holds one row group: for each needed column one decrypted chunk in
 * a DsealColBuf, and the Datums built from it in a memory context that is
 * reset when the next row group is read (rowgroup.c reads them; scan.h is
 * the state the files share).
 *
 * Non-palloc resources (the reader's fd and OpenSSL context, the column
 * buffers, the data key) are released by a callback on the scan's memory
 * context, so they go away on error and abort as well as at the end.
 */
#include "postgres.h"

#include <string.h>

#include "access/parallel.h"
#include "access/table.h"
#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "miscadmin.h"
#include "optimizer/optimizer.h"
#include "parser/parse_type.h"
#include "port/atomics.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/guc.h"
#include "common/hashfn.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "pg_common.h"
#include "scan.h"

static void setup_bounding(DfdwScan *s);

/* ---- resources -------------------------------------------------------- */

typedef struct ReaderGuard
{
	DsealReader *reader;
	MemoryContextCallback cb;
} ReaderGuard;

static void
reader_guard_release(void *arg)
{
	ReaderGuard *g = arg;

	dseal_reader_close(g->reader);
	g->reader = NULL;
}

/*
 * This backend's parsed, verified manifests (dseal_reader_open_cached): a
 * statement plans, mounts and scans a dataset without parsing its manifest
 * again, so planning costs the same whatever the table's size.
 */
#define MANIFEST_CACHE_ENTRIES 16
static DsealManifestCache *manifest_cache = NULL;

/*
 * Open a dataset (trailer, manifest, owner signature) so that it is closed
 * when cxt is reset or deleted, on error too.
 */
static DsealReader *
open_guarded(const char *path, MemoryContext cxt, DsealManifest *given)
{
	ReaderGuard *g = MemoryContextAllocZero(cxt, sizeof(ReaderGuard));
	DErr		err;

	derr_clear(&err);
	if (manifest_cache == NULL)
		manifest_cache = dseal_cache_create(MANIFEST_CACHE_ENTRIES);	/* NULL: uncached */
	if (given != NULL)
		g->reader = dseal_reader_open_with(path, given, &err);
	else
		g->reader = manifest_cache ? dseal_reader_open_cached(path, manifest_cache, &err)
			: dseal_reader_open(path, &err);
	if (g->reader == NULL)
		derr_ereport(&err, 0,
					 err.code == DERR_IO ? "Check the foreign table's path option and that the server "
					 "process can read the file."
					 : "The file is not the sealed dataset its owner published; fetch it again from the owner.");
	g->cb.func = reader_guard_release;
	g->cb.arg = g;
	MemoryContextRegisterResetCallback(cxt, &g->cb);
	return g->reader;
}

DsealReader *
dfdw_open_dataset(const char *path, MemoryContext cxt)
{
	return open_guarded(path, cxt, NULL);
}

/* Release what palloc does not own: column buffers and the data key. */
static void
scan_release(void *arg)
{
	DfdwScan   *s = arg;

	for (int i = 0; i < s->nbufs_init; i++)
		colbuf_free(&s->bufs[i]);
	s->nbufs_init = 0;
	if (s->unit_buf_init)
		colbuf_free(&s->unit_buf);
	s->unit_buf_init = false;
	dfdw_mount_scrub(&s->mount);
}

/* ---- set-up ------------------------------------------------------------ */

/*
 * Map the needed columns of the foreign table to manifest columns by name,
 * and check that the declared types decode the sealed encoding.
 */
static void
map_columns(DfdwScan *s, List *attnos)
{
	TupleDesc	desc = RelationGetDescr(s->rel);
	ListCell   *lc;
	int			i = 0;

	s->nneeded = list_length(attnos);
	s->attno = palloc0(sizeof(int) * Max(s->nneeded, 1));
	s->mcol = palloc0(sizeof(int) * Max(s->nneeded, 1));
	s->tm = palloc0(sizeof(DsealTypeMap) * Max(s->nneeded, 1));
	s->bufs = palloc0(sizeof(DsealColBuf) * Max(s->nneeded, 1));
	s->memo = palloc0(sizeof(TextMemo) * Max(s->nneeded, 1));
	s->vals = palloc0(sizeof(Datum *) * Max(s->nneeded, 1));
	s->nulls = palloc0(sizeof(bool *) * Max(s->nneeded, 1));
	s->max_rows = 1;
	for (uint32 g = 0; g < s->m->nrowgroups; g++)
		s->max_rows = Max(s->max_rows, s->m->rowgroups[g].nrows);
	foreach(lc, attnos)
	{
		Form_pg_attribute att = TupleDescAttr(desc, lfirst_int(lc) - 1);
		const char *name = NameStr(att->attname);
		int			c;

		for (c = 0; c < s->m->ncols; c++)
			if (strcmp(s->m->cols[c].name, name) == 0)
				break;
		if (c == s->m->ncols)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_COLUMN_NAME_NOT_FOUND),
					 errmsg("column \"%s\" of foreign table \"%s\" is not in its sealed dataset",
							name, RelationGetRelationName(s->rel)),
					 errdetail("The dataset \"%s\" was sealed from table %s.", s->path, s->m->table),
					 errhint("Recreate the foreign table with IMPORT FOREIGN SCHEMA so its columns match the manifest.")));
		dseal_typemap_init(&s->tm[i], att->atttypid, att->atttypmod);
		if (s->tm[i].enc != s->m->cols[c].enc || s->tm[i].repr != s->m->cols[c].repr)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
					 errmsg("column \"%s\" of foreign table \"%s\" has type %s, but it was sealed as %s",
							name, RelationGetRelationName(s->rel),
							format_type_with_typemod(att->atttypid, att->atttypmod), s->m->cols[c].type),
					 errhint("Declare the column as %s, or recreate the table with IMPORT FOREIGN SCHEMA.",
							 s->m->cols[c].type)));
		s->attno[i] = att->attnum;
		s->mcol[i] = c;
		s->vals[i] = palloc_extended(sizeof(Datum) * s->max_rows, MCXT_ALLOC_HUGE);
		s->nulls[i] = palloc_extended(sizeof(bool) * s->max_rows, MCXT_ALLOC_HUGE);
		if (s->tm[i].repr == DSEAL_REPR_TEXT)
			s->memo[i].slots = palloc0(sizeof(MemoEntry) * MEMO_SLOTS);
		i++;
	}
}

/* Everything but the key: open, map columns, guard resources. */
DfdwScan *
dfdw_scan_open(Relation rel, const char *path, List *attnos, MemoryContext parent, DsealManifest *given)
{
	MemoryContext cxt = AllocSetContextCreate(parent, "dstack_fdw scan", ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	DfdwScan   *s = palloc0(sizeof(DfdwScan));
	MemoryContextCallback *cb = palloc0(sizeof(MemoryContextCallback));

	s->scan_cxt = cxt;
	s->batch_cxt = AllocSetContextCreate(cxt, "dstack_fdw row group", ALLOCSET_DEFAULT_SIZES);
	s->rel = rel;
	s->path = pstrdup(path);
	/* registered before the reader's, so it runs after it (callbacks run LIFO) */
	cb->func = scan_release;
	cb->arg = s;
	MemoryContextRegisterResetCallback(cxt, cb);
	s->reader = open_guarded(path, cxt, given);
	s->m = dseal_reader_manifest(s->reader);
	if (dfdw_guc_output_guard)
		dfdw_check_declared_types(rel, s->m, path);
	map_columns(s, attnos);
	MemoryContextSwitchTo(old);
	return s;
}

static void
install_key(DfdwScan *s, const uint8 key[DSEAL_DATA_KEY_LEN])
{
	DErr		err;

	derr_clear(&err);
	if (!dseal_reader_set_data_key(s->reader, key, &err))
		derr_ereport(&err, 0, NULL);
	s->key_installed = true;
}

/*
 * The execution boundary's type rule: every column of rel is declared with
 * exactly the type its dataset was sealed as (no domain, no other type whose
 * input function could fail on a value and quote it).  Only foreign-table
 * owners declare columns, but the rule holds whoever they are.
 */
void
dfdw_check_declared_types(Relation rel, const DsealManifest *m, const char *path)
{
	TupleDesc	desc = RelationGetDescr(rel);

	for (int a = 0; a < desc->natts; a++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, a);
		Oid			typid = InvalidOid;
		int32		typmod = -1;
		int			c;

		if (att->attisdropped)
			continue;
		for (c = 0; c < m->ncols; c++)
			if (strcmp(m->cols[c].name, NameStr(att->attname)) == 0)
				break;
		if (c == m->ncols)
			continue;			/* reported by map_columns if the query needs it */
		(void) parseTypeString(m->cols[c].type, &typid, &typmod, true);
		if (typid != att->atttypid)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
					 errmsg("column \"%s\" of foreign table \"%s\" has type %s, but it was sealed as %s",
							NameStr(att->attname), RelationGetRelationName(rel),
							format_type_with_typemod(att->atttypid, att->atttypmod), m->cols[c].type),
					 errdetail("Under the output guard a sealed column must be declared with exactly its sealed "
							   "type: another type or a domain could fail on a value and quote it (file \"%s\").",
							   path),
					 errhint("Ask the operator to recreate the table with IMPORT FOREIGN SCHEMA.")));
	}
}

/* Leader or serial scan: the mount rule and the key. */
void
dfdw_scan_mount(DfdwScan *s)
{
	dfdw_mount(GetForeignTable(RelationGetRelid(s->rel))->serverid, RelationGetRelid(s->rel),
			   s->reader, &s->mount);
	install_key(s, s->mount.data_key);
}

/*
 * Inside dstack_run(): the file a scan opened must be the very dataset the
 * run recorded when it validated the query, charged the budget of and cites
 * in the receipt (run.c opened it then; a scan opens it again now).  A host
 * that swapped the file in between (another version, superseded or with its
 * budget spent, another owner's dataset) would otherwise have its rows read
 * against someone else's budget and receipt.
 */
static void
check_run_dataset(DfdwScan *s)
{
	ListCell   *lc;

	if (!dfdw_sealed_execution())
		return;
	foreach(lc, dfdw_run->datasets)
	{
		DfdwDatasetRef *d = lfirst(lc);

		if (d->relid != RelationGetRelid(s->rel))
			continue;
		if (memcmp(d->manifest_hash, s->m->manifest_hash, DC_SHA256_LEN) == 0)
			return;
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("sealed dataset of \"%s\" changed during the run", RelationGetRelationName(s->rel)),
				 errdetail("The run was checked and charged for manifest %s; the file \"%s\" now holds manifest %s.",
						   dpg_hex(d->manifest_hash, DC_SHA256_LEN, true), s->path,
						   dpg_hex(s->m->manifest_hash, DC_SHA256_LEN, true)),
				 errhint("Keep the CVM's dataset files unchanged while queries run; ask the operator why this one changed.")));
	}
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("sealed table \"%s\" is not one the run recorded", RelationGetRelationName(s->rel)),
			 errhint("Only the sealed tables of the validated query are read inside dstack_run().")));
}

/*
 * A leader's or serial scan, opened: the run's dataset, contribution
 * bounding, the mount rule and the key, and the optional check of every
 * chunk.  The foreign scan and the batch interface start the same way.
 */
static void
scan_start(DfdwScan *s)
{
	check_run_dataset(s);
	setup_bounding(s);
	dfdw_scan_mount(s);
	dfdw_verify_chunks(s);
}

void
dfdwBeginForeignScan(ForeignScanState *node, int eflags)
{
	ForeignScan *plan = (ForeignScan *) node->ss.ps.plan;
	DfdwScan   *s;

	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;
	dfdw_check_sealed_scan(node->ss.ps.state, node->ss.ss_currentRelation);
	/*
	 * A parallel worker gets the manifest and the key of a parallel-aware
	 * scan from the leader: the scan is opened in
	 * dfdwInitializeWorkerForeignScan.  A scan that is not parallel-aware
	 * but runs in a worker anyway (the inner side of a hash join under
	 * Gather: each worker reads it whole) has no shared state: the worker
	 * opens and mounts it itself, with the same rule.  Its leader passed
	 * dfdw_check_sealed_scan() for the same plan before any worker started.
	 */
	if (IsParallelWorker() && node->ss.ps.plan->parallel_aware)
		return;
	s = dfdw_scan_open(node->ss.ss_currentRelation, strVal(linitial(plan->fdw_private)),
				  lthird(plan->fdw_private), node->ss.ps.state->es_query_cxt, NULL);
	node->fdw_state = s;
	scan_start(s);
}

/* ---- contribution bounding (bound.c) ------------------------------------- */

/*
 * Inside dstack_run(), with a privacy unit in the consortium's policy, keep at
 * most rows_per_unit rows per unit value (dstack_run() plans serially, so one
 * scan sees every row of the table).
 */
static void
setup_bounding(DfdwScan *s)
{
	s->unit_mcol = -1;
	if (!dfdw_sealed_execution() || dfdw_run->privacy_unit == NULL)
		return;
	for (int c = 0; c < s->m->ncols; c++)
		if (strcmp(s->m->cols[c].name, dfdw_run->privacy_unit) == 0)
			s->unit_mcol = c;
	if (s->unit_mcol < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("sealed dataset of \"%s\" has no privacy-unit column \"%s\"",
						RelationGetRelationName(s->rel), dfdw_run->privacy_unit),
				 errhint("Ask the owner to seal the table with its privacy-unit column.")));
	/* the unit is usually a column the query reads anyway: decrypt it once */
	s->unit = &s->unit_buf;
	for (int i = 0; i < s->nneeded; i++)
		if (s->mcol[i] == s->unit_mcol)
			s->unit = &s->bufs[i];
	s->bound = dfdw_bound_begin(s->scan_cxt, s->m->row_count, dfdw_run->rows_per_unit);
	s->keep = MemoryContextAlloc(s->scan_cxt, (s->max_rows + 7) / 8);
}

/* Keep row `row` of the current row group?  (Decided for the row group by next_row_group.) */
static inline bool
keep_row(DfdwScan *s, uint32 row)
{
	return (s->keep[row >> 3] >> (row & 7)) & 1;
}

/* ---- the scan ------------------------------------------------------------ */

/*
 * Values stored in their text form (numeric, jsonb, arrays, ...) are rebuilt
 * with the type's input function, which costs far more than a copy.  Such
 * columns are often low-cardinality (lab values with two decimals, codes), so
 * each row group keeps a small memo from text to Datum, and a column whose
 * values turn out to be mostly distinct stops using it.
 */
static Datum
memo_datum(DfdwScan *s, int i, uint32 row)
{
	TextMemo   *m = &s->memo[i];
	uint32		len;
	const uint8 *p = colbuf_var_at(&s->bufs[i], row, &len);
	uint32		h = hash_bytes(p, (int) len);
	Datum		d;

	m->lookups++;
	for (int k = 0; k < MEMO_PROBE; k++)
	{
		MemoEntry  *e = &m->slots[(h + k) & (MEMO_SLOTS - 1)];

		if (e->p == NULL)
		{
			d = dseal_typemap_text_datum(&s->tm[i], &s->bufs[i], row);
			if (m->used < MEMO_SLOTS * 3 / 4)
			{
				*e = (MemoEntry) {p, len, h, d};
				m->used++;
			}
			return d;
		}
		if (e->hash == h && e->len == len && memcmp(e->p, p, len) == 0)
		{
			m->hits++;
			return e->value;
		}
	}
	return dseal_typemap_text_datum(&s->tm[i], &s->bufs[i], row);
}

/* A new row group: its buffers replaced the old ones, so the memos start empty. */
void
dfdw_scan_new_row_group(DfdwScan *s)
{
	s->slot_nulls_set = false;
	s->decoded = false;
	for (int i = 0; i < s->nneeded; i++)
	{
		TextMemo   *m = &s->memo[i];

		if (m->slots == NULL)
			continue;
		if (m->lookups >= MEMO_TRIAL && m->hits * 2 < m->lookups)
		{
			m->slots = NULL;	/* mostly distinct values: the memo only costs */
			continue;
		}
		memset(m->slots, 0, sizeof(MemoEntry) * MEMO_SLOTS);
		m->used = 0;
	}
}

/*
 * Build the current row group's Datums, a column at a time (tight loops,
 * one allocation per variable-width column), the first time a row of it is
 * needed: the batch interface (gpu_scan) reads the column buffers directly
 * and decodes only when it returns a row.
 */
static void
decode_row_group(DfdwScan *s)
{
	MemoryContext old = MemoryContextSwitchTo(s->batch_cxt);

	for (int i = 0; i < s->nneeded; i++)
	{
		const DsealColBuf *cb = &s->bufs[i];

		if (s->tm[i].repr == DSEAL_REPR_BINARY)
		{
			dseal_typemap_decode(&s->tm[i], cb, s->vals[i], s->nulls[i]);
			continue;
		}
		for (uint32 r = 0; r < cb->nrows; r++)
		{
			CHECK_FOR_INTERRUPTS();
			s->nulls[i][r] = colbuf_is_null(cb, r);
			s->vals[i][r] = s->nulls[i][r] ? (Datum) 0
				: s->memo[i].slots ? memo_datum(s, i, r)
				: dseal_typemap_text_datum(&s->tm[i], cb, r);
		}
	}
	s->decoded = true;
	MemoryContextSwitchTo(old);
}

/* Fill the slot with row cur_row: needed columns from the decoded arrays, others NULL. */
void
dfdw_scan_fill_slot(DfdwScan *s, TupleTableSlot *slot)
{
	uint32		row = s->cur_row;
	Datum	   *values = slot->tts_values;
	bool	   *isnull = slot->tts_isnull;

	if (!s->decoded)
		decode_row_group(s);
	ExecClearTuple(slot);
	if (!s->slot_nulls_set)		/* unneeded columns stay NULL for the whole row group */
	{
		memset(isnull, true, sizeof(bool) * slot->tts_tupleDescriptor->natts);
		s->slot_nulls_set = true;
	}
	for (int i = 0; i < s->nneeded; i++)
	{
		int			a = s->attno[i] - 1;

		values[a] = s->vals[i][row];
		isnull[a] = s->nulls[i][row];
	}
	ExecStoreVirtualTuple(slot);
}

TupleTableSlot *
dfdwIterateForeignScan(ForeignScanState *node)
{
	DfdwScan   *s = node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;

	for (;;)
	{
		while (!s->have_rg || s->cur_row >= s->cur_nrows)
		{
			if (!dfdw_next_row_group(s))
				return ExecClearTuple(slot);
		}
		if (s->unit_mcol < 0 || keep_row(s, s->cur_row))
			break;
		s->cur_row++;
	}
	dfdw_scan_fill_slot(s, slot);
	s->cur_row++;
	return slot;
}

void
dfdwReScanForeignScan(ForeignScanState *node)
{
	dfdw_batch_rescan(node->fdw_state);
}

void
dfdwEndForeignScan(ForeignScanState *node)
{
	dfdw_batch_end(node->fdw_state);	/* closes the reader, scrubs the key */
	node->fdw_state = NULL;
}

/* ---- the columnar batch interface (gpu_scan) ------------------------------ */

/*
 * gpu_scan reads sealed tables a row group at a time, as plain column
 * arrays, instead of a tuple at a time.  The run's dataset record, the
 * mount rule, contribution bounding, the read-ahead thread and the chunk
 * checks are the ones the foreign scan applies, because it is the same code
 * (scan_start, rowgroup.c): only the iteration differs.  The scan is serial (the guard keeps dstack_run()
 * serial; a CustomScan here is not parallel-aware).
 */
DfdwScan *
dfdw_batch_begin(EState *estate, Relation rel, List *attnos, MemoryContext parent)
{
	DfdwTableOptions topts;
	DfdwScan   *s;

	dfdw_check_sealed_scan(estate, rel);
	dfdw_table_options(RelationGetRelid(rel), &topts);
	s = dfdw_scan_open(rel, topts.path, attnos, parent, NULL);
	scan_start(s);
	return s;
}

/*
 * Decrypt the next row group.  b->cols[i] is the column of the i-th attno
 * given to dfdw_batch_begin(); b->keep, when not NULL, is a bitmap (LSB
 * first) of the rows contribution bounding keeps, decided in row order
 * exactly as the foreign scan decides them.
 */
bool
dfdw_batch_next(DfdwScan *s, DfdwBatch *b)
{
	if (!dfdw_next_row_group(s))
		return false;
	b->nrows = s->cur_nrows;
	b->ncols = s->nneeded;
	b->cols = s->bufs;
	b->keep = s->bound ? s->keep : NULL;
	s->cur_row = s->cur_nrows;	/* consumed as a batch */
	return true;
}

/* Fill slot with row `row` of the current batch (the filter scan's output). */
void
dfdw_batch_fill_slot(DfdwScan *s, TupleTableSlot *slot, uint32 row)
{
	s->cur_row = row;
	dfdw_scan_fill_slot(s, slot);
	s->cur_row = s->cur_nrows;
}

/* Rows in the dataset, from its signed manifest. */
uint64
dfdw_batch_row_count(DfdwScan *s)
{
	return s->m->row_count;
}

/* Memory that lives until the next row group (reset by dfdw_batch_next). */
MemoryContext
dfdw_batch_memory(DfdwScan *s)
{
	return s->batch_cxt;
}

/* Start again from the first row group, with fresh contribution counts. */
void
dfdw_batch_rescan(DfdwScan *s)
{
	if (s->pf)
		dseal_prefetch_discard(s->pf);	/* drops a request for the old pass; the thread stays */
	s->have_rg = false;
	s->next_serial_rg = 0;
	if (s->bound)
		dfdw_bound_reset(s->bound);
}

/*
 * The end of a scan that ran (ExecEndNode, or a join's inner side read
 * whole): close the dataset, scrub the key, free the buffers.  Error paths
 * release the same resources through the scan context's callbacks.
 */
void
dfdw_batch_end(DfdwScan *s)
{
	if (s == NULL)
		return;
	dfdw_verify_unread_chunks(s);
	MemoryContextDelete(s->scan_cxt);
}

/* ---- parallel scan ------------------------------------------------------ */

Size
dfdwEstimateDSMForeignScan(ForeignScanState *node, ParallelContext *pcxt)
{
	DfdwScan   *s = node->fdw_state;

	return add_size(offsetof(DfdwShared, manifest), dseal_manifest_flat_size(s->m));
}

/*
 * The leader has mounted: share the cursor, the data key and the parsed,
 * verified manifest with the workers (they do not parse it again).
 */
void
dfdwInitializeDSMForeignScan(ForeignScanState *node, ParallelContext *pcxt, void *coordinate)
{
	DfdwScan   *s = node->fdw_state;
	DfdwShared *sh = coordinate;

	pg_atomic_init_u32(&sh->next_rg, 0);
	sh->participants = pcxt->nworkers + (parallel_leader_participation ? 1 : 0);
	memcpy(sh->data_key, s->mount.data_key, DSEAL_DATA_KEY_LEN);
	sh->manifest_len = dseal_manifest_flat_size(s->m);
	dseal_manifest_flatten(s->m, sh->manifest);
	s->shared = sh;
}

void
dfdwReInitializeDSMForeignScan(ForeignScanState *node, ParallelContext *pcxt, void *coordinate)
{
	DfdwShared *sh = coordinate;

	pg_atomic_write_u32(&sh->next_rg, 0);
}

/* A worker's part of a parallel-aware scan: open with the leader's manifest and key. */
void
dfdwInitializeWorkerForeignScan(ForeignScanState *node, shm_toc *toc, void *coordinate)
{
	ForeignScan *plan = (ForeignScan *) node->ss.ps.plan;
	DfdwShared *sh = coordinate;
	DsealManifest *m;
	DfdwScan   *s;
	DErr		err;

	derr_clear(&err);
	m = dseal_manifest_unflatten(sh->manifest, sh->manifest_len, &err);
	if (m == NULL)
		derr_ereport(&err, 0, NULL);
	s = dfdw_scan_open(node->ss.ss_currentRelation, strVal(linitial(plan->fdw_private)),
				  lthird(plan->fdw_private), node->ss.ps.state->es_query_cxt, m);
	node->fdw_state = s;
	s->shared = sh;
	setup_bounding(s);
	install_key(s, sh->data_key);
}

/* Leader only, after every worker has finished: scrub the shared key. */
void
dfdwShutdownForeignScan(ForeignScanState *node)
{
	DfdwScan   *s = node->fdw_state;

	if (s != NULL && s->shared != NULL && !IsParallelWorker())
		explicit_bzero(s->shared->data_key, DSEAL_DATA_KEY_LEN);
}
