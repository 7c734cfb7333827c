/**
 * Debian's `redis-server` for the tests: the shared nonce store of the server's replicas. One
 * process per vitest run (redis-global-setup.ts), on 127.0.0.1 with a free port, a temp dir, no
 * persistence, `noeviction` and a password (so tests can check it is never logged). A test that
 * needs to take Redis away starts its own with `startRedis()`.
 *
 * Runs in vitest's main process (globalSetup), so it must not import `vitest` at runtime.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./moto.js";

/** The message a run fails with when redis-server cannot be started. */
export const REDIS_MISSING = "redis-server is required for the shared nonce store tests: apt-get install redis-server";

/** Obviously fake; the tests check that it never reaches a log. */
export const TEST_REDIS_PASSWORD = "test-redis-password-obviously-fake";

/** A running redis-server. */
export interface RedisServer {
  /** `redis://:<password>@127.0.0.1:<port>/0`, what ARTIFACTS_NONCE_STORE takes. */
  url: string;
  port: number;
  pid: number;
  /** Kills it (SIGKILL: nothing to save) and removes its temp dir. */
  stop(): Promise<void>;
}

async function startOnce(port: number): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), "psa-redis-"));
  // Arguments, not a config file: `--save ""` and `--appendonly no` keep nothing on disk.
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no"];
  args.push("--maxmemory-policy", "noeviction", "--requirepass", TEST_REDIS_PASSWORD, "--daemonize", "no");
  const child = spawn("redis-server", args, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const cleanUp = () => rmSync(dir, { recursive: true, force: true });
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not get ready on port ${port} within 10 s: ${output.slice(-500)}`)), 10_000);
    const onData = (d: Buffer) => {
      output = (output + d.toString()).slice(-4000);
      if (/Ready to accept connections/.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.once("error", (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new Error(error.code === "ENOENT" ? `${REDIS_MISSING} (no redis-server on PATH)` : `${REDIS_MISSING} (${error.message})`));
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      const err = new Error(`redis-server exited with code ${code} before it was ready: ${output.trim().slice(-500)}`);
      (err as Error & { portTaken?: boolean }).portTaken = /address already in use/i.test(output);
      reject(err);
    });
  });
  try {
    await ready;
  } catch (error) {
    child.kill("SIGKILL");
    cleanUp();
    throw error;
  }
  child.unref();
  for (const s of [child.stdout, child.stderr]) (s as unknown as { unref?: () => void }).unref?.();
  return {
    url: `redis://:${TEST_REDIS_PASSWORD}@127.0.0.1:${port}/0`,
    port,
    pid: child.pid ?? -1,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.kill("SIGKILL");
        await exited;
      }
      cleanUp();
    },
  };
}

/** Starts redis-server on a free 127.0.0.1 port and waits until it accepts connections. */
export async function startRedis(): Promise<RedisServer> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(await freePort());
    } catch (error) {
      lastError = error;
      if (!(error as { portTaken?: boolean }).portTaken) throw error;
    }
  }
  throw lastError;
}
