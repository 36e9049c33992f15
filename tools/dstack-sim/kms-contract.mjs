#!/usr/bin/env node
// tools/dstack-sim/kms-contract.mjs: dstack's KMS contract (DstackKms, vendored
// unchanged in contracts/dstack/) for the test chain: compiled with this repository's
// solc-js against the OpenZeppelin release dstack pins (installed under the npm
// aliases @openzeppelin/contracts-dstack and @openzeppelin/contracts-upgradeable-dstack),
// deployed behind an ERC1967Proxy as dstack deploys it, and set up the way the KMS
// operator sets it up (allowed OS image, KMS info).  Registering an app is the app
// owner's step: contracts/scripts/consortium.sh kms-register.
//
//   node kms-contract.mjs deploy --rpc URL --from ADDR             -> prints the KMS contract address
//   node kms-contract.mjs setup  --rpc URL --from ADDR --kms ADDR
//        [--os-image 0x<32 bytes>]... [--k256-pubkey HEX --ca-pubkey HEX]
//   node kms-contract.mjs abi                                      -> DstackKms ABI (JSON)
//
// --from is an unlocked account of the node (anvil's development accounts are) and,
// for setup, the owner the proxy was initialised with.  The compiled output is cached
// in contracts/dstack/out/ under the hash of the sources, compiler and settings.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { jsonRpc, keccak_256, sha256, toHex } from './lib.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const SRC = path.join(ROOT, 'contracts/dstack');
const NM = path.join(ROOT, 'node_modules');
const require = createRequire(import.meta.url);

// dstack's compiler settings for these contracts (contracts/dstack/README.md): optimizer, 200 runs, no via-IR
const SETTINGS = {
	optimizer: { enabled: true, runs: 200 },
	evmVersion: 'cancun',
	outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } },
};
const REMAP = [
	['@openzeppelin/contracts-upgradeable/', path.join(NM, '@openzeppelin/contracts-upgradeable-dstack/')],
	['@openzeppelin/contracts/', path.join(NM, '@openzeppelin/contracts-dstack/')],
];

function die(msg) {
	process.stderr.write(`kms-contract: ${msg}\n`);
	process.exit(2);
}

function findImport(p) {
	for (const [from, to] of REMAP)
		if (p.startsWith(from)) {
			const f = to + p.slice(from.length);
			return fs.existsSync(f) ? { contents: fs.readFileSync(f, 'utf8') } : { error: `not found: ${f}` };
		}
	const f = path.join(SRC, p);
	return fs.existsSync(f) ? { contents: fs.readFileSync(f, 'utf8') } : { error: `not found: ${p}` };
}

/** DstackKms and ERC1967Proxy: {abi, bytecode} each, compiled once per source hash. */
export function compile() {
	const solc = require('solc');
	const sources = { 'DstackKms.sol': { content: fs.readFileSync(path.join(SRC, 'DstackKms.sol'), 'utf8') } };
	const input = { language: 'Solidity', sources, settings: SETTINGS };
	const ozVersions = ['contracts-dstack', 'contracts-upgradeable-dstack'].map(
		(p) => require(path.join(NM, '@openzeppelin', p, 'package.json')).version);
	const key = toHex(sha256(new TextEncoder().encode(JSON.stringify([input, solc.version(), ozVersions,
		fs.readFileSync(path.join(SRC, 'IAppAuth.sol'), 'utf8')]))));
	const cache = path.join(SRC, 'out', `DstackKms.${key.slice(0, 16)}.json`);
	if (fs.existsSync(cache)) return JSON.parse(fs.readFileSync(cache, 'utf8'));
	const out = JSON.parse(solc.compile(JSON.stringify(input), { import: findImport }));
	const errs = (out.errors || []).filter((e) => e.severity === 'error');
	if (errs.length) throw new Error(errs.map((e) => e.formattedMessage).join('\n'));
	const pick = (file, name) => {
		const c = out.contracts[file][name];
		return { abi: c.abi, bytecode: c.evm.bytecode.object };
	};
	const result = {
		solc: solc.version(), openzeppelin: ozVersions,
		DstackKms: pick('DstackKms.sol', 'DstackKms'),
		ERC1967Proxy: pick('@openzeppelin/contracts/proxy/ERC1967/ERC1967Proxy.sol', 'ERC1967Proxy'),
	};
	fs.mkdirSync(path.dirname(cache), { recursive: true });
	fs.writeFileSync(cache + '.tmp', JSON.stringify(result));
	fs.renameSync(cache + '.tmp', cache);
	return result;
}

