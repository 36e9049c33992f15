#!/usr/bin/env node
// make-receipt.mjs: an independent generator of dstack-receipt/v1 receipts
// (docs/receipts.md) for testing tools/dstack-verify.  It shares no code with
// the CVM side (dstack_fdw, common/receipt.c): canonical JSON, the digests,
// the key chain are written here again from the spec, so a receipt it makes
// verifying in the C verifier cross-checks both.  The --local quote is built as
// tools/dstack-sim builds its quotes (its tdx.mjs: a captured quote, marker set).
//
//   node make-receipt.mjs --local DIR  [options] > receipt.json
//   node make-receipt.mjs --socket PATH [--rpc URL] [options] > receipt.json
//
//   --local DIR     simulate the guest agent here: a KMS root key kept in
//                   DIR/root.key (made once; DIR/root.pub is its public key),
//                   the app key and the receipt key derived from it, a quote
//                   as the simulator makes them with an RTMR3 event log
//   --socket PATH   ask the dstack guest agent (tools/dstack-sim) on a Unix
//                   socket: Info, GetKey dstack-receipt/v1, GetQuote
//   --rpc URL       cite the chain: eth_chainId, the latest block, and the
//                   consortium contract's state() at that block
//   --app-id 0x..   (--local) the app id, default anvil's first contract address
//   --query TEXT    the query text in the body
//   --prev FILE     the previous receipt: sequence + 1, prev_receipt_hash = its body_sha256
//   --set PATH=JSON replace a body field (dot path) with a JSON value before signing,
//                   e.g. --set 'chain.block_hash="0x00…"'; the receipt stays
//                   consistently signed, so only the check that looks at that
//                   field can catch it
//   --unset PATH    remove a body field before signing (e.g. policy: a receipt
//                   from before the CVM stated its policy)
//
// body.policy: with --socket, the pg_dstack_policy of the app-compose text in the
// agent's Info (tcb_info.app_compose), as the CVM reads it; with --local, the demo's.
//   --canon         print the canonical body text instead of the receipt
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { loadFixture, runtimeEvent, replay, eventJson, simulatedQuote, mrConfigIdV1 } from '../dstack-sim/tdx.mjs';

const PURPOSE = 'dstack-receipt/v1';
const enc = new TextEncoder();

function die(msg) {
	process.stderr.write(`make-receipt: ${msg}\n`);
	process.exit(2);
}

const hex = (b) => Buffer.from(b).toString('hex');
function unhex(s, n, what) {
	const t = String(s).replace(/^0x/, '');
	if (!/^([0-9a-fA-F]{2})*$/.test(t) || (n !== undefined && t.length !== 2 * n))
		die(`${what} is not ${n ?? 'some'} bytes of hex: ${s}`);
	return new Uint8Array(Buffer.from(t, 'hex'));
}
const concat = (...parts) => new Uint8Array(Buffer.concat(parts.map((p) => Buffer.from(p))));

// ---------------------------------------------------------------- canonical JSON
// Exactly what jansson writes with JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII:
// keys sorted bytewise on their UTF-8 (strcmp), no whitespace, '"' '\\' \b \f \n \r \t
// escaped by name, other controls and everything above 0x7F as \uXXXX with UPPER-case
// hex (UTF-16 surrogate pairs above the BMP), '/' and 0x7F not escaped.  No reals.
function canonString(s) {
	let out = '"';
	for (let i = 0; i < s.length; i++) {
		const c = s.charCodeAt(i);
		if (c >= 0xd800 && c <= 0xdbff) {
			const d = s.charCodeAt(i + 1);
			if (!(d >= 0xdc00 && d <= 0xdfff)) die('a string holds a lone UTF-16 surrogate');
		} else if (c >= 0xdc00 && c <= 0xdfff) {
			const b = s.charCodeAt(i - 1);
			if (!(b >= 0xd800 && b <= 0xdbff)) die('a string holds a lone UTF-16 surrogate');
		}
		if (c === 0x22) out += '\\"';
		else if (c === 0x5c) out += '\\\\';
		else if (c === 0x08) out += '\\b';
		else if (c === 0x0c) out += '\\f';
		else if (c === 0x0a) out += '\\n';
		else if (c === 0x0d) out += '\\r';
		else if (c === 0x09) out += '\\t';
		else if (c < 0x20 || c > 0x7f) out += '\\u' + c.toString(16).toUpperCase().padStart(4, '0');
		else out += s[i];
	}
	return out + '"';
}

