/*
 * dstack-verify: check a pg_dstack receipt (docs/receipts.md) offline against
 * a KMS root public key, and with --rpc against the chain state it cites.
 *
 *   dstack-verify --kms-root HEX [--rpc URL] [--quiet] RECEIPT.json
 *   dstack-verify --kms-root HEX [--rpc URL] --chain R1.json R2.json ...
 *
 * One line per check; the first failure prints "FAIL <check>: <reason>" and
 * exits 1.  Usage errors exit 2.  Exit 0 means every check passed.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "crypto.h"
#include "hex.h"
#include "rpc.h"
#include "sigchain.h"
#include "tdx_quote.h"

/*
 * The receipt rules are implemented here again from docs/receipts.md, not
 * taken from common/receipt.c (the CVM's side): a verifier that shared the
 * signer's canonicalisation would share its bugs.
 */
#define RECEIPT_FORMAT		"dstack-receipt/v1"
#define RECEIPT_PURPOSE		"dstack-receipt/v1"
#define CANON_FLAGS			(JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII)

/* TDX quote v4: 48-byte header, 584-byte TD report body, u32 signature length, signature */

static bool quiet = false;

static void
ok(const char *fmt,...)
{
	va_list		ap;

	if (quiet)
		return;
	va_start(ap, fmt);
	fputs("ok   ", stdout);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	va_end(ap);
}

/* The first failure ends the run: a receipt is valid only if everything holds. */
static void
fail(const char *check, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	printf("FAIL %s: ", check);
	vprintf(fmt, ap);
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
} Verified;

