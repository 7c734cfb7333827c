// The real server process, started the way `pnpm start` does (built JS, `node apps/server/dist/main.js`,
// configuration from the environment), with `pnpm smoke` run against it on local storage and on S3,
// and a SIGTERM that arrives in the middle of a download.
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createWriterClient } from "@personal-server/artifacts/client";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { freshBucket } from "../../../test-support/s3.js";
import { TEST_MASTER_KEY, WRITER_TOKEN, patternBytes, sha256, signedFor, wallet } from "./helpers.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const MAIN = join(ROOT, "apps/server/dist/main.js");
// Exactly what `pnpm start` runs (the package's start script), with the entry made absolute.
const START = (JSON.parse(readFileSync(join(ROOT, "apps/server/package.json"), "utf8")) as { scripts: { start: string } }).scripts.start
  .split(" ")
  .map((word) => (word === "dist/main.js" ? MAIN : word));

function run(command: string, args: string[], env: Record<string, string>, cwd = ROOT): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ARTIFACTS_METRICS_LISTEN: "127.0.0.1:0", ...env } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const address = srv.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

interface ServerProcess {
  child: ChildProcess;
  url: string;
  stdout: () => string;
  stderr: () => string;
  /** Resolves when stdout has a line matching `pattern`. */
  waitFor(pattern: RegExp): Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const scratch: string[] = [];
/** A fresh temp dir, removed after the file's tests. */
function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  scratch.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of scratch.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const started: ChildProcess[] = [];
afterEach(() => {
  // A failed test must not leave its server behind.
  for (const child of started.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
});

/** Starts the server as `pnpm start` does (built JS), with exactly `env` (plus PATH/HOME), in a scratch cwd. */
function startProcess(env: Record<string, string>): ServerProcess {
  expect(START[0]).toBe("node");
  const child = spawn(process.execPath, START.slice(1), {
    cwd: tempDir("psa-cwd-"),
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ARTIFACTS_METRICS_LISTEN: "127.0.0.1:0", ...env },
  });
  started.push(child);
  let out = "";
  let err = "";
  const waiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];
  const check = () => {
    for (const waiter of [...waiters]) {
      const line = out.split("\n").find((l) => waiter.pattern.test(l));
      if (line !== undefined) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(line);
      }
    }
  };
  child.stdout!.on("data", (d: Buffer) => {
    out += d.toString();
    check();
  });
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  const waitFor = (pattern: RegExp) =>
    new Promise<string>((resolve, reject) => {
      waiters.push({ pattern, resolve });
      check();
      void exited.then(({ code }) => reject(new Error(`server exited (${code}) before printing ${pattern}:\n${out}\n${err}`)));
    });
  return { child, url: "", stdout: () => out, stderr: () => err, waitFor, exited };
}

async function startListening(env: Record<string, string>): Promise<ServerProcess> {
  const proc = startProcess(env);
  const line = await proc.waitFor(/^artifacts server listening on /);
  return { ...proc, url: line.slice("artifacts server listening on ".length).trim() };
}

