#!/usr/bin/env node
// tools/dstack-sim/dstack-sim.mjs: a dstack guest agent + KMS simulator for development
// and tests (README.md).  At start it "boots" a CVM from an app-compose.json: it builds
// the RTMR3 event log dstack emits, asks dstack's KMS contract (DstackKms.isAppAllowed,
// which delegates to the app's own contract) whether this boot may have its keys, and
// exits as a refused CVM would, or serves the guest agent's API on a Unix socket (and
// the legacy tappd API on a second one).  Quotes are a captured real TDX quote with
// report_data, MRCONFIGID and RTMR3 replaced: their signature does not verify, and they
// carry the simulation marker of tdx.mjs.
//
// node dstack-sim.mjs --socket PATH --rpc URL --kms-contract 0xADDR --app-id 0xADDR
//     --state-dir DIR --app-compose FILE [--compose-hash 0x..] [--os-image-hash 0x..]
//     [--instance-id 0x..] [--device-id 0x..] [--tappd-socket PATH] [--log FILE]
//     [--fixture FILE] [--check-every-request]
// node dstack-sim.mjs --keygen --state-dir DIR      (create the KMS keys, print, exit)
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { p256 } from '@noble/curves/nist.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha384, sha512 } from '@noble/hashes/sha2.js';
import { sha3_256, sha3_384, sha3_512, keccak_256, keccak_384, keccak_512 } from '@noble/hashes/sha3.js';
import {
	appKey, deriveK256, deriveRaw, compressedPub, signRecoverable, kmsIssuedMessage, appSignedMessage,
	encodeIsAppAllowed, decodeBoolString, jsonRpc, toHex, fromHexStrict, fromHexN, concat, secp256k1, sha256, enc,
} from './lib.mjs';
import {
	loadFixture, runtimeEvent, replay, eventJson, simulatedQuote, measurements, mrConfigIdV1,
	encodeAttestationV0,
} from './tdx.mjs';
import { certificate, pkcs8Pem, p256Public, spki } from './x509.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
// the guest agent this simulates: dstack's workspace version
const AGENT_VERSION = { version: '0.6.0', rev: 'dstack-sim' };

function die(msg, code = 2) {
	process.stderr.write(`dstack-sim: ${msg}\n`);
	process.exit(code);
}

// ------------------------------------------------------------------ configuration
let opts;
try {
	opts = parseArgs({
		options: {
			socket: { type: 'string' }, 'tappd-socket': { type: 'string' }, rpc: { type: 'string' },
			'kms-contract': { type: 'string' }, 'app-id': { type: 'string' }, 'compose-hash': { type: 'string' },
			'state-dir': { type: 'string' }, 'app-compose': { type: 'string' }, log: { type: 'string' },
			'instance-id': { type: 'string' }, 'device-id': { type: 'string' }, 'os-image-hash': { type: 'string' },
			fixture: { type: 'string' }, 'check-every-request': { type: 'boolean' }, keygen: { type: 'boolean' },
		},
		strict: true,
	}).values;
} catch (e) {
	die(e.message);
}
if (!opts['state-dir']) die('missing --state-dir');

// ------------------------------------------------------------------ KMS keys
// kms-root.key: the KMS's secp256k1 root (signs the app keys' chain), kms-ca.key: its
// P-256 CA key (its public key, SPKI DER, is the key provider id measured into RTMR3).
fs.mkdirSync(opts['state-dir'], { recursive: true });
function stateKey(name, valid, make) {
	const f = path.join(opts['state-dir'], name);
	if (fs.existsSync(f)) {
		const k = fromHexN(fs.readFileSync(f, 'utf8').trim(), 32, f);
		if (!valid(k)) die(`${f}: not a valid key`);
		return k;
	}
	const k = make();
	fs.writeFileSync(f, toHex(k) + '\n', { mode: 0o600 });
	return k;
}
const rootSk = stateKey('kms-root.key', secp256k1.utils.isValidSecretKey, () => secp256k1.utils.randomSecretKey());
const caSk = stateKey('kms-ca.key', p256.utils.isValidSecretKey, () => p256.utils.randomSecretKey());
const rootPub = compressedPub(rootSk);
const caSpki = spki(p256Public(caSk));
fs.writeFileSync(path.join(opts['state-dir'], 'kms-root.pub'), toHex(rootPub) + '\n');
fs.writeFileSync(path.join(opts['state-dir'], 'kms-ca.pub'), toHex(caSpki) + '\n');
if (opts.keygen) {
	process.stdout.write(`${toHex(rootPub)}\n`);
	process.exit(0);
}
for (const k of ['socket', 'rpc', 'kms-contract', 'app-id', 'app-compose']) if (!opts[k]) die(`missing --${k}`);

