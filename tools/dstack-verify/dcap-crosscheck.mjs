#!/usr/bin/env node
// dcap-crosscheck.mjs: run @phala/dcap-qvl (Phala's DCAP quote verifier, pure
// JavaScript) and dstack-verify --quote on the same quotes, collateral and
// verification time, and require the same verdict: both accept with the same
// TCB status, or both refuse.  The cases are the real quotes and collateral of
// fixtures/ and forged variants of them (signature, report body, QE report,
// attestation key, PCK certificate, truncation, collateral texts and
// signatures, times outside the collateral's window).
//
//   node dcap-crosscheck.mjs PATH/TO/dstack-verify
//
// Prints one line per case and "N agree, N disagree"; exits 1 on a disagreement.
// Two differences are by design and reported as such, not as disagreements:
// dcap-qvl ignores bytes after a quote's signature data, dstack-verify accepts
// only zero padding there; dcap-qvl accepts a CRL past its nextUpdate,
// dstack-verify refuses it (it could not say the certificate is not revoked).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { verify } = require('@phala/dcap-qvl');

const HERE = path.dirname(new URL(import.meta.url).pathname);
const FX = path.join(HERE, 'fixtures');
const V = process.argv[2] ?? path.join(HERE, 'dstack-verify');
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'dcap-crosscheck-'));

function quoteOf(name) {
	const b = fs.readFileSync(path.join(FX, name));
	if (name.endsWith('.json')) return Buffer.from(JSON.parse(b).quote, 'hex');
	if (name.endsWith('.hex')) return Buffer.from(b.toString().trim().replace(/^0x/, ''), 'hex');
	return b;
}
const collateralOf = (name) => JSON.parse(fs.readFileSync(path.join(FX, name)));
const at = (iso) => Math.floor(Date.parse(iso) / 1000);

function dcapQvl(quote, collateral, t) {
	try {
		const r = verify(quote, collateral, t);
		return { ok: true, status: r.status, why: r.status };
	} catch (e) {
		return { ok: false, why: e.message };
	}
}

function dstackVerify(quote, collateral, t, n) {
	const q = path.join(TMP, `q${n}.bin`);
	const c = path.join(TMP, `c${n}.json`);
	fs.writeFileSync(q, quote);
	fs.writeFileSync(c, JSON.stringify(collateral));
	const r = spawnSync(V, ['--quote', q, '--collateral', c, '--at', String(t)], { encoding: 'utf8' });
	const out = r.stdout + r.stderr;
	const fail = out.split('\n').find((l) => l.startsWith('FAIL ')) ?? '';
	const tcb = /^(?:ok|note) {1,3}tcb: (\w+)/m.exec(out);
	// 0: UpToDate; 4: valid, another TCB status; 1: refused
	if (r.status === 0 || r.status === 4) return { ok: true, status: tcb ? tcb[1] : '?', why: tcb ? tcb[1] : '?' };
	if (r.status === 1 && fail) return { ok: false, why: fail };
	// anything else (a crash, a usage error, TCB not evaluated) is not a verdict
	return { ok: false, error: true, why: `exit ${r.status ?? r.signal}: ${out.trim().split('\n').pop()}` };
}

// the PCK leaf certificate's last base64 line, changed in one character
function breakPck(q) {
	const b = Buffer.from(q);
	const end = b.indexOf('-----END CERTIFICATE-----');
	b[end - 20] = b[end - 20] === 0x41 ? 0x42 : 0x41;
	return b;
}
const flip = (q, i) => {
	const b = Buffer.from(q);
	b[i] ^= 1;
	return b;
};
const withTcbInfo = (c, f) => ({ ...c, tcb_info: f(c.tcb_info) });

const C17 = collateralOf('dcap-qvl-tdx_quote_collateral.json');
const C18 = collateralOf('dcap-qvl-tdx_quote_outdated_collateral.json');
const T17 = at('2025-07-01T00:00:00Z');
const T18 = at('2026-03-01T00:00:00Z');
const base = quoteOf('dcap-qvl-tdx_quote.bin');
const dstk = quoteOf('dstack-quote-report.json');

