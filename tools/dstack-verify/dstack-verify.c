/*
 * dstack-verify: check a pg_dstack receipt (docs/receipts.md) offline against
 * a KMS root public key, its TDX quote against Intel's root (and TCB with
 * --collateral), and with --rpc the chain state it cites.
 *
 *   dstack-verify --kms-root HEX [options] RECEIPT.json
 *   dstack-verify --kms-root HEX [options] --chain R1.json R2.json ...
 *   dstack-verify --quote FILE [options]
 *   dstack-verify --ledger --rpc URL --app ADDR [--kms-root HEX]   (ledger.c)
 *
 * One line per check; the first failure prints "FAIL <check>: <reason>" and
 * exits 1.  Usage errors exit 2.  Exit 0 means every check passed, the TCB
 * included; 3: every check passed but the TCB was not evaluated (no
 * --collateral); 4: every check passed, the TCB is not UpToDate.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "crypto.h"
#include "hex.h"
#include "ledger.h"
#include "quote_check.h"
#include "rpc.h"
#include "sigchain.h"

/*
 * The receipt rules are implemented here again from docs/receipts.md, not
 * taken from common/receipt.c (the CVM's side): a verifier that shared the
 * signer's canonicalisation would share its bugs.
 */
#define RECEIPT_FORMAT		"dstack-receipt/v1"
#define RECEIPT_PURPOSE		"dstack-receipt/v1"
#define CANON_FLAGS			(JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII)

static bool quiet = false;
static bool chain_headers = false;	/* --chain: "== FILE" before each receipt's lines */

static void
ok(const char *fmt,...)
{
	va_list		ap;

	if (quiet)
		return;
	va_start(ap, fmt);
	fputs("ok   ", stdout);
	vprintf(fmt, ap);
	fputs(qc_tag, stdout);
	fputc('\n', stdout);
	va_end(ap);
}

/* The first failure ends the run: a receipt is valid only if everything holds. */
static void fail(const char *check, const char *fmt,...) __attribute__((format(printf, 2, 3), noreturn));

static void
fail(const char *check, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	printf("FAIL %s: ", check);
	vprintf(fmt, ap);
	fputs(qc_tag, stdout);
	fputc('\n', stdout);
	va_end(ap);
	exit(1);
}

static const char *
jstr(json_t *obj, const char *path, const char *check)
{
	json_t	   *v = obj;
	char		buf[128];
	char	   *tok,
			   *save = NULL;

	snprintf(buf, sizeof(buf), "%s", path);
	for (tok = strtok_r(buf, ".", &save); tok && v; tok = strtok_r(NULL, ".", &save))
		v = json_object_get(v, tok);
	if (!json_is_string(v))
		fail(check, "the receipt has no string field %s", path);
	return json_string_value(v);
}

static void
hexfield(json_t *obj, const char *path, uint8_t *out, size_t len, const char *check)
{
	DErr		err;

	derr_clear(&err);
	if (!dhex_decode_exact(jstr(obj, path, check), out, len, path, &err))
		fail(check, "field %s is not %zu bytes of hex (%s)", path, len, err.detail[0] ? err.detail : err.msg);
}

static uint64_t
juint(json_t *obj, const char *a, const char *b, const char *check)
{
	json_t	   *v = json_object_get(json_object_get(obj, a), b);

	if (!json_is_integer(v) || json_integer_value(v) < 0)
		fail(check, "the receipt has no integer field %s.%s", a, b);
	return (uint64_t) json_integer_value(v);
}

static const char *
hexaddr(const uint8_t a[DC_ADDR_LEN])
{
	static char buf[2 * DC_ADDR_LEN + 1];

	dhex_encode(a, DC_ADDR_LEN, buf);
	return buf;
}

/* Reals have no canonical text across languages: a body must not hold any. */
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

/* body.policy (docs/receipts.md): the policy the CVM read from its measured app-compose. */
typedef struct ReceiptPolicy
{
	bool		present;		/* absent in receipts from before the field */
	const char *epsilon_total;	/* "I.FFFFFF" */
	int64_t		epsilon_total_micro;
	const char *delta;			/* as the compose writes it */
	const char *epsilon_select;
	int64_t		min_group_size;
	const char *privacy_unit;
	int64_t		max_rows_per_unit;
} ReceiptPolicy;

static bool
digit(char c)
{
	return c >= '0' && c <= '9';
}

/* An epsilon as receipts write it: digits, a point, exactly six digits; in millionths. */
static bool
micro6(const char *s, int64_t *out)
{
	int64_t		v = 0;
	int			n = 0;

	for (; digit(*s); s++)
	{
		if (++n > 12)
			return false;
		v = v * 10 + (*s - '0');
	}
	if (n == 0 || *s++ != '.')
		return false;
	for (int i = 0; i < 6; i++, s++)
	{
		if (!digit(*s))
			return false;
		v = v * 10 + (*s - '0');
	}
	*out = v;
	return *s == '\0';
}

