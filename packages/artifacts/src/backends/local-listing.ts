/**
 * What the local backend knows of its files (ETags, missing files) and its listings: keys in S3's
 * byte order from a walk of the directory tree.
 */
import type { BigIntStats } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import type { ObjectInfo } from "./types.js";

/**
 * Strong ETag of a local file: hex of size, mtime in nanoseconds and inode number.
 *
 * Every write is a new file renamed into place, so the inode changes on every write; inode
 * numbers can be reused once a file is gone, so each write also stamps its mtime with a random
 * sub-millisecond part (see `stampMtime`). Equal ETags therefore mean the same write, without
 * hashing multi-GB artifacts, and HEAD/list report the ETag that `put` returned.
 */
export function etagOf(st: BigIntStats): string {
  return `${st.size.toString(16)}-${st.mtimeNs.toString(16)}-${st.ino.toString(16)}`;
}

export function infoOf(key: string, st: BigIntStats): ObjectInfo {
  return { key, size: Number(st.size), etag: etagOf(st), lastModified: new Date(Number(st.mtimeMs)) };
}

export function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

export function isMissing(e: unknown): boolean {
  const code = errno(e);
  return code === "ENOENT" || code === "ENOTDIR";
}

/** Byte order of keys, as S3 lists them (UTF-8 bytes, not UTF-16 code units). */
function byteCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** Wraps a filesystem error of a listing (the backend's `unavailable`). */
type OnError = (key: string, e: unknown) => Error;

/** A folder's entries; none when it does not exist. */
async function readFolder(root: string, dirRel: string, onError: OnError) {
  try {
    return await readdir(join(root, dirRel), { withFileTypes: true });
  } catch (e) {
    if (isMissing(e)) return [];
    throw onError(dirRel, e);
  }
}

/**
 * Objects under `prefix` after `after` (a full key, "" for all), in key order: a depth-first walk
 * whose siblings are sorted by `name + "/"` for directories and `name` for files. Every key under
 * directory `d` starts with `d/`, so this order of siblings is the byte order of the full keys
 * ("a-c" before "a/b", as S3 lists them). Root-level dot entries are never listed.
 */
export function walkKeys(root: string, prefix: string, after: string, onError: OnError): AsyncIterable<ObjectInfo> {
  return walk(root, prefix.slice(0, prefix.lastIndexOf("/") + 1), prefix, after, onError);
}

async function* walk(root: string, dirRel: string, prefix: string, after: string, onError: OnError): AsyncIterable<ObjectInfo> {
  const entries = await readFolder(root, dirRel, onError);
  const items = entries
    .filter((e) => (e.isFile() || e.isDirectory()) && !(dirRel === "" && e.name.startsWith(".")))
    .map((e) => ({ name: e.name, dir: e.isDirectory(), sortKey: e.isDirectory() ? `${e.name}/` : e.name }))
    .filter(({ sortKey }) => {
      const full = dirRel + sortKey;
      // A folder is walked when some key under it may come after `after`.
      const late = byteCompare(full, after) > 0 || (sortKey.endsWith("/") && after.startsWith(full));
      return late && (full.startsWith(prefix) || prefix.startsWith(full));
    })
    .sort((a, b) => byteCompare(a.sortKey, b.sortKey));
  for (const item of items) {
    if (item.dir) {
      yield* walk(root, `${dirRel}${item.name}/`, prefix, after, onError);
      continue;
    }
    const key = dirRel + item.name;
    if (!key.startsWith(prefix)) continue;
    try {
      yield infoOf(key, await stat(join(root, key), { bigint: true }));
    } catch (e) {
      if (!isMissing(e)) throw onError(key, e); // deleted while we listed: skip
    }
  }
}

/** The "directories" directly under `prefix` (S3 CommonPrefixes with delimiter "/"), sorted. */
export async function* listFolders(root: string, prefix: string, onError: OnError): AsyncIterable<string> {
  const dirRel = prefix.slice(0, prefix.lastIndexOf("/") + 1);
  const partial = prefix.slice(dirRel.length);
  const entries = await readFolder(root, dirRel, onError);
  const names = entries
    .filter((e) => e.isDirectory() && e.name.startsWith(partial) && !(dirRel === "" && e.name.startsWith(".")))
    .map((e) => `${e.name}/`)
    .sort(byteCompare);
  for (const name of names) yield dirRel + name;
}
