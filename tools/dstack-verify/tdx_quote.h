/*
 * tdx_quote.h: Intel TDX DCAP quotes (version 4, and version 5 with a TD 1.0
 * or TD 1.5 report body), checked with OpenSSL 3 and no network:
 *
 *   tdx_quote_parse        the layout, with trailing zero padding allowed
 *   tdx_pck_chain_verify   the PCK certificate chain in the quote's
 *                          certification data (type 6 holding type 5, PEM)
 *                          up to the Intel SGX Root CA embedded below
 *   tdx_qe_report_verify   the QE report's signature by the PCK key and its
 *                          report_data = sha256(attestation key || QE auth
 *                          data) || 32 zero bytes
 *   tdx_quote_sig_verify   the quote's ECDSA P-256 signature by the
 *                          attestation key over header and TD report body
 *   tdx_td_attributes_check  no debug TD, no reserved bits, SEPT_VE_DISABLE
 *
 * Layout (all integers little-endian), version 4:
 *   0    48   header: version u16, attestation key type u16 (2 = ECDSA P-256),
 *             TEE type u32 (0x81 = TDX), reserved 4, QE vendor id 16, user data 20
 *   48   584  TD report body (TD 1.0)
 *   632  4    signature data length L
 *   636  L    signature data: quote signature 64 (r||s), attestation key 64 (x||y),
 *             certification data type u16 (6) and size u32, then: QE report 384,
 *             QE report signature 64, QE auth data size u16 and bytes,
 *             certification data type u16 (5 = PCK chain, PEM) and size u32, bytes
 * Version 5 puts body type u16 (2 = TD 1.0, 3 = TD 1.5) and body size u32
 * between the header and the body; the signed data is everything before L.
 * After the signature data a quote may carry zero bytes (the guest agent pads
 * quotes to a fixed size) and nothing else.
 */
#ifndef DSTACK_TDX_QUOTE_H
#define DSTACK_TDX_QUOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#define TDX_ERR_LEN			512

typedef struct TdxErr
{
	char		msg[TDX_ERR_LEN];
} TdxErr;

/* printf into err (always NUL-terminated); returns false for `return tdx_err(...)` */
extern bool tdx_err(TdxErr *err, const char *fmt,...) __attribute__((format(printf, 2, 3)));

#define TDX_QUOTE_HEADER_LEN	48
#define TDX_TD10_BODY_LEN		584
#define TDX_TD15_BODY_LEN		648
#define TDX_QE_REPORT_LEN		384
#define TDX_MR_LEN				48

#define TDX_TEE_TYPE_TDX		0x81
#define TDX_AK_ECDSA_P256		2
#define TDX_CERT_PCK_CHAIN		5
#define TDX_CERT_QE_REPORT		6

extern const uint8_t tdx_intel_qe_vendor_id[16];

typedef struct TdxQuote
{
	const uint8_t *raw;			/* the caller's bytes; every pointer below points into them */
	size_t		raw_len;
	uint16_t	version;
	uint16_t	ak_type;
	uint32_t	tee_type;
	const uint8_t *qe_vendor_id;	/* 16 */
	const uint8_t *user_data;	/* 20 */
	uint16_t	body_type;		/* 2 = TD 1.0, 3 = TD 1.5 (version 4 is always TD 1.0) */
	const uint8_t *body;
	size_t		body_len;
	size_t		signed_len;		/* header [+ body descriptor] + body */

	/* TD report fields */
	const uint8_t *tee_tcb_svn; /* 16 */
	const uint8_t *mr_seam;
	const uint8_t *mr_signer_seam;
	const uint8_t *seam_attributes; /* 8 */
	const uint8_t *td_attributes;	/* 8 */
	const uint8_t *xfam;		/* 8 */
	const uint8_t *mr_td;
	const uint8_t *mr_config_id;
	const uint8_t *mr_owner;
	const uint8_t *mr_owner_config;
	const uint8_t *rtmr[4];
	const uint8_t *report_data; /* 64 */
	const uint8_t *mr_service_td;	/* TD 1.5 only, else NULL */

	/* signature data */
	size_t		sig_data_len;
	const uint8_t *signature;	/* 64: r || s */
	const uint8_t *attest_key;	/* 64: x || y */
	const uint8_t *qe_report;	/* 384 */
	const uint8_t *qe_report_sig;	/* 64 */
	const uint8_t *qe_auth;
	size_t		qe_auth_len;
	uint16_t	cert_type;		/* of the innermost certification data (5 when verifiable) */
	const uint8_t *cert_data;
	size_t		cert_data_len;

	size_t		end;			/* offset just after the signature data */
	size_t		trailing;		/* raw_len - end */
	bool		trailing_zero;	/* every trailing byte is zero */
} TdxQuote;

