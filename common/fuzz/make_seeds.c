/*
 * make_seeds.c: writes the seed corpus of the fuzz targets (corpus/<target>/)
 * from the unit tests' fixtures: a small sealed dataset and its manifest
 * (tests/test_dseal_file.c's keys, see seeds.h), each column encoding's
 * chunk plaintext, ABI return data of the consortium contract's views, a
 * JSON-RPC node's and a guest agent's answers as tests/test_http.c scripts
 * them, the demo's app-compose.json and a receipt body as docs/receipts.md
 * shows it.  `make -C common fuzz-seeds` runs it; the files are committed
 * (a fresh run draws another dataset id and data key, so the .dseal seeds
 * change bytes but not shape).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "../abi.h"
#include "../colbuf.h"
#include "../dseal.h"
#include "../hex.h"
#include "seeds.h"

static const char *outdir;
static DErr err;

static void
die(const char *what)
{
	fprintf(stderr, "make_seeds: %s: %s %s\n", what, err.msg, err.detail);
	exit(1);
}

static void
put(const char *target, const char *name, const void *data, size_t len)
{
	char		path[512];
	FILE	   *f;

	snprintf(path, sizeof(path), "%s/%s", outdir, target);
	if (mkdir(path, 0755) != 0 && errno != EEXIST)
	{
		perror(path);
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%s/%s", outdir, target, name);
	if (!(f = fopen(path, "wb")) || fwrite(data, 1, len, f) != len || fclose(f) != 0)
	{
		perror(path);
		exit(1);
	}
}

/* A seed whose first byte selects what the target does (put_text: the rest is a C string). */
static void
put_op(const char *target, const char *name, uint8_t op, const char *text, size_t len)
{
	uint8_t    *b = malloc(len + 1);

	b[0] = op;
	memcpy(b + 1, text, len);
	put(target, name, b, len + 1);
	free(b);
}

static void
put_text(const char *target, const char *name, uint8_t op, const char *text)
{
	put_op(target, name, op, text, strlen(text));
}

static uint8_t *
slurp(const char *path, size_t *len)
{
	FILE	   *f = fopen(path, "rb");
	uint8_t    *b;
	long		n;

	if (!f)
	{
		perror(path);
		exit(1);
	}
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	b = malloc(n + 1);
	if (fread(b, 1, n, f) != (size_t) n)
		exit(1);
	fclose(f);
	b[n] = '\0';
	*len = (size_t) n;
	return b;
}

/* ---- .dseal and manifests ---- */

static void
seal_seed(const char *dir, const char *name, int zstd_level)
{
	DsealColumnDef cols[2] = {
		{.name = "patient_id", .type = "integer", .enc = DSEAL_ENC_I32, .repr = DSEAL_REPR_BINARY},
		{.name = "dx", .type = "text", .enc = DSEAL_ENC_VAR, .repr = DSEAL_REPR_BINARY},
	};
	static const char *const dx[] = {"I10", "E11", NULL, "N18", "I50"};
	DsealWriterOptions o = {0};
	uint8_t		owner_sk[DC_SECKEY_LEN];
	uint8_t		recipient_sk[DC_SECKEY_LEN];
	char		path[512];
	DsealWriter *w;
	uint8_t    *b;
	size_t		n;

	if (!fuzz_seed_recipe(&o.recipe, recipient_sk, owner_sk, &err) ||
		!dc_pubkey_from_seckey(recipient_sk, o.recipient_pub, &err))
		die("keys");
	snprintf(path, sizeof(path), "%s/%s.dseal", dir, name);
	o.path = path;
	o.table = "public.ehr";
	o.ncols = 2;
	o.cols = cols;
	o.recipient_purpose = "dstack-seal/v1/19e7e376e7c213b7e7e7e46cc70a5dd086daff2a";
	o.rows_per_group = 4;
	o.zstd_level = zstd_level;
	o.write_detached_manifest = true;
	if (!(w = dseal_writer_open(&o, owner_sk, &err)))
		die("writer");
	for (int g = 0; g < 2; g++)
	{
		DsealColBuf cb[2];

		if (!colbuf_init(&cb[0], DSEAL_ENC_I32, 4, &err) || !colbuf_init(&cb[1], DSEAL_ENC_VAR, 4, &err))
			die("colbuf");
		for (int i = 0; i < (g == 0 ? 4 : 3); i++)
		{
			int32_t		v = 1000 + 4 * g + i;
			const char *t = dx[(4 * g + i) % 5];
			char		longer[80];

			/* the zstd seed's text compresses, so its chunks are stored compressed */
			if (t && zstd_level > 0)
			{
				snprintf(longer, sizeof(longer), "%s %s %s %s %s %s %s %s %s %s", t, t, t, t, t, t, t, t, t, t);
				t = longer;
			}

			if (!colbuf_append_fixed(&cb[0], &v, &err) ||
				!(t ? colbuf_append_var(&cb[1], t, strlen(t), &err) : colbuf_append_null(&cb[1], &err)))
				die("append");
		}
		if (!dseal_writer_add_row_group(w, cb, &err))
			die("row group");
		colbuf_free(&cb[0]);
		colbuf_free(&cb[1]);
	}
	if (!dseal_writer_finish(w, NULL, &err))
		die("finish");
	dseal_writer_free(w);
	b = slurp(path, &n);
	snprintf(path, sizeof(path), "%s.dseal", name);
	put("dseal_reader", path, b, n);
	free(b);
	snprintf(path, sizeof(path), "%s/%s.dseal.json", dir, name);
	b = slurp(path, &n);
	snprintf(path, sizeof(path), "%s.json", name);
	put("manifest", path, b, n);
	free(b);
}

