import { createCipheriv, createDecipheriv, createSecretKey, randomBytes, type KeyObject } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";
import { IntegrityError, InvalidInputError } from "../errors.js";
import { ByteQueue } from "./byte-queue.js";
import {
  assertChunkSize,
  assertKey,
  buildHeader,
  chunkAuthError,
  chunkCount,
  chunkNonce,
  chunkPlainLength,
  DEFAULT_CHUNK_SIZE,
  deriveArtifactKey,
  HEADER_BYTES,
  parseHeader,
  SALT_BYTES,
  TAG_BYTES,
  type DecryptOptions,
  type EncryptOptions,
} from "./format.js";

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/** Seals the next `length` bytes of `queue` as chunk `index`, handing ciphertext pieces then the tag to `out`. */
function sealChunk(key: KeyObject, index: number, final: boolean, queue: ByteQueue, length: number, out: (b: Buffer) => void): void {
  const cipher = createCipheriv("aes-256-gcm", key, chunkNonce(index, final), { authTagLength: TAG_BYTES });
  queue.consume(length, (piece) => {
    const ct = cipher.update(piece);
    if (ct.length > 0) out(ct);
  });
  cipher.final(); // GCM is a stream mode: final() yields no bytes, it computes the tag.
  out(cipher.getAuthTag());
}

/**
 * Opens chunk `index` (ciphertext || tag, `stored` bytes at the front of `queue`) and returns
 * its plaintext pieces only once the tag has verified: GCM's update() yields plaintext before
 * authentication, so nothing it returns may leave this function on failure.
 */
function openChunk(key: KeyObject, index: number, final: boolean, queue: ByteQueue, stored: number): Buffer[] {
  const decipher = createDecipheriv("aes-256-gcm", key, chunkNonce(index, final), { authTagLength: TAG_BYTES });
  const plain: Buffer[] = [];
  queue.consume(stored - TAG_BYTES, (piece) => {
    const pt = decipher.update(piece);
    if (pt.length > 0) plain.push(pt);
  });
  decipher.setAuthTag(queue.take(TAG_BYTES));
  try {
    decipher.final();
  } catch (cause) {
    throw chunkAuthError(index, cause);
  }
  return plain;
}

/** Streaming encryptor: plaintext in, header + chunks out. */
export class EncryptStream extends Transform {
  readonly #key: KeyObject;
  readonly #chunkSize: number;
  readonly #queue = new ByteQueue();
  #index = 0;
  #plaintextBytes = 0;
  readonly #out = (b: Buffer): void => {
    this.push(b);
  };

  constructor(opts: EncryptOptions) {
    const chunkSize = opts.chunkSize ?? DEFAULT_CHUNK_SIZE;
    assertChunkSize(chunkSize);
    const salt = opts.salt ?? randomBytes(SALT_BYTES);
    const key = deriveArtifactKey(opts.dataKey, salt, opts.operationId, opts.path);
    // The writable side may run about one chunk ahead of the cipher (the source keeps reading
    // while a chunk is sealed); the readable side holds about one sealed chunk. With the up to
    // C + one write held back to decide finality, memory stays a small multiple of C.
    super({ writableHighWaterMark: chunkSize, readableHighWaterMark: chunkSize + TAG_BYTES });
    this.#key = createSecretKey(key);
    this.#chunkSize = chunkSize;
    this.push(buildHeader(chunkSize, salt));
  }

  /** Plaintext bytes received so far (the artifact size once the stream has finished). */
  get plaintextBytes(): number {
    return this.#plaintextBytes;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.#plaintextBytes += chunk.length;
      this.#queue.push(chunk);
      // Strictly more than C: a chunk of exactly C pending bytes may still be the final one,
      // and its nonce depends on that, so it waits for the next byte or the end.
      while (this.#queue.length > this.#chunkSize) {
        sealChunk(this.#key, this.#index++, false, this.#queue, this.#chunkSize, this.#out);
      }
      callback();
    } catch (err) {
      callback(asError(err));
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      // Whatever is left (0..C bytes) is the final chunk; empty input gives one empty final chunk.
      sealChunk(this.#key, this.#index++, true, this.#queue, this.#queue.length, this.#out);
      callback();
    } catch (err) {
      callback(asError(err));
    }
  }
}

