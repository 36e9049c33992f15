/*
 * gs_exec.c: executing GpuPreAgg and GpuScan, and their EXPLAIN.
 *
 * Both read the sealed table through the FDW's batch interface (mount rule,
 * receipt record and contribution bounding included) one row group at a
 * time and hand the decrypted column arrays to the kernels: on the GPU when
 * this backend has one (gs_cuda.c), else their host build (gs_host.c).
 *
 * GpuPreAgg aggregates the whole input on the first call, then emits one
 * tuple per group: the keys and the partial states in the layout the
 * Finalize Agg above expects (int8 counts and sums, min/max in the column's
 * type, DP states serialised as dp_serialize does).
 *
 * Non-palloc resources (the host group table, device memory, pinned
 * buffers, streams) are released by a callback on the query's memory
 * context, so an error or a cancel releases them too.
 */
#include "postgres.h"

#include "access/table.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "commands/explain.h"
#include "executor/executor.h"
#include "libpq/pqformat.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/extensible.h"
#include "nodes/makefuncs.h"
#include "optimizer/optimizer.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/pg_locale.h"
#include "utils/ruleutils.h"
#include "utils/varlena.h"

#include "dstack_fdw.h"
#include "gpu_scan.h"
#include "gs_cuda.h"

/* A host dictionary of one text/bytea key column: bytes -> code -> Datum. */
typedef struct GsDict
{
	uint32		cap;			/* slots, power of two */
	uint32		n;				/* codes */
	uint32	   *slots;			/* code + 1, or 0 */
	Datum	   *values;			/* varlena per code (the output Datum) */
	uint32		values_cap;
} GsDict;

/* What both nodes count, for EXPLAIN ANALYZE. */
typedef struct GsStats
{
	uint64		batches;
	uint64		rows_in;
	uint64		rows_selected;
	uint64		bytes_h2d;
	uint64		bytes_d2h;
	uint64		rows_overflow;
	double		kernel_ms;
	uint64		inner_rows;		/* a join's inner table */
} GsStats;

typedef struct GsResources
{
	GsHostTable host;
	bool		host_init;
	GsJoinHash	jh;				/* the join's inner hash (malloc'ed) */
	GsCudaPreagg *dev;
	MemoryContextCallback cb;
} GsResources;

/* A join's inner table, whole: one array per kernel column of side 1. */
typedef struct GsInner
{
	uint32		n;
	uint8	   *data[GS_MAX_COLS];
	uint8	   *valid[GS_MAX_COLS];	/* NULL: no NULLs in the column */
	uint8	   *keep;			/* contribution bounding, or NULL */
} GsInner;

typedef struct GsPreAggState
{
	CustomScanState css;
	GsCompiled	gc;
	int			est_groups;
	Relation	rel;
	List	   *attnos;			/* distinct attnos the batch interface decrypts */
	int			colbatch[GS_MAX_COLS];	/* kernel column -> batch column (of its side) */
	DfdwScan   *scan;
	Relation	inner_rel;		/* a join's inner table */
	List	   *inner_attnos;
	GsInner		inner;
	bool		gpu;
	GsResources *res;
	GsDict		dict[GS_MAX_COLS];
	DfdwDpArgs	dpargs[GS_MAX_AGGS];
	MemoryContext cxt;			/* the query's */
	uint8	   *zeros;			/* data of NULL-only columns */
	uint32		zeros_len;
	bool		done;
	uint32		emit_slot;
	bool		emitted_empty;	/* the one row of an aggregate over no rows */
	uint64		groups;
	GsStats		st;
	/* min/max of text (GS_AGG_HOST), folded here: the one group's running value */
	char	   *text_val[GS_MAX_AGGS];
	uint32		text_len[GS_MAX_AGGS];
	uint32		text_cap[GS_MAX_AGGS];
	bool		text_have[GS_MAX_AGGS];
	uint32	   *sel;			/* rows kept and selected, for those folds */
	uint32		sel_words;
} GsPreAggState;

typedef struct GsFilterState
{
	CustomScanState css;
	GsCompiled	gc;
	List	   *attnos;
	int			colbatch[GS_MAX_COLS];
	DfdwScan   *scan;
	bool		gpu;
	MemoryContext cxt;			/* the query's */
	uint8	   *zeros;
	uint32		zeros_len;
	uint32	   *sel;
	uint32		sel_words;
	uint32		nrows;
	uint32		pos;
	bool		have;
	GsStats		st;
} GsFilterState;

/* ---- shared set-up ---------------------------------------------------------- */

static void
release_resources(void *arg)
{
	GsResources *r = arg;

	gs_cuda_preagg_free(r->dev);
	r->dev = NULL;
	if (r->host_init)
		gs_table_free(&r->host.t);
	r->host_init = false;
}

/* Position of v in an integer list, or -1. */
static int
list_position_int(List *l, int v)
{
	ListCell   *lc;

	foreach(lc, l)
		if (lfirst_int(lc) == v)
			return foreach_current_index(lc);
	return -1;
}

/*
 * The distinct attnos of extra and the kernel's columns of one side;
 * colbatch maps the latter into them.
 */
static List *
batch_attnos(const GsCompiled *gc, List *extra, int side, int *colbatch)
{
	List	   *attnos = list_copy(extra);

	for (int i = 0; i < gc->ncols; i++)
	{
		if (gc->cols[i].side != side)
			continue;
		if (!list_member_int(attnos, gc->cols[i].attno))
			attnos = lappend_int(attnos, gc->cols[i].attno);
		colbatch[i] = list_position_int(attnos, gc->cols[i].attno);
	}
	return attnos;
}

/* ---- dictionaries of text keys ------------------------------------------------ */

static void
dict_init(GsDict *d)
{
	d->cap = 1024;
	d->n = 0;
	d->slots = palloc0(sizeof(uint32) * d->cap);
	d->values_cap = 256;
	d->values = palloc(sizeof(Datum) * d->values_cap);
}

