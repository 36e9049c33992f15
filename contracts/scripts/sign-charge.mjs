#!/usr/bin/env node
// contracts/scripts/sign-charge.mjs: sign a privacy-budget charge for ConsortiumApp.charge
// the way the analysis CVM does, with the guest agent's ledger key (GetKey at path and
// purpose "dstack-ledger/v1") and its dstack signature chain. A stand-in for the CVM in
// tests and a reference for the message layouts; the contract verifies the result.
//
//   node sign-charge.mjs (--socket PATH | --kms-root-key HEX) --app 0xADDR
//        (--chain-id N | --rpc URL) --epsilon-micro N --manifests 0xH1,0xH2,...
//        [--delta-pico N] [--query-hash 0xH] [--nonce 0xN] [--print-key]
//   node sign-charge.mjs (--socket PATH | --kms-root-key HEX) --app 0xADDR --address-only
//
// --socket asks a dstack guest agent (or tools/dstack-sim) for the key; --kms-root-key
// derives it from a KMS root secret as tools/dstack-sim does (tests without an agent).
// Prints one JSON object: {app, chainId, ledgerAddress, digest, request, sig} with every
// byte value as 0x-hex and the integers as decimal strings; with --print-key also
// ledgerKey (the derived private key: what the CVM pays gas with). --address-only prints
// the ledger account's address and nothing else.
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import {
	agentCall, appKey, appSignedMessage, compressedPub, concat, derivedKey, fromHexN, jsonRpc, keccak_256,
	kmsIssuedMessage, recoverSigner, secp256k1, signRecoverable, toHex,
} from '../../tools/dstack-sim/lib.mjs';

export const LEDGER_PURPOSE = 'dstack-ledger/v1';

function die(msg) {
	process.stderr.write(`sign-charge: ${msg}\n`);
	process.exit(1);
}

const hex0x = (b) => '0x' + toHex(b);

/** uncompressed x || y (64 bytes) of a compressed or uncompressed public key */
export function xy(pub) {
	return secp256k1.Point.fromBytes(pub).toBytes(false).subarray(1);
}

/** the Ethereum address of a public key: last 20 bytes of keccak256(x || y) */
export function address(pub) {
	return keccak_256(xy(pub)).subarray(12);
}

/** one ABI word holding an unsigned integer */
function word(n) {
	const w = new Uint8Array(32);
	let v = BigInt(n);
	if (v < 0n || v >= 1n << 256n) throw new Error(`${n} does not fit in a word`);
	for (let i = 31; i >= 0 && v > 0n; i--, v >>= 8n) w[i] = Number(v & 0xffn);
	return w;
}

/**
 * ConsortiumApp.chargeDigest, written out word by word:
 * keccak256(typehash ‖ app (left-padded) ‖ chainId ‖ queryHash ‖ epsilonMicro ‖ deltaPico ‖
 *           keccak256(manifestHashes concatenated) ‖ nonce), every member one 32-byte word.
 */
export function chargeDigest(app20, chainId, req) {
	const app = new Uint8Array(32);
	app.set(app20, 12);
	return keccak_256(concat(
		keccak_256(new TextEncoder().encode('dstack-ledger/v1 charge')),
		app, word(chainId), req.queryHash, word(req.epsilonMicro), word(req.deltaPico),
		keccak_256(concat(...req.manifestHashes)), req.nonce,
	));
}

/** the ledger key and its chain: from a guest agent, or derived from a KMS root like the simulator */
async function ledgerKey(o, app20) {
	if (o.socket) {
		const k = await agentCall(o.socket, 'GetKey', { path: LEDGER_PURPOSE, purpose: LEDGER_PURPOSE, algorithm: 'secp256k1' });
		if (!Array.isArray(k.signature_chain) || k.signature_chain.length !== 2)
			throw new Error('GetKey: signature_chain must have 2 entries');
		return { sk: fromHexN(k.key, 32, 'GetKey key'), chain: k.signature_chain.map((s) => fromHexN(s, 65, 'chain')) };
	}
	const root = fromHexN(o['kms-root-key'], 32, '--kms-root-key');
	const appSk = appKey(root, app20);
	const sk = derivedKey(appSk, LEDGER_PURPOSE);
	const chain0 = signRecoverable(appSk, appSignedMessage(LEDGER_PURPOSE, compressedPub(sk)));
	const chain1 = signRecoverable(root, kmsIssuedMessage(app20, compressedPub(appSk)));
	return { sk, chain: [chain0, chain1] };
}

