/*
 * import.c: IMPORT FOREIGN SCHEMA from a directory of sealed datasets.
 *
 *   IMPORT FOREIGN SCHEMA sealed FROM SERVER cardio INTO public
 *     OPTIONS (directory '/var/lib/pg_dstack/sealed');
 *
 * Every <name>.dseal file in the directory becomes foreign table <name>, with
 * the columns and types of its signed manifest and the options path and
 * owner.  Only files whose manifest signature verifies are imported.  The
 * remote schema name is the directory when no directory option is given
 * (write it as a quoted identifier).  LIMIT TO / EXCEPT name tables.
 */
#include "postgres.h"

#include <dirent.h>
#include <sys/stat.h>

#include "commands/defrem.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "dstack_fdw.h"
#include "hex.h"

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
		/* the type text is what format_type_with_typemod() printed in the silo */
		appendStringInfo(&buf, "%s%s %s", c ? ", " : "", quote_identifier(m->cols[c].name),
						 m->cols[c].type);
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
