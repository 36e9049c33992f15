/*
 * seal.c: dstack_seal(table, columns, path) streams a table into a .dseal file.
 *
 * The rows come from "SELECT <columns> FROM <table>" run through SPI with our
 * own DestReceiver, so tuples stream straight from the executor into column
 * buffers without being materialised: memory stays bounded by one row group,
 * and row-level security, column privileges and partitioned tables behave as
 * for any query of the calling user.  Each full row group is handed to the
 * common/ writer, whose thread compresses, encrypts and appends it while
 * this backend fills the next one with the writer's other set of buffers.
 * The thread never calls PostgreSQL; its errors come back through the next
 * dseal_writer_add_row_group() or dseal_writer_finish() and are raised here,
 * on the backend's thread.
 *
 * Resources outside palloc (the writer's thread, fd, OpenSSL context and
 * malloc'd buffers, the column buffers, the owner key) are released in
 * PG_FINALLY, so an error or a cancel leaves no thread, no temporary file and
 * no key in memory: dseal_writer_free() stops and joins the thread (it gives
 * up a row group between two chunks) before it frees anything.  A callback on
 * the function's memory context does the same when a FATAL error (a
 * terminated backend) exits without reaching PG_FINALLY.
 */
#include "postgres.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "access/htup_details.h"
#include "access/relation.h"
#include "catalog/pg_authid.h"
#include "commands/progress.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "tcop/dest.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/backend_progress.h"
#include "utils/plancache.h"

#include "dstack_seal.h"
#include "pg_common.h"

PG_FUNCTION_INFO_V1(dstack_seal);

/* Streaming state, reached from the DestReceiver callbacks. */
typedef struct SealState
{
	DestReceiver pub;			/* must be first */
	int			ncols;
	DsealTypeMap *types;
	DsealColBuf *bufs;			/* malloc'd inside; freed in PG_FINALLY */
	DsealWriter *writer;
	uint32		rows_per_group;
	uint64		rows;
	uint64		next_progress;
	double		estimate;		/* pg_class.reltuples, for progress messages */
	MemoryContext rowcxt;		/* reset after every row */
	const char *table;
} SealState;

/*
 * Hand a full row group to the writer; st->bufs come back empty (the
 * writer's other set).  An error raised here may be the previous row
 * group's, met by the writer thread.
 */
static void
seal_flush(SealState *st)
{
	DErr		err = {0};

	if (st->bufs[0].nrows == 0)
		return;
	if (!dseal_writer_add_row_group(st->writer, st->bufs, &err))
		derr_ereport(&err, 0, "Check free space and permissions in the output directory.");
	pgstat_progress_update_param(PROGRESS_COPY_BYTES_PROCESSED,
								 (int64) dseal_writer_bytes(st->writer));
}

/* Progress: pg_stat_progress_copy always, a NOTICE every progress_interval rows. */
static void
seal_progress(SealState *st)
{
	pgstat_progress_update_param(PROGRESS_COPY_TUPLES_PROCESSED, (int64) st->rows);
	if (dseal_guc_progress_interval > 0 && st->rows >= st->next_progress)
	{
		if (st->estimate > 0)
			ereport(NOTICE,
					(errmsg("dstack_seal: %llu rows of %s sealed (about %.0f%%)",
							(unsigned long long) st->rows, st->table,
							Min(100.0, 100.0 * (double) st->rows / st->estimate))));
		else
			ereport(NOTICE,
					(errmsg("dstack_seal: %llu rows of %s sealed",
							(unsigned long long) st->rows, st->table)));
		st->next_progress += dseal_guc_progress_interval;
	}
}

static bool
seal_receive(TupleTableSlot *slot, DestReceiver *self)
{
	SealState  *st = (SealState *) self;
	MemoryContext old;

	CHECK_FOR_INTERRUPTS();
	slot_getallattrs(slot);
	old = MemoryContextSwitchTo(st->rowcxt);
	for (int i = 0; i < st->ncols; i++)
		dseal_typemap_append(&st->types[i], &st->bufs[i], slot->tts_values[i], slot->tts_isnull[i]);
	MemoryContextSwitchTo(old);
	MemoryContextReset(st->rowcxt);
	st->rows++;
	if (st->bufs[0].nrows >= st->rows_per_group)
		seal_flush(st);
	if ((st->rows & 1023) == 0 || st->rows == st->next_progress)
		seal_progress(st);
	return true;
}

static void
seal_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
}

