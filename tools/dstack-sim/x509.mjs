// tools/dstack-sim/x509.mjs: just enough DER and X.509 for the simulator's KMS
// certificates (GetTlsKey): P-256 keys, ECDSA-SHA256 signatures, the extensions
// dstack's ra-tls CertRequest sets (key usage, extended key usage, subject alternative
// names, basic constraints for CAs, and its private OIDs for app id, usage and
// attestation).  Not a general encoder.
import { p256 } from '@noble/curves/nist.js';

const cat = (...p) => Buffer.concat(p.map((x) => Buffer.from(x)));

function len(n) {
	if (n < 0x80) return Buffer.from([n]);
	const b = [];
	for (let v = n; v > 0; v >>= 8) b.unshift(v & 0xff);
	return Buffer.from([0x80 | b.length, ...b]);
}
export const tlv = (tag, ...content) => {
	const c = cat(...content);
	return cat([tag], len(c.length), c);
};
const seq = (...c) => tlv(0x30, ...c);
const set = (...c) => tlv(0x31, ...c);
const octets = (b) => tlv(0x04, b);
const bits = (b, unused = 0) => tlv(0x03, [unused], b);
const bool = (v) => tlv(0x01, [v ? 0xff : 0]);
const utf8 = (s) => tlv(0x0c, Buffer.from(s, 'utf8'));
const explicit = (n, ...c) => tlv(0xa0 | n, ...c);

function int(b) {
	let x = Buffer.from(b);
	let i = 0;
	while (i < x.length - 1 && x[i] === 0 && x[i + 1] < 0x80) i++;
	x = x.subarray(i);
	if (x[0] & 0x80) x = cat([0], x);
	return tlv(0x02, x);
}
const smallInt = (n) => int(Buffer.from([n]));

export function oid(dotted) {
	const a = dotted.split('.').map(Number);
	const out = [40 * a[0] + a[1]];
	for (const v of a.slice(2)) {
		const b = [v & 0x7f];
		for (let x = Math.floor(v / 128); x > 0; x = Math.floor(x / 128)) b.unshift(0x80 | (x & 0x7f));
		out.push(...b);
	}
	return tlv(0x06, out);
}

function time(d) {
	const y = d.getUTCFullYear();
	const p = (n) => String(n).padStart(2, '0');
	const s = `${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
	return y >= 1950 && y < 2050 ? tlv(0x17, Buffer.from(String(y).slice(2) + s)) : tlv(0x18, Buffer.from(String(y) + s));
}

const OID = {
	ecPublicKey: '1.2.840.10045.2.1', prime256v1: '1.2.840.10045.3.1.7', ecdsaSha256: '1.2.840.10045.4.3.2',
	cn: '2.5.4.3', o: '2.5.4.10', keyUsage: '2.5.29.15', san: '2.5.29.17', basic: '2.5.29.19', eku: '2.5.29.37',
	serverAuth: '1.3.6.1.5.5.7.3.1', clientAuth: '1.3.6.1.5.5.7.3.2',
	// dstack ra-tls private extensions
	appId: '1.3.6.1.4.1.62397.1.3', usage: '1.3.6.1.4.1.62397.1.4', attestation: '1.3.6.1.4.1.62397.1.8',
};

const ALG = seq(oid(OID.ecdsaSha256));

export function p256Public(sk) {
	return p256.getPublicKey(sk, false);
}

export function spki(pub65) {
	return seq(seq(oid(OID.ecPublicKey), oid(OID.prime256v1)), bits(pub65));
}

/** PKCS#8 PEM of a P-256 key (what rcgen's KeyPair::serialize_pem writes). */
export function pkcs8Pem(sk) {
	const ecKey = seq(smallInt(1), octets(sk), explicit(1, bits(p256Public(sk))));
	const der = seq(smallInt(0), seq(oid(OID.ecPublicKey), oid(OID.prime256v1)), octets(ecKey));
	return pem('PRIVATE KEY', der);
}

export function pem(label, der) {
	const b64 = Buffer.from(der).toString('base64').replace(/.{1,64}/g, '$&\n');
	return `-----BEGIN ${label}-----\n${b64}-----END ${label}-----\n`;
}

function name({ subject, org }) {
	const rdn = [];
	if (org) rdn.push(set(seq(oid(OID.o), utf8(org))));
	rdn.push(set(seq(oid(OID.cn), utf8(subject))));
	return seq(...rdn);
}

const ext = (id, value, critical = false) => seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));

/**
 * A certificate for `pub65` signed by `issuerSk`, as ra-tls CertRequest builds it:
 * key usage digitalSignature (+ keyCertSign, cRLSign for a CA), the requested extended
 * key usages, DNS alternative names, and the private extensions, each an OCTET STRING.
 */
export function certificate({ pub65, subject, org, issuer, issuerSk, altNames = [], ca = null, serverAuth = false,
	clientAuth = false, appId = null, usage = null, attestation = null, notBefore, notAfter }) {
	const exts = [];
	// keyUsage bits: digitalSignature (0), keyCertSign (5), cRLSign (6)
	exts.push(ext(OID.keyUsage, ca === null ? bits([0x80], 7) : bits([0x86], 1), true));
	const ekus = [];
	if (serverAuth) ekus.push(oid(OID.serverAuth));
	if (clientAuth) ekus.push(oid(OID.clientAuth));
	if (ekus.length) exts.push(ext(OID.eku, seq(...ekus)));
	if (altNames.length) exts.push(ext(OID.san, seq(...altNames.map((n) => tlv(0x82, Buffer.from(n, 'ascii'))))));
	if (ca !== null) exts.push(ext(OID.basic, seq(bool(true), smallInt(ca)), true));
	if (appId) exts.push(ext(OID.appId, octets(appId)));
	if (usage) exts.push(ext(OID.usage, octets(Buffer.from(usage, 'utf8'))));
	if (attestation) exts.push(ext(OID.attestation, octets(attestation)));
	const serial = p256.utils.randomSecretKey().subarray(0, 16);
	serial[0] &= 0x7f;
	const tbs = seq(
		explicit(0, smallInt(2)), int(serial), ALG, name(issuer),
		seq(time(notBefore ?? new Date(Date.now() - 60000)), time(notAfter ?? new Date(Date.now() + 10 * 365 * 86400000))),
		name({ subject, org }), spki(pub65), explicit(3, seq(...exts)),
	);
	const sig = p256.sign(tbs, issuerSk, { format: 'der' });
	return pem('CERTIFICATE', seq(tbs, ALG, bits(sig)));
}
