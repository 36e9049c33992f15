/*
 * manifest.c: the signed, canonical JSON manifest of a .dseal file.
 *
 * Canonical form is jansson's compact output with sorted keys and ASCII
 * escaping; every value is a string or an integer (no floats), so one
 * manifest has exactly one byte representation.  The parser rebuilds the
 * canonical text from the parsed structure and requires it to equal the
 * input byte for byte: unknown fields, reordered keys or re-encoded numbers
 * are rejected, so the manifest hash cited by receipts is unambiguous.
 *
 * Signature: EIP-191 personal_sign by the owner's Ethereum key over
 * keccak256(canonical manifest without "signature"), so an owner can sign
 * with the same wallet tooling that approves on chain.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "dseal.h"
#include "hex.h"

#define JSON_CANON (JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII)

/* ---- building ---- */

static json_t *
jhex(const uint8_t *b, size_t n)
{
	char		buf[2 * 128 + 1];

	dhex_encode(b, n, buf);
	return json_string(buf);
}

static json_t *
jhex0x(const uint8_t *b, size_t n)
{
	char		buf[2 + 2 * 64 + 1];

	buf[0] = '0';
	buf[1] = 'x';
	dhex_encode(b, n, buf + 2);
	return json_string(buf);
}

/*
 * The header object: everything fixed before the first chunk is sealed,
 * starting with the file's 16 header bytes, so that they are covered by the
 * header hash (every chunk's AAD) and by the owner's signature.
 */
static json_t *
manifest_header_json(const DsealManifest *m)
{
	json_t	   *cols = json_array();
	json_t	   *chain = json_pack("[o, o]", jhex(m->recipient_chain[0], DC_SIG_LEN),
								  jhex(m->recipient_chain[1], DC_SIG_LEN));

	for (int i = 0; i < m->ncols; i++)
		json_array_append_new(cols, json_pack("{s:s, s:s, s:s, s:s}",
											  "name", m->cols[i].name,
											  "type", m->cols[i].type,
											  "enc", dseal_enc_name(m->cols[i].enc),
											  "repr", m->cols[i].repr == DSEAL_REPR_TEXT ? "text" : "binary"));
	return json_pack("{s:o, s:o, s:o, s:s, s:o, s:{s:o, s:o, s:o}, s:{s:s, s:s, s:o, s:o, s:o, s:o}, s:I}",
					 "file_header", jhex(m->file_header, DSEAL_FILE_HEADER_LEN),
					 "dataset_id", jhex(m->dataset_id, DSEAL_DATASET_ID_LEN),
					 "owner_id", jhex0x(m->owner_id, DC_ADDR_LEN),
					 "table", m->table,
					 "columns", cols,
					 "recipe",
					 "kms_root_pubkey", jhex(m->recipe.kms_root_pubkey, DC_PUBKEY_LEN),
					 "app_id", jhex0x(m->recipe.app_id, DC_ADDR_LEN),
					 "compose_hash", jhex0x(m->recipe.compose_hash, DSEAL_COMPOSE_HASH_LEN),
					 "key",
					 "scheme", "secp256k1-ecdh/hkdf-sha256/aes-256-gcm",
					 "recipient_purpose", m->recipient_purpose,
					 "recipient_pubkey", jhex(m->recipient_pub, DC_PUBKEY_LEN),
					 "recipient_signature_chain", chain,
					 "ephemeral_pubkey", jhex(m->ephemeral_pub, DC_PUBKEY_LEN),
					 "wrapped", jhex(m->wrapped, DSEAL_WRAPPED_LEN),
					 "rows_per_group", (json_int_t) m->rows_per_group);
}

