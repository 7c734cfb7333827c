/**
 * Cloudflare's local R2 simulator (the one behind `wrangler dev`, with its experimental S3
 * endpoint) as a second S3 peer for the tests: stricter than moto (it checks SigV4 signatures
 * and presigned expiry, answers 412 for If-Match on a missing key). One process per vitest run,
 * shared by the projects that use it; started by `r2sim-global-setup.ts`, reached from tests
 * through `freshBucketOn("r2sim")` in `s3.ts`.
 *
 * Runs in vitest's main process (globalSetup), so it must not import `vitest` at runtime.
 *
 * Facts worth knowing (wrangler 4.164.0, the version pinned in the root package.json):
 * - buckets come only from the config (CreateBucket answers 404): the config declares a pool
 *   of `POOL_SIZE` buckets, and `freshBucketOn` leases one per call (mkdir in `leaseDir`);
 * - the endpoint is `http://127.0.0.1:<port>/cdn-cgi/local/r2/s3`, path-style, region `auto`,
 *   and only the credentials in the config sign valid requests;
 * - it uploads at about 20 MB/s (CPU-bound): keep bodies to a few MiB (at most 8 MiB);
 * - where it differs from R2's documented behaviour, see docs/development.md.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

/** The message a run fails with when the simulator cannot be started. */
export const R2SIM_MISSING = "wrangler (Cloudflare's local R2 simulator) is required for the S3 tests: run `pnpm install` at the repo root (Node >= 22)";

/** Buckets the simulator's config declares (each `freshBucketOn("r2sim")` takes one for the run). */
export const POOL_SIZE = 64;

/** The only credentials the simulator accepts (fake values, declared in its config). */
export const R2SIM_ACCESS_KEY_ID = "FAKER2SIMACCESSKEY00";
export const R2SIM_SECRET_ACCESS_KEY = "fake-secret-access-key-for-the-r2-simulator";

/** What tests need to reach the simulator (provided as `inject("r2Sim")`). */
export interface R2SimInfo {
  /** `http://127.0.0.1:<port>/cdn-cgi/local/r2/s3` */
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** The bucket names the config declares. */
  buckets: string[];
  /** Directory where `freshBucketOn` leases buckets (one subdirectory per bucket taken). */
  leaseDir: string;
}

/** A running simulator. */
export interface R2Sim extends R2SimInfo {
  /** Process group id (wrangler and its workerd). */
  pid: number;
  /** Stops the whole process group (SIGTERM, then SIGKILL after 5 s) and removes its state. */
  stop(): Promise<void>;
}

// The wrapper leads the process group (wrangler, workerd) and kills all of it when its stdin
// closes, so a vitest process that dies without running teardown leaves nothing behind.
const WRAPPER = `
const { spawn } = require("node:child_process");
const [bin, ...args] = process.argv.slice(1);
const child = spawn(process.execPath, [bin, ...args], { stdio: ["ignore", "inherit", "inherit"] });
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
process.stdin.on("end", () => process.kill(0, "SIGKILL"));
process.stdin.resume();
`;

function wranglerBin(): string {
  const require = createRequire(import.meta.url);
  try {
    return join(dirname(require.resolve("wrangler/package.json")), "bin", "wrangler.js");
  } catch (e) {
    throw new Error(`${R2SIM_MISSING} (${(e as Error).message.split("\n")[0]})`, { cause: e });
  }
}

function writeConfig(dir: string, buckets: string[]): string {
  writeFileSync(join(dir, "worker.js"), 'export default { fetch() { return new Response("r2 simulator for tests"); } };\n');
  const config = {
    name: "psa-r2-simulator",
    main: "worker.js",
    compatibility_date: "2025-01-01",
    r2_buckets: buckets.map((bucket, i) => ({
      binding: `B${i}`,
      bucket_name: bucket,
      local_dev: { experimental_s3_credentials: { accessKeyId: R2SIM_ACCESS_KEY_ID, secretAccessKey: R2SIM_SECRET_ACCESS_KEY } },
    })),
  };
  const file = join(dir, "wrangler.json");
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // already gone
  }
}

