import { type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { ArtifactError, ConfigError, UnauthenticatedError, type MetricsListen } from "@personal-server/artifacts";
import { bearerChecker } from "./auth/bearer.js";
import { failureReason } from "./auth/failure-reason.js";
import type { ServerMetrics } from "./metrics.js";

/** `/metrics` on a listener of its own (ARTIFACTS_METRICS_LISTEN): the API port never serves it. */
export interface MetricsListener {
  /** Starts listening; returns `http://<host>:<port>` (the actual port when `port` is 0). */
  listen(at: MetricsListen): Promise<string>;
  /** Stops it (nothing when it never listened). */
  close(): Promise<void>;
}

/**
 * Serves `GET /metrics` (Prometheus text) and nothing else. With `token`, only to
 * `Authorization: Bearer <token>`; failures count in `artifacts_auth_failures_total` like the API's.
 * The answer is the same text whoever asks, so the listener keeps no state per client.
 */
export function metricsListener(metrics: ServerMetrics, token: string | undefined): MetricsListener {
  const check = token === undefined ? undefined : bearerChecker(token, "metrics token");
  const server: Server = createServer((request, response) => {
    const answer = (status: number, code: string, message: string, headers: Record<string, string> = {}) => {
      const body = JSON.stringify({ error: { code, message } });
      response.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store", ...headers }).end(body);
    };
    const path = (request.url ?? "/").split("?")[0];
    if (path !== "/metrics") return answer(404, "not_found", "this listener serves GET /metrics only");
    if (request.method !== "GET" && request.method !== "HEAD") return answer(405, "method_not_allowed", "GET /metrics only", { Allow: "GET, HEAD" });
    try {
      check?.(request.headers.authorization);
    } catch (error) {
      if (!(error instanceof UnauthenticatedError)) throw error;
      metrics.authFailures.inc({ reason: failureReason(error) });
      return answer(401, "unauthenticated", error.message, { "WWW-Authenticate": "Bearer" });
    }
    metrics.registry.metrics().then(
      (text) => response.writeHead(200, { "Content-Type": metrics.registry.contentType, "Cache-Control": "no-store" }).end(request.method === "HEAD" ? undefined : text),
      (error: unknown) => answer(500, "internal", error instanceof ArtifactError ? error.message : "metrics collection failed"),
    );
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.keepAliveTimeout = 10_000;
  let listening = false;
  return {
    listen: (at) =>
      new Promise((resolve, reject) => {
        server.once("error", (error: NodeJS.ErrnoException) =>
          reject(
            new ConfigError(`cannot serve metrics on ${formatHost(at.host)}:${at.port} (${error.code ?? error.message}): set ARTIFACTS_METRICS_LISTEN to a free ADDRESS:PORT, or off`, {
              cause: error,
              details: { problems: [{ variable: "ARTIFACTS_METRICS_LISTEN", message: `${formatHost(at.host)}:${at.port}: ${error.code ?? error.message}` }] },
            }),
          ),
        );
        server.listen(at.port, at.host, () => {
          listening = true;
          const { port } = server.address() as AddressInfo;
          resolve(`http://${formatHost(at.host === "0.0.0.0" ? "127.0.0.1" : at.host === "::" ? "::1" : at.host)}:${port}`);
        });
      }),
    close: () =>
      new Promise((resolve) => {
        if (!listening) return resolve();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function formatHost(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}
