/*
 * tdx_quote.c: parse a TDX DCAP quote and check what it carries without
 * collateral: the PCK chain to Intel's root, the QE report, the quote
 * signature, the TD attributes (layout in tdx_quote.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "hex.h"
#include "tdx_quote.h"

const uint8_t tdx_intel_qe_vendor_id[16] = {
	0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07,
};

/*
 * Intel SGX Root CA, the trust anchor of every PCK, TCB signing and QE
 * identity signing certificate; README.md says how to compare it with the
 * one Intel publishes.  The same bytes end the PCK chain of every quote in
 * fixtures/ (fixtures/README.md).
 */
const char	tdx_intel_root_ca_pem[] =
"-----BEGIN CERTIFICATE-----\n"
"MIICjzCCAjSgAwIBAgIUImUM1lqdNInzg7SVUr9QGzknBqwwCgYIKoZIzj0EAwIw\n"
"aDEaMBgGA1UEAwwRSW50ZWwgU0dYIFJvb3QgQ0ExGjAYBgNVBAoMEUludGVsIENv\n"
"cnBvcmF0aW9uMRQwEgYDVQQHDAtTYW50YSBDbGFyYTELMAkGA1UECAwCQ0ExCzAJ\n"
"BgNVBAYTAlVTMB4XDTE4MDUyMTEwNDUxMFoXDTQ5MTIzMTIzNTk1OVowaDEaMBgG\n"
"A1UEAwwRSW50ZWwgU0dYIFJvb3QgQ0ExGjAYBgNVBAoMEUludGVsIENvcnBvcmF0\n"
"aW9uMRQwEgYDVQQHDAtTYW50YSBDbGFyYTELMAkGA1UECAwCQ0ExCzAJBgNVBAYT\n"
"AlVTMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEC6nEwMDIYZOj/iPWsCzaEKi7\n"
"1OiOSLRFhWGjbnBVJfVnkY4u3IjkDYYL0MxO4mqsyYjlBalTVYxFP2sJBK5zlKOB\n"
"uzCBuDAfBgNVHSMEGDAWgBQiZQzWWp00ifODtJVSv1AbOScGrDBSBgNVHR8ESzBJ\n"
"MEegRaBDhkFodHRwczovL2NlcnRpZmljYXRlcy50cnVzdGVkc2VydmljZXMuaW50\n"
"ZWwuY29tL0ludGVsU0dYUm9vdENBLmRlcjAdBgNVHQ4EFgQUImUM1lqdNInzg7SV\n"
"Ur9QGzknBqwwDgYDVR0PAQH/BAQDAgEGMBIGA1UdEwEB/wQIMAYBAf8CAQEwCgYI\n"
"KoZIzj0EAwIDSQAwRgIhAOW/5QkR+S9CiSDcNoowLuPRLsWGf/Yi7GSX94BgwTwg\n"
"AiEA4J0lrHoMs+Xo5o/sX6O9QWxHRAvZUGOdRQ7cvqRXaqI=\n"
"-----END CERTIFICATE-----\n";

/* SHA-256 of the DER above; README.md prints it for comparison with Intel's */
const char	tdx_intel_root_ca_sha256[] = "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3";

bool
tdx_err(TdxErr *err, const char *fmt,...)
{
	va_list		ap;

	if (err == NULL)
		return false;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return false;
}

static uint16_t
le16(const uint8_t *p)
{
	return (uint16_t) (p[0] | p[1] << 8);
}

