import { randomBytes, randomInt } from "node:crypto";
import type { BigIntStats } from "node:fs";
import { constants as fsConstants } from "node:fs";
import { access, link, mkdir, open, readdir, rename, rmdir, stat, unlink, type FileHandle } from "node:fs/promises";
import { dirname, join, resolve, sep } from "node:path";
import { Readable } from "node:stream";
import { streamToFile, writeAll } from "./file-sink.js";
import { acquireLock, LOCK_DIR } from "./local-lock.js";
import { ConfigError, InsufficientStorageError, InvalidInputError, StorageUnavailableError } from "../errors.js";
import {
  KeyClashError,
  PreconditionFailedError,
  type Backend,
  type BucketCheck,
  type ByteRange,
  type LifecycleRule,
  type ObjectInfo,
  type PutOptions,
  type WriteCondition,
} from "./types.js";

/** Tuning of `LocalBackend`; the defaults suit production, tests shorten them. */
export interface LocalBackendOptions {
  /** A lock file whose mtime is older than this is taken over (its holder crashed). Default 30 000 ms. */
  staleLockMs?: number;
  /**
   * How long `putConditional` waits for a busy lock before failing with `StorageUnavailableError`
   * (`details.throttled`, so the store backs off and retries). Default 10 000 ms.
   */
  lockWaitMs?: number;
}

/**
 * Internal directories directly under the root. Keys whose first segment starts with "." are
 * refused and root-level dot entries are never listed, so neither these nor the generated
 * `.master-key`/`.writer-token` can be read, listed or overwritten through the backend.
 * Temp files live in `.tmp/` (same filesystem, so rename is atomic), never next to the key:
 * artifact names may legally contain ".tmp-", and listings must not show half-written files.
 */
const TMP_DIR = ".tmp";
const MAX_KEY_BYTES = 1024; // S3's limit, so a key that works locally works on S3 too
const FILE_MODE = 0o600;
const DIR_MODE = 0o700;

/**
 * Strong ETag of a local file: hex of size, mtime in nanoseconds and inode number.
 *
 * Every write is a new file renamed into place, so the inode changes on every write; inode
 * numbers can be reused once a file is gone, so each write also stamps its mtime with a random
 * sub-millisecond part (see `stampMtime`). Equal ETags therefore mean the same write, without
 * hashing multi-GB artifacts, and HEAD/list report the ETag that `put` returned.
 */
function etagOf(st: BigIntStats): string {
  return `${st.size.toString(16)}-${st.mtimeNs.toString(16)}-${st.ino.toString(16)}`;
}

function infoOf(key: string, st: BigIntStats): ObjectInfo {
  return { key, size: Number(st.size), etag: etagOf(st), lastModified: new Date(Number(st.mtimeMs)) };
}

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

/** A rename into `dest` failed because a folder on its path is a file (ENOTDIR) or `dest` is a folder. */
async function isClash(dest: string, e: unknown): Promise<boolean> {
  const code = errno(e);
  if (code === "ENOTDIR" || code === "EISDIR") return true;
  return code === "EEXIST" && (await stat(dest).then((st) => st.isDirectory(), () => false));
}

function isMissing(e: unknown): boolean {
  const code = errno(e);
  return code === "ENOENT" || code === "ENOTDIR";
}

/** Byte order of keys, as S3 lists them (UTF-8 bytes, not UTF-16 code units). */
function byteCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/**
 * Storage on local disk: key `a/b/c` is the file `<root>/a/b/c`.
 *
 * - `put`: temp file in `<root>/.tmp/`, fsync, rename into place, fsync the directory.
 * - `putConditional`: under a per-key lock file in `<root>/.locks/` created with O_EXCL, so
 *   separate processes (the CLI and the server) can update one metadata.json side by side;
 *   compare, then the same atomic write. Locks older than `staleLockMs` are taken over.
 * - `delete` removes directories left empty, up to (not including) the root.
 * - Creating the root and its mode/ownership checks are `loadConfig`'s job.
 */
export class LocalBackend implements Backend {
  readonly kind = "local" as const;
  /** Absolute root directory. */
  readonly root: string;
  private readonly staleLockMs: number;
  private readonly lockWaitMs: number;
  /** Per directory: the fsync running and the one queued behind it (see syncDir). */
  private readonly dirSyncs = new Map<string, { running?: Promise<void>; queued?: Promise<void> }>();