/* ---- column chunks ---- */

static void
colbuf_seed(DsealEnc enc, bool nulls)
{
	DsealColBuf cb;
	uint8_t		v[16];
	uint8_t    *out;
	size_t		n;
	char		name[32];

	if (!colbuf_init(&cb, enc, 4, &err))
		die("colbuf");
	for (int i = 0; i < 5; i++)
	{
		bool		ok;

		memset(v, 0x10 + i, sizeof(v));
		if (enc == DSEAL_ENC_BOOL)
			v[0] = i & 1;
		if (nulls && i == 2)
			ok = colbuf_append_null(&cb, &err);
		else if (enc == DSEAL_ENC_VAR)
			ok = colbuf_append_var(&cb, "abcdef", (size_t) i, &err);
		else
			ok = colbuf_append_fixed(&cb, v, &err);
		if (!ok)
			die("append");
	}
	n = colbuf_serialized_size(&cb);
	out = malloc(n + 1);
	out[0] = (uint8_t) (enc - DSEAL_ENC_BOOL);	/* the target's encoding byte */
	colbuf_serialize(&cb, out + 1);
	snprintf(name, sizeof(name), "%s%s", dseal_enc_name(enc), nulls ? "-nulls" : "");
	put("colbuf", name, out, n + 1);
	free(out);
	colbuf_free(&cb);
}

/* ---- ABI return data and JSON-RPC answers ---- */

/* Return data of a view: the arguments' encoding without a selector. */
static size_t
ret_data(const AbiArg *args, size_t n, uint8_t **out)
{
	uint8_t    *cd;
	size_t		len;

	if (!abi_encode_call("f()", args, n, &cd, &len, &err))
		die("abi");
	*out = malloc(len - ABI_SELECTOR_LEN + 1);
	memcpy(*out, cd + ABI_SELECTOR_LEN, len - ABI_SELECTOR_LEN);
	free(cd);
	return len - ABI_SELECTOR_LEN;
}

static AbiArg
word_u64(uint64_t v)
{
	AbiArg		a = {.kind = ABI_ARG_WORD};

	abi_word_uint64(v, a.word);
	return a;
}

static AbiArg
word_fill(uint8_t fill, size_t zeros)
{
	AbiArg		a = {.kind = ABI_ARG_WORD};

	memset(a.word, fill, ABI_WORD);
	memset(a.word, 0, zeros);
	return a;
}

static AbiArg
str_arg(const char *s)
{
	AbiArg		a = {.kind = ABI_ARG_STRING, .bytes = (const uint8_t *) s, .len = strlen(s)};

	return a;
}

/* An address[] of two addresses, encoded by hand (abi_encode_call has no address[]). */
static size_t
addr_array(uint8_t **out)
{
	uint8_t    *b = calloc(4, ABI_WORD);

	b[31] = 0x20;
	b[63] = 2;
	memset(b + 64 + 12, 0x70, 20);
	memset(b + 96 + 12, 0x3c, 20);
	*out = b;
	return 4 * ABI_WORD;
}

