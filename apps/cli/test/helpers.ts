import { spawn } from "node:child_process";
import { mkdtempSync, utimesSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { Readable } from "node:stream";
import { createArtifactStore, loadConfig, type ArtifactStore, type StoreOptions } from "@personal-server/artifacts";
import { openBackend } from "@personal-server/artifacts/internal";
import { freshBucketOn, putLifecycleRules, type S3Peer } from "../../../test-support/s3.js";
export { startServer } from "../../../test-support/server-process.js";
import { run } from "../src/main.js";

/** Obviously fake master keys (never real secrets). */
export const KEY_A = `key-a:${Buffer.alloc(32, 0x11).toString("base64")}`;
export const KEY_B = `key-b:${Buffer.alloc(32, 0x22).toString("base64")}`;
export const GRANTEE = "0x00000000000000000000000000000000000000aa";

export const REPO_ROOT = resolve(import.meta.dirname, "../../..");
const MAIN = resolve(import.meta.dirname, "../src/main.ts");
const TSX = pathToFileURL(resolve(REPO_ROOT, "node_modules/tsx/dist/loader.mjs")).href;

export type Env = Record<string, string>;

/** Output of one CLI run. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in-process with captured streams and an explicit environment. */
export async function cli(argv: string[], env: Env, opts: { tty?: boolean; cwd?: string } = {}): Promise<CliResult> {
  let stdout = "";
  let stderr = "";
  const code = await run(argv, {
    stdout: { write: (s: string) => (stdout += s), isTTY: false },
    stderr: { write: (s: string) => (stderr += s), isTTY: opts.tty === true },
    env,
    ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
  });
  return { code, stdout, stderr };
}

/** Runs the CLI with --json and parses stdout. */
export async function cliJson<T = Record<string, unknown>>(argv: string[], env: Env): Promise<{ code: number; json: T; stderr: string }> {
  const r = await cli([...argv, "--json"], env);
  try {
    return { code: r.code, json: JSON.parse(r.stdout) as T, stderr: r.stderr };
  } catch {
    throw new Error(`not JSON (exit ${r.code}): ${r.stdout}\n${r.stderr}`);
  }
}

/** The CLI as a real child process (`node --conditions=source --import tsx main.ts`), like `pnpm artifacts`. */
export function spawnCli(argv: string[], env: Env, cwd: string) {
  return spawn(process.execPath, ["--conditions=source", "--import", TSX, MAIN, ...argv], {
    cwd,
    // Only what the child needs: PATH for nothing else, HOME for tsx's cache; no developer .env leaks in (cwd is a temp dir).
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? tmpdir(), ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** Runs a child CLI to completion. */
export async function runChild(argv: string[], env: Env, cwd: string): Promise<CliResult> {
  const child = spawnCli(argv, env, cwd);
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const code = await new Promise<number>((r) => child.once("close", (c) => r(c ?? -1)));
  return { code, stdout, stderr };
}

export function tempDir(label: string): string {
  return mkdtempSync(join(tmpdir(), `psa-cli-${label}-`));
}

/** Environment of a local store in a fresh directory. */
export function localEnv(extra: Env = {}): Env {
  return { ARTIFACTS_LOCAL_DIR: join(tempDir("local"), "store"), ARTIFACTS_MASTER_KEYS: KEY_A, ...extra };
}

/** Environment of an S3 store on a fresh bucket of an S3 peer (moto unless told). */
export async function s3Env(label: string, extra: Env = {}, peer: S3Peer = "moto"): Promise<Env & { S3_ENDPOINT: string; S3_BUCKET: string }> {
  const bucket = await freshBucketOn(peer, label);
  return {
    ...bucket.env,
    ARTIFACTS_LOCAL_DIR: join(tempDir("s3"), "unused"),
    ARTIFACTS_MASTER_KEYS: KEY_A,
    ARTIFACTS_S3_TIMEOUT_MS: "10000",
    ...extra,
  };
}

/**
 * A store on `env`. Its new operations are layout 1 unless told (the operations of the release
 * before layout 2, which every command must keep handling); layout-v2.test.ts runs the commands
 * on layout 2 operations.
 */
export function storeFor(env: Env, options: StoreOptions = {}): ArtifactStore {
  return createArtifactStore(loadConfig(env), { createLayout: 1, ...options });
}

export async function readAll(body: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of body) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

/** A TCP port nobody listens on (bound, then closed). */
export async function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Sets one expiration rule ("expire-operations") on a moto bucket. */
export async function putLifecycle(endpoint: string, bucket: string, prefix: string, days: number): Promise<void> {
  await putLifecycleRules(endpoint, bucket, [{ id: "expire-operations", prefix, days }]);
}

/** Local storage, or S3 on one of the peers (moto, Cloudflare's local R2 simulator). */
export type Kind = "local" | S3Peer;

/** A store fixture for usage/cleanup: live and expired operations, and orphans of known ages. */
export interface Fixture {
  env: Env;
  live: string[];
  expired: string[];
  /** Orphan keys older than 24 h (local only: S3 cannot backdate an object). */
  oldOrphans: string[];
  /** Orphan keys just written (kept by the sweep). */
  youngOrphans: string[];
}

export async function envFor(kind: Kind, label: string, extra: Env = {}): Promise<Env> {
  return kind === "local" ? localEnv(extra) : s3Env(label, extra, kind);
}

/**
 * Two live operations (2 and 1 artifacts), two expired ones (created by a store whose clock is
 * 10 days back, with the 7-day TTL), a young orphan object in a live operation and, on local
 * storage, an old orphan, an old metadata-less prefix and an old stray key directly under
 * operations/ (mtime set 2 days back).
 */
export async function makeFixture(kind: Kind, label: string): Promise<Fixture> {
  const env = await envFor(kind, label);
  const now = new Date();
  const past = storeFor(env, { now: () => new Date(now.getTime() - 10 * 86_400_000) });
  const present = storeFor(env);
  const expired: string[] = [];
  for (const agent of ["old-a", "old-b"]) {
    const op = await past.createOperation({ grantee: GRANTEE, agent });
    await past.putArtifact(op.operationId, "report.txt", `expired ${agent}`);
    expired.push(op.operationId);
  }
  const live: string[] = [];
  const big = await present.createOperation({ grantee: GRANTEE, agent: "big" });
  await present.putArtifact(big.operationId, "a.bin", Buffer.alloc(200_000, 1));
  await present.putArtifact(big.operationId, "b.bin", Buffer.alloc(100_000, 2));
  live.push(big.operationId);
  const small = await present.createOperation({ grantee: GRANTEE, agent: "small" });
  await present.putArtifact(small.operationId, "c.txt", "small");
  live.push(small.operationId);
  await Promise.all([past.close(), present.close()]);

  const backend = await openBackend(loadConfig(env).storage, { timeoutMs: 10_000, connectTimeoutMs: 5000 });
  const youngOrphans = [`operations/${small.operationId}/artifacts/crashed-upload.bin`];
  await backend.put(youngOrphans[0]!, Buffer.alloc(1000, 3));
  const oldOrphans: string[] = [];
  if (kind === "local") {
    // An old object in a live operation, a metadata-less prefix, and a stray key directly under
    // operations/ (the sweep's flat listing makes it a group of its own).
    oldOrphans.push(`operations/${big.operationId}/artifacts/old-crash.bin`, "operations/ghost_1/artifacts/x.bin", "operations/stray-file.txt");
    const twoDaysAgo = new Date(now.getTime() - 2 * 86_400_000);
    for (const key of oldOrphans) {
      await backend.put(key, Buffer.alloc(500, 4));
      utimesSync(join(env.ARTIFACTS_LOCAL_DIR!, key), twoDaysAgo, twoDaysAgo);
    }
  }
  await backend.close();
  return { env, live, expired, oldOrphans, youngOrphans };
}

/** Every key under operations/. */
export async function listKeys(env: Env): Promise<string[]> {
  const backend = await openBackend(loadConfig(env).storage, { timeoutMs: 10_000, connectTimeoutMs: 5000 });
  const keys: string[] = [];
  for await (const o of backend.list("operations/")) keys.push(o.key);
  await backend.close();
  return keys;
}