static uint32_t
le32(const uint8_t *p)
{
	return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

/* Does [off, off + n) fit in len?  (no overflow) */
static bool
fits(size_t off, size_t n, size_t len)
{
	return off <= len && n <= len - off;
}

bool
tdx_quote_parse(const uint8_t *raw, size_t len, bool allow_trailing, TdxQuote *q, TdxErr *err)
{
	size_t		off,
				sd,
				sd_end,
				cd_len,
				inner;

	memset(q, 0, sizeof(*q));
	q->raw = raw;
	q->raw_len = len;
	if (len < TDX_QUOTE_HEADER_LEN)
		return tdx_err(err, "%zu bytes is shorter than a quote header (48)", len);
	q->version = le16(raw);
	q->ak_type = le16(raw + 2);
	q->tee_type = le32(raw + 4);
	q->qe_vendor_id = raw + 12;
	q->user_data = raw + 28;
	if (q->version != 4 && q->version != 5)
		return tdx_err(err, "quote version %u (a TDX quote is version 4 or 5)", q->version);
	if (q->tee_type != TDX_TEE_TYPE_TDX)
		return tdx_err(err, "TEE type 0x%x is not TDX (0x81)", q->tee_type);
	if (q->ak_type != TDX_AK_ECDSA_P256)
		return tdx_err(err, "attestation key type %u is not ECDSA P-256 (2)", q->ak_type);

	off = TDX_QUOTE_HEADER_LEN;
	if (q->version == 4)
	{
		q->body_type = 2;
		q->body_len = TDX_TD10_BODY_LEN;
	}
	else
	{
		if (!fits(off, 6, len))
			return tdx_err(err, "quote truncated in the body descriptor (%zu bytes)", len);
		q->body_type = le16(raw + off);
		q->body_len = le32(raw + off + 2);
		off += 6;
		if (!((q->body_type == 2 && q->body_len == TDX_TD10_BODY_LEN) ||
			  (q->body_type == 3 && q->body_len == TDX_TD15_BODY_LEN)))
			return tdx_err(err, "quote body type %u of %zu bytes is not a TD 1.0 (2, 584) or TD 1.5 (3, 648) report",
						   q->body_type, q->body_len);
	}
	if (!fits(off, q->body_len + 4, len))
		return tdx_err(err, "quote truncated in the TD report (%zu bytes)", len);
	q->body = raw + off;
	q->signed_len = off + q->body_len;

	q->tee_tcb_svn = q->body;
	q->mr_seam = q->body + 16;
	q->mr_signer_seam = q->body + 64;
	q->seam_attributes = q->body + 112;
	q->td_attributes = q->body + 120;
	q->xfam = q->body + 128;
	q->mr_td = q->body + 136;
	q->mr_config_id = q->body + 184;
	q->mr_owner = q->body + 232;
	q->mr_owner_config = q->body + 280;
	for (int i = 0; i < 4; i++)
		q->rtmr[i] = q->body + 328 + 48 * i;
	q->report_data = q->body + 520;
	q->mr_service_td = q->body_type == 3 ? q->body + 600 : NULL;

	/* signature data */
	q->sig_data_len = le32(raw + q->signed_len);
	sd = q->signed_len + 4;
	if (!fits(sd, q->sig_data_len, len))
		return tdx_err(err, "quote truncated: the signature data is %zu bytes, %zu are left", q->sig_data_len, len - sd);
	sd_end = sd + q->sig_data_len;
	if (q->sig_data_len < 64 + 64 + 6)
		return tdx_err(err, "signature data of %zu bytes is too short", q->sig_data_len);
	q->signature = raw + sd;
	q->attest_key = raw + sd + 64;
	off = sd + 128;
	if (le16(raw + off) != TDX_CERT_QE_REPORT)
		return tdx_err(err, "certification data type %u is not QE report certification data (6)", le16(raw + off));
	cd_len = le32(raw + off + 2);
	off += 6;
	if (cd_len != sd_end - off)
		return tdx_err(err, "certification data of %zu bytes does not fill the signature data (%zu bytes left)",
					   cd_len, sd_end - off);

	/* QE report certification data */
	if (!fits(off, TDX_QE_REPORT_LEN + 64 + 2, sd_end))
		return tdx_err(err, "QE report certification data truncated");
	q->qe_report = raw + off;
	q->qe_report_sig = raw + off + TDX_QE_REPORT_LEN;
	off += TDX_QE_REPORT_LEN + 64;
	q->qe_auth_len = le16(raw + off);
	off += 2;
	if (!fits(off, q->qe_auth_len + 6, sd_end))
		return tdx_err(err, "QE authentication data truncated");
	q->qe_auth = raw + off;
	off += q->qe_auth_len;
	q->cert_type = le16(raw + off);
	inner = le32(raw + off + 2);
	off += 6;
	if (inner != sd_end - off)
		return tdx_err(err, "inner certification data of %zu bytes does not end the signature data (%zu bytes left)",
					   inner, sd_end - off);
	q->cert_data = raw + off;
	q->cert_data_len = inner;

	q->end = sd_end;
	q->trailing = len - sd_end;
	q->trailing_zero = true;
	for (size_t i = sd_end; i < len; i++)
		if (raw[i] != 0)
		{
			q->trailing_zero = false;
			if (!allow_trailing)
				return tdx_err(err, "%zu bytes after the signature data, not all zero (byte %zu is 0x%02x): "
							   "only zero padding may follow a quote", q->trailing, i, raw[i]);
			break;
		}
	return true;
}

/* ---------------------------------------------------------------- crypto */

EVP_PKEY *
tdx_p256_pubkey(const uint8_t xy[64])
{
	uint8_t		point[65];
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY   *pkey = NULL;

	point[0] = 0x04;
	memcpy(point + 1, xy, 64);
	if (bld == NULL ||
		!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
		!OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)) ||
		(params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
		(ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
		EVP_PKEY_fromdata_init(ctx) <= 0 ||
		EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		pkey = NULL;
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	/* fromdata does not always check the point: do it here */
	if (pkey)
	{
		EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);

		if (c == NULL || EVP_PKEY_public_check(c) != 1)
		{
			EVP_PKEY_free(pkey);
			pkey = NULL;
		}
		EVP_PKEY_CTX_free(c);
	}
	ERR_clear_error();
	return pkey;
}

bool
tdx_ecdsa_p256_verify(EVP_PKEY *pkey, const uint8_t *msg, size_t len, const uint8_t sig[64])
{
	ECDSA_SIG  *es = ECDSA_SIG_new();
	BIGNUM	   *r = BN_bin2bn(sig, 32, NULL),
			   *s = BN_bin2bn(sig + 32, 32, NULL);
	unsigned char *der = NULL;
	int			der_len = -1;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	bool		ok = false;

	if (es && r && s && ECDSA_SIG_set0(es, r, s))
	{
		r = s = NULL;			/* owned by es */
		der_len = i2d_ECDSA_SIG(es, &der);
	}
	if (der_len > 0 && md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey) == 1)
		ok = EVP_DigestVerify(md, der, (size_t) der_len, msg, len) == 1;
	EVP_MD_CTX_free(md);
	OPENSSL_free(der);
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(es);
	ERR_clear_error();
	return ok;
}

