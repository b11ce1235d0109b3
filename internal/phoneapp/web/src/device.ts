// The phone as a Doorstep device: it behaves as internal/device does. Join
// checks the server key's fingerprint against the enrollment code before
// trusting anything, enrolls with a key made here, and fetches and
// verifies the election. Records are made, numbered, chained and signed
// here and kept until the server answers for each. Sync checks that the
// server's log extends the one it showed before (consistency proofs under
// the pinned key) before sending a single record.

import { create, type DescMessage } from "@bufbuild/protobuf";
import { timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { SyncService } from "./gen/doorstep/v1/sync_service_pb.js";
import { AuditService } from "./gen/doorstep/v1/audit_service_pb.js";
import { SignedRecordSchema, VisitOutcome, type SignedRecord } from "./gen/doorstep/v1/record_pb.js";
import { RecordStatus, type Checkpoint } from "./gen/doorstep/v1/result_pb.js";
import { equal } from "./bytes.js";
import { generateKey, type DeviceKey } from "./ed25519.js";
import { callHeaders, decodeRecord, deviceId as idOf, HybridClock, makeRecord, receiptCode, requestHash, bodyHash } from "./record.js";
import { fingerprint, openCheckpoint, verifyConsistency, type Tree } from "./log.js";
import { verifyElection, type Election } from "./election.js";
import { checkForm, toBallot, type BallotForm } from "./ballot.js";
import { parseCode } from "./enrollcode.js";
import { Store, type CheckpointRow, type Enrollment, type RecordRow, type ChainRow } from "./db.js";

/** DeviceError carries a catalogue key for people and details for logs. */
export class DeviceError extends Error {
  constructor(public key: string, public detail = "") {
    super(detail ? `${key}: ${detail}` : key);
  }
}

/** JoinedButError: the phone joined, but fetching the election failed; a later sync finishes. */
export class JoinedButError extends Error {
  constructor(readonly cause: unknown) {
    super(`joined, but could not fetch the election yet: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
}

const PUBLIC = new Set([
  "/doorstep.v1.SyncService/GetServerInfo",
  "/doorstep.v1.SyncService/Enroll",
  "/doorstep.v1.AuditService/GetCheckpoint",
  "/doorstep.v1.AuditService/GetConsistencyProof",
]);

const BATCH = 500;
const TIMEOUT_MS = 15000;

export interface SyncReport {
  pushed: number;
  answered: number;
  rejected: number;
  pending: number;
  units: number;
}

export class Device {
  enr?: Enrollment;
  key?: DeviceKey;
  election?: Election;
  private clock = new HybridClock();
  private head: ChainRow = { seq: 0, hash: new Uint8Array(0) };
  private offset = 0;
  private sync$?: Client<typeof SyncService>;
  private audit$?: Client<typeof AuditService>;
  private saving: Promise<unknown> = Promise.resolve();
  /** waiting counts the outbox, kept in step with it so screens need not read it. */
  waiting = { records: 0, ballots: 0 };
  private syncing?: Promise<SyncReport>;

  constructor(
    readonly store: Store,
    private makeTransport: (interceptors: Interceptor[]) => Transport,
    private now: () => number = Date.now,
  ) {
    const t = makeTransport([this.signer]);
    this.sync$ = createClient(SyncService, t);
    this.audit$ = createClient(AuditService, t);
  }

  /** recount reads the outbox's size from the store. */
  async recount(): Promise<void> {
    this.waiting = { records: await this.store.pendingCount(), ballots: await this.store.pendingBallots() };
  }

  /** load reads what the phone holds; false when it has not joined. */
  async load(): Promise<boolean> {
    this.enr = await this.store.get<Enrollment>("enrollment");
    this.key = await this.store.get<DeviceKey>("key");
    this.head = (await this.store.get<ChainRow>("chain")) ?? { seq: 0, hash: new Uint8Array(0) };
    this.clock = new HybridClock(BigInt((await this.store.get<string>("hlc")) ?? "0"));
    this.offset = (await this.store.get<number>("offset")) ?? 0;
    await this.recount();
    const srs = await this.store.get<{ body: Uint8Array; signature: Uint8Array }[]>("committee");
    if (this.enr && srs?.length) {
      this.election = await verifyElection(this.enr.electionId, srs.map((s) => create(SignedRecordSchema, s)));
    }
    return !!this.enr;
  }

  private signer: Interceptor = (next) => async (req) => {
    const path = `/${req.service.typeName}/${req.method.name}`;
    if (!PUBLIC.has(path) && this.enr && this.key && !req.stream) {
      const h = await requestHash(req.method.input as DescMessage, req.message as never);
      const hdrs = await callHeaders(this.key, this.enr.electionId, this.enr.deviceId, path, h, this.now() + this.offset);
      for (const [k, v] of Object.entries(hdrs)) req.header.set(k, v);
    }
    return next(req);
  };

  /**
   * join enrolls with an enrollment code. The server this page came from
   * must hold the key whose fingerprint the code names; otherwise nothing
   * is sent.
   */
  async join(codeText: string, label: string): Promise<Enrollment> {
    if (this.enr) throw new DeviceError("join.already");
    const code = parseCode(codeText);
    // A failed join keeps its key, as the CLI does, so a retry uses it.
    let key = await this.store.get<DeviceKey>("key");
    if (!key) {
      key = await generateKey();
      await this.store.put("key", key);
    }
    const info = await this.sync$!.getServerInfo({}, { timeoutMs: TIMEOUT_MS });
    const fp = await fingerprint(info.serverPublicKey);
    if (info.serverPublicKey.length !== 32 || fp !== code.fingerprint || info.fingerprint !== code.fingerprint) {
      throw new DeviceError("join.fingerprint", `the code says ${code.fingerprint}, this server has ${fp}`);
    }
    const resp = await this.sync$!.enroll(
      { electionId: code.election, enrollmentToken: code.token, devicePublicKey: key.publicKey, label },
      { timeoutMs: TIMEOUT_MS },
    );
    if (resp.serverPublicKey.length > 0 && !equal(resp.serverPublicKey, info.serverPublicKey)) throw new DeviceError("sync.server_key");
    if (resp.deviceId !== (await idOf(key.publicKey))) throw new DeviceError("join.bad_answer", resp.deviceId);
    const enr: Enrollment = {
      server: code.server,
      electionId: code.election,
      deviceId: resp.deviceId,
      serverKey: info.serverPublicKey,
      fingerprint: code.fingerprint,
      logOrigin: resp.logOrigin || info.logOrigin,
      label,
      joinedAt: this.now(),
    };
    // The token is spent: the enrollment is kept before anything else.
    await this.store.put("enrollment", enr);
    this.key = key;
    this.enr = enr;
    try {
      await this.sync();
    } catch (err) {
      throw new JoinedButError(err);
    }
    return enr;
  }

  /** ballots this device holds for a unit, in chain order. */
  async ballots(unitId: string): Promise<RecordRow[]> {
    return (await this.store.unitRecords(unitId)).filter((r) => r.kind === "ballot");
  }

  /** saveBallot checks the form, signs it as the next record and commits it. */
  async saveBallot(f: BallotForm): Promise<RecordRow> {
    const e = this.mustElection();
    // A ballot the server rejected holds no place: the unit may get another.
    const held = (await this.ballots(f.unitId)).filter((r) => r.status !== "REJECTED");
    checkForm(e, f, held.length > 0);
    if (f.supersedes && !held.some((r) => r.recordId === f.supersedes)) throw new DeviceError("err.revise_unknown", f.supersedes);
    const ballot = toBallot(e, f);
    return this.commit(f.unitId, { case: "ballot", value: ballot }, { form: structuredClone(f), supersedes: f.supersedes || undefined });
  }

  async saveVisit(unitId: string, outcome: VisitOutcome, note: string): Promise<RecordRow> {
    const e = this.mustElection();
    if (!e.units.some((u) => u.unitId === unitId)) throw new DeviceError("err.unknown_unit", unitId);
    if (outcome === VisitOutcome.UNSPECIFIED) throw new DeviceError("err.outcome");
    return this.commit(unitId, { case: "visit", value: { $typeName: "doorstep.v1.Visit", unitId, outcome, note } }, { outcome, note });
  }

  private mustElection(): Election {
    if (!this.enr || !this.key) throw new DeviceError("err.not_joined");
    if (!this.election) throw new DeviceError("err.no_election");
    return this.election;
  }

  private commit(unitId: string, body: Parameters<typeof makeRecord>[2], extra: Partial<RecordRow>): Promise<RecordRow> {
    // One record at a time: the chain and the clock move in order.
    const run = this.saving.then(async () => {
      const enr = this.enr!;
      const nowMs = this.now();
      const hlc = this.clock.now(nowMs);
      const { signed, record, hash } = await makeRecord(
        this.key!,
        { electionId: enr.electionId, authorId: enr.deviceId, head: { seq: BigInt(this.head.seq), hash: this.head.hash }, hlc, nowMs },
        body,
      );
      const row: RecordRow = {
        seq: Number(record.authorSeq),
        recordId: record.recordId,
        kind: body.case as "ballot" | "visit",
        unitId,
        body: signed.body,
        signature: signed.signature,
        receipt: body.case === "ballot" ? await receiptCode(signed.body, signed.signature) : "",
        pending: 1,
        status: "",
        reason: "",
        savedAt: nowMs,
        ...extra,
      };
      const head = { seq: row.seq, hash };
      await this.store.saveRecord(row, head, this.clock.last);
      this.head = head;
      this.waiting = { records: this.waiting.records + 1, ballots: this.waiting.ballots + (row.kind === "ballot" ? 1 : 0) };
      return row;
    });
    this.saving = run.catch(() => undefined);
    return run;
  }

  /** sync runs one pass; a pass already running is joined, not doubled. */
  sync(): Promise<SyncReport> {
    if (!this.syncing) {
      this.syncing = this.syncOnce().finally(async () => {
        this.syncing = undefined;
        // Counted in the save queue, so no save is counted twice.
        const r = this.saving.then(() => this.recount());
        this.saving = r.catch(() => undefined);
        await r;
      });
    }
    return this.syncing;
  }

  private async syncOnce(): Promise<SyncReport> {
    const enr = this.enr;
    if (!enr) throw new DeviceError("err.not_joined");
    const rep: SyncReport = { pushed: 0, answered: 0, rejected: 0, pending: 0, units: 0 };
    await this.measureOffset(enr);
    const cp = (await this.audit$!.getCheckpoint({ electionId: enr.electionId }, { timeoutMs: TIMEOUT_MS })).checkpoint;
    const row = await this.verifyCheckpoint(enr, cp);
    await this.store.ack([], row);
    await this.refreshElection(enr);
    const revoked = await this.push(enr, rep);
    await this.pullStatus(enr, rep);
    if (revoked) throw new DeviceError("sync.revoked");
    rep.pending = await this.store.pendingCount();
    await this.store.put("lastSync", this.now());
    return rep;
  }

  private async measureOffset(enr: Enrollment): Promise<void> {
    const t0 = this.now();
    const info = await this.sync$!.getServerInfo({}, { timeoutMs: TIMEOUT_MS });
    const t1 = this.now();
    if (!equal(info.serverPublicKey, enr.serverKey)) throw new DeviceError("sync.server_key");
    if (!info.serverTime) return;
    const server = timestampMs(info.serverTime);
    this.offset = Math.round(server - (t0 + (t1 - t0) / 2));
    this.clock.observe(BigInt(server) << 16n);
    await this.store.putMany({ offset: this.offset, hlc: this.clock.last.toString() });
  }

  /** verifyCheckpoint checks cp under the pinned key and that it extends the one held. */
  private async verifyCheckpoint(enr: Enrollment, cp: Checkpoint | undefined): Promise<CheckpointRow> {
    if (!cp) throw new DeviceError("sync.bad_checkpoint", "no checkpoint");
    let newer: Tree;
    try {
      newer = await openCheckpoint(cp.signedNote, enr.logOrigin || cp.origin, enr.serverKey);
    } catch (err) {
      throw new DeviceError("sync.bad_checkpoint", String(err));
    }
    if (cp.origin !== (enr.logOrigin || cp.origin) || cp.size !== newer.size || !equal(cp.rootHash, newer.root)) {
      throw new DeviceError("sync.bad_checkpoint", "its fields differ from its signed text");
    }
    const held = await this.store.get<CheckpointRow>("checkpoint");
    if (held) {
      const older = await openCheckpoint(held.signedNote, enr.logOrigin || held.origin, enr.serverKey);
      let proof: Uint8Array[] = [];
      if (older.size > 0n && older.size < newer.size) {
        proof = (
          await this.audit$!.getConsistencyProof(
            { electionId: enr.electionId, oldSize: older.size, newSize: newer.size },
            { timeoutMs: TIMEOUT_MS },
          )
        ).proof;
      }
      // A log never shrinks: a smaller one is another history.
      const ok = newer.size >= older.size && (await verifyConsistency(older, newer, proof));
      if (!ok) throw new DeviceError("sync.split_view", `held ${older.size}, shown ${newer.size}`);
    }
    return { origin: cp.origin, size: newer.size.toString(), root: newer.root, signedNote: cp.signedNote };
  }

  private async refreshElection(enr: Enrollment): Promise<void> {
    const resp = await this.sync$!.getElection({ electionId: enr.electionId }, { timeoutMs: TIMEOUT_MS });
    const e = await verifyElection(enr.electionId, resp.committeeRecords, this.election?.committeeKey);
    const stored = (await this.store.get<{ body: Uint8Array; signature: Uint8Array }[]>("committee")) ?? [];
    for (let i = 0; i < stored.length; i++) {
      const got = resp.committeeRecords[i];
      if (!got || !equal(got.body, stored[i].body) || !equal(got.signature, stored[i].signature)) {
        throw new DeviceError("sync.equivocation", `committee record ${i + 1}`);
      }
    }
    await this.store.put("committee", resp.committeeRecords.map((s) => ({ body: s.body, signature: s.signature })));
    this.election = e;
  }

  /** push sends what the server lacks; it reports whether the committee revoked this device. */
  private async push(enr: Enrollment, rep: SyncReport): Promise<boolean> {
    const unsent = BigInt(await this.store.pendingCount());
    const st = await this.sync$!.getDeviceState({ electionId: enr.electionId, deviceId: enr.deviceId, unsent }, { timeoutMs: TIMEOUT_MS });
    const held = st.highSeq > st.maxSeq ? st.highSeq : st.maxSeq;
    if (held > BigInt(this.head.seq)) throw new DeviceError("sync.fork", `the server holds record ${held}, this phone made ${this.head.seq}`);
    if (st.highSeq > 0n && st.highHash.length > 0) {
      const r = await this.store.record(Number(st.highSeq));
      if (!r || !equal(await bodyHash(r.body), st.highHash)) throw new DeviceError("sync.fork", `record ${st.highSeq}`);
    }
    const seqs = new Set<number>((await this.store.pending()).map((r) => r.seq));
    for (const s of st.missingSeqs) if (s > 0n && s <= BigInt(this.head.seq)) seqs.add(Number(s));
    for (let s = Number(held) + 1; s <= this.head.seq; s++) seqs.add(s);
    const order = [...seqs].sort((a, b) => a - b);
    for (let i = 0; i < order.length; i += BATCH) {
      const rows: RecordRow[] = [];
      for (const s of order.slice(i, i + BATCH)) {
        const r = await this.store.record(s);
        if (!r) throw new DeviceError("sync.corrupt", `record ${s} is missing`);
        rows.push(r);
      }
      const records: SignedRecord[] = rows.map((r) => create(SignedRecordSchema, { body: r.body, signature: r.signature }));
      const after = BigInt(order.length - i - rows.length);
      const resp = await this.sync$!.pushRecords(
        { electionId: enr.electionId, records, deviceTime: timestampFromMs(this.now()), unsent: after },
        { timeoutMs: TIMEOUT_MS },
      );
      rep.pushed += rows.length;
      // An answer whose checkpoint does not extend the log held is no
      // acknowledgement: the batch stays in the outbox.
      const cp = resp.checkpoint ? await this.verifyCheckpoint(enr, resp.checkpoint) : undefined;
      const byId = new Map(rows.map((r) => [r.recordId, r.seq]));
      const answers = [];
      for (const res of resp.results) {
        const seq = byId.get(res.recordId);
        if (seq === undefined || res.status === RecordStatus.UNSPECIFIED) continue;
        answers.push({ seq, status: RecordStatus[res.status], reason: res.message });
        rep.answered++;
        if (res.status === RecordStatus.REJECTED) rep.rejected++;
      }
      await this.store.ack(answers, cp);
    }
    return st.revoked;
  }

  private async pullStatus(enr: Enrollment, rep: SyncReport): Promise<void> {
    let token = (await this.store.get<string>("cursor")) ?? "";
    for (let page = 0; page < 10000; page++) {
      const resp = await this.sync$!.listUnitStatus({ electionId: enr.electionId, pageToken: token, pageSize: 1000 }, { timeoutMs: TIMEOUT_MS });
      const next = resp.nextPageToken;
      await this.store.putUnits(
        resp.units.map((u) => ({ unitId: u.unitId, progress: u.progress, lastVisit: u.lastVisit, visits: u.visits })),
        next,
      );
      rep.units += resp.units.length;
      if (resp.units.length === 0 || !next || next === token) return;
      token = next;
    }
  }

  /** decode is for the review of stored records. */
  static decode(row: RecordRow) {
    return decodeRecord(row.body);
  }
}
