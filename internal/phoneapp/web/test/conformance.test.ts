// Conformance of the app's record code with api/SPEC.md and every vector
// in api/testdata: ZIP-215 verification, the election record's log (leaf
// hashes, root, checkpoint, signatures, chains, receipt codes, roster
// hash, the committee's records as the phone checks them), and SPEC 12.1's
// byte-exact values.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fromBinary, create, toBinary } from "@bufbuild/protobuf";
import * as noble from "@noble/ed25519";
import { LogEntrySchema } from "../src/gen/doorstep/v1/log_pb.js";
import { RecordSchema, SignedRecordSchema, type SignedRecord } from "../src/gen/doorstep/v1/record_pb.js";
import { GetDeviceStateRequestSchema } from "../src/gen/doorstep/v1/sync_service_pb.js";
import { fromBase64, fromHex, toBase64, toHex, utf8, sha256 } from "../src/bytes.js";
import { verify, generateKey } from "../src/ed25519.js";
import {
  bodyHash, callMessage, decodeRecord, deviceId, HybridClock, makeRecord, receiptCode, requestHash, uuidv7, verifyRecord,
} from "../src/record.js";
import { fingerprint, keyHash, leafHash, openCheckpoint, parseVerifierKey, rosterHash, treeRoot, verifyConsistency, nodeHash } from "../src/log.js";
import { verifyElection } from "../src/election.js";

const testdata = new URL("../../../../api/testdata/", import.meta.url);
const read = (p: string) => readFileSync(new URL(p, testdata));

test("ZIP-215: every vector of ed25519-zip215.json", async (t) => {
  const doc = JSON.parse(read("ed25519-zip215.json").toString());
  assert.equal(doc.format, "doorstep-ed25519-zip215-v1");
  assert.ok(doc.vectors.length >= 30);
  for (const v of doc.vectors) {
    await t.test(v.name, async () => {
      const got = await verify(fromHex(v.public_key), fromHex(v.message), fromHex(v.signature));
      assert.equal(got, v.accept, v.note);
    });
  }
});

function frames(b: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let o = 0; o < b.length; ) {
    const n = dv.getUint32(o);
    assert.ok(n <= 4259840, "frame too large");
    out.push(b.subarray(o + 4, o + 4 + n));
    o += 4 + n;
  }
  return out;
}

