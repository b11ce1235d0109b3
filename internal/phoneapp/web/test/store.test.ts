// The phone's storage and the device's rules, on fake-indexeddb: records
// numbered and chained across restarts, each saved in one committed
// transaction, the outbox emptied only by answers, the ballot rules shared
// with the CLI (explicit blank, no second ballot but a revision, picks by
// name), and the two catalogues in step.

import "fake-indexeddb/auto";
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fromBinary } from "@bufbuild/protobuf";
import { createConnectTransport } from "@connectrpc/connect-web";
import { LogEntrySchema } from "../src/gen/doorstep/v1/log_pb.js";
import { VisitOutcome, type SignedRecord } from "../src/gen/doorstep/v1/record_pb.js";
import { Store, ConflictError } from "../src/db.js";
import { Device } from "../src/device.js";
import { generateKey } from "../src/ed25519.js";
import { bodyHash, decodeRecord, deviceId, verifyRecord } from "../src/record.js";
import { verifyElection, floorOf, type Election } from "../src/election.js";
import { changes, checkForm, emptyForm, FormError, resolvePick, reviseFrom, toBallot } from "../src/ballot.js";
import { catalogues, translate } from "../src/i18n.js";
import { toHex } from "../src/bytes.js";

async function recordV1Election(): Promise<Election> {
  const b = new Uint8Array(readFileSync(new URL("../../../../api/testdata/record-v1/log/entries.bin", import.meta.url)));
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const committee: SignedRecord[] = [];
  for (let o = 0; o < b.length; ) {
    const n = dv.getUint32(o);
    const e = fromBinary(LogEntrySchema, b.subarray(o + 4, o + 4 + n));
    o += 4 + n;
    if (e.record && decodeRecord(e.record.body).authorId === "committee") committee.push(e.record);
  }
  return verifyElection("estate-2026", committee);
}

let dbn = 0;
async function newDevice(name = `t${dbn++}`) {
  const store = await Store.open(name);
  const dev = new Device(store, (interceptors) => createConnectTransport({ baseUrl: "http://127.0.0.1:9", interceptors }), () => 1767225600000);
  await dev.load();
  const key = await generateKey();
  dev.key = key;
  await store.put("key", key);
  dev.enr = { server: "x", electionId: "estate-2026", deviceId: await deviceId(key.publicKey), serverKey: new Uint8Array(32), fingerprint: "", logOrigin: "", label: "t", joinedAt: 0 };
  await store.put("enrollment", dev.enr);
  dev.election = await recordV1Election();
  return { store, dev, name };
}

const owner = (unitId: string) => ({ ...emptyForm(unitId), signer: "owner" as const, answers: { rules: { choice: "yes" as const }, board: { picks: ["张伟"] } } });

test("records are numbered, chained, signed and kept across a restart", async () => {
  const { store, dev, name } = await newDevice();
  const a = await dev.saveBallot(owner("1-1-101"));
  const v = await dev.saveVisit("1-1-102", VisitOutcome.NOT_HOME, "晚上再来");
  // Saves in parallel still chain in order.
  const [c, d] = await Promise.all([dev.saveBallot(owner("1-1-102")), dev.saveVisit("2-1-901", VisitOutcome.REFUSED, "")]);
  assert.deepEqual([a.seq, v.seq, [c.seq, d.seq].sort()], [1, 2, [3, 4]]);
  assert.match(a.receipt, /^[0-9A-Z]{5}-[0-9A-Z]{5}$/);
  assert.equal(v.receipt, "");
  store.close();

  // A new page load: the chain goes on from where it was.
  const again = await Store.open(name);
  const dev2 = new Device(again, (i) => createConnectTransport({ baseUrl: "http://127.0.0.1:9", interceptors: i }), () => 1767225600000);
  assert.ok(await dev2.load());
  dev2.election = dev.election;
  const e = await dev2.saveVisit("10-1-101", VisitOutcome.MOVED, "");
  assert.equal(e.seq, 5);
  const rows = (await again.allRecords()).sort((x, y) => x.seq - y.seq);
  assert.equal(rows.length, 5);
  let prev = new Uint8Array(0);
  let hlc = 0n;
  for (const r of rows) {
    assert.ok(await verifyRecord(dev.key!.publicKey, { $typeName: "doorstep.v1.SignedRecord", body: r.body, signature: r.signature }));
    const rec = decodeRecord(r.body);
    assert.equal(rec.authorSeq, BigInt(r.seq));
    assert.equal(toHex(rec.prevHash), toHex(prev));
    assert.ok(rec.hlc > hlc, "the clock only grows");
    hlc = rec.hlc;
    prev = await bodyHash(r.body);
  }
  assert.equal(await again.pendingCount(), 5);
  again.close();
});