/* The public key of a certificate, which must be an EC P-256 key. */
static EVP_PKEY *
p256_of_cert(X509 *cert, TdxErr *err)
{
	EVP_PKEY   *k = X509_get0_pubkey(cert);
	char		group[64];
	size_t		glen = 0;

	if (k == NULL || EVP_PKEY_get_base_id(k) != EVP_PKEY_EC ||
		!EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &glen) ||
		strcmp(group, "prime256v1") != 0)
	{
		ERR_clear_error();
		tdx_err(err, "the certificate's key is not an EC P-256 key");
		return NULL;
	}
	return k;
}

/* ---------------------------------------------------------------- certificates */

X509 *
tdx_intel_root_ca(TdxErr *err)
{
	BIO		   *b = BIO_new_mem_buf(tdx_intel_root_ca_pem, -1);
	X509	   *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	uint8_t		fp[32];
	unsigned int n = 0;
	char		hex[65];

	BIO_free(b);
	if (x == NULL || X509_digest(x, EVP_sha256(), fp, &n) != 1 || n != 32)
	{
		X509_free(x);
		ERR_clear_error();
		tdx_err(err, "the embedded Intel SGX Root CA does not parse");
		return NULL;
	}
	dhex_encode(fp, 32, hex);
	if (strcmp(hex, tdx_intel_root_ca_sha256) != 0)
	{
		X509_free(x);
		tdx_err(err, "the embedded Intel SGX Root CA has SHA-256 %s, not %s", hex, tdx_intel_root_ca_sha256);
		return NULL;
	}
	return x;
}

STACK_OF(X509) *
tdx_pem_certs(const uint8_t *buf, size_t len, TdxErr *err)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	BIO		   *b;
	X509	   *x;

	while (len > 0 && buf[len - 1] == '\0')
		len--;
	if (sk == NULL || len > INT32_MAX || (b = BIO_new_mem_buf(buf, (int) len)) == NULL)
	{
		sk_X509_free(sk);
		tdx_err(err, "out of memory");
		return NULL;
	}
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
		sk_X509_push(sk, x);
	/* the loop ends at end of input (PEM_R_NO_START_LINE) or at a bad block */
	{
		unsigned long e = ERR_peek_last_error();
		bool		clean_end = ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;

		ERR_clear_error();
		BIO_free(b);
		if (!clean_end || sk_X509_num(sk) == 0)
		{
			tdx_err(err, clean_end ? "no PEM certificate in it" : "a PEM certificate in it does not parse");
			sk_X509_pop_free(sk, X509_free);
			return NULL;
		}
	}
	return sk;
}