static void
seal_shutdown(DestReceiver *self)
{
}

static void
seal_destroy(DestReceiver *self)
{
}

/*
 * Release what the seal holds outside palloc: the writer (its thread first,
 * then fd, temporary file, keys, buffers) and the column buffers.  Idempotent.
 * PG_FINALLY calls it on success and on errors; as a reset callback of the
 * function's memory context it also runs when a FATAL error
 * (pg_terminate_backend) exits the backend without unwinding to PG_FINALLY:
 * the transaction's portals are dropped before exit(), so the writer's thread
 * is joined before exit() runs OpenSSL's cleanup under it, and the temporary
 * file is removed.
 */
static void
seal_release(void *arg)
{
	SealState  *st = (SealState *) arg;

	dseal_writer_free(st->writer);
	st->writer = NULL;
	for (int i = 0; st->bufs && i < st->ncols; i++)
		colbuf_free(&st->bufs[i]);
}

/* Writing server files is a privilege of its own, as for COPY TO a file. */
static void
check_privileges(Oid relid)
{
	if (!has_privs_of_role(GetUserId(), ROLE_PG_WRITE_SERVER_FILES))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to seal table \"%s\"", get_rel_name(relid)),
				 errdetail("dstack_seal() writes a file on the database server."),
				 errhint("Run it as a superuser or a member of pg_write_server_files.")));
}

/* Build "SELECT cols FROM table", checking every requested column exists. */
static char *
build_query(Oid relid, ArrayType *cols, const char **table_out)
{
	Relation	rel = relation_open(relid, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	StringInfoData q;
	char	   *table = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
												   RelationGetRelationName(rel));
	int			n = 0;

	initStringInfo(&q);
	appendStringInfoString(&q, "SELECT ");
	if (cols == NULL)
	{
		for (int i = 0; i < desc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);

			if (att->attisdropped)
				continue;
			appendStringInfo(&q, "%s%s", n++ ? ", " : "", quote_identifier(NameStr(att->attname)));
		}
	}
	else
	{
		Datum	   *elems;
		bool	   *nulls;
		int			nelems;

		deconstruct_array(cols, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &nelems);
		for (int i = 0; i < nelems; i++)
		{
			char	   *name;

			if (nulls[i])
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("column list of dstack_seal() contains a NULL")));
			name = TextDatumGetCString(elems[i]);
			if (get_attnum(relid, name) == InvalidAttrNumber)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_COLUMN),
						 errmsg("column \"%s\" of relation %s does not exist", name, table),
						 errhint("Column names are case-sensitive; list them as they appear in \\d %s.", table)));
			appendStringInfo(&q, "%s%s", n++ ? ", " : "", quote_identifier(name));
		}
	}
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("no columns to seal in %s", table),
				 errhint("Pass a non-empty column list, or seal a table that has columns.")));
	appendStringInfo(&q, " FROM %s", table);
	relation_close(rel, AccessShareLock);
	*table_out = table;
	return q.data;
}

/*
 * The default file name is the table's name: it must be one harmless path
 * component, or "<output_dir>/<name>.dseal" could leave the output directory
 * ("../x"), land in a subdirectory ("a/b") or hide the file (".x").  Names
 * with control characters would also garble file listings and logs.  Refused
 * rather than encoded, so the file name always equals the table name.
 */
static void
check_file_name(const char *name)
{
	const char *why = NULL;

	if (name[0] == '\0')
		why = "it is empty";
	else if (strchr(name, '/') != NULL)
		why = "it contains \"/\"";
	else if (name[0] == '.')
		why = "it starts with \".\"";
	else
		for (const unsigned char *p = (const unsigned char *) name; *p; p++)
			if (*p < 0x20 || *p == 0x7f)
			{
				why = "it contains a control character";
				break;
			}
	if (why)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("table name \"%s\" cannot be used as a file name", name),
				 errdetail("dstack_seal() writes <output_dir>/<table>.dseal by default, and %s, so the file "
						   "would not be a plain file directly in the output directory.", why),
				 errhint("Rename the table, or pass an explicit path as the third argument of dstack_seal().")));
}

/* realpath(3) of a directory, or an error that names it. */
static char *
resolve_dir(const char *dir, const char *what)
{
	char	   *real = realpath(dir, NULL);
	char	   *out;

	if (real == NULL)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not resolve %s \"%s\": %m", what, dir),
				 errhint("Create the directory, or set dstack_seal.output_dir to an existing directory.")));
	out = pstrdup(real);
	free(real);
	return out;
}

