// Streaming encrypt / decrypt over AsyncIterable<Uint8Array>, several chunks in flight.
import { IntegrityError, InvalidInputError } from "../../errors.js";
import {
  assertBytes,
  assertChunkSize,
  buildHeader,
  chunkAuthError,
  chunkCount,
  chunkNonce,
  chunkPlainLength,
  DEFAULT_CHUNK_SIZE,
  HEADER_BYTES,
  KEY_BYTES,
  parseHeader,
  plaintextSize,
  SALT_BYTES,
  TAG_BYTES,
} from "./format.js";
import {
  type ArtifactKey,
  concatBytes,
  deriveArtifactKey,
  deriveArtifactKeyBytes,
  openChunk,
  randomBytes,
  sealChunk,
} from "./keys.js";
import { encryptPieces, type PieceCipher } from "./pieces.js";

/**
 * Chunks in flight at once by default. WebCrypto runs each on a worker thread (Node: libuv's
 * pool of 4), so reading, writing and ciphering overlap; the output still comes out in order.
 */
export const DEFAULT_CONCURRENCY = 4;

/** What the streams read: pieces of any size (Buffer is a Uint8Array), sync or async. */
export type Source = AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

/** Options for encrypting one artifact. */
export interface EncryptOptions {
  /** The operation's 32-byte data key (unwrapped). */
  dataKey: Uint8Array;
  /** Operation id: bound into the artifact key, so an object copied to another operation fails. */
  operationId: string;
  /** Artifact path: bound into the artifact key, so an object copied to another path fails. */
  path: string;
  /** Plaintext chunk size C, MIN_CHUNK_SIZE..MAX_CHUNK_SIZE; default DEFAULT_CHUNK_SIZE. */
  chunkSize?: number;
  /** Fixed 32-byte salt, for known-answer tests only; default 32 random bytes. */
  salt?: Uint8Array;
  /** Chunks in flight, 1..64; default DEFAULT_CONCURRENCY. */
  concurrency?: number;
  /**
   * A synchronous piece cipher to seal with instead of WebCrypto (the SDK passes node:crypto's:
   * faster in Node, see docs/performance.md); `concurrency` then does not apply.
   */
  pieceCipher?: PieceCipher;
}

/** Options for decrypting a whole object (chunk size and salt come from its header). */
export interface DecryptOptions {
  dataKey: Uint8Array;
  operationId: string;
  path: string;
  /** Chunk size recorded in metadata; a header that disagrees is `IntegrityError`. */
  expectedChunkSize?: number;
  /** Plaintext size recorded in metadata; an object that decrypts to another size is `IntegrityError`. */
  expectedPlainSize?: number;
  concurrency?: number;
  /** A synchronous cipher to open chunks with instead of WebCrypto (the SDK passes node:crypto's). */
  pieceCipher?: PieceCipher;
}

/** Options for decrypting the stored bytes of chunks firstChunk..lastChunk (see `planRange`). */
export interface RangeDecryptOptions {
  /**
   * deriveArtifactKey(dataKey, header salt, operationId, path); with `pieceCipher`, the raw 32
   * bytes instead (deriveArtifactKeyBytes).
   */
  key: ArtifactKey | Uint8Array;
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
  concurrency?: number;
  /** A synchronous cipher to open chunks with instead of WebCrypto; `key` is then the raw bytes. */
  pieceCipher?: PieceCipher;
}

/** A running transformation: iterate it once for the output; counts what went through. */
export interface Transformed extends AsyncIterable<Uint8Array> {
  /** Plaintext bytes read (encrypt) or released after verification (decrypt) so far. */
  readonly plaintextBytes: number;
}

function checkConcurrency(n: number | undefined): number {
  if (n === undefined) return DEFAULT_CONCURRENCY;
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new InvalidInputError(`concurrency must be 1..64, got ${String(n)}`);
  return n;
}

function checkIds(operationId: unknown, path: unknown): void {
  if (typeof operationId !== "string" || typeof path !== "string") {
    throw new InvalidInputError("operationId and path must be strings");
  }
}

