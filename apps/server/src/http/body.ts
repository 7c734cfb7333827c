import type { IncomingMessage } from "node:http";
import { PassThrough, type Readable } from "node:stream";
import { InvalidInputError, TooLargeError } from "@personal-server/artifacts";
import { isJsonContentType } from "./headers.js";

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Reads a small JSON body (Content-Type application/json) of at most `limit` bytes. Past the
 * limit it stops reading without destroying the request, so a 413 can still be answered.
 */
export async function readJsonBody(raw: IncomingMessage, limit: number): Promise<unknown> {
  if (!isJsonContentType(raw.headers["content-type"])) {
    throw new InvalidInputError("Content-Type must be application/json");
  }
  const declared = raw.headers["content-length"];
  if (declared !== undefined && Number(declared) > limit) {
    throw new TooLargeError(`JSON body is larger than ${limit} bytes`);
  }
  const bytes = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const cleanup = (): void => {
      raw.off("data", onData);
      raw.off("end", onEnd);
      raw.off("error", onError);
    };
    const onData = (chunk: Buffer): void => {
      total += chunk.length;
      if (total > limit) {
        cleanup();
        raw.pause();
        reject(new TooLargeError(`JSON body is larger than ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.concat(chunks));
    };
    const onError = (error: Error): void => {
      cleanup();
      reject(error);
    };
    raw.on("data", onData);
    raw.once("end", onEnd);
    raw.once("error", onError);
  });
  try {
    return JSON.parse(utf8.decode(bytes)) as unknown;
  } catch {
    throw new InvalidInputError("request body is not valid UTF-8 JSON");
  }
}

/**
 * Runs `use` with the request's upload body and owns that body on every path: `use` may consume
 * it, give up on it early (not found, expired, too large, a bad Content-Type) or throw before
 * touching it, and the client may cut the connection at any moment; whatever happens, the body
 * is unpiped and destroyed when `use` settles, and nothing it emits reaches the process as an
 * unhandled error.
 *
 * The request is piped into a PassThrough rather than handed over directly: if the store
 * destroys its input early, only the PassThrough dies, and the socket lives on to carry the error
 * answer. A client that disconnects mid-upload (or sends broken chunk framing) aborts `signal`
 * and errors the PassThrough, so a store still reading stops and stores nothing; one that already
 * gave up is not there to hear it, which is why the PassThrough always has an error listener.
 */
export async function withUploadBody<T>(raw: IncomingMessage, use: (body: Readable, signal: AbortSignal) => Promise<T>): Promise<T> {
  const body = new PassThrough({ highWaterMark: 64 * 1024 });
  // The reader learns of a failure through its own iteration and `signal`; nobody else needs to.
  body.on("error", () => {});
  const controller = new AbortController();
  const abort = (): void => {
    if (raw.complete) return;
    const error = new Error("the client closed the connection during the upload");
    controller.abort(error);
    body.destroy(error);
  };
  raw.once("aborted", abort);
  raw.once("error", abort);
  raw.once("close", abort);
  raw.pipe(body);
  try {
    return await use(body, controller.signal);
  } finally {
    raw.off("aborted", abort);
    raw.off("error", abort);
    raw.off("close", abort);
    raw.unpipe(body);
    body.destroy();
  }
}

/** True if the request announced a body that has not been read to its end. */
export function bodyUnread(raw: IncomingMessage): boolean {
  const length = raw.headers["content-length"];
  const hasBody = raw.headers["transfer-encoding"] !== undefined || (length !== undefined && length !== "0");
  return hasBody && !raw.complete;
}
