/**
 * A tiny recording HTTP proxy for fault and wire-format tests: put it between a client and a
 * real server (moto, the artifacts server), read what the client actually sent, and cut it to
 * simulate an outage without touching the shared server.
 *
 *   const proxy = await startRecordingProxy(motoEndpoint());
 *   // point the client at proxy.url ...
 *   proxy.requests   // method, path, headers, trailers, body size and edges of every request
 *   proxy.cut("hang")   // accept but never answer (a stalled store); "reset" drops connections
 *   proxy.restore()
 *   await proxy.close()
 */
import { createServer, request as httpRequest, Agent, type IncomingMessage, type ServerResponse } from "node:http";
import type { Socket } from "node:net";

/** One request as the proxy received it from the client. */
export interface RecordedRequest {
  method: string;
  /** Raw request-target (path and query), as sent. */
  path: string;
  /** Header names lower case; repeated headers joined with ", ". */
  headers: Record<string, string>;
  /** Header names exactly as sent, in order. */
  rawHeaderNames: string[];
  /** HTTP trailers (chunked transfer encoding), lower-case names; filled once the body ended. */
  trailers: Record<string, string>;
  /** Body bytes received (after transfer decoding); final once `complete`. */
  bodyLength: number;
  /** First and last 1 KiB of the body (latin1), to spot aws-chunked framing or checksum trailers. */
  bodyHead: string;
  bodyTail: string;
  /** True once the whole body arrived. */
  complete: boolean;
  /** What happened to it: forwarded, or held/reset because the proxy was cut. */
  outcome: "forwarded" | "held" | "reset" | "answered" | "pending";
}

/** An answer the proxy sends itself instead of forwarding. */
export interface Answer {
  status: number;
  body?: string;
  headers?: Record<string, string>;
}

/** How `cut` breaks the link. */
export type CutMode =
  /**
   * Accept connections and requests but never answer, and freeze responses already streaming:
   * a hung store (like SIGSTOP).
   */
  | "hang"
  /** Destroy every connection as soon as a request arrives: "socket hang up" / ECONNRESET. */
  | "reset"
  /** Answer every request with this status (and body), e.g. 503 SlowDown, without forwarding. */
  | Answer;

export interface RecordingProxy {
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** Everything received so far, in arrival order. */
  requests: RecordedRequest[];
  /** Starts an outage; requests already forwarded are left alone. */
  cut(mode?: CutMode): void;
  /** Ends the outage; connections held by "hang" are destroyed. */
  restore(): void;
  /**
   * Edits the headers of forwarded requests (recorded headers stay as the client sent them),
   * e.g. `h => { delete h.authorization }` to make the store see an anonymous client.
   */
  rewriteHeaders: ((headers: Record<string, string | string[] | undefined>) => void) | undefined;
  /**
   * Decides per request, before it is forwarded: an answer to send instead (the request is
   * recorded as "answered"), or undefined to forward it. Store rules no peer enforces live
   * here (see `r2-limits.ts`). Not consulted while the proxy is cut.
   */
  intercept: ((request: RecordedRequest) => Answer | undefined | Promise<Answer | undefined>) | undefined;
  /** Stops the proxy and destroys every connection. */
  close(): Promise<void>;
}

const EDGE = 1024;

function flatHeaders(h: IncomingMessage["headers"] | IncomingMessage["trailers"]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(", ") : v;
  return out;
}

