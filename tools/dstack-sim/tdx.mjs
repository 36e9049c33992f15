// tools/dstack-sim/tdx.mjs: the TDX side of the simulator, from the dstack sources
// (README.md, "Sources matched"): the captured attestation it starts from, dstack's
// runtime-event digests and RTMR replay, the quote it hands out (the captured one with
// report_data, MRCONFIGID and RTMR3 replaced and the simulation marker set), dstack's
// mr_system / mr_aggregated, and the SCALE encoding of an Attest answer.
import fs from 'node:fs';
import { sha256, sha384 } from '@noble/hashes/sha2.js';
import { keccak_256 } from '@noble/hashes/sha3.js';

const enc = new TextEncoder();
const hex = (b) => Buffer.from(b).toString('hex');
const cat = (...parts) => new Uint8Array(Buffer.concat(parts.map((p) => Buffer.from(p))));

/** dstack's event type for runtime (RTMR3) events. */
export const DSTACK_RUNTIME_EVENT_TYPE = 0x08000001;

// TDX quote v4 layout: 48-byte header, 584-byte TD report (TDX 1.0), then the
// signature data length (u32) and the signature data.
export const QUOTE_HEADER_LEN = 48;
export const QUOTE_BODY_LEN = 584;
export const QUOTE_MRTD = 48 + 136;
export const QUOTE_MRCONFIGID = 48 + 184;
export const QUOTE_MROWNER = 48 + 232;
export const QUOTE_MROWNERCONFIG = 48 + 280;
export const QUOTE_RTMR0 = 48 + 328;
export const QUOTE_REPORT_DATA = 48 + 520;
export const QUOTE_SIG_LEN = 632;

/**
 * The simulation marker: the header's 20-byte QE "user data" field (offset 28) holds
 * "DSTACK-SIMULATED" and four zero bytes.  Intel's quoting enclave writes its QE
 * identifier there; the marker replaces it, so the quote cannot pass for one from a
 * quoting enclave (its signature does not verify either: report_data, MRCONFIGID and
 * RTMR3 were changed after it was signed).  common/tdx_quote.h reads the same marker.
 */
export const SIM_MARKER = 'DSTACK-SIMULATED';
export const SIM_MARKER_OFFSET = 28;

export function isSimulatedQuote(q) {
	if (q.length < QUOTE_HEADER_LEN) return false;
	const b = Buffer.from(q);
	return b.readUInt16LE(0) === 4 && b.readUInt32LE(4) === 0x81 &&
		b.subarray(SIM_MARKER_OFFSET, SIM_MARKER_OFFSET + 16).toString('latin1') === SIM_MARKER &&
		b.readUInt32LE(SIM_MARKER_OFFSET + 16) === 0;
}

// ------------------------------------------------------------------ SCALE
class ScaleReader {
	constructor(buf) {
		this.b = Buffer.from(buf);
		this.o = 0;
	}
	need(n) {
		if (this.o + n > this.b.length) throw new Error('attestation fixture: truncated SCALE data');
	}
	u8() {
		this.need(1);
		return this.b[this.o++];
	}
	u32() {
		this.need(4);
		const v = this.b.readUInt32LE(this.o);
		this.o += 4;
		return v;
	}
	compact() {
		this.need(1);
		const m = this.b[this.o] & 3;
		if (m === 0) return this.b[this.o++] >> 2;
		if (m === 1) {
			this.need(2);
			const v = this.b.readUInt16LE(this.o) >> 2;
			this.o += 2;
			return v;
		}
		if (m === 2) {
			this.need(4);
			const v = this.b.readUInt32LE(this.o) >>> 2;
			this.o += 4;
			return v;
		}
		throw new Error('attestation fixture: compact integer too large');
	}
	bytes(n = this.compact()) {
		this.need(n);
		const r = new Uint8Array(this.b.subarray(this.o, this.o + n));
		this.o += n;
		return r;
	}
	str() {
		return Buffer.from(this.bytes()).toString('utf8');
	}
}

function compact(n) {
	if (n < 1 << 6) return Uint8Array.of(n << 2);
	if (n < 1 << 14) {
		const b = Buffer.alloc(2);
		b.writeUInt16LE((n << 2) | 1);
		return b;
	}
	if (n < 1 << 30) {
		const b = Buffer.alloc(4);
		b.writeUInt32LE(((n << 2) | 2) >>> 0);
		return b;
	}
	throw new Error('SCALE: length too large');
}
const scaleBytes = (b) => cat(compact(b.length), b);
const scaleStr = (s) => scaleBytes(enc.encode(s));
const u32le = (v) => {
	const b = Buffer.alloc(4);
	b.writeUInt32LE(v >>> 0);
	return b;
};