/* The whole manifest; with_signature=false gives the body the owner signs. */
static json_t *
manifest_json(const DsealManifest *m, bool with_signature)
{
	json_t	   *rgs = json_array();
	json_t	   *root;

	for (uint32_t g = 0; g < m->nrowgroups; g++)
	{
		json_t	   *chunks = json_array();

		for (int c = 0; c < m->ncols; c++)
		{
			const DsealChunkRef *ch = &m->rowgroups[g].chunks[c];

			json_array_append_new(chunks,
								  json_pack("{s:I, s:I, s:I, s:b, s:o, s:o}",
											"offset", (json_int_t) ch->offset,
											"length", (json_int_t) ch->length,
											"plain_length", (json_int_t) ch->plain_length,
											"zstd", ch->zstd,
											"tag", jhex(ch->tag, DC_GCM_TAG_LEN),
											"sha256", jhex(ch->sha256, DC_SHA256_LEN)));
		}
		json_array_append_new(rgs, json_pack("{s:I, s:o}", "rows", (json_int_t) m->rowgroups[g].nrows,
											 "chunks", chunks));
	}
	root = json_pack("{s:s, s:i, s:o, s:o, s:s, s:I, s:o}",
					 "format", DSEAL_FORMAT_NAME,
					 "version", m->version,
					 "header", manifest_header_json(m),
					 "header_hash", jhex(m->header_hash, DC_SHA256_LEN),
					 "sealed_at", m->sealed_at ? m->sealed_at : "",
					 "row_count", (json_int_t) m->row_count,
					 "row_groups", rgs);
	if (root && with_signature)
		json_object_set_new(root, "signature",
							json_pack("{s:s, s:o, s:o}",
									  "scheme", "eip191-secp256k1",
									  "signer", jhex0x(m->owner_id, DC_ADDR_LEN),
									  "value", jhex(m->signature, DC_SIG_LEN)));
	return root;
}

/* Canonical text of a json value; caller frees. */
static char *
canon(json_t *j, size_t *len, DErr *err)
{
	char	   *s;

	if (j == NULL)
	{
		derr_set(err, DERR_NOMEM, "out of memory building the manifest");
		return NULL;
	}
	s = json_dumps(j, JSON_CANON);
	json_decref(j);
	if (s == NULL)
		derr_set(err, DERR_NOMEM, "out of memory serializing the manifest");
	else if (len)
		*len = strlen(s);
	return s;
}

bool
dseal_manifest_header_hash(const DsealManifest *m, uint8_t out[DC_SHA256_LEN], DErr *err)
{
	size_t		len;
	char	   *s = canon(manifest_header_json(m), &len, err);

	if (!s)
		return false;
	dc_sha256(s, len, out);
	free(s);
	return true;
}

/* EIP-191: keccak256("\x19Ethereum Signed Message:\n32" || keccak256(body)). */
bool
dseal_manifest_signing_digest(const DsealManifest *m, uint8_t digest[32], DErr *err)
{
	static const char prefix[] = "\x19" "Ethereum Signed Message:\n32";
	uint8_t		buf[sizeof(prefix) - 1 + 32];
	size_t		len;
	char	   *s = canon(manifest_json(m, false), &len, err);

	if (!s)
		return false;
	memcpy(buf, prefix, sizeof(prefix) - 1);
	dc_keccak256(s, len, buf + sizeof(prefix) - 1);
	free(s);
	dc_keccak256(buf, sizeof(buf), digest);
	return true;
}

bool
dseal_manifest_finish(DsealManifest *m, const uint8_t owner_sk[DC_SECKEY_LEN], DErr *err)
{
	uint8_t		digest[32];

	if (!dseal_manifest_signing_digest(m, digest, err) ||
		!dc_sign_recoverable(owner_sk, digest, m->signature, err))
		return false;
	free(m->json);
	m->json = canon(manifest_json(m, true), &m->json_len, err);
	if (!m->json)
		return false;
	dc_sha256(m->json, m->json_len, m->manifest_hash);
	return true;
}

/* ---- parsing ---- */

static bool
get_hex(json_t *obj, const char *key, uint8_t *out, size_t n, DErr *err)
{
	json_t	   *v = json_object_get(obj, key);

	if (!json_is_string(v))
		return derr_set(err, DERR_FORMAT, "manifest field \"%s\" is missing or not a string", key);
	return dhex_decode_exact(json_string_value(v), out, n, key, err);
}

static bool
get_str(json_t *obj, const char *key, char **out, DErr *err)
{
	json_t	   *v = json_object_get(obj, key);

	if (!json_is_string(v))
		return derr_set(err, DERR_FORMAT, "manifest field \"%s\" is missing or not a string", key);
	*out = strdup(json_string_value(v));
	return *out != NULL || derr_set(err, DERR_NOMEM, "out of memory parsing the manifest");
}

