/**
 * Storage layout 2 (docs/format.md#layouts): metadata.json is written once; each committed
 * artifact has its own immutable entry object, written create-only after the artifact object
 * (the commit point), under a name that sorts by commit time; a compacted index saves readers
 * one GET per entry. No key is written by two commits of one operation.
 */
import { createHash, randomBytes } from "node:crypto";
import type { Backend } from "./backends/types.js";
import { IntegrityError, UnsupportedLayoutError } from "./errors.js";
import { type ArtifactEntry, isArtifactEntry, metadataKey, type MetadataV2, operationPrefix, readMetadata } from "./metadata.js";

/**
 * How far behind "now" an index may claim to be complete. A writer names its entry by its own
 * clock just before writing it, so an entry can land with a name older than the newest one
 * already listed by up to the writers' clock skew plus one write's duration. S3 and R2 refuse
 * requests signed more than 15 minutes off their clock, which bounds the skew of anyone who can
 * write at all; on local disk every writer shares one clock.
 */
export const INDEX_MARGIN_MS = { local: 60_000, remote: 16 * 60_000 } as const;
/** A listing that had to GET at least this many entries writes the index (sweeps: any); the writer on S3/R2 every this many commits. */
export const COMPACT_AFTER = 32;
/** One process writes one operation's index at most this often (R2: one write per second per key). */
const INDEX_PACE_MS = 2000;
const ENTRY_NAME = /^(\d{13})-([0-9a-f]{32})\.json$/;
const GET_PARALLEL = 16;

export const newIncarnation = (): string => randomBytes(16).toString("hex");

/** `operations/<id>/entries/<incarnation>/`: this incarnation's entries. */
export function entriesPrefix(m: Pick<MetadataV2, "operationId" | "incarnation">): string {
  return `${operationPrefix(m.operationId)}entries/${m.incarnation}/`;
}

export function indexKey(operationId: string): string {
  return `${operationPrefix(operationId)}index.json`;
}

/** First 32 hex digits of SHA-256 of the path's UTF-8 bytes. */
export function pathHash(path: string): string {
  return createHash("sha256").update(path, "utf8").digest("hex").slice(0, 32);
}

/** `<13-digit epoch ms>-<pathHash>.json`: sorts by commit time; unique per path. */
export function entryName(ms: number, path: string): string {
  return `${String(Math.max(0, Math.floor(ms))).padStart(13, "0")}-${pathHash(path)}.json`;
}

export function serializeEntry(entry: ArtifactEntry): Buffer {
  const { path, size, encryptedSize, contentType, chunkSize, createdAt, etag } = entry;
  return Buffer.from(`${JSON.stringify({ path, size, encryptedSize, contentType, chunkSize, createdAt, etag })}\n`);
}

/** Parses an entry object; its name must carry its path's hash (`integrity` otherwise). */
export function parseEntry(bytes: Buffer, name: string, operationId: string): ArtifactEntry {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString());
  } catch (error) {
    throw new IntegrityError(`entry ${name} of ${operationId} is not valid JSON`, { cause: error });
  }
  if (!isArtifactEntry(value) || ENTRY_NAME.exec(name)?.[2] !== pathHash(value.path)) {
    throw new IntegrityError(`entry ${name} of ${operationId} is malformed`);
  }
  return value;
}

/** Writes an entry create-only: the commit point. Two writers never write one name (the object key decided the path's winner). */
export async function commitEntry(backend: Backend, m: MetadataV2, entry: ArtifactEntry, nowMs: number): Promise<NamedEntry> {
  const name = entryName(nowMs, entry.path);
  await backend.put(entriesPrefix(m) + name, serializeEntry(entry), { ifAbsent: true });
  return { ...entry, name };
}

/**
 * After a commit: what the operation is now. An upload racing a delete (or a delete and a create
 * of the same id) from another process may commit its entry under a prefix whose metadata.json
 * is gone, or under an earlier incarnation: such an entry is never read, so the upload must not
 * be acknowledged. With the ETag of the metadata.json the upload went by (this process wrote it),
 * one HEAD (a stat on local disk): the same ETag is the same bytes. Otherwise, or when it differs
 * (a rotated key changes it too), one GET compares the incarnation. R2 bills both as Class B.
 */