/* A probability as the compose writes it: digits [. digits] [e|E [+|-] digits], in (0, 1). */
static bool
delta_ok(const char *s)
{
	const char *p = s;
	char	   *end;
	double		d;

	if (!digit(*p))
		return false;
	while (digit(*p))
		p++;
	if (*p == '.')
	{
		if (!digit(*++p))
			return false;
		while (digit(*p))
			p++;
	}
	if (*p == 'e' || *p == 'E')
	{
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!digit(*p))
			return false;
		while (digit(*p))
			p++;
	}
	if (*p != '\0')
		return false;
	errno = 0;
	d = strtod(s, &end);
	return *end == '\0' && errno != ERANGE && d > 0.0 && d < 1.0;
}

/* A string member of body.policy, or the failure naming it. */
static const char *
policy_str(json_t *pol, const char *name)
{
	json_t	   *v = json_object_get(pol, name);

	if (!json_is_string(v))
		fail("policy", "body.policy has no string field %s", name);
	return json_string_value(v);
}

static int64_t
policy_int(json_t *pol, const char *name, int64_t lo, int64_t hi)
{
	json_t	   *v = json_object_get(pol, name);

	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
		fail("policy", "body.policy.%s must be an integer from %lld to %lld", name, (long long) lo, (long long) hi);
	return (int64_t) json_integer_value(v);
}

/* Read and check the form of body.policy; absent is allowed (older receipts). */
static void
read_policy(json_t *body, ReceiptPolicy *p)
{
	json_t	   *pol = json_object_get(body, "policy");

	memset(p, 0, sizeof(*p));
	if (pol == NULL)
		return;
	if (!json_is_object(pol))
		fail("policy", "body.policy is not an object");
	p->present = true;
	p->epsilon_total = policy_str(pol, "epsilon_total");
	if (!micro6(p->epsilon_total, &p->epsilon_total_micro) || p->epsilon_total_micro <= 0)
		fail("policy", "body.policy.epsilon_total \"%.40s\" is not a positive decimal with six decimals",
			 p->epsilon_total);
	p->epsilon_select = policy_str(pol, "epsilon_select");
	{
		int64_t		m;

		if (!micro6(p->epsilon_select, &m) || m <= 0)
			fail("policy", "body.policy.epsilon_select \"%.40s\" is not a positive decimal with six decimals",
				 p->epsilon_select);
	}
	p->delta = policy_str(pol, "delta");
	if (!delta_ok(p->delta))
		fail("policy", "body.policy.delta \"%.40s\" is not a number between 0 and 1", p->delta);
	p->min_group_size = policy_int(pol, "min_group_size", 0, INT32_MAX);
	p->max_rows_per_unit = policy_int(pol, "max_rows_per_unit", 1, 1000);
	p->privacy_unit = policy_str(pol, "privacy_unit");
	if (p->privacy_unit[0] == '\0')
		fail("policy", "body.policy.privacy_unit is empty");
}

typedef struct Verified
{
	uint8_t		body_hash[32];
	uint64_t	sequence;
	uint8_t		prev_hash[32];
	int			outcome;		/* QC_EXIT_VALID, QC_EXIT_TCB_UNKNOWN or QC_EXIT_TCB_NOT_CURRENT */
} Verified;

/* All offline checks, then the chain checks when rpc_url is given. */
static void usage_error(const char *fmt,...) __attribute__((format(printf, 1, 2), noreturn));

/* Member i of a return value made of dynamic bytes members: its bytes (into out, malloc()ed). */
static bool
ret_bytes(const uint8_t *r, size_t rl, size_t i, uint8_t **out, size_t *n)
{
	uint64_t	off,
				len;
	DErr		err = {0};

	*out = NULL;
	*n = 0;
	if (!abi_get_uint(r, rl, i, 64, &off, &err) || off > rl || rl - off < ABI_WORD ||
		!abi_get_uint(r + off, rl - off, 0, 64, &len, &err) || len > rl - off - ABI_WORD)
		return false;
	*out = malloc(len ? len : 1);
	if (*out == NULL)
		return false;
	memcpy(*out, r + off + ABI_WORD, len);
	*n = len;
	return true;
}

/*
 * --kms-contract: dstack's KMS contract (DstackKms) records its root key
 * (kmsInfo().k256Pubkey, 33 bytes compressed) and its CA key (caPubkey,
 * what dstack's key-provider event names); read them at the latest block.
 */
