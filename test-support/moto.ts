/**
 * moto's S3 server for the tests: one process per vitest run, shared by every project that
 * needs S3 (artifacts, server, cli). Started by `moto-global-setup.ts`; test files reach it
 * through `motoEndpoint()` / `freshBucket()` in `s3.ts`.
 *
 * Runs in vitest's main process (globalSetup), so it must not import `vitest` at runtime.
 *
 * moto facts worth knowing (moto 5.x):
 * - state is in memory only: never kill or restart it mid-run, and never `POST /moto-api/reset`
 *   (test files run in parallel; each uses its own bucket from `freshBucket`);
 * - it ignores request signatures, so any obviously fake credentials work;
 * - simulate outages with `startRecordingProxy(...).cut()` rather than SIGSTOP, which would
 *   stall every other test file talking to the same process;
 * - large PUTs are slow (pure Python); keep bodies in tests to a few MiB.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { sharedServer } from "./shared-server.js";

/** The message a run fails with when moto cannot be started. */
export const MOTO_MISSING = "moto is required for the S3 tests: pip install 'moto[server]'";

/** A running moto server. */
export interface MotoServer {
  /** `http://127.0.0.1:<port>`. */
  endpoint: string;
  /** The python process id. */
  pid: number;
  /** Stops the server (SIGTERM, then SIGKILL after 5 s). */
  stop(): Promise<void>;
}

// The wrapper exits when its stdin closes, so a vitest process that dies without running its
// teardown does not leave moto behind holding memory and a port.
const WRAPPER = `
import os, sys, threading
def _watch():
    try:
        sys.stdin.buffer.read()
    finally:
        os._exit(0)
threading.Thread(target=_watch, daemon=True).start()
try:
    from moto.server import main
except ImportError as e:
    sys.stderr.write("MOTO_IMPORT_ERROR: %s\\n" % e)
    sys.stderr.flush()
    os._exit(3)
main(["-H", "127.0.0.1", "-p", sys.argv[1]])
`;

/** A free TCP port on 127.0.0.1 (free when probed: bind it soon, and retry if it was taken meanwhile). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function waitExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

async function startOnce(python: string, port: number, env: Record<string, string>): Promise<MotoServer> {
  const child = spawn(python, ["-c", WRAPPER, String(port)], {
    stdio: ["pipe", "ignore", "pipe"],
    // Quiet, predictable moto: no AWS config of the developer's machine leaks in.
    env: { ...process.env, AWS_CONFIG_FILE: "/dev/null", AWS_SHARED_CREDENTIALS_FILE: "/dev/null", ...env },
  });
  let stderr = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (d: string) => {
    // Werkzeug logs every request to stderr; keep only the tail for error messages.
    stderr = (stderr + d).slice(-4000);
  });
  const spawnError = new Promise<Error>((resolve) => child.once("error", resolve));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const endpoint = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    const outcome = await Promise.race([
      spawnError.then((e) => ({ kind: "spawn-error" as const, e })),
      exited.then((code) => ({ kind: "exit" as const, code })),
      new Promise<{ kind: "tick" }>((r) => setTimeout(() => r({ kind: "tick" }), 100)),
    ]);
    if (outcome.kind === "spawn-error") {
      const code = (outcome.e as NodeJS.ErrnoException).code;
      throw new Error(code === "ENOENT" ? `${MOTO_MISSING} (no ${python} on PATH)` : `${MOTO_MISSING} (${outcome.e.message})`, {
        cause: outcome.e,
      });
    }
    if (outcome.kind === "exit") {
      const importError = /MOTO_IMPORT_ERROR: (.*)/.exec(stderr);
      if (importError) throw new Error(`${MOTO_MISSING} (${importError[1]?.trim()})`);
      const err = new Error(`moto exited with code ${outcome.code} before answering on ${endpoint}: ${stderr.trim().slice(-500)}`);
      (err as Error & { portTaken?: boolean }).portTaken = /address already in use/i.test(stderr);
      throw err;
    }
    try {
      const res = await fetch(`${endpoint}/`, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`moto did not answer on ${endpoint} within 30 s: ${stderr.trim().slice(-500)}`);
    }
  }
  // Teardown stops moto; until then it must not keep vitest's event loop alive on its own.
  child.unref();
  for (const s of [child.stdin, child.stderr]) (s as unknown as { unref?: () => void } | null)?.unref?.();
  return {
    endpoint,
    pid: child.pid ?? -1,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const done = waitExit(child);
      // SIGCONT first: a test that SIGSTOPped moto and failed must not make teardown hang.
      child.kill("SIGCONT");
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await done;
      clearTimeout(timer);
    },
  };
}

/**
 * Starts `python3 -m moto.server` on a free 127.0.0.1 port and waits until it answers. `env` adds
 * variables, e.g. `MOTO_DISABLE_GLOBAL_CORS=1` so the bucket's own CORS rules answer browsers
 * (otherwise moto allows every origin).
 */
export async function startMoto(python = "python3", env: Record<string, string> = {}): Promise<MotoServer> {
  let lastError: unknown;
  // A free port can be taken between probing and binding; try a few.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(python, await freePort(), env);
    } catch (e) {
      lastError = e;
      if (!(e as { portTaken?: boolean }).portTaken) throw e;
    }
  }
  throw lastError;
}

const shared = sharedServer("moto", () => startMoto());

/** Starts moto (or reuses the one this process already started) and counts a reference. */
export const acquireMoto = shared.acquire;

/** Drops a reference; the last one stops moto. */
export const releaseMoto = shared.release;
