import type { AddressInfo } from "node:net";
import {
  ArtifactError,
  ConfigError,
  InvalidInputError,
  UnauthenticatedError,
  MethodNotAllowedError,
  NotFoundError,
  createArtifactStore,
  type ArtifactStore,
  type ArtifactsConfig,
} from "@personal-server/artifacts";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { bearerChecker } from "./auth/bearer.js";
import { authFailureLimit } from "./auth/failure-limit.js";
import { failureReason } from "./auth/failure-reason.js";
import { NonceCache, nonceJournalPath } from "./auth/nonce-cache.js";
import type { NonceStore } from "./auth/nonce-store.js";
import { EMPTY_BODY_HASH, acceptedAudiences, spendNonce, verifyWeb3Signed } from "./auth/web3signed.js";
import type { Context, Handler, Signer } from "./context.js";
import { applyCors } from "./cors.js";
import { createOperation } from "./handlers/create-operation.js";
import { deleteOperation } from "./handlers/delete-operation.js";
import { delivery } from "./handlers/delivery.js";
import { getArtifact } from "./handlers/get-artifact.js";
import { health } from "./handlers/health.js";
import { listArtifacts } from "./handlers/list-artifacts.js";
import { putArtifact } from "./handlers/put-artifact.js";
import { bodyUnread } from "./http/body.js";
import { clientErrorHandler } from "./http/client-error.js";
import { REDACT_PATHS, serializeRequest } from "./log.js";
import { ServerMetrics } from "./metrics.js";
import { type MetricsListener, metricsListener } from "./metrics-listener.js";
import { matchRoute, type RouteName } from "./routes.js";
import { startSweeper } from "./sweep.js";
import { defaultWebUiDir, webUiServer } from "./web-ui.js";

/** Options of {@link buildServer}; everything has a production default. */
export interface BuildServerOptions {
  /** The store to serve. Default: `createArtifactStore(config)`, closed when the server closes. */
  store?: ArtifactStore;
  /** Writer bearer token. Default: `config.writerToken`; one of the two is required. */
  writerToken?: string;
  /**
   * Logging: `false` for none; otherwise pino at `level` (default "info") writing JSON lines to
   * `stream` (default stdout). Authorization headers, cookies, tokens, keys and signatures are redacted.
   */
  logger?: false | { level?: string; stream?: { write(line: string): unknown } };
  /** Largest JSON request body, in bytes (POST /api/v1/operations). Default 16 KiB. */
  jsonBodyLimit?: number;
  /** Time a client has to send the request headers. Default 30 s. */
  headersTimeoutMs?: number;
  /**
   * A connection with no bytes moving either way for this long is closed. This is the guard
   * against slow clients that still lets a large, steadily flowing upload or download run for as
   * long as it needs (there is deliberately no total request time limit). Default 120 s.
   */
  idleTimeoutMs?: number;
  /** Upper bound on Web3Signed nonces remembered in memory (no ARTIFACTS_NONCE_STORE). Default 100 000. */
  nonceCacheSize?: number;
  /**
   * Without ARTIFACTS_NONCE_STORE: the file that keeps spent nonces across a crash and restart.
   * Default `<ARTIFACTS_LOCAL_DIR>/.spent-nonces` (whatever the storage).
   */
  nonceJournal?: string;
  /** Where the built grantee page is, served at `/` when `config.webUi`. Default: the `@personal-server/web` package's `dist`. */
  webUiDir?: string;
  /** Run the expiry sweep on `config.sweepIntervalSeconds` (and once at start) while listening. Default true. */
  sweep?: boolean;
}

declare module "fastify" {
  interface FastifyInstance {
    /** The store this server serves. */
    artifactStore: ArtifactStore;
    /** This server's metrics registry. */
    artifactMetrics: ServerMetrics;
    /** Where `/metrics` is served (started by `startServer`, closed with the app). */
    artifactMetricsListener: MetricsListener;
  }
}

const HANDLERS: Record<RouteName, Handler> = {
  health,
  operations: createOperation,
  operation: deleteOperation,
  artifacts: listArtifacts,
  delivery,
  artifact: (ctx, request, reply, match) =>
    request.method === "PUT" ? putArtifact(ctx, request, reply, match) : getArtifact(ctx, request, reply, match),
};

/**
 * The body of every 503 but those whose message was written for clients (`details.publicMessage`):
 * storage errors name the endpoint, the bucket and the object key, which are the operator's (the
 * log has them), never a client's.
 */
const STORAGE_UNAVAILABLE = "storage is unavailable or too slow; retry shortly";

/** Response headers of a failed or half-built answer that must not survive into an error body. */
const ENTITY_HEADERS = [
  "content-type",
  "content-length",
  "content-range",
  "content-disposition",
  "etag",
  "last-modified",
  "accept-ranges",
  "location",
  "x-content-type-options",
];

/**
 * Builds the HTTP app (Fastify) over the store, without listening: tests call `listen` on port 0,
 * `startServer` does it for real. Routes, statuses and check order are docs/http-api.md's.
 */