static void
subject_cn(X509 *x, char *out, size_t n)
{
	X509_NAME  *nm = X509_get_subject_name(x);
	int			i = X509_NAME_get_index_by_NID(nm, NID_commonName, -1);
	ASN1_STRING *s = i >= 0 ? X509_NAME_ENTRY_get_data(X509_NAME_get_entry(nm, i)) : NULL;

	snprintf(out, n, "%.*s", s ? ASN1_STRING_length(s) : 1, s ? (const char *) ASN1_STRING_get0_data(s) : "?");
}

bool
tdx_chain_verify(X509 *leaf, STACK_OF(X509) *untrusted, time_t at, STACK_OF(X509_CRL) *crls,
				 const char *what, TdxErr *err)
{
	X509_STORE *st = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	X509	   *root = tdx_intel_root_ca(err);
	bool		ok = false;
	char		cn[128];

	if (st == NULL || ctx == NULL || root == NULL || X509_STORE_add_cert(st, root) != 1)
	{
		if (root)
			tdx_err(err, "out of memory");
		goto done;
	}
	for (int i = 0; crls && i < sk_X509_CRL_num(crls); i++)
		if (X509_STORE_add_crl(st, sk_X509_CRL_value(crls, i)) != 1)
		{
			tdx_err(err, "a CRL cannot be added to the store");
			goto done;
		}
	if (X509_STORE_CTX_init(ctx, st, leaf, untrusted) != 1)
	{
		tdx_err(err, "out of memory");
		goto done;
	}
	X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx), at);
	if (crls)
		X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(ctx), X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
	if (X509_verify_cert(ctx) != 1)
	{
		int			e = X509_STORE_CTX_get_error(ctx);
		X509	   *bad = X509_STORE_CTX_get_current_cert(ctx);

		if (bad)
			subject_cn(bad, cn, sizeof(cn));
		else
			snprintf(cn, sizeof(cn), "?");
		tdx_err(err, "%s does not verify to the Intel SGX Root CA (SHA-256 %.16s...) at the verification time: "
				"%s (certificate \"%s\", depth %d)", what, tdx_intel_root_ca_sha256,
				X509_verify_cert_error_string(e), cn, X509_STORE_CTX_get_error_depth(ctx));
		goto done;
	}
	/* an end entity, not a CA (RFC 5280) */
	if (X509_check_ca(leaf) != 0)
	{
		tdx_err(err, "%s: its first certificate is a CA certificate, not an end entity", what);
		goto done;
	}
	ok = true;
done:
	ERR_clear_error();
	X509_free(root);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	return ok;
}

/* ---------------------------------------------------------------- the SGX extension */

#define SGX_EXT_OID		"1.2.840.113741.1.13.1"

/* OID arc after SGX_EXT_OID ("1", "2.17", ...) of a SEQUENCE { OID, value } element, or NULL. */
static STACK_OF(ASN1_TYPE) *
seq_of(const ASN1_TYPE *t)
{
	const unsigned char *p;

	if (t == NULL || t->type != V_ASN1_SEQUENCE)
		return NULL;
	p = t->value.sequence->data;
	return d2i_ASN1_SEQUENCE_ANY(NULL, &p, t->value.sequence->length);
}

/* Find the value of the element whose OID is SGX_EXT_OID "." suffix in a SEQUENCE OF SEQUENCE { OID, ANY }. */
static const ASN1_TYPE *
sgx_find(STACK_OF(ASN1_TYPE) *items, const char *suffix, STACK_OF(ASN1_TYPE) **hold)
{
	char		want[64],
				got[80];

	snprintf(want, sizeof(want), "%s.%s", SGX_EXT_OID, suffix);
	for (int i = 0; i < sk_ASN1_TYPE_num(items); i++)
	{
		STACK_OF(ASN1_TYPE) *pair = seq_of(sk_ASN1_TYPE_value(items, i));
		ASN1_TYPE  *k;

		if (pair == NULL)
			continue;
		k = sk_ASN1_TYPE_num(pair) == 2 ? sk_ASN1_TYPE_value(pair, 0) : NULL;
		if (k && k->type == V_ASN1_OBJECT && OBJ_obj2txt(got, sizeof(got), k->value.object, 1) > 0 &&
			strcmp(got, want) == 0)
		{
			*hold = pair;		/* caller frees; the value lives in it */
			return sk_ASN1_TYPE_value(pair, 1);
		}
		sk_ASN1_TYPE_pop_free(pair, ASN1_TYPE_free);
	}
	return NULL;
}

