// Format v1 layout: constants, header, nonces, sizes and range plans (pure arithmetic on
// Uint8Array; no Node API, so browsers run it too). See ./index.ts for the whole engine.
import { IntegrityError, InvalidInputError, RangeNotSatisfiableError } from "../../errors.js";

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
 * Plaintext chunk size written for new artifacts: 1 MiB. Each chunk pays a fixed cost (a
 * cipher job, its tag, a trip through the pipeline), so 64 KiB chunks run at less than half
 * the speed of 1 MiB; past 1 MiB it is flat, while memory per chunk in flight and the range
 * granularity (a 1-byte ranged read decrypts one whole chunk) grow. Tags cost 16 bytes per MiB.
 */
export const DEFAULT_CHUNK_SIZE = 1024 * 1024;

/** Key and salt length (bytes) used throughout format v1. */
export const KEY_BYTES = 32;
export const SALT_BYTES = 32;
/** GCM nonce length: 11-byte big-endian chunk index, then the final-chunk flag. */
export const NONCE_BYTES = 12;

const MAGIC_BYTES = new TextEncoder().encode(MAGIC);

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

export function assertBytes(value: unknown, length: number, what: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array) || value.length !== length) {
    throw new InvalidInputError(`${what} must be a ${length}-byte Uint8Array`);
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
 * MIN..MAX, are `IntegrityError` (both come from storage, so nonsense is damage, not a caller's mistake).
 */
export function plaintextSize(encryptedSize: number, chunkSize: number): number {
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
  throw new IntegrityError(`encrypted size ${encryptedSize} is not a valid object size for chunk size ${chunkSize}`);
}

/** The 41-byte header for chunk size C and a 32-byte salt. */
export function buildHeader(chunkSize: number, salt: Uint8Array): Uint8Array {
  assertChunkSize(chunkSize);
  assertBytes(salt, SALT_BYTES, "salt");
  const header = new Uint8Array(HEADER_BYTES);
  header.set(MAGIC_BYTES, 0);
  header[4] = FORMAT_VERSION;
  new DataView(header.buffer).setUint32(5, chunkSize);
  header.set(salt, 9);
  return header;
}

/**
 * Reads the header at the start of `bytes` (extra bytes after it are ignored). Everything is
 * checked before anything is sized from the header's numbers, so a forged chunk size
 * (0, 2^32-1) is refused instead of allocating. The salt is a copy (never a view of `bytes`).
 */
export function parseHeader(bytes: Uint8Array): { chunkSize: number; salt: Uint8Array } {
  if (bytes.length < HEADER_BYTES) {
    throw new IntegrityError(`encrypted object header is truncated (${bytes.length} of ${HEADER_BYTES} bytes)`);
  }
  if (MAGIC_BYTES.some((b, i) => bytes[i] !== b)) {
    throw new IntegrityError("encrypted object does not start with the PSAE magic");
  }
  const version = bytes[4];
  if (version !== FORMAT_VERSION) {
    throw new IntegrityError(`encrypted object has unsupported format version ${String(version)}`);
  }
  const chunkSize = new DataView(bytes.buffer, bytes.byteOffset, HEADER_BYTES).getUint32(5);
  if (chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE) {
    throw new IntegrityError(
      `encrypted object header has chunk size ${chunkSize}, outside ${MIN_CHUNK_SIZE}..${MAX_CHUNK_SIZE}`,
    );
  }
  // A copy (Buffer.prototype.slice would give a view), so a large read is not kept alive.
  return { chunkSize, salt: new Uint8Array(bytes.subarray(9, HEADER_BYTES)) };
}

/** GCM nonce of chunk `index`: 11-byte big-endian index, then 0x01 if it is the final chunk, else 0x00. */
export function chunkNonce(index: number, final: boolean): Uint8Array {
  if (!Number.isSafeInteger(index) || index < 0) throw new InvalidInputError(`chunk index ${String(index)} is not valid`);
  const nonce = new Uint8Array(NONCE_BYTES);
  // Bytes 0..3 stay zero: 7 bytes hold any index a safe integer can count.
  let n = index;
  for (let i = 10; n > 0; i -= 1) {
    nonce[i] = n % 256;
    n = Math.floor(n / 256);
  }
  nonce[11] = final ? 0x01 : 0x00;
  return nonce;
}

/**
 * Which stored bytes hold plaintext bytes [start, end] (inclusive) of an artifact of
 * `plainSize` bytes, and how much of the decrypted chunks to drop and keep. Anything outside
 * 0 <= start <= end < plainSize (including every range of an empty artifact) is
 * `RangeNotSatisfiableError`.
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
export function chunkAuthError(index: number, cause?: unknown): InstanceType<typeof IntegrityError> {
  return new IntegrityError(`chunk ${index} of the encrypted object failed authentication`, {
    cause,
    hint: "the object was modified, truncated, extended or reordered, or it belongs to another path or operation",
  });
}
