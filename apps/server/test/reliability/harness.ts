/**
 * Shared pieces of the reliability suite (issue 7): the server as a real child process, an
 * in-process server with short timeouts, raw HTTP that sends bytes exactly as given, storage
 * snapshots for "nothing was written", and the secret watch that every file feeds.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, statSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import {
  createArtifactStore,
  loadConfig,
  type ArtifactStore,
  type ArtifactsConfig,
} from "@personal-server/artifacts";
import { openBackend, type Backend } from "@personal-server/artifacts/internal";
import type { FastifyInstance } from "fastify";
import { generatePrivateKey, privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";
import { buildServer, type BuildServerOptions } from "../../src/app.js";
import { collect, patternBytes, sha256 } from "../helpers.js";

export const REPO = fileURLToPath(new URL("../../../../", import.meta.url));

/** Obviously fake secrets: never real ones, but distinctive enough to grep for. */
export const MASTER_KEY = Buffer.alloc(32, 0x3c).toString("base64");
export const WRITER_TOKEN = "reliability-writer-token-obviously-fake-0001";
export const METRICS_TOKEN = "reliability-metrics-token-obviously-fake-01";

export function wallet(): PrivateKeyAccount {
  return privateKeyToAccount(generatePrivateKey());
}

// Shared with the API tests: one definition each.
export { collect, patternBytes, sha256 };

export function tempDir(label: string): string {
  return mkdtempSync(join(tmpdir(), `psa-rel-${label}-`));
}

// ---- the secret watch ----------------------------------------------------------------------

/**
 * Everything a test saw that an operator or a client could see (log lines, error bodies,
 * response headers, CLI output), checked at the end of each file for secrets in any usual
 * encoding. Signatures (S3 SigV4 from the proxy's recordings, Web3Signed from our own requests)
 * are added as they are produced.
 */
export class SecretWatch {
  private readonly texts: { source: string; text: string }[] = [];
  private readonly secrets = new Map<string, string>();

  constructor() {
    this.secret("master key", MASTER_KEY);
    this.secret("writer token", WRITER_TOKEN);
    this.secret("metrics token", METRICS_TOKEN);
  }

  /** Registers a secret; keys given as base64 are also looked for as hex and base64url. */
  secret(name: string, value: string): void {
    if (value.length < 8) return;
    this.secrets.set(value, name);
    if (/^[A-Za-z0-9+/]+={0,2}$/.test(value) && value.length % 4 === 0) {
      const bytes = Buffer.from(value, "base64");
      if (bytes.length >= 16) {
        this.secrets.set(bytes.toString("hex"), `${name} (hex)`);
        this.secrets.set(bytes.toString("base64url"), `${name} (base64url)`);
      }
    }
  }

  /** Registers the signature of a Web3Signed Authorization header value. */
  web3Signature(authorization: string): void {
    const sig = /\.(0x[0-9a-fA-F]{130})$/.exec(authorization)?.[1];
    if (sig) this.secrets.set(sig.slice(2).toLowerCase(), "Web3Signed signature");
  }

  /** Registers the SigV4 signatures of every request a recording proxy saw. */
  s3Signatures(requests: readonly { headers: Record<string, string> }[]): number {
    let n = 0;
    for (const r of requests) {
      const sig = /Signature=([0-9a-f]{64})/.exec(r.headers.authorization ?? "")?.[1];
      if (sig) {
        this.secrets.set(sig, "S3 request signature");
        n++;
      }
    }
    return n;
  }

  see(source: string, text: string | Buffer): void {
    this.texts.push({ source, text: typeof text === "string" ? text : text.toString("latin1") });
  }

  get secretCount(): number {
    return this.secrets.size;
  }

  get textCount(): number {
    return this.texts.length;
  }

