/*
 * ledger.c: the public audit of a consortium's privacy-budget ledger.
 *
 *   dstack-verify --ledger --rpc URL --app ADDR [--kms-root HEX] [--quiet]
 *
 * The ledger of record is the ConsortiumApp contract (contracts/README.md):
 * dataset versions with a budget and a spend each, and the charges the
 * analysis CVM signed.  Everything is read with eth_call at ONE block (the
 * latest when the audit starts), whose hash is read again at the end to
 * detect a reorganisation in between.  Printed: one line per charge, one
 * line per dataset version with the sum of the charges that name it.
 * Checked, every failure printed as "FAIL ledger: ...":
 *   - each charge names at least one version, none twice, each registered;
 *     no nonce is used twice; no charge is recorded after the audited block;
 *   - each version is listed once, is known to datasetVersion(), and is the
 *     current one of its dataset exactly when currentManifest() says so;
 *   - for each version, the sum of the charges naming it equals its spend,
 *     and its spend is within its budget;
 *   - with --kms-root, the contract pins that key's address.
 * Exit 0 when everything holds, 1 otherwise (or when the chain cannot be
 * read), 2 on bad arguments.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abi.h"
#include "crypto.h"
#include "hex.h"
#include "rpc.h"
#include "ledger.h"

typedef struct LedgerVersion
{
	uint8_t		manifest[32];
	uint8_t		owner[ABI_ADDR_LEN];
	uint8_t		dataset_id[16];
	uint64_t	budget_micro;
	uint64_t	spent_micro;
	bool		current;
	uint64_t	charged_micro;	/* sum of the charges naming it */
	bool		charged_overflow;
	uint64_t	order;			/* index in datasetVersionAt(): registration order */
} LedgerVersion;

typedef struct Ledger
{
	RpcClient  *rpc;
	uint8_t		app[ABI_ADDR_LEN];
	uint64_t	block;
	bool		quiet;
	int			problems;
	LedgerVersion *versions;
	size_t		n_versions;
	uint8_t		(*nonces)[32];
	size_t		n_nonces;
} Ledger;

static void
problem(Ledger *L, const char *fmt,...) __attribute__((format(printf, 2, 3)));

/* An inconsistency: printed, counted, and the audit goes on to show the rest. */
static void
problem(Ledger *L, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	fputs("FAIL ledger: ", stdout);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	va_end(ap);
	L->problems++;
}

/* A read that failed: nothing after it can be trusted. */
static int
unreadable(const char *what, const DErr *err)
{
	printf("FAIL chain: %s: %s\n", what, err->msg);
	if (err->detail[0])
		printf("     %s\n", err->detail);
	return 1;
}

static const char *
hex(const uint8_t *b, size_t n, char *buf)
{
	buf[0] = '0';
	buf[1] = 'x';
	dhex_encode(b, n, buf + 2);
	return buf;
}

/* millionths of epsilon as a decimal with six places */
static const char *
micro(uint64_t v, char *buf)
{
	snprintf(buf, 32, "%" PRIu64 ".%06" PRIu64, v / 1000000, v % 1000000);
	return buf;
}

/* eth_call of a view with static arguments at the audited block */
static bool
view(Ledger *L, const char *sig, const uint8_t (*words)[ABI_WORD], size_t n,
	 uint8_t **ret, size_t *ret_len, DErr *err)
{
	bool		ok = rpc_view_call(L->rpc, L->app, sig, words, n, L->block, ret, ret_len, err);

	if (ok && *ret_len == 0)
	{
		derr_set(err, DERR_FORMAT, "%s returned no data", sig);
		derr_detail(err, "The address holds no contract, or a contract without the ledger "
					"(deployed before it).");
		return false;
	}
	return ok;
}

static bool
view_uint(Ledger *L, const char *sig, uint64_t *out, DErr *err)
{
	uint8_t    *r;
	size_t		rl;
	bool		ok;

	if (!view(L, sig, NULL, 0, &r, &rl, err))
		return false;
	ok = abi_decode_uint64(r, rl, out, err);
	free(r);
	return ok;
}

static int
cmp_manifest(const void *a, const void *b)
{
	return memcmp(((const LedgerVersion *) a)->manifest, ((const LedgerVersion *) b)->manifest, 32);
}

static int
cmp_order(const void *a, const void *b)
{
	uint64_t	x = ((const LedgerVersion *) a)->order,
				y = ((const LedgerVersion *) b)->order;

	return x < y ? -1 : x > y;
}

static int
cmp_b32(const void *a, const void *b)
{
	return memcmp(a, b, 32);
}

/* versions are sorted by manifest hash once read */
static LedgerVersion *
find_version(Ledger *L, const uint8_t manifest[32])
{
	LedgerVersion key;

	memcpy(key.manifest, manifest, 32);
	return bsearch(&key, L->versions, L->n_versions, sizeof(LedgerVersion), cmp_manifest);
}

