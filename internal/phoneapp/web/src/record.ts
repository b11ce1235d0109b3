// Records exactly as api/SPEC.md says: bodies (section 2), signatures over
// "doorstep-record-v1\n" ‖ body (section 1), author chains (section 4),
// the hybrid clock, receipt codes (section 6.5), device ids (section 3) and
// call signatures v2 (section 5).

import { create, toBinary, fromBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  RecordSchema,
  SignedRecordSchema,
  type Record as DRecord,
  type SignedRecord,
} from "./gen/doorstep/v1/record_pb.js";
import { concat, randomBytes, sha256, toBase64Raw, toBase64URLRaw, toHex, utf8 } from "./bytes.js";
import { sign, verify, type DeviceKey } from "./ed25519.js";

export const FORMAT_VERSION = 1;
export const RECORD_PREFIX = utf8("doorstep-record-v1\n");
export const CALL_PREFIX = "doorstep-call-v2\n";

/** signedBytes is what a record signature covers. */
export function signedBytes(body: Uint8Array): Uint8Array {
  return concat(RECORD_PREFIX, body);
}

/** bodyHash links an author's chain: SHA-256 of the body as signed. */
export function bodyHash(body: Uint8Array): Promise<Uint8Array> {
  return sha256(body);
}

/** verifyRecord checks a signed record's signature under ZIP-215, before anything reads the body. */
export function verifyRecord(pub: Uint8Array, sr: SignedRecord): Promise<boolean> {
  return verify(pub, signedBytes(sr.body), sr.signature);
}

/** decodeRecord reads a body; call it only after verifyRecord. */
export function decodeRecord(body: Uint8Array): DRecord {
  const rec = fromBinary(RecordSchema, body);
  if (rec.formatVersion !== FORMAT_VERSION) throw new Error(`record format ${rec.formatVersion} is not version ${FORMAT_VERSION}`);
  return rec;
}

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/** receiptCode is the household's code for a signed ballot: 50 bits of SHA-256(body ‖ signature). */
export async function receiptCode(body: Uint8Array, signature: Uint8Array): Promise<string> {
  const d = await sha256(body, signature);
  let bits = 0n;
  for (let i = 0; i < 8; i++) bits = (bits << 8n) | BigInt(d[i]);
  let code = "";
  for (let i = 0; i < 10; i++) {
    if (i === 5) code += "-";
    code += CROCKFORD[Number((bits >> BigInt(64 - 5 * (i + 1))) & 0x1fn)];
  }
  return code;
}

/** deviceId is "dv-" and the hex of the first 8 bytes of SHA-256(public key). */
export async function deviceId(pub: Uint8Array): Promise<string> {
  return "dv-" + toHex((await sha256(pub)).slice(0, 8));
}

/** uuidv7 makes a record id (RFC 9562) for the time ms. */
export function uuidv7(ms: number): string {
  const b = randomBytes(16);
  let t = BigInt(ms);
  for (let i = 5; i >= 0; i--) {
    b[i] = Number(t & 0xffn);
    t >>= 8n;
  }
  b[6] = (b[6] & 0x0f) | 0x70;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = toHex(b);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** HybridClock is the author's clock: wall ms << 16 plus a counter; it only grows. */
export class HybridClock {
  constructor(public last: bigint = 0n) {}
  now(wallMs: number): bigint {
    const wall = BigInt(Math.floor(wallMs)) << 16n;
    this.last = wall > this.last ? wall : this.last + 1n;
    return this.last;
  }
  observe(v: bigint): void {
    if (v > this.last) this.last = v;
  }
}

/** ChainHead is the author's latest record: its number and body hash. */
export interface ChainHead {
  seq: bigint;
  hash: Uint8Array;
}

export interface Envelope {
  electionId: string;
  authorId: string;
  head: ChainHead;
  hlc: bigint;
  nowMs: number;
}

/**
 * makeRecord fills in the envelope of body as the author's next record,
 * encodes it once and signs the encoding. The returned body is the one
 * stored, sent and hashed from then on.
 */
export async function makeRecord(
  key: DeviceKey,
  env: Envelope,
  body: DRecord["body"],
): Promise<{ signed: SignedRecord; record: DRecord; hash: Uint8Array }> {
  const record = create(RecordSchema, {
    formatVersion: FORMAT_VERSION,
    recordId: uuidv7(env.nowMs),
    electionId: env.electionId,
    authorId: env.authorId,
    authorSeq: env.head.seq + 1n,
    prevHash: env.head.seq > 0n ? env.head.hash : new Uint8Array(0),
    hlc: env.hlc,
    authorTime: timestampFromMs(env.nowMs),
    body,
  });
  const bytes = toBinary(RecordSchema, record);
  const signature = await sign(key, signedBytes(bytes));
  return { signed: create(SignedRecordSchema, { body: bytes, signature }), record, hash: await bodyHash(bytes) };
}

/** requestHash is SHA-256 of a request's deterministic binary encoding. */
export function requestHash<D extends DescMessage>(schema: D, msg: MessageShape<D>): Promise<Uint8Array> {
  return sha256(toBinary(schema, msg));
}

/** callMessage is the text a call signature covers (SPEC section 5). */
export function callMessage(electionId: string, keyId: string, method: string, ms: number, nonce: string, reqHash: Uint8Array): Uint8Array {
  return utf8(`${CALL_PREFIX}${electionId}\n${keyId}\n${method}\n${ms}\n${nonce}\n${toHex(reqHash)}`);
}

/** callHeaders signs a call: the metadata keys of SPEC section 5, as HTTP headers. */
export async function callHeaders(
  key: DeviceKey,
  electionId: string,
  keyId: string,
  method: string,
  reqHash: Uint8Array,
  nowMs: number,
): Promise<Record<string, string>> {
  const nonce = toBase64URLRaw(randomBytes(16));
  const ms = Math.floor(nowMs);
  const sig = await sign(key, callMessage(electionId, keyId, method, ms, nonce, reqHash));
  return {
    "doorstep-election-id": electionId,
    "doorstep-key-id": keyId,
    "doorstep-time": String(ms),
    "doorstep-nonce": nonce,
    "doorstep-signature": toBase64Raw(sig),
  };
}
