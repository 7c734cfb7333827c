// The per-key lock file of the local backend's putConditional: O_EXCL creation, so separate
// processes (the CLI and the server) can update one metadata.json side by side; a lock whose holder
// crashed is taken over (by age, or at once when its process is known gone).
import { createHash, randomBytes, randomInt } from "node:crypto";
import { readlinkSync } from "node:fs";
import { link, mkdir, open, readFile, rename, stat, unlink, type FileHandle } from "node:fs/promises";
import { hostname } from "node:os";
import { dirname, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { StorageUnavailableError } from "../errors.js";

/** Where lock files live, under the root (a dot directory the backend never lists). */
export const LOCK_DIR = ".locks";
const FILE_MODE = 0o600;
const DIR_MODE = 0o700;

/** How long a lock may sit before it is taken over, and how long a writer waits for a busy one. */
export interface LockTiming {
  staleLockMs: number;
  lockWaitMs: number;
}

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

/**
 * Takes the per-key lock: `<root>/.locks/<sha256(key)>.lock`, created with O_EXCL, so it works
 * across processes on one filesystem. Returns the release function. Filesystem failures go
 * through `unavailable` (the backend's error mapping).
 */
export async function acquireLock(
  root: string,
  key: string,
  timing: LockTiming,
  unavailable: (op: string, key: string, e: unknown) => Error,
): Promise<() => Promise<void>> {
  const path = lockFileFor(root, key);
  const dir = dirname(path);
  const deadline = Date.now() + timing.lockWaitMs;
  let wait = 2;
  for (;;) {
    let fh: FileHandle | undefined;
    try {
      await mkdir(dir, { recursive: true, mode: DIR_MODE });
      fh = await open(path, "wx", FILE_MODE);
    } catch (e) {
      if (errno(e) !== "EEXIST") throw unavailable("lock", key, e);
    }
    if (fh) {
      let ino: bigint;
      try {
        // Who holds it, for an operator looking at a stuck lock; nothing reads it back.
        // Also lets a waiter on this machine see that the holder is gone (holderIsGone).
        await fh.writeFile(`${JSON.stringify({ pid: process.pid, host: hostname(), pidns: PID_NAMESPACE, at: new Date().toISOString(), key })}\n`);
        ino = (await fh.stat({ bigint: true })).ino;
      } catch (e) {
        // A full disk fails the write: leave no lock behind that would block the key until it goes stale.
        await fh.close().catch(() => {});
        await unlink(path).catch(() => {});
        throw unavailable("lock", key, e);
      }
      await fh.close();
      return async () => {
        // Only remove our own lock: after a takeover (we were slower than staleLockMs) it is someone else's.
        const st = await stat(path, { bigint: true }).catch(() => null);
        if (st?.ino === ino) await unlink(path).catch(() => {});
      };
    }
    const st = await stat(path, { bigint: true }).catch(() => null);
    if (st && (Date.now() - Number(st.mtimeMs) > timing.staleLockMs || (await holderIsGone(path)))) {
      await takeOver(path, st.ino);
      continue;
    }
    if (Date.now() >= deadline) {
      throw new StorageUnavailableError(`local storage: lock on ${key} still busy after ${timing.lockWaitMs} ms`, {
        hint: `another process is updating ${key}; a lock file in ${dir} older than ${timing.staleLockMs / 1000} s is taken over`,
        details: { throttled: true },
      });
    }
    await sleep(wait + randomInt(wait + 1));
    wait = Math.min(wait * 2, 50);
  }
}

/**
 * Removes a stale lock so waiters can race for it with O_EXCL again. Renaming it aside first
 * (atomic) and checking the inode makes sure we removed the stale file and not a lock someone
 * else created since we looked; if we did grab a fresh one, it is linked back.
 */
async function takeOver(path: string, staleIno: bigint): Promise<void> {
  const aside = `${path}.${randomBytes(6).toString("hex")}.stale`;
  try {
    await rename(path, aside);
  } catch {
    return; // someone else took it over first
  }
  const st = await stat(aside, { bigint: true }).catch(() => null);
  if (st && st.ino !== staleIno) await link(aside, path).catch(() => {});
  await unlink(aside).catch(() => {});
}

/** This process's PID namespace (Linux), so a pid in a lock file is only judged where it means the same process. */
const PID_NAMESPACE: string | undefined = (() => {
  try {
    return readlinkSync("/proc/self/ns/pid");
  } catch {
    return undefined;
  }
})();

/**
 * True when the lock's holder is known dead: written on this host in this PID namespace by a
 * process that no longer exists (killed or crashed while holding it). Its lock is then taken over
 * at once instead of after `staleLockMs`, so a crash does not block the key's writers for that long.
 * Anything unsure (another host or namespace, a lock still being written) is left to the age rule.
 */
async function holderIsGone(path: string): Promise<boolean> {
  let holder: { pid?: unknown; host?: unknown; pidns?: unknown };
  try {
    holder = JSON.parse((await readFile(path, "utf8")) || "null") ?? {};
  } catch {
    return false;
  }
  const pid = holder.pid;
  if (PID_NAMESPACE === undefined || holder.pidns !== PID_NAMESPACE || holder.host !== hostname()) return false;
  if (typeof pid !== "number" || !Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return errno(e) === "ESRCH";
  }
}

/** The lock file `putConditional` uses for `key` (exported for tests and operators). */
export function lockFileFor(root: string, key: string): string {
  return join(resolve(root), LOCK_DIR, `${createHash("sha256").update(key).digest("hex").slice(0, 40)}.lock`);
}