/*
 * Output path: the argument, else <output_dir>/<table>.dseal, confined to
 * the output directory; never overwrite a dataset or its .json (the writer
 * creates the final name exclusively as well, so a seal that starts after
 * this check still cannot replace one).
 */
static char *
resolve_path(const SealRecipe *r, Oid relid, text *path_arg)
{
	char	   *path;
	struct stat sb;

	if (path_arg)
		path = text_to_cstring(path_arg);
	else
	{
		char	   *name = get_rel_name(relid);
		char	   *dir_real;
		char	   *parent;
		char	   *parent_real;
		size_t		n;

		if (r->output_dir == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("no output path for the sealed dataset"),
					 errhint("Pass a path to dstack_seal() or set dstack_seal.output_dir.")));
		if (!is_absolute_path(r->output_dir))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_NAME),
					 errmsg("output directory \"%s\" is not absolute", r->output_dir),
					 errhint("Set dstack_seal.output_dir to an absolute directory.")));
		check_file_name(name);
		path = psprintf("%s/%s.dseal", r->output_dir, name);
		/* and, whatever the name, the file's directory must be the output directory or below */
		dir_real = resolve_dir(r->output_dir, "output directory");
		parent = pstrdup(path);
		get_parent_directory(parent);
		parent_real = resolve_dir(parent, "directory of sealed dataset");
		n = strlen(dir_real);
		if (strncmp(parent_real, dir_real, n) != 0 ||
			(parent_real[n] != '\0' && parent_real[n] != '/' && strcmp(dir_real, "/") != 0))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_NAME),
					 errmsg("sealed dataset \"%s\" would be written outside the output directory", path),
					 errdetail("Its directory resolves to \"%s\", which is not inside \"%s\".", parent_real, dir_real),
					 errhint("Pass an explicit path to dstack_seal().")));
	}
	if (!is_absolute_path(path))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("output path \"%s\" is not absolute", path),
				 errhint("Give an absolute path, or set dstack_seal.output_dir to an absolute directory.")));
	/* lstat: a dangling symlink under the name counts as existing */
	if (lstat(path, &sb) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_FILE),
				 errmsg("sealed dataset \"%s\" already exists", path),
				 errhint("Remove or move the old dataset (and its .json manifest), or pass another path.")));
	if (lstat(psprintf("%s.json", path), &sb) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_FILE),
				 errmsg("manifest \"%s.json\" of sealed dataset \"%s\" already exists", path, path),
				 errdetail("No dataset has that name, but a detached manifest does."),
				 errhint("Remove or move the old manifest, or pass another path.")));
	return path;
}

/* Turn the canonical manifest text into the jsonb we return. */
static Datum
manifest_jsonb(const DsealManifest *m)
{
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(m->json));
}

