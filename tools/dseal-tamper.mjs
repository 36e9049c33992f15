#!/usr/bin/env node
// tools/dseal-tamper.mjs: damage a .dseal file in controlled ways, for the
// tamper tests.  Independent of the C reader: it locates chunks through the
// trailer and the manifest itself.
//   dseal-tamper.mjs FILE flip-chunk RG COL        flip one ciphertext byte
//   dseal-tamper.mjs FILE swap-chunks RG COL1 COL2 swap two equal-length chunks
//   dseal-tamper.mjs FILE truncate N               cut N bytes off the end
//   dseal-tamper.mjs FILE edit-manifest OLD NEW    replace text in the manifest (same length)
import fs from "node:fs";

const [file, mode, ...args] = process.argv.slice(2);
if (!file || !mode) {
  console.error("usage: dseal-tamper.mjs FILE flip-chunk|swap-chunks|truncate|edit-manifest ...");
  process.exit(1);
}
const buf = fs.readFileSync(file);
const trailer = buf.subarray(buf.length - 24);
if (trailer.subarray(16).toString() !== "DSEALEND") throw new Error("no .dseal trailer");
const moff = Number(trailer.readBigUInt64LE(0));
const mlen = Number(trailer.readBigUInt64LE(8));
const manifest = JSON.parse(buf.subarray(moff, moff + mlen).toString());
const chunk = (rg, col) => manifest.row_groups[rg].chunks[col];

switch (mode) {
  case "flip-chunk": {
    const c = chunk(+args[0], +args[1]);
    buf[c.offset + Math.floor(c.length / 2)] ^= 0x01;
    break;
  }
  case "swap-chunks": {
    const a = chunk(+args[0], +args[1]), b = chunk(+args[0], +args[2]);
    if (a.length !== b.length) throw new Error(`chunks differ in length (${a.length} vs ${b.length})`);
    const ta = Buffer.from(buf.subarray(a.offset, a.offset + a.length));
    buf.copy(buf, a.offset, b.offset, b.offset + b.length);
    ta.copy(buf, b.offset);
    break;
  }
  case "truncate":
    fs.writeFileSync(file, buf.subarray(0, buf.length - +args[0]));
    process.exit(0);
  case "edit-manifest": {
    const [from, to] = args;
    if (from.length !== to.length) throw new Error("replacement must keep the length");
    const text = buf.subarray(moff, moff + mlen).toString();
    const at = text.indexOf(from);
    if (at < 0) throw new Error(`"${from}" not found in the manifest`);
    buf.write(to, moff + at);
    break;
  }
  default:
    throw new Error(`unknown mode ${mode}`);
}
fs.writeFileSync(file, buf);