export function canon(v) {
	if (v === null) return 'null';
	if (v === true) return 'true';
	if (v === false) return 'false';
	if (typeof v === 'number') {
		if (!Number.isSafeInteger(v)) die(`the body holds a number that is not an integer: ${v}`);
		return String(v === 0 ? 0 : v);
	}
	if (typeof v === 'string') return canonString(v);
	if (Array.isArray(v)) return '[' + v.map(canon).join(',') + ']';
	if (typeof v === 'object') {
		const keys = Object.keys(v).sort((a, b) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')));
		return '{' + keys.map((k) => canonString(k) + ':' + canon(v[k])).join(',') + '}';
	}
	die(`cannot encode a ${typeof v}`);
}

// ---------------------------------------------------------------- secp256k1
const pubOf = (sk) => secp256k1.getPublicKey(sk, true);
function signRSV(sk, digest) {
	const sig = secp256k1.sign(digest, sk, { prehash: false, format: 'recovered' }); // v ‖ r ‖ s
	return concat(sig.subarray(1), [sig[0]]);
}
const appDigest = (purpose, pub) => keccak_256(enc.encode(`${purpose}:${hex(pub)}`));
const kmsDigest = (appId, appPub) => keccak_256(concat(enc.encode('dstack-kms-issued:'), appId, appPub));

// ---------------------------------------------------------------- options
const opts = { set: [], unset: [] };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
	const a = argv[i];
	const val = () => (i + 1 < argv.length ? argv[++i] : die(`${a} needs a value`));
	switch (a) {
		case '--local': opts.local = val(); break;
		case '--socket': opts.socket = val(); break;
		case '--rpc': opts.rpc = val(); break;
		case '--app-id': opts.appId = val(); break;
		case '--query': opts.query = val(); break;
		case '--prev': opts.prev = val(); break;
		case '--set': opts.set.push(val()); break;
		case '--unset': opts.unset.push(val()); break;
		case '--canon': opts.canon = true; break;
		default: die(`unknown argument ${a}`);
	}
}
if (!opts.local === !opts.socket) die('give exactly one of --local DIR and --socket PATH');

// ---------------------------------------------------------------- the guest agent
function agent(route, body) {
	return new Promise((resolve, reject) => {
		const data = body === undefined ? undefined : JSON.stringify(body);
		const req = http.request({
			socketPath: opts.socket, path: `/${route}`, method: data ? 'POST' : 'GET',
			headers: data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {},
		}, (res) => {
			const chunks = [];
			res.on('data', (c) => chunks.push(c));
			res.on('end', () => {
				const text = Buffer.concat(chunks).toString();
				if (res.statusCode !== 200) reject(new Error(`guest agent ${route}: ${res.statusCode} ${text}`));
				else resolve(JSON.parse(text));
			});
		});
		req.on('error', reject);
		req.end(data);
	});
}

async function rpc(method, params) {
	const res = await fetch(opts.rpc, {
		method: 'POST', headers: { 'content-type': 'application/json' },
		body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
	});
	const j = await res.json();
	if (j.error) throw new Error(`${method}: ${j.error.message}`);
	return j.result;
}

// A quote as tools/dstack-sim makes it: the captured quote with report_data,
// MRCONFIGID and RTMR3 replaced and the simulation marker set, and the RTMR3 event
// log (as the agent strips it) that replays to it.
function localQuote(appId, composeHash, instanceId, reportData) {
	const fixture = loadFixture(new URL('../dstack-sim/fixtures/attestation.bin', import.meta.url).pathname);
	const events = [
		runtimeEvent('system-preparing', new Uint8Array(0)), runtimeEvent('app-id', appId),
		runtimeEvent('compose-hash', composeHash), runtimeEvent('instance-id', instanceId),
		runtimeEvent('boot-mr-done', new Uint8Array(0)),
	];
	const quote = simulatedQuote(fixture.quote, {
		reportData, mrConfigId: mrConfigIdV1(composeHash), rtmr3: replay(events.map((e) => e.digest)),
	});
	return { quote: hex(quote), event_log: JSON.stringify(events.map((e) => eventJson(e, { strip: true }))) };
}