/** Starts the simulator on a free 127.0.0.1 port with fresh state and waits until it answers. */
export async function startR2Sim(): Promise<R2Sim> {
  const bin = wranglerBin();
  const dir = mkdtempSync(join(tmpdir(), "psa-r2sim-"));
  const leaseDir = join(dir, "leases");
  mkdirSync(leaseDir);
  const buckets = Array.from({ length: POOL_SIZE }, (_, i) => `sim-${String(i).padStart(3, "0")}`);
  const config = writeConfig(dir, buckets);
  const args = [
    "dev",
    "-c",
    config,
    "--local",
    "--ip",
    "127.0.0.1",
    "--port",
    "0",
    "--inspector-port",
    "0",
    "--persist-to",
    join(dir, "state"),
    "--show-interactive-dev-session=false",
  ];
  const child = spawn(process.execPath, ["-e", WRAPPER, bin, ...args], {
    cwd: dir,
    detached: true,
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false", CI: "true", NO_COLOR: "1" },
  });
  let output = "";
  const onData = (d: Buffer) => {
    output = (output + d.toString("utf8")).slice(-8000);
  };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);
  const fail = (why: string, cause?: unknown) => {
    killGroup(child, "SIGKILL");
    rmSync(dir, { recursive: true, force: true });
    const tail = output.replace(/\x1b\[[0-9;]*m/g, "").trim().slice(-1500);
    return new Error(`${R2SIM_MISSING}: ${why}${tail ? `\n--- wrangler output ---\n${tail}` : ""}`, { cause });
  };

  const endpointBase = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(fail("it did not report ready within 60 s")), 60_000);
    const check = () => {
      const m = /Ready on (http:\/\/127\.0\.0\.1:\d+)/.exec(output.replace(/\x1b\[[0-9;]*m/g, ""));
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stdout!.on("data", check);
    child.stderr!.on("data", check);
    child.once("error", (e) => {
      clearTimeout(timer);
      reject(fail(`cannot spawn ${process.execPath} (${e.message})`, e));
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(fail(`wrangler exited (${code ?? signal}) before it was ready`));
    });
  });
  const endpoint = `${endpointBase}/cdn-cgi/local/r2/s3`;
  // "Ready" comes before the S3 route answers on slow machines: wait for an S3-shaped answer.
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const res = await fetch(`${endpoint}/${buckets[0]}`, { signal: AbortSignal.timeout(5000) });
      const text = await res.text();
      if (text.includes("<Error>")) break; // unsigned: 400 InvalidArgument, as expected
    } catch {
      // not answering yet
    }
    if (Date.now() > deadline) throw fail(`${endpoint} did not answer within 30 s`);
    await new Promise((r) => setTimeout(r, 200));
  }
  // Teardown stops it; until then it must not keep vitest's event loop alive on its own.
  child.unref();
  for (const s of [child.stdin, child.stdout, child.stderr]) (s as unknown as { unref?: () => void } | null)?.unref?.();

  return {
    endpoint,
    accessKeyId: R2SIM_ACCESS_KEY_ID,
    secretAccessKey: R2SIM_SECRET_ACCESS_KEY,
    buckets,
    leaseDir,
    pid: child.pid ?? -1,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const done = new Promise<void>((r) => child.once("exit", () => r()));
        killGroup(child, "SIGTERM");
        const timer = setTimeout(() => killGroup(child, "SIGKILL"), 5000);
        await done;
        clearTimeout(timer);
      }
      // workerd may outlive wrangler's exit by a moment: make sure the group is gone.
      killGroup(child, "SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

interface Shared {
  refs: number;
  server: Promise<R2Sim> | undefined;
}

// Each vitest project loads its globalSetup module separately, but all of them run in the same
// main process: share one simulator through globalThis and stop it with the last project.
const KEY = Symbol.for("personal-server-artifacts.r2sim");
function shared(): Shared {
  const g = globalThis as { [KEY]?: Shared };
  g[KEY] ??= { refs: 0, server: undefined };
  return g[KEY];
}

/** Starts the simulator (or reuses the one this process already started) and counts a reference. */
export async function acquireR2Sim(): Promise<R2Sim> {
  const s = shared();
  s.refs++;
  s.server ??= startR2Sim();
  try {
    return await s.server;
  } catch (e) {
    s.refs--;
    s.server = undefined;
    throw e;
  }
}

/** Drops a reference; the last one stops the simulator. */
export async function releaseR2Sim(): Promise<void> {
  const s = shared();
  s.refs--;
  if (s.refs > 0 || !s.server) return;
  const server = s.server;
  s.server = undefined;
  await (await server).stop();
}