  /** Every (secret, place) pair found; empty when clean. Comparison is case-insensitive for hex. */
  leaks(): string[] {
    const found: string[] = [];
    for (const { source, text } of this.texts) {
      const lower = text.toLowerCase();
      for (const [secret, name] of this.secrets) {
        const hit = /^[0-9a-f]+$/.test(secret) ? lower.includes(secret) : text.includes(secret);
        if (hit) found.push(`${name} in ${source}: ...${text.slice(Math.max(0, text.indexOf(secret) - 80), 200)}...`);
      }
    }
    return found;
  }
}

// ---- raw HTTP ------------------------------------------------------------------------------

export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  json: unknown;
  /** The raw head as received (status line and headers). */
  head: string;
  /** True if the connection closed before a complete answer (no answer at all, or a cut body). */
  cut: boolean;
}

/**
 * Writes `bytes` to a fresh TCP connection and reads one HTTP/1.1 answer (Content-Length or
 * chunked, or until close). Nothing is validated or normalised on the way out, so request lines
 * with raw NUL, spaces, UTF-8 or absolute forms reach the server exactly as written.
 */
export function rawExchange(baseUrl: string, bytes: Buffer | string, timeoutMs = 15_000): Promise<RawAnswer> {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname);
    let buffer = Buffer.alloc(0);
    let settled = false;
    const timer = setTimeout(() => finish(new Error(`no complete answer within ${timeoutMs} ms`)), timeoutMs);
    const finish = (error?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
    };
    const tryParse = (closed: boolean): void => {
      const end = buffer.indexOf("\r\n\r\n");
      if (end === -1) {
        if (closed) {
          settled = true;
          clearTimeout(timer);
          resolve({ status: 0, headers: {}, body: Buffer.alloc(0), json: undefined, head: buffer.toString("latin1"), cut: true });
        }
        return;
      }
      const head = buffer.subarray(0, end).toString("latin1");
      const [statusLine, ...lines] = head.split("\r\n");
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? "")?.[1] ?? 0);
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const i = line.indexOf(":");
        if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      let rest = buffer.subarray(end + 4);
      let body: Buffer | undefined;
      let cut = false;
      if (headers["transfer-encoding"]?.toLowerCase() === "chunked") {
        const parts: Buffer[] = [];
        let complete = false;
        for (;;) {
          const lineEnd = rest.indexOf("\r\n");
          if (lineEnd === -1) break;
          const size = parseInt(rest.subarray(0, lineEnd).toString("latin1"), 16);
          if (size === 0) {
            complete = true;
            break;
          }
          if (rest.length < lineEnd + 2 + size + 2) break;
          parts.push(rest.subarray(lineEnd + 2, lineEnd + 2 + size));
          rest = rest.subarray(lineEnd + 2 + size + 2);
        }
        if (complete || closed) {
          body = Buffer.concat(parts);
          cut = !complete;
        }
      } else if (headers["content-length"] !== undefined) {
        const length = Number(headers["content-length"]);
        if (rest.length >= length) body = rest.subarray(0, length);
        else if (closed) {
          body = rest;
          cut = true;
        }
      } else if (status === 204 || status === 304 || status < 200) {
        body = Buffer.alloc(0);
      } else if (closed) {
        body = rest;
      }
      if (body === undefined) return;
      let json: unknown;
      try {
        json = JSON.parse(body.toString("utf8"));
      } catch {
        json = undefined;
      }
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ status, headers, body, json, head, cut });
    };
    socket.on("data", (d: Buffer) => {
      buffer = Buffer.concat([buffer, d]);
      tryParse(false);
    });
    socket.on("end", () => tryParse(true));
    socket.on("close", () => tryParse(true));
    socket.on("error", (e) => {
      // A reset after a complete answer is fine; before one it is a cut connection.
      if (!settled) tryParse(true);
      if (!settled) finish(e);
    });
    socket.write(bytes);
  });
}