/* {"jsonrpc":"2.0","id":id,"result":"0x<hex>"} appended to a script, NUL first unless it is empty. */
static void
answer_hex(char **script, size_t *len, int id, const uint8_t *data, size_t n)
{
	char	   *hex = malloc(2 * n + 1);
	char	   *a;
	int			alen;

	dhex_encode(data, n, hex);
	alen = asprintf(&a, "{\"jsonrpc\":\"2.0\",\"id\":%d,\"result\":\"0x%s\"}", id, hex);
	*script = realloc(*script, *len + alen + 2);
	if (*len > 0)
		(*script)[(*len)++] = '\0';
	memcpy(*script + *len, a, alen);
	*len += alen;
	free(a);
	free(hex);
}

/* One element of a batch answer appended to the array text being built ("[" first, "," after). */
static void
batch_item_text(char **batch, size_t *len, const char *item)
{
	size_t		n = strlen(item);

	char		sep = *len == 0 ? '[' : ',';

	*batch = realloc(*batch, *len + n + 2);
	(*batch)[(*len)++] = sep;
	memcpy(*batch + *len, item, n);
	*len += n;
}

static void
batch_item_hex(char **batch, size_t *len, int id, const uint8_t *data, size_t n)
{
	char	   *hex = malloc(2 * n + 1);
	char	   *a;

	dhex_encode(data, n, hex);
	if (asprintf(&a, "{\"jsonrpc\":\"2.0\",\"id\":%d,\"result\":\"0x%s\"}", id, hex) < 0)
		abort();
	batch_item_text(batch, len, a);
	free(a);
	free(hex);
}

static void
answer_text(char **script, size_t *len, const char *text)
{
	size_t		n = strlen(text);

	*script = realloc(*script, *len + n + 2);
	if (*len > 0)
		(*script)[(*len)++] = '\0';
	memcpy(*script + *len, text, n);
	*len += n;
}