static void
dict_grow(GsDict *d)
{
	uint32		ncap = d->cap * 2;
	uint32	   *ns = palloc0(sizeof(uint32) * ncap);

	for (uint32 c = 0; c < d->n; c++)
	{
		struct varlena *v = (struct varlena *) DatumGetPointer(d->values[c]);
		uint32		h = hash_bytes((unsigned char *) VARDATA(v), VARSIZE(v) - VARHDRSZ);

		while (ns[h & (ncap - 1)] != 0)
			h++;
		ns[h & (ncap - 1)] = c + 1;
	}
	pfree(d->slots);
	d->slots = ns;
	d->cap = ncap;
}

/* The code of bytes p[0..len), added if new (the varlena copy is the output Datum). */
static int32
dict_code(GsDict *d, const uint8 *p, uint32 len)
{
	uint32		h = hash_bytes(p, (int) len);

	for (;;)
	{
		uint32		s = d->slots[h & (d->cap - 1)];
		struct varlena *v;

		if (s == 0)
			break;
		v = (struct varlena *) DatumGetPointer(d->values[s - 1]);
		if (VARSIZE(v) - VARHDRSZ == len && memcmp(VARDATA(v), p, len) == 0)
			return (int32) (s - 1);
		h++;
	}
	if (d->n == d->values_cap)
	{
		d->values_cap *= 2;
		d->values = repalloc(d->values, sizeof(Datum) * d->values_cap);
	}
	{
		struct varlena *v = palloc(VARHDRSZ + len);

		SET_VARSIZE(v, VARHDRSZ + len);
		memcpy(VARDATA(v), p, len);
		d->values[d->n] = PointerGetDatum(v);
	}
	d->slots[h & (d->cap - 1)] = d->n + 1;
	d->n++;
	if (d->n * 2 > d->cap)
		dict_grow(d);
	return (int32) (d->n - 1);
}

/* The codes of a text column's rows (0 for NULL rows: the validity bitmap says which). */
static void
dict_encode(GsDict *d, const DsealColBuf *cb, int32 *codes)
{
	for (uint32 r = 0; r < cb->nrows; r++)
	{
		uint32		len;
		const uint8 *v;

		if (colbuf_is_null(cb, r))
		{
			codes[r] = 0;
			continue;
		}
		v = colbuf_var_at(cb, r, &len);	/* sets len: not in the same call as its use */
		codes[r] = dict_code(d, v, len);
	}
}

/*
 * The characters of a text value as length() counts them
 * (pg_mbstrlen_with_len: up to the first NUL, a multibyte character by its
 * first byte), inline for UTF-8, the usual encoding.
 */
static inline int32
text_chars(const uint8 *v, uint32 len, bool utf8)
{
	int32		n = 0;
	int32		left = (int32) len;

	if (!utf8)
		return pg_mbstrlen_with_len((const char *) v, (int) len);
	/* ASCII without NUL, 8 bytes at a time: a character each, as below */
	while (left >= 8)
	{
		uint64		w;

		memcpy(&w, v, 8);
		if ((w & UINT64CONST(0x8080808080808080)) != 0 ||
			((w - UINT64CONST(0x0101010101010101)) & ~w & UINT64CONST(0x8080808080808080)) != 0)
			break;
		v += 8;
		left -= 8;
		n += 8;
	}
	while (left > 0 && *v)
	{
		uint8		c = *v;
		int			l = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 1;

		left -= l;
		v += l;
		n++;
	}
	return n;
}

/* length(x) or octet_length(x) of a text column's rows (0 for NULL rows). */
static void
text_lengths(const DsealColBuf *cb, bool octets, int32 *out)
{
	bool		utf8 = GetDatabaseEncoding() == PG_UTF8;
	bool		single = pg_database_encoding_max_length() == 1;

	for (uint32 r = 0; r < cb->nrows; r++)
	{
		uint32		len;
		const uint8 *v;

		if (colbuf_is_null(cb, r))
		{
			out[r] = 0;
			continue;
		}
		v = colbuf_var_at(cb, r, &len);
		out[r] = (octets || single) ? (int32) len : text_chars(v, len, utf8);
	}
}

/*
 * The kernel parameters of one batch: the compiled program, keys and
 * aggregates, and column arrays pointing into the decrypted chunks (codes
 * for dictionary keys, built here in batch memory).
 */
static void
batch_params(GsCompiled *gc, const int *colbatch, GsDict *dicts, const DfdwBatch *b, MemoryContext bcxt,
			 MemoryContext longcxt, uint8 **zeros, uint32 *zeros_len, const GsInner *inner, GsParams *p)
{
	memset(p, 0, offsetof(GsParams, cols));
	p->ncols = gc->ncols;
	p->nprog = gc->nprog;
	p->nkeys = gc->nkeys;
	p->naggs = gc->naggs;
	p->nrows = b ? b->nrows : 0;	/* no batch: only the inner columns (gs_cuda_preagg_set_inner) */
	p->keep = b ? b->keep : NULL;
	memcpy(p->prog, gc->prog, sizeof(GsInstr) * gc->nprog);
	memcpy(p->keycol, gc->keycol, sizeof(int32) * gc->nkeys);
	memcpy(p->aggs, gc->aggs, sizeof(GsAgg) * gc->naggs);
	for (int i = 0; i < gc->ncols; i++)
	{
		const DsealColBuf *cb;
		GsColumn   *c = &p->cols[i];

		c->kind = gc->cols[i].kind;
		c->side = gc->cols[i].side;
		if (c->side != 0)
		{
			c->data = inner->data[i];
			c->valid = inner->valid[i];
			continue;
		}
		if (b == NULL)
			continue;
		cb = &b->cols[colbatch[i]];
		c->valid = cb->any_null ? cb->validity : NULL;
		switch (gc->cols[i].mode)
		{
			case GS_COL_VALUE:
				c->data = cb->fixed;
				break;
			case GS_COL_CHARS:
			case GS_COL_OCTETS:
				{
					int32	   *lens = MemoryContextAlloc(bcxt, sizeof(int32) * Max(b->nrows, 1));

					text_lengths(cb, gc->cols[i].mode == GS_COL_OCTETS, lens);
					c->data = (const uint8_t *) lens;
					break;
				}
			case GS_COL_NULLS:
			case GS_COL_TEXT:
				if (*zeros_len < b->nrows)
				{
					*zeros = MemoryContextAllocZero(longcxt, b->nrows);
					*zeros_len = b->nrows;
				}
				c->data = *zeros;
				break;
			case GS_COL_DICT:
				{
					int32	   *codes = MemoryContextAlloc(bcxt, sizeof(int32) * Max(b->nrows, 1));

					dict_encode(&dicts[i], cb, codes);
					c->data = (const uint8_t *) codes;
					break;
				}
		}
	}
}