/** Builds a request (Connection: close; Content-Length for a body unless a header says otherwise). */
export function rawRequestBytes(
  method: string,
  target: string,
  headers: Record<string, string> = {},
  body?: Buffer | string,
): Buffer {
  const lines = [`${method} ${target} HTTP/1.1`, "Host: 127.0.0.1", "Connection: close"];
  const names = new Set(Object.keys(headers).map((h) => h.toLowerCase()));
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  const payload = body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(body) ? body : Buffer.from(body, "utf8");
  if (body !== undefined && !names.has("content-length") && !names.has("transfer-encoding")) lines.push(`Content-Length: ${payload.length}`);
  // UTF-8 on the wire, as a client sending a raw non-ASCII target would (latin1 would mangle it).
  return Buffer.concat([Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "utf8"), payload]);
}

// ---- storage snapshots ----------------------------------------------------------------------

/**
 * Every file and directory under `dir` (relative path -> size and hash; directories as "dir"),
 * but the server's journal of spent nonces (`.spent-nonces`: its state, not stored data; every
 * grantee request appends to it).
 */
export function snapshotDir(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (current: string): void => {
    for (const name of readdirSync(current)) {
      if (current === dir && name === ".spent-nonces") continue;
      const path = join(current, name);
      const st = statSync(path);
      const rel = relative(dir, path);
      if (st.isDirectory()) {
        out.set(`${rel}/`, "dir");
        walk(path);
      } else out.set(rel, `${st.size}:${sha256(readFileSync(path))}`);
    }
  };
  walk(dir);
  return out;
}

/** Every object in the backend (key -> size and ETag). */
export async function snapshotBackend(raw: Backend): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const o of raw.list("")) out.set(o.key, `${o.size}:${o.etag}`);
  return out;
}

/** Human-readable difference of two snapshots ("" when equal). */
export function diffSnapshots(before: Map<string, string>, after: Map<string, string>): string {
  const lines: string[] = [];
  for (const [k, v] of after) if (before.get(k) !== v) lines.push(`${before.has(k) ? "changed" : "added"} ${k}`);
  for (const k of before.keys()) if (!after.has(k)) lines.push(`removed ${k}`);
  return lines.sort().join("\n");
}

// ---- in-process server -------------------------------------------------------------------------

export interface InProcessServer {
  url: string;
  port: number;
  app: FastifyInstance;
  config: ArtifactsConfig;
  store: ArtifactStore;
  /** Direct access to the same storage (never through a proxy). */
  raw: Backend;
  logs: string[];
  close(): Promise<void>;
}

/**
 * The app over a fresh store, listening on 127.0.0.1:0, logging (JSON lines) into `logs` and the
 * watch. `rawStorage` overrides what `raw` opens (e.g. moto directly while the server goes through
 * a proxy).
 */
export async function startInProcess(
  env: Record<string, string>,
  watch: SecretWatch,
  options: Omit<BuildServerOptions, "store" | "logger"> & {
    rawStorage?: ArtifactsConfig["storage"];
    logLevel?: string;
    /** Layout of the operations the server creates (1: as the release before layout 2 did). */
    createLayout?: 1 | 2;
  } = {},
): Promise<InProcessServer> {
  const { rawStorage, logLevel, createLayout, ...serverOptions } = options;
  const config = loadConfig({
    ARTIFACTS_MASTER_KEY: MASTER_KEY,
    ARTIFACTS_WRITER_TOKEN: WRITER_TOKEN,
    ARTIFACTS_SWEEP_INTERVAL: "0",
    PORT: "0",
    ...env,
  });
  const store = createArtifactStore(config, { createLayout });
  const logs: string[] = [];
  const app = await buildServer(config, {
    ...serverOptions,
    store,
    logger: {
      level: logLevel ?? "info",
      stream: {
        write: (line: string) => {
          logs.push(line);
          watch.see("server log", line);
        },
      },
    },
  });
  await app.listen({ host: "127.0.0.1", port: 0 });
  const address = app.server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  const raw = await openBackend(rawStorage ?? config.storage, { timeoutMs: 20_000, connectTimeoutMs: 5000 });
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    app,
    config,
    store,
    raw,
    logs,
    async close() {
      await app.close();
      await store.close();
      await raw.close();
    },
  };
}