static bool
get_uint(json_t *obj, const char *key, uint64_t max, uint64_t *out, DErr *err)
{
	json_t	   *v = json_object_get(obj, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t) json_integer_value(v) > max)
		return derr_set(err, DERR_FORMAT, "manifest field \"%s\" is missing or out of range", key);
	*out = (uint64_t) json_integer_value(v);
	return true;
}

static bool
parse_columns(DsealManifest *m, json_t *cols, DErr *err)
{
	size_t		i;
	json_t	   *c;

	if (!json_is_array(cols) || json_array_size(cols) == 0 || json_array_size(cols) > 1600)
		return derr_set(err, DERR_FORMAT, "manifest \"columns\" must be a non-empty array of at most 1600 columns");
	m->ncols = (int) json_array_size(cols);
	m->cols = calloc(m->ncols, sizeof(DsealColumnDef));
	if (!m->cols)
		return derr_set(err, DERR_NOMEM, "out of memory parsing the manifest");
	json_array_foreach(cols, i, c)
	{
		char	   *enc = NULL,
				   *repr = NULL;
		bool		ok;

		ok = get_str(c, "name", &m->cols[i].name, err) &&
			get_str(c, "type", &m->cols[i].type, err) &&
			get_str(c, "enc", &enc, err) && get_str(c, "repr", &repr, err);
		if (ok && !dseal_enc_from_name(enc, &m->cols[i].enc))
			ok = derr_set(err, DERR_UNSUPPORTED, "unknown column encoding \"%s\"", enc);
		if (ok && strcmp(repr, "text") != 0 && strcmp(repr, "binary") != 0)
			ok = derr_set(err, DERR_UNSUPPORTED, "unknown column representation \"%s\"", repr);
		if (ok)
			m->cols[i].repr = strcmp(repr, "text") == 0 ? DSEAL_REPR_TEXT : DSEAL_REPR_BINARY;
		free(enc);
		free(repr);
		if (!ok)
			return false;
	}
	return true;
}

static bool
parse_header(DsealManifest *m, json_t *h, DErr *err)
{
	json_t	   *recipe = json_object_get(h, "recipe");
	json_t	   *key = json_object_get(h, "key");
	json_t	   *chain = json_object_get(key, "recipient_signature_chain");
	uint64_t	rpg;

	if (!json_is_object(h) || !json_is_object(recipe) || !json_is_object(key))
		return derr_set(err, DERR_FORMAT, "manifest header is incomplete");
	if (!json_is_array(chain) || json_array_size(chain) != 2 ||
		!json_is_string(json_array_get(chain, 0)) || !json_is_string(json_array_get(chain, 1)))
		return derr_set(err, DERR_FORMAT, "manifest recipient_signature_chain must hold two signatures");
	return dhex_decode_exact(json_string_value(json_array_get(chain, 0)), m->recipient_chain[0],
							DC_SIG_LEN, "recipient_signature_chain[0]", err) &&
		dhex_decode_exact(json_string_value(json_array_get(chain, 1)), m->recipient_chain[1],
						 DC_SIG_LEN, "recipient_signature_chain[1]", err) &&
		get_hex(h, "file_header", m->file_header, DSEAL_FILE_HEADER_LEN, err) &&
		get_hex(h, "dataset_id", m->dataset_id, DSEAL_DATASET_ID_LEN, err) &&
		get_hex(h, "owner_id", m->owner_id, DC_ADDR_LEN, err) &&
		get_str(h, "table", &m->table, err) &&
		parse_columns(m, json_object_get(h, "columns"), err) &&
		get_hex(recipe, "kms_root_pubkey", m->recipe.kms_root_pubkey, DC_PUBKEY_LEN, err) &&
		get_hex(recipe, "app_id", m->recipe.app_id, DC_ADDR_LEN, err) &&
		get_hex(recipe, "compose_hash", m->recipe.compose_hash, DSEAL_COMPOSE_HASH_LEN, err) &&
		get_str(key, "recipient_purpose", &m->recipient_purpose, err) &&
		get_hex(key, "recipient_pubkey", m->recipient_pub, DC_PUBKEY_LEN, err) &&
		get_hex(key, "ephemeral_pubkey", m->ephemeral_pub, DC_PUBKEY_LEN, err) &&
		get_hex(key, "wrapped", m->wrapped, DSEAL_WRAPPED_LEN, err) &&
		get_uint(h, "rows_per_group", UINT32_MAX, &rpg, err) &&
		((m->rows_per_group = (uint32_t) rpg) > 0 ||
		 derr_set(err, DERR_FORMAT, "manifest rows_per_group must be positive"));
}