/* ---- GpuPreAgg ----------------------------------------------------------- */

static Node *
preagg_create(CustomScan *cs)
{
	GsPreAggState *s = (GsPreAggState *) newNode(sizeof(GsPreAggState), T_CustomScanState);

	gs_compiled_from_list(linitial(cs->custom_private), &s->gc);
	s->est_groups = intVal(lsecond(cs->custom_private));
	return (Node *) s;
}

static void
preagg_begin(CustomScanState *node, EState *estate, int eflags)
{
	GsPreAggState *s = (GsPreAggState *) node;
	MemoryContext old = MemoryContextSwitchTo(estate->es_query_cxt);

	s->cxt = estate->es_query_cxt;
	s->gpu = gs_device_available();
	s->attnos = batch_attnos(&s->gc, NIL, 0, s->colbatch);
	if (OidIsValid(s->gc.inner_relid))
		s->inner_attnos = batch_attnos(&s->gc, NIL, 1, s->colbatch);
	for (int i = 0; i < s->gc.ncols; i++)
		if (s->gc.cols[i].mode == GS_COL_DICT)
			dict_init(&s->dict[i]);
	s->res = palloc0(sizeof(GsResources));
	s->res->cb.func = release_resources;
	s->res->cb.arg = s->res;
	MemoryContextRegisterResetCallback(estate->es_query_cxt, &s->res->cb);
	if (!(eflags & EXEC_FLAG_EXPLAIN_ONLY))
	{
		s->rel = table_open(s->gc.relid, AccessShareLock);
		s->scan = dfdw_batch_begin(estate, s->rel, s->attnos, estate->es_query_cxt);
		if (OidIsValid(s->gc.inner_relid))
			s->inner_rel = table_open(s->gc.inner_relid, AccessShareLock);
	}
	MemoryContextSwitchTo(old);
}

/* Check each DP aggregate's constant arguments as its transition function would. */
static void
check_dp_args(GsPreAggState *s)
{
	ListCell   *lc;

	foreach(lc, s->gc.dpargs)
	{
		int			a = foreach_current_index(lc);
		List	   *args = lfirst(lc);
		Const	   *eps,
				   *lo = NULL,
				   *hi = NULL;
		GsAgg	   *g = &s->gc.aggs[a];

		if (s->gc.dpkind[a] == 0)
			continue;
		eps = llast(args);
		if (list_length(args) == 3)
		{
			lo = linitial(args);
			hi = lsecond(args);
		}
		dfdw_dp_check_args(strVal(list_nth(s->gc.aggnames, a)), s->gc.dpkind[a], eps->constisnull,
						   eps->constisnull ? 0 : DatumGetFloat8(eps->constvalue),
						   lo == NULL || lo->constisnull, lo ? lo->constvalue : 0,
						   hi == NULL || hi->constisnull, hi ? hi->constvalue : 0, &s->dpargs[a]);
		g->lo_i = s->dpargs[a].lower;
		g->hi_i = s->dpargs[a].upper;
		g->lo_f = s->dpargs[a].lower_f;
		g->hi_f = s->dpargs[a].upper_f;
	}
}

/* Raise a device failure: the query stops cleanly (resources go with its context). */
static void
device_error(const char *err)
{
	ereport(ERROR,
			(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
			 errmsg("gpu_scan: GPU execution failed: %s", err),
			 errhint("Retry; if it persists, SET gpu_scan.enabled = off to run the query on the CPU.")));
}

/*
 * Read a join's inner table whole (the same batch interface: mount rule,
 * receipt record, bounding), into one array per column, and hash it on the
 * join key.  Dictionary keys are coded as the rows arrive.
 */