// ---- the server as a child process ---------------------------------------------------------------

/** How the child runs an app (`server` or `cli`): its built `dist/main.js` when fresh, else the TypeScript source. */
export function appCommand(app: "server" | "cli"): { args: string[]; built: boolean } {
  const dist = join(REPO, `apps/${app}/dist/main.js`);
  const sdkDist = join(REPO, "packages/artifacts/dist/index.js");
  const newest = (dir: string): number => {
    let max = 0;
    const walk = (d: string): void => {
      for (const name of readdirSync(d)) {
        const p = join(d, name);
        const st = statSync(p);
        if (st.isDirectory()) walk(p);
        else if (name.endsWith(".ts")) max = Math.max(max, st.mtimeMs);
      }
    };
    walk(dir);
    return max;
  };
  try {
    const builtAt = Math.min(statSync(dist).mtimeMs, statSync(sdkDist).mtimeMs);
    const sourceAt = Math.max(newest(join(REPO, `apps/${app}/src`)), newest(join(REPO, "packages/artifacts/src")));
    if (builtAt >= sourceAt) return { args: [dist], built: true };
  } catch {
    // not built
  }
  // A stale build would test yesterday's code: run the source instead (pnpm test builds first).
  // tsx by absolute URL: the child may run in a directory of its own (no .env of the repository).
  const tsx = pathToFileURL(join(REPO, "node_modules/tsx/dist/loader.mjs")).href;
  return { args: ["--conditions=source", "--import", tsx, join(REPO, `apps/${app}/src/main.ts`)], built: false };
}

export interface ChildServer {
  url: string;
  /** `http://127.0.0.1:<port>` of its metrics listener (`/metrics` there). */
  metricsOrigin: string | undefined;
  port: number;
  pid: number;
  built: boolean;
  /** Every stdout/stderr line so far. */
  lines: string[];
  /** Resolves when the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Peak resident set size so far (VmHWM), KiB. */
  peakRssKiB(): number;
  kill(signal: NodeJS.Signals): void;
  /** SIGTERM and wait (SIGKILL after 10 s). */
  stop(): Promise<void>;
}

/**
 * Starts the server (`node dist/main.js`) with exactly `env` (plus PATH), waits for its
 * "listening on" line, and feeds every output line to the watch.
 */
