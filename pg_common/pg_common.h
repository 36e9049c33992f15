/*
 * pg_common.h: PostgreSQL glue shared by dstack_seal and dstack_fdw.
 *
 *   derr_pg.c   the one boundary where a common/ DErr becomes an ereport()
 *   typemap.c   PostgreSQL types <-> .dseal column encodings, Datum <-> DsealColBuf
 *   hex_pg.c    hex text of bytes, palloc'd
 *
 * Nothing here includes planner headers; the format and crypto code stays in
 * common/ and never sees PostgreSQL at all.
 */
#ifndef DSTACK_PG_COMMON_H
#define DSTACK_PG_COMMON_H

#include "postgres.h"

#include "fmgr.h"

#include "colbuf.h"
#include "derr.h"
#include "dseal.h"

/*
 * Both extensions compile these files in, and dstack_fdw is preloaded: with
 * default visibility the dynamic linker binds dstack_seal's calls to
 * dstack_fdw's copies (of whatever version that library was built from).
 * Hidden, each library calls its own (tools/check-symbols.sh checks).
 */
#pragma GCC visibility push(hidden)

/* ---- derr_pg.c ---- */

/* The SQLSTATE a DErr code maps to when the caller has no better one. */
extern int	derr_sqlstate(const DErr *err);

/*
 * Raise err as an ERROR.  sqlstate 0 means derr_sqlstate(err).  hint may be
 * NULL; it should tell the user what to do.
 */
extern void derr_ereport(const DErr *err, int sqlstate, const char *hint) pg_attribute_noreturn();

/* ---- hex_pg.c ---- */

/* Lower-case hex of n bytes, "0x"-prefixed if asked, palloc'd. */
extern char *dpg_hex(const uint8 *b, size_t n, bool prefix_0x);

/* ---- typemap.c ---- */

/* How one PostgreSQL column is sealed. */
typedef struct DsealTypeMap
{
	Oid			typid;			/* column type as declared */
	Oid			basetypid;		/* after looking through domains */
	int32		typmod;
	DsealEnc	enc;
	DsealRepr	repr;
	FmgrInfo	outfunc;		/* DSEAL_REPR_TEXT: the type's output function */
	FmgrInfo	infunc;			/* DSEAL_REPR_TEXT: input function (reading) */
	Oid			ioparam;
} DsealTypeMap;

/*
 * How a value of base type basetypid is stored: its encoding and, for
 * DSEAL_ENC_VAR, whether the bytes are the raw value or the type's text
 * output.  The one type -> storage map (docs/format.md); domains are stored
 * as their base type, so pass getBaseType() of a declared type.
 */
extern DsealEnc dseal_type_storage(Oid basetypid, DsealRepr *repr);

/* Decide the encoding of a type and look up its I/O functions. */
extern void dseal_typemap_init(DsealTypeMap *tm, Oid typid, int32 typmod);

/* Append one value (or NULL) to a column buffer; raises on failure. */
extern void dseal_typemap_append_any(const DsealTypeMap *tm, DsealColBuf *cb, Datum value, bool isnull);

/*
 * The same, with the common case inline: a fixed-width value that is not
 * NULL and fits the buffer, most of the values a seal appends (one call and
 * one switch per value showed in the seal's profile).
 */
static inline void
dseal_typemap_append(const DsealTypeMap *tm, DsealColBuf *cb, Datum value, bool isnull)
{
	if (!isnull)
	{
		switch (tm->enc)
		{
			case DSEAL_ENC_I32:
				{
					int32		v = DatumGetInt32(value);

					if (colbuf_append_fixed_inline(cb, &v, sizeof(v)))
						return;
					break;
				}
			case DSEAL_ENC_I64:
				{
					int64		v = DatumGetInt64(value);

					if (colbuf_append_fixed_inline(cb, &v, sizeof(v)))
						return;
					break;
				}
			case DSEAL_ENC_F64:
				{
					float8		v = DatumGetFloat8(value);

					if (colbuf_append_fixed_inline(cb, &v, sizeof(v)))
						return;
					break;
				}
			default:
				break;
		}
	}
	dseal_typemap_append_any(tm, cb, value, isnull);
}

/* Rebuild row `row` (not NULL) of a DSEAL_REPR_TEXT column with the input function, in the current context. */
extern Datum dseal_typemap_text_datum(DsealTypeMap *tm, const DsealColBuf *cb, uint32 row);

/* Rebuild every row of a DSEAL_REPR_BINARY column at once (typemap.c explains the layout). */
extern void dseal_typemap_decode(const DsealTypeMap *tm, const DsealColBuf *cb, Datum *values, bool *isnull);

#pragma GCC visibility pop

#endif							/* DSTACK_PG_COMMON_H */
