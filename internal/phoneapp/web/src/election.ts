// The election as the phone trusts it: the committee's signed records
// checked the way the CLI device checks them (internal/device/election.go).
// The definition names the committee key and is signed by it; every record
// is the committee's, for this election, in rising order, chained by
// prev_hash; the roster the open record froze has the hash it names.

import { timestampMs } from "@bufbuild/protobuf/wkt";
import type { Item, SignedRecord } from "./gen/doorstep/v1/record_pb.js";
import { equal } from "./bytes.js";
import { bodyHash, decodeRecord, verifyRecord } from "./record.js";
import { rosterHash, type RosterUnit } from "./log.js";

export interface Election {
  id: string;
  title: string;
  committeeKey: Uint8Array;
  items: Item[];
  units: RosterUnit[];
  opened: boolean;
  closedAtMs: number;
  committeeSeq: bigint;
}

export class ElectionError extends Error {}

export async function verifyElection(electionId: string, srs: SignedRecord[], pinned?: Uint8Array): Promise<Election> {
  if (srs.length === 0) throw new ElectionError(`the server has no committee records for election ${electionId}`);
  const first = decodeRecord(srs[0].body);
  const def = first.body.case === "committee" && first.body.value.action.case === "defineElection" ? first.body.value.action.value : undefined;
  if (!def) throw new ElectionError("the server's first committee record is not the election's definition");
  if (def.electionId !== electionId || first.electionId !== electionId) throw new ElectionError(`the server sent election ${def.electionId}, not ${electionId}`);
  const key = def.committeePublicKey;
  if (key.length !== 32) throw new ElectionError("the definition's committee key is not an Ed25519 key");
  if (pinned && !equal(pinned, key)) throw new ElectionError("the election's committee key changed: tell the election committee");
  const e: Election = { id: electionId, title: def.title, committeeKey: key, items: def.items, units: [], opened: false, closedAtMs: 0, committeeSeq: 0n };
  let prevSeq = 0n;
  let prevHash = new Uint8Array(0);
  let frozen: Uint8Array | undefined;
  let unitsAtOpen = -1;
  for (let i = 0; i < srs.length; i++) {
    const sr = srs[i];
    if (!(await verifyRecord(key, sr))) throw new ElectionError(`committee record ${i + 1} is not signed by the committee key`);
    const rec = decodeRecord(sr.body);
    const seq = rec.authorSeq;
    if (rec.electionId !== electionId) throw new ElectionError(`committee record ${seq} belongs to another election`);
    if (rec.authorId !== "committee" || rec.body.case !== "committee") throw new ElectionError(`record ${seq} is not the committee's`);
    if (i > 0 && seq <= prevSeq) throw new ElectionError(`committee records are out of order: ${seq} after ${prevSeq}`);
    if (i > 0 && seq === prevSeq + 1n && !equal(rec.prevHash, prevHash)) throw new ElectionError(`committee record ${seq} does not follow ${prevSeq}`);
    prevSeq = seq;
    prevHash = await bodyHash(sr.body);
    const act = rec.body.value.action;
    switch (act.case) {
      case "defineElection":
        if (i > 0) throw new ElectionError(`committee record ${seq} defines the election a second time`);
        break;
      case "roster":
        for (const u of act.value.units) {
          e.units.push({ unitId: u.unitId, ownerKey: u.ownerKey, building: u.building, areaCentiM2: u.areaCentiM2, developerHeld: u.developerHeld });
        }
        break;
      case "open":
        if (!e.opened) {
          e.opened = true;
          frozen = act.value.rosterSha256;
          unitsAtOpen = e.units.length;
        }
        break;
      case "close": {
        const ts = act.value.closedAt ?? rec.authorTime;
        e.closedAtMs = ts ? timestampMs(ts) : 0;
        break;
      }
    }
  }
  e.committeeSeq = prevSeq;
  if (unitsAtOpen >= 0 && frozen && frozen.length > 0) {
    if (!equal(await rosterHash(e.units.slice(0, unitsAtOpen)), frozen)) {
      throw new ElectionError("the roster the server sent does not match the one the committee froze: tell the election committee");
    }
  }
  return e;
}

/** floorOf reads the floor from a unit id like "3-2-501" (building-entrance-room). */
export function floorOf(unitId: string): string {
  const room = unitId.split("-").pop() ?? "";
  return /^[0-9]{3,}$/.test(room) ? String(Number(room.slice(0, -2))) : "";
}