  constructor(root: string, options: LocalBackendOptions = {}) {
    this.root = resolve(root);
    this.staleLockMs = options.staleLockMs ?? 30_000;
    this.lockWaitMs = options.lockWaitMs ?? 10_000;
  }

  // ---- keys -------------------------------------------------------------------------------

  /** Maps a key to its file, refusing anything that could escape the root or hit internals. */
  private pathOf(key: string): string {
    const segments = key.split("/");
    const bad =
      key.length === 0 ||
      Buffer.byteLength(key) > MAX_KEY_BYTES ||
      key.includes("\0") ||
      key.includes("\\") ||
      segments.some((s) => s === "" || s === "." || s === "..") ||
      segments[0]!.startsWith(".");
    if (bad) throw new InvalidInputError(`invalid storage key ${JSON.stringify(key)}`);
    return join(this.root, ...segments);
  }

  /** Validates a listing prefix: like a key, except that it may be empty or end with "/". */
  private checkPrefix(prefix: string): void {
    if (prefix === "") return;
    const segments = prefix.split("/");
    if (segments.at(-1) === "") segments.pop();
    const bad =
      prefix.includes("\0") ||
      prefix.includes("\\") ||
      segments.some((s) => s === "" || s === "." || s === "..") ||
      segments[0]!.startsWith(".");
    if (bad) throw new InvalidInputError(`invalid storage prefix ${JSON.stringify(prefix)}`);
  }

  /** A filesystem error as the store's error: out of space is `insufficient_storage`, anything else `storage_unavailable`. */
  private unavailable(op: string, key: string, e: unknown): StorageUnavailableError | InsufficientStorageError {
    const code = errno(e) ?? (e instanceof Error ? e.message : String(e));
    if (code === "ENOSPC" || code === "EDQUOT") {
      return new InsufficientStorageError(`local storage: ${op} ${key} failed: no space left (${code})`, {
        cause: e,
        hint: `free space on the filesystem of ${this.root} (ARTIFACTS_LOCAL_DIR) or raise its quota`,
        details: { errno: code },
      });
    }
    return new StorageUnavailableError(`local storage: ${op} ${key} failed (${code})`, {
      cause: e,
      hint: `check that ${this.root} (ARTIFACTS_LOCAL_DIR) exists, is writable by this user and has free space`,
      details: { errno: errno(e) },
    });
  }

  // ---- reads ------------------------------------------------------------------------------

  /** Opens a key's file for reading; null when there is none. */
  private async openForRead(key: string): Promise<FileHandle | null> {
    const path = this.pathOf(key); // refuses bad keys as invalid_input, before any I/O
    try {
      return await open(path, "r");
    } catch (e) {
      if (isMissing(e) || errno(e) === "EISDIR") return null;
      throw this.unavailable("read", key, e);
    }
  }

  async getStream(key: string, range?: ByteRange): Promise<Readable | null> {
    const fh = await this.openForRead(key);
    if (fh === null) return null;
    try {
      const st = await fh.stat();
      if (!st.isFile()) {
        await fh.close();
        return null;
      }
      const start = range?.start ?? 0;
      const end = Math.min(range?.end ?? st.size - 1, st.size - 1);
      if (start > end) {
        await fh.close();
        return Readable.from([]);
      }
      // Reads the open file: a concurrent replace or delete cannot mix two versions.
      return fh.createReadStream({ start, end, autoClose: true, highWaterMark: 1 << 20 });
    } catch (e) {
      await fh.close().catch(() => {});
      throw this.unavailable("read", key, e);
    }
  }

