/*
 * verify.c: dstack_seal_verify(path) checks a sealed dataset without keys.
 *
 * Anyone holding the file (the silo before publishing it, a CVM operator,
 * an auditor) can check that the manifest is canonical and signed by the
 * owner it names, that the recipient key was issued by the KMS root for the
 * recipe's app id, and that every chunk's bytes match the SHA-256 and tag in
 * the signed manifest.  No data key is needed, so nothing is decrypted.
 * Integrity problems are reported in the result; only an unreadable file is
 * an error.
 */
#include "postgres.h"

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "catalog/pg_authid.h"
#include "utils/jsonb.h"

#include "dstack_seal.h"
#include "hex.h"
#include "pg_common.h"
#include "sigchain.h"

PG_FUNCTION_INFO_V1(dstack_seal_verify);

/* JSON string literal of s, escaped. */
static void
append_json_str(StringInfo buf, const char *s)
{
	escape_json(buf, s);
}

static void
append_hex(StringInfo buf, const char *key, const uint8 *b, size_t n, bool prefix)
{
	appendStringInfo(buf, ", \"%s\": \"%s\"", key, dpg_hex(b, n, prefix));
}

Datum
dstack_seal_verify(PG_FUNCTION_ARGS)
{
	char	   *path = text_to_cstring(PG_GETARG_TEXT_PP(0));
	DErr		err = {0};
	DsealReader *r;
	const DsealManifest *m;
	StringInfoData buf;
	StringInfoData problems;
	uint64		checked = 0,
				bad = 0;
	bool		chain_ok;
	Datum		result;

	if (!has_privs_of_role(GetUserId(), ROLE_PG_READ_SERVER_FILES))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to read sealed dataset \"%s\"", path),
				 errhint("Run it as a superuser or a member of pg_read_server_files.")));

	initStringInfo(&buf);
	initStringInfo(&problems);
	appendStringInfoString(&buf, "{\"path\": ");
	append_json_str(&buf, path);

	r = dseal_reader_open(path, &err);
	if (r == NULL)
	{
		/* a missing or unreadable file is an error; a damaged one is a finding */
		if (err.code == DERR_IO || err.code == DERR_NOMEM)
			derr_ereport(&err, 0, "Check the path and that the server can read the file.");
		appendStringInfoString(&buf, ", \"valid\": false, \"problems\": [");
		append_json_str(&buf, err.detail[0] ? psprintf("%s: %s", err.msg, err.detail) : err.msg);
		appendStringInfoString(&buf, "]}");
		PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
	}

	PG_TRY();
	{
		m = dseal_reader_manifest(r);
		chain_ok = dstack_sigchain_verify(m->recipe.kms_root_pubkey, m->recipe.app_id,
										  m->recipient_purpose, m->recipient_pub,
										  m->recipient_chain[0], m->recipient_chain[1], NULL, &err);
		if (!chain_ok)
		{
			appendStringInfoString(&problems, problems.len ? ", " : "");
			append_json_str(&problems, psprintf("recipient key chain: %s. %s", err.msg, err.detail));
		}
		for (uint32 g = 0; g < m->nrowgroups; g++)
			for (int c = 0; c < m->ncols; c++)
			{
				CHECK_FOR_INTERRUPTS();
				checked++;
				derr_clear(&err);
				if (!dseal_reader_check_chunk(r, g, (uint32) c, &err))
				{
					if (err.code == DERR_IO)
						derr_ereport(&err, 0, NULL);
					bad++;
					appendStringInfoString(&problems, problems.len ? ", " : "");
					append_json_str(&problems, err.msg);
				}
			}
		appendStringInfo(&buf, ", \"valid\": %s", (bad == 0 && chain_ok) ? "true" : "false");
		append_hex(&buf, "dataset_id", m->dataset_id, DSEAL_DATASET_ID_LEN, false);
		append_hex(&buf, "owner_id", m->owner_id, DC_ADDR_LEN, true);
		append_hex(&buf, "manifest_hash", m->manifest_hash, DC_SHA256_LEN, false);
		appendStringInfoString(&buf, ", \"table\": ");
		append_json_str(&buf, m->table);
		appendStringInfo(&buf, ", \"signature\": \"valid\", \"recipient_chain\": \"%s\"",
						 chain_ok ? "valid" : "invalid");
		appendStringInfo(&buf, ", \"row_count\": %llu, \"row_groups\": %u, \"columns\": %d",
						 (unsigned long long) m->row_count, m->nrowgroups, m->ncols);
		appendStringInfo(&buf, ", \"chunks_checked\": %llu, \"chunks_bad\": %llu",
						 (unsigned long long) checked, (unsigned long long) bad);
		appendStringInfoString(&buf, ", \"recipe\": {\"kms_root_pubkey\": \"");
		{
			char		h[2 * DC_PUBKEY_LEN + 1];

			dhex_encode(m->recipe.kms_root_pubkey, DC_PUBKEY_LEN, h);
			appendStringInfo(&buf, "%s\"", h);
		}
		append_hex(&buf, "app_id", m->recipe.app_id, DC_ADDR_LEN, true);
		append_hex(&buf, "compose_hash", m->recipe.compose_hash, DSEAL_COMPOSE_HASH_LEN, true);
		appendStringInfo(&buf, "}, \"problems\": [%s]}", problems.data);
	}
	PG_FINALLY();
	{
		dseal_reader_close(r);
	}
	PG_END_TRY();
	result = DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data));
	PG_RETURN_DATUM(result);
}
