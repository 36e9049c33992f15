#!/usr/bin/env node
// tools/dstack-sim/dstack-sim.mjs: a dstack guest agent + KMS simulator for development
// and tests.  Serves the guest agent's HTTP API (GetKey, GetQuote, Info) on a Unix socket
// and releases keys only while the app's auth contract says isAppAllowed on the chain
// at --rpc, as dstack's KMS does.  The TDX quote is SIMULATED (see README.md).
//
// node dstack-sim.mjs --socket PATH --rpc URL --app-id 0xADDR [--compose-hash 0xHASH]
//     --state-dir DIR --app-compose FILE [--log FILE] [--instance-id 0x..] [--device-id 0x..]
// The compose-hash is sha256 of the --app-compose file's bytes, as dstack measures it;
// --compose-hash overrides it (an agent whose compose text is not the measured one).
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
	appKey, derivedKey, compressedPub, signRecoverable, kmsIssuedMessage, appSignedMessage,
	encodeIsAppAllowed, decodeBoolString, jsonRpc, toHex, fromHexStrict, fromHexN, concat,
	secp256k1, sha256, sha384, enc,
} from './lib.mjs';

const QUOTE_MARKER = 'DSTACK-SIMULATED-QUOTE';

function die(msg) {
	process.stderr.write(`dstack-sim: ${msg}\n`);
	process.exit(2);
}

// ------------------------------------------------------------------ configuration
let opts;
try {
	opts = parseArgs({
		options: {
			socket: { type: 'string' }, rpc: { type: 'string' }, 'app-id': { type: 'string' },
			'compose-hash': { type: 'string' }, 'state-dir': { type: 'string' },
			'app-compose': { type: 'string' }, log: { type: 'string' },
			'instance-id': { type: 'string' }, 'device-id': { type: 'string' },
		},
		strict: true,
	}).values;
} catch (e) {
	die(e.message);
}
for (const k of ['socket', 'rpc', 'app-id', 'state-dir', 'app-compose'])
	if (!opts[k]) die(`missing --${k}`);

let appId, composeHash, appComposeRaw, appCompose;
try {
	appId = fromHexN(opts['app-id'], 20, '--app-id');
	appComposeRaw = fs.readFileSync(opts['app-compose'], 'utf8');
	composeHash = opts['compose-hash'] !== undefined
		? fromHexN(opts['compose-hash'], 32, '--compose-hash')
		: sha256(fs.readFileSync(opts['app-compose']));
	appCompose = JSON.parse(appComposeRaw);
} catch (e) {
	die(e.message);
}
const labelHash = (...parts) => sha256(concat(...parts.map((p) => (typeof p === 'string' ? enc.encode(p) : p))));
const instanceId = opts['instance-id']
	? fromHexN(opts['instance-id'], 20, '--instance-id')
	: labelHash('dstack-sim instance-id', appId, composeHash).subarray(0, 20);
const deviceId = opts['device-id'] ? fromHexN(opts['device-id'], 32, '--device-id') : labelHash('dstack-sim device-id');

// KMS root key: 32 raw bytes as hex in state-dir/kms-root.key (0600), made once and reused.
fs.mkdirSync(opts['state-dir'], { recursive: true });
const rootKeyFile = path.join(opts['state-dir'], 'kms-root.key');
let rootSk;
if (fs.existsSync(rootKeyFile)) {
	rootSk = fromHexN(fs.readFileSync(rootKeyFile, 'utf8').trim(), 32, rootKeyFile);
	if (!secp256k1.utils.isValidSecretKey(rootSk)) die(`${rootKeyFile}: not a valid secp256k1 key`);
} else {
	rootSk = secp256k1.utils.randomSecretKey();
	fs.writeFileSync(rootKeyFile, toHex(rootSk) + '\n', { mode: 0o600 });
}
const rootPub = compressedPub(rootSk);
fs.writeFileSync(path.join(opts['state-dir'], 'kms-root.pub'), toHex(rootPub) + '\n');

// The app key and its KMS signature, as dstack-kms GetAppKey hands them to the CVM at boot.
const appSk = appKey(rootSk, appId);
const appPub = compressedPub(appSk);
const kmsSignature = signRecoverable(rootSk, kmsIssuedMessage(appId, appPub));