static void
abi_and_rpc_seeds(void)
{
	uint8_t    *d;
	size_t		n;
	AbiArg		a[4];
	char	   *s = NULL;
	size_t		slen = 0;
	char		block[600];
	const char *hash = "0x1111111111111111111111111111111111111111111111111111111111111111";
	uint8_t		one[ABI_WORD];

	/* abi: a head index byte, then return data */
	a[0] = word_u64(1);
	n = ret_data(a, 1, &d);
	put_op("abi", "bool-true", 0, (const char *) d, n);
	free(d);
	a[0] = word_fill(0x5a, 12);
	n = ret_data(a, 1, &d);
	put_op("abi", "address", 0, (const char *) d, n);
	free(d);
	a[0] = str_arg("not approved");
	n = ret_data(a, 1, &d);
	put_op("abi", "string", 0, (const char *) d, n);
	free(d);
	a[0] = word_u64(1);
	a[1] = str_arg("");
	n = ret_data(a, 2, &d);
	put_op("abi", "bool-string", 1, (const char *) d, n);
	free(d);
	n = addr_array(&d);
	put_op("abi", "address-array", 0, (const char *) d, n);
	free(d);
	a[0] = str_arg("consortium revoked");
	if (!abi_encode_call("Error(string)", a, 1, &d, &n, &err))
		die("abi");
	put_op("abi", "revert-error", 0, (const char *) d, n);
	free(d);
	a[0] = word_u64(0x11);
	if (!abi_encode_call("Panic(uint256)", a, 1, &d, &n, &err))
		die("abi");
	put_op("abi", "revert-panic", 0, (const char *) d, n);
	free(d);
	a[0] = word_fill(0x70, 12);
	if (!abi_encode_call("NotOwner(address)", a, 1, &d, &n, &err))
		die("abi");
	put_op("abi", "revert-custom", 0, (const char *) d, n);
	free(d);
	a[0] = word_u64(1500);
	a[1] = word_u64(10);
	a[2] = str_arg("dp-aggregate");
	a[3] = str_arg("patient_id");
	n = ret_data(a, 4, &d);
	put_op("abi", "policy", 2, (const char *) d, n);
	free(d);

	/* rpc: single calls as tests/test_http.c answers them */
	put_text("rpc", "chain-id", 0, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"0x7a69\"}");
	put_text("rpc", "chain-and-head", 0x41,
			 "[{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":\"0x10\"},{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"0x7a69\"}]");
	put_text("rpc", "block-number-http-500", 1,
			 "@500{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32000,\"message\":\"busy\"}}");
	snprintf(block, sizeof(block), "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"number\":\"0x10\",\"timestamp\":\"0x5\",\"hash\":\"%s\"}}", hash);
	put_text("rpc", "block", 0x82, block);
	a[0] = str_arg("not approved");
	if (!abi_encode_call("Error(string)", a, 1, &d, &n, &err))
		die("abi");
	{
		char	   *hex = malloc(2 * n + 1);

		dhex_encode(d, n, hex);
		snprintf(block, sizeof(block), "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":3,"
				 "\"message\":\"execution reverted\",\"data\":\"0x%s\"}}", hex);
		free(hex);
	}
	free(d);
	put_text("rpc", "eth-call-revert", 3, block);
	memset(one, 0, sizeof(one));
	one[31] = 1;
	answer_hex(&s, &slen, 1, one, sizeof(one));
	put_op("rpc", "has-approved", 6, s, slen);
	free(s);
	s = NULL;
	slen = 0;
	a[0] = word_u64(1);
	a[1] = str_arg("");
	n = ret_data(a, 2, &d);
	answer_hex(&s, &slen, 1, d, n);
	free(d);
	put_op("rpc", "is-app-allowed", 7, s, slen);
	free(s);

	/* rpc: the consortium read, at the latest block and at block 7: the block, then one batch */
	for (int at7 = 0; at7 <= 1; at7++)
	{
		int			id = 2;
		char	   *batch = NULL;
		size_t		blen = 0;

		s = NULL;
		slen = 0;
		snprintf(block, sizeof(block), "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"number\":\"0x7\",\"timestamp\":\"0x65\","
				 "\"hash\":\"%s\"}}", hash);
		answer_text(&s, &slen, block);
		/* the batch answer: chain id and the ten views as one JSON array (answered in order) */
		batch_item_text(&batch, &blen, "{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":\"0x7a69\"}");
		id++;
		a[0] = word_fill(0xbb, 0);	/* composeHash */
		n = ret_data(a, 1, &d);
		batch_item_hex(&batch, &blen, id++, d, n);
		free(d);
		a[0] = word_u64(3);		/* threshold */
		n = ret_data(a, 1, &d);
		batch_item_hex(&batch, &blen, id++, d, n);
		free(d);
		a[0] = word_u64(4);		/* approvalCount */
		n = ret_data(a, 1, &d);
		batch_item_hex(&batch, &blen, id++, d, n);
		free(d);
		a[0] = word_u64(0);		/* revoked */
		n = ret_data(a, 1, &d);
		batch_item_hex(&batch, &blen, id++, d, n);
		batch_item_hex(&batch, &blen, id++, d, n);	/* revokedBy: the zero address */
		free(d);
		a[0] = str_arg("");		/* revokeReason */
		n = ret_data(a, 1, &d);
		batch_item_hex(&batch, &blen, id++, d, n);
		free(d);
		a[0] = word_u64(1);		/* isApproved */
		n = ret_data(a, 1, &d);
		batch_item_hex(&batch, &blen, id++, d, n);
		free(d);
		n = addr_array(&d);		/* approvers, owners */
		batch_item_hex(&batch, &blen, id++, d, n);
		batch_item_hex(&batch, &blen, id++, d, n);
		free(d);
		a[0] = word_u64(1500);	/* policy */
		a[1] = word_u64(10);
		a[2] = str_arg("dp-aggregate");
		a[3] = str_arg("patient_id");
		n = ret_data(a, 4, &d);
		batch_item_hex(&batch, &blen, id++, d, n);
		free(d);
		batch = realloc(batch, blen + 2);
		batch[blen++] = ']';
		batch[blen] = '\0';
		answer_text(&s, &slen, batch);
		free(batch);
		put_op("rpc", at7 ? "consortium-at-7" : "consortium-latest", at7 ? 5 : 4, s, slen);
		free(s);
	}
}

/* ---- guest agent, policy, receipt ---- */