test("record-v1: the election record's log verifies with the app's code", async () => {
  const manifest = JSON.parse(read("record-v1/manifest.json").toString());
  const entries = frames(new Uint8Array(read("record-v1/log/entries.bin")));
  assert.equal(entries.length, manifest.log_size);

  // Server key, fingerprint, checkpoint, tree.
  const vk = await parseVerifierKey(manifest.server_verifier_key);
  assert.equal(vk.name, manifest.log_origin);
  assert.equal(await fingerprint(vk.publicKey), manifest.server_fingerprint);
  const tree = await openCheckpoint(read("record-v1/checkpoint.txt").toString(), manifest.log_origin, vk.publicKey);
  assert.equal(tree.size, BigInt(entries.length));
  const leaves = await Promise.all(entries.map(leafHash));
  assert.equal(toHex(await treeRoot(leaves)), toHex(tree.root));
  // A changed checkpoint does not verify.
  const cpText = read("record-v1/checkpoint.txt").toString();
  await assert.rejects(openCheckpoint(cpText.replace("\n23\n", "\n24\n"), manifest.log_origin, vk.publicKey));

  // Every signature, chain and receipt code.
  const committeeKey = fromBase64(manifest.committee_public_key);
  const keys = new Map<string, Uint8Array>([["committee", committeeKey]]);
  const heads = new Map<string, { seq: bigint; hash: Uint8Array }>();
  const committee: SignedRecord[] = [];
  let records = 0, ballots = 0;
  for (const [i, raw] of entries.entries()) {
    const e = fromBinary(LogEntrySchema, raw);
    assert.equal(e.result?.logIndex, BigInt(i));
    if (e.enrollment) {
      assert.equal(await deviceId(e.enrollment.devicePublicKey), e.enrollment.deviceId);
      keys.set(e.enrollment.deviceId, e.enrollment.devicePublicKey);
      continue;
    }
    const sr = e.record!;
    const rec = decodeRecord(sr.body);
    const key = keys.get(rec.authorId);
    assert.ok(key, `entry ${i}: author ${rec.authorId} not enrolled before`);
    assert.ok(await verifyRecord(key!, sr), `entry ${i}: signature`);
    const bad = create(SignedRecordSchema, { body: sr.body, signature: sr.signature.slice() });
    bad.signature[0] ^= 1;
    assert.equal(await verifyRecord(key!, bad), false, `entry ${i}: flipped signature`);
    const head = heads.get(rec.authorId);
    if (head && rec.authorSeq === head.seq + 1n) assert.equal(toHex(rec.prevHash), toHex(head.hash), `entry ${i}: prev_hash`);
    if (rec.authorSeq === 1n) assert.equal(rec.prevHash.length, 0);
    if (!head || rec.authorSeq > head.seq) heads.set(rec.authorId, { seq: rec.authorSeq, hash: await bodyHash(sr.body) });
    if (rec.body.case === "ballot") {
      // A rejected ballot's entry carries no receipt code.
      if (e.result?.receiptCode) {
        assert.equal(await receiptCode(sr.body, sr.signature), e.result.receiptCode, `entry ${i}: receipt`);
        ballots++;
      } else {
        assert.equal(e.result?.status, 5, `entry ${i}: only a rejected ballot has no receipt`);
      }
    }
    if (rec.authorId === "committee") committee.push(sr);
    records++;
  }
  assert.ok(records > 15 && ballots > 8);
  assert.equal(manifest.devices.length, keys.size - 1);

  // The committee's records as the phone checks them at join.
  const el = await verifyElection(manifest.election_id, committee);
  assert.equal(el.title, manifest.title);
  assert.equal(el.units.length, manifest.roster_units);
  assert.equal(toHex(await rosterHash(el.units)), manifest.roster_sha256);
  assert.ok(el.opened && el.closedAtMs > 0);
  await assert.rejects(verifyElection(manifest.election_id, committee, new Uint8Array(32)), /committee key changed/);
  const swapped = [committee[0], committee[2], committee[1], ...committee.slice(3)];
  await assert.rejects(verifyElection(manifest.election_id, swapped));
});

test("SPEC 12.1: log entries, leaf hashes, roots, receipt code, server key, checkpoint", async () => {
  const spec = readFileSync(new URL("../../../../api/SPEC.md", import.meta.url)).toString();
  const sec = spec.slice(spec.indexOf("### 12.1"), spec.indexOf("### 12.2"));
  const blocks = [...sec.matchAll(/```\n([0-9a-f\n]+)```/g)].map((m) => fromHex(m[1].replace(/\n/g, "")));
  assert.equal(blocks.length, 3);
  const wantLeaves = [...sec.matchAll(/leaf hash `([0-9a-f]{64})`/g)].map((m) => m[1]);
  const leaves = await Promise.all(blocks.map(leafHash));
  assert.deepEqual(leaves.map(toHex), wantLeaves);
  const roots = [...sec.matchAll(/\| (\d) \| `([0-9a-f]{64})`/g)];
  for (const [, n, root] of roots) assert.equal(toHex(await treeRoot(leaves.slice(0, Number(n)))), root);

  const e1 = fromBinary(LogEntrySchema, blocks[0]);
  assert.equal(await receiptCode(e1.record!.body, e1.record!.signature), "KS4ND-H7PJG");
  assert.equal(toBinary(LogEntrySchema, e1).length, blocks[0].length);

  const seed = Uint8Array.from({ length: 32 }, (_, i) => i);
  const pub = await noble.getPublicKeyAsync(seed);
  const origin = "doorstep.example/test-vector";
  const vkey = `${origin}+${toHex(await keyHash(origin, pub))}+${toBase64(new Uint8Array([1, ...pub]))}`;
  assert.ok(sec.includes("`" + vkey + "`"), vkey);
  assert.ok(sec.includes(await fingerprint(pub)));
  const text = `${origin}\n3\n${toBase64(await treeRoot(leaves))}\n`;
  const sig = await noble.signAsync(utf8(text), seed);
  const note = `${text}\n\u2014 ${origin} ${toBase64(new Uint8Array([...(await keyHash(origin, pub)), ...sig]))}\n`;
  assert.ok(sec.includes(note), "the checkpoint text is SPEC's, byte for byte");
  const t = await openCheckpoint(note, origin, pub);
  assert.equal(t.size, 3n);
  await assert.rejects(openCheckpoint(note, origin, await noble.getPublicKeyAsync(new Uint8Array(32))));
});