static bool
sgx_octets(STACK_OF(ASN1_TYPE) *items, const char *suffix, uint8_t *out, int n)
{
	STACK_OF(ASN1_TYPE) *hold = NULL;
	const ASN1_TYPE *v = sgx_find(items, suffix, &hold);
	bool		ok = v && v->type == V_ASN1_OCTET_STRING && ASN1_STRING_length(v->value.octet_string) == n;

	if (ok)
		memcpy(out, ASN1_STRING_get0_data(v->value.octet_string), n);
	sk_ASN1_TYPE_pop_free(hold, ASN1_TYPE_free);
	return ok;
}

static bool
sgx_int(STACK_OF(ASN1_TYPE) *items, const char *suffix, long max, long *out)
{
	STACK_OF(ASN1_TYPE) *hold = NULL;
	const ASN1_TYPE *v = sgx_find(items, suffix, &hold);
	bool		ok = v && v->type == V_ASN1_INTEGER;

	if (ok)
	{
		*out = ASN1_INTEGER_get(v->value.integer);
		ok = *out >= 0 && *out <= max;
	}
	sk_ASN1_TYPE_pop_free(hold, ASN1_TYPE_free);
	return ok;
}

static bool
pck_extension(X509 *leaf, TdxPckInfo *info, TdxErr *err)
{
	ASN1_OBJECT *oid = OBJ_txt2obj(SGX_EXT_OID, 1);
	int			idx = oid ? X509_get_ext_by_OBJ(leaf, oid, -1) : -1;
	STACK_OF(ASN1_TYPE) *items = NULL,
			   *tcb_hold = NULL,
			   *tcb = NULL;
	const unsigned char *p;
	ASN1_OCTET_STRING *data;
	long		pcesvn = 0;
	bool		ok = false;

	if (idx < 0)
	{
		tdx_err(err, "the PCK certificate has no Intel SGX extension (%s)", SGX_EXT_OID);
		goto done;
	}
	if (X509_get_ext_by_OBJ(leaf, oid, idx) >= 0)
	{
		tdx_err(err, "the PCK certificate has two Intel SGX extensions");
		goto done;
	}
	data = X509_EXTENSION_get_data(X509_get_ext(leaf, idx));
	p = ASN1_STRING_get0_data(data);
	items = d2i_ASN1_SEQUENCE_ANY(NULL, &p, ASN1_STRING_length(data));
	if (items == NULL)
	{
		tdx_err(err, "the PCK certificate's Intel SGX extension is not a DER SEQUENCE");
		goto done;
	}
	if (!sgx_octets(items, "4", info->fmspc, 6))
	{
		tdx_err(err, "the PCK certificate has no 6-byte FMSPC");
		goto done;
	}
	if (!sgx_octets(items, "3", info->pce_id, 2))
	{
		tdx_err(err, "the PCK certificate has no 2-byte PCE-ID");
		goto done;
	}
	if (!sgx_octets(items, "1", info->ppid, 16))
		memset(info->ppid, 0, 16);
	tcb = seq_of(sgx_find(items, "2", &tcb_hold));
	if (tcb == NULL || !sgx_octets(tcb, "2.18", info->cpu_svn, 16) || !sgx_int(tcb, "2.17", 65535, &pcesvn))
	{
		tdx_err(err, "the PCK certificate's TCB (CPUSVN, PCESVN) is missing or malformed");
		goto done;
	}
	info->pce_svn = (uint16_t) pcesvn;
	ok = true;
done:
	sk_ASN1_TYPE_pop_free(tcb, ASN1_TYPE_free);
	sk_ASN1_TYPE_pop_free(tcb_hold, ASN1_TYPE_free);
	sk_ASN1_TYPE_pop_free(items, ASN1_TYPE_free);
	ASN1_OBJECT_free(oid);
	ERR_clear_error();
	return ok;
}

