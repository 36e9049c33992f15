// tools/dstack-sim/test.mjs: end-to-end tests of the simulator against a real EVM (anvil).
//   node --test tools/dstack-sim/test.mjs
// Deploys a small IAppAuth test contract (compiled here with solc-js) whose
// isAppAllowed checks every AppBootInfo field the simulator sends, so the ABI
// encoding is tested too; then drives the simulator over its Unix socket.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import {
	jsonRpc, verifyChain, compressedPub, toHex, fromHexN, secp256k1, sha256, concat, agentCall,
	IS_APP_ALLOWED_SELECTOR,
} from './lib.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const BIN = path.join(ROOT, 'node_modules/.bin');
const require = createRequire(import.meta.url);

const SOURCE = `
// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.22;
contract TestAppAuth {
    struct AppBootInfo {
        address appId; bytes32 composeHash; address instanceId; bytes32 deviceId;
        bytes32 mrAggregated; bytes32 mrSystem; bytes32 osImageHash;
        string tcbStatus; string[] advisoryIds;
    }
    bytes32 public pin; address public instance; bool public allowed = true; bool public revoked;
    constructor(bytes32 p, address i) { pin = p; instance = i; }
    function setAllowed(bool a) external { allowed = a; }
    function revoke() external { revoked = true; }
    function isAppAllowed(AppBootInfo calldata b) external view returns (bool, string memory) {
        if (b.appId != address(this)) return (false, "wrong app id");
        if (b.instanceId != instance) return (false, "wrong instance id");
        if (keccak256(bytes(b.tcbStatus)) != keccak256("UpToDate")) return (false, "bad tcb status");
        if (b.advisoryIds.length != 0) return (false, "advisories");
        if (b.composeHash != pin) return (false, "compose hash not approved");
        if (revoked) return (false, "revoked by an owner");
        if (!allowed) return (false, "not enough approvals");
        return (true, "");
    }
}`;

function compile() {
	const solc = require('solc');
	const input = {
		language: 'Solidity',
		sources: { 'T.sol': { content: SOURCE } },
		settings: { outputSelection: { '*': { '*': ['evm.bytecode.object', 'evm.methodIdentifiers'] } } },
	};
	const out = JSON.parse(solc.compile(JSON.stringify(input)));
	const errs = (out.errors || []).filter((e) => e.severity === 'error');
	if (errs.length) throw new Error(errs.map((e) => e.formattedMessage).join('\n'));
	return out.contracts['T.sol'].TestAppAuth;
}