let appId, kmsContract, composeHash, appComposeRaw, appCompose, fixture;
try {
	appId = fromHexN(opts['app-id'], 20, '--app-id');
	kmsContract = fromHexN(opts['kms-contract'], 20, '--kms-contract');
	appComposeRaw = fs.readFileSync(opts['app-compose'], 'utf8');
	composeHash = opts['compose-hash'] !== undefined
		? fromHexN(opts['compose-hash'], 32, '--compose-hash')
		: sha256(fs.readFileSync(opts['app-compose']));
	appCompose = JSON.parse(appComposeRaw);
	fixture = loadFixture(opts.fixture ?? path.join(HERE, 'fixtures/attestation.bin'));
} catch (e) {
	die(e.message);
}
const labelHash = (...parts) => sha256(concat(...parts.map((p) => (typeof p === 'string' ? enc.encode(p) : p))));
const instanceId = opts['instance-id']
	? fromHexN(opts['instance-id'], 20, '--instance-id')
	: labelHash('dstack-sim instance-id', appId, composeHash).subarray(0, 20);
// on TDX dstack reports sha256 of nothing as the device id (decode_app_info)
const deviceId = opts['device-id'] ? fromHexN(opts['device-id'], 32, '--device-id') : sha256(new Uint8Array(0));
const osImageHash = opts['os-image-hash']
	? fromHexN(opts['os-image-hash'], 32, '--os-image-hash')
	: fromHexN(fixture.osImageHash, 32, 'fixture os_image_hash');
const vmConfig = (() => {
	const v = JSON.parse(fixture.vmConfig);
	v.os_image_hash = toHex(osImageHash);
	return JSON.stringify(v);
})();
const sysConfig = JSON.stringify({ ...fixture.sysConfig, vm_config: vmConfig });

// ------------------------------------------------------------------ the boot
// key_provider_info as dstack-util emits it: serde_json of KeyProviderInfo{name, id},
// id = hex of the KMS root CA's public key (SPKI DER)
const keyProviderInfo = JSON.stringify({ name: 'kms', id: toHex(caSpki) });
const eventVersion = appCompose.event_log_version === 2 ? 2 : 1;
const ev = (name, payload) => runtimeEvent(name, payload, eventVersion);
// dstack-util's order: up to boot-mr-done before the KMS is asked, the rest after
const bootEvents = [
	ev('system-preparing', new Uint8Array(0)), ev('app-id', appId), ev('compose-hash', composeHash),
	...(Array.isArray(appCompose.init_script) ? appCompose.init_script : [])
		.map((s) => ev('init-script-hash', sha256(enc.encode(String(s))))),
	ev('instance-id', instanceId), ev('boot-mr-done', new Uint8Array(0)),
];
const laterEvents = [
	ev('os-image-hash', osImageHash), ev('key-provider', enc.encode(keyProviderInfo)),
	ev('storage-fs', enc.encode(typeof appCompose.storage_fs === 'string' ? appCompose.storage_fs : 'zfs')),
	ev('system-ready', new Uint8Array(0)),
];
const runtimeEvents = [...bootEvents, ...laterEvents];
const bootEventLog = fixture.events.filter((e) => e.imr !== 3);
const eventLog = [...bootEventLog, ...runtimeEvents];
const rep = fixture.report;
const mrConfigId = mrConfigIdV1(composeHash);
const regs = (rtmr3) => ({ ...rep, mrConfigId, rtmr: [rep.rtmr[0], rep.rtmr[1], rep.rtmr[2], rtmr3] });
const rtmr3 = replay(runtimeEvents.map((e) => e.digest));
// what the KMS sees at boot (RTMR3 up to boot-mr-done, no key provider yet) and what
// the agent's Info reports afterwards
const bootMr = measurements(regs(replay(bootEvents.map((e) => e.digest))), null);
const infoMr = measurements(regs(rtmr3), enc.encode(keyProviderInfo));
const bootInfo = {
	appId, composeHash, instanceId, deviceId, mrAggregated: bootMr.mrAggregated, mrSystem: bootMr.mrSystem,
	osImageHash, tcbStatus: 'UpToDate', advisoryIds: [],
};

