// Shared helpers of the crypto*.test.ts files (kept beside the vectors they exercise).
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { decryptObject, encryptObject, type DecryptOptions, type EncryptOptions } from "../../src/crypto/engine/index.js";

/** Deterministic content of the vectors: byte i = i mod 251 (251 is prime, so chunks differ). */
export function pattern(n: number, offset = 0): Buffer {
  const buf = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i += 1) buf[i] = (i + offset) % 251;
  return buf;
}

export interface VectorArtifact {
  plainSize: number;
  encryptedSize: number;
  sha256: string;
  tags: string[];
  hex?: string;
  head?: string;
  tail?: string;
  file?: string;
}

export interface Vectors {
  dataKey: string;
  salt: string;
  operationId: string;
  path: string;
  chunkSize: number;
  hkdfInfo: string;
  artifactKey: string;
  artifacts: VectorArtifact[];
  wrap: {
    kid: string;
    masterKey: string;
    iv: string;
    context: { operationId: string; grantee: string; expiresAt: string };
    aad: string;
    dataKey: string;
    wrappedKey: { kid: string; iv: string; ciphertext: string };
  };
}

const here = (name: string): string => fileURLToPath(new URL(name, import.meta.url));

export function loadVectors(): Vectors {
  return JSON.parse(readFileSync(here("format-v1.json"), "utf8")) as Vectors;
}

/** The full stored object of a vector: inline hex, or the committed .bin file. */
export function vectorObject(v: VectorArtifact): Buffer {
  if (v.hex !== undefined) return Buffer.from(v.hex, "hex");
  if (v.file !== undefined) return readFileSync(here(v.file));
  throw new Error("vector has neither hex nor file");
}

/** Cuts `data` into pieces: a fixed size, or sizes cycled from a list. */
export function fragment(data: Buffer, sizes: number | number[]): Buffer[] {
  const list = typeof sizes === "number" ? [sizes] : sizes;
  const pieces: Buffer[] = [];
  let pos = 0;
  let k = 0;
  while (pos < data.length) {
    const n = Math.max(1, list[k % list.length] as number);
    // Copies, so a stream that kept views into a reused buffer would be caught.
    pieces.push(Buffer.from(data.subarray(pos, pos + n)));
    pos += n;
    k += 1;
  }
  return pieces;
}

/** A transformation of the crypto engine (encrypt, decrypt, decryptRange with their options bound). */
export type Transform = (source: AsyncIterable<Uint8Array>) => AsyncIterable<Uint8Array>;

/** Feeds `pieces` (one at a time) through `transform`; returns everything it output and how it ended. */
export async function run(transform: Transform, pieces: Uint8Array[]): Promise<{ out: Buffer; error: unknown }> {
  const out: Buffer[] = [];
  let error: unknown;
  async function* source(): AsyncGenerator<Uint8Array> {
    yield* pieces;
  }
  try {
    for await (const piece of transform(source())) out.push(Buffer.from(piece));
  } catch (err) {
    error = err;
  }
  return { out: Buffer.concat(out), error };
}

/** Node Buffer view of engine output (tests compare with Buffer.equals). */
export function buf(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** encryptObject, as a Buffer. */
export async function seal(plain: Uint8Array, opts: EncryptOptions): Promise<Buffer> {
  return buf(await encryptObject(plain, opts));
}

/** decryptObject, as a Buffer. */
export async function open(object: Uint8Array, opts: DecryptOptions): Promise<Buffer> {
  return buf(await decryptObject(object, opts));
}