static void
load_inner(GsPreAggState *s)
{
	DfdwScan   *scan = dfdw_batch_begin(s->css.ss.ps.state, s->inner_rel, s->inner_attnos, s->cxt);
	uint64		total = dfdw_batch_row_count(scan);
	GsInner    *in = &s->inner;
	DfdwBatch	b;
	uint32		off = 0;
	bool		any_keep = false;
	GsColumn	keycol;

	if (total > (uint64) gs_guc_join_max_inner_rows)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("the inner table of a GpuPreAgg join has %llu rows", (unsigned long long) total),
				 errdetail("gpu_scan.join_max_inner_rows is %d.", gs_guc_join_max_inner_rows),
				 errhint("Raise gpu_scan.join_max_inner_rows, or SET gpu_scan.enable_preagg = off.")));
	in->n = (uint32) total;
	for (int i = 0; i < s->gc.ncols; i++)
		if (s->gc.cols[i].side == 1)
		{
			in->data[i] = MemoryContextAllocHuge(s->cxt, Max(total, 1) * gs_kind_width(s->gc.cols[i].kind));
			in->valid[i] = MemoryContextAllocHuge(s->cxt, (Max(total, 1) + 7) / 8);
			memset(in->valid[i], 0xFF, (Max(total, 1) + 7) / 8);
			if (s->gc.cols[i].mode == GS_COL_NULLS)
				memset(in->data[i], 0, Max(total, 1));
		}
	in->keep = MemoryContextAllocHuge(s->cxt, (Max(total, 1) + 7) / 8);
	memset(in->keep, 0xFF, (Max(total, 1) + 7) / 8);
	while (dfdw_batch_next(scan, &b))
	{
		CHECK_FOR_INTERRUPTS();
		if (off + (uint64) b.nrows > total)
			ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
							errmsg("sealed table \"%s\" has more rows than its manifest says",
								   RelationGetRelationName(s->inner_rel))));
		for (int i = 0; i < s->gc.ncols; i++)
		{
			const DsealColBuf *cb;
			size_t		w = gs_kind_width(s->gc.cols[i].kind);

			if (s->gc.cols[i].side != 1)
				continue;
			cb = &b.cols[s->colbatch[i]];
			if (s->gc.cols[i].mode == GS_COL_VALUE)
				memcpy(in->data[i] + (size_t) off * w, cb->fixed, (size_t) b.nrows * w);
			else if (s->gc.cols[i].mode == GS_COL_DICT)
				dict_encode(&s->dict[i], cb, (int32 *) in->data[i] + off);
			if (cb->any_null)
				for (uint32 r = 0; r < b.nrows; r++)
					if (colbuf_is_null(cb, r))
						in->valid[i][(off + r) >> 3] &= ~(1u << ((off + r) & 7));
		}
		if (b.keep)
		{
			any_keep = true;
			for (uint32 r = 0; r < b.nrows; r++)
				if (!(b.keep[r >> 3] & (1u << (r & 7))))
					in->keep[(off + r) >> 3] &= ~(1u << ((off + r) & 7));
		}
		off += b.nrows;
	}
	in->n = off;
	dfdw_batch_end(scan);
	if (!any_keep)
		in->keep = NULL;
	keycol = (GsColumn) {in->data[s->gc.join_inner_keycol], in->valid[s->gc.join_inner_keycol],
	s->gc.cols[s->gc.join_inner_keycol].kind, 1};
	if (!gs_join_hash_build(&s->res->jh, &keycol, in->keep, in->n))
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory for the join's inner hash")));
	s->st.inner_rows = in->n;
}

/* The host table does not spill: stop, with advice, before it eats the backend's memory. */
static void
check_group_limit(GsPreAggState *s)
{
	if (s->res->host.used <= (uint32) gs_guc_max_groups)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg("GpuPreAgg over \"%s\" has more than %d groups", get_rel_name(s->gc.relid), gs_guc_max_groups),
			 errdetail("Its group table is in memory and does not spill to disk."),
			 errhint("SET gpu_scan.enable_preagg = off for this query (HashAggregate spills), or raise "
					 "gpu_scan.max_groups.")));
}

/* C collation's order (varstr_cmp): bytes, then the shorter first; -1, 0 or 1. */
static inline int
bytes_cmp(const uint8 *a, uint32 la, const uint8 *b, uint32 lb)
{
	int			c;

	if (la > 0 && lb > 0 && a[0] != b[0])
		return a[0] < b[0] ? -1 : 1;
	c = memcmp(a, b, Min(la, lb));
	if (c != 0)
		return c < 0 ? -1 : 1;
	return la < lb ? -1 : la > lb ? 1 : 0;
}

/* varstr_cmp's answer as -1, 0 or 1. */
static inline int
coll_cmp(const uint8 *a, uint32 la, const uint8 *b, uint32 lb, Oid coll)
{
	int			c;

	if (la == lb && memcmp(a, b, la) == 0)
		return 0;
	c = varstr_cmp((const char *) a, (int) la, (const char *) b, (int) lb, coll);
	return c < 0 ? -1 : c > 0 ? 1 : 0;
}

/*
 * Fold one batch into the min/max of text aggregates (GS_AGG_HOST; lo_i -1
 * for min, 1 for max): over the rows the kernels would aggregate (kept by
 * contribution bounding, true under the filter), not NULL, compared as
 * text_smaller/text_larger compare (varstr_cmp under the aggregate's
 * collation; bytes under "C").  The planner allows them only without GROUP
 * BY and join, so there is one group, and only under a deterministic
 * collation, under which strings that compare equal are the same bytes.
 */
static void
host_text_fold(GsPreAggState *s, const GsParams *p, const DfdwBatch *b)
{
	const uint32 *sel = NULL;

	for (int a = 0; a < s->gc.naggs; a++)
	{
		const GsAgg *g = &s->gc.aggs[a];
		const DsealColBuf *cb;
		const uint8 *best = NULL;
		uint32		blen = 0;
		bool		have = s->text_have[a],
					changed = false,
					bytes = lc_collate_is_c(s->gc.aggcoll[a]);
		int			want = g->lo_i < 0 ? -1 : 1;

		if (g->op != GS_AGG_HOST)
			continue;
		if (sel == NULL && (p->nprog > 0 || p->keep != NULL))
		{
			uint32		words = (uint32) gs_bitmap_words(b->nrows);

			if (s->sel_words < words)
			{
				s->sel = MemoryContextAlloc(s->cxt, sizeof(uint32) * Max(words, 1));
				s->sel_words = words;
			}
			gs_host_filter(p, s->sel);
			sel = s->sel;
		}
		cb = &b->cols[s->colbatch[g->col]];
		if (have)
		{
			best = (const uint8 *) s->text_val[a];
			blen = s->text_len[a];
		}
		for (uint32 r = 0; r < b->nrows; r++)
		{
			uint32		len;
			const uint8 *v;

			if ((sel != NULL && !(sel[r >> 5] & (1u << (r & 31)))) || colbuf_is_null(cb, r))
				continue;
			v = colbuf_var_at(cb, r, &len);
			if (!have || (bytes ? bytes_cmp(v, len, best, blen) : coll_cmp(v, len, best, blen, s->gc.aggcoll[a])) == want)
			{
				best = v;
				blen = len;
				have = true;
				changed = true;
			}
		}
		if (!changed)
			continue;
		if (s->text_cap[a] < blen || s->text_val[a] == NULL)
		{
			char	   *nv = MemoryContextAlloc(s->cxt, Max(blen, 16) * 2);

			s->text_cap[a] = Max(blen, 16) * 2;
			s->text_val[a] = nv;
		}
		memmove(s->text_val[a], best, blen);
		s->text_len[a] = blen;
		s->text_have[a] = true;
	}
}