export async function operationAfterCommit(backend: Backend, m: MetadataV2, nowMs: number, etag?: string): Promise<"current" | "gone" | "expired"> {
  const expiry = (expiresAt: string) => (nowMs >= Date.parse(expiresAt) ? "expired" : "current");
  if (etag !== undefined && (await backend.head(metadataKey(m.operationId)))?.etag === etag) return expiry(m.expiresAt);
  let read: Awaited<ReturnType<typeof readMetadata>>;
  try {
    read = await readMetadata(backend, m.operationId);
  } catch (error) {
    // Created anew by a newer release: not this incarnation.
    if (error instanceof UnsupportedLayoutError) return "gone";
    throw error;
  }
  if (read === null || read.metadata.version !== 2 || read.metadata.incarnation !== m.incarnation) return "gone";
  return expiry(read.metadata.expiresAt);
}

/** index.json: every entry named up to `covers` (and possibly later ones), in name order. */
export interface EntryIndex {
  layout: 2;
  incarnation: string;
  /** Entry name up to which (inclusive) the index lists every entry; "" when none. */
  covers: string;
  entries: NamedEntry[];
}

export interface IndexRead {
  index: EntryIndex;
  etag: string;
}

/** Reads index.json; null when absent or unusable (it is a cache of the entries, which stay the truth). */
export async function readIndex(backend: Backend, operationId: string): Promise<IndexRead | null> {
  const got = await backend.getBytes(indexKey(operationId));
  if (got === null) return null;
  try {
    const index = JSON.parse(got.body.toString()) as Partial<EntryIndex>;
    const ok =
      index.layout === 2 &&
      typeof index.incarnation === "string" &&
      typeof index.covers === "string" &&
      Array.isArray(index.entries) &&
      index.entries.every((e) => isArtifactEntry(e) && typeof e.name === "string" && ENTRY_NAME.exec(e.name)?.[2] === pathHash(e.path));
    return ok ? { index: index as EntryIndex, etag: got.etag } : { index: { layout: 2, incarnation: "", covers: "", entries: [] }, etag: got.etag };
  } catch {
    return { index: { layout: 2, incarnation: "", covers: "", entries: [] }, etag: got.etag };
  }
}

/** Paces index writes per operation in this process. */
export class IndexPacer {
  /** Index writes that reached storage (for tests and metrics). */
  writes = 0;
  private readonly last = new Map<string, number>();

  /** Whether `take` would allow a write now (nothing taken). */
  ready(operationId: string, nowMs: number): boolean {
    const previous = this.last.get(operationId);
    return previous === undefined || nowMs - previous >= INDEX_PACE_MS || nowMs < previous;
  }

  take(operationId: string, nowMs: number): boolean {
    if (!this.ready(operationId, nowMs)) return false;
    this.last.set(operationId, nowMs);
    if (this.last.size > 10_000) this.last.delete(this.last.keys().next().value!);
    return true;
  }
}

export interface ListContext {
  backend: Backend;
  now: Date;
  /** Absent: never write the index (read-only storage, the CLI's reports). */
  pacer?: IndexPacer;
  /** Write the index when any entry had to be fetched (the sweep), not only past COMPACT_AFTER. */
  compactAlways?: boolean;
  /** The LIST after a `covers` this process saw before, started beside the index read (see `prefetchNames`); the sweep's flat listing. */
  prefetched?: PrefetchedNames;
  /** Entries of this incarnation this process committed itself, by name: no GET for them. */
  committed?: ReadonlyMap<string, NamedEntry>;
  /** Told the size of an index.json this listing wrote (the sweep's tally of stored bytes). */
  onIndexWritten?: (bytes: number) => void;
}

/** What a process remembers of an operation's index: enough to start the next LIST early. */
export interface IndexHint {
  incarnation: string;
  covers: string;
}

export interface PrefetchedNames extends IndexHint {
  names: Promise<string[]>;
}

/**
 * Starts the LIST of entry names after a `covers` seen before, so that a repeated listing makes
 * its three requests at once. `covers` only moves forward, so this LIST holds everything after
 * the index read next, plus entries that index covers (the listing skips those).
 */
export function prefetchNames(backend: Backend, operationId: string, hint: IndexHint): PrefetchedNames {
  const prefix = entriesPrefix({ operationId, incarnation: hint.incarnation });
  const names = listNames(backend, prefix, hint.covers);
  names.catch(() => {}); // awaited (and its error surfaced) only when used
  return { ...hint, names };
}