async function main() {
	let o;
	try {
		o = parseArgs({
			options: {
				socket: { type: 'string' }, 'kms-root-key': { type: 'string' }, app: { type: 'string' },
				'chain-id': { type: 'string' }, rpc: { type: 'string' }, 'epsilon-micro': { type: 'string' },
				'delta-pico': { type: 'string' }, manifests: { type: 'string' }, 'query-hash': { type: 'string' },
				nonce: { type: 'string' }, 'print-key': { type: 'boolean' }, 'address-only': { type: 'boolean' },
			},
			strict: true,
		}).values;
	} catch (e) {
		die(e.message);
	}
	if (!o.socket === !o['kms-root-key']) die('give one of --socket and --kms-root-key');
	if (!o.app) die('--app is required');
	const app20 = fromHexN(o.app, 20, '--app');
	const { sk, chain } = await ledgerKey(o, app20);
	const derivedPub = compressedPub(sk);
	if (o['address-only']) {
		process.stdout.write(hex0x(address(derivedPub)) + '\n');
		return;
	}

	const uint = (name, bits, dflt) => {
		const s = o[name] ?? dflt;
		if (s === undefined) die(`--${name} is required`);
		if (!/^[0-9]+$/.test(s) || BigInt(s) >= 1n << BigInt(bits)) die(`--${name} must be an integer below 2^${bits}`);
		return BigInt(s);
	};
	let chainId;
	if (o['chain-id'] !== undefined) chainId = uint('chain-id', 256);
	else if (o.rpc) chainId = BigInt(await jsonRpc(o.rpc, 'eth_chainId', []));
	else die('give --chain-id or --rpc');
	if (!o.manifests) die('--manifests is required');
	const req = {
		queryHash: o['query-hash'] ? fromHexN(o['query-hash'], 32, '--query-hash') : randomBytes(32),
		epsilonMicro: uint('epsilon-micro', 64),
		deltaPico: uint('delta-pico', 64, '0'),
		manifestHashes: o.manifests.split(',').map((h) => fromHexN(h.trim(), 32, '--manifests')),
		nonce: o.nonce ? fromHexN(o.nonce, 32, '--nonce') : randomBytes(32),
	};
	const digest = chargeDigest(app20, chainId, req);

	// the chain must be for this purpose and key: recover the app key as the contract will
	const appPub = recoverSigner(chain[0], appSignedMessage(LEDGER_PURPOSE, derivedPub));
	recoverSigner(chain[1], kmsIssuedMessage(app20, appPub));
	const signature = secp256k1.sign(digest, sk, { prehash: false, format: 'recovered' });
	const out = {
		app: hex0x(app20),
		chainId: chainId.toString(),
		ledgerAddress: hex0x(address(derivedPub)),
		digest: hex0x(digest),
		request: {
			queryHash: hex0x(req.queryHash),
			epsilonMicro: req.epsilonMicro.toString(),
			deltaPico: req.deltaPico.toString(),
			manifestHashes: req.manifestHashes.map(hex0x),
			nonce: hex0x(req.nonce),
		},
		sig: {
			derivedPubkey: hex0x(xy(derivedPub)),
			appPubkey: hex0x(xy(appPub)),
			signature: hex0x(concat(signature.subarray(1, 65), [signature[0]])), // r ‖ s ‖ v (0/1)
			chain0: hex0x(chain[0]),
			chain1: hex0x(chain[1]),
		},
	};
	if (o['print-key']) out.ledgerKey = hex0x(sk);
	process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => die(e.message));
