/*
 * tdx_collateral.h: Intel DCAP collateral from a file, and the TCB status of
 * a TDX quote under it.  The file is the JSON that a PCCS client produces
 * (fixtures/dcap-qvl-tdx_quote_collateral.json is one):
 *
 *   tcb_info, qe_identity             the signed JSON texts, as strings
 *   tcb_info_signature, qe_identity_signature   hex r||s (64 bytes)
 *   tcb_info_issuer_chain, qe_identity_issuer_chain   PEM: signing cert, root
 *   root_ca_crl, pck_crl              hex DER (or PEM) CRLs
 *   pck_crl_issuer_chain              PEM (read, not needed: the quote carries the issuer)
 *
 * tdx_collateral_check verifies the collateral itself at time `at`: both
 * signing chains to the embedded Intel SGX Root CA with the CRLs, both
 * signatures over the exact texts, both validity windows, the root not on
 * its own CRL.  tdx_tcb_evaluate then applies the TCB rules: FMSPC and
 * PCE-ID, the first TCB level (in Intel's canonical order) whose SGX and TDX
 * components and PCESVN the platform meets, the TDX module identity, the QE
 * identity policy and QE TCB level; the statuses merged by severity.
 */
#ifndef DSTACK_TDX_COLLATERAL_H
#define DSTACK_TDX_COLLATERAL_H

#include <stdbool.h>
#include <time.h>

#include "tdx_quote.h"

typedef struct TdxCollateral TdxCollateral;

/* Read and parse the file (JSON shape and types only); NULL with err. */
extern TdxCollateral *tdx_collateral_load(const char *path, TdxErr *err);
extern void tdx_collateral_free(TdxCollateral *c);

/* The collateral's own signatures, chains and validity windows at `at`. */
extern bool tdx_collateral_check(TdxCollateral *c, time_t at, TdxErr *err);

/* The CRLs (root CA CRL, PCK CRL), for tdx_pck_chain_verify; owned by c. */
extern STACK_OF(X509_CRL) *tdx_collateral_crls(TdxCollateral *c);

/* A short description: FMSPC, tcbEvaluationDataNumber, issue and next update dates. */
extern const char *tdx_collateral_describe(TdxCollateral *c);

typedef struct TdxTcbResult
{
	char		status[48];		/* merged: UpToDate, SWHardeningNeeded, ConfigurationNeeded, ... */
	char		platform[48];
	char		module[48];		/* "" when the TCB info has no identity for the module */
	char		qe[48];
	char		advisories[512];	/* comma-separated, "" when none */
	char		tcb_date[32];
	bool		up_to_date;
} TdxTcbResult;

/*
 * The TCB status of the quote's platform, TDX module and QE.  Fails (false)
 * when the collateral does not apply (FMSPC, PCE-ID, TDX TCB info), no level
 * matches, the QE is not Intel's TD QE of the identity, or the status is
 * Revoked or unknown.
 */
extern bool tdx_tcb_evaluate(TdxCollateral *c, const TdxQuote *q, const TdxPckInfo *pck, TdxTcbResult *out,
							 TdxErr *err);

/* "2025-06-19T10:16:03Z" -> seconds; false when not that form. */
extern bool tdx_parse_time(const char *s, time_t *out);

#endif							/* DSTACK_TDX_COLLATERAL_H */