export async function buildServer(config: ArtifactsConfig, options: BuildServerOptions = {}): Promise<FastifyInstance> {
  const writerToken = options.writerToken ?? config.writerToken;
  if (writerToken === undefined || writerToken.length < 32) {
    throw new ConfigError("the server needs a writer token of at least 32 characters (ARTIFACTS_WRITER_TOKEN)", {
      details: { problems: [{ variable: "ARTIFACTS_WRITER_TOKEN", message: "required (at least 32 characters)" }] },
    });
  }
  const ownStore = options.store === undefined;
  const sweeping = options.sweep !== false && config.sweepIntervalSeconds > 0;
  const metrics = new ServerMetrics(options.store?.kind ?? config.storage.kind, {
    sweepIntervalSeconds: sweeping ? config.sweepIntervalSeconds : 0,
    monthlyBudgetUsd: config.monthlyBudgetUsd,
  });
  const store = options.store ?? createArtifactStore(config, { onStorageCall: metrics.storageCall });
  const checkWriter = bearerChecker(writerToken, "writer token");
  const metricsServer = metricsListener(metrics, config.metricsToken);

  const loggerOptions =
    options.logger === false
      ? false
      : {
          level: options.logger?.level ?? "info",
          redact: { paths: REDACT_PATHS, censor: "[redacted]" },
          serializers: { req: serializeRequest },
          ...(options.logger?.stream === undefined ? {} : { stream: options.logger.stream }),
        };

  const serveWebUi = config.webUi ? webUiServer(options.webUiDir ?? defaultWebUiDir()) : undefined;

  const headersTimeout = options.headersTimeoutMs ?? 30_000;
  let dispatch: (request: FastifyRequest, reply: FastifyReply) => Promise<void> = async () => {};

  const app = Fastify({
    logger: loggerOptions,
    exposeHeadRoutes: false,
    // No total request time limit (a 5 GiB upload may legitimately take an hour); idle sockets are cut instead.
    requestTimeout: 0,
    connectionTimeout: options.idleTimeoutMs ?? 120_000,
    keepAliveTimeout: 10_000,
    http: {
      // Node's own refusal of a missing Host is an empty 400; the dispatcher answers it in the API's shape.
      requireHostHeader: false,
      headersTimeout,
      // Node checks header deadlines on this interval; keep it well under the deadline itself.
      connectionsCheckingInterval: Math.max(100, Math.min(30_000, Math.floor(headersTimeout / 4))),
    },
    routerOptions: { maxParamLength: 8192 },
    // request.ip is the socket's peer, or X-Forwarded-For's client when the peer is a trusted proxy.
    trustProxy: config.trustedProxies.length > 0 ? config.trustedProxies : false,
    return503OnClosing: true,
    forceCloseConnections: "idle",
    clientErrorHandler,
    // Malformed percent-encoding and over-long paths are still our routes: answer them in order (401 before 400).
    frameworkErrors: (_error, request, reply) => {
      void dispatch(request, reply);
    },
  });
  app.decorate("artifactStore", store);
  app.decorate("artifactMetrics", metrics);
  app.decorate("artifactMetricsListener", metricsServer);
  const nonces: NonceStore =
    config.nonceStore.kind === "redis"
      ? // Loaded only when configured: ioredis alone adds ~9 MiB to the server's resident memory.
        new (await import("./auth/redis-nonce-store.js")).RedisNonceStore(config.nonceStore, (message) => app.log.warn(message))
      : new NonceCache(options.nonceCacheSize, options.nonceJournal ?? nonceJournalPath(config.localDir));

  const { authenticated, fail } = await authFailureLimit(app, config.authFailureLimit);
  // Requests whose signature was recovered, and whether the signer turned out to be the grantee.
  const signed = new WeakMap<FastifyRequest, { granted: boolean }>();

  const audiencePort = (): number => {
    if (config.port !== 0) return config.port;
    const address = app.server.address() as AddressInfo | null;
    return address?.port ?? 0;
  };

  const ctx: Context = {
    config,
    store,
    metrics,
    jsonBodyLimit: options.jsonBodyLimit ?? 16 * 1024,
    port: audiencePort,
    requireWriter: (request) => authenticated(request, () => checkWriter(request.headers.authorization)),
    requireSigner: async (request): Promise<Signer> => {
      const { address, payload } = await authenticated(request, () =>
        verifyWeb3Signed(request.headers.authorization, {
          audiences: acceptedAudiences(config.audience, audiencePort()),
          method: request.method,
          target: request.raw.url ?? "",
          bodyHash: EMPTY_BODY_HASH,
          now: Math.floor(Date.now() / 1000),
          nonces,
        }),
      );
      const state = { granted: false };
      signed.set(request, state);
      let spent: Promise<void> | undefined;
      return {
        requester: address,
        onGrantee: () =>
          (spent ??= spendNonce(nonces, payload, Math.floor(Date.now() / 1000)).then(() => {
            state.granted = true;
          })),
      };
    },
  };

  const sendError = (request: FastifyRequest, reply: FastifyReply, error: unknown): void => {
    const known = error instanceof ArtifactError;
    const code = known ? error.code : "internal";
    const status = known ? error.status : 500;
    if (error instanceof UnauthenticatedError) metrics.authFailures.inc({ reason: failureReason(error) });
    else metrics.errors.inc({ code });
    if (status >= 500) request.log.error({ err: error }, "request failed");
    else request.log.info({ code, reason: (error as Error).message }, "request refused");
    if (reply.raw.headersSent) {
      // The answer already began (e.g. a download whose bytes failed to verify): never let it look complete.
      reply.raw.destroy();
      return;
    }
    for (const name of ENTITY_HEADERS) {
      reply.removeHeader(name);
      reply.raw.removeHeader(name);
    }
    if (code === "unauthenticated") {
      reply.header("WWW-Authenticate", request.headers.authorization?.startsWith("Bearer") ? "Bearer" : "Web3Signed, Bearer");
    }
    if (known && code === "range_not_satisfiable" && typeof error.details?.size === "number") {
      reply.header("Content-Range", `bytes */${error.details.size}`);
    }
    if (code === "storage_unavailable") reply.header("Retry-After", "5");
    if (known && code === "rate_limited") reply.header("Retry-After", String(error.details?.retryAfterSeconds ?? 60));
    // A body we did not read may be gigabytes: close the connection instead of draining it.
    if (bodyUnread(request.raw)) reply.header("Connection", "close");
    const message = !known ? "internal server error" : status === 503 && error.details?.publicMessage !== true ? STORAGE_UNAVAILABLE : error.message;
    reply
      .code(status)
      .header("Cache-Control", "no-store")
      .type("application/json; charset=utf-8")
      .send({ error: { code, message } });
  };

  dispatch = async (request, reply) => {
    const target = request.raw.url ?? "/";
    const query = target.indexOf("?");
    const rawPath = query === -1 ? target : target.slice(0, query);
    const match = matchRoute(rawPath);
    const label = match?.label ?? (serveWebUi === undefined ? "unmatched" : "web");
    const started = process.hrtime.bigint();
    reply.raw.once("close", () => {
      const status = reply.raw.writableFinished ? String(reply.raw.statusCode) : "aborted";
      metrics.requests.inc({ route: label, method: request.method, status });
      metrics.duration.observe({ route: label }, Number(process.hrtime.bigint() - started) / 1e9);
      // Plaintext only: a ticket (the artifact route with a query) carries none.
      if (match?.name === "artifact" && query === -1 && request.method === "GET" && reply.raw.writableFinished) {
        const length = Number(reply.raw.getHeader("content-length") ?? 0);
        if (reply.raw.statusCode === 200 || reply.raw.statusCode === 206) metrics.bytesOut.inc(length);
      }
    });
    try {
      if (request.raw.httpVersion === "1.1" && request.headers.host === undefined) {
        throw new InvalidInputError("malformed HTTP request: HTTP/1.1 needs a Host header");
      }
      applyCors(config.corsOrigins, request, reply);
      if (match === null && serveWebUi?.(request, reply, rawPath)) return;
      if (match === null) throw new NotFoundError(`no route for ${request.method} ${target.slice(0, 200)}`);
      if (request.method === "OPTIONS") {
        reply.code(204).header("Allow", [...match.methods, "OPTIONS"].join(", ")).send();
        return;
      }
      if (!match.methods.includes(request.method)) {
        reply.header("Allow", match.methods.join(", "));
        throw new MethodNotAllowedError(`${request.method} is not allowed here; allowed: ${match.methods.join(", ")}`);
      }
      await HANDLERS[match.name](ctx, request, reply, match);
    } catch (error) {
      sendError(request, reply, error);
    } finally {
      // A recovered signature costs what a failed one does unless its signer is the grantee.
      if (signed.get(request)?.granted === false) await fail(request).catch(() => {});
    }
  };

  // Bodies are streams for the handlers to consume (or not): no parser reads them up front.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", (_request, _payload, done) => done(null));
  // Returning the reply tells Fastify the answer is in hand (a stream may still be flowing).
  const handle = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    await dispatch(request, reply);
    return reply;
  };
  app.setErrorHandler(async (error, request, reply) => {
    // Fastify refuses an unparseable Content-Type before any handler runs. Our handlers read bodies
    // themselves, so run the route anyway: it authenticates first, then the store judges the type (400).
    if ((error as { code?: string }).code === "FST_ERR_CTP_INVALID_MEDIA_TYPE") return handle(request, reply);
    sendError(request, reply, error);
    return reply;
  });
  app.setNotFoundHandler(handle);
  app.all("*", handle);

  let sweeper: { stop(): Promise<void> } | undefined;
  if (sweeping) {
    app.addHook("onListen", async () => {
      sweeper = startSweeper(store, metrics, app.log, config.sweepIntervalSeconds);
    });
  }
  // One hook, so the order is certain: no sweep may still be running when the store closes.
  app.addHook("onClose", async () => {
    await sweeper?.stop();
    await metricsServer.close();
    await nonces.close();
    if (ownStore) await store.close();
  });
  return app;
}
