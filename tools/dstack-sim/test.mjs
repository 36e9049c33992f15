// tools/dstack-sim/test.mjs: end-to-end tests of the simulator against a real EVM (anvil).
//   node --test tools/dstack-sim/test.mjs
// Deploys dstack's KMS contract (DstackKms, contracts/dstack/, behind its proxy) and a
// small IAppAuth app contract (compiled here with solc-js) whose isAppAllowed checks
// the AppBootInfo fields the KMS forwards, registers the app with the KMS and allows
// the fixture's OS image; then drives the simulator over its sockets, and the real
// dstack JS SDK (@phala/dstack-sdk) against it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createRequire, register } from 'node:module';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { ed25519 } from '@noble/curves/ed25519.js';
import {
	jsonRpc, verifyChain, compressedPub, toHex, fromHexN, secp256k1, sha256, sha384, concat, agentCall, keccak_256,
	IS_APP_ALLOWED_SELECTOR, appSignedMessage, recoverSigner,
} from './lib.mjs';
import {
	loadFixture, decodeAttestationV0, isSimulatedQuote, tdReport, QUOTE_REPORT_DATA, QUOTE_RTMR0, QUOTE_MRCONFIGID,
	SIM_MARKER_OFFSET,
} from './tdx.mjs';
import { deploy as deployKms, setup as setupKms } from './kms-contract.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const BIN = path.join(ROOT, 'node_modules/.bin');
const COMPOSE = path.join(ROOT, 'tools/demo/app-compose.json');
const require = createRequire(import.meta.url);

// The SDK declares @noble/* 1.x as peers, this repository has 2.x: the SDK's (and
// noble 1.x's own) imports of @noble/* resolve to the 1.x releases installed as
// @noble/hashes-v1 and @noble/curves-v1 (package.json devDependencies).
register('data:text/javascript,' + encodeURIComponent(`
const V1 = /\\/node_modules\\/@(phala\\/dstack-sdk|noble\\/hashes-v1|noble\\/curves-v1)\\//;
export async function resolve(spec, ctx, next) {
	if (ctx.parentURL && V1.test(ctx.parentURL)) {
		const m = /^@noble\\/(hashes|curves)(\\/.*)?$/.exec(spec);
		if (m) return next('@noble/' + m[1] + '-v1' + (m[2] ?? ''), ctx);
	}
	return next(spec, ctx);
}`), import.meta.url);

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
    function supportsInterface(bytes4 id) external pure returns (bool) { return id == 0x1e079198 || id == 0x01ffc9a7; }
    function isAppAllowed(AppBootInfo calldata b) external view returns (bool, string memory) {
        if (b.appId != address(this)) return (false, "wrong app id");
        if (b.instanceId != instance) return (false, "wrong instance id");
        if (keccak256(bytes(b.tcbStatus)) != keccak256("UpToDate")) return (false, "bad tcb status");
        if (b.advisoryIds.length != 0) return (false, "advisories");
        if (b.deviceId != sha256("")) return (false, "not a TDX device id");
        if (b.mrAggregated == bytes32(0) || b.mrSystem == bytes32(0)) return (false, "no measurements");
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

/** Raw HTTP over the socket: returns {status, json, text, type}. */
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
				resolve({ status: res.statusCode, json, text, type: res.headers['content-type'] });
			});
		});
		req.on('error', reject);
		req.end(body);
	});
}

const procs = [];
let tmp, rpc, deployer, contract, abi, kms, sock, tappd, composeHash, sim, fixture;
const instanceId = '0x' + '11'.repeat(20);