export async function spawnServer(env: Record<string, string>, watch: SecretWatch, label = "server"): Promise<ChildServer> {
  const { args, built } = appCommand("server");
  const child: ChildProcess = spawn(process.execPath, args, {
    // The repository root: `--import tsx` resolves from here (and `.env` lookups see what `pnpm start` sees).
    cwd: REPO,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOST: "127.0.0.1", PORT: "0", ARTIFACTS_METRICS_LISTEN: "127.0.0.1:0", ARTIFACTS_SWEEP_INTERVAL: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: string[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  let listening: (url: string) => void = () => {};
  const url = new Promise<string>((resolve) => (listening = resolve));
  for (const [name, stream] of [["stdout", child.stdout], ["stderr", child.stderr]] as const) {
    let partial = "";
    stream?.setEncoding("utf8");
    stream?.on("data", (d: string) => {
      partial += d;
      const parts = partial.split("\n");
      partial = parts.pop() ?? "";
      for (const line of parts) {
        lines.push(line);
        watch.see(`${label} ${name}`, line);
        const m = /listening on (http:\/\/\S+)/.exec(line);
        if (m) listening(m[1]!);
      }
    });
    stream?.on("end", () => {
      if (partial) {
        lines.push(partial);
        watch.see(`${label} ${name}`, partial);
      }
    });
  }
  const outcome = await Promise.race([
    url.then((u) => ({ u })),
    exited.then((e) => ({ e })),
    new Promise<{ timeout: true }>((r) => setTimeout(() => r({ timeout: true }), 30_000)),
  ]);
  if (!("u" in outcome)) {
    child.kill("SIGKILL");
    throw new Error(`${label} did not start (${JSON.stringify(outcome)}):\n${lines.join("\n").slice(-2000)}`);
  }
  const pid = child.pid!;
  const port = Number(new URL(outcome.u).port);
  let peak = 0;
  const readPeak = (): number => {
    try {
      const status = readFileSync(`/proc/${pid}/status`, "utf8");
      peak = Math.max(peak, Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0));
    } catch {
      // exited: the last reading stands
    }
    return peak;
  };
  return {
    url: outcome.u,
    // Printed with the listening line, in the same write.
    metricsOrigin: lines.map((line) => /^ {2}metrics: +(http:\/\/\S+)\/metrics /.exec(line)?.[1]).find((m) => m !== undefined),
    port,
    pid,
    built,
    lines,
    exited,
    peakRssKiB: readPeak,
    kill: (signal) => {
      child.kill(signal);
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      readPeak();
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Environment of a child server on a fresh (or given) local directory. */
export function localEnv(dir = tempDir("local"), extra: Record<string, string> = {}): Record<string, string> {
  return { ARTIFACTS_LOCAL_DIR: dir, ARTIFACTS_MASTER_KEY: MASTER_KEY, ARTIFACTS_WRITER_TOKEN: WRITER_TOKEN, ...extra };
}

/**
 * A grantee signer that reports each signature it makes to the watch, so logs can be checked
 * for Web3Signed signatures too.
 */
export function watchedSigner(account: PrivateKeyAccount, watch: SecretWatch): {
  address: `0x${string}`;
  signMessage(args: { message: string }): Promise<`0x${string}`>;
} {
  return {
    address: account.address,
    async signMessage(args) {
      const signature = await account.signMessage(args);
      watch.web3Signature(`x.${signature}`);
      return signature;
    },
  };
}

/** An upload whose body the test feeds piece by piece (chunked transfer encoding). */
export interface PacedUpload {
  /** Sends a piece (resolves once the socket took it). */
  write(piece: Buffer): Promise<void>;
  /** Ends the body. */
  end(): void;
  /** Destroys the request (a client that vanishes). */
  abort(): void;
  /** The answer: status and parsed JSON body, or the connection error. */
  response: Promise<{ status: number; json: unknown; headers: Record<string, string | string[] | undefined>; at: number }>;
}

export function pacedUpload(baseUrl: string, target: string, headers: Record<string, string>): PacedUpload {
  const url = new URL(baseUrl);
  let req!: ReturnType<typeof httpRequest>;
  const response = new Promise<{ status: number; json: unknown; headers: Record<string, string | string[] | undefined>; at: number }>((resolve, reject) => {
    req = httpRequest(
      { host: url.hostname, port: url.port, method: "PUT", path: target, headers: { connection: "close", ...headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          let json: unknown;
          try {
            json = JSON.parse(Buffer.concat(chunks).toString("utf8"));
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, json, headers: res.headers, at: Date.now() });
        });
      },
    );
    req.on("error", reject);
  });
  response.catch(() => {});
  return {
    write: (piece) =>
      new Promise<void>((resolve, reject) => {
        if (req.destroyed) return reject(new Error("request destroyed"));
        req.write(piece, (error) => (error ? reject(error) : resolve()));
      }),
    end: () => req.end(),
    abort: () => req.destroy(),
    response,
  };
}

/** Polls `check` every 20 ms until it returns a value other than undefined (or fails after `ms`). */
export async function waitFor<T>(what: string, check: () => T | undefined | Promise<T | undefined>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
