import { Readable } from "node:stream";
import type { Backend } from "../backends/types.js";
import {
  decrypt,
  decryptRange,
  deriveArtifactKeyBytes,
  HEADER_BYTES,
  parseHeader,
  planRange,
  plaintextSize,
} from "../crypto.js";
import { nodePieceCipher } from "../crypto/node-cipher.js";
import { openOneChunk } from "../crypto/one-chunk.js";
import { IntegrityError, InvalidInputError, RangeNotSatisfiableError } from "../errors.js";
import { freeBytes } from "../free-bytes.js";
import { type ArtifactEntry, artifactObjectKey } from "../metadata.js";

/** A plaintext byte range, `end` inclusive (clamped to the last byte); no `end`: to the end. */
export interface PlainRange {
  start: number;
  end?: number;
}

export function checkRange(range: PlainRange | undefined): void {
  if (range === undefined) return;
  const endOk = range.end === undefined || (Number.isSafeInteger(range.end) && range.end >= range.start);
  if (!Number.isSafeInteger(range.start) || range.start < 0 || !endOk) {
    throw new InvalidInputError("range must have whole numbers 0 <= start <= end");
  }
}

/**
 * Opens an artifact's plaintext: the chunks covering `range` only, a one-chunk object verified
 * whole before a byte is released, or the whole object streamed and verified chunk by chunk.
 */
export async function openPlaintext(
  backend: Backend,
  operationId: string,
  entry: ArtifactEntry,
  dataKey: Buffer,
  range: PlainRange | undefined,
): Promise<{ body: Readable; range?: { start: number; end: number } }> {
  const { path } = entry;
  const key = artifactObjectKey(operationId, path);
  // plaintextSize refuses an edited chunk size as `integrity` (encryptedSize would call it invalid input).
  if (plaintextSize(entry.encryptedSize, entry.chunkSize) !== entry.size) {
    throw new IntegrityError(`metadata sizes of ${path} do not agree`);
  }

  if (range !== undefined) {
    const end = Math.min(range.end ?? entry.size - 1, entry.size - 1);
    if (entry.size === 0 || range.start >= entry.size) {
      throw new RangeNotSatisfiableError(`range starts beyond the end of ${path} (${entry.size} bytes)`, {
        details: { size: entry.size },
      });
    }
    const plan = planRange(entry.size, entry.chunkSize, range.start, end);
    const [head, header] = await Promise.all([backend.head(key), backend.getBytes(key, { start: 0, end: HEADER_BYTES - 1 })]);
    checkStored(entry, head);
    if (header === null) throw missing(path);
    const parsed = parseHeader(header.body);
    if (parsed.chunkSize !== entry.chunkSize) throw new IntegrityError(`chunk size of ${path} does not match its metadata`);
    const artifactKey = await deriveArtifactKeyBytes(dataKey, parsed.salt, operationId, path);
    const source = await backend.getStream(key, { start: plan.objectStart, end: plan.objectEnd });
    if (source === null) throw missing(path);
    const plaintext = decryptRange(freeing(backend, source), {
      pieceCipher: nodePieceCipher,
      key: artifactKey,
      chunkSize: entry.chunkSize,
      plainSize: entry.size,
      firstChunk: plan.firstChunk,
      lastChunk: plan.lastChunk,
      skip: plan.skip,
      take: plan.take,
    });
    return { body: Readable.from(plaintext, { objectMode: false }), range: { start: range.start, end } };
  }

  if (entry.size <= entry.chunkSize) {
    // One chunk: fetch and verify it whole before releasing a byte.
    const object = await backend.getBytes(key);
    checkStored(entry, object && { size: object.body.length });
    // A one-chunk object decrypts the same under any C >= its length, so the header's C (not
    // covered by the tags) must match what metadata recorded, and so must the plaintext size.
    if (parseHeader(object!.body.subarray(0, HEADER_BYTES)).chunkSize !== entry.chunkSize) {
      throw new IntegrityError(`chunk size of ${path} does not match its metadata`);
    }
    const plaintext = openOneChunk(object!.body, { dataKey, operationId, path });
    if (plaintext.length !== entry.size) {
      throw new IntegrityError(`${path} decrypted to ${plaintext.length} bytes, metadata says ${entry.size}`);
    }
    return { body: Readable.from([plaintext], { objectMode: false }) };
  }
  const [head, source] = await Promise.all([backend.head(key), backend.getStream(key)]);
  try {
    checkStored(entry, head);
  } catch (error) {
    source?.destroy();
    throw error;
  }
  const plaintext = decrypt(freeing(backend, source!), {
    pieceCipher: nodePieceCipher,
    dataKey,
    operationId,
    path,
    expectedChunkSize: entry.chunkSize,
    expectedPlainSize: entry.size,
  });
  return { body: Readable.from(plaintext, { objectMode: false }) };
}

/**
 * An object its metadata lists is not there: tampering, or the operation was deleted or swept
 * since the metadata was read (`details.missing`, so the store can tell the two apart).
 */
function missing(path: string): IntegrityError {
  return new IntegrityError(`object of ${path} is missing`, { details: { missing: true } });
}

/**
 * The stored length must be what the entry committed. (ETags are not compared: a migration or
 * a restore from backup rewrites identical bytes under new ETags; the tags catch any change.)
 */
function checkStored(entry: ArtifactEntry, stored: { size: number } | null | undefined): void {
  if (stored === null || stored === undefined) throw missing(entry.path);
  if (stored.size !== entry.encryptedSize) {
    throw new IntegrityError(`object of ${entry.path} has ${stored.size} bytes, metadata says ${entry.encryptedSize}`);
  }
}

/**
 * Hands on the pieces of a local file stream only this module reads, and frees each one's
 * memory as soon as the engine asks for the next: the engine keeps no reference to a piece past
 * that point (it copies what it holds back, and the cipher reads a chunk as its job starts).
 * Only a piece that is the whole of its ArrayBuffer is freed (fs.ReadStream reads into a buffer
 * of its own), never a view into a shared one (Node's small-buffer pool). S3 streams are left
 * alone (their client may share buffers). Without this, V8 frees those buffers only after tens
 * of MiB of them have piled up (docs/performance.md, row 6).
 */
async function* freeing(backend: Backend, source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  if (backend.kind !== "local") return yield* source;
  for await (const piece of source) {
    yield piece;
    freeBytes(piece);
  }
}