// subproof is RFC 6962's SUBPROOF, to test consistency checking.
async function subproof(m: number, leaves: Uint8Array[], b: boolean): Promise<Uint8Array[]> {
  const n = leaves.length;
  if (m === n) return b ? [] : [await treeRoot(leaves)];
  let k = 1;
  while (k * 2 < n) k *= 2;
  if (m <= k) return [...(await subproof(m, leaves.slice(0, k), b)), await treeRoot(leaves.slice(k))];
  return [...(await subproof(m - k, leaves.slice(k), false)), await treeRoot(leaves.slice(0, k))];
}

test("consistency proofs: every pair of sizes up to 17, and tampered proofs fail", async () => {
  const leaves = await Promise.all(Array.from({ length: 17 }, (_, i) => leafHash(utf8(`entry ${i}`))));
  for (let n = 1; n <= leaves.length; n++) {
    const newer = { size: BigInt(n), root: await treeRoot(leaves.slice(0, n)) };
    for (let m = 1; m <= n; m++) {
      const older = { size: BigInt(m), root: await treeRoot(leaves.slice(0, m)) };
      const proof = m === n ? [] : await subproof(m, leaves.slice(0, n), true);
      assert.ok(await verifyConsistency(older, newer, proof), `${m} -> ${n}`);
      if (m < n) {
        const bad = proof.map((p) => p.slice());
        bad[0][0] ^= 1;
        assert.equal(await verifyConsistency(older, newer, bad), false, `tampered ${m} -> ${n}`);
        const other = { size: older.size, root: await nodeHash(older.root, older.root) };
        assert.equal(await verifyConsistency(other, newer, proof), false, `other history ${m} -> ${n}`);
      }
    }
  }
});

test("records the app makes: envelope, chain, signature, receipt, call signature", async () => {
  for (const fallback of [false, true]) {
    const key = await generateKey(fallback);
    assert.equal(key.kind, fallback ? "noble" : "webcrypto");
    const id = await deviceId(key.publicKey);
    assert.match(id, /^dv-[0-9a-f]{16}$/);
    const clock = new HybridClock();
    const now = 1767225600000;
    let head = { seq: 0n, hash: new Uint8Array(0) };
    const made = [];
    for (let i = 0; i < 3; i++) {
      const hlc = clock.now(now); // the same millisecond: the counter moves
      const r = await makeRecord(key, { electionId: "e", authorId: id, head, hlc, nowMs: now }, {
        case: "visit", value: { $typeName: "doorstep.v1.Visit", unitId: "1-1-101", outcome: 1, note: "" },
      });
      assert.ok(await verifyRecord(key.publicKey, r.signed));
      const rec = decodeRecord(r.signed.body);
      assert.equal(rec.authorSeq, BigInt(i + 1));
      assert.equal(toHex(rec.prevHash), toHex(head.hash));
      assert.equal(rec.hlc, (BigInt(now) << 16n) + BigInt(i));
      assert.match(rec.recordId, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.deepEqual(toBinary(RecordSchema, rec), r.signed.body, "the body decodes and encodes to the signed bytes");
      head = { seq: rec.authorSeq, hash: r.hash };
      made.push(r);
    }
    assert.match(await receiptCode(made[0].signed.body, made[0].signed.signature), /^[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}$/);
  }
  assert.ok(uuidv7(1000) < uuidv7(2000));
  // The call signature's request hash is over the deterministic encoding,
  // explicit optional fields included.
  const req = create(GetDeviceStateRequestSchema, { electionId: "e", deviceId: "dv-1", unsent: 0n });
  assert.equal(toHex(await requestHash(GetDeviceStateRequestSchema, req)), toHex(await sha256(fromHex("0a0165120464762d311800"))));
  const msg = new TextDecoder().decode(callMessage("e", "dv-1", "/doorstep.v1.SyncService/GetElection", 5, "n", new Uint8Array(32)));
  assert.equal(msg, "doorstep-call-v2\ne\ndv-1\n/doorstep.v1.SyncService/GetElection\n5\nn\n" + "00".repeat(32));
});
