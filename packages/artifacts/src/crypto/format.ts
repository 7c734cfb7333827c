import { createHmac } from "node:crypto";
import { IntegrityError, InvalidInputError, RangeNotSatisfiableError } from "../errors.js";

/** Version byte of the object format written by this code (docs/format.md). */
export const FORMAT_VERSION = 1;
/** First four bytes of every encrypted object. */
export const MAGIC = "PSAE";
/** Header: "PSAE" | u8 version | u32be plaintext chunk size | 32-byte salt. */
export const HEADER_BYTES = 41;
/** AES-GCM tag stored after each chunk's ciphertext. */
export const TAG_BYTES = 16;
/** Bounds of the plaintext chunk size C; a header outside them is refused before any allocation. */
export const MIN_CHUNK_SIZE = 16 * 1024;
export const MAX_CHUNK_SIZE = 4 * 1024 * 1024;
/**
 * Plaintext chunk size written for new artifacts: 1 MiB.
 *
 * Measured on the 2-core dev machine (Node 20.20, OpenSSL 3.0.19; other jobs running, so
 * ranges over three runs): 256 MiB in memory through the encrypt stream, then the stored
 * bytes through the decrypt stream, both fed in 64 KiB pieces as fs.createReadStream gives them:
 *   C =  64 KiB: encrypt  970-1040 MB/s, decrypt 1330-1540 MB/s
 *   C = 256 KiB: encrypt 1920-2200 MB/s, decrypt 1860-2210 MB/s
 *   C =   1 MiB: encrypt 2230-2630 MB/s, decrypt 1870-2280 MB/s
 *   C =   4 MiB: encrypt 2120-2580 MB/s, decrypt 1870-2350 MB/s
 * Each chunk pays a fixed cost (cipher setup, tag, a trip through the stream machinery), so
 * 64 KiB runs at less than half the speed of 1 MiB; from 1 MiB on it is flat. Bigger chunks
 * buy nothing and cost per-stream memory (a stream holds up to ~2 C while deciding which
 * chunk is final) and range granularity (a 1-byte ranged read decrypts one whole chunk).
 * The tag overhead at 1 MiB is 16 bytes per MiB.
 */
export const DEFAULT_CHUNK_SIZE = 1024 * 1024;

/** Key and salt length (bytes) used throughout format v1. */
export const KEY_BYTES = 32;
export const SALT_BYTES = 32;
/** GCM nonce length: 11-byte big-endian chunk index, then the final-chunk flag. */
export const NONCE_BYTES = 12;

const MAGIC_BYTES = Buffer.from(MAGIC, "latin1");

/** Options for encrypting one artifact. */
export interface EncryptOptions {
  /** The operation's 32-byte data key (unwrapped). */
  dataKey: Buffer;
  /** Operation id: bound into the artifact key, so an object copied to another operation fails. */
  operationId: string;
  /** Artifact path: bound into the artifact key, so an object copied to another path fails. */
  path: string;
  /** Plaintext chunk size C, MIN_CHUNK_SIZE..MAX_CHUNK_SIZE; default DEFAULT_CHUNK_SIZE. */
  chunkSize?: number;
  /** Fixed 32-byte salt, for known-answer tests only; default 32 random bytes. */
  salt?: Buffer;
}

/** Options for decrypting one artifact (the chunk size and salt come from the object's header). */
export interface DecryptOptions {
  /** The operation's 32-byte data key (unwrapped). */
  dataKey: Buffer;
  /** Operation id the object was written under. */
  operationId: string;
  /** Artifact path the object was written under. */
  path: string;
}

/** What `planRange` tells the caller to fetch and how to cut the decrypted chunks. */
export interface RangePlan {
  /** Index of the first chunk covering the range. */
  firstChunk: number;
  /** Index of the last chunk covering the range. */
  lastChunk: number;
  /** First stored byte to fetch (offset in the object, header included). */
  objectStart: number;
  /** Last stored byte to fetch, inclusive (as in an HTTP Range header). */
  objectEnd: number;
  /** Plaintext bytes to drop from the start of the first chunk. */
  skip: number;
  /** Plaintext bytes to output after skipping (end - start + 1). */
  take: number;
}

