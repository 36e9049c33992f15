// tools/dstack-sim/lib.mjs: the crypto and chain pieces of the dstack guest-agent +
// KMS simulator, shared by dstack-sim.mjs, kms-contract.mjs, recipient-key.mjs and test.mjs.
// Written from the dstack sources (see README.md), independently of common/.
import http from 'node:http';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { sha256, sha384 } from '@noble/hashes/sha2.js';
import { hkdf } from '@noble/hashes/hkdf.js';

export const enc = new TextEncoder();

/** Lowercase hex of bytes, no 0x. */
export function toHex(b) {
	return Buffer.from(b).toString('hex');
}

/** Strict hex decode (even length, [0-9a-fA-F] only, no 0x), as a hex bytes field is decoded. */
export function fromHexStrict(s, what) {
	if (typeof s !== 'string' || s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s))
		throw new Error(`${what} is not a hex string (even length, no 0x prefix)`);
	return new Uint8Array(Buffer.from(s, 'hex'));
}

/** Decode a 0x-prefixed (or bare) hex value of exactly n bytes. */
export function fromHexN(s, n, what) {
	const h = String(s).replace(/^0x/i, '');
	if (h.length !== 2 * n || !/^[0-9a-fA-F]*$/.test(h)) throw new Error(`${what} must be ${n} bytes of hex`);
	return new Uint8Array(Buffer.from(h, 'hex'));
}

export function concat(...parts) {
	return new Uint8Array(Buffer.concat(parts.map((p) => Buffer.from(p))));
}

/**
 * ra-tls kdf::derive_key: HKDF-SHA256 with salt "RATLS", the parent key as IKM and the
 * concatenated context parts as info; 32 bytes.  The result must be a valid secp256k1
 * scalar (k256 SigningKey::from_slice fails otherwise, and so do we).
 */
export function deriveK256(parentSk, contextParts) {
	const out = deriveRaw(parentSk, contextParts);
	if (!secp256k1.utils.isValidSecretKey(out)) throw new Error('derived key is not a valid secp256k1 scalar');
	return out;
}

/** ra-tls kdf::derive_key as it is: 32 bytes of HKDF-SHA256("RATLS"), no check (ed25519 seeds, P-256 CAs). */
export function deriveRaw(parentSk, contextParts) {
	return hkdf(sha256, parentSk, enc.encode('RATLS'), concat(...contextParts), 32);
}

/** The app's k256 key as dstack-kms derives it: context app_id (20 bytes) ‖ "app-key". */
export function appKey(rootSk, appId20) {
	return deriveK256(rootSk, [appId20, enc.encode('app-key')]);
}

/** GetKey's derived key: context = path bytes, parent = app key. */
export function derivedKey(appSk, path) {
	return deriveK256(appSk, [enc.encode(path)]);
}

export function compressedPub(sk) {
	return secp256k1.getPublicKey(sk, true);
}

/** k256 sign_digest_recoverable over keccak256(msg): 65 bytes r ‖ s ‖ v (v = recovery id 0/1). */
export function signRecoverable(sk, msg) {
	const rec = secp256k1.sign(keccak_256(msg), sk, { prehash: false, format: 'recovered' });
	return concat(rec.subarray(1, 65), [rec[0]]);
}

/** Recover the compressed public key from a 65-byte r ‖ s ‖ v signature over keccak256(msg). */
export function recoverSigner(sig65, msg) {
	if (sig65.length !== 65) throw new Error('signature must be 65 bytes');
	const v = sig65[64];
	if (v > 3) throw new Error('bad recovery id');
	const rec = concat([v], sig65.subarray(0, 64));
	return secp256k1.recoverPublicKey(rec, keccak_256(msg), { prehash: false });
}

/** chain[1]'s message: "dstack-kms-issued" ":" app_id (20 bytes) ‖ app public key (33 bytes). */
export function kmsIssuedMessage(appId20, appPub33) {
	return concat(enc.encode('dstack-kms-issued:'), appId20, appPub33);
}

/** chain[0]'s message: purpose ":" hex(derived public key, compressed, lowercase). */
export function appSignedMessage(purpose, derivedPub33) {
	return enc.encode(`${purpose}:${toHex(derivedPub33)}`);
}

/**
 * Walk a dstack signature chain: recover the app key from chain[0], then the KMS root
 * from chain[1]; returns both (compressed, hex) for the caller to compare with its root.
 */
export function verifyChain({ purpose, derivedPub33, appId20, chain }) {
	const appPub = recoverSigner(chain[0], appSignedMessage(purpose, derivedPub33));
	const rootPub = recoverSigner(chain[1], kmsIssuedMessage(appId20, appPub));
	return { appPub: toHex(appPub), rootPub: toHex(rootPub) };
}

export { secp256k1, keccak_256, sha256, sha384 };

// ---------------------------------------------------------------- ABI (isAppAllowed)

