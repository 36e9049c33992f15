#!/usr/bin/env node
// make-receipt.mjs: an independent generator of dstack-receipt/v1 receipts
// (docs/receipts.md) for testing tools/dstack-verify.  It shares no code with
// the CVM side (dstack_fdw, common/receipt.c): canonical JSON, the digests,
// the key chain and the simulated quote are written here again from the spec,
// so a receipt it makes verifying in the C verifier cross-checks both.
//
//   node make-receipt.mjs --local DIR  [options] > receipt.json
//   node make-receipt.mjs --socket PATH [--rpc URL] [options] > receipt.json
//
//   --local DIR     simulate the guest agent here: a KMS root key kept in
//                   DIR/root.key (made once; DIR/root.pub is its public key),
//                   the app key and the receipt key derived from it, a quote
//                   in the simulator's layout signed by that root
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
//   --quote-file F  (--local) take the quote and event log from F, a guest agent
//                   GetQuote response (JSON) or a raw quote: a real quote then
//                   (quote.simulated false unless F carries the marker); its
//                   report_data is not the body hash, so only that check fails
//   --real-layout F (--local) a quote as a faithful simulator makes it: the real
//                   quote of F with report_data and RTMR3 replaced (so its Intel
//                   signature no longer holds) and "DSTACK-SIMULATED" + 4 zero
//                   bytes written at --marker-at (default 28, the header's user
//                   data, as tools/dstack-sim does; "end" = in the padding)
//   --event-log F   (--local) use the event log of F (a GetQuote JSON) instead
//
// --local quotes carry a dstack event log: system-preparing, app-id,
// compose-hash, instance-id, boot-mr-done, key-provider {"name":"kms","id":
// <root public key hex>}, system-ready, each digested as dstack does
// (sha384(u32le(0x08000001) ":" name ":" payload)), RTMR3 their replay.
//
// body.policy: with --socket, the pg_dstack_policy of the app-compose text in the
// agent's Info (tcb_info.app_compose), as the CVM reads it; with --local, the demo's.
//   --canon         print the canonical body text instead of the receipt
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { sha256, sha384 } from '@noble/hashes/sha2.js';

const PURPOSE = 'dstack-receipt/v1';
const QUOTE_MARKER = 'DSTACK-SIMULATED-QUOTE';
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
		case '--quote-file': opts.quoteFile = val(); break;
		case '--real-layout': opts.realLayout = val(); break;
		case '--marker-at': opts.markerAt = val(); break;
		case '--event-log': opts.eventLog = val(); break;
		default: die(`unknown argument ${a}`);
	}
}
if (!opts.local === !opts.socket) die('give exactly one of --local DIR and --socket PATH');
if ((opts.quoteFile || opts.realLayout || opts.eventLog) && !opts.local) die('--quote-file, --real-layout and --event-log go with --local');

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

// dstack's runtime event digest (version 1) and RTMR3 replay.
const RUNTIME_EVENT = 0x08000001;
function eventDigest(name, payload) {
	const t = new Uint8Array(4);
	new DataView(t.buffer).setUint32(0, RUNTIME_EVENT, true);
	return sha384(concat(t, enc.encode(`:${name}:`), payload));
}
function dstackEventLog(appId, composeHash, instanceId, rootPub) {
	const kp = enc.encode(JSON.stringify({ name: 'kms', id: hex(rootPub) }));
	return [['system-preparing', []], ['app-id', appId], ['compose-hash', composeHash], ['instance-id', instanceId],
		['boot-mr-done', []], ['key-provider', kp], ['system-ready', []]].map(([event, payload]) => ({
		imr: 3, event_type: RUNTIME_EVENT, digest: hex(eventDigest(event, Uint8Array.from(payload))), event,
		event_payload: hex(Uint8Array.from(payload)),
	}));
}
function replayRtmr3(log) {
	let mr = new Uint8Array(48);
	for (const e of log) if (e.imr === 3) mr = sha384(concat(mr, unhex(e.digest, 48, 'digest')));
	return mr;
}