export function assertKey(key: Buffer, what: string): void {
  if (!Buffer.isBuffer(key) || key.length !== KEY_BYTES) {
    throw new InvalidInputError(`${what} must be a ${KEY_BYTES}-byte Buffer`);
  }
}

export function assertChunkSize(chunkSize: number): void {
  if (!Number.isInteger(chunkSize) || chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE) {
    throw new InvalidInputError(
      `chunk size must be an integer from ${MIN_CHUNK_SIZE} to ${MAX_CHUNK_SIZE}, got ${String(chunkSize)}`,
    );
  }
}

function assertSize(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new InvalidInputError(`${what} must be a non-negative integer, got ${String(n)}`);
  }
}

/** Number of chunks of an artifact of `plainSize` bytes: an empty artifact is one empty final chunk. */
export function chunkCount(plainSize: number, chunkSize: number): number {
  return Math.max(1, Math.ceil(plainSize / chunkSize));
}

/** Plaintext length of chunk `index` (0-based) of an artifact of `plainSize` bytes. */
export function chunkPlainLength(plainSize: number, chunkSize: number, index: number): number {
  const last = chunkCount(plainSize, chunkSize) - 1;
  return index < last ? chunkSize : plainSize - last * chunkSize;
}

/** Stored object size for `plainSize` plaintext bytes: 41 + L + 16 * max(1, ceil(L / C)). */
export function encryptedSize(plainSize: number, chunkSize: number): number {
  assertSize(plainSize, "plaintext size");
  assertChunkSize(chunkSize);
  return HEADER_BYTES + plainSize + TAG_BYTES * chunkCount(plainSize, chunkSize);
}

/**
 * Plaintext size of a stored object of `encryptedSize` bytes written with chunk size C.
 * Every chunk but the last stores C + 16 bytes, so the number of chunks is
 * ceil((E - 41) / (C + 16)); sizes that no plaintext length produces, and chunk sizes outside
 * MIN..MAX, are `IntegrityError`.
 */
export function plaintextSize(encryptedSize: number, chunkSize: number): number {
  // Both inputs come from storage (object length, recorded chunk size), so nonsense in
  // either is a damaged artifact, not a caller's mistake.
  if (!Number.isInteger(chunkSize) || chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE) {
    throw new IntegrityError(`recorded chunk size ${String(chunkSize)} is outside ${MIN_CHUNK_SIZE}..${MAX_CHUNK_SIZE}`);
  }
  assertSize(encryptedSize, "encrypted size");
  const body = encryptedSize - HEADER_BYTES;
  if (body >= TAG_BYTES) {
    const chunks = Math.ceil(body / (chunkSize + TAG_BYTES));
    const plain = body - TAG_BYTES * chunks;
    if (plain >= 0 && chunkCount(plain, chunkSize) === chunks) return plain;
  }
  throw new IntegrityError(
    `encrypted size ${encryptedSize} is not a valid object size for chunk size ${chunkSize}`,
  );
}

/** The 41-byte header for chunk size C and a 32-byte salt. */
export function buildHeader(chunkSize: number, salt: Buffer): Buffer {
  const header = Buffer.alloc(HEADER_BYTES);
  MAGIC_BYTES.copy(header, 0);
  header.writeUInt8(FORMAT_VERSION, 4);
  header.writeUInt32BE(chunkSize, 5);
  salt.copy(header, 9);
  return header;
}

/**
 * Reads the header at the start of `header` (extra bytes after it are ignored).
 * Everything is checked before anything is allocated from the header's numbers, so a
 * forged chunk size (0, 2^32-1) is refused instead of sizing buffers.
 */
