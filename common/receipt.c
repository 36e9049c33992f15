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

/* "1.500000" from millionths (non-negative). */
static json_t *
eps_json(int64_t micro)
{
	char		buf[40];

	snprintf(buf, sizeof(buf), "%lld.%06lld", (long long) (micro / 1000000), (long long) (micro % 1000000));
	return json_string(buf);
}

static json_t *
hex_json(const uint8_t *b, size_t n, bool prefix)
{
	char		buf[2 * 64 + 3];

	if (prefix)
	{
		buf[0] = '0';
		buf[1] = 'x';
	}
	dhex_encode(b, n, buf + (prefix ? 2 : 0));
	return json_string(buf);
}

/* json_object_set_new on a NULL value fails: map it to JSON null. */
static json_t *
str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

bool
dreceipt_body(const DReceiptBody *b, char **canon, uint8_t body_hash[DC_SHA256_LEN], DErr *err)
{
	json_error_t jerr;
	/* json_pack("{}") for objects: see dreceipt_assemble() */
	json_t	   *body = json_pack("{}");
	json_t	   *result = json_loads(b->result_json ? b->result_json : "", JSON_REJECT_DUPLICATES, &jerr);
	json_t	   *datasets = json_array();
	json_t	   *eps = json_pack("{}");
	json_t	   *policy = json_pack("{}");
	json_t	   *contribution = json_pack("{}");
	json_t	   *chain = json_pack("{}");
	bool		ok;

	*canon = NULL;
	if (result == NULL || !json_is_object(result))
	{
		json_decref(result);
		json_decref(body);
		json_decref(datasets);
		json_decref(eps);
		json_decref(policy);
		json_decref(contribution);
		json_decref(chain);
		return derr_set(err, DERR_FORMAT, "the result of a receipt is not a JSON object");
	}
	json_object_set_new(body, "format", json_string(DRECEIPT_FORMAT));
	json_object_set_new(body, "query", str_or_null(b->query));
	json_object_set_new(body, "result", result);
	for (size_t i = 0; i < b->n_datasets; i++)
	{
		json_t	   *d = json_pack("{}");

		json_object_set_new(d, "table", str_or_null(b->datasets[i].table));
		json_object_set_new(d, "owner", hex_json(b->datasets[i].owner, DC_ADDR_LEN, true));
		json_object_set_new(d, "dataset_id", hex_json(b->datasets[i].dataset_id, 16, false));
		json_object_set_new(d, "manifest_hash", hex_json(b->datasets[i].manifest_hash, DC_SHA256_LEN, false));
		json_array_append_new(datasets, d);
	}
	json_object_set_new(body, "datasets", datasets);
	json_object_set_new(eps, "charged", eps_json(b->eps_charged));
	json_object_set_new(eps, "aggregates", eps_json(b->eps_aggregates));
	json_object_set_new(eps, "selection", eps_json(b->eps_selection));
	json_object_set_new(eps, "spent", eps_json(b->eps_spent));
	json_object_set_new(eps, "left", eps_json(b->eps_total - b->eps_spent));
	json_object_set_new(eps, "total", eps_json(b->eps_total));
	json_object_set_new(body, "epsilon", eps);
	json_object_set_new(body, "delta", str_or_null(b->delta));
	if (b->selection)
	{
		json_t	   *sel = json_pack("{}");

		json_object_set_new(sel, "mechanism", json_string("laplace-threshold"));
		json_object_set_new(sel, "rows_per_unit_bound", json_integer(b->selection_k));
		json_object_set_new(sel, "threshold", json_integer(b->selection_threshold));
		json_object_set_new(body, "selection", sel);
	}
	json_object_set_new(policy, "epsilon_total", eps_json(b->pol_epsilon_total));
	json_object_set_new(policy, "delta", str_or_null(b->pol_delta));
	json_object_set_new(policy, "epsilon_select", eps_json(b->pol_epsilon_select));
	json_object_set_new(policy, "min_group_size", json_integer(b->pol_min_group_size));
	json_object_set_new(policy, "privacy_unit", str_or_null(b->pol_privacy_unit));
	json_object_set_new(policy, "max_rows_per_unit", json_integer(b->pol_max_rows_per_unit));
	json_object_set_new(body, "policy", policy);
	json_object_set_new(contribution, "privacy_unit", str_or_null(b->pol_privacy_unit));
	json_object_set_new(contribution, "rows_per_unit", json_integer(b->rows_per_unit));
	json_object_set_new(contribution, "sensitivity", json_integer(b->sensitivity));
	json_object_set_new(body, "contribution", contribution);
	json_object_set_new(body, "noise", json_string(b->seeded ? "test-seed" : "csprng"));
	json_object_set_new(body, "run_id", json_integer(b->run_id));
	json_object_set_new(body, "app_id", hex_json(b->app_id, DC_ADDR_LEN, true));
	json_object_set_new(body, "compose_hash", hex_json(b->compose_hash, 32, false));
	json_object_set_new(body, "instance_id", str_or_null(b->instance_id));
	json_object_set_new(chain, "chain_id", json_integer((json_int_t) b->chain_id));
	json_object_set_new(chain, "block_number", json_integer((json_int_t) b->block_number));
	json_object_set_new(chain, "block_hash", hex_json(b->block_hash, 32, true));
	json_object_set_new(chain, "approvals", json_integer((json_int_t) b->approvals));
	json_object_set_new(chain, "threshold", json_integer((json_int_t) b->threshold));
	json_object_set_new(body, "chain", chain);
	{
		json_t	   *charge = json_pack("{}");

		if (b->onchain)
		{
			json_object_set_new(charge, "ledger", json_string("chain"));
			json_object_set_new(charge, "tx", hex_json(b->charge_tx, 32, true));
			json_object_set_new(charge, "block_number", json_integer((json_int_t) b->charge_block));
			json_object_set_new(charge, "log_index", json_integer((json_int_t) b->charge_log_index));
			json_object_set_new(charge, "index", json_integer((json_int_t) b->charge_index));
			json_object_set_new(charge, "nonce", hex_json(b->charge_nonce, 32, true));
			json_object_set_new(charge, "query_sha256", hex_json(b->charge_query_hash, 32, false));
			json_object_set_new(charge, "delta_pico", json_integer((json_int_t) b->charge_delta_pico));
			json_object_set_new(charge, "account", hex_json(b->charge_account, DC_ADDR_LEN, true));
		}
		else
			json_object_set_new(charge, "ledger", json_string("local"));
		json_object_set_new(body, "charge", charge);
	}
	json_object_set_new(body, "issued_at", str_or_null(b->issued_at));
	json_object_set_new(body, "sequence", json_integer(b->sequence));
	json_object_set_new(body, "prev_receipt_hash", str_or_null(b->prev_receipt_hash));
	if (has_real(body))
	{
		json_decref(body);
		return derr_set(err, DERR_FORMAT, "receipt body holds a JSON real number");
	}
	*canon = json_dumps(body, CANON_FLAGS);
	json_decref(body);
	ok = *canon != NULL;
	if (!ok)
		return derr_set(err, DERR_NOMEM, "out of memory serialising a receipt body");
	dc_sha256(*canon, strlen(*canon), body_hash);
	return true;
}
