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

/*
 * Rebuild row `row` of a DSEAL_REPR_TEXT column (numeric, jsonb, arrays:
 * stored as the type's text output) with the type's input function.  The
 * binary representations are rebuilt a row group at a time by
 * dseal_typemap_decode().
 */
Datum
dseal_typemap_text_datum(DsealTypeMap *tm, const DsealColBuf *cb, uint32 row)
{
	uint32		len;
	const uint8 *p = colbuf_var_at(cb, row, &len);
	char	   *s = palloc(len + 1);

	Assert(tm->repr == DSEAL_REPR_TEXT);
	memcpy(s, p, len);
	s[len] = '\0';
	return InputFunctionCall(&tm->infunc, s, tm->ioparam, tm->typmod);
}

/*
 * Decode every row of a column buffer at once: values[r] and isnull[r] for
 * r < cb->nrows.  Fixed-width values become by-value Datums (uuid: one block
 * of pg_uuid_t); variable-width raw values become varlenas packed into one
 * block, with the 1-byte header a heap tuple would give them when they are
 * short (every text, varchar, bpchar and bytea function reads packed values,
 * as it does from a heap tuple).  One allocation per row group instead of
 * one per value.  Text-form values (DSEAL_REPR_TEXT) need their input
 * function: the caller decodes those a value at a time.
 */
void
dseal_typemap_decode(const DsealTypeMap *tm, const DsealColBuf *cb, Datum *values, bool *isnull)
{
	uint32		n = cb->nrows;

	Assert(tm->repr == DSEAL_REPR_BINARY);
	for (uint32 r = 0; r < n; r++)
		isnull[r] = colbuf_is_null(cb, r);
	switch (tm->enc)
	{
		case DSEAL_ENC_BOOL:
			for (uint32 r = 0; r < n; r++)
				values[r] = BoolGetDatum(cb->fixed[r] != 0);
			return;
		case DSEAL_ENC_I16:
			{
				const int16 *v = (const int16 *) cb->fixed;

				for (uint32 r = 0; r < n; r++)
					values[r] = Int16GetDatum(v[r]);
				return;
			}
		case DSEAL_ENC_I32:
			{
				const int32 *v = (const int32 *) cb->fixed;

				for (uint32 r = 0; r < n; r++)
					values[r] = Int32GetDatum(v[r]);
				return;
			}
		case DSEAL_ENC_I64:
			/* by-value int8 Datums are the int64's bits (64-bit builds only) */
			StaticAssertStmt(SIZEOF_DATUM == 8, "64-bit Datum required");
			memcpy(values, cb->fixed, sizeof(int64) * n);
			return;
		case DSEAL_ENC_F32:
			{
				const float4 *v = (const float4 *) cb->fixed;

				for (uint32 r = 0; r < n; r++)
					values[r] = Float4GetDatum(v[r]);
				return;
			}
		case DSEAL_ENC_F64:
			/* Float8GetDatum() is the float8's bits, as above */
			StaticAssertStmt(FLOAT8PASSBYVAL, "by-value float8 required");
			memcpy(values, cb->fixed, sizeof(float8) * n);
			return;
		case DSEAL_ENC_B16:
			{
				pg_uuid_t  *u = palloc_extended(sizeof(pg_uuid_t) * Max(n, 1), MCXT_ALLOC_HUGE);

				memcpy(u, cb->fixed, (size_t) UUID_LEN * n);
				for (uint32 r = 0; r < n; r++)
					values[r] = UUIDPGetDatum(&u[r]);
				return;
			}
		case DSEAL_ENC_VAR:
			break;
	}
	{
		/* worst case per value: 3 bytes of alignment and a 4-byte header */
		char	   *block = palloc_extended(cb->data_len + (size_t) 7 * n + 1, MCXT_ALLOC_HUGE);
		char	   *p = block;

		for (uint32 r = 0; r < n; r++)
		{
			uint32		len;
			const uint8 *src;

			if (isnull[r])
			{
				values[r] = (Datum) 0;
				continue;
			}
			src = colbuf_var_at(cb, r, &len);
			if (len <= VARATT_SHORT_MAX - VARHDRSZ_SHORT)
			{
				SET_VARSIZE_SHORT(p, VARHDRSZ_SHORT + len);
				memcpy(p + VARHDRSZ_SHORT, src, len);
				values[r] = PointerGetDatum(p);
				p += VARHDRSZ_SHORT + len;
			}
			else
			{
				p = (char *) TYPEALIGN(sizeof(int32), p);
				SET_VARSIZE(p, VARHDRSZ + len);
				memcpy(p + VARHDRSZ, src, len);
				values[r] = PointerGetDatum(p);
				p += VARHDRSZ + len;
			}
		}
	}
}
