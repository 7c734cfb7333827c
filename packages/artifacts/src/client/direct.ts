/**
 * Direct delivery in the Node client (docs/format.md#reading-with-a-delivery-ticket): the
 * ciphertext comes straight from storage through a ticket's URL and is verified and decrypted
 * here, chunk by chunk, with the one crypto engine the browser uses too (WebCrypto there; the
 * Node client hands it node:crypto's cipher, `pieceCipher`).
 */
import {
  chunkNonce,
  decryptRange,
  HEADER_BYTES,
  importArtifactKey,
  MAX_CHUNK_SIZE,
  MIN_CHUNK_SIZE,
  parseHeader,
  planRange,
  plaintextSize,
  TAG_BYTES,
} from "../crypto/engine/index.js";
import { chunkAuthError } from "../crypto/engine/format.js";
import { type ArtifactKey, concatBytes, openChunk } from "../crypto/engine/keys.js";
import type { PieceCipher } from "../crypto/engine/pieces.js";
import { IntegrityError, RangeNotSatisfiableError, StorageUnavailableError } from "../errors.js";
import { send, type Fetch } from "./http.js";

/**
 * What a grantee needs to fetch, verify and decrypt one artifact itself (docs/http-api.md#direct-delivery).
 * A plaintext capability for that artifact while it exists: never log, cache or store it.
 */
export interface DeliveryTicket {
  /** Short-lived URL of the ciphertext (GET, HEAD, Range); no credentials needed. */
  url: string;
  /** ISO-8601 UTC; at most 300 s after the ticket was issued, never after the operation expires. */
  urlExpiresAt: string;
  /** The artifact's own AES-256-GCM key (format v1's HKDF output), base64url without padding (43 characters). */
  key: string;
  format: { version: 1; chunkSize: number };
  /** Plaintext bytes. */
  size: number;
  /** Stored (ciphertext) bytes: what the URL serves. */
  encryptedSize: number;
  /** ETag of the stored object, unquoted: the URL answers with it, and a renewed ticket must repeat it. */
  etag: string;
  contentType: string;
}


export interface DirectReadOptions {
  /** Asks the server for a fresh ticket of the same artifact. */
  renew: () => Promise<DeliveryTicket>;
  fetch: Fetch;
  /** Plaintext range, inclusive, already resolved against the size; undefined for the whole artifact. */
  range: { start: number; end: number } | undefined;
  path: string;
  /** Ciphertext bytes per request (whole chunks); default the whole read in one request. */
  segmentBytes?: number;
  signal?: AbortSignal;
  /** A synchronous cipher to open chunks with instead of WebCrypto (the Node client passes node:crypto's). */
  pieceCipher?: PieceCipher;
}

/** A checked ticket: consistent sizes and a format this client reads. */
export function checkTicket(ticket: DeliveryTicket, path: string): DeliveryTicket {
  const bad = (what: string) => new IntegrityError(`delivery ticket of ${path} is inconsistent: ${what}`);
  if (typeof ticket !== "object" || ticket === null || typeof ticket.url !== "string" || typeof ticket.etag !== "string") throw bad("not a ticket");
  if (ticket.format?.version !== 1) throw bad(`format version ${String(ticket.format?.version)} is not 1`);
  const { chunkSize } = ticket.format;
  if (!Number.isInteger(chunkSize) || chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE) throw bad(`chunk size ${String(chunkSize)}`);
  if (!Number.isSafeInteger(ticket.size) || plaintextSize(ticket.encryptedSize, chunkSize) !== ticket.size) throw bad("sizes do not agree");
  if (typeof ticket.key !== "string" || !/^[A-Za-z0-9_-]{43}$/.test(ticket.key)) throw bad("key is not 32 bytes of base64url");
  return ticket;
}