/** Starts a proxy on 127.0.0.1 (free port) forwarding to `targetEndpoint` (http only). */
export async function startRecordingProxy(targetEndpoint: string): Promise<RecordingProxy> {
  const target = new URL(targetEndpoint);
  if (target.protocol !== "http:") throw new Error(`startRecordingProxy: only http targets, got ${targetEndpoint}`);
  const agent = new Agent({ keepAlive: true });
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  const held = new Set<Socket>();
  /** Forwarded exchanges still streaming a response: frozen by cut("hang"). */
  const streaming = new Set<{ up: IncomingMessage; res: ServerResponse }>();
  let mode: CutMode | undefined;

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const rec: RecordedRequest = {
      method: req.method ?? "",
      path: req.url ?? "",
      headers: flatHeaders(req.headers),
      rawHeaderNames: req.rawHeaders.filter((_, i) => i % 2 === 0),
      trailers: {},
      bodyLength: 0,
      bodyHead: "",
      bodyTail: "",
      complete: false,
      outcome: "pending",
    };
    requests.push(rec);
    req.on("data", (chunk: Buffer) => {
      rec.bodyLength += chunk.length;
      if (rec.bodyHead.length < EDGE) rec.bodyHead += chunk.subarray(0, EDGE - rec.bodyHead.length).toString("latin1");
      rec.bodyTail = (rec.bodyTail + chunk.subarray(-EDGE).toString("latin1")).slice(-EDGE);
    });
    req.on("end", () => {
      rec.complete = true;
      rec.trailers = flatHeaders(req.trailers);
    });

    if (mode === "reset") {
      rec.outcome = "reset";
      req.socket.destroy();
      return;
    }
    const answerWith = (answer: Answer) => {
      rec.outcome = "answered";
      req.resume();
      const send = () => {
        res.writeHead(answer.status, { "content-type": "application/xml", ...answer.headers });
        res.end(answer.body ?? "");
      };
      if (req.complete) send();
      else req.on("end", send);
    };
    if (typeof mode === "object") {
      answerWith(mode);
      return;
    }
    if (mode === "hang") {
      rec.outcome = "held";
      held.add(req.socket);
      req.resume(); // read the body like a live server would, then say nothing
      return;
    }

    if (mode === undefined && proxy.intercept) {
      // The body waits (paused) while the rule decides.
      req.pause();
      void Promise.resolve(proxy.intercept(rec)).then(
        (answer) => (answer ? answerWith(answer) : forward(req, res, rec)),
        () => req.socket.destroy(),
      );
      return;
    }
    forward(req, res, rec);
  });
  const forward = (req: IncomingMessage, res: ServerResponse, rec: RecordedRequest) => {
    rec.outcome = "forwarded";
    const headers = { ...req.headers };
    // Node's server already answered "100 Continue" to the client; don't make upstream do it again.
    delete headers.expect;
    proxy.rewriteHeaders?.(headers);
    const upstream = httpRequest(
      { host: target.hostname, port: target.port || 80, method: req.method, path: req.url, headers, agent },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.statusMessage, up.rawHeaders);
        const exchange = { up, res };
        streaming.add(exchange);
        res.on("close", () => streaming.delete(exchange));
        if (mode === "hang") freeze(exchange);
        else up.pipe(res);
        up.on("error", () => res.destroy());
      },
    );
    upstream.on("error", () => res.destroy());
    res.on("close", () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  };
  const freeze = ({ up, res }: { up: IncomingMessage; res: ServerResponse }) => {
    up.unpipe(res);
    up.pause();
    held.add(res.socket!);
  };
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => {
      sockets.delete(s);
      held.delete(s);
    });
  });
  // Requests with bodies may arrive with "Expect: 100-continue"; node answers it automatically.
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;

  const proxy: RecordingProxy = {
    url: `http://127.0.0.1:${port}`,
    rewriteHeaders: undefined,
    intercept: undefined,
    requests,
    cut(m: CutMode = "hang") {
      mode = m;
      // Idle keep-alive connections would otherwise keep working as if nothing happened.
      if (m === "reset") for (const s of sockets) s.destroy();
      if (m === "hang") for (const x of streaming) if (x.res.socket) freeze(x);
    },
    restore() {
      mode = undefined;
      for (const s of held) s.destroy();
      held.clear();
    },
    async close() {
      mode = undefined;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      agent.destroy();
      await closed;
    },
  };
  return proxy;
}
