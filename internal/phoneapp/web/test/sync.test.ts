// The phone's sync against an in-memory server (Connect's router
// transport): join refuses a server whose key is not the code's; records
// leave the outbox only with an answer for each; a server that shows a log
// not extending the one it showed before is sent nothing; every call but
// the public ones carries a call signature that verifies.

import "fake-indexeddb/auto";
import { test } from "node:test";
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { createRouterTransport, ConnectError, Code, type Interceptor } from "@connectrpc/connect";
import * as noble from "@noble/ed25519";
import { SyncService } from "../src/gen/doorstep/v1/sync_service_pb.js";
import { AuditService } from "../src/gen/doorstep/v1/audit_service_pb.js";
import { CheckpointSchema, RecordStatus } from "../src/gen/doorstep/v1/result_pb.js";
import { VisitOutcome, type SignedRecord } from "../src/gen/doorstep/v1/record_pb.js";
import { Store } from "../src/db.js";
import { Device, DeviceError, JoinedButError } from "../src/device.js";
import { generateKey, verify } from "../src/ed25519.js";
import { callMessage, decodeRecord, deviceId, makeRecord, requestHash } from "../src/record.js";
import { fingerprint, keyHash, leafHash, rosterHash, treeRoot, nodeHash } from "../src/log.js";
import { fromBase64, toBase64, utf8 } from "../src/bytes.js";
import { emptyForm } from "../src/ballot.js";

const ELECTION = "sync-2026";
const ORIGIN = "test.example/" + ELECTION;
const TOKEN = "A".repeat(26);

async function subproof(m: number, leaves: Uint8Array[], b: boolean): Promise<Uint8Array[]> {
  const n = leaves.length;
  if (m === n) return b ? [] : [await treeRoot(leaves)];
  let k = 1;
  while (k * 2 < n) k *= 2;
  if (m <= k) return [...(await subproof(m, leaves.slice(0, k), b)), await treeRoot(leaves.slice(k))];
  return [...(await subproof(m - k, leaves.slice(k), false)), await treeRoot(leaves.slice(0, k))];
}

