// Messages between the page and the download service worker (worker.ts). The artifact key travels
// only inside these messages (postMessage), never in a URL, storage or a cache.
import type { DeliveryTicket } from "../client/direct.js";

/** Path segment under the worker's scope that its fetch handler answers. */
export const DOWNLOAD_SEGMENT = "psa-download";

/** A plaintext byte range, both ends inclusive. */
export interface PlainRange {
  start: number;
  end: number;
}

/** Page -> worker: prepare download `id` (answers on the transferred port). */
export interface StartMessage {
  type: "psa-download";
  id: string;
  ticket: DeliveryTicket;
  filename: string;
  range?: PlainRange;
}

/** Page -> worker while transfers run, so the browser does not stop an idle-looking worker. */
export interface KeepAliveMessage {
  type: "psa-keepalive";
}

/** Page -> worker, on the port of one download: the answer to a `renew` event. */
export type PageReply = { type: "ticket"; ticket: DeliveryTicket } | { type: "error"; code: string; message: string };

/**
 * Worker -> page, on the port of one download. `started`: the worker took the download's navigation.
 * `renew`: the URL broke mid-transfer, send a fresh ticket.
 */
export type WorkerEvent =
  | { type: "ready" }
  | { type: "started" }
  | { type: "renew" }
  | { type: "progress"; bytes: number; total: number }
  | { type: "done"; bytes: number }
  | { type: "error"; code: string; message: string };
