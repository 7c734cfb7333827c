// Saving a ticket's plaintext to disk in the page: through the download service worker where the
// engine is known to discard a failed stream's partial file, else through the origin-private file
// system (OPFS), else a Blob. A path that cannot start hands over to the next. docs/web.md says which
// browsers get which.
import { errorFromCode } from "../errors.js";
import { openTicket } from "./open.js";
import { describeError } from "./messages.js";
import { DOWNLOAD_SEGMENT, type PageReply, type PlainRange, type StartMessage, type WorkerEvent } from "./protocol.js";
import type { DeliveryTicket } from "../client/direct.js";

/** Where the plaintext goes on its way to the Downloads folder. */
export type SaveMode = "service-worker" | "opfs" | "blob";

/** A registered, active download service worker (see {@link registerDownloadWorker}). */
export interface DownloadWorker {
  registration: ServiceWorkerRegistration;
}

/** Options of {@link saveTicket}. */
export interface SaveOptions {
  /** The name the file is saved under. */
  filename: string;
  /** Only these plaintext bytes. */
  range?: PlainRange;
  /**
   * The save paths to try, in order; default: {@link availableSaveModes}. A path that cannot start
   * (a {@link SavePathError}) hands over to the next; the last one's failure is the save's error, so
   * a one-path list forces that path.
   */
  modes?: SaveMode[];
  /** The download worker, for the service-worker path. */
  worker?: DownloadWorker | null;
  /** Verified plaintext bytes so far, and the total. */
  onProgress?: (bytes: number, total: number) => void;
  /** A fresh ticket for the same artifact, used when the transfer breaks after the URL expired. */
  renew?: () => Promise<DeliveryTicket>;
  /** Aborts the OPFS and Blob paths (the browser's own download UI cancels the service-worker path). */
  signal?: AbortSignal;
}

/** How often the page pings the worker while a download runs (Firefox stops an idle worker after ~30 s). */
const KEEP_ALIVE_MS = 10_000;
const OPFS_PREFIX = "psa-download-";
/** OPFS files this page handed to the browser's downloads in the last minute (a download in Firefox reads the file after the click). */
const opfsHandedOver = new Set<string>();
/** How long the download worker may take to receive a download's navigation before its path counts as not working. */
const WORKER_START_MS = 15_000;
/** After the hidden frame loaded something, how long the worker's "started" may still take to arrive. */
const FRAME_GRACE_MS = 2_000;

/**
 * A save path this browser offers whose calls failed before a byte was fetched (OPFS refused in a
 * private window, a service worker that does not take the download's navigation): nothing was
 * saved, and the next path can try.
 */
export class SavePathError extends Error {
  override readonly name = "SavePathError";
  /** The path that failed. */
  readonly mode: SaveMode;
  constructor(mode: SaveMode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.mode = mode;
  }
}

/** Runs a path's setup calls; their failure is a {@link SavePathError}. */
async function setup<T>(mode: SaveMode, what: string, call: () => Promise<T> | T): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw new SavePathError(mode, `${what} failed: ${String((error as Error | undefined)?.message ?? error)}`, { cause: error });
  }
}

/**
 * Registers the download service worker at `scriptUrl` with `scope` (default: the script's
 * directory, so the worker controls nothing outside the page's path) and waits until it is active.
 * Resolves to null where the browser has no service workers (then OPFS or a Blob is used).
 */
export async function registerDownloadWorker(scriptUrl: string | URL, scope?: string): Promise<DownloadWorker | null> {
  if (typeof navigator === "undefined" || !("serviceWorker" in navigator)) return null;
  let registration: ServiceWorkerRegistration;
  try {
    registration = await navigator.serviceWorker.register(scriptUrl, { scope: scope ?? new URL("./", scriptUrl).pathname });
  } catch {
    // Private windows of some browsers, or an insecure origin: fall back to the page's own paths.
    return null;
  }
  const worker = registration.installing ?? registration.waiting ?? registration.active;
  if (worker !== null && worker.state !== "activated") {
    await new Promise<void>((resolve) => {
      const check = (): void => {
        if (worker.state === "activated" || worker.state === "redundant") resolve();
      };
      worker.addEventListener("statechange", check);
      check();
    });
  }
  return registration.active === null ? null : { registration };
}