/** fakeServer is just enough of tallyd to sync with, and what it saw. */
async function fakeServer() {
  const seed = noble.utils.randomSecretKey();
  const pub = await noble.getPublicKeyAsync(seed);
  const com = await generateKey(true);
  const units = [1, 2, 3].map((i) => ({ unitId: `1-1-${i}01`, ownerKey: `o${i}`, building: "1", areaCentiM2: 8000n, developerHeld: false }));
  const committee: SignedRecord[] = [];
  let head = { seq: 0n, hash: new Uint8Array(0) };
  const commit = async (action: never) => {
    const r = await makeRecord(com, { electionId: ELECTION, authorId: "committee", head, hlc: BigInt(committee.length + 1) << 16n, nowMs: Date.now() }, { case: "committee", value: { $typeName: "doorstep.v1.CommitteeAction", action } } as never);
    head = { seq: head.seq + 1n, hash: r.hash };
    committee.push(r.signed);
  };
  await commit({ case: "defineElection", value: { $typeName: "doorstep.v1.ElectionDefinition", electionId: ELECTION, title: "t", committeePublicKey: com.publicKey, items: [{ $typeName: "doorstep.v1.Item", itemId: "rules", title: "规约", kind: { case: "motion", value: { $typeName: "doorstep.v1.Motion", threshold: 1 } } }], contestPolicy: 1, rulesVersion: "v", futureSkewMs: 0n, objectionPeriodMs: 0n } } as never);
  await commit({ case: "roster", value: { $typeName: "doorstep.v1.RosterChunk", units: units.map((u) => ({ $typeName: "doorstep.v1.Unit", ...u })) } } as never);
  await commit({ case: "open", value: { $typeName: "doorstep.v1.OpenElection", rosterSha256: await rosterHash(units) } } as never);

  const s = {
    pub,
    fp: await fingerprint(pub),
    leaves: await Promise.all(committee.map((c) => leafHash(c.body))),
    pushed: [] as SignedRecord[],
    enrolled: 0,
    /** answerOnly, when set, limits the answers to these record numbers. */
    answerOnly: undefined as Set<number> | undefined,
    /** fork, when set, makes the server show another history. */
    fork: false,
    revoked: false,
    failElection: false,
    signedCalls: [] as string[],
    devicePub: new Uint8Array(0),
    deviceId: "",
    async checkpoint() {
      let leaves = s.leaves;
      if (s.fork) leaves = [await nodeHash(leaves[0], leaves[0]), ...leaves.slice(1)];
      const root = await treeRoot(leaves);
      const text = `${ORIGIN}\n${leaves.length}\n${toBase64(root)}\n`;
      const sig = await noble.signAsync(utf8(text), seed);
      const note = `${text}\n\u2014 ${ORIGIN} ${toBase64(new Uint8Array([...(await keyHash(ORIGIN, pub)), ...sig]))}\n`;
      return create(CheckpointSchema, { origin: ORIGIN, size: BigInt(leaves.length), rootHash: root, signedNote: note });
    },
  };
  // The server side of call signatures: every non-public call verifies.
  const check = async (method: string, hdr: Headers, req: never, schema: never) => {
    const sig = hdr.get("doorstep-signature");
    if (!sig) throw new ConnectError("unsigned", Code.Unauthenticated);
    const msg = callMessage(hdr.get("doorstep-election-id")!, hdr.get("doorstep-key-id")!, method, Number(hdr.get("doorstep-time")), hdr.get("doorstep-nonce")!, await requestHash(schema, req));
    if (hdr.get("doorstep-key-id") !== s.deviceId || !(await verify(s.devicePub, msg, fromBase64(sig + "=".repeat((4 - (sig.length % 4)) % 4))))) {
      throw new ConnectError("bad signature", Code.Unauthenticated);
    }
    s.signedCalls.push(method);
  };
  const routes = (router: import("@connectrpc/connect").ConnectRouter) => {
    router.service(SyncService, {
      getServerInfo: () => ({ serverPublicKey: pub, fingerprint: s.fp, logOrigin: "test.example", serverTime: timestampNow() }),
      enroll: async (req) => {
        s.enrolled++;
        s.devicePub = req.devicePublicKey;
        s.deviceId = await deviceId(req.devicePublicKey);
        return { deviceId: s.deviceId, serverPublicKey: pub, logOrigin: ORIGIN };
      },
      getElection: async (req, ctx) => {
        await check("/doorstep.v1.SyncService/GetElection", ctx.requestHeader, req as never, SyncService.method.getElection.input as never);
        if (s.failElection) throw new ConnectError("busy", Code.Unavailable);
        return { committeeRecords: committee };
      },
      getDeviceState: async (req, ctx) => {
        await check("/doorstep.v1.SyncService/GetDeviceState", ctx.requestHeader, req as never, SyncService.method.getDeviceState.input as never);
        return { revoked: s.revoked };
      },
      pushRecords: async (req, ctx) => {
        await check("/doorstep.v1.SyncService/PushRecords", ctx.requestHeader, req as never, SyncService.method.pushRecords.input as never);
        const results = [];
        for (const r of req.records) {
          const rec = decodeRecord(r.body);
          if (s.answerOnly && !s.answerOnly.has(Number(rec.authorSeq))) continue;
          s.pushed.push(r);
          s.leaves.push(await leafHash(r.body));
          results.push({ recordId: rec.recordId, status: RecordStatus.ACCEPTED, logIndex: BigInt(s.leaves.length - 1) });
        }
        return { results, checkpoint: await s.checkpoint(), serverTime: timestampNow() };
      },
      listUnitStatus: async (req, ctx) => {
        await check("/doorstep.v1.SyncService/ListUnitStatus", ctx.requestHeader, req as never, SyncService.method.listUnitStatus.input as never);
        return { units: [{ unitId: "1-1-101", progress: 3, lastVisit: 0, visits: 1 }], nextPageToken: "" };
      },
    });
    router.service(AuditService, {
      getCheckpoint: async () => ({ checkpoint: await s.checkpoint() }),
      getConsistencyProof: async (req) => ({ proof: await subproof(Number(req.oldSize), s.leaves.slice(0, Number(req.newSize)), true) }),
    });
  };
  const transport = (interceptors: Interceptor[]) => createRouterTransport(routes, { transport: { interceptors } });
  return { s, transport };
}