/**
 * Cuts pieces into chunks. A chunk that lies inside one piece is handed on as a view, the rest
 * are assembled in one buffer reused for every chunk; each chunk handed on must be used (WebCrypto
 * copies its input when the job starts) before `cut` resumes. No piece is referenced after its
 * `cut` has finished, so a source may reuse its buffer for the next piece.
 * With `holdBack`, a complete chunk is handed on only once a byte after it arrives (the final
 * chunk's nonce differs, so it waits for the end: `rest()`).
 */
class Chunker {
  readonly #buf: Uint8Array;
  #fill = 0;
  constructor(
    capacity: number,
    private readonly holdBack: boolean,
  ) {
    this.#buf = new Uint8Array(capacity);
  }

  /** `size()`: length of the next chunk, 0 when no more bytes are allowed (`cut` then returns what it did not take). */
  *cut(piece: unknown, size: () => number): Generator<Uint8Array, number> {
    if (!(piece instanceof Uint8Array)) throw new InvalidInputError("stream pieces must be Uint8Array");
    let at = 0;
    while (at < piece.length) {
      const n = size();
      if (n === 0) return piece.length - at;
      if (this.#fill === n) {
        this.#fill = 0;
        yield this.#buf.subarray(0, n);
        continue;
      }
      const left = piece.length - at;
      if (this.#fill === 0 && (this.holdBack ? left > n : left >= n)) {
        at += n;
        yield piece.subarray(at - n, at);
        continue;
      }
      const copy = Math.min(n - this.#fill, left);
      this.#buf.set(piece.subarray(at, at + copy), this.#fill);
      this.#fill += copy;
      at += copy;
      if (!this.holdBack && this.#fill === n) {
        this.#fill = 0;
        yield this.#buf.subarray(0, n);
      }
    }
    return 0;
  }

  /** Bytes pending. */
  get pending(): number {
    return this.#fill;
  }

  /** The pending bytes (valid until the next `cut`), leaving none. */
  rest(): Uint8Array {
    const out = this.#buf.subarray(0, this.#fill);
    this.#fill = 0;
    return out;
  }
}

/** Ordered window of chunk jobs: at most `limit` in flight, results taken in submission order. */
class Window {
  readonly #jobs: Promise<Uint8Array>[] = [];
  constructor(readonly limit: number) {}
  get size(): number {
    return this.#jobs.length;
  }
  get full(): boolean {
    return this.#jobs.length >= this.limit;
  }
  add(job: Promise<Uint8Array>): void {
    job.catch(() => {}); // awaited in order by next(); a later one failing first is not unhandled.
    this.#jobs.push(job);
  }
  next(): Promise<Uint8Array> {
    return this.#jobs.shift()!;
  }
  /** Resolves (never rejects) once the oldest job has settled. */
  headSettled(): Promise<true> {
    return this.#jobs[0]!.then(
      () => true as const,
      () => true as const,
    );
  }
}

/**
 * Reads the source one piece at a time. While it waits for a piece, chunks the window has
 * finished are handed on (in order), so output never waits for input it does not need: a
 * stalled source still lets every completed chunk through.
 */
class Reader {
  readonly #it: AsyncIterator<unknown> | Iterator<unknown>;
  #pending: Promise<IteratorResult<unknown>> | undefined;
  #done = false;

  constructor(source: Source) {
    const s = source as Partial<AsyncIterable<unknown> & Iterable<unknown>>;
    this.#it = s[Symbol.asyncIterator]?.() ?? s[Symbol.iterator]!();
  }

  /** The next piece (undefined at the end); yields `emit(chunk)` for each chunk finished meanwhile. */
  async *next(window: Window, emit: (out: Uint8Array) => Uint8Array): AsyncGenerator<Uint8Array, unknown> {
    this.#pending ??= Promise.resolve(this.#it.next());
    const arrived = this.#pending.then(
      () => false as const,
      () => false as const,
    );
    while (window.size > 0 && (await Promise.race([window.headSettled(), arrived]))) {
      const out = emit(await window.next());
      if (out.length > 0) yield out;
    }
    const result = await this.#pending;
    this.#pending = undefined;
    if (result.done) this.#done = true;
    return result.done ? undefined : result.value;
  }

  /** Closes the source if it did not end; does not wait for a piece still being read. */
  async close(): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    const closing = Promise.resolve(this.#it.return?.());
    if (this.#pending === undefined) await closing;
    else closing.catch(() => {});
  }
}