export const IS_APP_ALLOWED_SIG =
	'isAppAllowed((address,bytes32,address,bytes32,bytes32,bytes32,bytes32,string,string[]))';
export const IS_APP_ALLOWED_SELECTOR = keccak_256(enc.encode(IS_APP_ALLOWED_SIG)).subarray(0, 4);

function word(n) {
	const w = new Uint8Array(32);
	let v = BigInt(n);
	for (let i = 31; i >= 0 && v > 0n; i--, v >>= 8n) w[i] = Number(v & 0xffn);
	return w;
}
function leftPad32(b) {
	const w = new Uint8Array(32);
	w.set(b, 32 - b.length);
	return w;
}
function encString(s) {
	const b = enc.encode(s);
	const padded = new Uint8Array(Math.ceil(b.length / 32) * 32);
	padded.set(b);
	return concat(word(b.length), padded);
}
function encStringArray(arr) {
	const tails = arr.map(encString);
	const heads = [];
	let off = 32 * arr.length;
	for (const t of tails) {
		heads.push(word(off));
		off += t.length;
	}
	return concat(word(arr.length), ...heads, ...tails);
}

/**
 * Calldata for isAppAllowed(AppBootInfo).  The tuple has dynamic members, so the
 * single argument is a head offset (0x20) followed by the tuple's own encoding:
 * seven static words, then offsets (from the tuple start) to tcbStatus and advisoryIds.
 */
export function encodeIsAppAllowed(b) {
	const statics = [
		leftPad32(b.appId), b.composeHash, leftPad32(b.instanceId), b.deviceId,
		b.mrAggregated, b.mrSystem, b.osImageHash,
	];
	const tcb = encString(b.tcbStatus);
	const adv = encStringArray(b.advisoryIds);
	const tcbOff = 32 * 9;
	const advOff = tcbOff + tcb.length;
	const tuple = concat(...statics, word(tcbOff), word(advOff), tcb, adv);
	return concat(IS_APP_ALLOWED_SELECTOR, word(32), tuple);
}

function readWord(buf, off) {
	if (off + 32 > buf.length) throw new Error('ABI result too short');
	return BigInt('0x' + toHex(buf.subarray(off, off + 32)));
}

/** Decode the (bool isAllowed, string reason) return data. */
export function decodeBoolString(buf) {
	const allowed = readWord(buf, 0);
	if (allowed > 1n) throw new Error('ABI result: bad bool');
	const off = Number(readWord(buf, 32));
	const len = Number(readWord(buf, off));
	if (off + 32 + len > buf.length) throw new Error('ABI result: string out of range');
	return { allowed: allowed === 1n, reason: Buffer.from(buf.subarray(off + 32, off + 32 + len)).toString('utf8') };
}

/** One JSON-RPC call with a timeout; throws {rpcUnreachable: true} when the node cannot be reached. */
export async function jsonRpc(url, method, params, timeoutMs = 5000) {
	let res;
	try {
		res = await fetch(url, {
			method: 'POST',
			headers: { 'content-type': 'application/json' },
			body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
			signal: AbortSignal.timeout(timeoutMs),
		});
	} catch (e) {
		const err = new Error(`cannot reach the chain RPC at ${url}: ${e.cause?.code || e.cause?.message || e.message}`);
		err.rpcUnreachable = true;
		throw err;
	}
	const text = await res.text();
	let j;
	try {
		j = JSON.parse(text);
	} catch {
		const err = new Error(`chain RPC at ${url} answered HTTP ${res.status} with a non-JSON body`);
		err.rpcUnreachable = true;
		throw err;
	}
	if (j.error) throw new Error(`${method} failed: ${j.error.message || JSON.stringify(j.error)}`);
	return j.result;
}

/** POST a JSON body to the guest agent on a Unix socket; resolves with the parsed answer. */
export function agentCall(socketPath, method, payload) {
	return new Promise((resolve, reject) => {
		const body = JSON.stringify(payload);
		const req = http.request(
			{
				socketPath, path: `/${method}`, method: 'POST', agent: false,
				headers: { host: 'dstack', 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
			},
			(res) => {
				const chunks = [];
				res.on('data', (c) => chunks.push(c));
				res.on('end', () => {
					const text = Buffer.concat(chunks).toString('utf8');
					let j;
					try {
						j = JSON.parse(text);
					} catch {
						return reject(new Error(`${method}: HTTP ${res.statusCode}, not JSON: ${text.slice(0, 200)}`));
					}
					if (res.statusCode !== 200 || j.error !== undefined)
						return reject(new Error(`${method} refused (HTTP ${res.statusCode}): ${j.error ?? text}`));
					resolve(j);
				});
			},
		);
		req.on('error', (e) => reject(new Error(`cannot reach the guest agent at ${socketPath}: ${e.message}`)));
		req.end(body);
	});
}

