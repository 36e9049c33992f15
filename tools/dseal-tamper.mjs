#!/usr/bin/env node
// tools/dseal-tamper.mjs: damage a .dseal file in controlled ways, for the
// tamper tests.  Independent of the C reader: it locates chunks through the
// trailer and the manifest itself.
//   dseal-tamper.mjs FILE flip-chunk RG COL        flip one ciphertext byte
//   dseal-tamper.mjs FILE swap-chunks RG COL1 COL2 swap two equal-length chunks
//   dseal-tamper.mjs FILE truncate N               cut N bytes off the end
//   dseal-tamper.mjs FILE edit-manifest OLD NEW    replace text in the manifest (same length)
//   dseal-tamper.mjs FILE flip-header BYTE [MASK]  xor header byte BYTE (0-15) with MASK (default 1)
//   dseal-tamper.mjs FILE resign KEYFILE PATH=JSON...
//        set manifest fields (dot paths, e.g. header.columns.0.type='"text"'), recompute the
//        header hash and re-sign with the owner key in KEYFILE: a manifest as consistently
//        signed as a dishonest owner (or a thief of the owner's key) could make it, so only
//        the checks that look at those fields can catch it
import fs from "node:fs";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { sha256 } from "@noble/hashes/sha2.js";

const [file, mode, ...args] = process.argv.slice(2);
if (!file || !mode) {
  console.error("usage: dseal-tamper.mjs FILE flip-chunk|swap-chunks|truncate|edit-manifest|flip-header|resign ...");
  process.exit(1);
}

// Canonical JSON as common/manifest.c writes it (jansson, JSON_COMPACT | JSON_SORT_KEYS |
// JSON_ENSURE_ASCII): keys sorted bytewise, no whitespace, '"' '\\' \b \f \n \r \t by name,
// other controls and non-ASCII as \uXXXX (upper-case hex, surrogate pairs), integers only.
function canonString(s) {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22) out += '\\"';
    else if (c === 0x5c) out += "\\\\";
    else if (c === 0x08) out += "\\b";
    else if (c === 0x0c) out += "\\f";
    else if (c === 0x0a) out += "\\n";
    else if (c === 0x0d) out += "\\r";
    else if (c === 0x09) out += "\\t";
    else if (c < 0x20 || c > 0x7f) out += "\\u" + c.toString(16).toUpperCase().padStart(4, "0");
    else out += s[i];
  }
  return out + '"';
}
function canon(v) {
  if (v === true) return "true";
  if (v === false) return "false";
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v)) throw new Error(`not an integer: ${v}`);
    return String(v);
  }
  if (typeof v === "string") return canonString(v);
  if (Array.isArray(v)) return "[" + v.map(canon).join(",") + "]";
  if (v && typeof v === "object") {
    const keys = Object.keys(v).sort((a, b) => Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8")));
    return "{" + keys.map((k) => canonString(k) + ":" + canon(v[k])).join(",") + "}";
  }
  throw new Error(`cannot encode ${v}`);
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
  case "flip-header": {
    const at = +args[0], mask = args[1] === undefined ? 1 : +args[1];
    if (!(at >= 0 && at < 16)) throw new Error("the header has bytes 0-15");
    buf[at] ^= mask;
    break;
  }
  case "resign": {
    const [keyfile, ...sets] = args;
    const sk = Buffer.from(fs.readFileSync(keyfile, "utf8").trim().replace(/^0x/, ""), "hex");
    for (const set of sets) {
      const eq = set.indexOf("=");
      if (eq < 0) throw new Error(`expected PATH=JSON, got ${set}`);
      const keys = set.slice(0, eq).split(".");
      let obj = manifest;
      for (const k of keys.slice(0, -1)) {
        if (!(k in obj)) throw new Error(`no field ${k} in ${set.slice(0, eq)}`);
        obj = obj[k];
      }
      obj[keys[keys.length - 1]] = JSON.parse(set.slice(eq + 1));
    }
    manifest.header_hash = Buffer.from(sha256(Buffer.from(canon(manifest.header)))).toString("hex");
    delete manifest.signature;
    const body = Buffer.from(canon(manifest));
    const digest = keccak_256(Buffer.concat([Buffer.from("\x19Ethereum Signed Message:\n32"), keccak_256(body)]));
    const rec = secp256k1.sign(digest, sk, { prehash: false, format: "recovered" }); // v || r || s
    manifest.signature = {
      scheme: "eip191-secp256k1",
      signer: manifest.header.owner_id,
      value: Buffer.concat([rec.subarray(1), rec.subarray(0, 1)]).toString("hex"),
    };
    const text = Buffer.from(canon(manifest));
    const tr = Buffer.alloc(24);
    tr.writeBigUInt64LE(BigInt(moff), 0);
    tr.writeBigUInt64LE(BigInt(text.length), 8);
    tr.write("DSEALEND", 16);
    fs.writeFileSync(file, Buffer.concat([buf.subarray(0, moff), text, tr]));
    process.exit(0);
  }
  default:
    throw new Error(`unknown mode ${mode}`);
}
fs.writeFileSync(file, buf);