/* Read every row group through the kernels into the host table. */
static void
preagg_run(GsPreAggState *s)
{
	DfdwBatch	b;
	char		err[512];
	uint32		cap = (uint32) Min(Max((int64) s->est_groups * 2, 1024), 1 << 22);

	check_dp_args(s);
	if (OidIsValid(s->gc.inner_relid))
		load_inner(s);
	if (!gs_host_table_init(&s->res->host, cap, s->gc.naggs))
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory for the gpu_scan group table")));
	s->res->host_init = true;
	if (s->gpu)
	{
		/* the device table: twice the estimate, at least 64k slots; overflow goes to the host */
		uint32		dcap = 1u << 16;

		while (dcap < (uint32) Min((int64) s->est_groups * 2, 1 << 24))
			dcap <<= 1;
		if (gs_guc_device_table_slots > 0)
		{
			dcap = 2;
			while (dcap < (uint32) gs_guc_device_table_slots)
				dcap <<= 1;
		}
		s->res->dev = gs_cuda_preagg_begin(dcap, s->gc.naggs, err, sizeof(err));
		if (s->res->dev == NULL)
			device_error(err);
		if (OidIsValid(s->gc.inner_relid))
		{
			GsParams	p;

			batch_params(&s->gc, s->colbatch, s->dict, NULL, NULL, s->cxt, &s->zeros, &s->zeros_len,
						 &s->inner, &p);
			gs_join_attach(&p, &s->res->jh, s->gc.join_outer_keycol);
			if (!gs_cuda_preagg_set_inner(s->res->dev, &p, err, sizeof(err)))
				device_error(err);
		}
	}
	while (dfdw_batch_next(s->scan, &b))
	{
		GsParams	p;

		CHECK_FOR_INTERRUPTS();
		batch_params(&s->gc, s->colbatch, s->dict, &b, dfdw_batch_memory(s->scan), s->cxt, &s->zeros,
					 &s->zeros_len, &s->inner, &p);
		if (OidIsValid(s->gc.inner_relid))
			gs_join_attach(&p, &s->res->jh, s->gc.join_outer_keycol);
		s->st.batches++;
		s->st.rows_in += b.nrows;
		host_text_fold(s, &p, &b);
		if (s->gpu)
		{
			if (!gs_cuda_preagg_batch(s->res->dev, &p, &s->res->host, err, sizeof(err)))
				device_error(err);
		}
		else
		{
			int64		n = gs_host_preagg(&p, &s->res->host, NULL);

			if (n < 0)
				ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory in the gpu_scan group table")));
			s->st.rows_selected += n;
		}
		check_group_limit(s);
	}
	if (s->gpu)
	{
		GsCudaStats cs;

		if (!gs_cuda_preagg_finish(s->res->dev, &s->res->host, err, sizeof(err)))
			device_error(err);
		check_group_limit(s);	/* the device's groups are in the host table now */
		gs_cuda_preagg_stats(s->res->dev, &cs);
		s->st.rows_selected = cs.rows_selected;
		s->st.bytes_h2d = cs.bytes_h2d;
		s->st.bytes_d2h = cs.bytes_d2h;
		s->st.rows_overflow = cs.rows_overflow;
		s->st.kernel_ms = cs.kernel_ms;
		gs_cuda_preagg_free(s->res->dev);
		s->res->dev = NULL;
	}
	s->groups = 0;
	for (uint32 i = 0; i < s->res->host.t.cap; i++)
		s->groups += s->res->host.t.state[i] == GS_SLOT_READY && s->res->host.t.rows[i] > 0;
	s->done = true;
	s->emit_slot = 0;
	s->emitted_empty = false;
}

/* A key's Datum from its kernel value, by the column's kernel kind (its stored encoding). */
static Datum
key_datum(GsPreAggState *s, int k, int64 v)
{
	int			col = s->gc.keycol[k];

	if (s->gc.cols[col].mode == GS_COL_DICT)
		return s->dict[col].values[v];
	switch (s->gc.cols[col].kind)
	{
		case GS_BOOL:
			return BoolGetDatum(v != 0);
		case GS_I16:
			return Int16GetDatum((int16) v);
		case GS_I32:
			return Int32GetDatum((int32) v);
		case GS_F32:
			return Float4GetDatum((float4) gs_f64_from_order((uint64) v));
		case GS_F64:
			return Float8GetDatum(gs_f64_from_order((uint64) v));
		default:
			return Int64GetDatum(v);
	}
}

/*
 * sum(int8)'s and avg(int8)'s partial state as int8_avg_serialize writes it
 * (gs_compile.c allows no other aggregate here): the count (int64), then the
 * int128 sum as numericvar_serialize writes a number: int32 ndigits, weight,
 * sign and dscale, then int16 base-10000 digits, most significant first.
 */
static Datum
int8_poly_state(int64 count, uint64 lo, uint64 hi)
{
	uint128		u = ((uint128) hi << 64) | lo;
	bool		neg = (int128) u < 0;
	uint128		m = neg ? -u : u;
	int16		digits[12];		/* 2^127 has 39 decimal digits: 10 base-10000 digits */
	int			n = 0;
	StringInfoData sb;

	while (m != 0)
	{
		digits[n++] = (int16) (m % 10000);
		m /= 10000;
	}
	pq_begintypsend(&sb);
	pq_sendint64(&sb, count);
	pq_sendint32(&sb, n);
	pq_sendint32(&sb, n == 0 ? 0 : n - 1);	/* weight: the first digit's power of 10000 */
	pq_sendint32(&sb, neg ? 0x4000 : 0x0000);	/* NUMERIC_NEG, NUMERIC_POS */
	pq_sendint32(&sb, 0);		/* dscale */
	for (int i = n - 1; i >= 0; i--)
		pq_sendint16(&sb, digits[i]);
	return PointerGetDatum(pq_endtypsend(&sb));
}