/* datasetVersionAt(i) for every i, then datasetVersion(hash) and currentManifest(id) */
static int
read_versions(Ledger *L, uint64_t count)
{
	DErr		err;
	char		h1[67],
				h2[67];

	derr_clear(&err);
	if (count > 1000000)
	{
		printf("FAIL ledger: datasetVersionCount() is %" PRIu64 ", more than this audit reads\n", count);
		return 1;
	}
	L->versions = calloc(count ? count : 1, sizeof(LedgerVersion));
	if (L->versions == NULL)
	{
		derr_set(&err, DERR_NOMEM, "out of memory");
		return unreadable("dataset versions", &err);
	}
	for (uint64_t i = 0; i < count; i++)
	{
		LedgerVersion *v = &L->versions[i];
		uint8_t		w[1][ABI_WORD];
		uint8_t    *r;
		size_t		rl;
		bool		ok;

		v->order = i;
		abi_word_uint64(i, w[0]);
		if (!view(L, "datasetVersionAt(uint256)", (const uint8_t (*)[ABI_WORD]) w, 1, &r, &rl, &err))
			return unreadable("datasetVersionAt()", &err);
		ok = abi_decode_bytes32(r, rl, v->manifest, &err);
		free(r);
		if (!ok)
			return unreadable("datasetVersionAt()", &err);

		abi_word_bytes32(v->manifest, w[0]);
		if (!view(L, "datasetVersion(bytes32)", (const uint8_t (*)[ABI_WORD]) w, 1, &r, &rl, &err))
			return unreadable("datasetVersion()", &err);
		ok = rl == 5 * ABI_WORD &&
			abi_get_address(r, rl, 0, v->owner, &err) &&
			abi_get_bytes_n(r, rl, 1, 16, v->dataset_id, &err) &&
			abi_get_uint(r, rl, 2, 64, &v->budget_micro, &err) &&
			abi_get_uint(r, rl, 3, 64, &v->spent_micro, &err) &&
			abi_get_bool(r, rl, 4, &v->current, &err);
		free(r);
		if (!ok)
		{
			if (err.code == DERR_OK)
				derr_set(&err, DERR_FORMAT, "datasetVersion() did not return five words");
			return unreadable("datasetVersion()", &err);
		}
		{
			static const uint8_t zero[ABI_ADDR_LEN] = {0};

			if (memcmp(v->owner, zero, ABI_ADDR_LEN) == 0)
				problem(L, "version %s is listed but datasetVersion() does not know it", hex(v->manifest, 32, h1));
		}

		/* the current flag and the dataset's current manifest must agree */
		memset(w[0], 0, ABI_WORD);
		memcpy(w[0], v->dataset_id, 16);
		if (!view(L, "currentManifest(bytes16)", (const uint8_t (*)[ABI_WORD]) w, 1, &r, &rl, &err))
			return unreadable("currentManifest()", &err);
		{
			uint8_t		cur[32];

			ok = abi_decode_bytes32(r, rl, cur, &err);
			free(r);
			if (!ok)
				return unreadable("currentManifest()", &err);
			if (v->current != (memcmp(cur, v->manifest, 32) == 0))
			{
				char		id[35];

				problem(L, "version %s is %s, but currentManifest(%s) is %s", hex(v->manifest, 32, h1),
						v->current ? "marked current" : "marked superseded", hex(v->dataset_id, 16, id),
						hex(cur, 32, h2));
			}
		}
	}
	L->n_versions = (size_t) count;
	qsort(L->versions, L->n_versions, sizeof(LedgerVersion), cmp_manifest);
	for (size_t i = 1; i < L->n_versions; i++)
		if (memcmp(L->versions[i - 1].manifest, L->versions[i].manifest, 32) == 0)
			problem(L, "version %s is listed twice", hex(L->versions[i].manifest, 32, h1));
	return 0;
}