let n = 0;
const code = (fp: string) => `doorstep:enroll?server=127.0.0.1%3A7070&election=${ELECTION}&token=${TOKEN}&fp=${encodeURIComponent(fp)}&tls=plaintext`;
const ballot = (unitId: string) => ({ ...emptyForm(unitId), signer: "owner" as const, answers: { rules: { choice: "yes" as const } } });

test("join refuses a server whose key is not the code's, and sends it nothing", async () => {
  const { s, transport } = await fakeServer();
  const dev = new Device(await Store.open(`sync${n++}`), transport);
  await dev.load();
  await assert.rejects(dev.join(code("SHA256:" + "A".repeat(43)), "x"), (err: unknown) => err instanceof DeviceError && err.key === "join.fingerprint");
  assert.equal(s.enrolled, 0);
  assert.equal(await dev.store.get("enrollment"), undefined);
  // With the right code it joins; a second join is refused.
  await dev.join(code(s.fp), "楼长");
  assert.equal(s.enrolled, 1);
  assert.equal(dev.election?.units.length, 3);
  await assert.rejects(dev.join(code(s.fp), "again"), (err: unknown) => err instanceof DeviceError && err.key === "join.already");
});

test("records leave the outbox only with an answer; signed calls verify", async () => {
  const { s, transport } = await fakeServer();
  const dev = new Device(await Store.open(`sync${n++}`), transport);
  await dev.load();
  await dev.join(code(s.fp), "楼长");
  await dev.saveBallot(ballot("1-1-101"));
  await dev.saveVisit("1-1-201", VisitOutcome.NOT_HOME, "");
  await dev.saveBallot(ballot("1-1-301"));
  s.answerOnly = new Set([1, 3]);
  const rep = await dev.sync();
  assert.equal(rep.pushed, 3);
  assert.equal(rep.answered, 2);
  assert.deepEqual((await dev.store.pending()).map((r) => r.seq), [2]);
  s.answerOnly = undefined;
  const rep2 = await dev.sync();
  assert.equal(rep2.pending, 0);
  assert.ok(s.signedCalls.includes("/doorstep.v1.SyncService/PushRecords"));
  assert.equal((await dev.store.units()).find((u) => u.unitId === "1-1-101")?.progress, 3, "the walk list is pulled");
  const held = await dev.store.get<{ size: string }>("checkpoint");
  assert.equal(held?.size, String(s.leaves.length), "the latest checkpoint is kept");
});

test("a server showing another history is sent nothing", async () => {
  const { s, transport } = await fakeServer();
  const dev = new Device(await Store.open(`sync${n++}`), transport);
  await dev.load();
  await dev.join(code(s.fp), "楼长");
  await dev.saveBallot(ballot("1-1-101"));
  await dev.sync();
  await dev.saveBallot(ballot("1-1-201"));
  s.fork = true;
  s.leaves.push(await leafHash(utf8("another entry")));
  await assert.rejects(dev.sync(), (err: unknown) => err instanceof DeviceError && err.key === "sync.split_view");
  assert.equal(s.pushed.length, 1, "nothing more was sent");
  assert.deepEqual((await dev.store.pending()).map((r) => r.seq), [2]);
});

test("a revoked phone is told so, after its records were answered", async () => {
  const { s, transport } = await fakeServer();
  const dev = new Device(await Store.open(`sync${n++}`), transport);
  await dev.load();
  await dev.join(code(s.fp), "楼长");
  await dev.saveBallot(ballot("1-1-101"));
  s.revoked = true;
  await assert.rejects(dev.sync(), (err: unknown) => err instanceof DeviceError && err.key === "sync.revoked");
  assert.equal(await dev.store.pendingCount(), 0);
  assert.deepEqual(dev.waiting, { records: 0, ballots: 0 });
});

test("a join whose election download fails is still a join, finished by a later sync", async () => {
  const { s, transport } = await fakeServer();
  const dev = new Device(await Store.open(`sync${n++}`), transport);
  await dev.load();
  s.failElection = true;
  await assert.rejects(dev.join(code(s.fp), "楼长"), JoinedButError);
  assert.ok(await dev.store.get("enrollment"), "the spent token's enrollment is kept");
  assert.equal(dev.election, undefined);
  s.failElection = false;
  await dev.sync();
  assert.equal(dev.election?.units.length, 3);
  assert.equal(s.enrolled, 1);
});
