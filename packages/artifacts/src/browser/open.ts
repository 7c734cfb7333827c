// Reading a ticket's ciphertext straight from storage and decrypting it here, chunk by chunk, with
// the one crypto engine: nothing is released before the header, the object's length and each
// chunk's tag have been checked against the ticket.
import { ArtifactError, ConflictError, IntegrityError, NotFoundError, RangeNotSatisfiableError, StorageUnavailableError } from "../errors.js";
import { chunkNonce, decryptRange, encryptedSize, HEADER_BYTES, importArtifactKey, parseHeader, planRange, TAG_BYTES, type ArtifactKey } from "../crypto/engine/index.js";
import type { PlainRange } from "./protocol.js";
import type { DeliveryTicket } from "./ticket.js";

/** Options of {@link openTicket}. */
export interface OpenOptions {
  /** Only these plaintext bytes (inclusive); default the whole artifact. */
  range?: PlainRange;
  signal?: AbortSignal;
  /** Verified plaintext bytes released so far, and the total to release. */
  onProgress?: (bytes: number, total: number) => void;
  /** A fresh ticket for the same artifact, when the URL expires mid-transfer (must keep the same etag). */
  renew?: () => Promise<DeliveryTicket>;
  /** Chunks decrypted at once. Default 4. */
  concurrency?: number;
}

/** An opened ticket: verified plaintext, and how many bytes it will carry. */
export interface OpenedTicket {
  stream: ReadableStream<Uint8Array>;
  length: number;
}

/** The ticket's key (43 characters of unpadded base64url) as the engine's artifact key. */
async function importKey(ticket: DeliveryTicket): Promise<ArtifactKey> {
  const binary = atob(ticket.key.replace(/-/g, "+").replace(/_/g, "/"));
  const raw = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  if (raw.length !== 32) throw new IntegrityError("the ticket's key is not 32 bytes");
  return importArtifactKey(raw);
}

function unreachable(url: string, error: unknown): StorageUnavailableError {
  // The URL's query is a signature: only the origin goes into the message.
  return new StorageUnavailableError(
    `cannot read from storage at ${new URL(url).origin} (offline, or its CORS rules do not allow this page's origin)`,
    { cause: error },
  );
}

/** GET `bytes=start-end` of the ticket's object; checks the answer is exactly those bytes of an object of the ticket's size. */
async function fetchStored(ticket: DeliveryTicket, start: number, end: number, signal: AbortSignal | undefined): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(ticket.url, { headers: { range: `bytes=${start}-${end}` }, cache: "no-store", ...(signal ? { signal } : {}) });
  } catch (error) {
    if ((error as Error).name === "AbortError") throw error;
    throw unreachable(ticket.url, error);
  }
  if (response.status === 404) throw new NotFoundError("the artifact is no longer in storage");
  if (response.status === 403 || response.status === 400) {
    throw new StorageUnavailableError(`storage refused the ticket's URL (HTTP ${response.status}); it may have expired`, { details: { status: response.status, refused: true } });
  }
  if (response.status !== 206) throw new IntegrityError(`storage answered HTTP ${response.status} to a range request, not 206`);
  const match = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(response.headers.get("content-range") ?? "");
  if (match === null) throw new IntegrityError("storage's answer has no Content-Range (is ETag/Content-Range exposed by the bucket's CORS rules?)");
  if (Number(match[1]) !== start || Number(match[2]) !== end || Number(match[3]) !== ticket.encryptedSize) {
    throw new IntegrityError(`storage holds ${match[3]} bytes for this artifact, the ticket says ${ticket.encryptedSize}`);
  }
  // The bucket's CORS rule exposes ETag; where it does not, the sizes and the tags still decide.
  const etag = response.headers.get("etag")?.replace(/^(W\/)?"|"$/g, "");
  if (etag !== undefined && etag !== ticket.etag) throw new ConflictError("the artifact in storage is not the one the ticket describes (it was replaced); start again");
  return response;
}

/**
 * The stored bytes [start, end] as an async iterable. If the transfer breaks, it asks `renew` for a
 * new ticket (same etag required) and continues at the first byte not yet received, so the engine
 * sees one unbroken run of ciphertext and verifies every chunk as usual.
 */
async function* storedBytes(first: Response, ticket: DeliveryTicket, start: number, end: number, options: OpenOptions): AsyncGenerator<Uint8Array> {
  let response = first;
  let current = ticket;
  let next = start;
  for (let renewals = 0; ; ) {
    const reader = response.body!.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        next += value.length;
        if (next > end + 1) throw new IntegrityError("storage sent more bytes than it announced");
        yield value;
      }
      if (next === end + 1) return;
      throw new IntegrityError(`storage's answer ended after ${next - start} of ${end - start + 1} bytes`);
    } catch (error) {
      if (error instanceof ArtifactError || (error as Error).name === "AbortError" || options.renew === undefined || renewals >= 3) {
        throw error instanceof ArtifactError || (error as Error).name === "AbortError" ? error : unreachable(current.url, error);
      }
      renewals++;
      const renewed = await options.renew();
      if (renewed.etag !== ticket.etag || renewed.encryptedSize !== ticket.encryptedSize) {
        throw new ConflictError("the artifact changed while it was downloading; start again");
      }
      current = renewed;
      response = await fetchStored(current, next, end, options.signal);
    } finally {
      reader.releaseLock();
    }
  }
}