// The app key and its KMS signature, as dstack-kms GetAppKey hands them to the CVM.
const appSk = appKey(rootSk, appId);
const kmsSignature = signRecoverable(rootSk, kmsIssuedMessage(appId, compressedPub(appSk)));
// the KMS's root CA certificate and the app CA it derives (kms derive_app_ca)
const appCaSk = deriveRaw(caSk, [appId, enc.encode('app-ca')]);
if (!p256.utils.isValidSecretKey(appCaSk)) die('derived app CA key is not a valid P-256 scalar');
const rootCaName = { subject: 'Dstack KMS CA', org: 'Dstack' };
const rootCaPem = certificate({ pub65: p256Public(caSk), ...rootCaName, issuer: rootCaName, issuerSk: caSk, ca: 1 });
const appCaName = { subject: 'Dstack App CA', org: 'Dstack' };
const appCaPem = certificate({
	pub65: p256Public(appCaSk), ...appCaName, issuer: rootCaName, issuerSk: caSk, ca: 0, appId, usage: 'app:ca',
});

// ------------------------------------------------------------------ the KMS question
const logStream = opts.log ? fs.createWriteStream(opts.log, { flags: 'a' }) : null;
function logLine(obj) {
	if (logStream) logStream.write(JSON.stringify({ time: new Date().toISOString(), ...obj }) + '\n');
}

/** DstackKms.isAppAllowed(boot info) on the chain, as dstack's KMS asks it (through its auth API). */
async function kmsAllows() {
	const data = encodeIsAppAllowed(bootInfo);
	const result = await jsonRpc(opts.rpc, 'eth_call',
		[{ to: '0x' + toHex(kmsContract), data: '0x' + toHex(data) }, 'latest']);
	const bytes = fromHexStrict(String(result).replace(/^0x/, ''), 'eth_call result');
	if (bytes.length === 0) throw new Error(`no KMS contract at 0x${toHex(kmsContract)} (eth_call returned nothing)`);
	return decodeBoolString(bytes);
}

class RpcError extends Error {}

/** The KMS's verdict on this CVM now; throws the KMS's error text when it refuses. */
async function kmsCheck(ctx, prefix) {
	let v;
	try {
		v = await kmsAllows();
	} catch (e) {
		ctx.decision = 'error';
		throw new RpcError(`${prefix}${e.message}`);
	}
	ctx.decision = v.allowed ? 'allowed' : 'denied';
	if (!v.allowed) throw new RpcError(`${prefix}Boot denied: ${v.reason}`);
}

const hexBootInfo = () => Object.fromEntries(Object.entries(bootInfo).map(([k, v]) => [k, v instanceof Uint8Array ? '0x' + toHex(v) : v]));

// ------------------------------------------------------------------ handlers
// Bytes fields arrive as hex (a leading 0x is dropped, as prpc's hex decoder does).
function bytesArg(args, name) {
	const v = args[name] ?? '';
	if (typeof v !== 'string') throw new RpcError(`invalid type: expected a hex string for ${name}`);
	const h = v.replace(/^(0x)+/, '');
	if (h.length % 2) throw new RpcError('Odd number of digits');
	const bad = /[^0-9a-fA-F]/.exec(h);
	if (bad) throw new RpcError(`Invalid character '${bad[0]}' at position ${bad.index}`);
	return new Uint8Array(Buffer.from(h, 'hex'));
}
function strArg(args, name) {
	const v = args[name] ?? '';
	if (typeof v !== 'string') throw new RpcError(`invalid type: expected a string for ${name}`);
	return v;
}
function boolArg(args, name) {
	const v = args[name] ?? false;
	if (v === 'true' || v === '1' || v === '') return true;
	if (v === 'false' || v === '0') return false;
	if (typeof v !== 'boolean') throw new RpcError(`invalid type: expected a boolean for ${name}`);
	return v;
}
const normalizeAlgorithm = (a) => (a === 'k256' ? 'secp256k1' : a);

function pad64(rd) {
	if (rd.length > 64) throw new RpcError('Report data is too long');
	const p = new Uint8Array(64);
	p.set(rd);
	return p;
}

