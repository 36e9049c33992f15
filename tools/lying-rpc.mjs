#!/usr/bin/env node
// tools/lying-rpc.mjs: a JSON-RPC node for tests that forwards every request to an
// honest node and may lie about the answers.  This is what a CVM operator's
// compromised or malicious node could do: the CVM must refuse it, or outvote it
// with other nodes (server options rpc_url with several nodes and rpc_quorum).
//
//   node tools/lying-rpc.mjs --upstream URL [lies...] [--port-file FILE | --socket PATH]
//
// Lies (none: an honest second node, forwarding unchanged):
//   --epsilon-milli N --min-group N --privacy-unit TEXT [--output-type TEXT]
//                         answer the consortium's policy() with these values
//   --hide-revocation     answer revoked() with false, revokedBy() with the zero address,
//                         revokeReason() with "", isApproved() with true and
//                         isAppAllowed(...) (of any contract) with (true, "")
//   --chain-id N          answer eth_chainId with N
//   --chain-id-in-read N  answer eth_chainId with N only inside a batch that reads the
//                         contract (with eth_call): the truth first, then another chain
//   --hang                read each request and never answer (a node that stalls)
//   --on-send CMD         before forwarding each eth_sendRawTransaction, run the shell
//                         command CMD and wait for it: a host that acts at the moment
//                         the CVM charges the ledger (swaps a dataset file, say)
//
// It listens on 127.0.0.1 only, on a free port; it prints its URL on stdout and,
// with --port-file, writes the port number there (written last, so a non-empty file
// means it is listening).  With --socket it listens on that Unix socket instead (with
// --hang: a stalled dstack guest agent).  Each rewrite is logged on stderr.
// tools/testenv.sh starts it with --lying-rpc and --rpc-node.
import { execSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import { parseArgs } from 'node:util';
import { keccak_256 } from '@noble/hashes/sha3.js';

function die(msg) {
	process.stderr.write(`lying-rpc: ${msg}\n`);
	process.exit(2);
}

let opts;
try {
	({ values: opts } = parseArgs({
		options: {
			upstream: { type: 'string' }, 'epsilon-milli': { type: 'string' }, 'min-group': { type: 'string' },
			'privacy-unit': { type: 'string' }, 'output-type': { type: 'string', default: 'dp-aggregate' },
			'hide-revocation': { type: 'boolean' }, 'chain-id': { type: 'string' }, hang: { type: 'boolean' },
			'chain-id-in-read': { type: 'string' },
			'port-file': { type: 'string' }, socket: { type: 'string' }, 'on-send': { type: 'string' },
		},
	}));
} catch (e) {
	die(e.message);
}
if (!opts.upstream && !opts.hang) die('--upstream is required');
const policyLie = ['epsilon-milli', 'min-group', 'privacy-unit'].filter((k) => opts[k] !== undefined);
if (policyLie.length !== 0 && policyLie.length !== 3) die('--epsilon-milli, --min-group and --privacy-unit go together');
for (const k of ['epsilon-milli', 'min-group', 'chain-id', 'chain-id-in-read'])
	if (opts[k] !== undefined && !/^[0-9]+$/.test(opts[k])) die(`--${k} must be a non-negative integer`);

const sel = (sig) => Buffer.from(keccak_256(new TextEncoder().encode(sig)).subarray(0, 4)).toString('hex');
const word = (n) => BigInt(n).toString(16).padStart(64, '0');
function abiString(s) {
	const b = Buffer.from(s, 'utf8');
	return word(b.length) + Buffer.concat([b, Buffer.alloc((32 - (b.length % 32)) % 32)]).toString('hex');
}

// eth_call answers to rewrite, by selector
const callLies = new Map();
if (policyLie.length) {
	// (uint64 epsilonMilli, uint32 minGroupSize, string outputType, string privacyUnit):
	// four head words (two values, two offsets from the start), then each string
	const t1 = abiString(opts['output-type']);
	const t2 = abiString(opts['privacy-unit']);
	callLies.set(sel('policy()'), ['policy()',
		'0x' + word(opts['epsilon-milli']) + word(opts['min-group']) + word(128) + word(128 + t1.length / 2) + t1 + t2]);
}
if (opts['hide-revocation']) {
	callLies.set(sel('revoked()'), ['revoked()', '0x' + word(0)]);
	callLies.set(sel('revokedBy()'), ['revokedBy()', '0x' + word(0)]);
	callLies.set(sel('revokeReason()'), ['revokeReason()', '0x' + word(32) + word(0)]);
	callLies.set(sel('isApproved()'), ['isApproved()', '0x' + word(1)]);
	callLies.set(sel('isAppAllowed((address,bytes32,address,bytes32,bytes32,bytes32,bytes32,string,string[]))'),
		['isAppAllowed()', '0x' + word(1) + word(64) + word(0)]);
}

function lieFor(req, batch) {
	if (!req || typeof req !== 'object') return null;
	if (req.method === 'eth_chainId' && opts['chain-id'] !== undefined)
		return ['eth_chainId', '0x' + BigInt(opts['chain-id']).toString(16)];
	if (req.method === 'eth_chainId' && opts['chain-id-in-read'] !== undefined &&
		batch.some((c) => c && c.method === 'eth_call'))
		return ['eth_chainId (in a read)', '0x' + BigInt(opts['chain-id-in-read']).toString(16)];
	if (req.method !== 'eth_call' || !Array.isArray(req.params) || !req.params[0]) return null;
	const data = req.params[0].data ?? req.params[0].input;
	if (typeof data !== 'string') return null;
	return callLies.get(data.toLowerCase().replace(/^0x/, '').slice(0, 8)) ?? null;
}

const server = http.createServer((req, res) => {
	const chunks = [];
	req.on('data', (c) => chunks.push(c));
	req.on('end', async () => {
		if (opts.hang) return; // keep the connection open, answer nothing
		const body = Buffer.concat(chunks);
		let parsed = null;
		try {
			parsed = JSON.parse(body.toString('utf8'));
		} catch {
			// not JSON: forward as is, the node answers the error
		}
		const calls = Array.isArray(parsed) ? parsed : [parsed];
		if (opts['on-send'] && calls.some((c) => c && c.method === 'eth_sendRawTransaction')) {
			try {
				execSync(opts['on-send'], { stdio: ['ignore', 'ignore', 'inherit'] });
				process.stderr.write(`lying-rpc: ran --on-send before forwarding a transaction\n`);
			} catch (e) {
				process.stderr.write(`lying-rpc: --on-send failed: ${e.message}\n`);
			}
		}
		const lies = new Map();
		for (const c of calls) {
			const l = lieFor(c, calls);
			if (l) lies.set(JSON.stringify(c.id), l);
		}
		try {
			const up = await fetch(opts.upstream, {
				method: 'POST', headers: { 'content-type': 'application/json' }, body,
			});
			let text = await up.text();
			if (lies.size > 0) {
				const answer = JSON.parse(text);
				for (const a of Array.isArray(answer) ? answer : [answer]) {
					const l = a && lies.get(JSON.stringify(a.id));
					if (l && a.result !== undefined) {
						a.result = l[1];
						process.stderr.write(`lying-rpc: ${l[0]} answered with the lie (id ${JSON.stringify(a.id)})\n`);
					}
				}
				text = JSON.stringify(answer);
			}
			res.writeHead(up.status, { 'content-type': 'application/json' });
			res.end(text);
		} catch (e) {
			res.writeHead(502, { 'content-type': 'application/json' });
			res.end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32000, message: `upstream: ${e.message}` } }));
		}
	});
});

if (opts.socket) {
	try {
		fs.unlinkSync(opts.socket);
	} catch {}
	server.listen(opts.socket, () => {
		fs.chmodSync(opts.socket, 0o777);
		process.stdout.write(`${opts.socket}\n`);
		if (opts['port-file']) fs.writeFileSync(opts['port-file'], `${opts.socket}\n`);
	});
} else
	server.listen(0, '127.0.0.1', () => {
		const port = server.address().port;
		process.stdout.write(`http://127.0.0.1:${port}\n`);
		if (opts['port-file']) fs.writeFileSync(opts['port-file'], `${port}\n`);
	});
for (const sig of ['SIGTERM', 'SIGINT'])
	process.on(sig, () => {
		if (opts.socket)
			try {
				fs.unlinkSync(opts.socket);
			} catch {}
		process.exit(0);
	});