bool
tdx_pck_chain_verify(const TdxQuote *q, time_t at, STACK_OF(X509_CRL) *crls,
					 X509 **leaf_out, TdxPckInfo *info, TdxErr *err)
{
	STACK_OF(X509) *certs;
	STACK_OF(X509) *untrusted = NULL;
	X509	   *leaf;
	TdxErr		e2;
	bool		ok = false;

	memset(info, 0, sizeof(*info));
	if (leaf_out)
		*leaf_out = NULL;
	if (q->cert_type != TDX_CERT_PCK_CHAIN)
		return tdx_err(err, "the quote's certification data is of type %u, not a PCK certificate chain (5)",
					   q->cert_type);
	certs = tdx_pem_certs(q->cert_data, q->cert_data_len, &e2);
	if (certs == NULL)
		return tdx_err(err, "the quote's PCK certificate chain: %s", e2.msg);
	if (sk_X509_num(certs) < 2)
	{
		sk_X509_pop_free(certs, X509_free);
		return tdx_err(err, "the quote's PCK certificate chain has %d certificate, it needs the PCK and its CA",
					   sk_X509_num(certs));
	}
	leaf = sk_X509_value(certs, 0);
	untrusted = sk_X509_new_null();
	for (int i = 1; untrusted && i < sk_X509_num(certs); i++)
		sk_X509_push(untrusted, sk_X509_value(certs, i));
	if (untrusted == NULL)
		tdx_err(err, "out of memory");
	else if (tdx_chain_verify(leaf, untrusted, at, crls, "the quote's PCK certificate chain", err) &&
			 pck_extension(leaf, info, err))
	{
		subject_cn(leaf, info->leaf_subject, sizeof(info->leaf_subject));
		subject_cn(sk_X509_value(certs, 1), info->issuer_subject, sizeof(info->issuer_subject));
		if (leaf_out)
		{
			X509_up_ref(leaf);
			*leaf_out = leaf;
		}
		ok = true;
	}
	sk_X509_free(untrusted);
	sk_X509_pop_free(certs, X509_free);
	return ok;
}

bool
tdx_qe_report_verify(const TdxQuote *q, X509 *pck_leaf, TdxErr *err)
{
	EVP_PKEY   *k = p256_of_cert(pck_leaf, err);
	uint8_t		want[64];
	uint8_t    *pre;

	if (k == NULL)
		return tdx_err(err, "the PCK certificate's key is not an EC P-256 key");
	if (!tdx_ecdsa_p256_verify(k, q->qe_report, TDX_QE_REPORT_LEN, q->qe_report_sig))
		return tdx_err(err, "the QE report's signature is not by the PCK certificate's key");
	pre = OPENSSL_malloc(64 + q->qe_auth_len);
	if (pre == NULL)
		return tdx_err(err, "out of memory");
	memcpy(pre, q->attest_key, 64);
	memcpy(pre + 64, q->qe_auth, q->qe_auth_len);
	if (EVP_Digest(pre, 64 + q->qe_auth_len, want, NULL, EVP_sha256(), NULL) != 1)
	{
		OPENSSL_free(pre);
		return tdx_err(err, "SHA-256 failed");
	}
	OPENSSL_free(pre);
	memset(want + 32, 0, 32);
	if (memcmp(q->qe_report + 320, want, 64) != 0)
		return tdx_err(err, "the QE report's report_data is not sha256(attestation key || QE auth data) || 32 zero "
					   "bytes: the attestation key is not the one the QE certified");
	return true;
}

bool
tdx_quote_sig_verify(const TdxQuote *q, TdxErr *err)
{
	EVP_PKEY   *k = tdx_p256_pubkey(q->attest_key);
	bool		ok;

	if (k == NULL)
		return tdx_err(err, "the attestation key is not a P-256 point");
	ok = tdx_ecdsa_p256_verify(k, q->raw, q->signed_len, q->signature);
	EVP_PKEY_free(k);
	if (!ok)
		return tdx_err(err, "the quote's signature over header and TD report (%zu bytes) is not by its attestation key",
					   q->signed_len);
	return true;
}

bool
tdx_td_attributes_check(const TdxQuote *q, TdxErr *err)
{
	const uint8_t *a = q->td_attributes;

	if (a[0] & 0x01)
		return tdx_err(err, "the TD runs in debug mode (TD_ATTRIBUTES.DEBUG): the host can read its memory");
	if ((a[0] & 0xfe) || a[1] || a[2] || (a[3] & 0x0f) || (a[3] & 0x20) || a[4] || a[5] || a[6] || (a[7] & 0x7f))
		return tdx_err(err, "reserved TD_ATTRIBUTES bits are set (%02x%02x%02x%02x%02x%02x%02x%02x)",
					   a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]);
	if (!(a[3] & 0x10))
		return tdx_err(err, "TD_ATTRIBUTES.SEPT_VE_DISABLE is not set");
	if (q->mr_service_td)
		for (int i = 0; i < TDX_MR_LEN; i++)
			if (q->mr_service_td[i])
				return tdx_err(err, "the TD 1.5 report has a non-zero MRSERVICETD (a service TD is bound)");
	return true;
}
