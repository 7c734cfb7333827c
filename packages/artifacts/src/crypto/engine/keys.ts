// Artifact keys through WebCrypto (globalThis.crypto.subtle: browsers and Node alike).
import { InvalidInputError } from "../../errors.js";
import { assertBytes, KEY_BYTES, SALT_BYTES } from "./format.js";

type Subtle = typeof globalThis.crypto.subtle;

const subtle = (): Subtle => {
  const s = globalThis.crypto?.subtle;
  if (s === undefined) throw new InvalidInputError("WebCrypto (globalThis.crypto.subtle) is not available here; a secure context is needed");
  return s;
};

const encoder = new TextEncoder();

/** The DOM typings' BufferSource wants an ArrayBuffer-backed view; every view here is one. */
const view = (bytes: Uint8Array): Uint8Array<ArrayBuffer> => bytes as Uint8Array<ArrayBuffer>;

/** An AES-256-GCM key for this artifact's chunks (non-extractable, encrypt and decrypt). */
export type ArtifactKey = Awaited<ReturnType<Subtle["importKey"]>>;

async function hmac(key: Uint8Array, ...parts: Uint8Array[]): Promise<Uint8Array> {
  const k = await subtle().importKey("raw", view(key), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const data = parts.length === 1 ? parts[0]! : concatBytes(parts);
  return new Uint8Array(await subtle().sign("HMAC", k, view(data)));
}

/** The bytes of `parts` in one new Uint8Array. */
export function concatBytes(parts: readonly Uint8Array[], total = parts.reduce((n, p) => n + p.length, 0)): Uint8Array {
  const out = new Uint8Array(total);
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

/** HKDF info of format v1: "psa/v1" NUL operationId NUL path (UTF-8). */
export function hkdfInfo(operationId: string, path: string): Uint8Array {
  return encoder.encode(`psa/v1\0${operationId}\0${path}`);
}

/**
 * Raw artifact key = HKDF-SHA256(ikm = data key, salt, info = hkdfInfo(operationId, path), 32 bytes).
 * Written out (RFC 5869 extract + one expand block) with HMAC rather than WebCrypto's HKDF,
 * which Node's OpenSSL backend caps at 1024 bytes of info; with one block the two are identical.
 */
export async function deriveArtifactKeyBytes(
  dataKey: Uint8Array,
  salt: Uint8Array,
  operationId: string,
  path: string,
): Promise<Uint8Array> {
  assertBytes(dataKey, KEY_BYTES, "data key");
  assertBytes(salt, SALT_BYTES, "salt");
  const prk = await hmac(salt, dataKey);
  return hmac(prk, hkdfInfo(operationId, path), Uint8Array.of(1));
}

/** Imports a raw 32-byte artifact key (from `deriveArtifactKeyBytes`) for the chunk cipher. */
export async function importArtifactKey(raw: Uint8Array): Promise<ArtifactKey> {
  assertBytes(raw, KEY_BYTES, "artifact key");
  return subtle().importKey("raw", view(raw), { name: "AES-GCM" }, false, ["encrypt", "decrypt"]);
}

/** deriveArtifactKeyBytes then importArtifactKey. */
export async function deriveArtifactKey(
  dataKey: Uint8Array,
  salt: Uint8Array,
  operationId: string,
  path: string,
): Promise<ArtifactKey> {
  return importArtifactKey(await deriveArtifactKeyBytes(dataKey, salt, operationId, path));
}

/** `n` random bytes (WebCrypto's generator). */
export function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  globalThis.crypto.getRandomValues(out);
  return out;
}

/** AES-256-GCM seal of one chunk: ciphertext || 16-byte tag. WebCrypto copies `plain` before returning. */
export async function sealChunk(key: ArtifactKey, nonce: Uint8Array, plain: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await subtle().encrypt({ name: "AES-GCM", iv: view(nonce), tagLength: 128 }, key, view(plain)));
}

/** AES-256-GCM open of one stored chunk (ciphertext || tag); rejects unless the tag verifies. */
export async function openChunk(key: ArtifactKey, nonce: Uint8Array, stored: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await subtle().decrypt({ name: "AES-GCM", iv: view(nonce), tagLength: 128 }, key, view(stored)));
}