Datum
dstack_seal(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	ArrayType  *cols = PG_ARGISNULL(1) ? NULL : PG_GETARG_ARRAYTYPE_P(1);
	text	   *path_arg = PG_ARGISNULL(2) ? NULL : PG_GETARG_TEXT_PP(2);
	SealRecipe	recipe;
	SealState  *st = palloc0(sizeof(SealState));
	Datum		result = (Datum) 0;
	MemoryContext fcxt = CurrentMemoryContext;
	MemoryContextCallback *release = palloc0(sizeof(MemoryContextCallback));

	check_privileges(relid);
	memset(&recipe, 0, sizeof(recipe));
	release->func = seal_release;
	release->arg = st;
	MemoryContextRegisterResetCallback(fcxt, release);
	PG_TRY();
	{
		const char *query;
		char	   *path;
		DsealWriterOptions opts = {0};
		DsealColumnDef *defs;
		SPIPlanPtr	plan;
		SPIExecuteOptions eo = {0};
		TupleDesc	desc;
		DErr		err = {0};
		const DsealManifest *m;
		int			rc;

		seal_recipe_load(&recipe);
		path = resolve_path(&recipe, relid, path_arg);
		query = build_query(relid, cols, &st->table);

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		plan = SPI_prepare(query, 0, NULL);
		if (plan == NULL)
			elog(ERROR, "could not plan \"%s\": %s", query, SPI_result_code_string(SPI_result));
		/* schema from the query's result columns */
		{
			List	   *plist = SPI_plan_get_plan_sources(plan);
			CachedPlanSource *ps = (CachedPlanSource *) linitial(plist);

			desc = ps->resultDesc;
		}
		st->ncols = desc->natts;
		/* in fcxt, not SPI's context: seal_release() may run after SPI's is gone */
		st->types = MemoryContextAllocZero(fcxt, sizeof(DsealTypeMap) * st->ncols);
		st->bufs = MemoryContextAllocZero(fcxt, sizeof(DsealColBuf) * st->ncols);
		defs = palloc0(sizeof(DsealColumnDef) * st->ncols);
		st->rows_per_group = (uint32) dseal_guc_rows_per_group;
		for (int i = 0; i < st->ncols; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);
			int32		basetypmod = att->atttypmod;
			Oid			basetype = getBaseTypeAndTypmod(att->atttypid, &basetypmod);

			dseal_typemap_init(&st->types[i], att->atttypid, att->atttypmod);
			if (!colbuf_init(&st->bufs[i], st->types[i].enc, Min(st->rows_per_group, 65536), &err))
				derr_ereport(&err, 0, NULL);
			defs[i].name = NameStr(att->attname);
			/* the base type: a domain's name and checks are the silo's, not the CVM's */
			defs[i].type = format_type_with_typemod(basetype, basetypmod);
			defs[i].enc = st->types[i].enc;
			defs[i].repr = st->types[i].repr;
		}

		opts.path = path;
		opts.table = st->table;
		opts.ncols = st->ncols;
		opts.cols = defs;
		opts.recipe = recipe.recipe;
		opts.recipient_purpose = recipe.recipient_purpose;
		memcpy(opts.recipient_pub, recipe.recipient_pub, DC_PUBKEY_LEN);
		memcpy(opts.recipient_chain, recipe.recipient_chain, sizeof(opts.recipient_chain));
		opts.rows_per_group = st->rows_per_group;
		opts.zstd_level = dseal_guc_compression_level;
		opts.write_detached_manifest = true;
		st->writer = dseal_writer_open(&opts, recipe.owner_sk, &err);
		seal_recipe_scrub(&recipe);
		if (st->writer == NULL)
			derr_ereport(&err, 0, "Check that the output directory exists and is writable by the server.");

		st->pub.receiveSlot = seal_receive;
		st->pub.rStartup = seal_startup;
		st->pub.rShutdown = seal_shutdown;
		st->pub.rDestroy = seal_destroy;
		st->pub.mydest = DestNone;
		st->rowcxt = AllocSetContextCreate(CurrentMemoryContext, "dstack_seal row",
										   ALLOCSET_DEFAULT_SIZES);
		{
			Relation	rel = relation_open(relid, AccessShareLock);

			st->estimate = rel->rd_rel->reltuples;
			relation_close(rel, AccessShareLock);
		}
		st->next_progress = dseal_guc_progress_interval > 0 ? (uint64) dseal_guc_progress_interval : UINT64_MAX;

		pgstat_progress_start_command(PROGRESS_COMMAND_COPY, relid);
		pgstat_progress_update_param(PROGRESS_COPY_COMMAND, PROGRESS_COPY_COMMAND_TO);
		pgstat_progress_update_param(PROGRESS_COPY_TYPE, PROGRESS_COPY_TYPE_FILE);

		eo.read_only = true;
		eo.dest = (DestReceiver *) st;
		rc = SPI_execute_plan_extended(plan, &eo);
		/* SPI reports SPI_OK_UTILITY for a SELECT whose rows go to a non-SPI receiver */
		if (rc != SPI_OK_SELECT && rc != SPI_OK_UTILITY)
			elog(ERROR, "sealing query failed: %s", SPI_result_code_string(rc));
		seal_flush(st);
		seal_progress(st);
		if (!dseal_writer_finish(st->writer, &m, &err))
			derr_ereport(&err, 0, err.code == DERR_IO && err.sys_errno == EEXIST
						 ? "Remove or move the other dataset (and its .json manifest) and seal again, or pass another path."
						 : "Check free space and permissions in the output directory.");
		{
			MemoryContext spicxt = MemoryContextSwitchTo(fcxt);

			result = manifest_jsonb(m);
			MemoryContextSwitchTo(spicxt);
		}
		pgstat_progress_end_command();
		SPI_finish();
	}
	PG_FINALLY();
	{
		seal_recipe_scrub(&recipe);
		seal_release(st);
	}
	PG_END_TRY();
	PG_RETURN_DATUM(result);
}