static bool
parse_row_groups(DsealManifest *m, json_t *rgs, DErr *err)
{
	size_t		g;
	json_t	   *rg;
	uint64_t	total = 0;

	if (!json_is_array(rgs))
		return derr_set(err, DERR_FORMAT, "manifest \"row_groups\" is not an array");
	m->nrowgroups = (uint32_t) json_array_size(rgs);
	m->rowgroups = calloc(m->nrowgroups ? m->nrowgroups : 1, sizeof(DsealRowGroup));
	if (!m->rowgroups)
		return derr_set(err, DERR_NOMEM, "out of memory parsing the manifest");
	json_array_foreach(rgs, g, rg)
	{
		json_t	   *chunks = json_object_get(rg, "chunks");
		uint64_t	nrows;

		if (!get_uint(rg, "rows", m->rows_per_group, &nrows, err))
			return false;
		m->rowgroups[g].nrows = (uint32_t) nrows;
		total += nrows;
		if (!json_is_array(chunks) || json_array_size(chunks) != (size_t) m->ncols)
			return derr_set(err, DERR_FORMAT, "row group %zu does not list one chunk per column", g);
		m->rowgroups[g].chunks = calloc(m->ncols, sizeof(DsealChunkRef));
		if (!m->rowgroups[g].chunks)
			return derr_set(err, DERR_NOMEM, "out of memory parsing the manifest");
		for (int c = 0; c < m->ncols; c++)
		{
			json_t	   *cj = json_array_get(chunks, c);
			DsealChunkRef *ch = &m->rowgroups[g].chunks[c];
			json_t	   *z = json_object_get(cj, "zstd");

			if (!get_uint(cj, "offset", INT64_MAX, &ch->offset, err) ||
				!get_uint(cj, "length", UINT32_MAX, &ch->length, err) ||
				!get_uint(cj, "plain_length", UINT32_MAX, &ch->plain_length, err) ||
				!get_hex(cj, "tag", ch->tag, DC_GCM_TAG_LEN, err) ||
				!get_hex(cj, "sha256", ch->sha256, DC_SHA256_LEN, err))
				return false;
			if (!json_is_boolean(z))
				return derr_set(err, DERR_FORMAT, "manifest chunk field \"zstd\" is missing");
			ch->zstd = json_is_true(z);
			if (ch->length < DC_GCM_TAG_LEN)
				return derr_set(err, DERR_FORMAT, "chunk %zu/%d is shorter than its tag", g, c);
		}
	}
	if (total != m->row_count)
		return derr_set(err, DERR_FORMAT, "row groups hold %llu rows but row_count says %llu",
						(unsigned long long) total, (unsigned long long) m->row_count);
	return true;
}

/* Verify the owner's signature: the recovered address must be owner_id. */
static bool
manifest_verify_signature(const DsealManifest *m, DErr *err)
{
	uint8_t		digest[32],
				pub[DC_PUBKEY_LEN],
				addr[DC_ADDR_LEN];
	DErr		e2 = {0};
	char		got[41],
				want[41];

	if (!dseal_manifest_signing_digest(m, digest, err))
		return false;
	if (!dc_recover_pubkey(digest, m->signature, pub, &e2) ||
		!dc_pubkey_to_address(pub, DC_PUBKEY_LEN, addr, &e2) ||
		!dc_equal(addr, m->owner_id, DC_ADDR_LEN))
	{
		dhex_encode(m->owner_id, DC_ADDR_LEN, want);
		derr_set(err, DERR_INTEGRITY, "manifest signature does not verify");
		if (e2.code == DERR_OK)
		{
			dhex_encode(addr, DC_ADDR_LEN, got);
			derr_detail(err, "The manifest is signed by 0x%s, but its owner_id is 0x%s; it was edited or re-signed.",
						got, want);
		}
		else
			derr_detail(err, "No owner key can be recovered from the signature (%s).", e2.msg);
		return false;
	}
	return true;
}

