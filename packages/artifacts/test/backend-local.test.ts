/**
 * LocalBackend specifics: key confinement, where temp and lock files live, directory pruning,
 * and conditional writes from two processes at once.
 */
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readdir, rm, stat, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ConfigError, InvalidInputError, StorageUnavailableError } from "../src/errors.js";
import { LocalBackend, lockFileFor } from "../src/backends/local.js";
import { KeyClashError, PreconditionFailedError } from "../src/backends/types.js";

let parent: string;
let root: string;
let b: LocalBackend;

beforeEach(async () => {
  parent = await mkdtemp(join(tmpdir(), "psa-local-"));
  root = join(parent, "root");
  await mkdir(root, { mode: 0o700 });
  b = new LocalBackend(root);
});
afterEach(async () => {
  await rm(parent, { recursive: true, force: true });
});

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function readAll(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString();
}

/** Every file under `dir`, relative, sorted. */
async function tree(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

describe("LocalBackend keys", () => {
  const bad = ["", "/etc/passwd", "../escape", "operations/../../escape", "a//b", "a/./b", "a/", "a\\b", "a\0b", ".tmp/x", ".locks/x", ".master-key", "x".repeat(1025)];

  it.each(bad)("refuses key %j before touching the disk", async (key) => {
    const message = `invalid storage key ${JSON.stringify(key)}`;
    await expect(b.put(key, Buffer.from("x"))).rejects.toThrow(new InvalidInputError(message));
    await expect(b.putConditional(key, Buffer.from("x"), { ifNoneMatch: "*" })).rejects.toThrow(message);
    await expect(b.getBytes(key)).rejects.toThrow(message);
    await expect(b.getStream(key)).rejects.toThrow(message);
    await expect(b.head(key)).rejects.toThrow(message);
    await expect(b.delete([key])).rejects.toMatchObject({ code: "invalid_input", message });
    expect(await readdir(root)).toEqual([]);
    expect(await readdir(parent)).toEqual(["root"]);
  });

  it("refuses listing prefixes that escape or reach internals", async () => {
    for (const prefix of ["../", "a/../", ".tmp/", ".locks", "a//"]) {
      await expect(collect(b.list(prefix))).rejects.toMatchObject({ code: "invalid_input", message: `invalid storage prefix ${JSON.stringify(prefix)}` });
      await expect(collect(b.listPrefixes(prefix))).rejects.toMatchObject({ code: "invalid_input" });
    }
  });

  it("never lists the root's internal entries", async () => {
    await writeFile(join(root, ".master-key"), "not listed");
    await b.put("operations/op/metadata.json", Buffer.from("{}"));
    await b.putConditional("operations/op/lock-me", Buffer.from("{}"), { ifNoneMatch: "*" });
    await mkdir(join(root, ".tmp"), { recursive: true });
    await writeFile(join(root, ".tmp", "left.part"), "half");
    expect((await collect(b.list(""))).map((o) => o.key)).toEqual(["operations/op/lock-me", "operations/op/metadata.json"]);
    expect(await collect(b.listPrefixes(""))).toEqual(["operations/"]);
  });
});

describe("LocalBackend writes", () => {
  it("writes through a temp file in .tmp/, never in the key's directory", async () => {
    const key = "operations/op/artifacts/report.tmp-1.md"; // ".tmp-" is a legal artifact name
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const body = Readable.from(
      (async function* () {
        yield Buffer.from("first half, ");
        await gate;
        yield Buffer.from("second half");
      })(),
    );
    const put = b.put(key, body);
    // Wait until the first chunk reached the temp file.
    for (let i = 0; i < 200 && (await readdir(join(root, ".tmp")).catch(() => [])).length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(await tree(root)).toEqual([expect.stringMatching(/^\.tmp\/[0-9a-f]{24}\.part$/)]);
    expect(await b.head(key)).toBeNull();
    expect(await collect(b.list("operations/"))).toEqual([]);
    release();
    const { size, etag } = await put;
    expect(size).toBe(23);
    expect(await tree(root)).toEqual(["operations/op/artifacts/report.tmp-1.md"]);
    expect((await b.head(key))!.etag).toBe(etag);
    expect((await collect(b.list("operations/"))).map((o) => o.key)).toEqual([key]);
    // Private to this user.
    expect((await stat(join(root, key))).mode & 0o777).toBe(0o600);
    expect((await stat(join(root, "operations/op"))).mode & 0o777).toBe(0o700);
  });

  it("refuses a key beside one that uses it as a folder (either order) with KeyClashError, and removes the temp file", async () => {
    await b.put("operations/op/file", Buffer.from("a file"));
    await expect(b.put("operations/op/file/child", Buffer.from("x"))).rejects.toBeInstanceOf(KeyClashError);
    await b.put("operations/op/dir/child", Buffer.from("x"));
    await expect(b.put("operations/op/dir", Buffer.from("x"), { ifAbsent: true })).rejects.toBeInstanceOf(KeyClashError);
    await expect(b.put("operations/op/dir", Buffer.from("x"))).rejects.toBeInstanceOf(KeyClashError);
    expect(await tree(root)).toEqual(["operations/op/dir/child", "operations/op/file"]);
  });

  it("maps filesystem failures to StorageUnavailableError and removes the temp file", async () => {
    // A name longer than the filesystem takes (the store's own paths never get here: 255 bytes a segment).
    const err = await b.put(`operations/op/${"n".repeat(300)}`, Buffer.from("x")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageUnavailableError);
    expect(err).toMatchObject({
      code: "storage_unavailable",
      message: `local storage: write operations/op/${"n".repeat(300)} failed (ENAMETOOLONG)`,
      hint: `check that ${root} (ARTIFACTS_LOCAL_DIR) exists, is writable by this user and has free space`,
    });
    expect(await tree(root)).toEqual([]);
  });

  it("gives a rewrite with the same bytes a new ETag, so a stale If-Match loses", async () => {
    const key = "operations/op/metadata.json";
    const v1 = await b.putConditional(key, Buffer.from("same"), { ifNoneMatch: "*" });
    const v2 = await b.putConditional(key, Buffer.from("same"), { ifMatch: v1.etag });
    expect(v2.etag).not.toBe(v1.etag);
    expect(v2.etag).toMatch(/^[0-9a-f]+-[0-9a-f]+-[0-9a-f]+$/); // size-mtimeNs-inode
    await expect(b.putConditional(key, Buffer.from("same"), { ifMatch: v1.etag })).rejects.toBeInstanceOf(PreconditionFailedError);
  });

  it("serves a stream opened before a replace from the old bytes", async () => {
    const key = "operations/op/metadata.json";
    await b.put(key, Buffer.from("old contents"));
    const stream = (await b.getStream(key, { start: 0, end: 2 }))!;
    await b.put(key, Buffer.from("new contents"));
    expect(await readAll(stream)).toBe("old");
    expect(await readAll((await b.getStream(key))!)).toBe("new contents");
  });

  it("prunes directories left empty by delete, up to but not including the root", async () => {
    await b.put("operations/a/artifacts/deep/x.bin", Buffer.from("x"));
    await b.put("operations/a/metadata.json", Buffer.from("{}"));
    await b.put("operations/b/metadata.json", Buffer.from("{}"));
    await b.delete(["operations/a/artifacts/deep/x.bin", "operations/a/metadata.json"]);
    expect(await readdir(join(root, "operations"))).toEqual(["b"]);
    await b.delete(["operations/b/metadata.json"]);
    expect(await readdir(root)).toEqual([".tmp"]); // the backend's own temp dir stays
    await stat(root); // still there
    // A directory is not an object: deleting its "key" is a no-op.
    await b.put("operations/c/artifacts/y", Buffer.from("y"));
    await b.delete(["operations/c/artifacts"]);
    expect(await tree(root)).toEqual(["operations/c/artifacts/y"]);
  });
});

describe("LocalBackend locks", () => {
  const key = "operations/op/metadata.json";

  it("waits for a held lock, then fails as throttled", async () => {
    const busy = new LocalBackend(root, { lockWaitMs: 300 });
    const lock = lockFileFor(root, key);
    await mkdir(dirname(lock), { recursive: true });
    await writeFile(lock, "held by someone else");
    const err = await busy.putConditional(key, Buffer.from("{}"), { ifNoneMatch: "*" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageUnavailableError);
    expect(err).toMatchObject({
      message: `local storage: lock on ${key} still busy after 300 ms`,
      details: { throttled: true },
      hint: `another process is updating ${key}; a lock file in ${dirname(lock)} older than 30 s is taken over`,
    });
    expect(await busy.head(key)).toBeNull();
    expect(await readdir(dirname(lock))).toEqual([lock.slice(dirname(lock).length + 1)]); // theirs, untouched
  });

  it("takes over a lock left by a crashed process", async () => {
    const lock = lockFileFor(root, key);
    await mkdir(dirname(lock), { recursive: true });
    await writeFile(lock, "crashed holder");
    const old = new Date(Date.now() - 60_000);
    await utimes(lock, old, old);
    const { etag } = await b.putConditional(key, Buffer.from("{}"), { ifNoneMatch: "*" });
    expect((await b.head(key))!.etag).toBe(etag);
    expect(await readdir(dirname(lock))).toEqual([]); // released, and the stale one is gone
  });

  it("takes over a fresh lock at once when its holder on this machine is dead (a SIGKILLed server), not one of a live process", async () => {
    const lock = lockFileFor(root, key);
    await mkdir(dirname(lock), { recursive: true });
    const { hostname } = await import("node:os");
    const { readlink } = await import("node:fs/promises");
    const pidns = await readlink("/proc/self/ns/pid");
    const holder = (pid: number) => `${JSON.stringify({ pid, host: hostname(), pidns, at: new Date().toISOString(), key })}\n`;
    const quick = new LocalBackend(root, { lockWaitMs: 300 });

    // A live holder (the test runner's parent): waited for, then throttled, and its lock kept.
    await writeFile(lock, holder(process.ppid));
    await expect(quick.putConditional(key, Buffer.from("{}"), { ifNoneMatch: "*" })).rejects.toMatchObject({ details: { throttled: true } });
    expect(await readdir(dirname(lock))).toHaveLength(1);

    // A holder that has exited: taken over well before the 30 s stale age.
    const dead = spawn(process.execPath, ["-e", ""]);
    const pid = dead.pid!;
    await new Promise((r) => dead.once("exit", r));
    await writeFile(lock, holder(pid));
    const { etag } = await quick.putConditional(key, Buffer.from("{}"), { ifNoneMatch: "*" });
    expect((await quick.head(key))!.etag).toBe(etag);
    expect(await readdir(dirname(lock))).toEqual([]);
  });

  it("sweeps old temp files and stale locks, but not a lock that may be held", async () => {
    await mkdir(join(root, ".tmp"), { recursive: true });
    const old = new Date(Date.now() - 2 * 3600_000);
    await writeFile(join(root, ".tmp", "old.part"), "x");
    await utimes(join(root, ".tmp", "old.part"), old, old);
    await writeFile(join(root, ".tmp", "new.part"), "x");
    const staleLock = lockFileFor(root, "operations/stale/metadata.json");
    const liveLock = lockFileFor(root, "operations/live/metadata.json");
    await mkdir(dirname(staleLock), { recursive: true });
    await writeFile(staleLock, "");
    await utimes(staleLock, old, old);
    await writeFile(liveLock, "");
    expect(await b.sweepTemporary("operations/", new Date(Date.now() - 3600_000))).toBe(2);
    expect(await readdir(join(root, ".tmp"))).toEqual(["new.part"]);
    // Even a cutoff in the future spares a lock younger than the stale-lock age.
    expect(await b.sweepTemporary("operations/", new Date(Date.now() + 3600_000))).toBe(1);
    expect(await readdir(dirname(liveLock))).toEqual([liveLock.slice(dirname(liveLock).length + 1)]);
  });

  it("serialises conditional updates from two processes (no lost update)", async () => {
    const perWorker = 100;
    await b.putConditional(key, Buffer.from(JSON.stringify({ n: 0 })), { ifNoneMatch: "*" });
    const local = fileURLToPath(new URL("../src/backends/local.ts", import.meta.url));
    // Read-modify-write with If-Match, retried on 412: the lock must make compare + rename atomic.
    // Each worker says "ready" and waits for "go" on stdin, so both really run side by side.
    const script = `
      const { LocalBackend } = await import(${JSON.stringify(local)});
      const b = new LocalBackend(process.argv[1]);
      const key = ${JSON.stringify(key)};
      console.log("ready");
      await new Promise((resolve) => process.stdin.once("data", resolve));
      process.stdin.pause();
      let conflicts = 0;
      for (let i = 0; i < ${perWorker}; i++) {
        for (;;) {
          const cur = await b.getBytes(key);
          const next = Buffer.from(JSON.stringify({ n: JSON.parse(cur.body).n + 1 }));
          try { await b.putConditional(key, next, { ifMatch: cur.etag }); break; }
          catch (e) { if (e.name !== "PreconditionFailedError") throw e; conflicts++; }
        }
      }
      console.log(JSON.stringify({ conflicts }));
    `;
    const workers = [0, 1].map(() => {
      const child = spawn(process.execPath, ["--conditions=source", "--import", "tsx", "--input-type=module", "-e", script, root], {
        cwd: fileURLToPath(new URL("..", import.meta.url)),
        stdio: ["pipe", "pipe", "pipe"],
      });
      let out = "";
      let errText = "";
      let onReady!: () => void;
      const ready = new Promise<void>((r) => (onReady = r));
      child.stdout.on("data", (d) => {
        out += d;
        if (out.startsWith("ready\n")) onReady();
      });
      child.stderr.on("data", (d) => (errText += d));
      const done = new Promise<{ conflicts: number }>((resolve, reject) => {
        child.on("error", reject);
        child.on("close", (code) =>
          code === 0 ? resolve(JSON.parse(out.slice("ready\n".length))) : reject(new Error(`worker exit ${code}: ${errText}`)),
        );
      });
      return { child, ready, done };
    });
    await Promise.all(workers.map((w) => w.ready));
    for (const w of workers) w.child.stdin.end("go\n");
    const results = await Promise.all(workers.map((w) => w.done));
    expect(JSON.parse((await b.getBytes(key))!.body.toString())).toEqual({ n: 2 * perWorker });
    // They did contend (each lost rounds to the other), and nothing leaked.
    expect(results[0]!.conflicts + results[1]!.conflicts).toBeGreaterThan(0);
    expect(await readdir(join(root, ".locks"))).toEqual([]);
    expect(await readdir(join(root, ".tmp"))).toEqual([]);
  });
});

describe("LocalBackend checkBucket", () => {
  it("reports a missing root or a file in its place as ConfigError", async () => {
    const hint = (dir: string) => `set ARTIFACTS_LOCAL_DIR to a directory this user owns and can write (currently ${dir})`;
    const missing = join(parent, "missing");
    const err = await new LocalBackend(missing).checkBucket().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect(err).toMatchObject({ code: "config", message: `local storage directory ${missing} is not accessible (ENOENT)`, hint: hint(missing) });
    const file = join(parent, "file");
    await writeFile(file, "");
    await expect(new LocalBackend(file).checkBucket()).rejects.toMatchObject({
      code: "config",
      message: `local storage path ${file} is not a directory`,
      hint: hint(file),
    });
    expect(await b.checkBucket()).toEqual({ serverDate: undefined });
    expect(await b.getLifecycleRules()).toBeNull();
  });
});
