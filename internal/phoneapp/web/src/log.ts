// The server's side of trust: its key's fingerprint and verifier key
// (SPEC 6.4), signed checkpoints (6.3), the Merkle tree and consistency
// proofs (6.2, RFC 6962) and the roster hash (7).

import { concat, equal, fromBase64, sha256, toBase64, toBase64Raw, utf8 } from "./bytes.js";
import { verify } from "./ed25519.js";

/** fingerprint is "SHA256:" and the unpadded base64 of SHA-256(public key). */
export async function fingerprint(pub: Uint8Array): Promise<string> {
  return "SHA256:" + toBase64Raw(await sha256(pub));
}

/** keyHash is the note key hash: the first 4 bytes of SHA-256(name ‖ "\n" ‖ 0x01 ‖ key). */
export async function keyHash(name: string, pub: Uint8Array): Promise<Uint8Array> {
  return (await sha256(utf8(name + "\n"), new Uint8Array([1]), pub)).slice(0, 4);
}

/** parseVerifierKey reads "<name>+<hash hex>+<base64(0x01 ‖ key)>". */
export async function parseVerifierKey(vkey: string): Promise<{ name: string; publicKey: Uint8Array }> {
  const parts = vkey.split("+");
  if (parts.length !== 3) throw new Error("a verifier key has three parts separated by +");
  const [name, hash, b64] = parts;
  const raw = fromBase64(b64);
  if (raw.length !== 33 || raw[0] !== 1) throw new Error("the verifier key is not an Ed25519 key");
  const publicKey = raw.slice(1);
  const want = Array.from(await keyHash(name, publicKey), (x) => x.toString(16).padStart(2, "0")).join("");
  if (want !== hash) throw new Error("the verifier key's hash does not match its key");
  return { name, publicKey };
}

export interface Tree {
  size: bigint;
  root: Uint8Array;
}

/**
 * openCheckpoint verifies a signed checkpoint note with the server key
 * for origin, and returns the tree it states. It throws when no signature
 * line by that key verifies or the text is malformed.
 */
export async function openCheckpoint(noteText: string, origin: string, serverKey: Uint8Array): Promise<Tree> {
  const split = noteText.indexOf("\n\n");
  if (split < 0 || !noteText.endsWith("\n")) throw new Error("the checkpoint is not a signed note");
  const text = noteText.slice(0, split + 1);
  const lines = text.slice(0, -1).split("\n");
  if (lines.length < 3) throw new Error("the checkpoint has fewer than three lines");
  if (lines[0] !== origin) throw new Error(`the checkpoint is for log ${lines[0]}, not ${origin}`);
  if (!/^(0|[1-9][0-9]*)$/.test(lines[1])) throw new Error("the checkpoint's size is malformed");
  const root = fromBase64(lines[2]);
  if (root.length !== 32 || toBase64(root) !== lines[2]) throw new Error("the checkpoint's root is malformed");
  const want = await keyHash(origin, serverKey);
  const sigLines = noteText.slice(split + 2).split("\n").slice(0, -1);
  for (const line of sigLines) {
    const prefix = "\u2014 " + origin + " ";
    if (!line.startsWith(prefix)) continue;
    let raw: Uint8Array;
    try {
      raw = fromBase64(line.slice(prefix.length));
    } catch {
      continue;
    }
    if (raw.length !== 68 || !equal(raw.slice(0, 4), want)) continue;
    if (await verify(serverKey, utf8(text), raw.slice(4))) return { size: BigInt(lines[1]), root };
  }
  throw new Error("the checkpoint is not signed by the server key this phone joined with");
}

export function leafHash(entry: Uint8Array): Promise<Uint8Array> {
  return sha256(new Uint8Array([0]), entry);
}

export function nodeHash(left: Uint8Array, right: Uint8Array): Promise<Uint8Array> {
  return sha256(new Uint8Array([1]), left, right);
}

/** treeRoot is the RFC 6962 root over leaf hashes. */
export async function treeRoot(leaves: Uint8Array[]): Promise<Uint8Array> {
  if (leaves.length === 0) return sha256(new Uint8Array(0));
  if (leaves.length === 1) return leaves[0];
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return nodeHash(await treeRoot(leaves.slice(0, k)), await treeRoot(leaves.slice(k)));
}

/**
 * verifyConsistency checks an RFC 6962 / RFC 9162 (2.1.4.2) consistency
 * proof that the tree `older` is a prefix of the tree `newer`.
 */
export async function verifyConsistency(older: Tree, newer: Tree, proof: Uint8Array[]): Promise<boolean> {
  const m = older.size, n = newer.size;
  if (m > n) return false;
  if (m === n) return proof.length === 0 && equal(older.root, newer.root);
  if (m === 0n) return proof.length === 0;
  if (proof.length === 0) return false;
  let path = proof.slice();
  if ((m & (m - 1n)) === 0n) path = [older.root, ...path];
  let fn = m - 1n, sn = n - 1n;
  while ((fn & 1n) === 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  let fr = path[0], sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0n) return false;
    if ((fn & 1n) === 1n || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return equal(fr, older.root) && equal(sr, newer.root) && sn === 0n;
}

export interface RosterUnit {
  unitId: string;
  ownerKey: string;
  building: string;
  areaCentiM2: bigint;
  developerHeld: boolean;
}

/** rosterHash is SPEC section 7's hash of a roster. */
export async function rosterHash(units: RosterUnit[]): Promise<Uint8Array> {
  const sorted = units.slice().sort((a, b) => cmpBytes(utf8(a.unitId), utf8(b.unitId)));
  const parts: Uint8Array[] = [utf8("doorstep-roster-v1\n")];
  const u32 = (n: number) => {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, n);
    return b;
  };
  const str = (s: string) => {
    const b = utf8(s);
    parts.push(u32(b.length), b);
  };
  for (const u of sorted) {
    str(u.unitId);
    str(u.ownerKey);
    str(u.building);
    const a = new Uint8Array(8);
    new DataView(a.buffer).setBigInt64(0, u.areaCentiM2);
    parts.push(a, new Uint8Array([u.developerHeld ? 1 : 0]));
  }
  return sha256(concat(...parts));
}

export function cmpBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}