/** Options of `createDecryptStream`. */
export interface DecryptStreamOptions extends DecryptOptions {
  /** Chunk size recorded in metadata; a header that disagrees is `IntegrityError`. */
  expectedChunkSize?: number;
  /** Plaintext size recorded in metadata; a stream that decrypts to another size is `IntegrityError`. */
  expectedPlainSize?: number;
}

/** Streaming decryptor of a whole object (header first). */
export class DecryptStream extends Transform {
  readonly #opts: DecryptStreamOptions;
  readonly #queue = new ByteQueue();
  #key: KeyObject | undefined;
  #chunkSize = 0;
  #index = 0;
  #plaintextBytes = 0;

  constructor(opts: DecryptStreamOptions) {
    assertKey(opts.dataKey, "data key");
    super({ readableHighWaterMark: DEFAULT_CHUNK_SIZE, writableHighWaterMark: DEFAULT_CHUNK_SIZE });
    this.#opts = opts;
  }

  /** Plaintext bytes released so far (all authenticated). */
  get plaintextBytes(): number {
    return this.#plaintextBytes;
  }

  /** Chunk size from the header (0 until the header has arrived). */
  get chunkSize(): number {
    return this.#chunkSize;
  }

  #release(pieces: Buffer[]): void {
    for (const piece of pieces) {
      this.#plaintextBytes += piece.length;
      this.push(piece);
    }
    const expected = this.#opts.expectedPlainSize;
    if (expected !== undefined && this.#plaintextBytes > expected) {
      throw new IntegrityError(`encrypted object decrypts to more than the ${expected} bytes recorded in metadata`);
    }
  }

  #readHeader(): boolean {
    if (this.#key !== undefined) return true;
    if (this.#queue.length < HEADER_BYTES) return false;
    const { chunkSize, salt } = parseHeader(this.#queue.take(HEADER_BYTES));
    const expected = this.#opts.expectedChunkSize;
    if (expected !== undefined && chunkSize !== expected) {
      throw new IntegrityError(`encrypted object header has chunk size ${chunkSize}, metadata records ${expected}`);
    }
    this.#chunkSize = chunkSize;
    this.#key = createSecretKey(deriveArtifactKey(this.#opts.dataKey, salt, this.#opts.operationId, this.#opts.path));
    return true;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.#queue.push(chunk);
      if (this.#readHeader()) {
        const stored = this.#chunkSize + TAG_BYTES;
        // A full-size stored chunk may be the final one; only more bytes after it prove it is not.
        while (this.#queue.length > stored) {
          this.#release(openChunk(this.#key as KeyObject, this.#index, false, this.#queue, stored));
          this.#index += 1;
        }
      }
      callback();
    } catch (err) {
      callback(asError(err));
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      if (!this.#readHeader()) {
        throw new IntegrityError(
          `encrypted object ends inside its header (${this.#queue.length} of ${HEADER_BYTES} bytes)`,
        );
      }
      const left = this.#queue.length;
      if (left === 0) throw new IntegrityError("encrypted object ends without a final chunk");
      if (left < TAG_BYTES) {
        throw new IntegrityError(`encrypted object ends inside chunk ${this.#index} (${left} bytes, shorter than its tag)`);
      }
      this.#release(openChunk(this.#key as KeyObject, this.#index, true, this.#queue, left));
      this.#index += 1;
      const expected = this.#opts.expectedPlainSize;
      if (expected !== undefined && this.#plaintextBytes !== expected) {
        throw new IntegrityError(
          `encrypted object decrypts to ${this.#plaintextBytes} bytes, metadata records ${expected}`,
        );
      }
      callback();
    } catch (err) {
      callback(asError(err));
    }
  }
}