static void
kms_root_from_contract(const char *rpc_url, const char *contract_hex, char root_hex[2 * DC_PUBKEY_LEN + 1],
					   char **id_hex)
{
	HttpOptions hopt;
	RpcClient  *rpc;
	uint8_t		contract[DC_ADDR_LEN];
	uint8_t    *call = NULL,
			   *r = NULL,
			   *k256 = NULL,
			   *ca = NULL;
	size_t		call_len,
				rl,
				nk,
				nc;
	DErr		err = {0};

	if (strncmp(contract_hex, "0x", 2) != 0 || !dhex_decode_exact(contract_hex + 2, contract, DC_ADDR_LEN, "--kms-contract", &err))
		usage_error("--kms-contract: a 0x address");
	http_options_default(&hopt);
	rpc = rpc_new(rpc_url, &hopt, &err);
	if (rpc == NULL || !abi_encode_static_call("kmsInfo()", NULL, 0, &call, &call_len, &err) ||
		!rpc_eth_call(rpc, contract, call, call_len, RPC_LATEST, &r, &rl, &err))
		fail("kms root", "kmsInfo() of the KMS contract %s: %s", contract_hex, err.msg);
	if (!ret_bytes(r, rl, 0, &k256, &nk) || !ret_bytes(r, rl, 1, &ca, &nc) || nk != DC_PUBKEY_LEN ||
		(k256[0] != 2 && k256[0] != 3))
		fail("kms root", "the KMS contract %s records no compressed secp256k1 root key in kmsInfo()", contract_hex);
	dhex_encode(k256, DC_PUBKEY_LEN, root_hex);
	*id_hex = malloc(2 * nc + 1);
	if (*id_hex)
		dhex_encode(ca, nc, *id_hex);
	ok("kms root %.16s... and KMS id read from the KMS contract %s", root_hex, contract_hex);
	free(call);
	free(r);
	free(k256);
	free(ca);
	rpc_free(rpc);
}

/* "1.500000" (six decimals) to millionths, or -1. */
static int64_t
eps_micro_of(const char *s)
{
	int64_t		v;

	return s && micro6(s, &v) ? v : -1;
}

/*
 * body.charge (docs/receipts.md): with ledger "chain", the charge the CVM
 * sent before it read a row must be on the consortium contract, equal to
 * the receipt's epsilon, delta, query and datasets.
 */
static void
check_charge(json_t *body, RpcClient *rpc, const uint8_t app_id[DC_ADDR_LEN])
{
	json_t	   *c = json_object_get(body, "charge");
	const char *ledger = json_string_value(json_object_get(c, "ledger"));
	json_t	   *jindex = json_object_get(c, "index");
	json_t	   *datasets = json_object_get(body, "datasets");
	uint8_t		w[1][ABI_WORD];
	uint8_t    *call = NULL,
			   *r = NULL;
	size_t		call_len,
				rl,
				n = 0;
	uint8_t		query[32],
				nonce[32],
				want_nonce[32],
				want_query[32];
	uint8_t		(*manifests)[32] = NULL;
	uint64_t	eps = 0,
				delta = 0,
				blk = 0;
	const char *q = jstr(body, "query", "charge");
	DErr		err = {0};

	if (c == NULL)
	{
		qc_note("the receipt states no charge (a receipt from before the on-chain ledger)");
		return;
	}
	if (ledger && strcmp(ledger, "local") == 0)
	{
		qc_note("charged on the CVM's local ledger only (server option ledger 'local'): no on-chain charge to check");
		return;
	}
	if (ledger == NULL || strcmp(ledger, "chain") != 0 || !json_is_integer(jindex) || json_integer_value(jindex) < 0)
		fail("charge", "body.charge is neither a local nor an on-chain charge with an index");
	abi_word_uint64((uint64_t) json_integer_value(jindex), w[0]);
	if (!abi_encode_static_call("charges(uint256)", (const uint8_t (*)[ABI_WORD]) w, 1, &call, &call_len, &err) ||
		!rpc_eth_call(rpc, app_id, call, call_len, RPC_LATEST, &r, &rl, &err) ||
		!abi_get_bytes32(r, rl, 0, query, &err) || !abi_get_uint(r, rl, 1, 64, &eps, &err) ||
		!abi_get_uint(r, rl, 2, 64, &delta, &err) || !abi_get_bytes32(r, rl, 3, nonce, &err) ||
		!abi_get_uint(r, rl, 4, 64, &blk, &err) || !abi_get_bytes32_array(r, rl, 5, &manifests, &n, &err))
	{
		free(call);
		free(r);
		fail("charge", "charge %lld is not on the consortium contract: %s", (long long) json_integer_value(jindex),
			 err.msg);
	}
	free(call);
	free(r);
	{
		const char *nh = jstr(body, "charge.nonce", "charge");

		if (strncmp(nh, "0x", 2) != 0 || !dhex_decode_exact(nh + 2, want_nonce, 32, "charge.nonce", &err))
			fail("charge", "body.charge.nonce is not 0x and 32 bytes of hex");
	}
	dc_sha256(q, strlen(q), want_query);
	if (memcmp(nonce, want_nonce, 32) != 0)
		fail("charge", "charge %lld on chain has another nonce than the receipt cites", (long long) json_integer_value(jindex));
	if (memcmp(query, want_query, 32) != 0)
		fail("charge", "charge %lld on chain is for another query (sha256 of body.query differs)",
			 (long long) json_integer_value(jindex));
	if ((int64_t) eps != eps_micro_of(jstr(body, "epsilon.charged", "charge")))
		fail("charge", "charge %lld on chain is epsilon %llu millionths, the receipt says %s",
			 (long long) json_integer_value(jindex), (unsigned long long) eps, jstr(body, "epsilon.charged", "charge"));
	if (delta != juint(body, "charge", "delta_pico", "charge") || blk != juint(body, "charge", "block_number", "charge"))
		fail("charge", "charge %lld on chain has another delta or block than the receipt cites",
			 (long long) json_integer_value(jindex));
	if (!json_is_array(datasets) || json_array_size(datasets) != n)
		fail("charge", "charge %lld on chain names %zu datasets, the receipt %zu", (long long) json_integer_value(jindex),
			 n, json_array_size(datasets));
	for (size_t i = 0; i < n; i++)
	{
		uint8_t		mh[32];
		const char *t = json_string_value(json_object_get(json_array_get(datasets, i), "manifest_hash"));

		if (t == NULL || !dhex_decode_exact(t, mh, 32, "manifest_hash", &err))
			fail("charge", "body.datasets[%zu].manifest_hash is not 32 bytes of hex", i);
		if (memcmp(mh, manifests[i], 32) != 0)
			fail("charge", "charge %lld on chain names other dataset versions than the receipt",
				 (long long) json_integer_value(jindex));
	}
	free(manifests);
	ok("charge %lld on chain at block %llu: epsilon %s, delta %llu x 1e-12, the receipt's query and %zu dataset "
	   "version(s)", (long long) json_integer_value(jindex), (unsigned long long) blk,
	   jstr(body, "epsilon.charged", "charge"), (unsigned long long) delta, n);
}

