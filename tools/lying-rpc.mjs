#!/usr/bin/env node
// tools/lying-rpc.mjs: a JSON-RPC node that lies about the consortium's policy,
// for tests.  It forwards every request to an honest node and rewrites the
// answer to eth_call of policy() (selector keccak256("policy()")[0..4]) with
// the values given here; everything else passes through unchanged.  This is
// what a CVM operator's compromised or malicious node could do: the CVM must
// refuse it, because its policy comes from the measured app-compose.json.
//
//   node tools/lying-rpc.mjs --upstream URL --epsilon-milli N --min-group N
//        --privacy-unit TEXT [--output-type TEXT] [--port-file FILE]
//
// It listens on 127.0.0.1 only, on a free port; it prints its URL on stdout
// and, with --port-file, writes the port number there (written last, so a
// non-empty file means it is listening).  Each rewrite is logged on stderr.
// tools/testenv.sh starts it with --lying-rpc.
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
			'port-file': { type: 'string' },
		},
	}));
} catch (e) {
	die(e.message);
}
for (const k of ['upstream', 'epsilon-milli', 'min-group', 'privacy-unit'])
	if (opts[k] === undefined) die(`--${k} is required`);
for (const k of ['epsilon-milli', 'min-group'])
	if (!/^[0-9]+$/.test(opts[k])) die(`--${k} must be a non-negative integer`);

const selector = Buffer.from(keccak_256(new TextEncoder().encode('policy()')).subarray(0, 4)).toString('hex');

// ABI of (uint64 epsilonMilli, uint32 minGroupSize, string outputType, string privacyUnit):
// four head words (two values, two offsets from the start), then each string's length and padded bytes.
const word = (n) => BigInt(n).toString(16).padStart(64, '0');
function abiString(s) {
	const b = Buffer.from(s, 'utf8');
	return word(b.length) + Buffer.concat([b, Buffer.alloc((32 - (b.length % 32)) % 32)]).toString('hex');
}
const t1 = abiString(opts['output-type']);
const t2 = abiString(opts['privacy-unit']);
const lie = '0x' + word(opts['epsilon-milli']) + word(opts['min-group']) + word(128) + word(128 + t1.length / 2) + t1 + t2;

const isPolicyCall = (req) =>
	req && req.method === 'eth_call' && Array.isArray(req.params) && req.params[0] &&
	typeof (req.params[0].data ?? req.params[0].input) === 'string' &&
	(req.params[0].data ?? req.params[0].input).toLowerCase().startsWith('0x' + selector);

const server = http.createServer((req, res) => {
	const chunks = [];
	req.on('data', (c) => chunks.push(c));
	req.on('end', async () => {
		const body = Buffer.concat(chunks);
		let parsed = null;
		try {
			parsed = JSON.parse(body.toString('utf8'));
		} catch {
			// not JSON: forward as is, the node answers the error
		}
		const calls = Array.isArray(parsed) ? parsed : [parsed];
		const lieIds = new Set(calls.filter(isPolicyCall).map((c) => JSON.stringify(c.id)));
		try {
			const up = await fetch(opts.upstream, {
				method: 'POST', headers: { 'content-type': 'application/json' }, body,
			});
			let text = await up.text();
			if (lieIds.size > 0) {
				const answer = JSON.parse(text);
				for (const a of Array.isArray(answer) ? answer : [answer])
					if (a && lieIds.has(JSON.stringify(a.id)) && a.result !== undefined) {
						a.result = lie;
						process.stderr.write(`lying-rpc: policy() answered with the lie (id ${JSON.stringify(a.id)})\n`);
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

server.listen(0, '127.0.0.1', () => {
	const port = server.address().port;
	process.stdout.write(`http://127.0.0.1:${port}\n`);
	if (opts['port-file']) fs.writeFileSync(opts['port-file'], `${port}\n`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