/* charges(i) for every i: print it and add its epsilon to the versions it names */
static int
read_charges(Ledger *L, uint64_t count)
{
	DErr		err;
	char		h1[67],
				h2[67],
				m[32];

	derr_clear(&err);
	if (count > 10000000)
	{
		printf("FAIL ledger: chargeCount() is %" PRIu64 ", more than this audit reads\n", count);
		return 1;
	}
	L->nonces = calloc(count ? count : 1, 32);
	if (L->nonces == NULL)
	{
		derr_set(&err, DERR_NOMEM, "out of memory");
		return unreadable("charges", &err);
	}
	for (uint64_t i = 0; i < count; i++)
	{
		uint8_t		w[1][ABI_WORD];
		uint8_t    *r;
		size_t		rl;
		uint8_t		query[32],
					nonce[32];
		uint64_t	eps = 0,
					delta = 0,
					blk = 0;
		uint8_t		(*manifests)[32] = NULL;
		size_t		n = 0;
		bool		ok;

		abi_word_uint64(i, w[0]);
		if (!view(L, "charges(uint256)", (const uint8_t (*)[ABI_WORD]) w, 1, &r, &rl, &err))
			return unreadable("charges()", &err);
		ok = abi_get_bytes32(r, rl, 0, query, &err) &&
			abi_get_uint(r, rl, 1, 64, &eps, &err) &&
			abi_get_uint(r, rl, 2, 64, &delta, &err) &&
			abi_get_bytes32(r, rl, 3, nonce, &err) &&
			abi_get_uint(r, rl, 4, 64, &blk, &err) &&
			abi_get_bytes32_array(r, rl, 5, &manifests, &n, &err);
		free(r);
		if (!ok)
			return unreadable("charges()", &err);

		if (!L->quiet)
		{
			printf("charge %" PRIu64 " block %" PRIu64 " epsilon %s delta_pico %" PRIu64 " query %s nonce %s datasets",
				   i, blk, micro(eps, m), delta, hex(query, 32, h1), hex(nonce, 32, h2));
			for (size_t k = 0; k < n; k++)
				printf("%s%s", k ? "," : " ", hex(manifests[k], 32, h1));
			putchar('\n');
		}
		if (n == 0)
			problem(L, "charge %" PRIu64 " names no dataset version", i);
		if (blk > L->block)
			problem(L, "charge %" PRIu64 " says block %" PRIu64 ", after the audited block %" PRIu64,
					i, blk, L->block);
		for (size_t k = 0; k < n; k++)
		{
			LedgerVersion *v;
			bool		dup = false;

			for (size_t j = 0; j < k; j++)
				dup |= memcmp(manifests[j], manifests[k], 32) == 0;
			if (dup)
			{
				problem(L, "charge %" PRIu64 " names version %s twice", i, hex(manifests[k], 32, h1));
				continue;
			}
			v = find_version(L, manifests[k]);
			if (v == NULL)
			{
				problem(L, "charge %" PRIu64 " names version %s, which is not registered", i,
						hex(manifests[k], 32, h1));
				continue;
			}
			if (v->charged_micro > UINT64_MAX - eps)
				v->charged_overflow = true;
			v->charged_micro += eps;
		}
		free(manifests);
		memcpy(L->nonces[i], nonce, 32);
	}
	L->n_nonces = (size_t) count;
	qsort(L->nonces, L->n_nonces, 32, cmp_b32);
	for (size_t i = 1; i < L->n_nonces; i++)
		if (memcmp(L->nonces[i - 1], L->nonces[i], 32) == 0)
			problem(L, "nonce %s is used by two charges", hex(L->nonces[i], 32, h1));
	return 0;
}

/* every version, in registration order: its totals against its spend and budget */
static void
check_versions(Ledger *L)
{
	char		h1[67],
				id[35],
				who[43],
				a[32],
				b[32],
				c[32];

	qsort(L->versions, L->n_versions, sizeof(LedgerVersion), cmp_order);
	for (size_t i = 0; i < L->n_versions; i++)
	{
		const LedgerVersion *v = &L->versions[i];

		hex(v->manifest, 32, h1);
		if (!L->quiet)
			printf("dataset %s version %s owner %s %s spent %s of %s (charges %s)\n",
				   hex(v->dataset_id, 16, id), h1, hex(v->owner, ABI_ADDR_LEN, who),
				   v->current ? "current" : "superseded", micro(v->spent_micro, a), micro(v->budget_micro, b),
				   v->charged_overflow ? "overflow" : micro(v->charged_micro, c));
		if (v->charged_overflow || v->charged_micro != v->spent_micro)
			problem(L, "version %s: its charges add up to %s, but it records %s spent", h1,
					v->charged_overflow ? "more than 2^64 millionths" : micro(v->charged_micro, c),
					micro(v->spent_micro, a));
		if (v->spent_micro > v->budget_micro)
			problem(L, "version %s: spent %s is over its budget %s", h1, micro(v->spent_micro, a),
					micro(v->budget_micro, b));
	}
}