  async getBytes(key: string, range?: ByteRange): Promise<{ body: Buffer; etag: string; size: number } | null> {
    const fh = await this.openForRead(key);
    if (fh === null) return null;
    try {
      const st = await fh.stat({ bigint: true });
      if (!st.isFile()) return null;
      const size = Number(st.size);
      const start = range?.start ?? 0;
      const end = Math.min(range?.end ?? size - 1, size - 1);
      const length = Math.max(0, end - start + 1);
      const body = Buffer.alloc(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await fh.read(body, done, length - done, start + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return { body: done === length ? body : body.subarray(0, done), etag: etagOf(st), size };
    } catch (e) {
      throw this.unavailable("read", key, e);
    } finally {
      await fh.close().catch(() => {});
    }
  }

  async head(key: string): Promise<ObjectInfo | null> {
    const path = this.pathOf(key);
    try {
      const st = await stat(path, { bigint: true });
      return st.isFile() ? infoOf(key, st) : null;
    } catch (e) {
      if (isMissing(e)) return null;
      throw this.unavailable("stat", key, e);
    }
  }

  /** Local objects have no URL of their own: the server delivers them under a signature of its own. */
  async presignGet(): Promise<null> {
    return null;
  }

  // ---- writes -----------------------------------------------------------------------------

  async put(key: string, body: Buffer | Readable, options: PutOptions = {}): Promise<{ etag: string; size: number }> {
    return this.writeAtomic(key, this.pathOf(key), body, options.ifAbsent === true, options.releasePieces === true);
  }

  async putConditional(key: string, body: Buffer, condition: WriteCondition): Promise<{ etag: string }> {
    const dest = this.pathOf(key);
    const release = await this.lock(key);
    try {
      let current: BigIntStats | null = null;
      try {
        current = await stat(dest, { bigint: true });
      } catch (e) {
        if (!isMissing(e)) throw this.unavailable("stat", key, e);
      }
      if ("ifNoneMatch" in condition) {
        if (current !== null) throw new PreconditionFailedError(key);
      } else if (current === null || etagOf(current) !== condition.ifMatch.replace(/^"|"$/g, "")) {
        throw new PreconditionFailedError(key);
      }
      const { etag } = await this.writeAtomic(key, dest, body);
      return { etag };
    } finally {
      await release();
    }
  }

  /**
   * Temp file + fsync + rename + directory fsync. A body stream error removes the temp file and
   * is rethrown as is; filesystem errors become `StorageUnavailableError`.
   */
  private async writeAtomic(
    key: string,
    dest: string,
    body: Buffer | Readable,
    ifAbsent = false,
    releasePieces = false,
  ): Promise<{ etag: string; size: number }> {
    const tmpDir = join(this.root, TMP_DIR);
    const tmp = join(tmpDir, `${randomBytes(12).toString("hex")}.part`);
    let fh: FileHandle | undefined;
    try {
      try {
        // Try first, create the directory only when missing: mkdir on every write costs a syscall.
        fh = await open(tmp, "wx", FILE_MODE).catch(async (e: unknown) => {
          if (errno(e) !== "ENOENT") throw e;
          await mkdir(tmpDir, { recursive: true, mode: DIR_MODE });
          return open(tmp, "wx", FILE_MODE);
        });
      } catch (e) {
        throw this.unavailable("write", key, e);
      }
      const fileError = (e: unknown) => this.unavailable("write", key, e);
      const size = Buffer.isBuffer(body)
        ? await writeAll(fh, [body], body.length).then(() => body.length, (e: unknown) => Promise.reject(fileError(e)))
        : await streamToFile(fh, body, fileError, releasePieces);
      let st: BigIntStats;
      try {
        await stampMtime(fh);
        await fh.sync();
        st = await fh.stat({ bigint: true });
        await fh.close();
        fh = undefined;
        await this.renameInto(tmp, dest, ifAbsent);
      } catch (e) {
        if (await isClash(dest, e)) throw new KeyClashError(key);
        if (ifAbsent && errno(e) === "EEXIST") throw new PreconditionFailedError(key);
        throw this.unavailable("write", key, e);
      }
      return { etag: etagOf(st), size };
    } catch (e) {
      await fh?.close().catch(() => {});
      await unlink(tmp).catch(() => {});
      throw e;
    }
  }

  /** rename(2) replaces; with `ifAbsent`, link(2) + unlink fails with EEXIST instead, atomically. */
  private async renameInto(tmp: string, dest: string, ifAbsent: boolean): Promise<void> {
    const dir = dirname(dest);
    // `delete` prunes empty directories; one may vanish between our mkdir and rename.
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) await mkdir(dir, { recursive: true, mode: DIR_MODE });
      try {
        if (ifAbsent) {
          await link(tmp, dest);
          await unlink(tmp);
        } else {
          await rename(tmp, dest);
        }
        break;
      } catch (e) {
        if (errno(e) !== "ENOENT" || attempt >= 4) throw e;
      }
    }
    // The rename is durable only once the directory entry is on disk.
    await this.syncDir(dir);
  }