/*
 * Parse a quote.  Refuses: a short or truncated quote, another version, TEE
 * type or attestation key type, nested lengths that do not add up to the
 * signature data length exactly, and trailing bytes that are not all zero
 * unless allow_trailing is set (the caller then decides; q->trailing_zero
 * says which).
 */
extern bool tdx_quote_parse(const uint8_t *raw, size_t len, bool allow_trailing, TdxQuote *q, TdxErr *err);

/* The PCK leaf certificate's Intel SGX extension (OID 1.2.840.113741.1.13.1). */
typedef struct TdxPckInfo
{
	uint8_t		fmspc[6];
	uint8_t		pce_id[2];
	uint8_t		cpu_svn[16];
	uint16_t	pce_svn;
	uint8_t		ppid[16];
	char		leaf_subject[128];
	char		issuer_subject[128];	/* the intermediate CA (Platform or Processor) */
} TdxPckInfo;

/*
 * The quote's PCK chain: at least leaf and one CA, verified with OpenSSL up to
 * the embedded Intel SGX Root CA at time `at`; with crls (DER, may be NULL),
 * every certificate below the root must be covered by an unexpired CRL that
 * does not list it.  On success *leaf_out (if not NULL) gets a reference the
 * caller frees with X509_free().
 */
extern bool tdx_pck_chain_verify(const TdxQuote *q, time_t at, STACK_OF(X509_CRL) *crls,
								 X509 **leaf_out, TdxPckInfo *info, TdxErr *err);

/* The QE report: signed by the PCK leaf key, binding attestation key and QE auth data. */
extern bool tdx_qe_report_verify(const TdxQuote *q, X509 *pck_leaf, TdxErr *err);

/* The quote: signed by the attestation key over q->raw[0 .. q->signed_len). */
extern bool tdx_quote_sig_verify(const TdxQuote *q, TdxErr *err);

/* TD attributes: not a debug TD, no reserved bit, SEPT_VE_DISABLE set; TD 1.5: no service TD. */
extern bool tdx_td_attributes_check(const TdxQuote *q, TdxErr *err);

/* ---- helpers shared with tdx_collateral.c ---- */

/* The embedded Intel SGX Root CA (PEM) and the SHA-256 fingerprint of its DER. */
extern const char tdx_intel_root_ca_pem[];
extern const char tdx_intel_root_ca_sha256[];	/* 64 lowercase hex */

/* A new X509 of the embedded root, its fingerprint checked (caller frees); NULL with err. */
extern X509 *tdx_intel_root_ca(TdxErr *err);

/* PEM certificates in buf (trailing NUL bytes allowed); NULL with err when none or a bad block. */
extern STACK_OF(X509) *tdx_pem_certs(const uint8_t *buf, size_t len, TdxErr *err);

/* Verify leaf over untrusted intermediates to the embedded root at `at`, with optional CRLs. */
extern bool tdx_chain_verify(X509 *leaf, STACK_OF(X509) *untrusted, time_t at, STACK_OF(X509_CRL) *crls,
							 const char *what, TdxErr *err);

/* ECDSA P-256 / SHA-256 signature r||s (64 bytes) over msg, by pkey. */
extern bool tdx_ecdsa_p256_verify(EVP_PKEY *pkey, const uint8_t *msg, size_t len, const uint8_t sig[64]);

/* An EVP_PKEY for a raw P-256 point x||y (64 bytes); NULL when not on the curve. */
extern EVP_PKEY *tdx_p256_pubkey(const uint8_t xy[64]);


#endif							/* DSTACK_TDX_QUOTE_H */
