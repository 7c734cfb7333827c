import { createCipheriv, createDecipheriv, createSecretKey, randomBytes } from "node:crypto";
import { InvalidInputError } from "../errors.js";
import {
  assertChunkSize,
  buildHeader,
  chunkAuthError,
  chunkCount,
  chunkNonce,
  DEFAULT_CHUNK_SIZE,
  deriveArtifactKey,
  encryptedSize,
  HEADER_BYTES,
  parseHeader,
  plaintextSize,
  SALT_BYTES,
  TAG_BYTES,
  type DecryptOptions,
  type EncryptOptions,
} from "./format.js";

function asBuffer(data: Uint8Array, what: string): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (data instanceof Uint8Array) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  throw new InvalidInputError(`${what} must be a Buffer or Uint8Array`);
}

/**
 * Encrypts a whole artifact held in memory into the full object bytes (header + chunks).
 * Byte-for-byte what createEncryptStream produces for the same salt; the store uses it
 * for artifacts that fit in one chunk.
 */
export function encryptArtifact(plaintext: Buffer, opts: EncryptOptions): Buffer {
  const plain = asBuffer(plaintext, "plaintext");
  const chunkSize = opts.chunkSize ?? DEFAULT_CHUNK_SIZE;
  assertChunkSize(chunkSize);
  const salt = opts.salt ?? randomBytes(SALT_BYTES);
  const key = createSecretKey(deriveArtifactKey(opts.dataKey, salt, opts.operationId, opts.path));
  const total = chunkCount(plain.length, chunkSize);
  const out = Buffer.allocUnsafe(encryptedSize(plain.length, chunkSize));
  buildHeader(chunkSize, salt).copy(out, 0);
  let pos = HEADER_BYTES;
  for (let i = 0; i < total; i += 1) {
    const cipher = createCipheriv("aes-256-gcm", key, chunkNonce(i, i === total - 1), { authTagLength: TAG_BYTES });
    pos += cipher.update(plain.subarray(i * chunkSize, (i + 1) * chunkSize)).copy(out, pos);
    cipher.final();
    pos += cipher.getAuthTag().copy(out, pos);
  }
  return out;
}

/**
 * Decrypts full object bytes. Returns the plaintext only if every chunk verifies;
 * otherwise `IntegrityError` and nothing is returned.
 */
export function decryptArtifact(object: Buffer, opts: DecryptOptions): Buffer {
  const data = asBuffer(object, "object");
  const { chunkSize, salt } = parseHeader(data);
  const plainSize = plaintextSize(data.length, chunkSize);
  const key = createSecretKey(deriveArtifactKey(opts.dataKey, salt, opts.operationId, opts.path));
  const total = chunkCount(plainSize, chunkSize);
  const pieces: Buffer[] = [];
  let pos = HEADER_BYTES;
  for (let i = 0; i < total; i += 1) {
    const length = Math.min(chunkSize, plainSize - i * chunkSize);
    const decipher = createDecipheriv("aes-256-gcm", key, chunkNonce(i, i === total - 1), {
      authTagLength: TAG_BYTES,
    });
    decipher.setAuthTag(data.subarray(pos + length, pos + length + TAG_BYTES));
    const plain = decipher.update(data.subarray(pos, pos + length));
    try {
      decipher.final();
    } catch (cause) {
      throw chunkAuthError(i, cause);
    }
    pieces.push(plain);
    pos += length + TAG_BYTES;
  }
  return pieces.length === 1 ? (pieces[0] as Buffer) : Buffer.concat(pieces, plainSize);
}
