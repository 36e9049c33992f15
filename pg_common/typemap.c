/*
 * typemap.c: PostgreSQL values <-> .dseal column buffers.
 *
 * Fixed-width types are stored as their in-memory binary value (the layout a
 * GPU kernel or a vectorised CPU loop can read directly): bool, int2/4/8,
 * float4/8, date (int32 days since 2000-01-01), timestamp and timestamptz
 * (int64 microseconds since 2000-01-01 UTC) and uuid (16 bytes).  text,
 * varchar, bpchar and bytea are stored as their raw bytes.  Every other type,
 * numeric included, is stored as its canonical text output, which the CVM
 * turns back into the same value with the type's input function; numeric's
 * text form is exact, so nothing is lost.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/uuid.h"

#include "pg_common.h"

/*
 * The one map from a PostgreSQL type to its stored encoding (the table in
 * docs/format.md): the seal writes by it, the scan reads by it, and gpu_scan
 * derives its kernel types from it.
 */
DsealEnc
dseal_type_storage(Oid basetypid, DsealRepr *repr)
{
	*repr = DSEAL_REPR_BINARY;
	switch (basetypid)
	{
		case BOOLOID:
			return DSEAL_ENC_BOOL;
		case INT2OID:
			return DSEAL_ENC_I16;
		case INT4OID:
		case DATEOID:
			return DSEAL_ENC_I32;
		case INT8OID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			return DSEAL_ENC_I64;
		case FLOAT4OID:
			return DSEAL_ENC_F32;
		case FLOAT8OID:
			return DSEAL_ENC_F64;
		case UUIDOID:
			return DSEAL_ENC_B16;
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
		case BYTEAOID:
			return DSEAL_ENC_VAR;
		default:
			*repr = DSEAL_REPR_TEXT;
			return DSEAL_ENC_VAR;
	}
}

void
dseal_typemap_init(DsealTypeMap *tm, Oid typid, int32 typmod)
{
	Oid			outfn;
	bool		isvarlena;
	Oid			infn;

	memset(tm, 0, sizeof(*tm));
	tm->typid = typid;
	tm->typmod = typmod;
	tm->basetypid = getBaseType(typid);
	tm->enc = dseal_type_storage(tm->basetypid, &tm->repr);
	/* I/O functions of the declared type, so domains keep their checks */
	getTypeOutputInfo(typid, &outfn, &isvarlena);
	fmgr_info(outfn, &tm->outfunc);
	getTypeInputInfo(typid, &infn, &tm->ioparam);
	fmgr_info(infn, &tm->infunc);
}

/* Raise a DErr from the column buffer layer (out of memory, oversized chunk). */
static void
append_failed(const DErr *err)
{
	derr_ereport(err, 0, "Lower dstack_seal.rows_per_group so that one row group fits in memory.");
}

/*
 * Append one value.  The DErr is not zeroed here: this runs once per value
 * sealed, zeroing its 776 bytes was a third of the seal's CPU, and every
 * failing colbuf_append_*() sets all its fields through derr_set().
 */
void
dseal_typemap_append_any(const DsealTypeMap *tm, DsealColBuf *cb, Datum value, bool isnull)
{
	DErr		err;
	bool		ok;

	if (isnull)
		ok = colbuf_append_null(cb, &err);
	else
	{
		switch (tm->enc)
		{
			case DSEAL_ENC_BOOL:
				{
					uint8		b = DatumGetBool(value) ? 1 : 0;

					ok = colbuf_append_fixed(cb, &b, &err);
					break;
				}
			case DSEAL_ENC_I16:
				{
					int16		v = DatumGetInt16(value);

					ok = colbuf_append_fixed(cb, &v, &err);
					break;
				}
			case DSEAL_ENC_I32:
				{
					int32		v = DatumGetInt32(value);

					ok = colbuf_append_fixed(cb, &v, &err);
					break;
				}
			case DSEAL_ENC_I64:
				{
					int64		v = DatumGetInt64(value);

					ok = colbuf_append_fixed(cb, &v, &err);
					break;
				}
			case DSEAL_ENC_F32:
				{
					float4		v = DatumGetFloat4(value);

					ok = colbuf_append_fixed(cb, &v, &err);
					break;
				}
			case DSEAL_ENC_F64:
				{
					float8		v = DatumGetFloat8(value);

					ok = colbuf_append_fixed(cb, &v, &err);
					break;
				}
			case DSEAL_ENC_B16:
				ok = colbuf_append_fixed(cb, DatumGetUUIDP(value)->data, &err);
				break;
			case DSEAL_ENC_VAR:
			default:
				if (tm->repr == DSEAL_REPR_TEXT)
				{
					char	   *s = OutputFunctionCall((FmgrInfo *) &tm->outfunc, value);

					ok = colbuf_append_var(cb, s, strlen(s), &err);
				}
				else
				{
					struct varlena *v = PG_DETOAST_DATUM_PACKED(value);

					ok = colbuf_append_var(cb, VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v), &err);
				}
				break;
		}
	}
	if (!ok)
		append_failed(&err);
}

Datum
dseal_typemap_datum(DsealTypeMap *tm, const DsealColBuf *cb, uint32 row)
{
	const uint8 *p;
	uint32		len;

	switch (tm->enc)
	{
		case DSEAL_ENC_BOOL:
			return BoolGetDatum(*colbuf_fixed_at(cb, row) != 0);
		case DSEAL_ENC_I16:
			{
				int16		v;

				memcpy(&v, colbuf_fixed_at(cb, row), sizeof(v));
				return Int16GetDatum(v);
			}
		case DSEAL_ENC_I32:
			{
				int32		v;

				memcpy(&v, colbuf_fixed_at(cb, row), sizeof(v));
				return Int32GetDatum(v);
			}
		case DSEAL_ENC_I64:
			{
				int64		v;

				memcpy(&v, colbuf_fixed_at(cb, row), sizeof(v));
				return Int64GetDatum(v);
			}
		case DSEAL_ENC_F32:
			{
				float4		v;

				memcpy(&v, colbuf_fixed_at(cb, row), sizeof(v));
				return Float4GetDatum(v);
			}
		case DSEAL_ENC_F64:
			{
				float8		v;

				memcpy(&v, colbuf_fixed_at(cb, row), sizeof(v));
				return Float8GetDatum(v);
			}
		case DSEAL_ENC_B16:
			{
				pg_uuid_t  *u = palloc(sizeof(pg_uuid_t));

				memcpy(u->data, colbuf_fixed_at(cb, row), UUID_LEN);
				return UUIDPGetDatum(u);
			}
		case DSEAL_ENC_VAR:
			break;
	}
	p = colbuf_var_at(cb, row, &len);
	if (tm->repr == DSEAL_REPR_TEXT)
	{
		char	   *s = palloc(len + 1);

		memcpy(s, p, len);
		s[len] = '\0';
		return InputFunctionCall(&tm->infunc, s, tm->ioparam, tm->typmod);
	}
	else
	{
		bytea	   *v = palloc(VARHDRSZ + len);

		SET_VARSIZE(v, VARHDRSZ + len);
		memcpy(VARDATA(v), p, len);
		return PointerGetDatum(v);
	}
}