/** Splits the object's first HEADER_BYTES off the stored bytes and checks them against the ticket. */
async function* afterHeader(source: AsyncIterable<Uint8Array>, ticket: DeliveryTicket): AsyncGenerator<Uint8Array> {
  const header = new Uint8Array(HEADER_BYTES);
  let filled = 0;
  for await (const piece of source) {
    if (filled < HEADER_BYTES) {
      const take = Math.min(HEADER_BYTES - filled, piece.length);
      header.set(piece.subarray(0, take), filled);
      filled += take;
      if (filled === HEADER_BYTES) checkHeader(header, ticket);
      if (take < piece.length) yield piece.subarray(take);
    } else {
      yield piece;
    }
  }
  if (filled < HEADER_BYTES) throw new IntegrityError(`encrypted object header is truncated (${filled} of ${HEADER_BYTES} bytes)`);
}

function checkHeader(header: Uint8Array, ticket: DeliveryTicket): void {
  const { chunkSize } = parseHeader(header);
  if (chunkSize !== ticket.format.chunkSize) {
    throw new IntegrityError(`encrypted object has chunk size ${chunkSize}, the ticket says ${ticket.format.chunkSize}`);
  }
}

/**
 * Opens a ticket: resolves once storage has answered with the expected object (before any byte is
 * released), to a stream of verified plaintext for `range` (default all of it). The stream errors
 * with `integrity` at the first chunk that fails to verify.
 */
export async function openTicket(ticket: DeliveryTicket, options: OpenOptions = {}): Promise<OpenedTicket> {
  const key = await importKey(ticket);
  const { size, format } = ticket;
  const chunkSize = format.chunkSize;
  if (format.version !== 1) throw new IntegrityError(`the ticket is for format version ${format.version}; this client reads version 1`);
  if (encryptedSize(size, chunkSize) !== ticket.encryptedSize) {
    throw new IntegrityError(`the ticket's sizes disagree: ${size} plaintext bytes are not ${ticket.encryptedSize} stored bytes`);
  }
  if (size === 0) {
    if (options.range !== undefined) throw new RangeNotSatisfiableError("an empty artifact has no ranges", { details: { size } });
    return openEmpty(ticket, key, options);
  }
  const start = options.range?.start ?? 0;
  const end = options.range?.end ?? size - 1;
  const plan = planRange(size, chunkSize, start, end);
  const fromZero = plan.firstChunk === 0;
  const requestStart = fromZero ? 0 : plan.objectStart;
  const [body, header] = await Promise.all([
    fetchStored(ticket, requestStart, plan.objectEnd, options.signal),
    fromZero ? undefined : fetchStored(ticket, 0, HEADER_BYTES - 1, options.signal).then(async (r) => new Uint8Array(await r.arrayBuffer())),
  ]);
  if (header !== undefined) checkHeader(header, ticket);
  const stored = storedBytes(body, ticket, requestStart, plan.objectEnd, options);
  const plain = decryptRange(fromZero ? afterHeader(stored, ticket) : stored, {
    key,
    chunkSize,
    plainSize: size,
    ...plan,
    concurrency: options.concurrency ?? 4,
  })[Symbol.asyncIterator]();
  let released = 0;
  const total = plan.take;
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await plain.next();
        if (done) {
          if (released !== total) throw new IntegrityError(`decrypted ${released} bytes, the ticket says ${total}`);
          controller.close();
          return;
        }
        released += value.length;
        controller.enqueue(value);
        options.onProgress?.(released, total);
      } catch (error) {
        controller.error(error);
      }
    },
    async cancel() {
      await plain.return?.(undefined);
    },
  });
  return { stream, length: total };
}

/**
 * An empty artifact is its header and one empty final chunk (just a tag): both are checked before
 * the empty stream is handed out. (The engine's ranged decrypt covers only non-empty ranges.)
 */
async function openEmpty(ticket: DeliveryTicket, key: ArtifactKey, options: OpenOptions): Promise<OpenedTicket> {
  const response = await fetchStored(ticket, 0, ticket.encryptedSize - 1, options.signal);
  const object = new Uint8Array(await response.arrayBuffer());
  if (object.length !== HEADER_BYTES + TAG_BYTES) throw new IntegrityError(`an empty artifact is ${HEADER_BYTES + TAG_BYTES} stored bytes, storage sent ${object.length}`);
  checkHeader(object, ticket);
  try {
    await crypto.subtle.decrypt({ name: "AES-GCM", iv: chunkNonce(0, true) as Uint8Array<ArrayBuffer> }, key, object.subarray(HEADER_BYTES));
  } catch (error) {
    throw new IntegrityError("chunk 0 of the encrypted object failed authentication", { cause: error });
  }
  options.onProgress?.(0, 0);
  return { stream: new ReadableStream({ start: (controller) => controller.close() }), length: 0 };
}

/** Reads plaintext bytes [start, end] of a ticket's artifact into memory (for small ranges: previews, headers). */
export async function readRange(ticket: DeliveryTicket, range: PlainRange, options: Omit<OpenOptions, "range"> = {}): Promise<Uint8Array> {
  const { stream, length } = await openTicket(ticket, { ...options, range });
  const out = new Uint8Array(length);
  let offset = 0;
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    out.set(value, offset);
    offset += value.length;
  }
  return out;
}