static void
verify_one(const char *path, const uint8_t kms_root[DC_PUBKEY_LEN], const char *rpc_url, const QuoteCheckOptions *qo,
		   Verified *out)
{
	json_error_t jerr;
	json_t	   *r = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	json_t	   *body;
	char	   *canon;
	uint8_t		hash[32],
				claimed[32],
				digest[32],
				pub[DC_PUBKEY_LEN],
				sig[DC_SIG_LEN],
				recovered[DC_PUBKEY_LEN],
				chain[2][DC_SIG_LEN],
				app_id[DC_ADDR_LEN],
				report_data[64],
				expect_rd[64];
	uint8_t    *quote = NULL;
	size_t		quote_len = 0;
	bool		simulated;
	char		hexbuf[2 * DC_PUBKEY_LEN + 1];
	DErr		err;
	ReceiptPolicy pol;

	derr_clear(&err);
	out->outcome = QC_EXIT_VALID;
	if (r == NULL)
		fail("receipt", "%s is not JSON: %s (line %d)", path, jerr.text, jerr.line);
	/* a simulated quote marks every line, from the first (a missing quote fails at step 4) */
	{
		json_t	   *qq = json_object_get(json_object_get(r, "quote"), "quote");

		if (!json_is_string(qq) || !dhex_decode_alloc(json_string_value(qq), &quote, &quote_len, "quote", &err))
			quote = NULL;
		derr_clear(&err);
	}
	simulated = quote != NULL && quote_is_simulated(quote, quote_len);
	qc_tag = simulated ? " [SIMULATED]" : "";
	if (chain_headers && !quiet)
		printf("== %s%s\n", path, qc_tag);
	body = json_object_get(r, "body");
	if (!json_is_object(body))
		fail("receipt", "%s has no body object", path);

	if (!json_is_string(json_object_get(body, "format")) ||
		strcmp(json_string_value(json_object_get(body, "format")), RECEIPT_FORMAT) != 0)
		fail("receipt", "%s is not a %s receipt (body.format)", path, RECEIPT_FORMAT);

	/* 1. canonical body hash */
	if (has_real(body))
		fail("body hash", "the body holds a JSON real number, which has no canonical encoding");
	canon = json_dumps(body, CANON_FLAGS);
	if (canon == NULL)
		fail("body hash", "the body cannot be serialised");
	dc_sha256(canon, strlen(canon), hash);
	free(canon);
	hexfield(r, "body_sha256", claimed, 32, "body hash");
	if (!dc_equal(hash, claimed, 32))
		fail("body hash", "sha256 of the canonical body is not body_sha256: a body field was changed");
	ok("body hash %s", jstr(r, "body_sha256", "body hash"));

	/* 2. signature by the receipt key */
	hexfield(r, "signature.public_key", pub, DC_PUBKEY_LEN, "signature");
	hexfield(r, "signature.value", sig, DC_SIG_LEN, "signature");
	if (sig[64] > 1)
		fail("signature", "the recovery id v of signature.value is %d, not 0 or 1", sig[64]);
	{
		DcBuf		parts[2] = {{RECEIPT_PURPOSE ":", sizeof(RECEIPT_PURPOSE ":") - 1}, {hash, 32}};

		dc_keccak256_parts(parts, 2, digest);
	}
	if (!dc_recover_pubkey(digest, sig, recovered, &err) || !dc_equal(recovered, pub, DC_PUBKEY_LEN))
		fail("signature", "the signature over the body hash is not by the receipt key %s",
			 jstr(r, "signature.public_key", "signature"));
	dhex_encode(pub, DC_PUBKEY_LEN, hexbuf);
	ok("signature by receipt key %.16s...", hexbuf);

	/* 3. the receipt key's dstack chain ends at the KMS root, for the body's app id */
	if (strcmp(jstr(r, "signature.purpose", "key chain"), RECEIPT_PURPOSE) != 0)
		fail("key chain", "the receipt key's purpose is not %s", RECEIPT_PURPOSE);
	{
		json_t	   *ch = json_object_get(json_object_get(r, "signature"), "signature_chain");

		if (!json_is_array(ch) || json_array_size(ch) != 2 ||
			!json_is_string(json_array_get(ch, 0)) || !json_is_string(json_array_get(ch, 1)) ||
			!dhex_decode_exact(json_string_value(json_array_get(ch, 0)), chain[0], DC_SIG_LEN, "chain[0]", &err) ||
			!dhex_decode_exact(json_string_value(json_array_get(ch, 1)), chain[1], DC_SIG_LEN, "chain[1]", &err))
			fail("key chain", "signature.signature_chain must be two 65-byte hex signatures");
	}
	hexfield(body, "app_id", app_id, DC_ADDR_LEN, "key chain");
	if (!dstack_sigchain_verify(kms_root, app_id, RECEIPT_PURPOSE, pub, chain[0], chain[1], NULL, &err))
	{
		/* the library's detail (which link, which keys) goes on a line after the FAIL line */
		printf("FAIL key chain: %s%s\n", err.msg, qc_tag);
		if (err.detail[0])
			printf("     %s%s\n", err.detail, qc_tag);
		exit(1);
	}
	dhex_encode(kms_root, DC_PUBKEY_LEN, hexbuf);
	ok("key chain ends at KMS root %.16s... for app %s", hexbuf, jstr(body, "app_id", "key chain"));

	/* 4. the quote: Intel's signatures, RTMR3 replayed to the body's app, compose-hash, instance and KMS, report_data */
	memcpy(expect_rd, hash, 32);
	memset(expect_rd + 32, 0, 32);
	if (quote == NULL)
		fail("quote", "the receipt has no hex string field quote.quote");
	{
		json_t	   *sf = json_object_get(json_object_get(r, "quote"), "simulated");
		json_t	   *el = json_object_get(json_object_get(r, "quote"), "event_log");
		uint8_t		compose[32];
		uint8_t    *instance = NULL;
		size_t		instance_len = 0;
		QuoteExpect qe = {
			.need_event_log = true, .report_data = expect_rd, .app_id = app_id, .compose_hash = compose,
			.key_provider = true, .source = "body",
		};
		char	   *el_text = NULL;
		int			outcome;

		if (!json_is_boolean(sf))
			fail("quote", "the receipt has no boolean field quote.simulated");
		if (json_is_true(sf) != simulated)
			fail("quote", "quote.simulated is %s but the quote %s the simulator's marker",
				 json_is_true(sf) ? "true" : "false", simulated ? "carries" : "does not carry");
		hexfield(body, "compose_hash", compose, 32, "compose-hash");
		if (!dhex_decode_alloc(jstr(body, "instance_id", "instance-id"), &instance, &instance_len, "instance_id", &err))
			fail("instance-id", "body.instance_id is not hex");
		qe.instance_id = instance;
		qe.instance_id_len = instance_len;
		/* the guest agent returns the event log as a JSON string; an array is taken too */
		if (json_is_string(el))
			el_text = strdup(json_string_value(el));
		else if (json_is_array(el))
			el_text = json_dumps(el, JSON_COMPACT);
		else if (el != NULL)
			fail("event log", "quote.event_log is neither a JSON string nor an array");
		outcome = quote_check(quote, quote_len, el_text, qo, &qe);
		if (outcome > out->outcome)
			out->outcome = outcome;
		free(el_text);
		free(instance);
	}
	free(quote);
	/* the receipt's copy of report_data says the same */
	hexfield(r, "quote.report_data", report_data, 64, "report_data");
	if (!dc_equal(report_data, expect_rd, 64))
		fail("report_data", "quote.report_data is not the body hash followed by 32 zero bytes");

	/* the policy the CVM says it ran under (signed with the body; --rpc compares it with the contract) */
	read_policy(body, &pol);
	if (pol.present)
		ok("policy epsilon_total %.40s, delta %.40s, epsilon_select %.40s, min_group_size %lld, privacy_unit %.64s, "
		   "max_rows_per_unit %lld", pol.epsilon_total, pol.delta, pol.epsilon_select,
		   (long long) pol.min_group_size, pol.privacy_unit, (long long) pol.max_rows_per_unit);
	else
		qc_note("the receipt states no policy (a receipt from before the CVM read it from its measured "
				"app-compose); its policy is not checked");

	/* 5. the chain state the receipt cites */
	if (rpc_url)
	{
		HttpOptions hopt;
		RpcClient  *rpc;
		RpcBlock	blk;
		ConsortiumState st;
		uint64_t	chain_id,
					number = juint(body, "chain", "block_number", "chain");
		uint8_t		block_hash[32],
					compose[32];

		http_options_default(&hopt);
		rpc = rpc_new(rpc_url, &hopt, &err);
		if (rpc == NULL || !rpc_chain_id(rpc, &chain_id, &err))
			fail("chain", "%s", err.msg);
		if (chain_id != juint(body, "chain", "chain_id", "chain"))
			fail("chain", "the node at %s serves chain %llu, the receipt cites chain %llu", rpc_url,
				 (unsigned long long) chain_id, (unsigned long long) juint(body, "chain", "chain_id", "chain"));
		hexfield(body, "chain.block_hash", block_hash, 32, "chain");
		if (!rpc_get_block(rpc, number, &blk, &err))
			fail("chain", "block %llu: %s", (unsigned long long) number, err.msg);
		if (memcmp(blk.hash, block_hash, 32) != 0)
			fail("chain", "block %llu on chain has another hash than the receipt cites", (unsigned long long) number);
		ok("chain %llu block %llu hash matches", (unsigned long long) chain_id, (unsigned long long) number);
		memset(&st, 0, sizeof(st));
		if (!rpc_consortium_state(rpc, app_id, number, &st, &err))
			fail("consortium", "%s", err.msg);
		hexfield(body, "compose_hash", compose, 32, "consortium");
		if (st.revoked)
			fail("consortium", "the consortium was revoked at block %llu", (unsigned long long) number);
		if (st.approval_count < st.threshold)
			fail("consortium", "only %llu of %llu approvals at block %llu", (unsigned long long) st.approval_count,
				 (unsigned long long) st.threshold, (unsigned long long) number);
		if (memcmp(st.block_hash, block_hash, 32) != 0)
			fail("chain", "block %llu changed its hash while it was read (reorganisation)", (unsigned long long) number);
		if (memcmp(st.compose_hash, compose, 32) != 0)
			fail("consortium", "the contract does not pin the receipt's compose-hash");
		if (st.approval_count != juint(body, "chain", "approvals", "consortium") ||
			st.threshold != juint(body, "chain", "threshold", "consortium"))
			fail("consortium", "the receipt cites %llu/%llu approvals, the chain says %llu/%llu",
				 (unsigned long long) juint(body, "chain", "approvals", "consortium"),
				 (unsigned long long) juint(body, "chain", "threshold", "consortium"),
				 (unsigned long long) st.approval_count, (unsigned long long) st.threshold);
		ok("consortium approved %llu/%llu, not revoked, compose-hash pinned at block %llu",
		   (unsigned long long) st.approval_count, (unsigned long long) st.threshold, (unsigned long long) number);
		if (pol.present)
		{
			const ConsortiumPolicy *cp = &st.policy;
			const char *unit = cp->privacy_unit ? cp->privacy_unit : "";

			if (cp->epsilon_milli > (uint64_t) (INT64_MAX / 1000) ||
				(int64_t) cp->epsilon_milli * 1000 != pol.epsilon_total_micro)
				fail("policy", "the receipt's policy has epsilon_total %s, the contract's policy() at block %llu "
					 "has %llu.%03llu", pol.epsilon_total, (unsigned long long) number,
					 (unsigned long long) (cp->epsilon_milli / 1000), (unsigned long long) (cp->epsilon_milli % 1000));
			if ((int64_t) cp->min_group_size != pol.min_group_size)
				fail("policy", "the receipt's policy has min_group_size %lld, the contract's policy() at block %llu "
					 "has %u", (long long) pol.min_group_size, (unsigned long long) number, cp->min_group_size);
			if (strcmp(unit, pol.privacy_unit) != 0)
				fail("policy", "the receipt's policy has privacy_unit \"%.64s\", the contract's policy() at block "
					 "%llu has \"%.64s\"", pol.privacy_unit, (unsigned long long) number, unit);
			ok("policy agrees with the contract's policy() at block %llu (epsilon_total, min_group_size, "
			   "privacy_unit)", (unsigned long long) number);
		}
		rpc_consortium_state_free(&st);
		check_charge(body, rpc, app_id);

		/*
		 * A receipt attests the state at the block it cites; a later
		 * revocation does not make it invalid, but the reader should know.
		 */
		memset(&st, 0, sizeof(st));
		if (!rpc_consortium_state(rpc, app_id, RPC_LATEST, &st, &err))
			qc_note("the consortium's latest state cannot be read: %s", err.msg);
		else if (st.revoked)
			qc_note("the consortium was revoked after this receipt (by 0x%s at latest block %llu%s%s); "
					"the receipt remains valid for block %llu",
					hexaddr(st.revoked_by), (unsigned long long) st.block_number,
					st.revoke_reason && st.revoke_reason[0] ? ": " : "", st.revoke_reason ? st.revoke_reason : "",
					(unsigned long long) number);
		rpc_consortium_state_free(&st);
		rpc_free(rpc);
	}

	memcpy(out->body_hash, hash, 32);
	{
		json_t	   *seq = json_object_get(body, "sequence");

		if (!json_is_integer(seq) || json_integer_value(seq) < 0)
			fail("audit chain", "the receipt has no integer field sequence");
		out->sequence = (uint64_t) json_integer_value(seq);
	}
	hexfield(body, "prev_receipt_hash", out->prev_hash, 32, "audit chain");
	json_decref(r);
}

