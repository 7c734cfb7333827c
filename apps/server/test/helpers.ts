import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  createArtifactStore,
  loadConfig,
  type ArtifactStore,
  type ArtifactsConfig,
  type StorageObserver,
} from "@personal-server/artifacts";
import { openBackend, type Backend } from "@personal-server/artifacts/internal";
import {
  createGranteeClient,
  createWriterClient,
  signRequest,
  type GranteeClient,
  type MessageSigner,
  type WriterClient,
} from "@personal-server/artifacts/client";
import type { FastifyInstance } from "fastify";
import { generatePrivateKey, privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";
import { freshBucketOn, S3_PEERS, type S3Peer } from "../../../test-support/s3.js";
import { buildServer, type BuildServerOptions } from "../src/app.js";
import { startServer } from "../src/start.js";

/** Local storage, or S3 on one of the peers (moto, Cloudflare's local R2 simulator). */
export type Kind = "local" | S3Peer;
export const KINDS: Kind[] = ["local", ...S3_PEERS];

/** The storage kind `/health` and metrics report for a test kind. */
export const storageKind = (kind: Kind): "local" | "s3" => (kind === "local" ? "local" : "s3");

/** Obviously fake secrets (never real ones). */
export const TEST_MASTER_KEY = Buffer.alloc(32, 0x11).toString("base64");
export const WRITER_TOKEN = "test-writer-token-obviously-fake-0000000";
export const METRICS_TOKEN = "test-metrics-token-obviously-fake-000000";

/** A fresh random wallet. */
export function wallet(): PrivateKeyAccount {
  return privateKeyToAccount(generatePrivateKey());
}

/** Environment for a test server on `kind` storage (fresh temp dir or a fresh bucket on the peer). */
export async function testEnv(kind: Kind, env: Record<string, string> = {}): Promise<Record<string, string>> {
  const base: Record<string, string> =
    kind === "local"
      ? { ARTIFACTS_LOCAL_DIR: mkdtempSync(join(tmpdir(), "psa-server-")) }
      : { ...(await freshBucketOn(kind, "server")).env, ARTIFACTS_S3_TIMEOUT_MS: "20000" };
  return {
    ...base,
    ARTIFACTS_MASTER_KEY: TEST_MASTER_KEY,
    ARTIFACTS_WRITER_TOKEN: WRITER_TOKEN,
    ARTIFACTS_SWEEP_INTERVAL: "0",
    PORT: "0",
    ...env,
  };
}

export interface TestServer {
  kind: Kind;
  url: string;
  port: number;
  /** `http://127.0.0.1:<port>/metrics` on the server's metrics listener (never the API port). */
  metricsUrl: string;
  app: FastifyInstance;
  config: ArtifactsConfig;
  store: ArtifactStore;
  /** Raw access to the same storage (tampering, "nothing stored" checks). */
  raw: Backend;
  /** The store's clock; move it to expire operations. */
  clock: { now: Date };
  writer: WriterClient;
  grantee(account: MessageSigner): GranteeClient;
  /** Log lines the server wrote. */
  logs: string[];
  close(): Promise<void>;
}

/** Builds the server over a fresh store and listens on 127.0.0.1:0 (real HTTP). */
export async function startTestServer(
  kind: Kind,
  env: Record<string, string> = {},
  options: Omit<BuildServerOptions, "store" | "logger"> = {},
): Promise<TestServer> {
  const config = loadConfig(await testEnv(kind, env));
  const clock = { now: new Date() };
  // The store is made here (for its clock); its storage calls still reach the server's metrics.
  let observe: StorageObserver | undefined;
  const store = createArtifactStore(config, { now: () => clock.now, onStorageCall: (kind, outcome) => observe?.(kind, outcome) });
  const logs: string[] = [];
  const app = await buildServer(config, {
    ...options,
    store,
    logger: { level: "debug", stream: { write: (line: string) => logs.push(line) } },
  });
  observe = app.artifactMetrics.storageCall;
  const { url, port, metricsUrl } = await startServer(app, { host: "127.0.0.1", port: 0, metricsListen: { host: "127.0.0.1", port: 0 } });
  const raw = await openBackend(config.storage, { timeoutMs: 20_000, connectTimeoutMs: 5000 });
  return {
    kind,
    url,
    port,
    metricsUrl: `${metricsUrl!}/metrics`,
    app,
    config,
    store,
    raw,
    clock,
    writer: createWriterClient({ baseUrl: url, token: WRITER_TOKEN }),
    grantee: (account) => createGranteeClient({ baseUrl: url, account }),
    logs,
    async close() {
      await app.close();
      await store.close();
      await raw.close();
      // The temp dir this helper made (large tests leave hundreds of MiB behind otherwise).
      if (kind === "local" && env.ARTIFACTS_LOCAL_DIR === undefined) rmSync(config.localDir, { recursive: true, force: true });
    },
  };
}

/** A raw HTTP answer (node:http, so the request-target goes out exactly as given, never normalised). */
export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** Parsed JSON body, when it is JSON. */
  json: unknown;
}

/**
 * Sends one request with node:http: unlike fetch, it sends `target` byte for byte (no dot-segment
 * removal, no percent-encoding), which the path and auth tests need.
 */
export function rawRequest(
  baseUrl: string,
  method: string,
  target: string,
  headers: Record<string, string> = {},
  body?: Buffer | string,
): Promise<RawResponse> {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: url.hostname, port: url.port, method, path: target, headers: { connection: "close", ...headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          const bodyBytes = Buffer.concat(chunks);
          let json: unknown;
          try {
            json = JSON.parse(bodyBytes.toString("utf8"));
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: bodyBytes, json });
        });
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** `Authorization` for a grantee request to `target` on the test server (fresh nonce, valid now). */
export function signedFor(server: TestServer, account: MessageSigner, method: string, target: string): Promise<string> {
  return signRequest(account, { audience: server.url, method, uri: target });
}

/** The error body every failure carries. */
export function errorBody(code: string, message: string): { error: { code: string; message: string } } {
  return { error: { code, message } };
}

export function sha256(data: Buffer | Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Deterministic pseudo-random bytes (fast, incompressible enough for tests). */
export function patternBytes(size: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Collects a stream into one Buffer. */
export async function collect(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/** Keys stored under an operation's prefix. */
export async function storedKeys(raw: Backend, operationId: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const object of raw.list(`operations/${operationId}/`)) keys.push(object.key);
  return keys.sort();
}