describe("the server process", () => {
  beforeAll(async () => {
    // As `pnpm start` does: build the server and its dependencies (a cache hit after `pnpm test`'s build).
    const build = await run("pnpm", ["exec", "turbo", "run", "build", "--filter=@personal-server/server...", "--output-logs=errors-only"], {
      TURBO_TELEMETRY_DISABLED: "1",
      DO_NOT_TRACK: "1",
    });
    expect(build.code, build.stdout + build.stderr).toBe(0);
  }, 240_000);

  it("starts with zero configuration on local storage, prints where its secrets live (never their values), and passes pnpm smoke", async () => {
    const dir = join(tempDir("psa-proc-"), "data");
    const port = await freePort();
    const proc = await startListening({ ARTIFACTS_LOCAL_DIR: dir, PORT: String(port) });
    expect(proc.url).toBe(`http://127.0.0.1:${port}`);
    const out = proc.stdout();
    // The start-up summary is one human-readable block, with no JSON log line before or inside it.
    const summary = out.split("\n").slice(0, 6);
    expect(summary[0]).toBe(`artifacts server listening on http://127.0.0.1:${port}`);
    expect(summary.slice(1).every((line) => line.startsWith("  ") && !line.includes("{"))).toBe(true);
    expect(out).toContain(`  storage:      local (${dir})`);
    expect(out).toContain(`  master key:   ${dir}/.master-key (mode 0600, generated now; whoever holds it can read every artifact)`);
    expect(out).toContain(`  writer token: ${dir}/.writer-token (mode 0600, generated now)`);
    for (const file of [".master-key", ".writer-token"]) {
      expect(statSync(join(dir, file)).mode & 0o777).toBe(0o600);
    }
    const token = readFileSync(join(dir, ".writer-token"), "utf8").trim();
    const key = readFileSync(join(dir, ".master-key"), "utf8").trim();
    expect(token.length).toBeGreaterThanOrEqual(32);

    const smoke = await run("pnpm", ["--silent", "smoke"], { BASE_URL: proc.url, ARTIFACTS_LOCAL_DIR: dir });
    expect(smoke.code, smoke.stdout + smoke.stderr).toBe(0);
    expect(smoke.stdout).toContain(`smoke run against ${proc.url}`);
    expect(smoke.stdout).toMatch(/ok {3}another wallet lists: 404 not_found/);
    expect(smoke.stdout).toMatch(/ok {3}another wallet gets byte for byte the answer of a missing operation: 404/);
    expect(smoke.stdout).toMatch(/ok {3}stale signature: 401 unauthenticated/);
    expect(smoke.stdout).toMatch(/ok {3}replayed signature: first use 200, replay 401 unauthenticated/);
    expect(smoke.stdout).toContain("smoke run passed: 14 checks");

    proc.child.kill("SIGTERM");
    expect(await proc.exited).toEqual({ code: 0, signal: null });
    for (const text of [proc.stdout(), proc.stderr()]) {
      expect(text).not.toContain(token);
      expect(text).not.toContain(key);
    }
  }, 120_000);

  it("refuses to start when the metrics listener cannot listen, naming ARTIFACTS_METRICS_LISTEN", async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    const port = (taken.address() as { port: number }).port;
    try {
      const proc = startProcess({ ARTIFACTS_LOCAL_DIR: join(tempDir("psa-proc-"), "data"), PORT: "0", ARTIFACTS_METRICS_LISTEN: `127.0.0.1:${port}` });
      expect(await proc.exited).toEqual({ code: 1, signal: null });
      expect(proc.stderr()).toContain(
        `artifacts server: cannot serve metrics on 127.0.0.1:${port} (EADDRINUSE): set ARTIFACTS_METRICS_LISTEN to a free ADDRESS:PORT, or off\n`,
      );
      // Said once (issue 21: each start-up problem printed once).
      expect(proc.stderr().split("cannot serve metrics").length).toBe(2);
      expect(proc.stdout()).not.toContain("listening on");
    } finally {
      taken.close();
    }
  });

  it("runs on S3 (moto) with the configured secrets and passes pnpm smoke", async () => {
    const bucket = await freshBucket(undefined, "process");
    const port = await freePort();
    const scratchDir = tempDir("psa-proc-");
    const proc = await startListening({
      ...bucket.env,
      ARTIFACTS_MASTER_KEY: TEST_MASTER_KEY,
      ARTIFACTS_WRITER_TOKEN: WRITER_TOKEN,
      ARTIFACTS_LOCAL_DIR: scratchDir,
      PORT: String(port),
    });
    const out = proc.stdout();
    expect(out).toContain(`  storage:      s3 (bucket ${bucket.bucket} at ${bucket.env.S3_ENDPOINT})`);
    expect(out).toContain("  master key:   from ARTIFACTS_MASTER_KEY(S)");
    expect(out).toContain("  writer token: from ARTIFACTS_WRITER_TOKEN");

    const smoke = await run("pnpm", ["--silent", "smoke"], { BASE_URL: proc.url, ARTIFACTS_WRITER_TOKEN: WRITER_TOKEN, ARTIFACTS_LOCAL_DIR: scratchDir });
    expect(smoke.code, smoke.stdout + smoke.stderr).toBe(0);
    expect(smoke.stdout).toContain("smoke run passed: 14 checks");

    proc.child.kill("SIGTERM");
    expect(await proc.exited).toEqual({ code: 0, signal: null });
    expect(proc.stdout()).not.toContain(WRITER_TOKEN);
    // The AWS SDK's S3 client is loaded here: no runtime version or deprecation notice in the log.
    expect(proc.stdout() + proc.stderr()).not.toMatch(/deprecat|NodeVersionSupport|no longer supported/i);
  }, 120_000);

  it("refuses a malformed configuration naming each problem once, then the hint", async () => {
    const proc = startProcess({ ARTIFACTS_LOCAL_DIR: tempDir("psa-bad-"), S3_ENDPOINT: "http://127.0.0.1:1", ARTIFACTS_TTL: "a week", PORT: String(await freePort()) });
    expect(await proc.exited).toEqual({ code: 1, signal: null });
    const lines = proc.stderr().trimEnd().split("\n");
    expect(lines[0]).toBe("artifacts server: invalid configuration:");
    expect(lines.at(-1)).toBe("  hint: every variable is described in docs/configuration.md (and listed in .env.example)");
    const problems = lines.slice(1, -1);
    expect(problems).toContain('  ARTIFACTS_TTL: invalid duration "a week": use a whole number with a unit s, m, h or d (e.g. 7d, 36h, 90m, 3600s)');
    expect(problems).toContain("  S3_BUCKET: required when any S3_* variable is set");
    expect(new Set(problems).size).toBe(problems.length);
    expect(proc.stdout()).toBe("");
  }, 60_000);

  it("refuses to start on S3 without a writer token, saying why", async () => {
    const bucket = await freshBucket(undefined, "notoken");
    const proc = startProcess({ ...bucket.env, ARTIFACTS_MASTER_KEY: TEST_MASTER_KEY, PORT: String(await freePort()) });
    expect(await proc.exited).toEqual({ code: 1, signal: null });
    expect(proc.stderr()).toContain(
      "artifacts server: ARTIFACTS_WRITER_TOKEN is required with s3 storage (at least 32 characters, e.g. `openssl rand -base64 32`)",
    );
  }, 60_000);

  it("refuses to start with a trusted proxy range the proxy matching cannot take (0.0.0.0/0), as a config error, never a TypeError", async () => {
    const proc = startProcess({ ARTIFACTS_LOCAL_DIR: join(tempDir("psa-proc-"), "data"), ARTIFACTS_TRUSTED_PROXIES: "10.0.0.0/8,0.0.0.0/0", PORT: String(await freePort()) });
    expect(await proc.exited).toEqual({ code: 1, signal: null });
    expect(proc.stderr()).toContain('ARTIFACTS_TRUSTED_PROXIES: "0.0.0.0/0" would trust every address');
    expect(proc.stderr()).not.toContain("TypeError");
  }, 60_000);

  it("SIGTERM during a download: no new connections, the download finishes intact, exit 0", async () => {
    const dir = join(tempDir("psa-proc-"), "data");
    const proc = await startListening({ ARTIFACTS_LOCAL_DIR: dir, ARTIFACTS_WRITER_TOKEN: WRITER_TOKEN, PORT: String(await freePort()) });
    const grantee = wallet();
    const writer = createWriterClient({ baseUrl: proc.url, token: WRITER_TOKEN });
    const { operationId: id } = await writer.createOperation({ grantee: grantee.address });
    const data = patternBytes(48 * 1024 * 1024, 21);
    await writer.upload(id, "long.bin", data);

    const target = `/api/v1/operations/${id}/artifacts/long.bin`;
    const base = new URL(proc.url);
    const authorization = await signedFor({ url: proc.url } as Parameters<typeof signedFor>[0], grantee, "GET", target);
    const hash = createHash("sha256");
    let received = 0;
    let firstChunk!: () => void;
    const gotFirst = new Promise<void>((resolve) => (firstChunk = resolve));
    let response!: import("node:http").IncomingMessage;
    const finished = new Promise<{ complete: boolean; status: number }>((resolve, reject) => {
      const req = httpRequest({ host: base.hostname, port: base.port, path: target, headers: { authorization }, agent: false }, (res) => {
        response = res;
        res.on("data", (chunk: Buffer) => {
          hash.update(chunk);
          received += chunk.length;
          if (received === chunk.length) {
            // Hold the download open: stop reading until the server has been told to stop.
            res.pause();
            firstChunk();
          }
        });
        res.on("error", reject);
        res.on("end", () => resolve({ complete: res.complete, status: res.statusCode ?? 0 }));
      });
      req.on("error", reject);
      req.end();
    });
    await gotFirst;
    expect(received).toBeLessThan(data.length);

    proc.child.kill("SIGTERM");
    await proc.waitFor(/shutting down: no new connections/);
    // The listening socket closes: a new connection is refused (retry while close() is under way;
    // one that slips in meanwhile is answered 503 or reset, never served).
    let refused = "";
    for (let attempt = 0; attempt < 100 && refused !== "ECONNREFUSED"; attempt++) {
      refused = await new Promise<string>((resolve) => {
        const probe = httpRequest({ host: base.hostname, port: base.port, path: "/health", agent: false }, (res) => {
          res.resume();
          expect(res.statusCode).toBe(503);
          res.on("end", () => setTimeout(() => resolve(""), 50));
        });
        probe.on("error", (e: NodeJS.ErrnoException) => (e.code === "ECONNRESET" ? setTimeout(() => resolve(""), 50) : resolve(e.code ?? "error")));
        probe.end();
      });
    }
    expect(refused).toBe("ECONNREFUSED");
    expect(proc.child.exitCode).toBeNull();

    response.resume();
    const end = await finished;
    expect(end).toEqual({ complete: true, status: 200 });
    expect(received).toBe(data.length);
    expect(hash.digest("hex")).toBe(sha256(data));
    expect(await proc.exited).toEqual({ code: 0, signal: null });
    expect(proc.stdout()).toContain('"msg":"server closed"');
  }, 120_000);
});