  /**
   * fsync of a directory, shared: renames into one directory while its fsync runs all wait for
   * the next one, which starts after they called, so it covers every one of them (32 small
   * uploads into one operation pay about two directory fsyncs instead of 32).
   */
  private syncDir(dir: string): Promise<void> {
    let state = this.dirSyncs.get(dir);
    if (state === undefined) {
      state = {};
      this.dirSyncs.set(dir, state);
    }
    if (state.queued !== undefined) return state.queued;
    const current = state;
    const start = async (): Promise<void> => {
      current.queued = undefined; // callers from now on need a later fsync
      const dh = await open(dir, "r");
      try {
        await dh.sync();
      } finally {
        await dh.close();
      }
    };
    const queued = (current.running ?? Promise.resolve()).then(start, start);
    const running = queued.then(
      () => {},
      () => {},
    );
    current.queued = queued;
    current.running = running;
    void running.then(() => {
      if (current.running === running && current.queued === undefined) this.dirSyncs.delete(dir);
    });
    return queued;
  }

  /** The per-key lock of `putConditional` (local-lock.ts); returns the release function. */
  private lock(key: string): Promise<() => Promise<void>> {
    return acquireLock(this.root, key, { staleLockMs: this.staleLockMs, lockWaitMs: this.lockWaitMs }, (op, k, e) => this.unavailable(op, k, e));
  }

  async delete(keys: readonly string[]): Promise<void> {
    const paths = keys.map((k) => [k, this.pathOf(k)] as const);
    const dirs = new Set<string>();
    // A few unlinks in flight at once: deleting an operation with many artifacts stays quick.
    for (let i = 0; i < paths.length; i += 32) {
      await Promise.all(
        paths.slice(i, i + 32).map(async ([key, path]) => {
          try {
            await unlink(path);
          } catch (e) {
            const code = errno(e);
            if (!isMissing(e) && code !== "EISDIR" && code !== "EPERM") throw this.unavailable("delete", key, e);
          }
          dirs.add(dirname(path));
        }),
      );
    }
    // Deepest first, so a parent is tried after its children.
    for (const dir of [...dirs].sort((a, b) => b.length - a.length)) await this.pruneDirs(dir);
  }

  /** Removes `dir` and its parents while they are empty, stopping below the root. */
  private async pruneDirs(dir: string): Promise<void> {
    let current = dir;
    while (current.startsWith(this.root + sep) && current !== this.root) {
      try {
        await rmdir(current);
      } catch {
        return; // not empty (ENOTEMPTY/EEXIST), already gone, or not ours to remove
      }
      current = dirname(current);
    }
  }