/** An entry with its object's name under the incarnation's prefix. */
export type NamedEntry = ArtifactEntry & { name: string };

/**
 * Lists an operation's entries: index.json (read in parallel with metadata.json by the caller),
 * then one LIST after the index's `covers` (byte order = commit order), then a GET of each
 * listed entry the index lacks. Writes the index back, paced, when that took many GETs.
 */
export async function listEntries(ctx: ListContext, m: MetadataV2, indexRead: Promise<IndexRead | null>): Promise<NamedEntry[] & { covers?: string }> {
  const { backend } = ctx;
  const prefix = entriesPrefix(m);
  const read = await indexRead;
  const index = read?.index.incarnation === m.incarnation ? read.index : undefined;
  const covers = index?.covers ?? "";
  const known = new Map((index?.entries ?? []).map((e) => [e.name, e]));
  const names = (index?.entries ?? []).filter((e) => e.name <= covers).map((e) => e.name);
  const missing: string[] = [];
  let listed = 0;
  let unindexed = 0;
  const early = ctx.prefetched;
  const usable = early !== undefined && early.incarnation === m.incarnation && early.covers <= covers;
  const after = usable ? (await early.names).filter((name) => name > covers) : await listNames(backend, prefix, covers);
  for (const name of after) {
    if (!ENTRY_NAME.test(name)) continue; // not an entry (the sweep collects it once old)
    names.push(name);
    listed++;
    if (known.has(name)) continue;
    unindexed++;
    const mine = ctx.committed?.get(name);
    if (mine === undefined) missing.push(name);
    else known.set(name, mine);
  }
  for (let i = 0; i < missing.length; i += GET_PARALLEL) {
    await Promise.all(
      missing.slice(i, i + GET_PARALLEL).map(async (name) => {
        const got = await backend.getBytes(prefix + name);
        // Gone since the LIST: the operation is being deleted; the caller's next read says so.
        if (got !== null) known.set(name, { ...parseEntry(got.body, name, m.operationId), name });
      }),
    );
  }
  const seen = new Set<string>();
  const entries: NamedEntry[] = [];
  for (const name of names) {
    const entry = known.get(name);
    if (entry === undefined || seen.has(entry.path)) continue;
    seen.add(entry.path);
    entries.push(entry);
  }
  // Worth a write when the index lacks entries, or the LIST after `covers` has grown long.
  const threshold = ctx.compactAlways ? 1 : COMPACT_AFTER;
  const next = advancedCovers(ctx, entries, covers);
  const wanted = unindexed >= threshold || (listed >= threshold && next !== covers);
  if (wanted && ctx.pacer?.take(m.operationId, ctx.now.getTime())) await writeIndex(ctx, m, read, entries, next);
  return Object.assign(entries, { covers });
}

async function listNames(backend: Backend, prefix: string, covers: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of backend.list(prefix, covers === "" ? {} : { startAfter: prefix + covers })) out.push(o.key.slice(prefix.length));
  return out;
}

/** The newest entry name older than the margin (never behind the current `covers`). */
function advancedCovers(ctx: ListContext, entries: readonly NamedEntry[], covers: string): string {
  const margin = ctx.backend.kind === "local" ? INDEX_MARGIN_MS.local : INDEX_MARGIN_MS.remote;
  const cutoff = String(ctx.now.getTime() - margin).padStart(13, "0");
  let next = covers;
  for (const e of entries) if (e.name.slice(0, 13) < cutoff && e.name > next) next = e.name;
  return next;
}

/** Best effort: a lost race (412) or any storage error leaves the index as it was; readers do not need it. */
async function writeIndex(ctx: ListContext, m: MetadataV2, read: IndexRead | null, entries: NamedEntry[], covers: string): Promise<void> {
  const sorted = [...entries].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const index: EntryIndex = { layout: 2, incarnation: m.incarnation, covers, entries: sorted };
  const body = Buffer.from(`${JSON.stringify(index)}\n`);
  try {
    await ctx.backend.putConditional(indexKey(m.operationId), body, read === null ? { ifNoneMatch: "*" } : { ifMatch: read.etag });
    ctx.pacer!.writes++;
    ctx.onIndexWritten?.(body.length);
  } catch {
    // Another reader wrote it first, or storage is busy: the next listing tries again.
  }
}

