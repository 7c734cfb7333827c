// A ticket's plaintext as a web stream: the client's direct reader (../client/direct.ts) fetches the
// ciphertext straight from storage and verifies and decrypts it with the one crypto engine; this
// adds what pages and the download worker need (a ReadableStream, progress, nothing before the
// first verified chunk).
import { readDirect, type DeliveryTicket } from "../client/direct.js";
import { IntegrityError, RangeNotSatisfiableError, StorageUnavailableError } from "../errors.js";
import type { PlainRange } from "./protocol.js";

/** Options of {@link openTicket}. */
export interface OpenOptions {
  /** Only these plaintext bytes (inclusive); default the whole artifact. */
  range?: PlainRange;
  signal?: AbortSignal;
  /** Verified plaintext bytes released so far, and the total to release. */
  onProgress?: (bytes: number, total: number) => void;
  /** A fresh ticket for the same artifact, when storage refuses the URL (expired) mid-transfer. */
  renew?: () => Promise<DeliveryTicket>;
  /** The artifact's name, for messages. */
  name?: string;
}

/** An opened ticket: verified plaintext, and how many bytes it will carry. */
export interface OpenedTicket {
  stream: ReadableStream<Uint8Array>;
  length: number;
}

const noRenewal = (): Promise<DeliveryTicket> =>
  Promise.reject(new StorageUnavailableError("storage refused the ticket's URL (it may have expired) and no fresh ticket can be had"));

/**
 * Opens a ticket: resolves once storage has answered with the object the ticket describes and its
 * first chunk has verified, to a stream of verified plaintext for `range` (default all of it). The
 * stream errors with `integrity` at the first chunk that fails to verify.
 */
export async function openTicket(ticket: DeliveryTicket, options: OpenOptions = {}): Promise<OpenedTicket> {
  const { range } = options;
  if (range !== undefined && !(Number.isSafeInteger(range.start) && Number.isSafeInteger(range.end) && range.start >= 0 && range.start <= range.end && range.end < ticket.size)) {
    throw new RangeNotSatisfiableError(`range ${range.start}-${range.end} is not satisfiable for an artifact of ${ticket.size} bytes`, { details: { size: ticket.size } });
  }
  const length = range === undefined ? ticket.size : range.end - range.start + 1;
  const plain = readDirect(ticket, {
    renew: options.renew ?? noRenewal,
    // Never through the HTTP cache: it would keep ciphertext on disk and splice ranges of its own.
    fetch: (input, init) => fetch(input, { ...init, cache: "no-store" }),
    range,
    path: options.name ?? "the artifact",
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const first = await plain.next();
  let released = 0;
  const release = (controller: ReadableStreamDefaultController<Uint8Array>, value: Uint8Array): void => {
    released += value.length;
    controller.enqueue(value);
    options.onProgress?.(released, length);
  };
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      if (!first.done) release(controller, first.value);
    },
    async pull(controller) {
      try {
        const { done, value } = first.done ? { done: true as const, value: undefined } : await plain.next();
        if (done) {
          if (released !== length) throw new IntegrityError(`decrypted ${released} bytes, the ticket says ${length}`);
          controller.close();
          return;
        }
        release(controller, value);
      } catch (error) {
        controller.error(error);
      }
    },
    async cancel() {
      await plain.return(undefined);
    },
  });
  return { stream, length };
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