DsealManifest *
dseal_manifest_parse(const char *text, size_t len, DErr *err)
{
	json_error_t jerr;
	json_t	   *root;
	DsealManifest *m;
	json_t	   *sig;
	json_t	   *fmt;
	uint8_t		hh[DC_SHA256_LEN];
	uint64_t	v = 0;
	bool		ok;

	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
	{
		derr_set(err, DERR_FORMAT, "manifest is not valid JSON");
		derr_detail(err, "%s at line %d, column %d.", jerr.text, jerr.line, jerr.column);
		return NULL;
	}
	m = calloc(1, sizeof(DsealManifest));
	if (!m)
	{
		json_decref(root);
		derr_set(err, DERR_NOMEM, "out of memory parsing the manifest");
		return NULL;
	}
	fmt = json_object_get(root, "format");
	sig = json_object_get(root, "signature");
	ok = (json_is_string(fmt) && strcmp(json_string_value(fmt), DSEAL_FORMAT_NAME) == 0) ||
		derr_set(err, DERR_FORMAT, "manifest format is not \"%s\"", DSEAL_FORMAT_NAME);
	ok = ok && get_uint(root, "version", 1000, &v, err);
	if (ok && v != DSEAL_VERSION)
		ok = derr_set(err, DERR_UNSUPPORTED, "unsupported .dseal version %llu", (unsigned long long) v);
	m->version = (int) v;
	ok = ok && parse_header(m, json_object_get(root, "header"), err) &&
		get_hex(root, "header_hash", m->header_hash, DC_SHA256_LEN, err) &&
		get_str(root, "sealed_at", &m->sealed_at, err) &&
		get_uint(root, "row_count", INT64_MAX, &m->row_count, err) &&
		parse_row_groups(m, json_object_get(root, "row_groups"), err);
	if (ok && !json_is_object(sig))
		ok = derr_set(err, DERR_INTEGRITY, "manifest is not signed");
	ok = ok && get_hex(sig, "value", m->signature, DC_SIG_LEN, err);
	json_decref(root);

	/* the header hash must match the header it claims to hash */
	if (ok)
	{
		if (!dseal_manifest_header_hash(m, hh, err))
			ok = false;
		else if (!dc_equal(hh, m->header_hash, DC_SHA256_LEN))
			ok = derr_set(err, DERR_INTEGRITY, "manifest header hash does not match its header");
	}

	/* canonical form: rebuilding from the parsed values must give the same bytes */
	if (ok)
	{
		m->json = canon(manifest_json(m, true), &m->json_len, err);
		ok = m->json != NULL;
		if (ok && (m->json_len != len || memcmp(m->json, text, len) != 0))
		{
			derr_set(err, DERR_FORMAT, "manifest is not in canonical form");
			derr_detail(err, "A manifest must be compact JSON with sorted keys, as dstack_seal writes it; "
						"this one was reformatted or has unknown fields.");
			ok = false;
		}
	}
	ok = ok && manifest_verify_signature(m, err);
	if (!ok)
	{
		dseal_manifest_free(m);
		return NULL;
	}
	dc_sha256(m->json, m->json_len, m->manifest_hash);
	return m;
}

/* Free what a manifest points to (writer-owned manifests live inside the writer). */
void
dseal_manifest_clear(DsealManifest *m)
{
	for (int i = 0; m->cols && i < m->ncols; i++)
	{
		free(m->cols[i].name);
		free(m->cols[i].type);
	}
	free(m->cols);
	for (uint32_t g = 0; m->rowgroups && g < m->nrowgroups; g++)
		free(m->rowgroups[g].chunks);
	free(m->rowgroups);
	free(m->table);
	free(m->recipient_purpose);
	free(m->sealed_at);
	free(m->json);
	memset(m, 0, sizeof(*m));
}

void
dseal_manifest_free(DsealManifest *m)
{
	if (m == NULL)
		return;
	dseal_manifest_clear(m);
	free(m);
}
