// Saving a ticket's plaintext to disk in the page: through the download service worker when there is
// one, else through the origin-private file system (OPFS), else a Blob. docs/web.md says which
// browsers get which.
import { StorageUnavailableError, errorFromCode } from "../errors.js";
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
  /** Force a save path; default: the first of {@link availableSaveModes}. */
  mode?: SaveMode;
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
 * WebKit (Safari, and every browser on iOS) is not relied on to save a stream that a service worker
 * answers (untested here, and widely reported unreliable), so it gets the page's own paths.
 */
function isWebKit(): boolean {
  return typeof navigator !== "undefined" && navigator.vendor === "Apple Computer, Inc.";
}

/** The save paths this browser offers, best first. */
export function availableSaveModes(worker?: DownloadWorker | null): SaveMode[] {
  const modes: SaveMode[] = [];
  if (worker?.registration.active && !isWebKit()) modes.push("service-worker");
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

async function viaWorker(worker: DownloadWorker, ticket: DeliveryTicket, options: SaveOptions): Promise<number> {
  const active = worker.registration.active;
  if (active === null) throw new StorageUnavailableError("the download service worker is not running");
  const id = crypto.randomUUID();
  const channel = new MessageChannel();
  let frame: HTMLIFrameElement | undefined;
  const keepAlive = setInterval(() => active.postMessage({ type: "psa-keepalive" }), KEEP_ALIVE_MS);
  try {
    return await new Promise<number>((resolve, reject) => {
      channel.port1.onmessage = (event: MessageEvent<WorkerEvent>) => {
        const data = event.data;
        if (data.type === "ready") {
          // A hidden frame navigates to the worker's URL; the worker answers it as a download.
          frame = document.createElement("iframe");
          frame.hidden = true;
          frame.src = new URL(`${DOWNLOAD_SEGMENT}/${id}`, worker.registration.scope).href;
          document.body.append(frame);
        } else if (data.type === "renew") {
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
    channel.port1.close();
    // Give the browser a moment to hand the finished stream to its download manager.
    setTimeout(() => frame?.remove(), 1000);
  }
}

async function viaOpfs(ticket: DeliveryTicket, options: SaveOptions): Promise<number> {
  const root = await navigator.storage.getDirectory();
  // Files of earlier visits (a closed tab never got to clean up).
  for await (const name of (root as unknown as { keys(): AsyncIterable<string> }).keys()) {
    if (name.startsWith(OPFS_PREFIX)) await root.removeEntry(name).catch(() => {});
  }
  const name = `${OPFS_PREFIX}${crypto.randomUUID()}`;
  const handle = await root.getFileHandle(name, { create: true });
  try {
    const opened = await openTicket(ticket, pageOptions(options));
    await opened.stream.pipeTo(await handle.createWritable(), options.signal ? { signal: options.signal } : {});
    const file = await handle.getFile();
    const href = URL.createObjectURL(file);
    clickDownload(href, options.filename);
    // The browser copies the file to Downloads; the temporary copy goes after that.
    setTimeout(() => {
      URL.revokeObjectURL(href);
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

/**
 * Downloads a ticket's artifact (or a range of it) to the browser's Downloads, every chunk verified
 * before it is written; a failed chunk fails the save and leaves no file. Resolves to the path used
 * and the bytes saved.
 */
export async function saveTicket(ticket: DeliveryTicket, options: SaveOptions): Promise<{ mode: SaveMode; bytes: number }> {
  const mode = options.mode ?? availableSaveModes(options.worker)[0]!;
  if (mode === "service-worker") {
    if (!options.worker) throw new StorageUnavailableError("no download service worker is registered");
    return { mode, bytes: await viaWorker(options.worker, ticket, options) };
  }
  if (mode === "opfs") return { mode, bytes: await viaOpfs(ticket, options) };
  return { mode, bytes: await viaBlob(ticket, options) };
}