static void
usage(void)
{
	fprintf(stderr,
			"usage: dstack-verify --kms-root HEX [options] RECEIPT.json\n"
			"       dstack-verify --kms-root HEX [options] --chain R1.json R2.json ...\n"
			"       dstack-verify --quote FILE [--report-data HEX] [options]\n"
			"       dstack-verify --ledger --rpc URL --app ADDR [--kms-root HEX] [--quiet]\n"
			"options: --rpc URL          check the chain state the receipt cites\n"
			"         --collateral FILE  Intel collateral (PCCS / dcap-qvl JSON): evaluate the TCB\n"
			"         --kms-id HEX       the KMS as dstack's key-provider event names it (its CA public key)\n"
			"         --kms-contract ADDR  read the KMS root and the KMS id from dstack's KMS contract (with --rpc)\n"
			"         --at TIME          verify at TIME (Unix seconds or YYYY-MM-DDThh:mm:ssZ), not now\n"
			"         --allow-simulated  accept tools/dstack-sim's quotes (every line says SIMULATED)\n"
			"         --quiet            print only a failure\n"
			"exit: 0 valid; 1 a check failed; 2 usage; 3 valid, TCB not evaluated; 4 valid, TCB not UpToDate\n");
	exit(QC_EXIT_USAGE);
}

