import { OPERATIONS_PREFIX } from "../constants.js";
import { IntegrityError, UnsupportedLayoutError } from "../errors.js";
import type { Backend, ObjectInfo } from "../backends/types.js";
import { entriesPrefix, type IndexPacer, indexKey } from "../layout-v2.js";
import { metadataKey, type MetadataWriter, readMetadata } from "../metadata.js";
import { operationReferences } from "../references.js";
import { isOperationId } from "../validate.js";
import type { SweepOptions, SweepResult } from "./types.js";

/** Objects no metadata.json references are deleted once they are this old (crash leftovers). */
export const ORPHAN_GRACE_MS = 24 * 3600 * 1000;
/** Temp files (local) and incomplete multipart uploads (S3) older than this are removed by the sweep. */
const TEMP_GRACE_MS = { local: 3600 * 1000, remote: 24 * 3600 * 1000 };

/** The store's state the sweep keeps in step: the metadata cache forgets what is deleted; index writes are paced. */
export interface SweepState {
  writer: MetadataWriter | undefined;
  pacer: IndexPacer;
}

/**
 * Deletes expired operations (metadata.json first, then their objects), objects no metadata
 * references once ORPHAN_GRACE_MS old, and stale temporaries; compacts layout 2 indexes.
 */
export async function sweep(
  backend: Backend,
  state: SweepState,
  now: Date,
  options: SweepOptions,
): Promise<SweepResult> {
  const usage = { storedBytes: 0, operations: 0, artifacts: 0, expiredOperations: 0, orphanObjects: 0 };
  const result: SweepResult = { deletedOperations: 0, deletedObjects: 0, deletedTemporary: 0, usage };
  let scanned = 0;
  // One flat listing of operations/ (keys sorted, so each operation's objects are adjacent):
  // 1 list request per 1000 objects instead of one per operation (Class A on R2).
  let group: { operationId: string; objects: ObjectInfo[] } | undefined;
  const finish = async () => {
    if (group === undefined) return;
    await sweepOperation(backend, state, group.operationId, group.objects, now, result);
    options.onProgress?.({ operations: ++scanned, ...result });
  };
  for await (const object of backend.list(OPERATIONS_PREFIX)) {
    const operationId = object.key.slice(OPERATIONS_PREFIX.length).split("/")[0]!;
    if (group?.operationId !== operationId) {
      await finish();
      group = { operationId, objects: [] };
    }
    group.objects.push(object);
  }
  await finish();
  const grace = backend.kind === "local" ? TEMP_GRACE_MS.local : TEMP_GRACE_MS.remote;
  result.deletedTemporary = await backend.sweepTemporary(OPERATIONS_PREFIX, new Date(now.getTime() - grace));
  return result;
}

/**
 * Expired: metadata.json first, then the rest. Live: only objects no entry references, once 24 h
 * old (layout 2: entries of an earlier incarnation, and objects only they name, are unreferenced).
 */
async function sweepOperation(
  backend: Backend,
  { writer, pacer }: SweepState,
  operationId: string,
  objects: ObjectInfo[],
  now: Date,
  result: SweepResult,
): Promise<void> {
  const metaKey = metadataKey(operationId);
  const usage = result.usage;
  const bytes = objects.reduce((sum, o) => sum + o.size, 0);
  let read: Awaited<ReturnType<typeof readMetadata>> = null;
  if (isOperationId(operationId) && objects.some((o) => o.key === metaKey)) {
    try {
      read = await readMetadata(backend, operationId);
    } catch (error) {
      // Malformed metadata: leave it for a human (doctor reports it); a newer layout: for a newer release.
      if (!(error instanceof IntegrityError || error instanceof UnsupportedLayoutError)) throw error;
      // Nothing this release can read references the rest: counted as stored, its objects as orphans.
      usage.storedBytes += bytes;
      usage.orphanObjects += objects.length - 1;
      return;
    }
  }
  if (read !== null && now.getTime() >= Date.parse(read.metadata.expiresAt)) {
    await backend.delete([metaKey]);
    writer?.forget(operationId);
    await backend.delete(objects.filter((o) => o.key !== metaKey).map((o) => o.key));
    result.deletedOperations++;
    result.deletedObjects += objects.length;
    usage.expiredOperations++;
    return;
  }
  let referenced = (_key: string) => false;
  if (read !== null) {
    try {
      // An index.json the compaction writes replaces the one listed (if any) in what is stored.
      const onIndexWritten = (size: number) => {
        usage.storedBytes += size - (objects.find((o) => o.key === indexKey(operationId))?.size ?? 0);
      };
      const m = read.metadata;
      // Layout 2: the flat listing above already named this incarnation's entries: no LIST of
      // its own (Class A on R2) per live operation and sweep.
      const entries = m.version === 2 ? entriesPrefix(m) : "";
      const names = objects.filter((o) => entries !== "" && o.key.startsWith(entries)).map((o) => o.key.slice(entries.length));
      const prefetched = m.version === 2 ? { incarnation: m.incarnation, covers: "", names: Promise.resolve(names) } : undefined;
      const references = await operationReferences({ backend, now, pacer, compactAlways: true, onIndexWritten, prefetched }, m);
      referenced = references.referenced;
      usage.operations++;
      usage.artifacts += references.entries.length;
    } catch (error) {
      if (!(error instanceof IntegrityError)) throw error;
      // A malformed entry: leave the operation for a human.
      usage.storedBytes += bytes;
      return;
    }
  }
  const cutoff = now.getTime() - ORPHAN_GRACE_MS;
  const unreferenced = objects.filter((o) => !referenced(o.key));
  const orphans = unreferenced.filter((o) => o.lastModified.getTime() <= cutoff);
  await backend.delete(orphans.map((o) => o.key));
  result.deletedObjects += orphans.length;
  usage.orphanObjects += unreferenced.length;
  usage.storedBytes += bytes - orphans.reduce((sum, o) => sum + o.size, 0);
}