/**
 * Read a dstack VersionedAttestation::V0 (legacy SCALE: variant 0, AttestationQuote
 * ::DstackTdx { quote, event_log: Vec<TdxEvent> }, runtime_events: Vec<RuntimeEvent>,
 * report_data: [u8; 64], config: String), the format of dstack's simulator fixture.
 */
export function decodeAttestationV0(buf) {
	const r = new ScaleReader(buf);
	if (r.u8() !== 0) throw new Error('attestation fixture: not a VersionedAttestation::V0');
	if (r.u8() !== 0) throw new Error('attestation fixture: not a DstackTdx attestation');
	const quote = r.bytes();
	const events = [];
	for (let i = 0, n = r.compact(); i < n; i++)
		events.push({ imr: r.u32(), event_type: r.u32(), digest: r.bytes(), event: r.str(), event_payload: r.bytes() });
	const runtimeEvents = [];
	for (let i = 0, n = r.compact(); i < n; i++) runtimeEvents.push({ event: r.str(), payload: r.bytes() });
	const reportData = r.bytes(64);
	const config = r.str();
	if (r.o !== r.b.length) throw new Error('attestation fixture: trailing bytes');
	return { quote, events, runtimeEvents, reportData, config };
}

/** The same encoding, for Attest: one V1-digest TDX attestation with its full event log. */
export function encodeAttestationV0({ quote, events, runtimeEvents, reportData, config }) {
	const evs = events.map((e) =>
		cat(u32le(e.imr), u32le(e.event_type), scaleBytes(e.digest), scaleStr(e.event), scaleBytes(e.event_payload)));
	const rts = runtimeEvents.map((e) => cat(scaleStr(e.event), scaleBytes(e.payload)));
	return cat([0, 0], scaleBytes(quote), compact(evs.length), ...evs, compact(rts.length), ...rts, reportData,
		scaleStr(config));
}

// ------------------------------------------------------------------ runtime events
/**
 * The digest preimage of a dstack runtime event: V1 (the default) is
 * u32le(0x08000001) ":" name ":" payload; V2 (compose "event_log_version": 2) the JCS
 * canonical JSON {"name","payload" (hex),"type"}.
 */
export function eventPreimage(name, payload, version = 1) {
	if (version === 2)
		return enc.encode(`{"name":${JSON.stringify(name)},"payload":"${hex(payload)}","type":${DSTACK_RUNTIME_EVENT_TYPE}}`);
	return cat(u32le(DSTACK_RUNTIME_EVENT_TYPE), enc.encode(':'), enc.encode(name), enc.encode(':'), payload);
}

export function eventDigest(name, payload, version = 1) {
	return sha384(eventPreimage(name, payload, version));
}

/** RTMR replay: mr = sha384(mr ‖ digest) from 48 zero bytes. */
export function replay(digests) {
	let mr = new Uint8Array(48);
	for (const d of digests) mr = sha384(cat(mr, d));
	return mr;
}

/** A runtime event as dstack's TdxEvent (imr 3) with its digest. */
export function runtimeEvent(name, payload, version = 1) {
	return { imr: 3, event_type: DSTACK_RUNTIME_EVENT_TYPE, digest: eventDigest(name, payload, version), event: name,
		event_payload: payload, version };
}

/** serde's JSON of a TdxEvent: hex byte fields, "version"/"preimage" only for V2. */
export function eventJson(e, { strip = false } = {}) {
	const runtime = e.event_type === DSTACK_RUNTIME_EVENT_TYPE;
	const o = {
		imr: e.imr, event_type: e.event_type,
		// GetQuote's event log is stripped as the agent strips it: boot events keep their
		// digest only (the ACPI data markers keep their payload), runtime events their payload
		digest: strip && runtime ? '' : hex(e.digest),
		event: e.event,
		event_payload: strip && !runtime && !isAcpiDataEvent(e) ? '' : hex(e.event_payload),
	};
	if (runtime && e.version === 2) {
		o.version = 2;
		o.preimage = hex(eventPreimage(e.event, e.event_payload, 2));
	}
	return o;
}

function isAcpiDataEvent(e) {
	return e.imr === 0 && e.event_type === 10 && Buffer.from(e.event_payload).toString('latin1') === 'ACPI DATA';
}

// ------------------------------------------------------------------ the quote
/**
 * The captured quote with report_data, MRCONFIGID and RTMR3 replaced and the marker
 * set; everything else (header, MRTD, RTMR0-2, TCB SVNs, signature data and any bytes
 * after it) stays byte for byte as captured.
 */