/** get_key: the derived key (secp256k1 or ed25519) and its chain to the KMS root. */
async function getKey(args, ctx) {
	const p = strArg(args, 'path');
	const purpose = strArg(args, 'purpose');
	const algorithm = normalizeAlgorithm(strArg(args, 'algorithm'));
	if (opts['check-every-request']) await kmsCheck(ctx, 'App not allowed: ');
	let key, pubHex;
	if (algorithm === 'ed25519') {
		key = deriveRaw(appSk, [enc.encode(p)]);
		pubHex = toHex(ed25519.getPublicKey(key));
	} else if (algorithm === 'secp256k1' || algorithm === '') {
		try {
			key = deriveK256(appSk, [enc.encode(p)]);
		} catch {
			throw new RpcError('Failed to parse k256 key: signature error');
		}
		pubHex = toHex(compressedPub(key));
	} else throw new RpcError('Unsupported algorithm');
	const sig0 = signRecoverable(appSk, appSignedMessage(purpose, Buffer.from(pubHex, 'hex')));
	return { key, signature_chain: [sig0, kmsSignature] };
}

function quoteFor(reportData) {
	return simulatedQuote(fixture.quote, { reportData, mrConfigId, rtmr3 });
}

function getQuote(args) {
	const reportData = pad64(bytesArg(args, 'report_data'));
	return {
		quote: toHex(quoteFor(reportData)),
		// as the agent strips it on TDX: digests of boot events, payloads of runtime events
		event_log: JSON.stringify(eventLog.map((e) => eventJson(e, { strip: true }))),
		report_data: toHex(reportData),
		vm_config: vmConfig,
		attestation: '', // filled on non-TDX platforms only
	};
}

function attestationBytes(reportData) {
	return encodeAttestationV0({
		quote: quoteFor(reportData), events: eventLog, reportData, config: sysConfig,
		runtimeEvents: runtimeEvents.map((e) => ({ event: e.event, payload: e.event_payload })),
	});
}

function attest(args) {
	return { attestation: toHex(attestationBytes(pad64(bytesArg(args, 'report_data')))) };
}

function info() {
	// serde_json's to_string_pretty of the agent's json! object, keys in insertion order
	const tcbInfo = JSON.stringify({
		mrtd: toHex(rep.mrtd), rtmr0: toHex(rep.rtmr[0]), rtmr1: toHex(rep.rtmr[1]), rtmr2: toHex(rep.rtmr[2]),
		rtmr3: toHex(rtmr3), mr_aggregated: toHex(infoMr.mrAggregated), os_image_hash: toHex(osImageHash),
		compose_hash: toHex(composeHash), device_id: toHex(deviceId),
		event_log: eventLog.map((e) => eventJson(e)), app_compose: appComposeRaw,
	}, null, 2);
	return {
		app_id: toHex(appId), instance_id: toHex(instanceId), app_cert: '', tcb_info: tcbInfo,
		app_name: typeof appCompose.name === 'string' ? appCompose.name : '', device_id: toHex(deviceId),
		mr_aggregated: toHex(infoMr.mrAggregated), os_image_hash: toHex(osImageHash),
		key_provider_info: keyProviderInfo, compose_hash: toHex(composeHash), vm_config: vmConfig,
		cloud_vendor: '', cloud_product: '',
	};
}

/** GetTlsKey: a fresh P-256 key and a certificate from the KMS, which checks the app again. */
async function getTlsKey(args, ctx) {
	const notBefore = args.not_before, notAfter = args.not_after;
	if (notBefore !== undefined && notAfter !== undefined && Number(notBefore) >= Number(notAfter))
		throw new RpcError('not_before must be earlier than not_after');
	const altNames = args.alt_names ?? [];
	if (!Array.isArray(altNames) || altNames.some((n) => typeof n !== 'string'))
		throw new RpcError('invalid type: expected a sequence of strings for alt_names');
	// the KMS's SignCert runs the boot authorization again, with the boot-time measurements
	await kmsCheck(ctx, 'Failed to sign the CSR: ');
	const sk = p256.utils.randomSecretKey();
	const leaf = certificate({
		pub65: p256Public(sk), subject: strArg(args, 'subject'), issuer: appCaName, issuerSk: appCaSk, altNames,
		serverAuth: boolArg(args, 'usage_server_auth'), clientAuth: boolArg(args, 'usage_client_auth'), appId,
		usage: 'app:custom',
		attestation: boolArg(args, 'usage_ra_tls') ? attestationBytes(pad64(sha256(spki(p256Public(sk))))) : null,
		notBefore: notBefore !== undefined ? new Date(Number(notBefore) * 1000) : undefined,
		notAfter: notAfter !== undefined ? new Date(Number(notAfter) * 1000) : undefined,
	});
	return { key: pkcs8Pem(sk), certificate_chain: [leaf, appCaPem, rootCaPem] };
}