static void
agent_policy_receipt_seeds(const char *compose_path)
{
	char		key[600];
	char	   *info;
	char	   *compose_json;
	uint8_t    *compose;
	size_t		clen;
	uint8_t		h[DC_SHA256_LEN];
	char		hh[2 * DC_SHA256_LEN + 1];
	char		quote[400];
	char		rd[129];
	uint8_t		rdb[64];
	json_t	   *js;
	int			n;
	static const char body[] =
		"{\"format\":\"dstack-receipt/v1\",\"query\":\"SELECT sex, dp_count(patient_id, 0.5) FROM ehr GROUP BY sex\","
		"\"result\":{\"columns\":[\"sex\",\"dp_count\"],\"rows\":[[\"F\",\"4107\"],[\"M\",\"4093\"]]},"
		"\"datasets\":[{\"table\":\"public.ehr\",\"owner\":\"0x70997970c51812dc3a010c7d01b50e0d17dc79c8\","
		"\"dataset_id\":\"00112233445566778899aabbccddeeff\",\"manifest_hash\":\"ab\"}],"
		"\"epsilon\":{\"charged\":\"1.000000\",\"spent\":\"1.000000\",\"left\":\"0.500000\",\"total\":\"1.500000\"},"
		"\"delta\":\"1e-6\",\"selection\":{\"mechanism\":\"laplace-threshold\",\"rows_per_unit_bound\":1,\"threshold\":29},"
		"\"noise\":\"csprng\",\"run_id\":12,\"app_id\":\"0x5fbdb2315678afecb367f032d93f642f64180aa3\","
		"\"issued_at\":\"2026-11-25T03:30:00Z\",\"sequence\":12,\"name\":\"caf\\u00e9 \\ud83d\\ude00\"}";

	if (!fuzz_seed_getkey(key, sizeof(key), &err))
		die("getkey");
	put_text("guest_agent", "getkey", 0, key);
	put_text("guest_agent", "getkey-refused", 0, "@500{\"error\":\"app not allowed by its auth contract: not approved\"}");
	memset(rdb, 0x5a, sizeof(rdb));
	dhex_encode(rdb, 64, rd);
	snprintf(quote, sizeof(quote), "{\"quote\":\"0400\",\"event_log\":\"[]\",\"report_data\":\"%s\",\"vm_config\":\"{}\"}", rd);
	put_text("guest_agent", "quote", 1 | (63 << 2), quote);	/* 64 bytes of report data */

	compose = (uint8_t *) slurp(compose_path, &clen);
	put("policy", "app-compose.json", compose, clen);
	dc_sha256(compose, clen, h);
	dhex_encode(h, DC_SHA256_LEN, hh);
	/* tcb_info as dstack sends it: JSON text in a string, app_compose a string inside */
	js = json_pack("{s:s%}", "app_compose", (const char *) compose, clen);
	compose_json = json_dumps(js, JSON_COMPACT);
	json_decref(js);
	js = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "app_id", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
				   "instance_id", "0102030405060708090a0b0c0d0e0f1011121314", "compose_hash", hh,
				   "device_id", "cc", "key_provider_info", "{}", "tcb_info", compose_json);
	info = json_dumps(js, JSON_COMPACT);
	json_decref(js);
	put_text("guest_agent", "info", 2, info);
	/* a server that knows only GET /Info: 405 first, then the answer */
	{
		char	   *two;

		n = asprintf(&two, "@405{}%c%s", '\0', info);
		put_op("guest_agent", "info-get", 2, two, (size_t) n);
		free(two);
	}
	free(info);
	free(compose_json);
	free(compose);
	put("receipt", "body.json", body, strlen(body));
}

int
main(int argc, char **argv)
{
	char		tmp[] = "/tmp/make_seeds_XXXXXX";

	outdir = argc > 1 ? argv[1] : "fuzz/corpus";
	if (mkdir(outdir, 0755) != 0 && errno != EEXIST)
	{
		perror(outdir);
		return 1;
	}
	if (!mkdtemp(tmp))
	{
		perror("mkdtemp");
		return 1;
	}
	seal_seed(tmp, "plain", 0);
	seal_seed(tmp, "zstd", 3);
	for (DsealEnc e = DSEAL_ENC_BOOL; e <= DSEAL_ENC_VAR; e++)
	{
		colbuf_seed(e, false);
		colbuf_seed(e, true);
	}
	abi_and_rpc_seeds();
	agent_policy_receipt_seeds(argc > 2 ? argv[2] : "../tools/demo/app-compose.json");
	for (int i = 0; i < 4; i++)
	{
		char		path[128];

		snprintf(path, sizeof(path), "%s/%s.dseal%s", tmp, i < 2 ? "plain" : "zstd", i % 2 ? ".json" : "");
		unlink(path);
	}
	rmdir(tmp);
	printf("seeds written to %s\n", outdir);
	return 0;
}
