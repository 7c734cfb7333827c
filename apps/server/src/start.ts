import type { AddressInfo } from "node:net";
import type { MetricsListen } from "@personal-server/artifacts";
import type { FastifyInstance } from "fastify";

/** A listening server. */
export interface RunningServer {
  /** Base URL clients use (`http://<host>:<port>`, the actual port when listening on 0). */
  url: string;
  port: number;
  /** `http://<host>:<port>` of the metrics listener (`<metricsUrl>/metrics`); undefined when metrics are off. */
  metricsUrl: string | undefined;
  /** Stops accepting, lets in-flight requests finish, closes the store. */
  close(): Promise<void>;
}

/**
 * Starts listening on `host`:`port` (port 0 picks a free one), and the metrics listener on
 * `metricsListen` when given (its own port; `ArtifactsConfig.metricsListen`). If the metrics
 * listener cannot start, the server closes again and the error is thrown.
 */
export async function startServer(
  app: FastifyInstance,
  listen: { host: string; port: number; metricsListen?: MetricsListen | undefined },
): Promise<RunningServer> {
  // Fastify logs its own "Server listening at" as a JSON line; main.ts prints the address in its
  // human-readable start-up summary instead, so the start-up output is not a mix of both.
  const level = app.log.level;
  app.log.level = "warn";
  try {
    await app.listen({ host: listen.host, port: listen.port });
  } finally {
    app.log.level = level;
  }
  let metricsUrl: string | undefined;
  if (listen.metricsListen !== undefined) {
    try {
      metricsUrl = await app.artifactMetricsListener.listen(listen.metricsListen);
    } catch (error) {
      await app.close();
      throw error;
    }
  }
  const { port } = app.server.address() as AddressInfo;
  const host = listen.host.includes(":") ? `[${listen.host}]` : listen.host;
  return { url: `http://${host === "0.0.0.0" || host === "[::]" ? "127.0.0.1" : host}:${port}`, port, metricsUrl, close: () => app.close() };
}

/** Options of {@link shutdownOnSignals}. */
export interface ShutdownOptions {
  /** How long in-flight requests may take to finish before their connections are cut. Default 25 s (`ARTIFACTS_SHUTDOWN_GRACE`). */
  graceMs?: number;
  /** Called with the exit code once the server has closed (default: process.exit). */
  exit?: (code: number) => void;
}

/**
 * On SIGTERM or SIGINT: stop accepting connections, let in-flight requests finish (at most
 * `graceMs`; then their connections are cut), close the store, and exit 0. A second signal exits at once.
 */
export function shutdownOnSignals(app: FastifyInstance, options: ShutdownOptions = {}): void {
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const graceMs = options.graceMs ?? 25_000;
  let closing = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (closing) {
      app.log.warn({ signal }, "second signal: exiting now");
      exit(1);
      return;
    }
    closing = true;
    app.log.info({ signal, graceMs }, "shutting down: no new connections; waiting for in-flight requests");
    const force = setTimeout(() => {
      app.log.warn("grace period over: closing the remaining connections");
      app.server.closeAllConnections();
    }, graceMs);
    force.unref();
    app.close().then(
      () => {
        clearTimeout(force);
        app.log.info("server closed");
        exit(0);
      },
      (error: unknown) => {
        app.log.error({ err: error }, "error while closing");
        exit(1);
      },
    );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
}
