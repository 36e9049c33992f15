/*
 * tdx_collateral.c: Intel DCAP collateral (TCB info, QE identity, CRLs) and
 * the TCB status of a TDX quote under it (see tdx_collateral.h; the rules are
 * listed in README.md, and dcap-crosscheck.mjs compares the verdicts with
 * another verifier's on the fixtures).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "hex.h"
#include "tdx_collateral.h"

struct TdxCollateral
{
	json_t	   *file;
	const char *tcb_info_text;
	const char *qe_identity_text;
	json_t	   *tcb_info;		/* parsed tcb_info_text */
	json_t	   *qe_identity;
	STACK_OF(X509_CRL) *crls;	/* [0] root CA CRL, [1] PCK CRL */
	char		describe[256];
};

bool
tdx_parse_time(const char *s, time_t *out)
{
	struct tm	tm;
	int			n = 0;

	memset(&tm, 0, sizeof(tm));
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2dZ%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
			   &tm.tm_sec, &n) != 6 || n != 20 || s[n] != '\0')
		return false;
	if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
		tm.tm_min > 59 || tm.tm_sec > 60)
		return false;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	*out = timegm(&tm);
	return true;
}

static bool
unhex(const char *s, uint8_t *out, size_t n)
{
	if (strlen(s) != 2 * n)
		return false;
	for (size_t i = 0; i < n; i++)
	{
		unsigned int v;

		if (!isxdigit((unsigned char) s[2 * i]) || !isxdigit((unsigned char) s[2 * i + 1]) ||
			sscanf(s + 2 * i, "%2x", &v) != 1)
			return false;
		out[i] = (uint8_t) v;
	}
	return true;
}