/* A partial aggregate's Datum from its accumulator words; *isnull when it has none. */
static Datum
partial_datum(GsPreAggState *s, int a, const uint64 *w, bool *isnull)
{
	GsAgg	   *g = &s->gc.aggs[a];
	Oid			t = s->gc.aggouttype[a];
	double		d;

	*isnull = false;
	switch (g->op)
	{
		case GS_AGG_COUNT_STAR:
		case GS_AGG_COUNT:
			return Int64GetDatum((int64) w[0]);
		case GS_AGG_SUM_I64:
			if (t == INT8ARRAYOID)
			{
				/* avg(int2|int4): int4_avg_accum's {count, sum}, {0, 0} for no input */
				Datum		e[2] = {Int64GetDatum((int64) w[1]), Int64GetDatum((int64) w[0])};

				return PointerGetDatum(construct_array(e, 2, INT8OID, sizeof(int64), FLOAT8PASSBYVAL,
													   TYPALIGN_DOUBLE));
			}
			*isnull = w[1] == 0;
			return Int64GetDatum((int64) w[0]);
		case GS_AGG_AVG_F64:
			{
				/* avg(float4|float8): float8_accum's {N, Sx, Sxx}, {0, 0, 0} for no input */
				double		st[3];
				Datum		e[3];

				if (gs_float_accum_state(w, st) != 0)
					ereport(ERROR,
							(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
							 errmsg("value out of range: overflow"),
							 errdetail("The sum of the finite inputs of %s, or of their squared deviations, "
									   "is beyond the range of double precision.",
									   strVal(list_nth(s->gc.aggnames, a))),
							 errhint("Scale the values down before aggregating them, e.g. avg(x / 1e100) * 1e100.")));
				for (int i = 0; i < 3; i++)
					e[i] = Float8GetDatum(st[i]);
				return PointerGetDatum(construct_array(e, 3, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL,
													   TYPALIGN_DOUBLE));
			}
		case GS_AGG_SUM_F64:
			*isnull = w[1] == 0;
			memcpy(&d, &w[0], 8);
			if (w[1] > 0 && isinf(d) && w[2] == 0)
				ereport(ERROR,
						(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
						 errmsg("value out of range: overflow"),
						 errdetail("The sum of the finite inputs of %s is beyond the range of double precision.",
								   strVal(list_nth(s->gc.aggnames, a))),
						 errhint("Scale the values down before adding them, e.g. sum(x / 1e100) * 1e100.")));
			return Float8GetDatum(d);
		case GS_AGG_MIN_I64:
		case GS_AGG_MAX_I64:
			*isnull = w[1] == 0;
			if (t == INT2OID)
				return Int16GetDatum((int16) (int64) w[0]);
			if (t == INT4OID || t == DATEOID)
				return Int32GetDatum((int32) (int64) w[0]);
			return Int64GetDatum((int64) w[0]);
		case GS_AGG_MIN_F64:
		case GS_AGG_MAX_F64:
			*isnull = w[1] == 0;
			d = gs_f64_from_order(w[0]);
			return t == FLOAT4OID ? Float4GetDatum((float4) d) : Float8GetDatum(d);
		case GS_AGG_SUM_I128:
			*isnull = w[0] == 0;
			return *isnull ? (Datum) 0 : int8_poly_state((int64) w[0], w[1], w[2]);
		case GS_AGG_HOST:
			*isnull = !s->text_have[a];
			return *isnull ? (Datum) 0 : PointerGetDatum(cstring_to_text_with_len(s->text_val[a], s->text_len[a]));
		case GS_AGG_DP_COUNT:
			return PointerGetDatum(dfdw_dp_partial_state((int64) w[0], 0, 0, &s->dpargs[a], false));
		default:				/* DP sums: count, int128 (lo, hi) */
			return PointerGetDatum(dfdw_dp_partial_state((int64) w[0], (int64) w[2], w[1], &s->dpargs[a], true));
	}
}

static TupleTableSlot *
preagg_next(ScanState *ss)
{
	GsPreAggState *s = (GsPreAggState *) ss;
	TupleTableSlot *slot = ss->ss_ScanTupleSlot;
	GsTable    *t;
	MemoryContext old;

	/*
	 * The partial states that are not by value (avg's arrays, DP states) are
	 * built in the per-tuple context, which ExecScan resets before fetching
	 * the next group: the Finalize Agg above has combined (copied) each by
	 * then, and the query's context would keep them all, one per group.
	 */
	if (!s->done)
		preagg_run(s);
	t = &s->res->host.t;
	while (s->emit_slot < t->cap && (t->state[s->emit_slot] != GS_SLOT_READY || t->rows[s->emit_slot] == 0))
		s->emit_slot++;
	ExecClearTuple(slot);
	if (s->emit_slot >= t->cap)
	{
		/*
		 * An aggregate without GROUP BY over no row still has its one row,
		 * with empty partial states: a DP aggregate's carries its epsilon and
		 * bounds, so the answer is noise, as on the plain plan.  Emitting
		 * nothing would finalise to NULL, which says the rows were none.
		 */
		if (s->gc.nkeys == 0 && s->groups == 0 && !s->emitted_empty)
		{
			uint64		zero[GS_ACC_WORDS] = {0};
			int			n = 0;

			s->emitted_empty = true;
			old = MemoryContextSwitchTo(ss->ps.ps_ExprContext->ecxt_per_tuple_memory);
			for (int a = 0; a < s->gc.naggs; a++, n++)
				slot->tts_values[n] = partial_datum(s, a, zero, &slot->tts_isnull[n]);
			MemoryContextSwitchTo(old);
			for (; n < slot->tts_tupleDescriptor->natts; n++)
				slot->tts_isnull[n] = true;
			return ExecStoreVirtualTuple(slot);
		}
		return slot;
	}
	{
		uint32		slotno = s->emit_slot++;
		const int64 *key = t->keys + (size_t) slotno * GS_MAX_KEYS;
		const uint64 *acc = t->acc + (size_t) slotno * t->naggs * GS_ACC_WORDS;
		int			n = 0;

		for (int k = 0; k < s->gc.nkeys; k++, n++)
		{
			slot->tts_isnull[n] = (t->nullmask[slotno] >> k) & 1;
			slot->tts_values[n] = slot->tts_isnull[n] ? (Datum) 0 : key_datum(s, k, key[k]);
		}
		old = MemoryContextSwitchTo(ss->ps.ps_ExprContext->ecxt_per_tuple_memory);
		for (int a = 0; a < s->gc.naggs; a++, n++)
			slot->tts_values[n] = partial_datum(s, a, acc + (size_t) a * GS_ACC_WORDS, &slot->tts_isnull[n]);
		MemoryContextSwitchTo(old);
		for (; n < slot->tts_tupleDescriptor->natts; n++)
			slot->tts_isnull[n] = true; /* junk columns of custom_scan_tlist (EXPLAIN only) */
	}
	return ExecStoreVirtualTuple(slot);
}