/** Sign with the key GetKey derives at path "vms", purpose "signing". */
async function sign(args, ctx) {
	const algorithm = normalizeAlgorithm(strArg(args, 'algorithm'));
	const data = bytesArg(args, 'data');
	const base = algorithm === 'secp256k1_prehashed' ? 'secp256k1' : algorithm;
	const k = await getKey({ path: 'vms', purpose: 'signing', algorithm: base }, ctx);
	let signature, publicKey;
	if (algorithm === 'ed25519') {
		signature = ed25519.sign(data, k.key);
		publicKey = ed25519.getPublicKey(k.key);
	} else if (algorithm === 'secp256k1') {
		signature = secp256k1.sign(sha256(data), k.key, { prehash: false });
		publicKey = compressedPub(k.key);
	} else if (algorithm === 'secp256k1_prehashed') {
		if (data.length !== 32)
			throw new RpcError(`Pre-hashed signing requires a 32-byte digest, but received ${data.length} bytes`);
		signature = secp256k1.sign(data, k.key, { prehash: false });
		publicKey = compressedPub(k.key);
	} else throw new RpcError('Unsupported algorithm');
	return { signature, signature_chain: [signature, ...k.signature_chain], public_key: publicKey };
}

function verify(args) {
	const algorithm = normalizeAlgorithm(strArg(args, 'algorithm'));
	const data = bytesArg(args, 'data');
	const signature = bytesArg(args, 'signature');
	const publicKey = bytesArg(args, 'public_key');
	if (algorithm === 'ed25519') {
		if (publicKey.length !== 32) throw new RpcError('invalid public key');
		if (signature.length !== 64) throw new RpcError('signature error');
		return { valid: ed25519.verify(signature, data, publicKey) };
	}
	if (algorithm !== 'secp256k1' && algorithm !== 'secp256k1_prehashed') throw new RpcError('Unsupported algorithm');
	try {
		secp256k1.Point.fromBytes(publicKey);
	} catch {
		throw new RpcError('signature error');
	}
	if (signature.length !== 64) throw new RpcError('signature error');
	const digest = algorithm === 'secp256k1' ? sha256(data) : data;
	let valid;
	try {
		valid = secp256k1.verify(signature, digest, publicKey, { prehash: false });
	} catch {
		valid = false;
	}
	return { valid };
}

const version = () => AGENT_VERSION;
const gpuInfo = () => ({ attestation: '' });

// prost messages through serde: bytes fields as lowercase hex
const hexFields = (o) => Object.fromEntries(Object.entries(o).map(([k, v]) =>
	[k, v instanceof Uint8Array ? toHex(v) : Array.isArray(v) ? v.map((x) => (x instanceof Uint8Array ? toHex(x) : x)) : v]));

// service DstackGuest (dstack.sock, mounted at /)
const DSTACK = {
	GetTlsKey: getTlsKey, GetKey: getKey, GetQuote: getQuote, Attest: attest, Info: info, GpuInfo: gpuInfo,
	Sign: sign, Verify: verify, Version: version,
};

