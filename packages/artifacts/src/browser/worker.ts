// The download service worker: answers a navigation to `<scope>psa-download/<id>` with the verified
// plaintext of one ticket as a streamed download, so a file of any size goes to disk without being
// held in memory. The page hands it the ticket (and so the key) by postMessage only.
import { describeError } from "./messages.js";
import { openTicket } from "./open.js";
import { errorFromCode } from "../errors.js";
import { DOWNLOAD_SEGMENT, type PageReply, type StartMessage, type WorkerEvent } from "./protocol.js";
import type { DeliveryTicket } from "../client/direct.js";

// The few parts of the ServiceWorkerGlobalScope this file uses (the package is typed without the WebWorker lib).
interface ExtendableEventLike {
  waitUntil(promise: Promise<unknown>): void;
}
interface MessageEventLike extends ExtendableEventLike {
  data: unknown;
  ports: readonly MessagePort[];
}
interface FetchEventLike extends ExtendableEventLike {
  request: Request;
  respondWith(response: Promise<Response> | Response): void;
}
/** What {@link serveDownloads} needs of the worker's global scope (`self`). */
export interface DownloadWorkerScope {
  registration: { scope: string };
  clients: { claim(): Promise<void> };
  skipWaiting(): Promise<void>;
  addEventListener(type: "install" | "activate", listener: (event: ExtendableEventLike) => void): void;
  addEventListener(type: "message", listener: (event: MessageEventLike) => void): void;
  addEventListener(type: "fetch", listener: (event: FetchEventLike) => void): void;
}

/** How long a prepared download waits for its navigation before the worker forgets it (and its key). */
const PENDING_MS = 60_000;

interface Pending {
  message: StartMessage;
  port: MessagePort;
  finished: () => void;
  timer: ReturnType<typeof setTimeout>;
}

/** A Content-Disposition value that survives any file name (RFC 6266 with an ASCII fallback). */
export function attachment(filename: string): string {
  const ascii = filename.replace(/[^\x20-\x7e]|["\\]/g, "_");
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(filename)}`;
}

/** Installs the download handlers on the service worker's global scope. */
export function serveDownloads(scope: DownloadWorkerScope): void {
  const pending = new Map<string, Pending>();
  const prefix = new URL(`${DOWNLOAD_SEGMENT}/`, scope.registration.scope).pathname;

  scope.addEventListener("install", (event) => event.waitUntil(scope.skipWaiting()));
  scope.addEventListener("activate", (event) => event.waitUntil(scope.clients.claim()));

  scope.addEventListener("message", (event) => {
    const message = event.data as StartMessage | { type?: unknown } | null;
    // A keep-alive needs no answer: receiving a message is what keeps the worker running.
    if (message?.type !== "psa-download") return;
    const start = message as StartMessage;
    const port = event.ports[0];
    if (port === undefined || typeof start.id !== "string") return;
    let finished!: () => void;
    const done = new Promise<void>((resolve) => (finished = resolve));
    const timer = setTimeout(() => {
      pending.delete(start.id);
      port.postMessage({ type: "error", code: "storage_unavailable", message: "the download was prepared but never started" } satisfies WorkerEvent);
      finished();
    }, PENDING_MS);
    pending.set(start.id, { message: start, port, finished, timer });
    event.waitUntil(done);
    port.postMessage({ type: "ready" } satisfies WorkerEvent);
  });

  scope.addEventListener("fetch", (event) => {
    const url = new URL(event.request.url);
    if (!url.pathname.startsWith(prefix)) return;
    const id = url.pathname.slice(prefix.length);
    const job = pending.get(id);
    if (job === undefined) {
      event.respondWith(new Response("This download link is used up; start the download again from the page.", { status: 404 }));
      return;
    }
    pending.delete(id);
    clearTimeout(job.timer);
    event.respondWith(respond(job));
  });
}

async function respond({ message, port, finished }: Pending): Promise<Response> {
  const post = (event: WorkerEvent): void => port.postMessage(event);
  const fail = (error: unknown): void => {
    const { code, detail } = describeError(error);
    post({ type: "error", code, message: detail });
    finished();
  };
  // Only the page can sign: a fresh ticket is asked of it over the port.
  let renewing: { resolve: (t: DeliveryTicket) => void; reject: (e: Error) => void } | undefined;
  port.onmessage = (event: MessageEvent<PageReply>) => {
    const reply = event.data;
    if (reply.type === "ticket") renewing?.resolve(reply.ticket);
    else renewing?.reject(errorFromCode(reply.code, reply.message));
    renewing = undefined;
  };
  const renew = (): Promise<DeliveryTicket> =>
    new Promise((resolve, reject) => {
      renewing = { resolve, reject };
      post({ type: "renew" });
    });
  post({ type: "started" });
  let opened: Awaited<ReturnType<typeof openTicket>>;
  try {
    opened = await openTicket(message.ticket, {
      name: message.filename,
      ...(message.range ? { range: message.range } : {}),
      onProgress: (bytes, total) => post({ type: "progress", bytes, total }),
      renew,
    });
  } catch (error) {
    fail(error);
    return new Response("The download could not start; the page says why.", { status: 502 });
  }
  const reader = opened.stream.getReader();
  let bytes = 0;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) {
          controller.close();
          post({ type: "done", bytes });
          finished();
          return;
        }
        bytes += value.length;
        controller.enqueue(value);
      } catch (error) {
        // An error (never a close) makes the browser fail the download and discard what it wrote.
        controller.error(error);
        fail(error);
      }
    },
    cancel(reason) {
      void reader.cancel(reason);
      fail(Object.assign(new Error("the download was cancelled"), { name: "AbortError" }));
    },
  });
  return new Response(body, {
    headers: {
      "content-type": "application/octet-stream",
      "content-disposition": attachment(message.filename),
      "content-length": String(opened.length),
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
    },
  });
}