static bool
recheck_true(ScanState *ss, TupleTableSlot *slot)
{
	return true;
}

static TupleTableSlot *
preagg_exec(CustomScanState *node)
{
	return ExecScan(&node->ss, preagg_next, recheck_true);
}

static void
preagg_end(CustomScanState *node)
{
	GsPreAggState *s = (GsPreAggState *) node;

	if (s->scan)
		dfdw_batch_end(s->scan);
	s->scan = NULL;
	if (s->res)
		release_resources(s->res);
	if (s->rel)
		table_close(s->rel, AccessShareLock);
	s->rel = NULL;
	if (s->inner_rel)
		table_close(s->inner_rel, AccessShareLock);
	s->inner_rel = NULL;
}

static void
preagg_rescan(CustomScanState *node)
{
	GsPreAggState *s = (GsPreAggState *) node;

	release_resources(s->res);
	dfdw_batch_rescan(s->scan);
	memset(&s->st, 0, sizeof(s->st));
	memset(s->text_have, 0, sizeof(s->text_have));
	s->done = false;
}

/* "Device: GPU (name)" / "Device: CPU (host build of the kernels)" and the reason. */
static void
explain_device(bool gpu, ExplainState *es)
{
	if (dfdw_guc_explain_stable)
		ExplainPropertyText("Device", gpu ? "GPU" : "CPU (host build of the kernels)", es);
	else if (gpu)
		ExplainPropertyText("Device", psprintf("GPU: %s", gs_cuda_device_name()), es);
	else
		ExplainPropertyText("Device", psprintf("CPU (host build of the kernels): %s",
											   gs_device_unavailable_reason()), es);
}

static char *
name_list(List *names)
{
	StringInfoData b;
	ListCell   *lc;

	initStringInfo(&b);
	foreach(lc, names)
		appendStringInfo(&b, "%s%s", foreach_current_index(lc) ? ", " : "", strVal(lfirst(lc)));
	return b.data;
}

static void
explain_stats(const GsStats *st, bool gpu, ExplainState *es)
{
	ExplainPropertyInteger("Row Groups", NULL, (int64) st->batches, es);
	ExplainPropertyInteger("Rows Read", NULL, (int64) st->rows_in, es);
	ExplainPropertyInteger("Rows Selected", NULL, (int64) st->rows_selected, es);
	if (gpu)
	{
		ExplainPropertyInteger("Bytes To GPU", NULL, (int64) st->bytes_h2d, es);
		ExplainPropertyInteger("Bytes From GPU", NULL, (int64) st->bytes_d2h, es);
		ExplainPropertyInteger("Rows Aggregated On Host (table overflow)", NULL, (int64) st->rows_overflow, es);
		if (!dfdw_guc_explain_stable)
			ExplainPropertyFloat("Kernel Time", "ms", st->kernel_ms, 3, es);
	}
	else
		ExplainPropertyInteger("Bytes To GPU", NULL, 0, es);
}

static void
preagg_explain(CustomScanState *node, List *ancestors, ExplainState *es)
{
	GsPreAggState *s = (GsPreAggState *) node;

	CustomScan *cs = (CustomScan *) node->ss.ps.plan;

	ExplainPropertyText("Sealed Table", get_rel_name(s->gc.relid), es);
	if (OidIsValid(s->gc.inner_relid))
	{
		ExplainPropertyText("Join", psprintf("inner hash join with %s (loaded whole) on %s",
											 get_rel_name(s->gc.inner_relid), s->gc.join_text), es);
	}
	explain_device(s->gpu, es);
	if (cs->custom_exprs != NIL)
		ExplainPropertyText("Kernel Filter",
							deparse_expression((Node *) make_ands_explicit(cs->custom_exprs),
											   set_deparse_context_plan(es->deparse_cxt, node->ss.ps.plan,
																		ancestors),
											   OidIsValid(s->gc.inner_relid) || es->verbose, false), es);
	if (s->gc.nkeys > 0)
		ExplainPropertyText("Kernel Group Keys", name_list(s->gc.keynames), es);
	ExplainPropertyText("Partial Aggregates", name_list(s->gc.aggnames), es);
	if (es->analyze)
	{
		explain_stats(&s->st, s->gpu, es);
		if (OidIsValid(s->gc.inner_relid))
			ExplainPropertyInteger("Inner Rows", NULL, (int64) s->st.inner_rows, es);
		ExplainPropertyInteger("Groups", NULL, (int64) s->groups, es);
	}
}

