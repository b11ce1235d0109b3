// The device key and Ed25519. Signing uses WebCrypto with a
// non-extractable key that IndexedDB keeps as a CryptoKey; a browser
// without WebCrypto Ed25519 gets @noble/ed25519 with a seed kept in
// IndexedDB instead (extractable by nature: the only way there).
// Verifying always follows ZIP-215 (SPEC section 1), which WebCrypto's
// cofactorless check does not, so it is @noble/ed25519's zip215 verifier.

import * as noble from "@noble/ed25519";
import { randomBytes } from "./bytes.js";

export type DeviceKey =
  | { kind: "webcrypto"; privateKey: CryptoKey; publicKey: Uint8Array }
  | { kind: "noble"; seed: Uint8Array; publicKey: Uint8Array };

let webcryptoOK: boolean | undefined;

async function hasWebCryptoEd25519(): Promise<boolean> {
  if (webcryptoOK === undefined) {
    try {
      await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
      webcryptoOK = true;
    } catch {
      webcryptoOK = false;
    }
  }
  return webcryptoOK;
}

/** generateKey makes the device key: WebCrypto's, non-extractable, when the browser has it. */
export async function generateKey(forceFallback = false): Promise<DeviceKey> {
  if (!forceFallback && (await hasWebCryptoEd25519())) {
    const kp = (await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"])) as CryptoKeyPair;
    const publicKey = new Uint8Array(await crypto.subtle.exportKey("raw", kp.publicKey));
    return { kind: "webcrypto", privateKey: kp.privateKey, publicKey };
  }
  const seed = randomBytes(32);
  return { kind: "noble", seed, publicKey: await noble.getPublicKeyAsync(seed) };
}

/** sign makes a plain RFC 8032 signature of msg. */
export async function sign(key: DeviceKey, msg: Uint8Array): Promise<Uint8Array> {
  if (key.kind === "webcrypto") {
    return new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, key.privateKey, msg as BufferSource));
  }
  return noble.signAsync(msg, key.seed);
}

/** verify checks sig over msg by pub under the ZIP-215 rule of SPEC section 1. */
export async function verify(pub: Uint8Array, msg: Uint8Array, sig: Uint8Array): Promise<boolean> {
  if (pub.length !== 32 || sig.length !== 64) return false;
  try {
    return await noble.verifyAsync(sig, msg, pub, { zip215: true });
  } catch {
    return false;
  }
}