export function simulatedQuote(captured, { reportData, mrConfigId, rtmr3 }) {
	const q = Buffer.from(captured);
	if (q.length < QUOTE_SIG_LEN + 4 || q.readUInt16LE(0) !== 4 || q.readUInt32LE(4) !== 0x81)
		throw new Error('attestation fixture: not a TDX v4 quote');
	Buffer.from(SIM_MARKER + '\0\0\0\0', 'latin1').copy(q, SIM_MARKER_OFFSET);
	Buffer.from(mrConfigId).copy(q, QUOTE_MRCONFIGID);
	Buffer.from(rtmr3).copy(q, QUOTE_RTMR0 + 3 * 48);
	Buffer.from(reportData).copy(q, QUOTE_REPORT_DATA);
	return new Uint8Array(q);
}

/** The TD report fields of a quote. */
export function tdReport(q) {
	const b = Buffer.from(q);
	const f = (o) => new Uint8Array(b.subarray(o, o + 48));
	return {
		mrtd: f(QUOTE_MRTD), mrConfigId: f(QUOTE_MRCONFIGID), mrOwner: f(QUOTE_MROWNER),
		mrOwnerConfig: f(QUOTE_MROWNERCONFIG),
		rtmr: [0, 1, 2, 3].map((i) => f(QUOTE_RTMR0 + 48 * i)),
		reportData: new Uint8Array(b.subarray(QUOTE_REPORT_DATA, QUOTE_REPORT_DATA + 64)),
	};
}

/** MRCONFIGID as dstack's VMM sets it: V1 = 0x01 ‖ compose_hash, zero-padded to 48. */
export function mrConfigIdV1(composeHash) {
	const m = new Uint8Array(48);
	m[0] = 1;
	m.set(composeHash, 1);
	return m;
}

/** MrConfig V2: 0x02 ‖ keccak256(compose_hash ‖ app_id ‖ provider kind (kms = 2) ‖ provider id). */
export function mrConfigIdV2(composeHash, appId, keyProviderId) {
	const m = new Uint8Array(48);
	m[0] = 2;
	m.set(keccak_256(cat(composeHash, appId, [2], keyProviderId)), 1);
	return m;
}

const zero48 = (b) => b.every((x) => x === 0);

/**
 * dstack's TDX mr_system and mr_aggregated (decode_mr_tdx_from_quote):
 *   mr_system     = sha256(MRTD ‖ RTMR0 ‖ RTMR1 ‖ RTMR2 ‖ mr_key_provider)
 *   mr_aggregated = sha256(MRTD ‖ RTMR0..3 [‖ MRCONFIGID ‖ MROWNER ‖ MROWNERCONFIG])
 * mr_key_provider is sha256 of the key-provider event's payload, 32 zero bytes without
 * one; the three config registers join only when one of them is not zero.
 */
export function measurements({ mrtd, rtmr, mrConfigId, mrOwner, mrOwnerConfig }, keyProviderInfo) {
	const mrKeyProvider = keyProviderInfo && keyProviderInfo.length ? sha256(keyProviderInfo) : new Uint8Array(32);
	const mrSystem = sha256(cat(mrtd, rtmr[0], rtmr[1], rtmr[2], mrKeyProvider));
	const parts = [mrtd, rtmr[0], rtmr[1], rtmr[2], rtmr[3]];
	if (!zero48(mrConfigId) || !zero48(mrOwner) || !zero48(mrOwnerConfig)) parts.push(mrConfigId, mrOwner, mrOwnerConfig);
	return { mrSystem, mrAggregated: sha256(cat(...parts)) };
}

/** Load and check the captured attestation: every RTMR of its quote must replay from its log. */
export function loadFixture(path) {
	const a = decodeAttestationV0(fs.readFileSync(path));
	const rep = tdReport(a.quote);
	for (let i = 0; i < 4; i++) {
		const digests = a.events.filter((e) => e.imr === i).map((e) =>
			e.event_type === DSTACK_RUNTIME_EVENT_TYPE ? eventDigest(e.event, e.event_payload) : e.digest);
		if (hex(replay(digests)) !== hex(rep.rtmr[i]))
			throw new Error(`attestation fixture: RTMR${i} does not replay from its event log`);
	}
	const sys = JSON.parse(a.config);
	const vm = JSON.parse(sys.vm_config);
	return { ...a, report: rep, sysConfig: sys, vmConfig: sys.vm_config, osImageHash: vm.os_image_hash };
}