// Simulated measurements: fixed labels, except RTMR3 which binds the compose hash,
// app id and instance id as dstack's runtime events do.
const mrtd = sha384(enc.encode('dstack-sim mrtd'));
const rtmr0 = sha384(enc.encode('dstack-sim rtmr0'));
const rtmr1 = sha384(enc.encode('dstack-sim rtmr1'));
const rtmr2 = sha384(enc.encode('dstack-sim rtmr2'));
const keyProviderInfo = JSON.stringify({ type: 'kms', id: toHex(rootPub) });
const eventLog = [
	['app-id', appId], ['compose-hash', composeHash], ['instance-id', instanceId],
	['key-provider', enc.encode(keyProviderInfo)],
].map(([event, payload]) => ({
	imr: 3,
	event_type: 134217729,
	digest: toHex(sha384(concat(enc.encode(event), enc.encode(':'), payload))),
	event,
	event_payload: toHex(payload),
}));
let rtmr3 = new Uint8Array(48);
for (const e of eventLog) rtmr3 = sha384(concat(rtmr3, Buffer.from(e.digest, 'hex')));
const mrSystem = labelHash('dstack-sim mr_system', mrtd, rtmr0, rtmr1, rtmr2);
const mrAggregated = labelHash('dstack-sim mr_aggregated', mrtd, rtmr0, rtmr1, rtmr2, rtmr3);
const osImageHash = labelHash('dstack-sim os_image_hash');
const vmConfig = JSON.stringify({
	spec_version: 1, os_image_hash: toHex(osImageHash), cpu_count: 4, memory_size: 8589934592,
	simulated: true,
});

// ------------------------------------------------------------------ KMS gate
/** isAppAllowed(AppBootInfo) on the app's auth contract; no caching, every key release asks. */
async function checkAllowed() {
	const data = encodeIsAppAllowed({
		appId, composeHash, instanceId, deviceId, mrAggregated, mrSystem, osImageHash,
		tcbStatus: 'UpToDate', advisoryIds: [],
	});
	const result = await jsonRpc(opts.rpc, 'eth_call', [{ to: '0x' + toHex(appId), data: '0x' + toHex(data) }, 'latest']);
	const bytes = fromHexStrict(String(result).replace(/^0x/, ''), 'eth_call result');
	if (bytes.length === 0) throw new Error(`no auth contract at app id 0x${toHex(appId)} (eth_call returned nothing)`);
	return decodeBoolString(bytes);
}

class HttpError extends Error {
	constructor(status, msg, decision) {
		super(msg);
		this.status = status;
		this.decision = decision;
	}
}

// ------------------------------------------------------------------ handlers
async function getKey(args, ctx) {
	const p = args.path ?? '';
	const purpose = args.purpose ?? '';
	const algorithm = args.algorithm ?? '';
	if (typeof p !== 'string' || typeof purpose !== 'string' || typeof algorithm !== 'string')
		throw new HttpError(400, 'path, purpose and algorithm must be strings');
	const alg = algorithm === 'k256' ? 'secp256k1' : algorithm;
	if (alg !== 'secp256k1' && alg !== '') throw new HttpError(400, `Unsupported algorithm: ${algorithm}`);
	let verdict;
	try {
		verdict = await checkAllowed();
	} catch (e) {
		ctx.decision = 'error';
		throw new HttpError(e.rpcUnreachable ? 503 : 500, `KMS authorization check failed: ${e.message}`, 'error');
	}
	if (!verdict.allowed) {
		throw new HttpError(403, `app not allowed by its auth contract: ${verdict.reason || '(no reason given)'}`, 'denied');
	}
	ctx.decision = 'allowed';
	const sk = derivedKey(appSk, p);
	const sig0 = signRecoverable(appSk, appSignedMessage(purpose, compressedPub(sk)));
	return { key: toHex(sk), signature_chain: [toHex(sig0), toHex(kmsSignature)] };
}

/**
 * A TDX-quote-shaped SIMULATED quote (layout in README.md): v4 header with the marker,
 * a 584-byte TD report body with report_data at body offset 520 (quote offset 568),
 * then a signature section signed by the KMS root over sha256(header ‖ body).
 */
function buildQuote(reportData) {
	const header = new Uint8Array(48);
	const dv = new DataView(header.buffer);
	dv.setUint16(0, 4, true); // version 4
	dv.setUint16(2, 2, true); // attestation key type: ECDSA-256 with P-256 (nominal)
	dv.setUint32(4, 0x81, true); // TEE type: TDX
	header.set(enc.encode(QUOTE_MARKER), 12); // QE vendor id + user data: the marker
	const body = new Uint8Array(584);
	body.set(mrtd, 136);
	body.set(sha384(enc.encode('dstack-sim mrconfigid')), 184);
	body.set(rtmr0, 328);
	body.set(rtmr1, 376);
	body.set(rtmr2, 424);
	body.set(rtmr3, 472);
	body.set(reportData, 520);
	const signed = concat(header, body);
	const sig = secp256k1.sign(sha256(signed), rootSk, { prehash: false, format: 'recovered' });
	const sigRSV = concat(sig.subarray(1), [sig[0]]);
	const sigSection = concat(sigRSV, rootPub, enc.encode(QUOTE_MARKER));
	const len = new Uint8Array(4);
	new DataView(len.buffer).setUint32(0, sigSection.length, true);
	return concat(signed, len, sigSection);
}

function getQuote(args) {
	const rd = fromHexOr400(args.report_data ?? '', 'report_data');
	if (rd.length > 64) throw new HttpError(400, 'Report data is too long');
	const padded = new Uint8Array(64);
	padded.set(rd);
	return {
		quote: toHex(buildQuote(padded)),
		event_log: JSON.stringify(eventLog),
		report_data: toHex(padded),
		vm_config: vmConfig,
	};
}