function hasOpfs(): boolean {
  return (
    typeof navigator !== "undefined" &&
    typeof navigator.storage?.getDirectory === "function" &&
    typeof FileSystemFileHandle !== "undefined" &&
    "createWritable" in FileSystemFileHandle.prototype
  );
}

/**
 * The service-worker path only where the engine deletes what it wrote when the worker errors the
 * stream: Chromium (every Chromium browser says "Google Inc."). Firefox keeps the empty target and
 * a `.part` file of a failed stream, and WebKit is not relied on to save a worker's stream, so both
 * get the page's own paths (docs/web.md, "Tested engines").
 */
function discardsFailedStreams(): boolean {
  return typeof navigator !== "undefined" && navigator.vendor === "Google Inc.";
}

/** The save paths this browser offers, best first. */
export function availableSaveModes(worker?: DownloadWorker | null): SaveMode[] {
  const modes: SaveMode[] = [];
  if (worker?.registration.active && discardsFailedStreams()) modes.push("service-worker");
  if (hasOpfs()) modes.push("opfs");
  modes.push("blob");
  return modes;
}

/** Hands a URL to the browser's download machinery as `filename`. */
function clickDownload(href: string, filename: string): void {
  const link = document.createElement("a");
  link.href = href;
  link.download = filename;
  link.rel = "noopener";
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
}

async function viaWorker(worker: DownloadWorker | null | undefined, ticket: DeliveryTicket, options: SaveOptions): Promise<number> {
  const active = worker?.registration.active ?? null;
  if (!worker || active === null) throw new SavePathError("service-worker", "no download service worker is running");
  const id = crypto.randomUUID();
  const channel = new MessageChannel();
  let frame: HTMLIFrameElement | undefined;
  let started = false;
  const timers: ReturnType<typeof setTimeout>[] = [];
  const keepAlive = setInterval(() => active.postMessage({ type: "psa-keepalive" }), KEEP_ALIVE_MS);
  try {
    return await new Promise<number>((resolve, reject) => {
      const notStarted = (why: string) => () => {
        if (!started) reject(new SavePathError("service-worker", `the download service worker ${why}`));
      };
      timers.push(setTimeout(notStarted(`did not start the download within ${WORKER_START_MS / 1000} s`), WORKER_START_MS));
      channel.port1.onmessage = (event: MessageEvent<WorkerEvent>) => {
        const data = event.data;
        if (data.type === "ready") {
          // A hidden frame navigates to the worker's URL; the worker answers it as a download. A frame
          // that loads a page instead was not answered by the worker.
          frame = document.createElement("iframe");
          frame.hidden = true;
          frame.addEventListener("load", () => timers.push(setTimeout(notStarted("did not take the download's navigation"), FRAME_GRACE_MS)));
          frame.src = new URL(`${DOWNLOAD_SEGMENT}/${id}`, worker.registration.scope).href;
          document.body.append(frame);
        } else if (data.type === "started") started = true;
        else if (data.type === "renew") {
          const answer = (reply: PageReply): void => channel.port1.postMessage(reply);
          if (options.renew === undefined) answer({ type: "error", code: "storage_unavailable", message: "the transfer broke and no fresh ticket can be had" });
          else
            options.renew().then(
              (ticket) => answer({ type: "ticket", ticket }),
              (error: unknown) => answer({ type: "error", code: describeError(error).code, message: describeError(error).detail }),
            );
        } else if (data.type === "progress") options.onProgress?.(data.bytes, data.total);
        else if (data.type === "done") resolve(data.bytes);
        else reject(errorFromCode(data.code, data.message));
      };
      const start: StartMessage = { type: "psa-download", id, ticket, filename: options.filename, ...(options.range ? { range: options.range } : {}) };
      active.postMessage(start, [channel.port2]);
    });
  } finally {
    clearInterval(keepAlive);
    for (const timer of timers) clearTimeout(timer);
    channel.port1.close();
    // Give the browser a moment to hand the finished stream to its download manager.
    setTimeout(() => frame?.remove(), 1000);
  }
}

