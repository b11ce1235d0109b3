// What the phone keeps, in IndexedDB (through idb): the device key (a
// non-extractable CryptoKey), the enrollment with the pinned server key,
// the chain head and clock, every record made (the outbox is the records
// not yet answered), the verified election, the walk list and its cursor,
// the latest verified checkpoint. Each save is one transaction, committed
// before the app says a ballot is saved.

import { openDB, type IDBPDatabase } from "idb";

export interface Enrollment {
  server: string;
  electionId: string;
  deviceId: string;
  serverKey: Uint8Array;
  fingerprint: string;
  logOrigin: string;
  label: string;
  joinedAt: number;
}

export interface RecordRow {
  seq: number;
  recordId: string;
  kind: "ballot" | "visit";
  unitId: string;
  body: Uint8Array;
  signature: Uint8Array;
  receipt: string;
  /** pending is 1 until the server answered for the record. */
  pending: 0 | 1;
  status: string;
  reason: string;
  savedAt: number;
  form?: unknown;
  outcome?: number;
  note?: string;
  supersedes?: string;
}

export interface UnitRow {
  unitId: string;
  progress: number;
  lastVisit: number;
  visits: number;
}

export interface ChainRow {
  seq: number;
  hash: Uint8Array;
}

export interface CheckpointRow {
  origin: string;
  size: string;
  root: Uint8Array;
  signedNote: string;
}

export class ConflictError extends Error {}

export class Store {
  private constructor(readonly db: IDBPDatabase) {}

  static async open(name = "doorstep"): Promise<Store> {
    const db = await openDB(name, 1, {
      upgrade(db) {
        db.createObjectStore("meta");
        const recs = db.createObjectStore("records", { keyPath: "seq" });
        recs.createIndex("pending", "pending");
        recs.createIndex("pendingKind", ["pending", "kind"]);
        recs.createIndex("unit", "unitId");
        recs.createIndex("recordId", "recordId", { unique: true });
        db.createObjectStore("units", { keyPath: "unitId" });
      },
    });
    return new Store(db);
  }

  close(): void {
    this.db.close();
  }

  get<T>(key: string): Promise<T | undefined> {
    return this.db.get("meta", key) as Promise<T | undefined>;
  }

  put(key: string, value: unknown): Promise<IDBValidKey> {
    return this.db.put("meta", value, key);
  }

  async putMany(values: { [key: string]: unknown }): Promise<void> {
    const tx = this.db.transaction("meta", "readwrite");
    for (const [k, v] of Object.entries(values)) void tx.store.put(v, k);
    await tx.done;
  }

  /**
   * saveRecord stores a record, the chain head after it and the clock in
   * one transaction, and resolves once it committed. It refuses when the
   * chain moved since the record was made (another tab saved first).
   */
  async saveRecord(row: RecordRow, head: ChainRow, hlc: bigint): Promise<void> {
    // "strict": the browser flushes the record to disk before it says the
    // transaction completed, as bbolt's fsync does for the CLI device.
    const tx = this.db.transaction(["meta", "records"], "readwrite", { durability: "strict" });
    const meta = tx.objectStore("meta");
    const cur = (await meta.get("chain")) as ChainRow | undefined;
    if ((cur?.seq ?? 0) !== row.seq - 1) {
      tx.abort();
      await tx.done.catch(() => undefined);
      throw new ConflictError("the chain moved while the record was made");
    }
    void tx.objectStore("records").add(row);
    void meta.put(head, "chain");
    void meta.put(hlc.toString(), "hlc");
    await tx.done;
  }

  async pending(): Promise<RecordRow[]> {
    return (await this.db.getAllFromIndex("records", "pending", 1)) as RecordRow[];
  }

  pendingCount(): Promise<number> {
    return this.db.countFromIndex("records", "pending", 1);
  }

  /** pendingBallots counts the ballots waiting, without reading them. */
  pendingBallots(): Promise<number> {
    return this.db.countFromIndex("records", "pendingKind", [1, "ballot"]);
  }

  async record(seq: number): Promise<RecordRow | undefined> {
    return (await this.db.get("records", seq)) as RecordRow | undefined;
  }

  async unitRecords(unitId: string): Promise<RecordRow[]> {
    const rows = (await this.db.getAllFromIndex("records", "unit", unitId)) as RecordRow[];
    return rows.sort((a, b) => a.seq - b.seq);
  }

  async allRecords(): Promise<RecordRow[]> {
    return (await this.db.getAll("records")) as RecordRow[];
  }

  /**
   * ack stores the server's answers and the checkpoint that came with
   * them in one transaction: each answered record leaves the outbox as its
   * answer is stored, and nothing else does.
   */
  async ack(answers: { seq: number; status: string; reason: string }[], checkpoint?: CheckpointRow): Promise<void> {
    const tx = this.db.transaction(["records", "meta"], "readwrite", { durability: "strict" });
    const recs = tx.objectStore("records");
    for (const a of answers) {
      const row = (await recs.get(a.seq)) as RecordRow | undefined;
      if (!row) continue;
      row.pending = 0;
      row.status = a.status;
      row.reason = a.reason;
      void recs.put(row);
    }
    if (checkpoint) {
      const meta = tx.objectStore("meta");
      const held = (await meta.get("checkpoint")) as CheckpointRow | undefined;
      if (!held || BigInt(checkpoint.size) > BigInt(held.size)) void meta.put(checkpoint, "checkpoint");
    }
    await tx.done;
  }

  async putUnits(units: UnitRow[], cursor: string): Promise<void> {
    const tx = this.db.transaction(["units", "meta"], "readwrite");
    for (const u of units) void tx.objectStore("units").put(u);
    if (cursor) void tx.objectStore("meta").put(cursor, "cursor");
    await tx.done;
  }

  async units(): Promise<UnitRow[]> {
    return (await this.db.getAll("units")) as UnitRow[];
  }
}