function freePort() {
	return new Promise((resolve) => {
		const s = net.createServer();
		s.listen(0, '127.0.0.1', () => {
			const { port } = s.address();
			s.close(() => resolve(port));
		});
	});
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitFor(fn, ms, what) {
	const end = Date.now() + ms;
	for (;;) {
		try {
			if (await fn()) return;
		} catch {}
		if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
		await sleep(100);
	}
}

/** Raw HTTP over the socket: returns {status, json, text}. */
function raw(socketPath, method, p, body, headers = {}) {
	return new Promise((resolve, reject) => {
		const req = http.request({ socketPath, path: p, method, agent: false, headers: { host: 'dstack', ...headers } }, (res) => {
			const chunks = [];
			res.on('data', (c) => chunks.push(c));
			res.on('end', () => {
				const text = Buffer.concat(chunks).toString('utf8');
				let json;
				try {
					json = JSON.parse(text);
				} catch {}
				resolve({ status: res.statusCode, json, text });
			});
		});
		req.on('error', reject);
		req.end(body);
	});
}

const procs = [];
let tmp, rpc, deployer, contract, abi, sock, composeHash, sim;
const instanceId = '0x' + '11'.repeat(20);

function startSim(extra = {}) {
	const args = [
		path.join(HERE, 'dstack-sim.mjs'), '--socket', extra.socket ?? sock, '--rpc', extra.rpc ?? rpc,
		'--app-id', extra.appId ?? contract,
		...(extra.composeHash === null ? [] : ['--compose-hash', extra.composeHash ?? composeHash]),
		'--state-dir', path.join(tmp, 'kms'), '--app-compose', path.join(ROOT, 'tools/demo/app-compose.json'),
		'--log', path.join(tmp, 'sim.log'), '--instance-id', instanceId,
	];
	const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
	p.out = '';
	p.stdout.on('data', (d) => (p.out += d));
	p.stderr.on('data', (d) => (p.out += d));
	procs.push(p);
	return p;
}

async function stop(p) {
	if (p.exitCode !== null || p.signalCode) return;
	const done = new Promise((r) => p.once('exit', r));
	p.kill('SIGTERM');
	await done;
}

async function send(to, data) {
	const hash = await jsonRpc(rpc, 'eth_sendTransaction', [{ from: deployer, to, data, gas: '0x2dc6c0' }]);
	let rcpt = null;
	await waitFor(async () => (rcpt = await jsonRpc(rpc, 'eth_getTransactionReceipt', [hash])) !== null, 10000, 'receipt');
	assert.equal(rcpt.status, '0x1');
	return rcpt;
}

before(async () => {
	tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dstack-sim-test-'));
	sock = path.join(tmp, 'dstack.sock');
	composeHash = '0x' + toHex(sha256(fs.readFileSync(path.join(ROOT, 'tools/demo/app-compose.json'))));
	const port = await freePort();
	rpc = `http://127.0.0.1:${port}`;
	const anvil = spawn(path.join(BIN, 'anvil'), ['--host', '127.0.0.1', '--port', String(port), '--silent'], { stdio: 'ignore' });
	procs.push(anvil);
	const compiled = compile();
	abi = compiled.evm.methodIdentifiers;
	await waitFor(async () => (await jsonRpc(rpc, 'eth_chainId', [], 500)) !== undefined, 20000, 'anvil');
	[deployer] = await jsonRpc(rpc, 'eth_accounts', []);
	const ctorArgs = composeHash.slice(2) + instanceId.slice(2).padStart(64, '0');
	const rcpt = await send(null, '0x' + compiled.evm.bytecode.object + ctorArgs);
	contract = rcpt.contractAddress;
	sim = startSim();
	await waitFor(() => fs.existsSync(sock) && fs.existsSync(path.join(tmp, 'kms/kms-root.pub')), 10000, 'simulator socket');
	await waitFor(() => sim.out.length > 0, 5000, 'simulator banner');
});

after(async () => {
	for (const p of procs.reverse()) await stop(p).catch(() => {});
	if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const call = (m, body) => raw(sock, 'POST', `/${m}`, JSON.stringify(body), { 'content-type': 'application/json' });
const rootPubHex = () => fs.readFileSync(path.join(tmp, 'kms/kms-root.pub'), 'utf8');

test('selector matches the IAppAuth interface id', () => {
	assert.equal(toHex(IS_APP_ALLOWED_SELECTOR), '1e079198');
	assert.equal(abi['isAppAllowed((address,bytes32,address,bytes32,bytes32,bytes32,bytes32,string,string[]))'], '1e079198');
});

test('key derivation matches an independent HKDF-SHA256("RATLS") vector (Python hmac)', async () => {
	const { appKey, derivedKey } = await import('./lib.mjs');
	const app = appKey(new Uint8Array(32).fill(7), new Uint8Array(20).fill(0xaa));
	assert.equal(toHex(app), 'fb09be1b9dbd3136a05b7ea9fe19d7f400a4a7af646e51a5b7ec4a25b6cdd1e1');
	assert.equal(toHex(derivedKey(app, 'p/a')), '5978fe62f6d1c4b4bef76091af5c07e315cc1b9e1984314245e26630ce6d13e8');
});

test('KMS root: pub file format, stdout, key file mode', () => {
	const pub = rootPubHex();
	assert.match(pub, /^0[23][0-9a-f]{64}\n$/);
	assert.ok(sim.out.startsWith(pub), 'root pubkey printed on stdout');
	assert.equal(fs.statSync(path.join(tmp, 'kms/kms-root.key')).mode & 0o777, 0o600);
	assert.equal(fs.statSync(sock).mode & 0o777, 0o777);
});

test('Info fields (GET and POST)', async () => {
	for (const r of [await raw(sock, 'GET', '/Info'), await call('Info', {})]) {
		assert.equal(r.status, 200);
		const i = r.json;
		for (const k of ['app_id', 'instance_id', 'app_cert', 'tcb_info', 'app_name', 'device_id', 'mr_aggregated',
			'os_image_hash', 'key_provider_info', 'compose_hash', 'vm_config'])
			assert.ok(k in i, `Info has ${k}`);
		assert.equal(i.app_id, contract.slice(2).toLowerCase());
		assert.equal(i.compose_hash, composeHash.slice(2));
		assert.equal(i.instance_id, instanceId.slice(2));
		assert.equal(i.app_name, 'pg-dstack-cardio-renal');
		assert.match(i.device_id, /^[0-9a-f]{64}$/);
		const tcb = JSON.parse(i.tcb_info);
		for (const k of ['mrtd', 'rtmr0', 'rtmr1', 'rtmr2', 'rtmr3']) assert.match(tcb[k], /^[0-9a-f]{96}$/);
		assert.equal(tcb.app_compose, fs.readFileSync(path.join(ROOT, 'tools/demo/app-compose.json'), 'utf8'));
		assert.ok(Array.isArray(tcb.event_log));
		assert.deepEqual(JSON.parse(i.key_provider_info), { type: 'kms', id: rootPubHex().trim() });
	}
});

test('GetKey: deterministic per path, distinct across paths, chain verifies to the root', async () => {
	const a1 = await call('GetKey', { path: 'p/a', purpose: 'x', algorithm: 'secp256k1' });
	const a2 = await call('GetKey', { path: 'p/a', purpose: 'x', algorithm: 'secp256k1' });
	const b = await call('GetKey', { path: 'p/b', purpose: 'x', algorithm: 'secp256k1' });
	assert.equal(a1.status, 200, a1.text);
	assert.match(a1.json.key, /^[0-9a-f]{64}$/);
	assert.equal(a1.json.key, a2.json.key);
	assert.notEqual(a1.json.key, b.json.key);
	for (const r of [a1, b]) {
		assert.equal(r.json.signature_chain.length, 2);
		const chain = r.json.signature_chain.map((s) => {
			assert.match(s, /^[0-9a-f]{130}$/);
			assert.ok(['00', '01'].includes(s.slice(128)), 'v is a recovery id 0/1');
			return fromHexN(s, 65, 'sig');
		});
		const got = verifyChain({
			purpose: 'x', derivedPub33: compressedPub(fromHexN(r.json.key, 32, 'key')),
			appId20: fromHexN(contract, 20, 'app'), chain,
		});
		assert.equal(got.rootPub, rootPubHex().trim());
	}
	// same app key signs both; chain[1] is the app's KMS certificate, the same for every path
	assert.equal(a1.json.signature_chain[1], b.json.signature_chain[1]);
	// GET with query parameters and the k256 alias work too
	const g = await raw(sock, 'GET', '/GetKey?path=p%2Fa&purpose=x&algorithm=k256');
	assert.equal(g.status, 200, g.text);
	assert.equal(g.json.key, a1.json.key);
	// a different purpose changes chain[0] only
	const c = await call('GetKey', { path: 'p/a', purpose: 'y', algorithm: 'secp256k1' });
	assert.equal(c.json.key, a1.json.key);
	assert.notEqual(c.json.signature_chain[0], a1.json.signature_chain[0]);
});

test('GetKey: unsupported algorithm is a 400', async () => {
	const r = await call('GetKey', { path: 'p', purpose: 'x', algorithm: 'rsa' });
	assert.equal(r.status, 400);
	assert.match(r.json.error, /Unsupported algorithm/);
});

test('recipient-key.mjs prints the published recipient key', async () => {
	const owner = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8';
	const p = spawn(process.execPath, [path.join(HERE, 'recipient-key.mjs'), '--socket', sock, '--owner', owner]);
	let out = '';
	p.stdout.on('data', (d) => (out += d));
	const code = await new Promise((r) => p.on('exit', r));
	assert.equal(code, 0);
	const j = JSON.parse(out);
	const purpose = 'dstack-seal/v1/70997970c51812dc3a010c7d01b50e0d17dc79c8';
	assert.equal(j.purpose, purpose);
	assert.equal(j.app_id, contract.toLowerCase());
	assert.match(j.public_key, /^0[23][0-9a-f]{64}$/);
	const k = await call('GetKey', { path: purpose, purpose, algorithm: 'secp256k1' });
	assert.equal(j.public_key, toHex(compressedPub(fromHexN(k.json.key, 32, 'k'))));
	const got = verifyChain({
		purpose, derivedPub33: fromHexN(j.public_key, 33, 'pub'), appId20: fromHexN(contract, 20, 'a'),
		chain: j.signature_chain.map((s) => fromHexN(s, 65, 's')),
	});
	assert.equal(got.rootPub, rootPubHex().trim());
});

test('GetQuote: report_data at offset 568, padded; simulated signature checks; > 64 bytes refused', async () => {
	const rd = 'ab'.repeat(40);
	const r = await call('GetQuote', { report_data: rd });
	assert.equal(r.status, 200, r.text);
	const q = Buffer.from(r.json.quote, 'hex');
	assert.equal(r.json.report_data, rd + '00'.repeat(24));
	assert.equal(q.subarray(568, 632).toString('hex'), r.json.report_data);
	assert.equal(q.readUInt16LE(0), 4);
	assert.equal(q.readUInt32LE(4), 0x81);
	assert.equal(q.subarray(12, 34).toString(), 'DSTACK-SIMULATED-QUOTE');
	const sigLen = q.readUInt32LE(632);
	assert.equal(q.length, 636 + sigLen);
	const sig = q.subarray(636, 701);
	const rec = concat([sig[64]], sig.subarray(0, 64));
	const signer = secp256k1.recoverPublicKey(rec, sha256(q.subarray(0, 632)), { prehash: false });
	assert.equal(toHex(signer), rootPubHex().trim());
	assert.equal(q.subarray(701, 734).toString('hex'), rootPubHex().trim());
	assert.ok(Array.isArray(JSON.parse(r.json.event_log)));
	assert.equal(typeof JSON.parse(r.json.vm_config), 'object');
	const big = await call('GetQuote', { report_data: 'aa'.repeat(65) });
	assert.equal(big.status, 400);
	assert.match(big.json.error, /too long/);
	const bad = await call('GetQuote', { report_data: '0xzz' });
	assert.equal(bad.status, 400);
});

test('errors: unknown endpoint 404, bad JSON 400', async () => {
	const u = await call('NoSuchThing', {});
	assert.equal(u.status, 404);
	assert.ok(u.json.error);
	const b = await raw(sock, 'POST', '/GetKey', '{"path": ', { 'content-type': 'application/json' });
	assert.equal(b.status, 400);
	assert.match(b.json.error, /invalid JSON/);
});

test('gate: refused when not allowed, allowed again, refused for good after revoke', async () => {
	const setAllowed = (v) => send(contract, '0x' + abi['setAllowed(bool)'] + (v ? '1' : '0').padStart(64, '0'));
	await setAllowed(false);
	let r = await call('GetKey', { path: 'p', purpose: 'x', algorithm: 'secp256k1' });
	assert.equal(r.status, 403);
	assert.equal(r.json.error, 'app not allowed by its auth contract: not enough approvals');
	// Info and GetQuote are not gated
	assert.equal((await call('Info', {})).status, 200);
	assert.equal((await call('GetQuote', { report_data: '' })).status, 200);
	await setAllowed(true);
	r = await call('GetKey', { path: 'p', purpose: 'x', algorithm: 'secp256k1' });
	assert.equal(r.status, 200);
	await send(contract, '0x' + abi['revoke()']);
	r = await call('GetKey', { path: 'p', purpose: 'x', algorithm: 'secp256k1' });
	assert.equal(r.status, 403);
	assert.match(r.json.error, /revoked by an owner/);
	// recipient-key exits nonzero with the reason
	const p = spawn(process.execPath, [path.join(HERE, 'recipient-key.mjs'), '--socket', sock, '--owner', '0x' + '22'.repeat(20)]);
	let err = '';
	p.stderr.on('data', (d) => (err += d));
	const code = await new Promise((res) => p.on('exit', res));
	assert.notEqual(code, 0);
	assert.match(err, /revoked by an owner/);
	const log = fs.readFileSync(path.join(tmp, 'sim.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
	assert.ok(log.some((l) => l.path === '/GetKey' && l.status === 403 && l.decision === 'denied'));
	assert.ok(log.some((l) => l.path === '/GetKey' && l.status === 200 && l.decision === 'allowed'));
});

test('without --compose-hash the measured hash is sha256 of the compose file, whose text Info carries', async () => {
	const s4 = path.join(tmp, 'measured.sock');
	const p = startSim({ socket: s4, composeHash: null });
	await waitFor(() => fs.existsSync(s4), 10000, 'simulator without --compose-hash');
	const info = await agentCall(s4, 'Info', {});
	assert.equal(info.compose_hash, composeHash.slice(2));
	const text = JSON.parse(info.tcb_info).app_compose;
	assert.equal(toHex(sha256(new TextEncoder().encode(text))), info.compose_hash);
	assert.equal(JSON.parse(text).pg_dstack_policy.epsilon_total, '1.5');
	await stop(p);
});

test('a CVM with another compose hash is refused; same root key is reused across restarts', async () => {
	const s2 = path.join(tmp, 'other.sock');
	const p = startSim({ socket: s2, composeHash: '0x' + '33'.repeat(32) });
	await waitFor(() => fs.existsSync(s2), 10000, 'second simulator');
	const r = await raw(s2, 'POST', '/GetKey', JSON.stringify({ path: 'p', purpose: 'x' }), { 'content-type': 'application/json' });
	assert.equal(r.status, 403);
	assert.match(r.json.error, /compose hash not approved/);
	const info = await agentCall(s2, 'Info', {});
	assert.equal(JSON.parse(info.key_provider_info).id, rootPubHex().trim());
	await stop(p);
	assert.ok(!fs.existsSync(s2), 'socket removed on SIGTERM');
});

test('RPC down: clean 503 naming the RPC', async () => {
	const s3 = path.join(tmp, 'down.sock');
	const dead = `http://127.0.0.1:${await freePort()}`;
	const p = startSim({ socket: s3, rpc: dead });
	await waitFor(() => fs.existsSync(s3), 10000, 'third simulator');
	const r = await raw(s3, 'POST', '/GetKey', JSON.stringify({ path: 'p', purpose: 'x', algorithm: 'secp256k1' }));
	assert.equal(r.status, 503);
	assert.ok(r.json.error.includes(dead), r.json.error);
	await stop(p);
});