/* All offline checks, then the chain checks when rpc_url is given. */
static void
verify_one(const char *path, const uint8_t kms_root[DC_PUBKEY_LEN], const char *rpc_url, Verified *out)
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
	TdxqReport	rep;
	char		hexbuf[2 * DC_PUBKEY_LEN + 1];
	DErr		err;
	ReceiptPolicy pol;

	derr_clear(&err);
	if (r == NULL)
		fail("receipt", "%s is not JSON: %s (line %d)", path, jerr.text, jerr.line);
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
		printf("FAIL key chain: %s\n", err.msg);
		if (err.detail[0])
			printf("     %s\n", err.detail);
		exit(1);
	}
	dhex_encode(kms_root, DC_PUBKEY_LEN, hexbuf);
	ok("key chain ends at KMS root %.16s... for app %s", hexbuf, jstr(body, "app_id", "key chain"));

	/* 4. the quote carries the body hash as report_data */
	memcpy(expect_rd, hash, 32);
	memset(expect_rd + 32, 0, 32);
	hexfield(r, "quote.report_data", report_data, 64, "quote");
	if (!dc_equal(report_data, expect_rd, 64))
		fail("quote", "report_data is not the body hash followed by 32 zero bytes");
	if (!dhex_decode_alloc(jstr(r, "quote.quote", "quote"), &quote, &quote_len, "quote", &err))
		fail("quote", "quote.quote is not hex");
	if (!tdxq_parse(quote, quote_len, &rep, &err))
		fail("quote", "quote.quote is not a TDX quote v4 (%zu bytes): %s", quote_len, err.detail);
	if (memcmp(rep.report_data, expect_rd, 64) != 0)
		fail("quote", "the report_data inside the quote (offset %d) is not the body hash", TDXQ_REPORT_DATA_OFFSET);
	simulated = tdxq_is_simulated(quote, quote_len);
	{
		json_t	   *sf = json_object_get(json_object_get(r, "quote"), "simulated");

		if (!json_is_boolean(sf))
			fail("quote", "the receipt has no boolean field quote.simulated");
		if (json_is_true(sf) != simulated)
			fail("quote", "quote.simulated is %s but the quote %s the simulator's", json_is_true(sf) ? "true" : "false",
				 simulated ? "is" : "is not");
	}
	/* RTMR3 is the replay of the event log, which measures the body's app id and compose-hash */
	{
		const char *elog = json_string_value(json_object_get(json_object_get(r, "quote"), "event_log"));
		json_t	   *log = elog && elog[0] ? json_loads(elog, 0, &jerr) : NULL;
		uint8_t		rtmr3[TDXQ_MR_LEN];
		uint8_t		compose[32];
		uint8_t    *p = NULL;
		size_t		plen = 0;
		bool		found;

		if (log == NULL && simulated)
			fail("quote", "a simulated quote needs its event log (quote.event_log) to be checked");
		if (log != NULL)
		{
			if (!tdxq_replay_rtmr3(log, NULL, rtmr3, &err))
				fail("quote", "quote.event_log: %s (%s)", err.msg, err.detail);
			if (memcmp(rtmr3, rep.rtmr[3], TDXQ_MR_LEN) != 0)
				fail("quote", "the quote's RTMR3 is not the replay of quote.event_log");
			if (!tdxq_event_payload(log, "app-id", &p, &plen, &found, &err) || !found || plen != DC_ADDR_LEN ||
				memcmp(p, app_id, DC_ADDR_LEN) != 0)
				fail("quote", "the event log's app-id is not the body's app_id");
			free(p);
			hexfield(body, "compose_hash", compose, 32, "quote");
			if (!tdxq_event_payload(log, "compose-hash", &p, &plen, &found, &err) || !found || plen != 32 ||
				memcmp(p, compose, 32) != 0)
				fail("quote", "the event log's compose-hash is not the body's compose_hash");
			free(p);
			json_decref(log);
		}
	}
	if (simulated)
		ok("quote report_data = body hash; RTMR3 replays the event log of the body's app and compose-hash "
		   "(SIMULATED quote: not signed by a TDX quoting enclave)");
	else
		ok("quote report_data = body hash (TDX quote: its signature is NOT checked offline; verify quote.quote with Intel DCAP)");
	free(quote);

	/* the policy the CVM says it ran under (signed with the body; --rpc compares it with the contract) */
	read_policy(body, &pol);
	if (pol.present)
		ok("policy epsilon_total %.40s, delta %.40s, epsilon_select %.40s, min_group_size %lld, privacy_unit %.64s, "
		   "max_rows_per_unit %lld", pol.epsilon_total, pol.delta, pol.epsilon_select,
		   (long long) pol.min_group_size, pol.privacy_unit, (long long) pol.max_rows_per_unit);
	else if (!quiet)
		printf("note the receipt states no policy (a receipt from before the CVM read it from its measured "
			   "app-compose); its policy is not checked\n");

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

		/*
		 * A receipt attests the state at the block it cites; a later
		 * revocation does not make it invalid, but the reader should know.
		 */
		memset(&st, 0, sizeof(st));
		if (!rpc_consortium_state(rpc, app_id, RPC_LATEST, &st, &err))
			printf("note the consortium's latest state cannot be read: %s\n", err.msg);
		else if (st.revoked)
			printf("note the consortium was revoked after this receipt (by 0x%s at latest block %llu%s%s); "
				   "the receipt remains valid for block %llu\n",
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
	fprintf(stderr, "usage: dstack-verify --kms-root HEX [--rpc URL] [--quiet] RECEIPT.json\n"
			"       dstack-verify --kms-root HEX [--rpc URL] [--quiet] --chain R1.json R2.json ...\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	const char *kms_hex = NULL,
			   *rpc_url = NULL;
	bool		chain_mode = false;
	int			first = 0;
	uint8_t		kms_root[DC_PUBKEY_LEN];
	DErr		err;
	Verified	prev,
				cur;

	for (int i = 1; i < argc; i++)
	{
		if (strcmp(argv[i], "--kms-root") == 0 && i + 1 < argc)
			kms_hex = argv[++i];
		else if (strcmp(argv[i], "--rpc") == 0 && i + 1 < argc)
			rpc_url = argv[++i];
		else if (strcmp(argv[i], "--quiet") == 0)
			quiet = true;
		else if (strcmp(argv[i], "--chain") == 0)
			chain_mode = true;
		else if (argv[i][0] == '-')
			usage();
		else
		{
			first = i;
			break;
		}
	}
	derr_clear(&err);
	if (kms_hex == NULL || first == 0 || (!chain_mode && first != argc - 1))
		usage();
	if (!dhex_decode_exact(kms_hex, kms_root, DC_PUBKEY_LEN, "--kms-root", &err))
	{
		fprintf(stderr, "dstack-verify: --kms-root: %s\n", err.detail[0] ? err.detail : err.msg);
		return 2;
	}
	for (int i = first; i < argc; i++)
	{
		if (chain_mode && !quiet)
			printf("== %s\n", argv[i]);
		verify_one(argv[i], kms_root, rpc_url, &cur);
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
	if (!quiet)
		printf("%s\n", chain_mode ? "receipt chain valid" : "receipt valid");
	return 0;
}
