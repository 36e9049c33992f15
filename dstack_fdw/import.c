/*
 * import.c: IMPORT FOREIGN SCHEMA from a directory of sealed datasets.
 *
 *   IMPORT FOREIGN SCHEMA sealed FROM SERVER cardio INTO public
 *     OPTIONS (directory '/var/lib/pg_dstack/sealed');
 *
 * Every <name>.dseal file in the directory becomes foreign table <name>, with
 * the columns and types of its signed manifest and the options path and
 * owner.  Only files whose manifest signature verifies are imported, and a
 * manifest's type names are parsed and printed back by PostgreSQL, never
 * spliced into the DDL as they stand (see column_type()).  The
 * remote schema name is the directory when no directory option is given
 * (write it as a quoted identifier).  LIMIT TO / EXCEPT name tables.
 * Superuser only: the directory (option or remote schema) is read on the
 * server and becomes the tables' path option.
 */
#include "postgres.h"

#include <dirent.h>
#include <sys/stat.h>

#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/parse_type.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "dstack_fdw.h"
#include "hex.h"
#include "pg_common.h"

/* Is name selected by the statement's LIMIT TO / EXCEPT list? */
static bool
selected(ImportForeignSchemaStmt *stmt, const char *name)
{
	ListCell   *lc;
	bool		listed = false;

	if (stmt->list_type == FDW_IMPORT_SCHEMA_ALL)
		return true;
	foreach(lc, stmt->table_list)
		if (strcmp(((RangeVar *) lfirst(lc))->relname, name) == 0)
			listed = true;
	return stmt->list_type == FDW_IMPORT_SCHEMA_LIMIT_TO ? listed : !listed;
}

static int
cmp_names(const ListCell *a, const ListCell *b)
{
	return strcmp(lfirst(a), lfirst(b));
}

/* Names the column and file in errors raised while its type is looked up. */
typedef struct TypeErrorContext
{
	const char *column;
	const char *path;
} TypeErrorContext;

static void
type_error_context(void *arg)
{
	TypeErrorContext *c = arg;

	errcontext("type of column \"%s\" in the manifest of sealed dataset \"%s\"", c->column, c->path);
}

static void
refuse_type(const char *path, const DsealColumnDef *col, const char *what, const char *detail,
			const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
			 errmsg("column \"%s\" of sealed dataset \"%s\" %s", col->name, path, what),
			 errdetail("%s", detail),
			 errhint("%s", hint)));
}

/*
 * The column type for the DDL, from the manifest's type text.  That text is
 * signed by the owner, but an owner (or a thief of an owner's key) can sign
 * anything, and it is spliced into a CREATE FOREIGN TABLE statement: text
 * such as "integer) SERVER other OPTIONS (path '...') --" would rewrite the
 * statement.  So the text must parse as exactly one type name
 * (typeStringToTypeName, the parser's own rule), name an existing type that
 * is not a pseudo-type or a shell, and decode the column's sealed encoding;
 * what goes into the DDL is PostgreSQL's own printing of that type
 * (format_type_with_typemod), never the manifest's text.
 */
static char *
column_type(const char *path, const DsealColumnDef *col)
{
	MemoryContext cxt = CurrentMemoryContext;
	TypeName   *volatile tn = NULL;
	ErrorData  *volatile edata = NULL;
	ErrorContextCallback ecb;
	TypeErrorContext ectx = {col->name, path};
	Type		tup;
	Form_pg_type typ;
	Oid			typid;
	int32		typmod;
	DsealTypeMap tm;
	char	   *printed;

	/* parsing only: no lock, buffer or file is held, so the error can be caught */
	PG_TRY();
	{
		tn = typeStringToTypeName(col->type);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
	}
	PG_END_TRY();
	if (edata != NULL)
		refuse_type(path, col, "has an invalid type name",
					psprintf("The signed manifest gives the type as \"%s\", which is not a type name: %s.",
							 col->type, edata->message),
					"The manifest was not written by dstack_seal; ask the owner to seal the table again.");

	ecb.callback = type_error_context;
	ecb.arg = &ectx;
	ecb.previous = error_context_stack;
	error_context_stack = &ecb;
	tup = LookupTypeName(NULL, tn, &typmod, true);
	error_context_stack = ecb.previous;
	if (tup == NULL)
		refuse_type(path, col, psprintf("has type %s, which does not exist in this database", col->type),
					"A foreign table can only have types that exist where it is created.",
					"Create the type (or the extension that defines it) in this database, then import again.");
	typid = typeTypeId(tup);
	typ = (Form_pg_type) GETSTRUCT(tup);
	if (!typ->typisdefined || typ->typtype == TYPTYPE_PSEUDO)
	{
		ReleaseSysCache(tup);
		refuse_type(path, col, psprintf("has type %s, which cannot be a column type", col->type),
					"It is a pseudo-type or a shell type.",
					"The manifest was not written by dstack_seal; ask the owner to seal the table again.");
	}
	ReleaseSysCache(tup);
	printed = format_type_with_typemod(typid, typmod);
	dseal_typemap_init(&tm, typid, typmod);
	if (tm.enc != col->enc || tm.repr != col->repr)
		refuse_type(path, col, psprintf("has type %s, which cannot decode its sealed encoding", printed),
					psprintf("The column is sealed as %s (%s); %s values are read as %s (%s).",
							 dseal_enc_name(col->enc), col->repr == DSEAL_REPR_TEXT ? "text" : "binary",
							 printed, dseal_enc_name(tm.enc), tm.repr == DSEAL_REPR_TEXT ? "text" : "binary"),
					"The manifest was not written by dstack_seal; ask the owner to seal the table again.");
	return printed;
}