static CustomExecMethods preagg_exec_methods = {
	.CustomName = "GpuPreAgg",
	.BeginCustomScan = preagg_begin,
	.ExecCustomScan = preagg_exec,
	.EndCustomScan = preagg_end,
	.ReScanCustomScan = preagg_rescan,
	.ExplainCustomScan = preagg_explain,
};

/* ---- GpuScan ----------------------------------------------------------------- */

static Node *
filter_create(CustomScan *cs)
{
	GsFilterState *s = (GsFilterState *) newNode(sizeof(GsFilterState), T_CustomScanState);

	gs_compiled_from_list(linitial(cs->custom_private), &s->gc);
	s->attnos = batch_attnos(&s->gc, lsecond(cs->custom_private), 0, s->colbatch);
	return (Node *) s;
}

static void
filter_begin(CustomScanState *node, EState *estate, int eflags)
{
	GsFilterState *s = (GsFilterState *) node;

	s->cxt = estate->es_query_cxt;
	s->gpu = gs_device_available();
	if (!(eflags & EXEC_FLAG_EXPLAIN_ONLY))
		s->scan = dfdw_batch_begin(estate, node->ss.ss_currentRelation, s->attnos, estate->es_query_cxt);
}

/* Filter the next row group (GPU or host) into s->sel; false at the end. */
static bool
filter_batch(GsFilterState *s)
{
	DfdwBatch	b;
	GsParams	p;
	char		err[512];
	uint32		n;

	if (!dfdw_batch_next(s->scan, &b))
		return false;
	batch_params(&s->gc, s->colbatch, NULL, &b, dfdw_batch_memory(s->scan), s->cxt, &s->zeros, &s->zeros_len,
				 NULL, &p);
	if (gs_bitmap_words(b.nrows) > s->sel_words)
	{
		s->sel_words = gs_bitmap_words(b.nrows);
		s->sel = MemoryContextAlloc(s->cxt, sizeof(uint32) * s->sel_words);
	}
	if (s->gpu)
	{
		if (!gs_cuda_filter(&p, s->sel, &n, &s->st.bytes_h2d, err, sizeof(err)))
			device_error(err);
		s->st.bytes_d2h += gs_bitmap_words(b.nrows) * 4;
	}
	else
		n = gs_host_filter(&p, s->sel);
	s->st.batches++;
	s->st.rows_in += b.nrows;
	s->st.rows_selected += n;
	s->nrows = b.nrows;
	s->pos = 0;
	s->have = true;
	return true;
}

static TupleTableSlot *
filter_next(ScanState *ss)
{
	GsFilterState *s = (GsFilterState *) ss;
	TupleTableSlot *slot = ss->ss_ScanTupleSlot;

	for (;;)
	{
		if (!s->have || s->pos >= s->nrows)
		{
			CHECK_FOR_INTERRUPTS();
			if (!filter_batch(s))
				return ExecClearTuple(slot);
		}
		while (s->pos < s->nrows)
		{
			uint32		w = s->sel[s->pos >> 5] >> (s->pos & 31);

			if (w == 0)
			{
				s->pos = (s->pos | 31) + 1;	/* rest of the word is empty */
				continue;
			}
			s->pos += __builtin_ctz(w);
			dfdw_batch_fill_slot(s->scan, slot, s->pos);
			s->pos++;
			return slot;
		}
	}
}

static TupleTableSlot *
filter_exec(CustomScanState *node)
{
	return ExecScan(&node->ss, filter_next, recheck_true);
}

static void
filter_end(CustomScanState *node)
{
	GsFilterState *s = (GsFilterState *) node;

	if (s->scan)
		dfdw_batch_end(s->scan);
	s->scan = NULL;
}

static void
filter_rescan(CustomScanState *node)
{
	GsFilterState *s = (GsFilterState *) node;

	dfdw_batch_rescan(s->scan);
	s->have = false;
}

static void
filter_explain(CustomScanState *node, List *ancestors, ExplainState *es)
{
	GsFilterState *s = (GsFilterState *) node;
	CustomScan *cs = (CustomScan *) node->ss.ps.plan;
	List	   *ctx = set_deparse_context_plan(es->deparse_cxt, node->ss.ps.plan, ancestors);

	ExplainPropertyText("Sealed Table", get_rel_name(s->gc.relid), es);
	explain_device(s->gpu, es);
	ExplainPropertyText("Kernel Filter",
						deparse_expression((Node *) make_ands_explicit(cs->custom_exprs), ctx, es->verbose, false),
						es);
	if (es->analyze)
		explain_stats(&s->st, s->gpu, es);
}

static CustomExecMethods filter_exec_methods = {
	.CustomName = "GpuScan",
	.BeginCustomScan = filter_begin,
	.ExecCustomScan = filter_exec,
	.EndCustomScan = filter_end,
	.ReScanCustomScan = filter_rescan,
	.ExplainCustomScan = filter_explain,
};

/* ---- registration -------------------------------------------------------------- */

static Node *
preagg_create_state(CustomScan *cs)
{
	GsPreAggState *s = (GsPreAggState *) preagg_create(cs);

	s->css.methods = &preagg_exec_methods;
	return (Node *) s;
}

static Node *
filter_create_state(CustomScan *cs)
{
	GsFilterState *s = (GsFilterState *) filter_create(cs);

	s->css.methods = &filter_exec_methods;
	return (Node *) s;
}

CustomScanMethods gs_preagg_scan_methods = {
	.CustomName = "GpuPreAgg",
	.CreateCustomScanState = preagg_create_state,
};

CustomScanMethods gs_filter_scan_methods = {
	.CustomName = "GpuScan",
	.CreateCustomScanState = filter_create_state,
};

void
gs_exec_init(void)
{
	RegisterCustomScanMethods(&gs_preagg_scan_methods);
	RegisterCustomScanMethods(&gs_filter_scan_methods);
}