describe("shutdown and start paths", () => {
  it("SIGTERM cuts a download still open after ARTIFACTS_SHUTDOWN_GRACE and exits 0 right after it", async () => {
    const dir = join(tempDir("psa-proc-"), "data");
    const proc = await startListening({
      ARTIFACTS_LOCAL_DIR: dir,
      ARTIFACTS_WRITER_TOKEN: WRITER_TOKEN,
      ARTIFACTS_SHUTDOWN_GRACE: "2s",
      PORT: String(await freePort()),
    });
    const grantee = wallet();
    const writer = createWriterClient({ baseUrl: proc.url, token: WRITER_TOKEN });
    const { operationId: id } = await writer.createOperation({ grantee: grantee.address });
    await writer.upload(id, "stalled.bin", patternBytes(32 * 1024 * 1024, 5));
    const target = `/api/v1/operations/${id}/artifacts/stalled.bin`;
    const base = new URL(proc.url);
    const authorization = await signedFor({ url: proc.url } as Parameters<typeof signedFor>[0], grantee, "GET", target);
    // A client that reads one piece and then never again.
    let response!: import("node:http").IncomingMessage;
    const first = new Promise<void>((resolve, reject) => {
      const req = httpRequest({ host: base.hostname, port: base.port, path: target, headers: { authorization }, agent: false }, (res) => {
        response = res;
        res.once("data", () => {
          res.pause();
          resolve();
        });
      });
      req.on("error", reject);
      req.end();
    });
    await first;
    const sent = Date.now();
    proc.child.kill("SIGTERM");
    expect(await proc.exited).toEqual({ code: 0, signal: null });
    const took = Date.now() - sent;
    response.destroy();
    expect(proc.stdout()).toContain('"graceMs":2000');
    expect(proc.stdout()).toContain("grace period over: closing the remaining connections");
    expect(took).toBeGreaterThanOrEqual(1900);
    expect(took).toBeLessThan(10_000);
  }, 60_000);

  it("pnpm start builds, runs the server (warning that tmpdir storage may be cleaned), and SIGTERM to its PID stops the server", async () => {
    const dir = join(tempDir("psa-start-"), "data");
    const port = await freePort();
    // pnpm runs the script from the repository root; only this environment (plus PATH/HOME) reaches it.
    const child = spawn("pnpm", ["start"], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", TURBO_TELEMETRY_DISABLED: "1", DO_NOT_TRACK: "1", ARTIFACTS_LOCAL_DIR: dir, PORT: String(port), ARTIFACTS_METRICS_LISTEN: "127.0.0.1:0" },
    });
    started.push(child);
    let out = "";
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on("data", (d: Buffer) => {
        out += d.toString();
        if (out.includes("artifacts server listening on ")) resolve();
      });
      void exited.then(() => reject(new Error(`pnpm start exited early:\n${out}\n${err}`)));
    });
    for (let i = 0; i < 50 && !err.includes("warning: local storage"); i++) await new Promise((w) => setTimeout(w, 100));
    expect(err).toContain(`warning: local storage ${dir} is under the OS temp directory (${tmpdir()}): tmp cleaners may delete it, keys included`);
    const health = await fetch(`http://127.0.0.1:${port}/health`);
    expect(health.status).toBe(200);
    await health.arrayBuffer();

    child.kill("SIGTERM");
    await exited;
    // The server itself is gone, not only pnpm: its port refuses connections.
    let refused = "";
    for (let attempt = 0; attempt < 50 && refused === ""; attempt++) {
      refused = await fetch(`http://127.0.0.1:${port}/health`).then(
        async (r) => {
          await r.arrayBuffer();
          await new Promise((w) => setTimeout(w, 100));
          return "";
        },
        (e: Error & { cause?: { code?: string } }) => e.cause?.code ?? e.message,
      );
    }
    expect(refused).toBe("ECONNREFUSED");
  }, 120_000);
});