static void
usage_error(const char *fmt,...)
{
	va_list		ap;

	fputs("dstack-verify: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(QC_EXIT_USAGE);
}

int
main(int argc, char **argv)
{
	const char *kms_hex = NULL,
			   *rpc_url = NULL,
			   *collateral_path = NULL,
			   *kms_id_hex = NULL,
			   *quote_path = NULL,
			   *report_data_hex = NULL,
			   *app_hex = NULL,
			   *kms_contract_hex = NULL;
	char		kms_from_chain[2 * DC_PUBKEY_LEN + 1];
	char	   *kms_id_from_chain = NULL;
	bool		chain_mode = false,
				ledger = false,
				any_simulated = false;
	int			first = 0,
				outcome = QC_EXIT_VALID;
	uint8_t		kms_root[DC_PUBKEY_LEN];
	uint8_t    *kms_id = NULL;
	DErr		err;
	Verified	prev,
				cur;
	QuoteCheckOptions qo;

	memset(&qo, 0, sizeof(qo));
	qo.at = time(NULL);
	for (int i = 1; i < argc; i++)
	{
		if (strcmp(argv[i], "--kms-root") == 0 && i + 1 < argc)
			kms_hex = argv[++i];
		else if (strcmp(argv[i], "--rpc") == 0 && i + 1 < argc)
			rpc_url = argv[++i];
		else if (strcmp(argv[i], "--collateral") == 0 && i + 1 < argc)
			collateral_path = argv[++i];
		else if (strcmp(argv[i], "--kms-id") == 0 && i + 1 < argc)
			kms_id_hex = argv[++i];
		else if (strcmp(argv[i], "--kms-contract") == 0 && i + 1 < argc)
			kms_contract_hex = argv[++i];
		else if (strcmp(argv[i], "--at") == 0 && i + 1 < argc)
		{
			if (!quote_parse_time_arg(argv[++i], &qo.at))
				usage_error("--at %s: not Unix seconds nor YYYY-MM-DDThh:mm:ssZ", argv[i]);
		}
		else if (strcmp(argv[i], "--quote") == 0 && i + 1 < argc)
			quote_path = argv[++i];
		else if (strcmp(argv[i], "--report-data") == 0 && i + 1 < argc)
			report_data_hex = argv[++i];
		else if (strcmp(argv[i], "--allow-simulated") == 0)
			qo.allow_simulated = true;
		else if (strcmp(argv[i], "--quiet") == 0)
			quiet = true;
		else if (strcmp(argv[i], "--chain") == 0)
			chain_mode = true;
		else if (strcmp(argv[i], "--ledger") == 0)
			ledger = true;
		else if (strcmp(argv[i], "--app") == 0 && i + 1 < argc)
			app_hex = argv[++i];
		else if (argv[i][0] == '-')
			usage();
		else
		{
			first = i;
			break;
		}
	}
	derr_clear(&err);
	qc_quiet = quiet;
	if (kms_contract_hex)
	{
		/* the KMS root (and the KMS's CA key, which dstack's key-provider event names) from the chain */
		if (rpc_url == NULL)
			usage_error("--kms-contract reads the KMS contract through --rpc");
		kms_root_from_contract(rpc_url, kms_contract_hex, kms_from_chain, &kms_id_from_chain);
		if (kms_hex && strcasecmp(kms_hex, kms_from_chain) != 0)
			fail("kms root", "--kms-root %.66s is not the root key %s the KMS contract %s records", kms_hex,
				 kms_from_chain, kms_contract_hex);
		kms_hex = kms_from_chain;
		if (kms_id_hex == NULL && kms_id_from_chain && kms_id_from_chain[0])
			kms_id_hex = kms_id_from_chain;
	}
	if (ledger && (first != 0 || chain_mode))
		usage();
	if (ledger)
		return dstack_verify_ledger(rpc_url, app_hex, kms_hex, quiet);
	if (app_hex != NULL)
		usage();
	if (quote_path ? (first != 0 || chain_mode || rpc_url) : (kms_hex == NULL || first == 0 ||
															  (!chain_mode && first != argc - 1)))
		usage();
	if (report_data_hex && !quote_path)
		usage_error("--report-data goes with --quote (a receipt's report_data is its body hash)");
	if (kms_hex && !dhex_decode_exact(kms_hex, kms_root, DC_PUBKEY_LEN, "--kms-root", &err))
		usage_error("--kms-root: %s", err.detail[0] ? err.detail : err.msg);
	if (kms_hex)
		qo.kms_root = kms_root;
	if (kms_id_hex)
	{
		if (!dhex_decode_alloc(kms_id_hex, &kms_id, &qo.kms_id_len, "--kms-id", &err) || qo.kms_id_len == 0)
			usage_error("--kms-id: not hex");
		qo.kms_id = kms_id;
	}
	if (collateral_path)
	{
		TdxErr		terr;

		qo.collateral = tdx_collateral_load(collateral_path, &terr);
		if (qo.collateral == NULL)
			usage_error("--collateral: %s", terr.msg);
	}

	if (quote_path)
	{
		uint8_t    *quote = NULL,
					rd[64];
		size_t		quote_len = 0;
		char	   *event_log = NULL;
		QuoteExpect qe = {.source = "--report-data"};

		{
			TdxErr		terr;

			if (!quote_read_file(quote_path, &quote, &quote_len, &event_log, &terr))
				usage_error("--quote %s: %s", quote_path, terr.msg);
		}
		if (report_data_hex)
		{
			uint8_t    *b = NULL;
			size_t		n = 0;

			if (!dhex_decode_alloc(report_data_hex, &b, &n, "--report-data", &err) || n == 0 || n > 64)
				usage_error("--report-data: 1 to 64 bytes of hex (zero-padded to 64, as the guest agent does)");
			memset(rd, 0, 64);
			memcpy(rd, b, n);
			free(b);
			qe.report_data = rd;
		}
		qe.key_provider = qo.kms_root || qo.kms_id;
		any_simulated = quote_is_simulated(quote, quote_len);
		qc_tag = any_simulated ? " [SIMULATED]" : "";
		outcome = quote_check(quote, quote_len, event_log, &qo, &qe);
		free(quote);
		free(event_log);
	}
	else
		for (int i = first; i < argc; i++)
		{
			chain_headers = chain_mode;
			verify_one(argv[i], kms_root, rpc_url, &qo, &cur);
			if (qc_tag[0])
				any_simulated = true;
			if (cur.outcome > outcome)
				outcome = cur.outcome;
			if (chain_mode && i > first)
			{
				if (cur.sequence != prev.sequence + 1)
					fail("audit chain", "%s has sequence %llu after %llu", argv[i],
						 (unsigned long long) cur.sequence, (unsigned long long) prev.sequence);
				if (memcmp(cur.prev_hash, prev.body_hash, 32) != 0)
					fail("audit chain", "%s does not link to the previous receipt's body hash", argv[i]);
				ok("audit chain: sequence %llu links to %llu", (unsigned long long) cur.sequence,
				   (unsigned long long) prev.sequence);
			}
			prev = cur;
		}
	qc_tag = any_simulated ? " [SIMULATED]" : "";
	if (!quiet)
		printf("%s%s%s\n", quote_path ? "quote valid" : chain_mode ? "receipt chain valid" : "receipt valid",
			   outcome == QC_EXIT_TCB_UNKNOWN ? ", TCB not evaluated (no --collateral)"
			   : outcome == QC_EXIT_TCB_NOT_CURRENT ? ", but the platform's TCB is not UpToDate (the tcb line)" : "",
			   qc_tag);
	tdx_collateral_free(qo.collateral);
	free(kms_id);
	return outcome;
}
