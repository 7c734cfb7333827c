// Podman for the deploy tests: its configuration, state and the cached base image all live in one
// directory under the OS temp dir (never the machine's own podman storage, never the repository).
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
export { freePort } from "../../test-support/moto.js";

export const ROOT = resolve(import.meta.dirname, "../..");
export const CACHE = join(tmpdir(), "psa-deploy-cache");
/** The local stand-in for node:24-bookworm-slim, tagged by the Node version it carries. */
export const BASE_TAG = `localhost/psa-node-base:${process.versions.node}`;
export const IMAGE = "localhost/personal-server-artifacts:test";

/** Fails with the install command when a tool is missing (never a silent skip). */
export function requireTools(...tools: string[]): void {
  const missing = tools.filter((t) => spawnSync("sh", ["-c", `command -v ${t}`]).status !== 0);
  if (missing.length > 0) {
    throw new Error(`missing ${missing.join(", ")}: apt-get install -y ${missing.join(" ")} (.ci/run installs them)`);
  }
}

/**
 * The environment every podman call gets: the settings `make` applies on hosts like this one
 * (deploy/make/containers.conf: runc, cgroupfs, ulimits), storage in CACHE.
 */
export function podmanEnv(): Record<string, string> {
  mkdirSync(CACHE, { recursive: true });
  const storage = join(CACHE, "storage.conf");
  writeFileSync(storage, ["[storage]", 'driver = "overlay"', `graphroot = "${join(CACHE, "storage")}"`, `runroot = "${join(CACHE, "run")}"`, ""].join("\n"));
  return { ...(process.env as Record<string, string>), CONTAINERS_CONF: join(ROOT, "deploy/make/containers.conf"), CONTAINERS_STORAGE_CONF: storage };
}

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (no shell), with the podman environment. */
export function run(command: string, args: string[], opts: { env?: Record<string, string>; cwd?: string } = {}): Promise<Result> {
  return new Promise((resolvePromise, reject) => {
    // stdin closed: a pipe nobody reads ends in EPIPE when the child exits first.
    const child = spawn(command, args, { cwd: opts.cwd ?? ROOT, env: opts.env ?? podmanEnv(), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolvePromise({ code: code ?? -1, stdout, stderr }));
  });
}

/** Runs a command and throws with its output unless it exits 0. */
export async function must(command: string, args: string[], opts: Parameters<typeof run>[2] = {}): Promise<string> {
  const r = await run(command, args, opts);
  if (r.code !== 0) throw new Error(`${command} ${args.join(" ")} exited ${r.code}:\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}`);
  return r.stdout;
}

export const podman = (...args: string[]) => must("podman", args);

/** The base image: reused from CACHE when present, else built by local-base.sh (about a minute). */
export async function ensureBaseImage(): Promise<{ built: boolean }> {
  if ((await run("podman", ["image", "exists", BASE_TAG])).code === 0) return { built: false };
  await must("bash", [join(ROOT, "deploy/make/local-base.sh"), BASE_TAG, CACHE]);
  return { built: true };
}

/** Polls `podman healthcheck run` (there is no systemd to run the image's health timer) until healthy. */
export async function waitHealthy(name: string, timeoutMs = 60_000): Promise<number> {
  const started = Date.now();
  let last: Result | undefined;
  while (Date.now() - started < timeoutMs) {
    last = await run("podman", ["healthcheck", "run", name]);
    if (last.code === 0) return Date.now() - started;
    await new Promise((w) => setTimeout(w, 500));
  }
  const logs = await run("podman", ["logs", name]);
  throw new Error(`${name} not healthy after ${timeoutMs} ms: ${last?.stdout}${last?.stderr}\n${logs.stdout}${logs.stderr}`);
}