/* One CREATE FOREIGN TABLE statement from a verified manifest. */
static char *
create_statement(ImportForeignSchemaStmt *stmt, const char *name, const char *path,
				 const DsealManifest *m)
{
	StringInfoData buf;
	char		owner[2 * DC_ADDR_LEN + 1];

	dhex_encode(m->owner_id, DC_ADDR_LEN, owner);
	initStringInfo(&buf);
	appendStringInfo(&buf, "CREATE FOREIGN TABLE %s (",
					 quote_qualified_identifier(stmt->local_schema, name));
	for (int c = 0; c < m->ncols; c++)
		appendStringInfo(&buf, "%s%s %s", c ? ", " : "", quote_identifier(m->cols[c].name),
						 column_type(path, &m->cols[c]));
	appendStringInfo(&buf, ") SERVER %s OPTIONS (path %s, owner %s)",
					 quote_identifier(stmt->server_name), quote_literal_cstr(path),
					 quote_literal_cstr(psprintf("0x%s", owner)));
	return buf.data;
}

List *
dfdwImportForeignSchema(ImportForeignSchemaStmt *stmt, Oid serverOid)
{
	const char *dir = stmt->remote_schema;
	List	   *files = NIL;
	List	   *out = NIL;
	ListCell   *lc;
	DIR		   *d;
	struct dirent *de;
	MemoryContext cxt;

	/* the directory is read on the server, and the tables get its files as their path */
	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to import foreign schema from server \"%s\"", stmt->server_name),
				 errdetail("IMPORT FOREIGN SCHEMA reads a directory on the database server and creates foreign tables "
						   "over the sealed files in it; only a superuser may do that."),
				 errhint("Ask the CVM operator (a superuser) to import the sealed datasets.")));
	foreach(lc, stmt->options)
	{
		DefElem    *def = lfirst(lc);

		if (strcmp(def->defname, "directory") == 0)
			dir = defGetString(def);
		else
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("invalid option \"%s\" for IMPORT FOREIGN SCHEMA", def->defname),
					 errhint("The only option is directory (the absolute path of the sealed datasets).")));
	}
	if (!is_absolute_path(dir))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("IMPORT FOREIGN SCHEMA needs the absolute path of a directory of sealed datasets"),
				 errdetail("Got \"%s\".", dir),
				 errhint("Add OPTIONS (directory '/path/to/sealed').")));

	d = AllocateDir(dir);
	if (d == NULL)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open directory \"%s\": %m", dir),
				 errhint("Check the path and that the server process may read it.")));
	while ((de = ReadDir(d, dir)) != NULL)
	{
		size_t		n = strlen(de->d_name);

		if (n > 6 && strcmp(de->d_name + n - 6, ".dseal") == 0)
			files = lappend(files, pstrdup(de->d_name));
	}
	FreeDir(d);
	list_sort(files, cmp_names);	/* deterministic order */

	cxt = AllocSetContextCreate(CurrentMemoryContext, "dstack_fdw import", ALLOCSET_SMALL_SIZES);
	foreach(lc, files)
	{
		char	   *file = lfirst(lc);
		char	   *name = pnstrdup(file, strlen(file) - 6);
		char	   *path = psprintf("%s/%s", dir, file);
		DsealReader *r;

		if (!selected(stmt, name))
			continue;
		CHECK_FOR_INTERRUPTS();
		r = dfdw_open_dataset(path, cxt);	/* raises if the signature does not verify */
		out = lappend(out, create_statement(stmt, name, path, dseal_reader_manifest(r)));
		MemoryContextReset(cxt);
	}
	MemoryContextDelete(cxt);
	return out;
}