// An epsilon as receipts write it: the compose's decimal text with exactly six decimals.
function sixDecimals(text, what) {
	const m = /^([0-9]+)(?:\.([0-9]{1,6}))?$/.exec(String(text));
	if (!m) die(`${what} is not a decimal with at most six decimals: ${text}`);
	return `${BigInt(m[1])}.${(m[2] ?? '').padEnd(6, '0')}`;
}

// body.policy from a compose's pg_dstack_policy.
function receiptPolicy(p, what) {
	if (!p || typeof p !== 'object') die(`${what} has no pg_dstack_policy`);
	return {
		epsilon_total: sixDecimals(p.epsilon_total, `${what} epsilon_total`),
		delta: String(p.delta),
		epsilon_select: sixDecimals(p.epsilon_select, `${what} epsilon_select`),
		min_group_size: p.min_group_size,
		privacy_unit: p.privacy_unit,
		max_rows_per_unit: p.max_rows_per_unit,
	};
}

async function main() {
	let appId, composeHash, instanceId, receiptSk, chain, getQuote;
	let policy = { epsilon_total: '1.500000', delta: '1e-6', epsilon_select: '0.100000', min_group_size: 10,
		privacy_unit: 'patient_id', max_rows_per_unit: 1 };
	if (opts.local) {
		fs.mkdirSync(opts.local, { recursive: true });
		const keyFile = path.join(opts.local, 'root.key');
		if (!fs.existsSync(keyFile)) fs.writeFileSync(keyFile, hex(secp256k1.utils.randomSecretKey()) + '\n', { mode: 0o600 });
		const rootSk = unhex(fs.readFileSync(keyFile, 'utf8').trim(), 32, keyFile);
		fs.writeFileSync(path.join(opts.local, 'root.pub'), hex(pubOf(rootSk)) + '\n');
		appId = unhex(opts.appId ?? '0x5fbdb2315678afecb367f032d93f642f64180aa3', 20, '--app-id');
		// keys derived from the root as a KMS would (any deterministic derivation will do here)
		const appSk = sha256(concat(enc.encode('make-receipt app key'), rootSk, appId));
		receiptSk = sha256(concat(enc.encode('make-receipt derived key'), appSk, enc.encode(PURPOSE)));
		const appPub = pubOf(appSk);
		chain = [signRSV(appSk, appDigest(PURPOSE, pubOf(receiptSk))), signRSV(rootSk, kmsDigest(appId, appPub))];
		composeHash = sha256(enc.encode('make-receipt compose'));
		instanceId = sha256(enc.encode('make-receipt instance')).subarray(0, 20);
		getQuote = async (rd) => ({ ...localQuote(appId, composeHash, instanceId, rd), report_data: hex(rd) });
	} else {
		const info = await agent('Info');
		appId = unhex(info.app_id, 20, 'Info.app_id');
		composeHash = unhex(info.compose_hash, 32, 'Info.compose_hash');
		instanceId = unhex(info.instance_id, undefined, 'Info.instance_id');
		policy = receiptPolicy(JSON.parse(JSON.parse(info.tcb_info).app_compose).pg_dstack_policy, 'Info app_compose');
		const k = await agent('GetKey', { path: PURPOSE, purpose: PURPOSE, algorithm: 'secp256k1' });
		receiptSk = unhex(k.key, 32, 'GetKey.key');
		chain = k.signature_chain.map((s, i) => unhex(s, 65, `signature_chain[${i}]`));
		getQuote = (rd) => agent('GetQuote', { report_data: hex(rd) });
	}

	let chainFacts = { chain_id: 31337, block_number: 7, block_hash: '0x' + hex(sha256(enc.encode('make-receipt block 7'))),
		approvals: 4, threshold: 3 };
	if (opts.rpc) {
		const chainId = Number(BigInt(await rpc('eth_chainId', [])));
		const blk = await rpc('eth_getBlockByNumber', ['latest', false]);
		const selector = hex(keccak_256(enc.encode('state()')).subarray(0, 4));
		const ret = await rpc('eth_call', [{ to: '0x' + hex(appId), data: '0x' + selector }, blk.number]);
		const w = (i) => BigInt('0x' + ret.slice(2 + 64 * i, 2 + 64 * (i + 1)));
		chainFacts = { chain_id: chainId, block_number: Number(BigInt(blk.number)), block_hash: blk.hash.toLowerCase(),
			approvals: Number(w(0)), threshold: Number(w(1)) };
		if (w(2) !== 0n) process.stderr.write('make-receipt: note: the consortium is revoked at the cited block\n');
		composeHash = unhex(ret.slice(2 + 64 * 3, 2 + 64 * 4), 32, 'state().composeHash');
	}

	let sequence = 1;
	let prevHash = '0'.repeat(64);
	if (opts.prev) {
		const p = JSON.parse(fs.readFileSync(opts.prev, 'utf8'));
		sequence = p.body.sequence + 1;
		prevHash = p.body_sha256;
	}
	const body = {
		format: PURPOSE,
		query: opts.query ?? 'SELECT k, dp_count(patient_id, 0.5) FROM ehr GROUP BY k',
		result: { columns: ['k', 'dp_count'], rows: [['1', '8213'], ['2', '97']] },
		min_group_size: 10,
		suppressed_groups: 1,
		datasets: [{ table: 'public.ehr', owner: '0x70997970c51812dc3a010c7d01b50e0d17dc79c8',
			dataset_id: hex(sha256(enc.encode('dataset')).subarray(0, 16)), manifest_hash: hex(sha256(enc.encode('manifest'))) }],
		epsilon: { charged: '0.500000', spent: '0.500000', left: '1.000000', total: '1.500000' },
		contribution: { privacy_unit: policy.privacy_unit, rows_per_unit: policy.max_rows_per_unit, sensitivity: 1 },
		policy,
		app_id: '0x' + hex(appId),
		compose_hash: hex(composeHash),
		instance_id: hex(instanceId),
		chain: chainFacts,
		issued_at: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
		sequence,
		prev_receipt_hash: prevHash,
	};
	for (const s of opts.set) {
		const eq = s.indexOf('=');
		if (eq < 0) die(`--set wants PATH=JSON: ${s}`);
		const keys = s.slice(0, eq).split('.');
		let o = body;
		for (const k of keys.slice(0, -1)) o = o[k] ?? die(`--set: no field ${s.slice(0, eq)}`);
		o[keys[keys.length - 1]] = JSON.parse(s.slice(eq + 1));
	}
	for (const s of opts.unset) {
		const keys = s.split('.');
		let o = body;
		for (const k of keys.slice(0, -1)) o = o[k] ?? die(`--unset: no field ${s}`);
		if (!(keys[keys.length - 1] in o)) die(`--unset: no field ${s}`);
		delete o[keys[keys.length - 1]];
	}

	const text = canon(body);
	if (opts.canon) {
		process.stdout.write(text + '\n');
		return;
	}
	const bodyHash = sha256(enc.encode(text));
	const value = signRSV(receiptSk, keccak_256(concat(enc.encode(`${PURPOSE}:`), bodyHash)));
	const rd = concat(bodyHash, new Uint8Array(32));
	const q = await getQuote(rd);
	const receipt = {
		body,
		body_sha256: hex(bodyHash),
		signature: { public_key: hex(pubOf(receiptSk)), purpose: PURPOSE, signature_chain: chain.map(hex), value: hex(value) },
		quote: { quote: q.quote, report_data: q.report_data, event_log: q.event_log ?? '', simulated: true },
	};
	// deliberately not canonical: the verifier must canonicalise the body itself
	process.stdout.write(JSON.stringify(receipt, null, 2) + '\n');
}

main().catch((e) => die(e.message));