async function viaOpfs(ticket: DeliveryTicket, options: SaveOptions): Promise<number> {
  const root = await setup("opfs", "opening the origin-private file system", () => navigator.storage.getDirectory());
  // Files of earlier visits (a closed tab never got to clean up), not those the browser may still be copying.
  for await (const name of (root as unknown as { keys(): AsyncIterable<string> }).keys()) {
    if (name.startsWith(OPFS_PREFIX) && !opfsHandedOver.has(name)) await root.removeEntry(name).catch(() => {});
  }
  const name = `${OPFS_PREFIX}${crypto.randomUUID()}`;
  try {
    const handle = await setup("opfs", "creating a file in the origin-private file system", () => root.getFileHandle(name, { create: true }));
    const writable = await setup("opfs", "writing to the origin-private file system", () => handle.createWritable());
    const opened = await openTicket(ticket, pageOptions(options)).catch(async (error: unknown) => {
      await writable.abort().catch(() => {});
      throw error;
    });
    await opened.stream.pipeTo(writable, options.signal ? { signal: options.signal } : {});
    const file = await handle.getFile();
    const href = URL.createObjectURL(file);
    opfsHandedOver.add(name);
    clickDownload(href, options.filename);
    // The browser copies the file to Downloads; the temporary copy goes after that.
    setTimeout(() => {
      URL.revokeObjectURL(href);
      opfsHandedOver.delete(name);
      void root.removeEntry(name).catch(() => {});
    }, 60_000);
    return file.size;
  } catch (error) {
    await root.removeEntry(name).catch(() => {});
    throw error;
  }
}

async function viaBlob(ticket: DeliveryTicket, options: SaveOptions): Promise<number> {
  const opened = await openTicket(ticket, pageOptions(options));
  const parts: Uint8Array<ArrayBuffer>[] = [];
  const reader = opened.stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value as Uint8Array<ArrayBuffer>);
  }
  const blob = new Blob(parts, { type: "application/octet-stream" });
  const href = URL.createObjectURL(blob);
  clickDownload(href, options.filename);
  setTimeout(() => URL.revokeObjectURL(href), 60_000);
  return blob.size;
}

function pageOptions(options: SaveOptions): Parameters<typeof openTicket>[1] {
  return {
    name: options.filename,
    ...(options.range ? { range: options.range } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    ...(options.renew ? { renew: options.renew } : {}),
  };
}

const PATHS: Record<SaveMode, (ticket: DeliveryTicket, options: SaveOptions) => Promise<number>> = {
  "service-worker": (ticket, options) => viaWorker(options.worker, ticket, options),
  opfs: viaOpfs,
  blob: viaBlob,
};

/**
 * Downloads a ticket's artifact (or a range of it) to the browser's Downloads, every chunk verified
 * before it is written; a failed chunk fails the save and leaves no file. Tries the paths of
 * `options.modes` in order while one cannot start. Resolves to the path used and the bytes saved.
 */
export async function saveTicket(ticket: DeliveryTicket, options: SaveOptions): Promise<{ mode: SaveMode; bytes: number }> {
  const modes = options.modes ?? availableSaveModes(options.worker);
  for (const [i, mode] of modes.entries()) {
    try {
      return { mode, bytes: await PATHS[mode](ticket, options) };
    } catch (error) {
      if (!(error instanceof SavePathError) || i === modes.length - 1) throw error;
    }
  }
  throw new SavePathError("blob", "no save path was given");
}