// service Tappd (tappd.sock, mounted at /prpc/, "Tappd." trimmed): the older API
async function deriveK256Key(args, ctx) {
	const r = await getKey(args, ctx);
	return { k256_key: r.key, k256_signature_chain: r.signature_chain };
}
const TDX_QUOTE_HASHES = {
	sha256, sha384, sha512, 'sha3-256': sha3_256, 'sha3-384': sha3_384, 'sha3-512': sha3_512,
	keccak256: keccak_256, keccak384: keccak_384, keccak512: keccak_512,
};
// QuoteContentType::to_report_data_with_hash: hash(<prefix> ":" data), zero-padded; raw: 64 bytes as given
function tdxQuote(args) {
	const algo = strArg(args, 'hash_algorithm') || 'sha512';
	const tag = strArg(args, 'prefix') || 'app-data';
	const data = bytesArg(args, 'report_data');
	let rd;
	if (algo === 'raw') {
		if (data.length !== 64) throw new RpcError('invalid content length');
		rd = data;
	} else if (Object.hasOwn(TDX_QUOTE_HASHES, algo)) {
		rd = pad64(TDX_QUOTE_HASHES[algo](concat(enc.encode(tag + ':'), data)));
	} else throw new RpcError('invalid hash algorithm');
	const q = getQuote({ report_data: toHex(rd) });
	return { quote: q.quote, event_log: q.event_log, hash_algorithm: algo, prefix: algo === 'raw' ? '' : tag };
}
const TAPPD = {
	DeriveK256Key: deriveK256Key, TdxQuote: tdxQuote,
	RawQuote: (args) => tdxQuote({ report_data: args.report_data ?? '', hash_algorithm: 'raw', prefix: '' }),
	Info: info, Version: version,
	DeriveKey: () => {
		throw new RpcError('DeriveKey is not simulated; use GetTlsKey on dstack.sock');
	},
};

// ------------------------------------------------------------------ HTTP (prpc as dstack serves it)
function readBody(req) {
	return new Promise((resolve, reject) => {
		const chunks = [];
		let n = 0;
		req.on('data', (c) => {
			n += c.length;
			if (n > 10 << 20) {
				reject(new RpcError('failed to read data: payload too large'));
				req.destroy();
			} else chunks.push(c);
		});
		req.on('end', () => resolve(Buffer.concat(chunks)));
		req.on('error', reject);
	});
}

// Rocket's default 404 catcher (HTML, or JSON when the client prefers it)
function notFound(req, res) {
	const wantsJson = /^application\/json/.test(String(req.headers.accept ?? '').split(',')[0].trim());
	const body = wantsJson
		? JSON.stringify({ error: { code: 404, reason: 'Not Found',
			description: 'The requested resource could not be found.' } }, null, 2)
		: '<!DOCTYPE html>\n<html lang="en">\n<head>\n    <meta charset="utf-8">\n    <title>404 Not Found</title>\n' +
			'</head>\n<body align="center">\n    <div role="main" align="center">\n        <h1>404: Not Found</h1>\n' +
			'        <p>The requested resource could not be found.</p>\n        <hr />\n    </div>\n' +
			'    <div role="contentinfo" align="center">\n        <small>Rocket</small>\n    </div>\n</body>\n</html>';
	res.writeHead(404, {
		'content-type': wantsJson ? 'application/json' : 'text/html; charset=utf-8',
		'content-length': Buffer.byteLength(body),
	});
	res.end(body);
	return { status: 404 };
}

// a prpc error: protobuf ProtoError{message} (field 1), for clients that did not ask for JSON
function protoError(msg) {
	const m = Buffer.from(msg, 'utf8');
	const len = [];
	for (let v = m.length; ; v >>= 7) {
		if (v < 0x80) {
			len.push(v);
			break;
		}
		len.push((v & 0x7f) | 0x80);
	}
	return Buffer.concat([Buffer.from([0x0a, ...len]), m]);
}

