#!/usr/bin/env node
// tools/dstack-sim/recipient-key.mjs: what a CVM publishes to a silo for one owner:
// the public half of GetKey("dstack-seal/v1/<owner>") and its dstack signature chain.
//   node recipient-key.mjs --socket PATH --owner 0xADDR
// Prints {"public_key", "signature_chain", "purpose", "app_id"}; exits 1 when refused.
import { parseArgs } from 'node:util';
import { agentCall, compressedPub, fromHexN, toHex } from './lib.mjs';

function die(msg) {
	process.stderr.write(`recipient-key: ${msg}\n`);
	process.exit(1);
}

async function main() {
	let o;
	try {
		o = parseArgs({ options: { socket: { type: 'string' }, owner: { type: 'string' } }, strict: true }).values;
	} catch (e) {
		die(e.message);
	}
	if (!o.socket || !o.owner) die('usage: recipient-key.mjs --socket PATH --owner 0xADDR');
	let owner;
	try {
		owner = toHex(fromHexN(o.owner, 20, '--owner'));
	} catch (e) {
		die(e.message);
	}
	const purpose = `dstack-seal/v1/${owner}`;
	try {
		const info = await agentCall(o.socket, 'Info', {});
		const k = await agentCall(o.socket, 'GetKey', { path: purpose, purpose, algorithm: 'secp256k1' });
		const sk = fromHexN(k.key, 32, 'GetKey key');
		if (!Array.isArray(k.signature_chain) || k.signature_chain.length !== 2)
			throw new Error('GetKey: signature_chain must have 2 entries');
		const out = {
			public_key: toHex(compressedPub(sk)),
			signature_chain: k.signature_chain.map((s) => toHex(fromHexN(s, 65, 'signature'))),
			purpose,
			app_id: '0x' + String(info.app_id).replace(/^0x/, '').toLowerCase(),
		};
		process.stdout.write(JSON.stringify(out) + '\n');
	} catch (e) {
		die(e.message);
	}
}

main();