const same = (out: Uint8Array): Uint8Array => out;

/** Checks an encryption's arguments; its chunk size, salt (random unless given) and header. */
function encryptionStart(opts: EncryptOptions): { chunkSize: number; salt: Uint8Array; header: Uint8Array } {
  const chunkSize = opts.chunkSize ?? DEFAULT_CHUNK_SIZE;
  assertChunkSize(chunkSize);
  assertBytes(opts.dataKey, KEY_BYTES, "data key");
  checkIds(opts.operationId, opts.path);
  const salt = opts.salt ?? randomBytes(SALT_BYTES);
  return { chunkSize, salt, header: buildHeader(chunkSize, salt) };
}

function transformed(run: (count: (n: number) => void) => AsyncGenerator<Uint8Array>): Transformed {
  let bytes = 0;
  const gen = run((n) => {
    bytes += n;
  });
  return {
    get plaintextBytes() {
      return bytes;
    },
    [Symbol.asyncIterator]: () => gen,
  };
}

/** Opens one stored chunk (ciphertext || tag) under a nonce; rejects unless its tag verifies. */
type Opener = (nonce: Uint8Array, stored: Uint8Array) => Promise<Uint8Array>;

const webCryptoOpener =
  (key: ArtifactKey): Opener =>
  (nonce, stored) =>
    openChunk(key, nonce, stored);

/** The opener of a whole-object decryption: the piece cipher's when given one, else WebCrypto's. */
async function chunkOpener(opts: DecryptOptions, salt: Uint8Array): Promise<Opener> {
  const cipher = opts.pieceCipher;
  if (cipher === undefined) return webCryptoOpener(await deriveArtifactKey(opts.dataKey, salt, opts.operationId, opts.path));
  const raw = await deriveArtifactKeyBytes(opts.dataKey, salt, opts.operationId, opts.path);
  return async (nonce, stored) => cipher.open(raw, nonce, stored);
}

function open(opener: Opener, index: number, final: boolean, stored: Uint8Array): Promise<Uint8Array> {
  return opener(chunkNonce(index, final), stored).catch((cause: unknown) => {
    throw chunkAuthError(index, cause);
  });
}

/**
 * Encrypts plaintext pieces into the object's bytes: the 41-byte header, then each chunk's
 * ciphertext || tag. Argument errors throw here; source errors come out of the iteration.
 */
export function encrypt(source: Source, opts: EncryptOptions): Transformed {
  const start = encryptionStart(opts);
  if (opts.pieceCipher !== undefined) return encryptPieces(source, opts, start, opts.pieceCipher, transformed);
  const { chunkSize, salt, header } = start;
  const window = new Window(checkConcurrency(opts.concurrency));
  const size = () => chunkSize;
  return transformed(async function* (count) {
    const key = await deriveArtifactKey(opts.dataKey, salt, opts.operationId, opts.path);
    yield header;
    // Held back: a chunk of exactly C pending bytes may still be the final one, and its nonce says so.
    const chunker = new Chunker(chunkSize, true);
    const reader = new Reader(source);
    let index = 0;
    try {
      for (;;) {
        const piece = yield* reader.next(window, same);
        if (piece === undefined) break;
        for (const plain of chunker.cut(piece, size)) {
          window.add(sealChunk(key, chunkNonce(index++, false), plain));
          if (window.full) yield await window.next();
        }
        count((piece as Uint8Array).length);
      }
    } finally {
      await reader.close();
    }
    // Whatever is left (0..C bytes) is the final chunk; no input gives one empty final chunk.
    window.add(sealChunk(key, chunkNonce(index, true), chunker.rest()));
    while (window.size > 0) yield await window.next();
  });
}

/**
 * Decrypts a whole object's bytes (header first) into plaintext, releasing each chunk only
 * after its tag verifies. An object that ends without a valid final chunk (truncated,
 * extended, reordered) is `IntegrityError`, never a clean end.
 */