int
dstack_verify_ledger(const char *rpc_url, const char *app_hex, const char *kms_root_hex, bool quiet)
{
	Ledger		L;
	DErr		err;
	HttpOptions hopt;
	RpcBlock	blk,
				again;
	ConsortiumState st;
	uint8_t		root[DC_PUBKEY_LEN],
				want_root[DC_ADDR_LEN],
				pinned_root[DC_ADDR_LEN];
	uint64_t	chain_id = 0,
				n_charges = 0,
				n_versions = 0;
	char		h1[67],
				h2[67];
	int			rc = 1;

	memset(&L, 0, sizeof(L));
	memset(&st, 0, sizeof(st));
	derr_clear(&err);
	L.quiet = quiet;
	if (rpc_url == NULL || app_hex == NULL)
	{
		fprintf(stderr, "dstack-verify: --ledger needs --rpc URL and --app ADDR\n");
		return 2;
	}
	if (!dhex_decode_exact(app_hex, L.app, ABI_ADDR_LEN, "--app", &err))
	{
		fprintf(stderr, "dstack-verify: --app: %s\n", err.detail[0] ? err.detail : err.msg);
		return 2;
	}
	if (kms_root_hex != NULL &&
		(!dhex_decode_exact(kms_root_hex, root, DC_PUBKEY_LEN, "--kms-root", &err) ||
		 !dc_pubkey_to_address(root, DC_PUBKEY_LEN, want_root, &err)))
	{
		fprintf(stderr, "dstack-verify: --kms-root: %s\n", err.detail[0] ? err.detail : err.msg);
		return 2;
	}

	http_options_default(&hopt);
	L.rpc = rpc_new(rpc_url, &hopt, &err);
	if (L.rpc == NULL || !rpc_chain_id(L.rpc, &chain_id, &err) || !rpc_get_block(L.rpc, RPC_LATEST, &blk, &err))
	{
		rc = unreadable(rpc_url, &err);
		goto done;
	}
	L.block = blk.number;
	if (!quiet)
		printf("ok   chain %" PRIu64 " block %" PRIu64 " hash %s: the ledger is read at this block\n",
			   chain_id, blk.number, hex(blk.hash, 32, h1));

	if (!rpc_consortium_state(L.rpc, L.app, L.block, &st, &err))
	{
		rc = unreadable("consortium", &err);
		goto done;
	}
	if (!quiet)
	{
		printf("ok   consortium %s: %" PRIu64 " of %" PRIu64 " approvals, %s, policy epsilon %" PRIu64 ".%03" PRIu64 "\n",
			   hex(L.app, ABI_ADDR_LEN, h1), st.approval_count, st.threshold,
			   st.revoked ? "REVOKED (nothing more can be charged)" : "not revoked",
			   st.policy.epsilon_milli / 1000, st.policy.epsilon_milli % 1000);
	}

	{
		uint8_t    *r;
		size_t		rl;
		bool		ok;

		if (!view(&L, "kmsRootAddress()", NULL, 0, &r, &rl, &err))
		{
			rc = unreadable("kmsRootAddress()", &err);
			goto done;
		}
		ok = abi_decode_address(r, rl, pinned_root, &err);
		free(r);
		if (!ok)
		{
			rc = unreadable("kmsRootAddress()", &err);
			goto done;
		}
	}
	if (kms_root_hex != NULL && memcmp(pinned_root, want_root, DC_ADDR_LEN) != 0)
		problem(&L, "the contract pins KMS root address %s, --kms-root is the key of %s",
				hex(pinned_root, DC_ADDR_LEN, h1), hex(want_root, DC_ADDR_LEN, h2));
	else if (!quiet)
		printf("ok   charges must chain to KMS root address %s%s\n", hex(pinned_root, DC_ADDR_LEN, h1),
			   kms_root_hex ? " (the key given with --kms-root)" : "");

	if (!view_uint(&L, "datasetVersionCount()", &n_versions, &err))
	{
		rc = unreadable("datasetVersionCount()", &err);
		goto done;
	}
	if (!view_uint(&L, "chargeCount()", &n_charges, &err))
	{
		rc = unreadable("chargeCount()", &err);
		goto done;
	}
	if (read_versions(&L, n_versions) != 0 || read_charges(&L, n_charges) != 0)
		goto done;
	check_versions(&L);

	/* the same block at the end, or the reads may mix two histories */
	if (!rpc_get_block(L.rpc, L.block, &again, &err))
	{
		rc = unreadable("block", &err);
		goto done;
	}
	if (memcmp(again.hash, blk.hash, 32) != 0)
	{
		printf("FAIL chain: block %" PRIu64 " changed its hash during the audit (reorganisation); run it again\n",
			   L.block);
		goto done;
	}

	if (L.problems == 0)
	{
		if (!quiet)
			printf("ledger consistent: %" PRIu64 " charges, %" PRIu64 " dataset versions, every version within "
				   "its budget, at block %" PRIu64 "\n", n_charges, n_versions, L.block);
		rc = 0;
	}
	else
		printf("ledger NOT consistent: %d problem%s at block %" PRIu64 "\n", L.problems,
			   L.problems == 1 ? "" : "s", L.block);

done:
	rpc_consortium_state_free(&st);
	free(L.versions);
	free(L.nonces);
	rpc_free(L.rpc);
	return rc;
}