function makeHandler(service, prefix, trim) {
	return async (req, res) => {
		const url = new URL(req.url, 'http://dstack');
		const ctx = { decision: undefined };
		const m = new RegExp(`^${prefix}([^/]+)$`).exec(url.pathname);
		if (!m || (req.method !== 'GET' && req.method !== 'POST')) return notFound(req, res);
		const method = m[1].startsWith(trim) ? m[1].slice(trim.length) : m[1];
		// JSON when GET, ?json, or a JSON content type; anything else is protobuf to dstack
		const qjson = url.searchParams.get('json');
		const isJson = req.method === 'GET' || (qjson !== null && ['', 'true', '1'].includes(qjson)) ||
			/^application\/json\b/i.test(String(req.headers['content-type'] ?? ''));
		let status = 200;
		let out;
		try {
			const fn = Object.hasOwn(service, method) ? service[method] : null;
			if (!fn) throw new RpcError(`Service not found: ${method}`);
			if (!isJson) throw new RpcError('the simulator speaks JSON only: send Content-Type: application/json');
			let args;
			if (req.method === 'GET') {
				args = {};
				for (const [k, v] of url.searchParams) {
					if (k === 'json') continue;
					if (k in args) args[k] = [].concat(args[k], v);
					else args[k] = k === 'alt_names' ? [v] : v;
				}
			} else {
				const body = (await readBody(req)).toString('utf8');
				if (body.length === 0) args = {};
				else {
					try {
						args = JSON.parse(body);
					} catch (e) {
						throw new RpcError(e.message);
					}
					if (args === null || typeof args !== 'object' || Array.isArray(args))
						throw new RpcError('invalid type: expected a JSON object');
				}
			}
			out = JSON.stringify(hexFields(await fn(args, ctx)));
		} catch (e) {
			status = 400;
			const msg = e instanceof RpcError ? e.message : `internal error: ${e.message}`;
			out = isJson ? JSON.stringify({ error: msg }, null, 2) : protoError(msg);
			ctx.error = msg;
		}
		res.writeHead(status, {
			'content-type': isJson ? 'application/json' : 'application/octet-stream',
			'content-length': Buffer.byteLength(out),
		});
		res.end(out);
		const line = { method: req.method, path: url.pathname, status };
		if (ctx.decision) line.decision = ctx.decision;
		if (ctx.error) line.error = ctx.error;
		logLine(line);
		return { status };
	};
}

function listen(sock, handler) {
	try {
		if (fs.lstatSync(sock).isSocket()) fs.unlinkSync(sock);
		else die(`${sock} exists and is not a socket`);
	} catch (e) {
		if (e.code !== 'ENOENT') die(`${sock}: ${e.message}`);
	}
	const server = http.createServer((req, res) => {
		handler(req, res).catch((e) => {
			try {
				res.writeHead(500, { 'content-type': 'application/json' });
				res.end(JSON.stringify({ error: String(e?.message || e) }, null, 2));
			} catch {}
		});
	});
	server.on('error', (e) => die(`cannot listen on ${sock}: ${e.message}`));
	return new Promise((resolve) => server.listen(sock, () => {
		fs.chmodSync(sock, 0o777);
		resolve(server);
	}));
}

// ------------------------------------------------------------------ start
async function boot() {
	// dstack-util asks the KMS for the app keys once, here; the answer stands until reboot
	let verdict;
	try {
		verdict = await kmsAllows();
	} catch (e) {
		verdict = { allowed: false, reason: e.message, error: true };
	}
	logLine({ event: 'boot', decision: verdict.error ? 'error' : verdict.allowed ? 'allowed' : 'denied',
		reason: verdict.reason, boot_info: hexBootInfo() });
	if (!verdict.allowed) {
		const why = verdict.error ? `App not allowed: ${verdict.reason}` : `App not allowed: Boot denied: ${verdict.reason}`;
		if (!opts['check-every-request']) die(`boot refused by the KMS: Failed to request app keys: ${why}`, 3);
		process.stderr.write(`dstack-sim: the KMS would refuse this boot (${why}); serving anyway ` +
			'(--check-every-request: every key request asks the KMS)\n');
	}
	const servers = [await listen(opts.socket, makeHandler(DSTACK, '/', ''))];
	if (opts['tappd-socket']) servers.push(await listen(opts['tappd-socket'], makeHandler(TAPPD, '/prpc/', 'Tappd.')));
	process.stdout.write(`${toHex(rootPub)}\n`);
	process.stderr.write(
		`dstack-sim: serving on ${opts.socket}; app_id 0x${toHex(appId)}, compose_hash 0x${toHex(composeHash)}, ` +
			`KMS contract 0x${toHex(kmsContract)} on ${opts.rpc} (${opts['check-every-request'] ? 'asked on every key request'
				: 'asked at boot'}); KMS root ${toHex(rootPub)}\n`,
	);
	const shutdown = (sig) => {
		for (const s of servers) s.close();
		for (const s of [opts.socket, opts['tappd-socket']])
			try {
				if (s) fs.unlinkSync(s);
			} catch {}
		if (logStream) logStream.end();
		process.stderr.write(`dstack-sim: ${sig}, socket removed\n`);
		process.exit(0);
	};
	process.on('SIGTERM', () => shutdown('SIGTERM'));
	process.on('SIGINT', () => shutdown('SIGINT'));
}

boot();