export function decrypt(source: Source, opts: DecryptOptions): Transformed {
  assertBytes(opts.dataKey, KEY_BYTES, "data key");
  checkIds(opts.operationId, opts.path);
  const window = new Window(checkConcurrency(opts.concurrency));
  const expected = opts.expectedPlainSize;
  return transformed(async function* (count) {
    const header = new Uint8Array(HEADER_BYTES);
    let headerBytes = 0;
    let opener: Opener | undefined;
    let chunker: Chunker | undefined;
    let stored = 0;
    let index = 0;
    let released = 0;
    const size = () => stored;
    const release = (plain: Uint8Array): Uint8Array => {
      released += plain.length;
      if (expected !== undefined && released > expected) {
        throw new IntegrityError(`encrypted object decrypts to more than the ${expected} bytes recorded in metadata`);
      }
      count(plain.length);
      return plain;
    };
    const reader = new Reader(source);
    try {
      for (;;) {
        let piece = yield* reader.next(window, release);
        if (piece === undefined) break;
        if (chunker === undefined) {
          if (!(piece instanceof Uint8Array)) throw new InvalidInputError("stream pieces must be Uint8Array");
          const n = Math.min(HEADER_BYTES - headerBytes, piece.length);
          header.set(piece.subarray(0, n), headerBytes);
          headerBytes += n;
          if (headerBytes < HEADER_BYTES) continue;
          piece = piece.subarray(n);
          const { chunkSize, salt } = parseHeader(header);
          if (opts.expectedChunkSize !== undefined && chunkSize !== opts.expectedChunkSize) {
            throw new IntegrityError(`encrypted object header has chunk size ${chunkSize}, metadata records ${opts.expectedChunkSize}`);
          }
          stored = chunkSize + TAG_BYTES;
          opener = await chunkOpener(opts, salt);
          // Held back: a full-size stored chunk may be the final one; only a byte after it proves it is not.
          chunker = new Chunker(stored, true);
        }
        for (const chunk of chunker.cut(piece, size)) {
          window.add(open(opener!, index++, false, chunk));
          if (window.full) yield release(await window.next());
        }
      }
    } finally {
      await reader.close();
    }
    if (chunker === undefined) {
      throw new IntegrityError(`encrypted object ends inside its header (${headerBytes} of ${HEADER_BYTES} bytes)`);
    }
    const left = chunker.pending;
    if (left >= TAG_BYTES) window.add(open(opener!, index, true, chunker.rest()));
    while (window.size > 0) yield release(await window.next());
    if (left === 0) throw new IntegrityError("encrypted object ends without a final chunk");
    if (left < TAG_BYTES) {
      throw new IntegrityError(`encrypted object ends inside chunk ${index} (${left} bytes, shorter than its tag)`);
    }
    if (expected !== undefined && released !== expected) {
      throw new IntegrityError(`encrypted object decrypts to ${released} bytes, metadata records ${expected}`);
    }
  });
}

/**
 * Decrypts the stored bytes of chunks firstChunk..lastChunk (the object byte range planRange
 * gives) and outputs plaintext [skip, skip + take) of them. Fewer or more bytes than those
 * chunks hold are `IntegrityError`.
 */