export function parseHeader(header: Buffer): { chunkSize: number; salt: Buffer } {
  if (header.length < HEADER_BYTES) {
    throw new IntegrityError(`encrypted object header is truncated (${header.length} of ${HEADER_BYTES} bytes)`);
  }
  if (!header.subarray(0, 4).equals(MAGIC_BYTES)) {
    throw new IntegrityError("encrypted object does not start with the PSAE magic");
  }
  const version = header.readUInt8(4);
  if (version !== FORMAT_VERSION) {
    throw new IntegrityError(`encrypted object has unsupported format version ${version}`);
  }
  const chunkSize = header.readUInt32BE(5);
  if (chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE) {
    throw new IntegrityError(
      `encrypted object header has chunk size ${chunkSize}, outside ${MIN_CHUNK_SIZE}..${MAX_CHUNK_SIZE}`,
    );
  }
  // Copy: the caller's buffer may be a large read we should not keep alive.
  const salt = Buffer.from(header.subarray(9, HEADER_BYTES));
  return { chunkSize, salt };
}

/** GCM nonce of chunk `index`: 11-byte big-endian index, then 0x01 if it is the final chunk, else 0x00. */
export function chunkNonce(index: number, final: boolean): Buffer {
  const nonce = Buffer.alloc(NONCE_BYTES);
  // Bytes 0..4 stay zero: 6 bytes hold any index a safe integer can count.
  nonce.writeUIntBE(index, 5, 6);
  nonce[11] = final ? 0x01 : 0x00;
  return nonce;
}

/**
 * Artifact key = HKDF-SHA256(ikm = data key, salt, info = "psa/v1" NUL operationId NUL path, 32 bytes).
 *
 * Written out (RFC 5869 extract + one expand block) rather than crypto.hkdfSync, whose
 * OpenSSL backend caps info at 1024 bytes; with one 32-byte block the two are identical.
 */
export function deriveArtifactKey(dataKey: Buffer, salt: Buffer, operationId: string, path: string): Buffer {
  assertKey(dataKey, "data key");
  if (!Buffer.isBuffer(salt) || salt.length !== SALT_BYTES) {
    throw new InvalidInputError(`salt must be a ${SALT_BYTES}-byte Buffer`);
  }
  const info = Buffer.from(`psa/v1\0${operationId}\0${path}`, "utf8");
  const prk = createHmac("sha256", salt).update(dataKey).digest();
  return createHmac("sha256", prk).update(info).update(Buffer.of(1)).digest();
}

/**
 * Which stored bytes hold plaintext bytes [start, end] (inclusive) of an artifact of
 * `plainSize` bytes, and how much of the decrypted chunks to drop and keep.
 * The caller validates the range first; anything outside 0 <= start <= end < plainSize
 * (including every range of an empty artifact) is `RangeNotSatisfiableError`.
 */
export function planRange(plainSize: number, chunkSize: number, start: number, end: number): RangePlan {
  assertSize(plainSize, "plaintext size");
  assertChunkSize(chunkSize);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || start > end || end >= plainSize) {
    throw new RangeNotSatisfiableError(
      `range ${String(start)}-${String(end)} is not satisfiable for an artifact of ${plainSize} bytes`,
      { details: { size: plainSize } },
    );
  }
  const firstChunk = Math.floor(start / chunkSize);
  const lastChunk = Math.floor(end / chunkSize);
  const stride = chunkSize + TAG_BYTES;
  const objectStart = HEADER_BYTES + firstChunk * stride;
  const objectEnd =
    HEADER_BYTES + lastChunk * stride + chunkPlainLength(plainSize, chunkSize, lastChunk) + TAG_BYTES - 1;
  return { firstChunk, lastChunk, objectStart, objectEnd, skip: start - firstChunk * chunkSize, take: end - start + 1 };
}

/** The error for a chunk whose tag does not verify (the only way tampering shows up in chunk data). */
export function chunkAuthError(index: number, cause: unknown): InstanceType<typeof IntegrityError> {
  return new IntegrityError(`chunk ${index} of the encrypted object failed authentication`, {
    cause,
    hint: "the object was modified, truncated, extended or reordered, or it belongs to another path or operation",
  });
}