static const char *
str_member(json_t *o, const char *k)
{
	json_t	   *v = json_object_get(o, k);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* A CRL given as hex DER or as PEM text. */
static X509_CRL *
load_crl(const char *s)
{
	X509_CRL   *crl = NULL;

	if (strncmp(s, "-----BEGIN", 10) == 0)
	{
		BIO		   *b = BIO_new_mem_buf(s, -1);

		crl = b ? PEM_read_bio_X509_CRL(b, NULL, NULL, NULL) : NULL;
		BIO_free(b);
	}
	else
	{
		size_t		n = strlen(s) / 2;
		uint8_t    *der = malloc(n ? n : 1);
		const unsigned char *p = der;

		if (der && strlen(s) % 2 == 0 && unhex(s, der, n))
			crl = d2i_X509_CRL(NULL, &p, (long) n);
		if (crl && p != der + n)
		{
			X509_CRL_free(crl);
			crl = NULL;
		}
		free(der);
	}
	ERR_clear_error();
	return crl;
}

void
tdx_collateral_free(TdxCollateral *c)
{
	if (c == NULL)
		return;
	json_decref(c->file);
	json_decref(c->tcb_info);
	json_decref(c->qe_identity);
	sk_X509_CRL_pop_free(c->crls, X509_CRL_free);
	free(c);
}

TdxCollateral *
tdx_collateral_load(const char *path, TdxErr *err)
{
	static const char *const need[] = {
		"tcb_info", "tcb_info_signature", "tcb_info_issuer_chain",
		"qe_identity", "qe_identity_signature", "qe_identity_issuer_chain",
		"root_ca_crl", "pck_crl",
	};
	TdxCollateral *c = calloc(1, sizeof(*c));
	json_error_t je;
	X509_CRL   *crl;

	if (c == NULL)
	{
		tdx_err(err, "out of memory");
		return NULL;
	}
	c->file = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (c->file == NULL || !json_is_object(c->file))
	{
		tdx_err(err, "%s is not a JSON object: %s", path, c->file ? "another JSON value" : je.text);
		goto bad;
	}
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
		if (str_member(c->file, need[i]) == NULL)
		{
			tdx_err(err, "%s has no string member %s (the collateral JSON a PCCS client produces)", path,
					need[i]);
			goto bad;
		}
	c->tcb_info_text = str_member(c->file, "tcb_info");
	c->qe_identity_text = str_member(c->file, "qe_identity");
	c->tcb_info = json_loads(c->tcb_info_text, JSON_REJECT_DUPLICATES, &je);
	if (!json_is_object(c->tcb_info))
	{
		tdx_err(err, "%s: tcb_info is not a JSON object: %s", path, je.text);
		goto bad;
	}
	c->qe_identity = json_loads(c->qe_identity_text, JSON_REJECT_DUPLICATES, &je);
	if (!json_is_object(c->qe_identity))
	{
		tdx_err(err, "%s: qe_identity is not a JSON object: %s", path, je.text);
		goto bad;
	}
	c->crls = sk_X509_CRL_new_null();
	for (int i = 0; i < 2; i++)
	{
		const char *k = i == 0 ? "root_ca_crl" : "pck_crl";

		crl = load_crl(str_member(c->file, k));
		if (crl == NULL || c->crls == NULL || !sk_X509_CRL_push(c->crls, crl))
		{
			X509_CRL_free(crl);
			tdx_err(err, "%s: %s is not a CRL (hex DER or PEM)", path, k);
			goto bad;
		}
	}
	snprintf(c->describe, sizeof(c->describe), "FMSPC %.12s, tcbEvaluationDataNumber %lld, TCB info issued %.24s, "
			 "next update %.24s",
			 str_member(c->tcb_info, "fmspc") ? str_member(c->tcb_info, "fmspc") : "?",
			 (long long) json_integer_value(json_object_get(c->tcb_info, "tcbEvaluationDataNumber")),
			 str_member(c->tcb_info, "issueDate") ? str_member(c->tcb_info, "issueDate") : "?",
			 str_member(c->tcb_info, "nextUpdate") ? str_member(c->tcb_info, "nextUpdate") : "?");
	return c;
bad:
	tdx_collateral_free(c);
	return NULL;
}

STACK_OF(X509_CRL) *
tdx_collateral_crls(TdxCollateral *c)
{
	return c->crls;
}

const char *
tdx_collateral_describe(TdxCollateral *c)
{
	return c->describe;
}

/* A signed collateral document: chain to the root, signature over the exact text, validity window. */
static bool
check_signed(TdxCollateral *c, const char *name, const char *text, json_t *doc, time_t at, TdxErr *err)
{
	char		key[64],
				what[96];
	const char *sighex,
			   *issue,
			   *next;
	uint8_t		sig[64];
	STACK_OF(X509) *certs,
			   *untrusted;
	TdxErr		e2;
	time_t		t_issue,
				t_next;
	bool		ok = false;

	snprintf(key, sizeof(key), "%s_signature", name);
	sighex = str_member(c->file, key);
	if (!unhex(sighex, sig, 64))
		return tdx_err(err, "%s is not 64 bytes of hex (r || s)", key);
	snprintf(key, sizeof(key), "%s_issuer_chain", name);
	certs = tdx_pem_certs((const uint8_t *) str_member(c->file, key), strlen(str_member(c->file, key)), &e2);
	if (certs == NULL)
		return tdx_err(err, "%s: %s", key, e2.msg);
	if (sk_X509_num(certs) < 2)
	{
		sk_X509_pop_free(certs, X509_free);
		return tdx_err(err, "%s has %d certificate; it needs the signing certificate and the root", key,
					   sk_X509_num(certs));
	}
	untrusted = sk_X509_new_null();
	for (int i = 1; untrusted && i < sk_X509_num(certs); i++)
		sk_X509_push(untrusted, sk_X509_value(certs, i));
	snprintf(what, sizeof(what), "the %s signing chain (%s)", name, key);
	if (untrusted == NULL)
		tdx_err(err, "out of memory");
	else if (tdx_chain_verify(sk_X509_value(certs, 0), untrusted, at, c->crls, what, err))
	{
		EVP_PKEY   *k = X509_get0_pubkey(sk_X509_value(certs, 0));

		if (k == NULL || !tdx_ecdsa_p256_verify(k, (const uint8_t *) text, strlen(text), sig))
			tdx_err(err, "%s_signature is not a signature over %s by its issuer chain's certificate: "
					"the %s text was changed", name, name, name);
		else
			ok = true;
	}
	sk_X509_free(untrusted);
	sk_X509_pop_free(certs, X509_free);
	if (!ok)
		return false;

	issue = str_member(doc, "issueDate");
	next = str_member(doc, "nextUpdate");
	if (issue == NULL || next == NULL || !tdx_parse_time(issue, &t_issue) || !tdx_parse_time(next, &t_next))
		return tdx_err(err, "%s has no issueDate and nextUpdate of the form YYYY-MM-DDThh:mm:ssZ", name);
	if (at < t_issue)
		return tdx_err(err, "%s was issued at %s, after the verification time", name, issue);
	if (at > t_next)
		return tdx_err(err, "%s expired at %s (nextUpdate): fetch fresh collateral", name, next);
	return true;
}

bool
tdx_collateral_check(TdxCollateral *c, time_t at, TdxErr *err)
{
	X509	   *root = tdx_intel_root_ca(err);
	X509_CRL   *root_crl = sk_X509_CRL_value(c->crls, 0);
	X509_REVOKED *rev = NULL;

	if (root == NULL)
		return false;
	/* the root CA CRL is the root's own: signed by it, and not listing it */
	if (X509_CRL_verify(root_crl, X509_get0_pubkey(root)) != 1)
	{
		X509_free(root);
		ERR_clear_error();
		return tdx_err(err, "root_ca_crl is not signed by the Intel SGX Root CA");
	}
	if (X509_CRL_get0_by_serial(root_crl, &rev, X509_get0_serialNumber(root)) == 1)
	{
		X509_free(root);
		return tdx_err(err, "root_ca_crl revokes the Intel SGX Root CA itself");
	}
	X509_free(root);
	ERR_clear_error();
	if (!check_signed(c, "tcb_info", c->tcb_info_text, c->tcb_info, at, err))
		return false;
	if (!check_signed(c, "qe_identity", c->qe_identity_text, c->qe_identity, at, err))
		return false;
	return true;
}

/* ---------------------------------------------------------------- statuses */

static int
severity(const char *s)
{
	static const char *const order[] = {
		"UpToDate", "SWHardeningNeeded", "ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded",
		"OutOfDate", "OutOfDateConfigurationNeeded", "Revoked",
	};

	for (int i = 0; i < (int) (sizeof(order) / sizeof(order[0])); i++)
		if (strcmp(s, order[i]) == 0)
			return i;
	return 100;					/* unknown: worst */
}

typedef struct Status
{
	char		status[48];
	char		advisories[512];
} Status;

static void
status_from_level(json_t *level, Status *st)
{
	json_t	   *ids = json_object_get(level, "advisoryIDs"),
			   *id;
	size_t		i;
	const char *s = str_member(level, "tcbStatus");

	snprintf(st->status, sizeof(st->status), "%s", s ? s : "(none)");
	st->advisories[0] = '\0';
	json_array_foreach(ids, i, id)
		if (json_is_string(id) && strlen(st->advisories) + strlen(json_string_value(id)) + 2 < sizeof(st->advisories))
		{
			if (st->advisories[0])
				strcat(st->advisories, ",");
			strcat(st->advisories, json_string_value(id));
		}
}

/* a := worse of a and b; advisories: a's, then b's not yet in a */
static void
status_merge(Status *a, const Status *b)
{
	char		buf[512],
			   *tok,
			   *save = NULL;

	if (severity(b->status) > severity(a->status))
		memcpy(a->status, b->status, sizeof(a->status));
	snprintf(buf, sizeof(buf), "%s", b->advisories);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
	{
		char		pad[520],
					hay[520];

		snprintf(pad, sizeof(pad), ",%s,", tok);
		snprintf(hay, sizeof(hay), ",%s,", a->advisories);
		if (strstr(hay, pad) == NULL && strlen(a->advisories) + strlen(tok) + 2 < sizeof(a->advisories))
		{
			if (a->advisories[0])
				strcat(a->advisories, ",");
			strcat(a->advisories, tok);
		}
	}
}

/* ---------------------------------------------------------------- TCB levels */

/* The 16 svn values of tcb.<member>, or -1 when absent, -2 when not 16 integers 0..255. */
static int
components(json_t *tcb, const char *member, uint8_t out[16])
{
	json_t	   *a = json_object_get(tcb, member),
			   *e;
	size_t		i;

	if (a == NULL)
		return -1;
	if (!json_is_array(a) || json_array_size(a) != 16)
		return -2;
	json_array_foreach(a, i, e)
	{
		json_t	   *svn = json_object_get(e, "svn");

		if (!json_is_integer(svn) || json_integer_value(svn) < 0 || json_integer_value(svn) > 255)
			return -2;
		out[i] = (uint8_t) json_integer_value(svn);
	}
	return 16;
}

typedef struct Level
{
	json_t	   *json;
	uint8_t		sgx[16];
	uint8_t		tdx[16];
	int64_t		pcesvn;
} Level;

/* Intel's canonical order: SGX components, then PCESVN, then TDX components, highest first. */
static int
level_cmp(const Level *a, const Level *b)
{
	int			c = memcmp(b->sgx, a->sgx, 16);

	if (c == 0)
		c = b->pcesvn < a->pcesvn ? -1 : b->pcesvn > a->pcesvn;
	if (c == 0)
		c = memcmp(b->tdx, a->tdx, 16);
	return c;
}

/*
 * The TDX module identity: the TCB info's tdxModule, or for a module version
 * above 0 its tdxModuleIdentities entry TDX_<version>, gives the expected
 * MRSIGNER_SEAM and SEAM attributes (under the mask, no bit outside it), and
 * the entry's levels the module's status by its ISVSVN.  *has is false when
 * no entry adds a status.
 */
static bool
module_identity(json_t *tcb_info, const TdxQuote *q, Status *st, bool *has, TdxErr *err)
{
	json_t	   *base = json_object_get(tcb_info, "tdxModule"),
			   *ids = json_object_get(tcb_info, "tdxModuleIdentities"),
			   *levels = NULL,
			   *e;
	const char *mrsigner,
			   *attrs,
			   *mask;
	uint8_t		want_signer[48],
				want_attrs[8],
				want_mask[8];
	uint8_t		isvsvn = q->tee_tcb_svn[0],
				version = q->tee_tcb_svn[1];
	size_t		i;

	*has = false;
	if (!json_is_object(base))
		return tdx_err(err, "the TDX TCB info has no tdxModule");
	mrsigner = str_member(base, "mrsigner");
	attrs = str_member(base, "attributes");
	mask = str_member(base, "attributesMask");
	if (version > 0 && json_is_array(ids) && json_array_size(ids) > 0)
	{
		char		want[16];
		json_t	   *found = NULL;

		snprintf(want, sizeof(want), "TDX_%02X", version);
		json_array_foreach(ids, i, e)
			if (str_member(e, "id") && strcasecmp(str_member(e, "id"), want) == 0)
			{
				found = e;
				break;
			}
		if (found == NULL)
			return tdx_err(err, "the TCB info has no TDX module identity %s (the quote's TDX module version)", want);
		mrsigner = str_member(found, "mrsigner");
		attrs = str_member(found, "attributes");
		mask = str_member(found, "attributesMask");
		levels = json_object_get(found, "tcbLevels");
	}
	if (!mrsigner || !attrs || !mask || !unhex(mrsigner, want_signer, 48) || !unhex(attrs, want_attrs, 8) ||
		!unhex(mask, want_mask, 8))
		return tdx_err(err, "the TCB info's TDX module mrsigner, attributes or attributesMask is malformed");
	if (memcmp(q->mr_signer_seam, want_signer, 48) != 0)
		return tdx_err(err, "the TD report's MRSIGNER_SEAM is not the TDX module signer of the TCB info");
	for (int k = 0; k < 8; k++)
	{
		if ((q->seam_attributes[k] & want_mask[k]) != (want_attrs[k] & want_mask[k]))
			return tdx_err(err, "the TD report's SEAM attributes differ from the TDX module identity at byte %d", k);
		if (q->seam_attributes[k] & ~want_mask[k])
			return tdx_err(err, "the TD report's SEAM attributes have bits outside the identity's mask at byte %d", k);
	}
	if (levels == NULL)
		return true;
	json_array_foreach(levels, i, e)
	{
		json_t	   *svn = json_object_get(json_object_get(e, "tcb"), "isvsvn");

		if (!json_is_integer(svn))
			return tdx_err(err, "a TDX module TCB level has no integer tcb.isvsvn");
		if (isvsvn >= json_integer_value(svn))
		{
			status_from_level(e, st);
			*has = true;
			return true;
		}
	}
	return tdx_err(err, "the TDX module's ISVSVN %u is below every TDX module TCB level", isvsvn);
}

/* The QE identity policy (MRSIGNER, ISVPRODID, not debug, MISCSELECT and ATTRIBUTES under their masks) and the QE's TCB level. */
static bool
qe_identity(json_t *qi, const TdxQuote *q, Status *st, TdxErr *err)
{
	const uint8_t *r = q->qe_report;
	const char *id = str_member(qi, "id");
	json_t	   *ver = json_object_get(qi, "version"),
			   *prod = json_object_get(qi, "isvprodid"),
			   *levels = json_object_get(qi, "tcbLevels"),
			   *e;
	uint8_t		signer[32],
				misc[4],
				misc_mask[4],
				attrs[16],
				attrs_mask[16];
	uint32_t	m,
				mm,
				qm;
	uint16_t	isvsvn = (uint16_t) (r[258] | r[259] << 8);
	size_t		i;

	if (id == NULL || strcmp(id, "TD_QE") != 0 || !json_is_integer(ver) ||
		(json_integer_value(ver) != 2 && json_integer_value(ver) != 3))
		return tdx_err(err, "the QE identity is \"%s\" version %lld, not the TD QE's (TD_QE, version 2 or 3)",
					   id ? id : "?", (long long) json_integer_value(ver));
	if (!str_member(qi, "mrsigner") || !unhex(str_member(qi, "mrsigner"), signer, 32) ||
		!str_member(qi, "miscselect") || !unhex(str_member(qi, "miscselect"), misc, 4) ||
		!str_member(qi, "miscselectMask") || !unhex(str_member(qi, "miscselectMask"), misc_mask, 4) ||
		!str_member(qi, "attributes") || !unhex(str_member(qi, "attributes"), attrs, 16) ||
		!str_member(qi, "attributesMask") || !unhex(str_member(qi, "attributesMask"), attrs_mask, 16) ||
		!json_is_integer(prod))
		return tdx_err(err, "the QE identity's mrsigner, miscselect, attributes or isvprodid is malformed");
	if (memcmp(r + 128, signer, 32) != 0)
		return tdx_err(err, "the QE report's MRSIGNER is not the QE identity's: the quoting enclave is not Intel's");
	if ((r[256] | r[257] << 8) != json_integer_value(prod))
		return tdx_err(err, "the QE report's ISVPRODID %u is not the QE identity's %lld", r[256] | r[257] << 8,
					   (long long) json_integer_value(prod));
	if (r[48] & 0x02)
		return tdx_err(err, "the quoting enclave runs in debug mode");
	m = (uint32_t) misc[0] | (uint32_t) misc[1] << 8 | (uint32_t) misc[2] << 16 | (uint32_t) misc[3] << 24;
	mm = (uint32_t) misc_mask[0] | (uint32_t) misc_mask[1] << 8 | (uint32_t) misc_mask[2] << 16 |
		(uint32_t) misc_mask[3] << 24;
	qm = (uint32_t) r[16] | (uint32_t) r[17] << 8 | (uint32_t) r[18] << 16 | (uint32_t) r[19] << 24;
	if ((qm & mm) != (m & mm))
		return tdx_err(err, "the QE report's MISCSELECT does not match the QE identity");
	for (int k = 0; k < 16; k++)
		if ((r[48 + k] & attrs_mask[k]) != (attrs[k] & attrs_mask[k]))
			return tdx_err(err, "the QE report's ATTRIBUTES do not match the QE identity at byte %d", k);
	if (!json_is_array(levels) || json_array_size(levels) == 0)
		return tdx_err(err, "the QE identity has no TCB levels");
	json_array_foreach(levels, i, e)
	{
		json_t	   *svn = json_object_get(json_object_get(e, "tcb"), "isvsvn");

		if (!json_is_integer(svn))
			return tdx_err(err, "a QE identity TCB level has no integer tcb.isvsvn");
		if (isvsvn >= json_integer_value(svn))
		{
			status_from_level(e, st);
			return true;
		}
	}
	return tdx_err(err, "the QE's ISVSVN %u is below every QE identity TCB level", isvsvn);
}

bool
tdx_tcb_evaluate(TdxCollateral *c, const TdxQuote *q, const TdxPckInfo *pck, TdxTcbResult *out, TdxErr *err)
{
	json_t	   *ti = c->tcb_info,
			   *arr = json_object_get(ti, "tcbLevels"),
			   *e;
	const char *id = str_member(ti, "id"),
			   *fmspc = str_member(ti, "fmspc"),
			   *pce_id = str_member(ti, "pceId");
	json_t	   *ver = json_object_get(ti, "version");
	uint8_t		b6[6],
				b2[2];
	Level	   *lv;
	size_t		n,
				i;
	int			match = -1;
	Status		platform,
				module,
				qe,
				total;
	bool		has_module = false;
	char		hex[16];

	memset(out, 0, sizeof(*out));
	if (id == NULL || strcmp(id, "TDX") != 0 || !json_is_integer(ver) || json_integer_value(ver) < 3)
		return tdx_err(err, "the collateral's TCB info is \"%s\" version %lld, not TDX TCB info (TDX, version 3)",
					   id ? id : "?", (long long) json_integer_value(ver));
	if (fmspc == NULL || !unhex(fmspc, b6, 6))
		return tdx_err(err, "the TCB info has no 6-byte hex fmspc");
	if (memcmp(b6, pck->fmspc, 6) != 0)
	{
		dhex_encode(pck->fmspc, 6, hex);
		return tdx_err(err, "the collateral is for FMSPC %s, the quote's platform is FMSPC %s: fetch the "
					   "collateral for this platform", fmspc, hex);
	}
	if (pce_id == NULL || !unhex(pce_id, b2, 2) || memcmp(b2, pck->pce_id, 2) != 0)
		return tdx_err(err, "the collateral's pceId is not the PCK certificate's PCE-ID");
	if (!json_is_array(arr) || (n = json_array_size(arr)) == 0)
		return tdx_err(err, "the TCB info has no TCB levels");

	lv = calloc(n, sizeof(Level));
	if (lv == NULL)
		return tdx_err(err, "out of memory");
	json_array_foreach(arr, i, e)
	{
		json_t	   *tcb = json_object_get(e, "tcb");
		json_t	   *p = json_object_get(tcb, "pcesvn");

		lv[i].json = e;
		if (components(tcb, "sgxtcbcomponents", lv[i].sgx) != 16 ||
			components(tcb, "tdxtcbcomponents", lv[i].tdx) != 16 || !json_is_integer(p))
		{
			free(lv);
			return tdx_err(err, "TCB level %zu does not have 16 SGX and 16 TDX components and a pcesvn", i);
		}
		lv[i].pcesvn = json_integer_value(p);
	}
	/* stable insertion sort into the canonical order (Intel's signed order already is) */
	for (i = 1; i < n; i++)
	{
		Level		x = lv[i];
		size_t		j = i;

		for (; j > 0 && level_cmp(&lv[j - 1], &x) > 0; j--)
			lv[j] = lv[j - 1];
		lv[j] = x;
	}
	for (i = 0; i < n && match < 0; i++)
	{
		bool		meets = pck->pce_svn >= lv[i].pcesvn;

		for (int k = 0; meets && k < 16; k++)
			meets = pck->cpu_svn[k] >= lv[i].sgx[k] && q->tee_tcb_svn[k] >= lv[i].tdx[k];
		if (meets)
			match = (int) i;
	}
	if (match < 0)
	{
		free(lv);
		return tdx_err(err, "no TCB level of the collateral matches the platform (CPUSVN, PCESVN %u, TEE_TCB_SVN): "
					   "its TCB is older than any Intel still lists", pck->pce_svn);
	}
	status_from_level(lv[match].json, &platform);
	{
		const char *d = str_member(lv[match].json, "tcbDate");

		snprintf(out->tcb_date, sizeof(out->tcb_date), "%s", d ? d : "");
	}
	free(lv);
	total = platform;
	memset(&module, 0, sizeof(module));
	if (!module_identity(ti, q, &module, &has_module, err))
		return false;
	if (has_module)
		status_merge(&total, &module);
	if (!qe_identity(c->qe_identity, q, &qe, err))
		return false;
	status_merge(&total, &qe);

	snprintf(out->status, sizeof(out->status), "%s", total.status);
	snprintf(out->platform, sizeof(out->platform), "%s", platform.status);
	snprintf(out->module, sizeof(out->module), "%s", has_module ? module.status : "");
	snprintf(out->qe, sizeof(out->qe), "%s", qe.status);
	snprintf(out->advisories, sizeof(out->advisories), "%s", total.advisories);
	out->up_to_date = strcmp(total.status, "UpToDate") == 0;
	if (severity(total.status) >= severity("Revoked"))
		return tdx_err(err, "the TCB status is %s (platform %s%s%s, QE %s)", total.status, platform.status,
					   has_module ? ", TDX module " : "", has_module ? module.status : "", qe.status);
	return true;
}