/** Options of `createRangeDecryptStream` (see `planRange`). */
export interface RangeDecryptOptions {
  /** deriveArtifactKey(dataKey, header salt, operationId, path). */
  artifactKey: Buffer;
  /** Chunk size from the header. */
  chunkSize: number;
  /** Plaintext size of the whole artifact (tells which chunk is final and how long it is). */
  plainSize: number;
  /** First and last chunk index the input covers, from planRange. */
  firstChunk: number;
  lastChunk: number;
  /** Plaintext bytes to drop from the start of firstChunk, then bytes to output, from planRange. */
  skip: number;
  take: number;
}

/** Decrypts the stored bytes of chunks firstChunk..lastChunk and outputs plaintext [skip, skip + take). */
export class RangeDecryptStream extends Transform {
  readonly #key: KeyObject;
  readonly #chunkSize: number;
  readonly #plainSize: number;
  readonly #totalChunks: number;
  readonly #lastChunk: number;
  readonly #queue = new ByteQueue();
  #index: number;
  #skip: number;
  #take: number;

  constructor(opts: RangeDecryptOptions) {
    assertKey(opts.artifactKey, "artifact key");
    assertChunkSize(opts.chunkSize);
    const { chunkSize, plainSize, firstChunk, lastChunk, skip, take } = opts;
    const total = chunkCount(plainSize, chunkSize);
    const ints = [plainSize, firstChunk, lastChunk, skip, take].every((n) => Number.isSafeInteger(n) && n >= 0);
    if (
      !ints ||
      firstChunk > lastChunk ||
      lastChunk >= total ||
      take < 1 ||
      skip >= chunkPlainLength(plainSize, chunkSize, firstChunk) ||
      firstChunk * chunkSize + skip + take > Math.min(plainSize, (lastChunk + 1) * chunkSize)
    ) {
      throw new InvalidInputError("range decrypt options do not describe a range planRange produces");
    }
    super({ readableHighWaterMark: chunkSize, writableHighWaterMark: chunkSize });
    this.#key = createSecretKey(opts.artifactKey);
    this.#chunkSize = chunkSize;
    this.#plainSize = plainSize;
    this.#totalChunks = total;
    this.#lastChunk = lastChunk;
    this.#index = firstChunk;
    this.#skip = skip;
    this.#take = take;
  }

  #stored(index: number): number {
    return chunkPlainLength(this.#plainSize, this.#chunkSize, index) + TAG_BYTES;
  }

  #emit(piece: Buffer): void {
    let p = piece;
    if (this.#skip > 0) {
      const drop = Math.min(this.#skip, p.length);
      this.#skip -= drop;
      p = p.subarray(drop);
    }
    if (p.length > this.#take) p = p.subarray(0, this.#take);
    if (p.length === 0) return;
    this.#take -= p.length;
    this.push(p);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.#queue.push(chunk);
      // Chunk lengths are known from plainSize, so each chunk opens as soon as it is complete.
      while (this.#index <= this.#lastChunk && this.#queue.length >= this.#stored(this.#index)) {
        const index = this.#index;
        const final = index === this.#totalChunks - 1;
        for (const piece of openChunk(this.#key, index, final, this.#queue, this.#stored(index))) this.#emit(piece);
        this.#index += 1;
      }
      if (this.#index > this.#lastChunk && this.#queue.length > 0) {
        throw new IntegrityError("ranged read returned more bytes than the requested chunks hold");
      }
      callback();
    } catch (err) {
      callback(asError(err));
    }
  }

  override _flush(callback: TransformCallback): void {
    if (this.#index <= this.#lastChunk) {
      callback(
        new IntegrityError(
          `ranged read ended inside chunk ${this.#index} (${this.#queue.length} of ${this.#stored(this.#index)} bytes)`,
        ),
      );
      return;
    }
    callback();
  }
}

/** See crypto.ts. */
export function createEncryptStream(opts: EncryptOptions): EncryptStream {
  return new EncryptStream(opts);
}

/** See crypto.ts. */
export function createDecryptStream(opts: DecryptStreamOptions): DecryptStream {
  return new DecryptStream(opts);
}

/** See crypto.ts. */
export function createRangeDecryptStream(opts: RangeDecryptOptions): RangeDecryptStream {
  return new RangeDecryptStream(opts);
}