  // ---- listings ---------------------------------------------------------------------------

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    this.checkPrefix(prefix);
    yield* this.walk(prefix.slice(0, prefix.lastIndexOf("/") + 1), prefix);
  }

  /**
   * Depth-first walk in key order. Siblings are sorted by `name + "/"` for directories and
   * `name` for files: every key under directory `d` starts with `d/`, so this order of siblings
   * is the byte order of the full keys ("a-c" before "a/b", as S3 lists them).
   */
  private async *walk(dirRel: string, prefix: string): AsyncIterable<ObjectInfo> {
    let entries;
    try {
      entries = await readdir(join(this.root, dirRel), { withFileTypes: true });
    } catch (e) {
      if (isMissing(e)) return;
      throw this.unavailable("list", dirRel, e);
    }
    const items = entries
      .filter((e) => (e.isFile() || e.isDirectory()) && !(dirRel === "" && e.name.startsWith(".")))
      .map((e) => ({ name: e.name, dir: e.isDirectory(), sortKey: e.isDirectory() ? `${e.name}/` : e.name }))
      .filter(({ sortKey }) => {
        const full = dirRel + sortKey;
        return full.startsWith(prefix) || prefix.startsWith(full);
      })
      .sort((a, b) => byteCompare(a.sortKey, b.sortKey));
    for (const item of items) {
      if (item.dir) {
        yield* this.walk(`${dirRel}${item.name}/`, prefix);
        continue;
      }
      const key = dirRel + item.name;
      if (!key.startsWith(prefix)) continue;
      try {
        yield infoOf(key, await stat(join(this.root, key), { bigint: true }));
      } catch (e) {
        if (!isMissing(e)) throw this.unavailable("list", key, e); // deleted while we listed: skip
      }
    }
  }

  async *listPrefixes(prefix: string): AsyncIterable<string> {
    this.checkPrefix(prefix);
    const dirRel = prefix.slice(0, prefix.lastIndexOf("/") + 1);
    const partial = prefix.slice(dirRel.length);
    let entries;
    try {
      entries = await readdir(join(this.root, dirRel), { withFileTypes: true });
    } catch (e) {
      if (isMissing(e)) return;
      throw this.unavailable("list", dirRel, e);
    }
    const names = entries
      .filter((e) => e.isDirectory() && e.name.startsWith(partial) && !(dirRel === "" && e.name.startsWith(".")))
      .map((e) => `${e.name}/`)
      .sort(byteCompare);
    for (const name of names) yield dirRel + name;
  }

  // ---- maintenance ------------------------------------------------------------------------

  /**
   * Removes temp files (`.tmp/`) older than `olderThan`, and lock files older than both
   * `olderThan` and the stale-lock age (a younger lock may still be held). Temp files are not
   * tied to keys, so `prefix` is not used: the root's leftovers are swept whatever it is.
   */
  async sweepTemporary(_prefix: string, olderThan: Date): Promise<number> {
    const lockCutoff = Math.min(olderThan.getTime(), Date.now() - this.staleLockMs);
    let removed = 0;
    for (const [dir, cutoff] of [
      [TMP_DIR, olderThan.getTime()],
      [LOCK_DIR, lockCutoff],
    ] as const) {
      const abs = join(this.root, dir);
      let names: string[];
      try {
        names = await readdir(abs);
      } catch (e) {
        if (isMissing(e)) continue;
        throw this.unavailable("sweep", dir, e);
      }
      for (const name of names) {
        const path = join(abs, name);
        const st = await stat(path).catch(() => null);
        if (!st?.isFile() || st.mtimeMs >= cutoff) continue;
        try {
          await unlink(path);
          removed++;
        } catch (e) {
          if (!isMissing(e)) throw this.unavailable("sweep", `${dir}/${name}`, e);
        }
      }
    }
    return removed;
  }

  async checkBucket(): Promise<BucketCheck> {
    const hint = `set ARTIFACTS_LOCAL_DIR to a directory this user owns and can write (currently ${this.root})`;
    let isDir: boolean;
    try {
      isDir = (await stat(this.root)).isDirectory();
    } catch (e) {
      throw new ConfigError(`local storage directory ${this.root} is not accessible (${errno(e) ?? String(e)})`, { cause: e, hint });
    }
    if (!isDir) throw new ConfigError(`local storage path ${this.root} is not a directory`, { hint });
    try {
      await access(this.root, fsConstants.R_OK | fsConstants.W_OK | fsConstants.X_OK);
      await mkdir(join(this.root, TMP_DIR), { recursive: true, mode: DIR_MODE });
    } catch (e) {
      throw new ConfigError(`local storage directory ${this.root} is not writable (${errno(e) ?? String(e)})`, { cause: e, hint });
    }
    return { serverDate: undefined };
  }

  async getLifecycleRules(): Promise<LifecycleRule[] | null> {
    return null;
  }

  async close(): Promise<void> {
    // Nothing held between calls.
  }
}

/**
 * Sets the file's mtime to now plus a random sub-millisecond part. File timestamps come from a
 * coarse kernel clock (a few ms), so without this two quick writes that reuse an inode number
 * could end up with the same ETag.
 */
async function stampMtime(fh: FileHandle): Promise<void> {
  const seconds = Math.floor(Date.now()) / 1000 + randomInt(1000) / 1e6;
  await fh.utimes(seconds, seconds);
}

export { lockFileFor } from "./local-lock.js";