// ------------------------------------------------------------------ ABI
const word = (v) => BigInt(v).toString(16).padStart(64, '0');
const selector = (sig) => toHex(keccak_256(new TextEncoder().encode(sig)).subarray(0, 4));
const addrWord = (a) => {
	if (!/^0x[0-9a-fA-F]{40}$/.test(a)) die(`not an address: ${a}`);
	return a.slice(2).toLowerCase().padStart(64, '0');
};
const bytes32Word = (h) => {
	if (!/^0x[0-9a-fA-F]{64}$/.test(h)) die(`not 32 bytes of hex: ${h}`);
	return h.slice(2).toLowerCase();
};
function dynBytes(h) {
	const b = h.replace(/^0x/, '');
	return word(b.length / 2) + b.padEnd(Math.ceil(b.length / 64) * 64, '0');
}
/** A head of offsets then the tails, for n dynamic `bytes` values (a tuple or an argument list). */
function bytesTuple(values) {
	const tails = values.map(dynBytes);
	let off = 32 * values.length;
	const heads = tails.map((t) => {
		const h = word(off);
		off += t.length / 2;
		return h;
	});
	return heads.join('') + tails.join('');
}

// ------------------------------------------------------------------ chain
async function send(rpc, from, to, data) {
	const tx = { from, data: '0x' + data, gas: '0x1c9c380' };
	if (to) tx.to = to;
	const hash = await jsonRpc(rpc, 'eth_sendTransaction', [tx]);
	for (let i = 0; i < 200; i++) {
		const r = await jsonRpc(rpc, 'eth_getTransactionReceipt', [hash]);
		if (r) {
			if (r.status !== '0x1') throw new Error(`transaction ${hash} reverted`);
			return r;
		}
		await new Promise((res) => setTimeout(res, 50));
	}
	throw new Error(`transaction ${hash} not mined`);
}

export async function deploy(rpc, from) {
	const c = compile();
	const impl = (await send(rpc, from, null, c.DstackKms.bytecode)).contractAddress;
	// initialize(owner, no DstackApp implementation): the app contracts are the apps' own
	const init = selector('initialize(address,address)') + addrWord(from) + word(0);
	const ctor = addrWord(impl) + word(64) + word(init.length / 2) + init.padEnd(Math.ceil(init.length / 64) * 64, '0');
	return (await send(rpc, from, null, c.ERC1967Proxy.bytecode + ctor)).contractAddress;
}

export async function setup(rpc, from, kms, { osImages = [], k256Pubkey, caPubkey }) {
	for (const h of osImages) await send(rpc, from, kms, selector('addOsImageHash(bytes32)') + bytes32Word(h));
	if (k256Pubkey !== undefined) {
		// KmsInfo{k256Pubkey, caPubkey, quote, eventlog}: the simulated KMS has no quote of its own
		const info = bytesTuple([k256Pubkey, caPubkey ?? '', '', '']);
		await send(rpc, from, kms, selector('setKmsInfo((bytes,bytes,bytes,bytes))') + word(32) + info);
	}
}

async function main() {
	const [cmd, ...rest] = process.argv.slice(2);
	let o;
	try {
		o = parseArgs({
			args: rest,
			options: {
				rpc: { type: 'string' }, from: { type: 'string' }, kms: { type: 'string' },
				'os-image': { type: 'string', multiple: true }, 'k256-pubkey': { type: 'string' },
				'ca-pubkey': { type: 'string' },
			},
		}).values;
	} catch (e) {
		die(e.message);
	}
	if (cmd === 'abi') {
		process.stdout.write(JSON.stringify(compile().DstackKms.abi) + '\n');
		return;
	}
	if (!o.rpc || !o.from) die('--rpc and --from are required');
	if (cmd === 'deploy') {
		process.stdout.write(`${await deploy(o.rpc, o.from)}\n`);
	} else if (cmd === 'setup') {
		if (!o.kms) die('--kms is required');
		await setup(o.rpc, o.from, o.kms, {
			osImages: o['os-image'] ?? [], k256Pubkey: o['k256-pubkey'], caPubkey: o['ca-pubkey'],
		});
	} else die(`unknown command ${cmd ?? '(none)'}: deploy, setup or abi`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url))
	main().catch((e) => die(e.message));