/** Resolves a requested range against the size as the server would (`range_not_satisfiable` with the size). */
export function resolveRange(range: { start: number; end?: number } | { suffix: number }, size: number): { start: number; end: number } {
  const unsatisfiable = () =>
    new RangeNotSatisfiableError(`requested range is not satisfiable for an artifact of ${size} bytes`, { details: { size } });
  if ("suffix" in range) {
    if (range.suffix === 0 || size === 0) throw unsatisfiable();
    return { start: Math.max(0, size - range.suffix), end: size - 1 };
  }
  if (range.start >= size) throw unsatisfiable();
  return { start: range.start, end: Math.min(range.end ?? size - 1, size - 1) };
}

/**
 * The plaintext of `range` (or all of it), released chunk by chunk only after each chunk's tag
 * verifies. The header and the object's length and ETag are checked against the ticket before
 * anything is released. Ciphertext is fetched in segments of whole chunks; a refused request (URL
 * expired) gets a fresh ticket, which must name the same ETag, and resumes at the first chunk not
 * yet handed to verification.
 */
export async function* readDirect(ticket: DeliveryTicket, options: DirectReadOptions): AsyncGenerator<Uint8Array> {
  const { path } = options;
  let current = checkTicket(ticket, path);
  const { size, encryptedSize, etag } = current;
  const chunkSize = current.format.chunkSize;
  const stride = chunkSize + TAG_BYTES;
  // One request for the whole read by default: a URL is checked when a request starts, so only a
  // broken connection needs another, and then from the next chunk (with a fresh ticket if expired).
  const segmentBytes = Math.max(stride, options.segmentBytes ?? Number.POSITIVE_INFINITY);

  // An empty artifact is one empty final chunk; a range of it never exists.
  const plan =
    size === 0
      ? { firstChunk: 0, lastChunk: 0, objectStart: HEADER_BYTES, objectEnd: encryptedSize - 1, skip: 0, take: 0 }
      : planRange(size, chunkSize, options.range?.start ?? 0, options.range?.end ?? size - 1);

  /** GETs stored bytes [start, end] of the current ticket's URL, renewing the ticket once if it is refused. */
  const fetchBytes = async (start: number, end: number): Promise<Response> => {
    for (let attempt = 0; ; attempt++) {
      const response = await send(options.fetch, current.url, {
        headers: { range: `bytes=${start}-${end}` },
        ...(options.signal ? { signal: options.signal } : {}),
      });
      if (response.status === 206) {
        checkAnswer(response, start, end);
        return response;
      }
      await response.body?.cancel();
      // 403 (expired or refused URL; S3 and the local route alike) is worth one fresh ticket.
      if (response.status !== 403 || attempt > 0) {
        throw new StorageUnavailableError(`direct download of ${path}: storage answered HTTP ${response.status} for its ciphertext`);
      }
      const renewed = checkTicket(await options.renew(), path);
      if (renewed.etag !== etag || renewed.encryptedSize !== encryptedSize || renewed.size !== size) {
        throw new IntegrityError(`${path} changed during the download (its ETag is no longer ${etag})`);
      }
      current = renewed;
    }
  };
  const checkAnswer = (response: Response, start: number, end: number): void => {
    const got = (response.headers.get("etag") ?? "").replace(/^W\//, "").replace(/^"|"$/g, "");
    if (got !== etag) throw new IntegrityError(`the stored object of ${path} has ETag ${got || "(none)"}, its ticket says ${etag}`);
    const range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(response.headers.get("content-range") ?? "");
    if (range === null || Number(range[3]) !== encryptedSize) {
      throw new IntegrityError(`the stored object of ${path} is not ${encryptedSize} bytes long, as its ticket says`);
    }
    if (Number(range[1]) !== start || Number(range[2]) !== end) throw new IntegrityError(`storage answered another range of ${path}`);
  };

  // The header before any chunk is released: the format's magic, version and the ticket's chunk size.
  let headerChecked = false;
  const checkHeader = (bytes: Uint8Array): void => {
    if (parseHeader(bytes).chunkSize !== chunkSize) throw new IntegrityError(`chunk size of ${path} does not match its ticket`);
    headerChecked = true;
  };
  if (plan.firstChunk > 0) {
    const response = await fetchBytes(0, HEADER_BYTES - 1);
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (bytes.length !== HEADER_BYTES) throw new IntegrityError(`the header of ${path} is truncated`);
    checkHeader(bytes);
  }

  const raw = base64urlBytes(current.key);
  const cipher = options.pieceCipher;
  const key = cipher === undefined ? await importArtifactKey(raw) : raw;
  // Whole chunks only, so that a resumed request starts on a chunk boundary. A read from chunk 0
  // takes the header in the same request (stores that slice whole objects per range, like moto,
  // pay for every request).
  async function* ciphertext(): AsyncGenerator<Uint8Array> {
    let chunk = plan.firstChunk;
    let stalls = 0;
    while (chunk <= plan.lastChunk) {
      const before = chunk;
      const start = headerChecked ? HEADER_BYTES + chunk * stride : 0;
      const last = Math.min(plan.lastChunk, chunk + Math.floor(segmentBytes / stride) - 1);
      const end = Math.min(HEADER_BYTES + (last + 1) * stride, encryptedSize) - 1;
      const response = await fetchBytes(start, end);
      const body = response.body;
      if (body === null) throw new IntegrityError(`storage answered no bytes for ${path}`);
      const header = new Uint8Array(HEADER_BYTES);
      let pending: Uint8Array[] = [];
      let pendingBytes = 0;
      let position = start;
      try {
        for await (const piece of pieces(body)) {
          let offset = 0;
          if (position < HEADER_BYTES) {
            const take = Math.min(HEADER_BYTES - position, piece.length);
            header.set(piece.subarray(0, take), position);
            position += take;
            offset = take;
            if (position === HEADER_BYTES) checkHeader(header);
          }
          while (offset < piece.length) {
            const length = Math.min(stride, encryptedSize - position);
            const take = Math.min(length - pendingBytes, piece.length - offset);
            pending.push(piece.subarray(offset, offset + take));
            pendingBytes += take;
            offset += take;
            if (pendingBytes === length) {
              yield pending.length === 1 ? pending[0]! : concatBytes(pending, pendingBytes);
              position += pendingBytes;
              pending = [];
              pendingBytes = 0;
              chunk++;
            }
          }
        }
      } catch (error) {
        if (options.signal?.aborted || error instanceof IntegrityError) throw error;
        // The connection broke mid-segment: the next request starts at the first chunk not yet yielded.
        stalls = chunk > before ? 0 : stalls + 1;
        if (stalls >= 3) throw new StorageUnavailableError(`direct download of ${path} keeps breaking off at chunk ${chunk}`, { cause: error });
        continue;
      }
      if (position !== end + 1) {
        // Ended short: ask again from the next whole chunk.
        stalls = chunk > before ? 0 : stalls + 1;
        if (stalls >= 3) throw new IntegrityError(`storage keeps answering short reads of ${path} at chunk ${chunk}`);
      }
    }
  }

  if (size === 0) {
    // One empty final chunk: its tag alone says the artifact is empty (decryptRange has no empty ranges).
    let stored: Uint8Array = new Uint8Array(0);
    for await (const piece of ciphertext()) stored = piece;
    try {
      const nonce = chunkNonce(0, true);
      await (cipher === undefined ? openChunk(key as ArtifactKey, nonce, stored) : cipher.open(raw, nonce, stored));
    } catch (cause) {
      throw chunkAuthError(0, cause);
    }
    return;
  }
  yield* decryptRange(ciphertext(), {
    key,
    chunkSize,
    plainSize: size,
    firstChunk: plan.firstChunk,
    lastChunk: plan.lastChunk,
    skip: plan.skip,
    take: plan.take,
    ...(cipher === undefined ? {} : { pieceCipher: cipher }),
  });
}

function base64urlBytes(text: string): Uint8Array {
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

/** A response body's pieces, read with a reader (WebKit's streams are not async-iterable). */
async function* pieces(body: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}
