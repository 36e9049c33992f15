#!/usr/bin/env node
// tools/dseal-id.mjs FILE.dseal: print the dataset id and the manifest hash of
// a sealed file, "0x<16 bytes> 0x<32 bytes>", as its owner registers them on
// the consortium contract (docs/format.md: the trailer gives the manifest's
// offset and length; the manifest hash is SHA-256 of those bytes).  Keyless.
import fs from 'node:fs';
import crypto from 'node:crypto';

const file = process.argv[2];
if (!file) {
	console.error('usage: dseal-id.mjs FILE.dseal');
	process.exit(2);
}
const fd = fs.openSync(file, 'r');
const size = fs.fstatSync(fd).size;
const trailer = Buffer.alloc(24);
if (size < 24 || fs.readSync(fd, trailer, 0, 24, size - 24) !== 24 || trailer.toString('latin1', 16, 24) !== 'DSEALEND') {
	console.error(`dseal-id: ${file} is not a sealed dataset (no DSEALEND trailer)`);
	process.exit(1);
}
const off = Number(trailer.readBigUInt64LE(0));
const len = Number(trailer.readBigUInt64LE(8));
if (off + len + 24 > size) {
	console.error(`dseal-id: ${file}: the trailer points past the end of the file`);
	process.exit(1);
}
const manifest = Buffer.alloc(len);
fs.readSync(fd, manifest, 0, len, off);
const m = JSON.parse(manifest.toString('utf8'));
const id = m.header?.dataset_id;
if (!/^[0-9a-f]{32}$/.test(id ?? '')) {
	console.error(`dseal-id: ${file}: the manifest has no 16-byte dataset_id`);
	process.exit(1);
}
console.log(`0x${id} 0x${crypto.createHash('sha256').update(manifest).digest('hex')}`);