export function decryptRange(source: Source, opts: RangeDecryptOptions): Transformed {
  const { key, chunkSize, plainSize, firstChunk, lastChunk } = opts;
  assertChunkSize(chunkSize);
  const total = chunkCount(plainSize, chunkSize);
  const ints = [plainSize, firstChunk, lastChunk, opts.skip, opts.take].every((n) => Number.isSafeInteger(n) && n >= 0);
  if (
    !ints ||
    firstChunk > lastChunk ||
    lastChunk >= total ||
    opts.take < 1 ||
    opts.skip >= chunkPlainLength(plainSize, chunkSize, firstChunk) ||
    firstChunk * chunkSize + opts.skip + opts.take > Math.min(plainSize, (lastChunk + 1) * chunkSize)
  ) {
    throw new InvalidInputError("range decrypt options do not describe a range planRange produces");
  }
  const cipher = opts.pieceCipher;
  if (cipher !== undefined) {
    if (!(key instanceof Uint8Array) || key.length !== KEY_BYTES) {
      throw new InvalidInputError("range decrypt with a piece cipher needs the raw artifact key from deriveArtifactKeyBytes");
    }
  } else if (typeof key !== "object" || key === null || (key as { type?: unknown }).type !== "secret") {
    throw new InvalidInputError("range decrypt needs the artifact key from deriveArtifactKey");
  }
  const window = new Window(checkConcurrency(opts.concurrency));
  const storedLength = (i: number) => chunkPlainLength(plainSize, chunkSize, i) + TAG_BYTES;
  return transformed(async function* (count) {
    const opener: Opener =
      cipher === undefined ? webCryptoOpener(key as ArtifactKey) : async (nonce, stored) => cipher.open(key as Uint8Array, nonce, stored);
    // Chunk lengths are known from plainSize, so each chunk opens as soon as it is complete.
    const chunker = new Chunker(storedLength(firstChunk), false);
    let index = firstChunk;
    let skip = opts.skip;
    let take = opts.take;
    const cut = (plain: Uint8Array): Uint8Array => {
      let p = plain;
      if (skip > 0) {
        const drop = Math.min(skip, p.length);
        skip -= drop;
        p = p.subarray(drop);
      }
      if (p.length > take) p = p.subarray(0, take);
      take -= p.length;
      count(p.length);
      return p;
    };
    const size = () => (index <= lastChunk ? storedLength(index) : 0);
    let extra = false;
    const reader = new Reader(source);
    try {
      for (;;) {
        const piece = yield* reader.next(window, cut);
        if (piece === undefined) break;
        const pieces = chunker.cut(piece, size);
        for (let next = pieces.next(); ; next = pieces.next()) {
          if (next.done) {
            extra = next.value > 0;
            break;
          }
          window.add(open(opener, index, index === total - 1, next.value));
          index += 1;
          if (window.full) {
            const p = cut(await window.next());
            if (p.length > 0) yield p;
          }
        }
        if (extra) break;
      }
    } finally {
      await reader.close();
    }
    while (window.size > 0) {
      const p = cut(await window.next());
      if (p.length > 0) yield p;
    }
    if (extra) throw new IntegrityError("ranged read returned more bytes than the requested chunks hold");
    if (index <= lastChunk) {
      throw new IntegrityError(`ranged read ended inside chunk ${index} (${chunker.pending} of ${storedLength(index)} bytes)`);
    }
  });
}

/**
 * Encrypts a whole artifact held in memory into the full object bytes, byte-for-byte what
 * `encrypt` produces for the same salt (the store's path for one-chunk artifacts).
 */
export async function encryptObject(plaintext: Uint8Array, opts: EncryptOptions): Promise<Uint8Array> {
  if (!(plaintext instanceof Uint8Array)) throw new InvalidInputError("plaintext must be a Uint8Array");
  const { chunkSize, salt, header } = encryptionStart(opts);
  if (plaintext.length > chunkSize) return collect(encrypt([plaintext], { ...opts, salt }));
  const key = await deriveArtifactKey(opts.dataKey, salt, opts.operationId, opts.path);
  const sealed = await sealChunk(key, chunkNonce(0, true), plaintext);
  return concatBytes([header, sealed]);
}

/** Decrypts full object bytes held in memory; the plaintext only if every chunk verifies. */
export async function decryptObject(object: Uint8Array, opts: DecryptOptions): Promise<Uint8Array> {
  if (!(object instanceof Uint8Array)) throw new InvalidInputError("object must be a Uint8Array");
  assertBytes(opts.dataKey, KEY_BYTES, "data key");
  checkIds(opts.operationId, opts.path);
  const { chunkSize, salt } = parseHeader(object);
  const plainSize = plaintextSize(object.length, chunkSize);
  if (opts.expectedChunkSize !== undefined && chunkSize !== opts.expectedChunkSize) {
    throw new IntegrityError(`encrypted object header has chunk size ${chunkSize}, metadata records ${opts.expectedChunkSize}`);
  }
  if (opts.expectedPlainSize !== undefined && plainSize !== opts.expectedPlainSize) {
    throw new IntegrityError(`encrypted object decrypts to ${plainSize} bytes, metadata records ${opts.expectedPlainSize}`);
  }
  if (plainSize > chunkSize) return collect(decrypt([object], opts));
  return open(await chunkOpener(opts, salt), 0, true, object.subarray(HEADER_BYTES));
}

/** All output of an iteration in one Uint8Array. */
export async function collect(source: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const part of source) parts.push(part);
  return parts.length === 1 ? parts[0]! : concatBytes(parts);
}