function startSim(extra = {}) {
	const args = [
		path.join(HERE, 'dstack-sim.mjs'), '--socket', extra.socket ?? sock, '--rpc', extra.rpc ?? rpc,
		'--app-id', extra.appId ?? contract, '--kms-contract', kms,
		...(extra.composeHash === null ? [] : ['--compose-hash', extra.composeHash ?? composeHash]),
		'--state-dir', path.join(tmp, 'kms'), '--app-compose', extra.compose ?? COMPOSE,
		'--log', path.join(tmp, extra.log ?? 'sim.log'), '--instance-id', instanceId, ...(extra.args ?? []),
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

/** A simulator that must refuse to boot: its exit code and what it said. */
async function bootRefused(extra) {
	const p = startSim({ socket: path.join(tmp, `refused-${procs.length}.sock`), ...extra });
	const code = await new Promise((r) => p.once('exit', r));
	return { code, out: p.out };
}

async function send(to, data) {
	const hash = await jsonRpc(rpc, 'eth_sendTransaction', [{ from: deployer, to, data, gas: '0x2dc6c0' }]);
	let rcpt = null;
	await waitFor(async () => (rcpt = await jsonRpc(rpc, 'eth_getTransactionReceipt', [hash])) !== null, 10000, 'receipt');
	assert.equal(rcpt.status, '0x1');
	return rcpt;
}

async function deployApp(pin) {
	const ctorArgs = pin.slice(2) + instanceId.slice(2).padStart(64, '0');
	const c = compile();
	return (await send(null, '0x' + c.evm.bytecode.object + ctorArgs)).contractAddress;
}
const registerApp = (app) =>
	send(kms, '0x' + toHex(keccak_256(new TextEncoder().encode('registerApp(address)')).subarray(0, 4)) +
		app.slice(2).toLowerCase().padStart(64, '0'));

before(async () => {
	tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dstack-sim-test-'));
	sock = path.join(tmp, 'dstack.sock');
	tappd = path.join(tmp, 'tappd.sock');
	fixture = loadFixture(path.join(HERE, 'fixtures/attestation.bin'));
	composeHash = '0x' + toHex(sha256(fs.readFileSync(COMPOSE)));
	const port = await freePort();
	rpc = `http://127.0.0.1:${port}`;
	const anvil = spawn(path.join(BIN, 'anvil'), ['--host', '127.0.0.1', '--port', String(port), '--silent'], { stdio: 'ignore' });
	procs.push(anvil);
	abi = compile().evm.methodIdentifiers;
	await waitFor(async () => (await jsonRpc(rpc, 'eth_chainId', [], 500)) !== undefined, 20000, 'anvil');
	[deployer] = await jsonRpc(rpc, 'eth_accounts', []);
	contract = await deployApp(composeHash);
	kms = await deployKms(rpc, deployer);
	await registerApp(contract);
	// the KMS root key is made before the KMS's info is recorded on chain
	const kg = spawn(process.execPath, [path.join(HERE, 'dstack-sim.mjs'), '--keygen', '--state-dir', path.join(tmp, 'kms')]);
	await new Promise((r) => kg.once('exit', r));
	await setupKms(rpc, deployer, kms, {
		osImages: ['0x' + fixture.osImageHash],
		k256Pubkey: '0x' + fs.readFileSync(path.join(tmp, 'kms/kms-root.pub'), 'utf8').trim(),
		caPubkey: '0x' + fs.readFileSync(path.join(tmp, 'kms/kms-ca.pub'), 'utf8').trim(),
	});
	sim = startSim({ args: ['--tappd-socket', tappd] });
	await waitFor(() => fs.existsSync(sock) && fs.existsSync(tappd), 10000, 'simulator sockets');
	await waitFor(() => sim.out.length > 0, 5000, 'simulator banner');
});

after(async () => {
	for (const p of procs.reverse()) await stop(p).catch(() => {});
	if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const call = (m, body, s = sock) => raw(s, 'POST', `/${m}`, JSON.stringify(body), { 'content-type': 'application/json' });
const rootPubHex = () => fs.readFileSync(path.join(tmp, 'kms/kms-root.pub'), 'utf8').trim();
const caPubHex = () => fs.readFileSync(path.join(tmp, 'kms/kms-ca.pub'), 'utf8').trim();
const H = (h) => Buffer.from(h, 'hex');
const u32le = (v) => {
	const b = Buffer.alloc(4);
	b.writeUInt32LE(v);
	return b;
};
// dstack's V1 event digest, written here again: sha384(u32le(0x08000001) ":" name ":" payload)
const digestV1 = (name, payloadHex) =>
	Buffer.from(sha384(Buffer.concat([u32le(0x08000001), Buffer.from(`:${name}:`), H(payloadHex)]))).toString('hex');
const replayHex = (digests) => {
	let mr = Buffer.alloc(48);
	for (const d of digests) mr = Buffer.from(sha384(Buffer.concat([mr, H(d)])));
	return mr.toString('hex');
};
const sha256hex = (...parts) => Buffer.from(sha256(Buffer.concat(parts))).toString('hex');

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

test('the captured attestation: every RTMR replays from its log, RTMR3 with dstack\'s V1 digests (9 events)', () => {
	const rt = fixture.events.filter((e) => e.imr === 3);
	assert.deepEqual(rt.map((e) => e.event), ['system-preparing', 'app-id', 'compose-hash', 'instance-id',
		'boot-mr-done', 'os-image-hash', 'key-provider', 'storage-fs', 'system-ready']);
	for (const e of rt) assert.equal(digestV1(e.event, toHex(e.event_payload)), toHex(e.digest), e.event);
	assert.equal(replayHex(rt.map((e) => toHex(e.digest))), toHex(fixture.report.rtmr[3]));
	// its key-provider payload is KeyProviderInfo{name, id} with id the KMS CA's SPKI
	const kp = JSON.parse(Buffer.from(rt[6].event_payload).toString());
	assert.deepEqual(Object.keys(kp), ['name', 'id']);
	assert.equal(kp.name, 'kms');
	assert.match(kp.id, /^3059301306072a8648ce3d020106082a8648ce3d030107034200/);
});

test('KMS keys: files, formats, modes; the KMS contract records them', async () => {
	assert.match(rootPubHex(), /^0[23][0-9a-f]{64}$/);
	assert.match(caPubHex(), /^3059301306072a8648ce3d020106082a8648ce3d03010703420004[0-9a-f]{128}$/);
	assert.ok(sim.out.startsWith(rootPubHex() + '\n'), 'root pubkey printed on stdout');
	for (const f of ['kms-root.key', 'kms-ca.key']) assert.equal(fs.statSync(path.join(tmp, 'kms', f)).mode & 0o777, 0o600);
	assert.equal(fs.statSync(sock).mode & 0o777, 0o777);
	const sel = toHex(keccak_256(new TextEncoder().encode('kmsInfo()')).subarray(0, 4));
	const r = H((await jsonRpc(rpc, 'eth_call', [{ to: kms, data: '0x' + sel }, 'latest'])).slice(2));
	const field = (i) => {
		const off = Number(r.readBigUInt64BE(32 * i + 24));
		const len = Number(r.readBigUInt64BE(off + 24));
		return r.subarray(off + 32, off + 32 + len).toString('hex');
	};
	assert.equal(field(0), rootPubHex());
	assert.equal(field(1), caPubHex());
});

test('the boot: the KMS contract was asked once, with the boot-time measurements, and allowed it', () => {
	const log = fs.readFileSync(path.join(tmp, 'sim.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
	const boots = log.filter((l) => l.event === 'boot');
	assert.equal(boots.length, 1);
	assert.equal(boots[0].decision, 'allowed');
	assert.equal(boots[0].boot_info.appId, contract.toLowerCase());
	assert.equal(boots[0].boot_info.osImageHash, '0x' + fixture.osImageHash);
	assert.equal(boots[0].boot_info.deviceId, '0x' + sha256hex(Buffer.alloc(0)));
});

test('Info: every AppInfo field, tcb_info, key_provider_info, and dstack\'s measurements', async () => {
	for (const r of [await raw(sock, 'GET', '/Info'), await call('Info', {})]) {
		assert.equal(r.status, 200);
		const i = r.json;
		assert.deepEqual(Object.keys(i), ['app_id', 'instance_id', 'app_cert', 'tcb_info', 'app_name', 'device_id',
			'mr_aggregated', 'os_image_hash', 'key_provider_info', 'compose_hash', 'vm_config', 'cloud_vendor',
			'cloud_product']);
		assert.equal(i.app_id, contract.slice(2).toLowerCase());
		assert.equal(i.compose_hash, composeHash.slice(2));
		assert.equal(i.instance_id, instanceId.slice(2));
		assert.equal(i.app_name, 'pg-dstack-cardio-renal');
		assert.equal(i.device_id, sha256hex(Buffer.alloc(0)), 'TDX device id: sha256 of nothing');
		assert.equal(i.os_image_hash, fixture.osImageHash);
		assert.equal(i.key_provider_info, `{"name":"kms","id":"${caPubHex()}"}`);
		assert.equal(JSON.parse(i.vm_config).os_image_hash, fixture.osImageHash);
		const tcb = JSON.parse(i.tcb_info);
		assert.ok(i.tcb_info.startsWith('{\n  "mrtd": '), 'tcb_info is pretty-printed JSON, mrtd first');
		assert.deepEqual(Object.keys(tcb), ['mrtd', 'rtmr0', 'rtmr1', 'rtmr2', 'rtmr3', 'mr_aggregated',
			'os_image_hash', 'compose_hash', 'device_id', 'event_log', 'app_compose']);
		assert.equal(tcb.app_compose, fs.readFileSync(COMPOSE, 'utf8'));
		for (const [k, v] of [['mrtd', fixture.report.mrtd], ['rtmr0', fixture.report.rtmr[0]],
			['rtmr1', fixture.report.rtmr[1]], ['rtmr2', fixture.report.rtmr[2]]])
			assert.equal(tcb[k], toHex(v), `${k} is the captured quote's`);
		const rt = tcb.event_log.filter((e) => e.imr === 3);
		assert.deepEqual(rt.map((e) => e.event), ['system-preparing', 'app-id', 'compose-hash', 'instance-id',
			'boot-mr-done', 'os-image-hash', 'key-provider', 'storage-fs', 'system-ready']);
		assert.deepEqual(rt.map((e) => e.event_payload), ['', i.app_id, i.compose_hash, i.instance_id, '',
			i.os_image_hash, Buffer.from(i.key_provider_info).toString('hex'), Buffer.from('zfs').toString('hex'), '']);
		for (const e of rt) {
			assert.equal(e.event_type, 0x08000001);
			assert.equal(e.digest, digestV1(e.event, e.event_payload));
		}
		assert.equal(tcb.rtmr3, replayHex(rt.map((e) => e.digest)));
		assert.equal(tcb.event_log.filter((e) => e.imr < 3).length, 24, 'the captured boot events of RTMR0-2');
		// mr_aggregated = sha256(MRTD ‖ RTMR0..3 ‖ MRCONFIGID ‖ MROWNER ‖ MROWNERCONFIG), MRCONFIGID = 01 ‖ compose-hash
		const cfg = Buffer.concat([Buffer.from([1]), H(i.compose_hash), Buffer.alloc(15)]);
		assert.equal(i.mr_aggregated, sha256hex(H(tcb.mrtd), H(tcb.rtmr0), H(tcb.rtmr1), H(tcb.rtmr2), H(tcb.rtmr3), cfg,
			Buffer.alloc(96)));
		assert.equal(tcb.mr_aggregated, i.mr_aggregated);
	}
});

test('the boot info the KMS was asked with is dstack\'s boot-time view of Info (boottime_mr)', async () => {
	const i = (await call('Info', {})).json;
	const tcb = JSON.parse(i.tcb_info);
	const rt = tcb.event_log.filter((e) => e.imr === 3);
	const boot = replayHex(rt.slice(0, rt.findIndex((e) => e.event === 'boot-mr-done') + 1).map((e) => e.digest));
	const cfg = Buffer.concat([Buffer.from([1]), H(i.compose_hash), Buffer.alloc(15)]);
	const log = fs.readFileSync(path.join(tmp, 'sim.log'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
	const b = log.find((l) => l.event === 'boot').boot_info;
	assert.equal(b.mrSystem, '0x' + sha256hex(H(tcb.mrtd), H(tcb.rtmr0), H(tcb.rtmr1), H(tcb.rtmr2), Buffer.alloc(32)));
	assert.equal(b.mrAggregated, '0x' + sha256hex(H(tcb.mrtd), H(tcb.rtmr0), H(tcb.rtmr1), H(tcb.rtmr2), H(boot), cfg,
		Buffer.alloc(96)));
	assert.notEqual(b.mrAggregated.slice(2), i.mr_aggregated, 'not the full-log aggregate Info reports');
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
		assert.equal(got.rootPub, rootPubHex());
	}
	assert.equal(a1.json.signature_chain[1], b.json.signature_chain[1], 'chain[1] is the app key\'s KMS certificate');
	const g = await raw(sock, 'GET', '/GetKey?path=p%2Fa&purpose=x&algorithm=k256');
	assert.equal(g.status, 200, g.text);
	assert.equal(g.json.key, a1.json.key);
	const c = await call('GetKey', { path: 'p/a', purpose: 'y', algorithm: 'secp256k1' });
	assert.equal(c.json.key, a1.json.key);
	assert.notEqual(c.json.signature_chain[0], a1.json.signature_chain[0]);
	// ed25519: the same derived bytes, an ed25519 public key in chain[0]'s message
	const e = await call('GetKey', { path: 'p/a', purpose: 'x', algorithm: 'ed25519' });
	assert.equal(e.status, 200, e.text);
	assert.equal(e.json.key, a1.json.key, 'the algorithm does not domain-separate the derivation');
	const appPub = recoverSigner(fromHexN(e.json.signature_chain[0], 65, 's'),
		appSignedMessage('x', ed25519.getPublicKey(fromHexN(e.json.key, 32, 'k'))));
	assert.equal(toHex(appPub), verifyChain({
		purpose: 'x', derivedPub33: compressedPub(fromHexN(a1.json.key, 32, 'key')),
		appId20: fromHexN(contract, 20, 'app'), chain: a1.json.signature_chain.map((s) => fromHexN(s, 65, 's')),
	}).appPub);
});

test('failures as dstack answers them: 400 with {"error"}, unknown methods, Rocket\'s 404', async () => {
	const bad = await call('GetKey', { path: 'p', purpose: 'x', algorithm: 'rsa' });
	assert.equal(bad.status, 400);
	assert.equal(bad.text, '{\n  "error": "Unsupported algorithm"\n}', 'prpc\'s pretty-printed error');
	const u = await call('NoSuchThing', {});
	assert.equal(u.status, 400);
	assert.equal(u.json.error, 'Service not found: NoSuchThing');
	// EmitEvent was removed from the current guest agent: an unknown method
	const ev = await call('EmitEvent', { event: 'x', payload: '00' });
	assert.equal(ev.status, 400);
	assert.equal(ev.json.error, 'Service not found: EmitEvent');
	const v0 = await raw(sock, 'POST', '/v0/GetKey', '{}', { 'content-type': 'application/json' });
	assert.equal(v0.status, 404, 'no /v0/ prefix in dstack');
	assert.match(v0.text, /<h1>404: Not Found<\/h1>/);
	const v0j = await raw(sock, 'GET', '/v0/Info', undefined, { accept: 'application/json' });
	assert.equal(v0j.status, 404);
	assert.deepEqual(v0j.json, { error: { code: 404, reason: 'Not Found', description: 'The requested resource could not be found.' } });
	const put = await raw(sock, 'PUT', '/Info', '{}', { 'content-type': 'application/json' });
	assert.equal(put.status, 404, 'Rocket has no route for other methods');
	const j = await raw(sock, 'POST', '/GetKey', '{"path": ', { 'content-type': 'application/json' });
	assert.equal(j.status, 400);
	assert.ok(j.json.error);
	const nojson = await raw(sock, 'POST', '/Info', '{}');
	assert.equal(nojson.status, 400, 'a body without a JSON content type is protobuf to dstack');
	assert.equal(nojson.type, 'application/octet-stream');
	const q = await raw(sock, 'POST', '/Info?json', '{}');
	assert.equal(q.status, 200, '?json selects JSON');
});

test('GetQuote: the captured quote with report_data, MRCONFIGID, RTMR3 and the marker replaced', async () => {
	const rd = 'ab'.repeat(40);
	const r = await call('GetQuote', { report_data: rd });
	assert.equal(r.status, 200, r.text);
	assert.deepEqual(Object.keys(r.json), ['quote', 'event_log', 'report_data', 'vm_config', 'attestation']);
	assert.equal(r.json.attestation, '', 'TDX answers with quote + event_log, attestation empty');
	const q = H(r.json.quote);
	const cap = Buffer.from(fixture.quote);
	assert.equal(q.length, cap.length);
	assert.equal(r.json.report_data, rd + '00'.repeat(24));
	assert.equal(q.subarray(QUOTE_REPORT_DATA, QUOTE_REPORT_DATA + 64).toString('hex'), r.json.report_data);
	assert.equal(q.subarray(SIM_MARKER_OFFSET, SIM_MARKER_OFFSET + 20).toString('latin1'), 'DSTACK-SIMULATED\0\0\0\0');
	assert.ok(isSimulatedQuote(q) && !isSimulatedQuote(cap));
	const info = (await call('Info', {})).json;
	const tcb = JSON.parse(info.tcb_info);
	assert.equal(q.subarray(QUOTE_RTMR0 + 144, QUOTE_RTMR0 + 192).toString('hex'), tcb.rtmr3);
	assert.equal(q.subarray(QUOTE_MRCONFIGID, QUOTE_MRCONFIGID + 48).toString('hex'), '01' + info.compose_hash + '00'.repeat(15));
	// every other byte is the capture's
	const same = (a, b) => assert.equal(q.subarray(a, b).toString('hex'), cap.subarray(a, b).toString('hex'), `${a}..${b}`);
	same(0, SIM_MARKER_OFFSET);
	same(SIM_MARKER_OFFSET + 20, QUOTE_MRCONFIGID);
	same(QUOTE_MRCONFIGID + 48, QUOTE_RTMR0 + 144);
	same(QUOTE_RTMR0 + 192, QUOTE_REPORT_DATA);
	same(QUOTE_REPORT_DATA + 64, cap.length);
	// the event log as dstack's agent strips it: boot events keep digests, runtime events payloads
	const log = JSON.parse(r.json.event_log);
	assert.equal(log.length, 33);
	for (const e of log) {
		if (e.imr === 3) assert.equal(e.digest, '', `${e.event}: runtime digest stripped`);
		else {
			assert.match(e.digest, /^[0-9a-f]{96}$/);
			if (!(e.event_type === 10 && e.imr === 0)) assert.equal(e.event_payload, '');
		}
	}
	assert.equal(replayHex(log.filter((e) => e.imr === 3).map((e) => digestV1(e.event, e.event_payload))), tcb.rtmr3);
	const big = await call('GetQuote', { report_data: 'aa'.repeat(65) });
	assert.equal(big.status, 400);
	assert.equal(big.json.error, 'Report data is too long');
	const bad = await call('GetQuote', { report_data: 'zz' });
	assert.equal(bad.status, 400);
	const pre = await call('GetQuote', { report_data: '0x' + 'cd'.repeat(64) });
	assert.equal(pre.status, 200, 'a 0x prefix is dropped, as prpc\'s hex decoder does');
});

test('Attest: a dstack VersionedAttestation (legacy SCALE) with the same quote and the full event log', async () => {
	const rd = '12'.repeat(64);
	const a = await call('Attest', { report_data: rd });
	assert.equal(a.status, 200, a.text);
	const dec = decodeAttestationV0(H(a.json.attestation));
	const q = await call('GetQuote', { report_data: rd });
	assert.equal(toHex(dec.quote), q.json.quote);
	assert.equal(toHex(dec.reportData), rd);
	assert.equal(dec.events.length, 33);
	assert.deepEqual(dec.runtimeEvents.map((e) => e.event), dec.events.filter((e) => e.imr === 3).map((e) => e.event));
	assert.equal(JSON.parse(JSON.parse(dec.config).vm_config).os_image_hash, fixture.osImageHash);
});

test('Sign and Verify: secp256k1, secp256k1_prehashed, ed25519, with the key chain of path "vms"', async () => {
	const data = 'deadbeef';
	for (const algorithm of ['secp256k1', 'secp256k1_prehashed', 'ed25519']) {
		const d = algorithm === 'secp256k1_prehashed' ? toHex(sha256(H(data))) : data;
		const s = await call('Sign', { algorithm, data: d });
		assert.equal(s.status, 200, s.text);
		assert.equal(s.json.signature_chain.length, 3);
		assert.equal(s.json.signature_chain[0], s.json.signature);
		const k = await call('GetKey', { path: 'vms', purpose: 'signing',
			algorithm: algorithm === 'ed25519' ? 'ed25519' : 'secp256k1' });
		assert.deepEqual(s.json.signature_chain.slice(1), k.json.signature_chain);
		if (algorithm === 'ed25519') assert.ok(ed25519.verify(H(s.json.signature), H(data), H(s.json.public_key)));
		else assert.ok(secp256k1.verify(H(s.json.signature), sha256(H(data)), H(s.json.public_key), { prehash: false }));
		const v = await call('Verify', { algorithm, data: d, signature: s.json.signature, public_key: s.json.public_key });
		assert.deepEqual(v.json, { valid: true });
		const w = await call('Verify', { algorithm, data: d.replace(/^./, 'e'), signature: s.json.signature,
			public_key: s.json.public_key });
		assert.deepEqual(w.json, { valid: false });
	}
	const short = await call('Sign', { algorithm: 'secp256k1_prehashed', data: 'aa' });
	assert.equal(short.status, 400);
	assert.equal(short.json.error, 'Pre-hashed signing requires a 32-byte digest, but received 1 bytes');
	const bad = await call('Verify', { algorithm: 'secp256k1', data: '00', signature: '00', public_key: '00' });
	assert.equal(bad.status, 400);
});

test('GetTlsKey: a P-256 key and the KMS\'s chain (leaf, app CA, root CA); Version; GpuInfo', async () => {
	const r = await call('GetTlsKey', { subject: 'cvm.example', alt_names: ['cvm.example'], usage_server_auth: true,
		usage_ra_tls: true });
	assert.equal(r.status, 200, r.text);
	assert.equal(r.json.certificate_chain.length, 3);
	const [leaf, appCa, rootCa] = r.json.certificate_chain.map((p) => new crypto.X509Certificate(p));
	assert.ok(leaf.verify(appCa.publicKey) && appCa.verify(rootCa.publicKey) && rootCa.verify(rootCa.publicKey));
	assert.equal(leaf.subject, 'CN=cvm.example');
	assert.equal(leaf.subjectAltName, 'DNS:cvm.example');
	assert.ok(appCa.ca && rootCa.ca && !leaf.ca);
	const key = crypto.createPrivateKey(r.json.key);
	assert.equal(key.asymmetricKeyDetails.namedCurve, 'prime256v1');
	assert.ok(leaf.checkPrivateKey(key));
	assert.equal(toHex(rootCa.publicKey.export({ type: 'spki', format: 'der' })), caPubHex(),
		'the root CA is the key provider id measured into RTMR3');
	assert.deepEqual((await call('Version', {})).json, { version: '0.6.0', rev: 'dstack-sim' });
	assert.deepEqual((await call('GpuInfo', {})).json, { attestation: '' });
	const bad = await call('GetTlsKey', { not_before: 10, not_after: 5 });
	assert.equal(bad.status, 400);
	assert.equal(bad.json.error, 'not_before must be earlier than not_after');
});

test('the legacy tappd socket: Tappd.DeriveK256Key, RawQuote (64 bytes), TdxQuote, Info, Version', async () => {
	const k = await call('prpc/Tappd.DeriveK256Key', { path: 'p/a', purpose: 'x' }, tappd);
	const n = await call('GetKey', { path: 'p/a', purpose: 'x' });
	assert.equal(k.status, 200, k.text);
	assert.equal(k.json.k256_key, n.json.key);
	assert.deepEqual(k.json.k256_signature_chain, n.json.signature_chain);
	const rq = await call('prpc/Tappd.RawQuote', { report_data: 'ee'.repeat(64) }, tappd);
	assert.equal(rq.status, 200, rq.text);
	assert.equal(H(rq.json.quote).subarray(QUOTE_REPORT_DATA, QUOTE_REPORT_DATA + 64).toString('hex'), 'ee'.repeat(64));
	assert.equal(rq.json.hash_algorithm, 'raw');
	const short = await call('prpc/Tappd.RawQuote', { report_data: 'ee' }, tappd);
	assert.equal(short.status, 400, 'raw report data must be exactly 64 bytes');
	const tq = await call('prpc/Tappd.TdxQuote', { report_data: '01', hash_algorithm: 'sha256' }, tappd);
	assert.equal(tq.status, 200, tq.text);
	assert.equal(H(tq.json.quote).subarray(QUOTE_REPORT_DATA, QUOTE_REPORT_DATA + 32).toString('hex'),
		sha256hex(Buffer.from('app-data:'), H('01')));
	assert.equal((await call('prpc/Tappd.Info', {}, tappd)).json.app_id, contract.slice(2).toLowerCase());
	assert.equal((await call('prpc/Tappd.Version', {}, tappd)).status, 200);
	assert.equal((await call('GetKey', {}, tappd)).status, 404, 'tappd.sock serves /prpc/ only');
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
	const k = await call('GetKey', { path: purpose, purpose, algorithm: 'secp256k1' });
	assert.equal(j.public_key, toHex(compressedPub(fromHexN(k.json.key, 32, 'k'))));
	const got = verifyChain({
		purpose, derivedPub33: fromHexN(j.public_key, 33, 'pub'), appId20: fromHexN(contract, 20, 'a'),
		chain: j.signature_chain.map((s) => fromHexN(s, 65, 's')),
	});
	assert.equal(got.rootPub, rootPubHex());
});

test('the real dstack SDK: info, getKey, getQuote and its helpers, sign/verify, attest, getTlsKey, version', async () => {
	const { DstackClient, TappdClient, getComposeHash } = await import('@phala/dstack-sdk');
	const c = new DstackClient(sock);
	assert.ok(await c.isReachable());
	const info = await c.info();
	assert.equal(info.app_id, contract.slice(2).toLowerCase());
	assert.equal(info.tcb_info.compose_hash, composeHash.slice(2));
	assert.equal(typeof info.tcb_info.event_log, 'object');
	const k = await c.getKey('p/a', 'x');
	assert.equal(k.key.length, 32);
	assert.equal(toHex(k.key), (await call('GetKey', { path: 'p/a', purpose: 'x' })).json.key);
	assert.equal(verifyChain({ purpose: 'x', derivedPub33: compressedPub(k.key), appId20: fromHexN(contract, 20, 'a'),
		chain: k.signature_chain }).rootPub, rootPubHex());
	const q = await c.getQuote(Buffer.from('hello'));
	const rep = tdReport(H(q.quote));
	assert.equal(Buffer.from(rep.reportData).subarray(0, 5).toString(), 'hello');
	// replayRtmrs(): RTMR0-2 from the boot events' digests agree with the quote
	const rtmrs = q.replayRtmrs();
	for (let i = 0; i < 3; i++) assert.equal(rtmrs[i], toHex(rep.rtmr[i]), `SDK replay of RTMR${i}`);
	// ... RTMR3 does not: the agent strips runtime digests from GetQuote's log and the SDK replays
	// the empty digests as zeros (README.md, "The dstack SDK against the simulator")
	assert.notEqual(rtmrs[3], toHex(rep.rtmr[3]));
	const log = JSON.parse(q.event_log).filter((e) => e.imr === 3);
	assert.equal(replayHex(log.map((e) => digestV1(e.event, e.event_payload))), toHex(rep.rtmr[3]));
	// getComposeHash is sha256 of the compose's deterministic JSON; dstack measures the file's bytes
	assert.notEqual(getComposeHash(JSON.parse(info.tcb_info.app_compose)), info.compose_hash,
		'the demo compose is pretty-printed, not in the SDK\'s deterministic form');
	const s = await c.sign('secp256k1', 'deadbeef');
	assert.equal(s.signature_chain.length, 3);
	assert.equal((await c.verify('secp256k1', 'deadbeef', s.signature, s.public_key)).valid, true);
	const a = await c.attest(Buffer.from('x'));
	assert.match(a.attestation, /^0000/);
	const t = await c.getTlsKey({ subject: 'sdk.example', altNames: ['sdk.example'] });
	assert.equal(t.certificate_chain.length, 3);
	assert.equal((await c.version()).version, '0.6.0');
	// ed25519 keys need Version (OS >= 0.5.7), which the simulator answers
	assert.equal((await c.getKey('p/e', 'x', 'ed25519')).key.length, 32);
	// emitEvent: gone from the current agent; the SDK does not look at the error it gets back
	assert.equal(await c.emitEvent('x', 'y'), undefined);
	const tc = new TappdClient(tappd);
	const tq = await tc.tdxQuote(Buffer.alloc(64, 0xff), 'raw');
	assert.equal(tdReport(H(tq.quote)).reportData.every((b) => b === 0xff), true);
});

test('the SDK\'s getComposeHash agrees with the measured hash of a compose in its deterministic form', async () => {
	const { getComposeHash } = await import('@phala/dstack-sdk');
	const compose = JSON.parse(fs.readFileSync(COMPOSE, 'utf8'));
	const canonical = path.join(tmp, 'canonical-compose.json');
	const text = (function det(v) {
		if (Array.isArray(v)) return '[' + v.map(det).join(',') + ']';
		if (v && typeof v === 'object') return '{' + Object.keys(v).sort().map((k) => JSON.stringify(k) + ':' + det(v[k])).join(',') + '}';
		return JSON.stringify(v);
	})(compose);
	fs.writeFileSync(canonical, text);
	const s = path.join(tmp, 'canonical.sock');
	const p = startSim({ socket: s, composeHash: null, compose: canonical, args: ['--check-every-request'], log: 'c.log' });
	await waitFor(() => fs.existsSync(s), 10000, 'simulator on the canonical compose');
	const info = await agentCall(s, 'Info', {});
	assert.equal(getComposeHash(JSON.parse(JSON.parse(info.tcb_info).app_compose)), info.compose_hash);
	await stop(p);
});

test('boot refused by the KMS: another compose, an OS image not allowed, an app not registered, no chain', async () => {
	let r = await bootRefused({ composeHash: '0x' + '33'.repeat(32) });
	assert.equal(r.code, 3, r.out);
	assert.match(r.out, /boot refused by the KMS: .*App not allowed: Boot denied: compose hash not approved/);
	r = await bootRefused({ args: ['--os-image-hash', '0x' + '44'.repeat(32)] });
	assert.equal(r.code, 3, r.out);
	assert.match(r.out, /Boot denied: OS image is not allowed/);
	const unregistered = await deployApp(composeHash);
	r = await bootRefused({ appId: unregistered });
	assert.equal(r.code, 3, r.out);
	assert.match(r.out, /Boot denied: App not registered/);
	r = await bootRefused({ rpc: `http://127.0.0.1:${await freePort()}` });
	assert.equal(r.code, 3, r.out);
	assert.match(r.out, /App not allowed: cannot reach the chain RPC at/);
});

test('keys released at boot stand after a revocation; GetTlsKey (the KMS signs again) and a per-request CVM stop', async () => {
	const s2 = path.join(tmp, 'every.sock');
	const every = startSim({ socket: s2, args: ['--check-every-request'], log: 'every.log' });
	await waitFor(() => fs.existsSync(s2), 10000, 'per-request simulator');
	assert.equal((await call('GetKey', { path: 'p' }, s2)).status, 200);
	await send(contract, '0x' + abi['revoke()']);
	// the KMS decided at boot: the booted CVM keeps its app key (the FDW's own check must stop it)
	const k = await call('GetKey', { path: 'p', purpose: 'x' });
	assert.equal(k.status, 200, k.text);
	const t = await call('GetTlsKey', { subject: 'x' });
	assert.equal(t.status, 400);
	assert.equal(t.json.error, 'Failed to sign the CSR: Boot denied: revoked by an owner');
	const e = await call('GetKey', { path: 'p' }, s2);
	assert.equal(e.status, 400);
	assert.equal(e.json.error, 'App not allowed: Boot denied: revoked by an owner');
	const sg = await call('Sign', { algorithm: 'secp256k1', data: '00' }, s2);
	assert.equal(sg.status, 400);
	// the simulator writes its log through a stream: the lines may land after the answers
	const logged = (want) => fs.readFileSync(path.join(tmp, 'every.log'), 'utf8').trim().split('\n')
		.map((l) => JSON.parse(l)).some(want);
	await waitFor(() => logged((l) => l.path === '/GetKey' && l.status === 400 && l.decision === 'denied'), 5000,
		'the denied GetKey in the per-request log');
	assert.ok(logged((l) => l.path === '/GetKey' && l.status === 200 && l.decision === 'allowed'));
	await stop(every);
	assert.ok(!fs.existsSync(s2), 'socket removed on SIGTERM');
});