test("the outbox empties only by the server's answers", async () => {
  const { store, dev } = await newDevice();
  for (const u of ["1-1-101", "1-1-102", "1-2-201"]) await dev.saveBallot(owner(u));
  await store.ack([{ seq: 2, status: "ACCEPTED", reason: "" }]);
  assert.deepEqual((await store.pending()).map((r) => r.seq), [1, 3]);
  await store.ack([{ seq: 1, status: "REJECTED", reason: "unknown unit" }, { seq: 99, status: "ACCEPTED", reason: "" }]);
  assert.deepEqual((await store.pending()).map((r) => r.seq), [3]);
  assert.equal((await store.record(1))!.status, "REJECTED");
  // A checkpoint is kept only when it is larger than the one held.
  await store.ack([], { origin: "o", size: "5", root: new Uint8Array(32), signedNote: "five" });
  await store.ack([], { origin: "o", size: "3", root: new Uint8Array(32), signedNote: "three" });
  assert.equal((await store.get<{ signedNote: string }>("checkpoint"))!.signedNote, "five");
});

test("a save refused when another tab moved the chain", async () => {
  const { store, dev } = await newDevice();
  await dev.saveBallot(owner("1-1-101"));
  const row = (await store.record(1))!;
  await assert.rejects(store.saveRecord({ ...row, recordId: "other" }, { seq: 1, hash: new Uint8Array(32) }, 1n), ConflictError);
  assert.equal((await store.allRecords()).length, 1);
});

test("ballot rules shared with the CLI", async () => {
  const { dev } = await newDevice();
  const e = dev.election!;
  const board = e.items.find((i) => i.itemId === "board")!;
  assert.equal(resolvePick(board, "王芳"), "c2");
  assert.equal(resolvePick(board, "c3"), "c3");
  assert.equal(resolvePick(board, "nobody"), undefined);
  const bad = (f: ReturnType<typeof emptyForm>, has: boolean, key: string) =>
    assert.throws(() => checkForm(e, f, has), (err: unknown) => err instanceof FormError && err.key === key, key);
  bad({ ...emptyForm("1-1-101"), signer: "owner" }, false, "err.no_choice");
  checkForm(e, { ...emptyForm("1-1-101"), signer: "owner", blank: true }, false);
  bad({ ...owner("1-1-101"), blank: true }, false, "err.blank_with_choice");
  bad({ ...owner("1-1-101"), signer: "" }, false, "err.signer");
  bad({ ...owner("1-1-101"), signer: "proxy" }, false, "err.proxy_ref");
  bad({ ...owner("1-1-101"), proxyRef: "x" }, false, "err.proxy_only");
  bad({ ...owner("9-9-999") }, false, "err.unknown_unit");
  bad({ ...owner("1-1-101"), answers: { board: { picks: ["c1", "c2", "c3"] } } }, false, "err.too_many_picks");
  bad({ ...owner("1-1-101"), answers: { board: { picks: ["c1", "张伟"] } } }, false, "err.pick_twice");
  bad({ ...owner("1-1-101"), comment: "a\u0001" }, false, "err.control");
  bad(owner("1-1-101"), true, "err.second_ballot");

  // A second ballot is refused; a revision starts from the first and
  // changes only what is named.
  const first = await dev.saveBallot(owner("1-1-101"));
  await assert.rejects(dev.saveBallot(owner("1-1-101")), (err: unknown) => err instanceof FormError && err.key === "err.second_ballot");
  const rev = reviseFrom(first.form as ReturnType<typeof emptyForm>, first.recordId);
  rev.answers.fund = { choice: "no" };
  const T = (k: string) => translate("en", k);
  const cs = changes(e, first.form as ReturnType<typeof emptyForm>, rev, T);
  assert.deepEqual(cs.map((c) => [c.before, c.after]), [["none (abstain)", "no"]]);
  const saved = await dev.saveBallot(rev);
  const body = toBallot(e, rev);
  assert.equal(body.supersedes, first.recordId);
  assert.deepEqual(body.selections.map((s) => [s.itemId, s.choice, s.candidateIds]), [["rules", 1, []], ["fund", 2, []], ["board", 0, ["c1"]]]);
  const rec = decodeRecord(saved.body);
  assert.equal(rec.body.case === "ballot" && rec.body.value.supersedes, first.recordId);
});

test("the walk list's floors and the catalogues", () => {
  assert.equal(floorOf("3-2-501"), "5");
  assert.equal(floorOf("2-1-1002"), "10");
  assert.equal(floorOf("A"), "");
  assert.deepEqual(Object.keys(catalogues.en).sort(), Object.keys(catalogues.zh).sort());
  for (const k of Object.keys(catalogues.zh)) {
    const args = (s: string) => (s.match(/\{\d\}/g) ?? []).sort().join();
    assert.equal(args(catalogues.en[k]), args(catalogues.zh[k]), k);
  }
  assert.equal(translate("zh", "home.waiting", 3, 5), "3 张选票待上传（共 5 条记录）");
});