// A TDX-v4-shaped quote in tools/dstack-sim's first layout: 48-byte header carrying the
// marker at 12, 584-byte TD report body (RTMR3 at 520-48, report_data at 568), u32
// length, then r‖s‖v by the KMS root over sha256(header ‖ body), root public key, marker.
function localQuote(rootSk, reportData, rtmr3) {
	const header = new Uint8Array(48);
	const dv = new DataView(header.buffer);
	dv.setUint16(0, 4, true);
	dv.setUint16(2, 2, true);
	dv.setUint32(4, 0x81, true);
	header.set(enc.encode(QUOTE_MARKER), 12);
	const body = new Uint8Array(584);
	body.set(rtmr3, 472);
	body.set(reportData, 520);
	const signed = concat(header, body);
	const sigSection = concat(signRSV(rootSk, sha256(signed)), pubOf(rootSk), enc.encode(QUOTE_MARKER));
	const len = new Uint8Array(4);
	new DataView(len.buffer).setUint32(0, sigSection.length, true);
	return concat(signed, len, sigSection);
}

// A GetQuote response (JSON) or a raw / hex quote file.
function readQuoteFile(f) {
	const b = fs.readFileSync(f);
	try {
		const j = JSON.parse(b.toString());
		if (j && typeof j.quote === 'string') return { quote: unhex(j.quote, undefined, `${f} quote`), event_log: j.event_log ?? '' };
	} catch { /* not JSON */ }
	const t = b.toString().trim();
	if (/^(0x)?[0-9a-fA-F]+$/.test(t)) return { quote: unhex(t, undefined, f), event_log: '' };
	return { quote: new Uint8Array(b), event_log: '' };
}

// The faithful simulator's layout: a real quote, report_data and RTMR3 replaced, the marker
// "DSTACK-SIMULATED" and four zero bytes in the header's user data (offset 28), or in the padding.
function realLayoutQuote(real, reportData, rtmr3, markerAt) {
	const q = new Uint8Array(real);
	const body = q[0] === 5 ? 54 : 48;
	q.set(rtmr3, body + 472);
	q.set(reportData, body + 520);
	const m = concat(enc.encode('DSTACK-SIMULATED'), new Uint8Array(4));
	if (markerAt === 'end') {
		const siglen = new DataView(q.buffer).getUint32(body + 584, true);
		const end = body + 584 + 4 + siglen;
		if (q.length - end < m.length) die('--marker-at end: the quote has no room after its signature data');
		q.set(m, end);
	} else q.set(m, Number(markerAt ?? 28));
	return q;
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
		// the CVM's measurements: made when the quote is, after --rpc may have taken the compose-hash from the chain
		const eventLog = () => {
			if (!opts.eventLog) return dstackEventLog(appId, composeHash, instanceId, pubOf(rootSk));
			const e = readQuoteFile(opts.eventLog).event_log;
			return typeof e === 'string' ? JSON.parse(e) : e;
		};
		if (opts.quoteFile) {
			const f = readQuoteFile(opts.quoteFile);
			// report_data states the body hash, as a forger would; the quote's own says otherwise
			getQuote = async (rd) => ({ quote: hex(f.quote), event_log: opts.eventLog ? JSON.stringify(eventLog()) : f.event_log,
				report_data: hex(rd) });
		} else if (opts.realLayout) {
			const f = readQuoteFile(opts.realLayout);
			getQuote = async (rd) => {
				const log = eventLog();
				return { quote: hex(realLayoutQuote(f.quote, rd, replayRtmr3(log), opts.markerAt)), event_log: JSON.stringify(log),
					report_data: hex(rd) };
			};
		} else
			getQuote = async (rd) => {
				const log = eventLog();
				return { quote: hex(localQuote(rootSk, rd, replayRtmr3(log))), event_log: JSON.stringify(log), report_data: hex(rd) };
			};
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
		quote: { quote: q.quote, report_data: q.report_data, event_log: q.event_log ?? '',
			simulated: Buffer.from(q.quote, 'hex').includes(Buffer.from('DSTACK-SIMULATED')) },
	};
	// deliberately not canonical: the verifier must canonicalise the body itself
	process.stdout.write(JSON.stringify(receipt, null, 2) + '\n');
}

main().catch((e) => die(e.message));