function fromHexOr400(s, what) {
	try {
		return fromHexStrict(s, what);
	} catch (e) {
		throw new HttpError(400, e.message);
	}
}

function info() {
	const tcbInfo = JSON.stringify({
		mrtd: toHex(mrtd), rtmr0: toHex(rtmr0), rtmr1: toHex(rtmr1), rtmr2: toHex(rtmr2), rtmr3: toHex(rtmr3),
		mr_aggregated: toHex(mrAggregated), os_image_hash: toHex(osImageHash),
		compose_hash: toHex(composeHash), device_id: toHex(deviceId),
		event_log: eventLog, app_compose: appComposeRaw,
	}, null, 2);
	return {
		app_id: toHex(appId),
		instance_id: toHex(instanceId),
		app_cert: '',
		tcb_info: tcbInfo,
		app_name: typeof appCompose.name === 'string' ? appCompose.name : '',
		device_id: toHex(deviceId),
		mr_aggregated: toHex(mrAggregated),
		os_image_hash: toHex(osImageHash),
		key_provider_info: keyProviderInfo,
		compose_hash: toHex(composeHash),
		vm_config: vmConfig,
		cloud_vendor: '',
		cloud_product: '',
	};
}

const ROUTES = { GetKey: getKey, GetQuote: getQuote, Info: info };

// ------------------------------------------------------------------ HTTP server
const logStream = opts.log ? fs.createWriteStream(opts.log, { flags: 'a' }) : null;
function logLine(obj) {
	if (logStream) logStream.write(JSON.stringify(obj) + '\n');
}

function readBody(req) {
	return new Promise((resolve, reject) => {
		const chunks = [];
		let n = 0;
		req.on('data', (c) => {
			n += c.length;
			if (n > 1 << 20) {
				reject(new HttpError(413, 'payload too large'));
				req.destroy();
			} else chunks.push(c);
		});
		req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
		req.on('error', reject);
	});
}

async function handle(req, res) {
	const url = new URL(req.url, 'http://dstack');
	const ctx = { decision: undefined };
	let status = 200;
	let out;
	try {
		// "/GetKey", and since dstack 0.6 also "/v0/GetKey"
		const m = /^\/(?:v0\/)?([A-Za-z]+)$/.exec(url.pathname);
		const fn = m && ROUTES[m[1]];
		if (!fn) throw new HttpError(404, `no such endpoint: ${req.method} ${url.pathname}`);
		let args;
		if (req.method === 'GET') {
			args = Object.fromEntries(url.searchParams);
		} else if (req.method === 'POST') {
			const body = await readBody(req);
			if (body.trim() === '') args = {};
			else {
				try {
					args = JSON.parse(body);
				} catch (e) {
					throw new HttpError(400, `invalid JSON request body: ${e.message}`);
				}
				if (args === null || typeof args !== 'object' || Array.isArray(args))
					throw new HttpError(400, 'request body must be a JSON object');
			}
		} else throw new HttpError(405, `method ${req.method} not allowed`);
		out = await fn(args, ctx);
	} catch (e) {
		status = e instanceof HttpError ? e.status : 500;
		if (e instanceof HttpError && e.decision) ctx.decision = e.decision;
		out = { error: e.message };
	}
	const body = JSON.stringify(out);
	res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
	res.end(body);
	const line = { time: new Date().toISOString(), method: req.method, path: url.pathname, status };
	if (ctx.decision) line.decision = ctx.decision;
	if (status !== 200) line.error = out.error;
	logLine(line);
}

const server = http.createServer((req, res) => {
	handle(req, res).catch((e) => {
		try {
			res.writeHead(500, { 'content-type': 'application/json' });
			res.end(JSON.stringify({ error: String(e?.message || e) }));
		} catch {}
	});
});

const sock = opts.socket;
try {
	if (fs.lstatSync(sock).isSocket()) fs.unlinkSync(sock);
	else die(`${sock} exists and is not a socket`);
} catch (e) {
	if (e.code !== 'ENOENT') die(`${sock}: ${e.message}`);
}
server.listen(sock, () => {
	fs.chmodSync(sock, 0o777);
	process.stdout.write(`${toHex(rootPub)}\n`);
	process.stderr.write(
		`dstack-sim: serving on ${sock}; app_id 0x${toHex(appId)}, compose_hash 0x${toHex(composeHash)}, ` +
			`auth via isAppAllowed on ${opts.rpc}; KMS root ${toHex(rootPub)}\n`,
	);
});
server.on('error', (e) => die(`cannot listen on ${sock}: ${e.message}`));

function shutdown(sig) {
	server.close();
	try {
		fs.unlinkSync(sock);
	} catch {}
	if (logStream) logStream.end();
	process.stderr.write(`dstack-sim: ${sig}, socket removed\n`);
	process.exit(0);
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
