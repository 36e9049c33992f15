/*
 * receipt.c: canonical body, digests and assembly of receipts (receipt.h).
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "hex.h"
#include "receipt.h"

#define CANON_FLAGS (JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII)

/* Reals have no canonical text across languages: the body must not hold any. */
static bool
has_real(json_t *v)
{
	const char *k;
	json_t	   *e;
	size_t		i;

	if (json_is_real(v))
		return true;
	if (json_is_object(v))
		json_object_foreach(v, k, e)
			if (has_real(e))
				return true;
	if (json_is_array(v))
		json_array_foreach(v, i, e)
			if (has_real(e))
				return true;
	return false;
}

bool
dreceipt_canonical(const char *body_json, char **canon, uint8_t body_hash[DC_SHA256_LEN], DErr *err)
{
	json_error_t jerr;
	json_t	   *body = json_loads(body_json, JSON_REJECT_DUPLICATES, &jerr);

	*canon = NULL;
	if (body == NULL || !json_is_object(body))
	{
		derr_set(err, DERR_FORMAT, "receipt body is not a JSON object");
		if (body == NULL)
			derr_detail(err, "%s at line %d, column %d.", jerr.text, jerr.line, jerr.column);
		json_decref(body);
		return false;
	}
	if (has_real(body))
	{
		json_decref(body);
		return derr_set(err, DERR_FORMAT, "receipt body holds a JSON real number");
	}
	*canon = json_dumps(body, CANON_FLAGS);
	json_decref(body);
	if (*canon == NULL)
		return derr_set(err, DERR_NOMEM, "out of memory serialising a receipt body");
	dc_sha256(*canon, strlen(*canon), body_hash);
	return true;
}

void
dreceipt_digest(const uint8_t body_hash[DC_SHA256_LEN], uint8_t digest[32])
{
	DcBuf		parts[2] = {
		{DRECEIPT_PURPOSE ":", sizeof(DRECEIPT_PURPOSE ":") - 1},
		{body_hash, DC_SHA256_LEN}
	};

	dc_keccak256_parts(parts, 2, digest);
}

void
dreceipt_report_data(const uint8_t body_hash[DC_SHA256_LEN], uint8_t report_data[64])
{
	memcpy(report_data, body_hash, DC_SHA256_LEN);
	memset(report_data + DC_SHA256_LEN, 0, 64 - DC_SHA256_LEN);
}

/* hex string value (malloc()ed by jansson through json_string). */
static json_t *
jhex(const uint8_t *b, size_t n)
{
	char	   *h = malloc(2 * n + 1);
	json_t	   *v;

	if (h == NULL)
		return NULL;
	dhex_encode(b, n, h);
	v = json_string(h);
	free(h);
	return v;
}

bool
dreceipt_assemble(const DReceiptParts *p, char **out, DErr *err)
{
	json_error_t jerr;
	json_t	   *body = json_loads(p->canon_body, 0, &jerr);
	/*
	 * json_pack("{}"), not json_object(): inside a backend the postgres
	 * executable's own json_object (the SQL function) would be called instead
	 * (tools/check-symbols.sh guards against such clashes).
	 */
	json_t	   *r = json_pack("{}");
	json_t	   *sig = json_pack("{}");
	json_t	   *quote = json_pack("{}");
	json_t	   *chain = json_array();
	bool		ok;

	ok = body && r && sig && quote && chain &&
		json_object_set_new(r, "body", body) == 0 &&
		json_object_set_new(r, "body_sha256", jhex(p->body_hash, DC_SHA256_LEN)) == 0 &&
		json_array_append_new(chain, jhex(p->chain[0], DC_SIG_LEN)) == 0 &&
		json_array_append_new(chain, jhex(p->chain[1], DC_SIG_LEN)) == 0 &&
		json_object_set_new(sig, "public_key", jhex(p->public_key, DC_PUBKEY_LEN)) == 0 &&
		json_object_set_new(sig, "purpose", json_string(DRECEIPT_PURPOSE)) == 0 &&
		json_object_set_new(sig, "signature_chain", chain) == 0 &&
		json_object_set_new(sig, "value", jhex(p->signature, DC_SIG_LEN)) == 0 &&
		json_object_set_new(r, "signature", sig) == 0 &&
		json_object_set_new(quote, "quote", jhex(p->quote, p->quote_len)) == 0 &&
		json_object_set_new(quote, "report_data", jhex(p->report_data, 64)) == 0 &&
		json_object_set_new(quote, "event_log", json_string(p->event_log ? p->event_log : "")) == 0 &&
		json_object_set_new(quote, "simulated", json_boolean(p->simulated)) == 0 &&
		json_object_set_new(r, "quote", quote) == 0;
	body = sig = quote = chain = NULL;	/* owned by r now (or leaked only on OOM below) */
	*out = ok ? json_dumps(r, CANON_FLAGS) : NULL;
	json_decref(r);
	if (*out == NULL)
		return derr_set(err, DERR_NOMEM, "out of memory assembling a receipt");
	return true;
}