const cases = [
	['dcap-qvl tdx_quote, its collateral', base, C17, T17],
	['dstack quote-report, collateral 90C06F', dstk, C18, T18],
	['dcap-qvl tdx_quote_outdated (v5)', quoteOf('dcap-qvl-tdx_quote_outdated.bin'), C18, T18],
	['dstack ra-tls tdx_quote', quoteOf('dstack-ra-tls-tdx_quote.bin'), C17, T17],
	['dcap-qvl tdx-quote.hex', quoteOf('dcap-qvl-tdx-quote.hex'), C17, T17],
	['dcap-qvl quote-from-tappd.hex', quoteOf('dcap-qvl-quote-from-tappd.hex'), C17, T17],
	['dstack tdx-lite (PCK issued after the collateral)', quoteOf('dstack-tdx-lite-getquote.json'), C18, T18],
	['collateral of another FMSPC', base, C18, T18],
	['TCB info expired', base, C17, at('2025-08-01T00:00:00Z')],
	['TCB info not yet issued', base, C17, at('2025-06-01T00:00:00Z')],
	['verification time 2024-06-01 (before the collateral and the PCK certificate)', base, C17, at('2024-06-01T00:00:00Z')],
	['quote signature flipped', flip(base, 636 + 7), C17, T17],
	['report_data flipped', flip(base, 568), C17, T17],
	['RTMR3 flipped', flip(base, 48 + 472), C17, T17],
	['TD attributes: debug bit', flip(base, 48 + 120), C17, T17],
	['QE report flipped', flip(base, 636 + 134 + 100), C17, T17],
	['QE report signature flipped', flip(base, 636 + 134 + 384 + 3), C17, T17],
	['attestation key flipped', flip(base, 636 + 64 + 9), C17, T17],
	['QE auth data flipped', flip(base, 636 + 134 + 384 + 64 + 2 + 1), C17, T17],
	['PCK certificate altered', breakPck(base), C17, T17],
	['dstack quote: PCK certificate altered', breakPck(dstk), C18, T18],
	['dstack quote: signature flipped', flip(dstk, 636 + 30), C18, T18],
	['trimmed to 1000 bytes', base.subarray(0, 1000), C17, T17],
	['trimmed by one byte of signature data', base.subarray(0, 4935), C17, T17],
	['trimmed to its signature data (no padding)', base.subarray(0, 4936), C17, T17],
	['tcb_info edited', base, withTcbInfo(C17, (t) => t.replace('"OutOfDate"', '"UpToDate"')), T17],
	['tcb_info signature flipped', base, { ...C17, tcb_info_signature: C17.tcb_info_signature.replace(/^./, (x) => (x === '0' ? '1' : '0')) }, T17],
	['qe_identity edited', base, { ...C17, qe_identity: C17.qe_identity.replace('"UpToDate"', '"OutOfDate"') }, T17],
	['qe_identity signature flipped', base, { ...C17, qe_identity_signature: C17.qe_identity_signature.replace(/^./, (x) => (x === '0' ? '1' : '0')) }, T17],
];

// by design: bytes after the signature data (dcap-qvl ignores them, dstack-verify accepts zeros only)
// and CRLs past their nextUpdate (dcap-qvl ignores that; dstack-verify cannot then say the PCK is not revoked):
// the PCK CRL of C17 expires 2025-07-19T10:00:35Z, its TCB info at 10:16:03Z
const byDesign = [
	['a non-zero byte in the padding', flip(base, base.length - 1), C17, T17],
	['the PCK CRL expired, the TCB info not yet', base, C17, at('2025-07-19T10:10:00Z')],
];

let agree = 0;
let disagree = 0;
let n = 0;
for (const [name, q, c, t] of cases) {
	const a = dcapQvl(q, c, t);
	const b = dstackVerify(q, c, t, n++);
	const same = !b.error && a.ok === b.ok && (!a.ok || a.status === b.status);
	if (same) agree++;
	else disagree++;
	console.log(`${same ? 'agree   ' : 'DIFFER  '} ${name}: dcap-qvl ${a.ok ? 'valid ' + a.status : 'refuses (' + a.why + ')'}; ` +
		`dstack-verify ${b.ok ? 'valid ' + b.status : 'refuses (' + b.why + ')'}`);
}
for (const [name, q, c, t] of byDesign) {
	const a = dcapQvl(q, c, t);
	const b = dstackVerify(q, c, t, n++);
	const expected = a.ok && !b.ok && !b.error;
	if (!expected) disagree++;
	console.log(`${expected ? 'by design' : 'DIFFER  '} ${name}: dcap-qvl ${a.ok ? 'valid ' + a.status : 'refuses (' + a.why + ')'}; ` +
		`dstack-verify ${b.ok ? 'valid ' + b.status : 'refuses (' + b.why + ')'}`);
}
fs.rmSync(TMP, { recursive: true, force: true });
console.log(`${agree} agree, ${disagree} disagree, ${byDesign.length} differ by design (of ${cases.length + byDesign.length} cases)`);
process.exit(disagree ? 1 : 0);
