/**
 * A round-robin HTTP load balancer on loopback, for tests that run several server replicas:
 * each request goes to the next target in turn (bodies streamed both ways, nothing buffered).
 *
 *   const lb = await startRoundRobinProxy();
 *   lb.setTargets([a.url, b.url, c.url]);   // after the replicas know lb.url as their audience
 *   lb.served                               // requests forwarded to each target, in target order
 */
import { Agent, createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import type { Socket } from "node:net";

export interface RoundRobinProxy {
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** Replaces the targets (`http://host:port`); requests before any target is set answer 502. */
  setTargets(targets: string[]): void;
  /** Requests forwarded to each target so far, in the order of `setTargets`. */
  readonly served: number[];
  close(): Promise<void>;
}

export async function startRoundRobinProxy(): Promise<RoundRobinProxy> {
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const sockets = new Set<Socket>();
  let targets: URL[] = [];
  let served: number[] = [];
  let next = 0;

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (targets.length === 0) {
      res.writeHead(502, { "content-type": "text/plain" }).end("no targets");
      return;
    }
    const index = next++ % targets.length;
    const target = targets[index]!;
    served[index]!++;
    const headers = { ...req.headers };
    delete headers.expect; // Node already answered "100 Continue" to the client
    const upstream = httpRequest(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers, agent },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.statusMessage, up.rawHeaders);
        up.pipe(res);
        // A replica that cuts its answer (as it does when bytes fail to verify) cuts the client's too.
        up.on("error", () => res.destroy());
        up.on("aborted", () => res.destroy());
      },
    );
    upstream.on("error", () => (res.headersSent ? res.destroy() : res.writeHead(502, { "content-type": "text/plain" }).end("upstream failed")));
    res.on("close", () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  });
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    setTargets(urls) {
      targets = urls.map((u) => new URL(u));
      served = urls.map(() => 0);
      next = 0;
    },
    get served() {
      return [...served];
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      agent.destroy();
      await closed;
    },
  };
}
