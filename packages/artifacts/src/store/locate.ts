/**
 * Finding an operation (primary storage, then the read-only migration fallback) and reading its
 * committed entries: layout 1's from metadata.json, layout 2's from index.json, the LIST after it
 * and the entries it lacks (docs/format.md#layouts), with what this process remembers of the
 * layout 2 operations it has read and the index upkeep of a writer.
 */
import type { Backend } from "../backends/types.js";
import { ExpiredError, NotFoundError } from "../errors.js";
import { IndexPacer, type IndexRead, listEntries, type NamedEntry, prefetchNames, type PrefetchedNames, readIndex } from "../layout-v2.js";
import { type ArtifactEntry, type MetadataV2, type OperationMetadata, readMetadata } from "../metadata.js";
import { listTail, type Seen, SeenOperations } from "./seen.js";
import { findEntry } from "./views.js";

/** What a reader gets for an operation that is missing or not theirs: the same answer, byte for byte. */
export const notShared = (operationId: string) => new NotFoundError(`operation ${operationId} not found or not shared with this wallet`);

/** `expired` (410) once the operation's time is up. */
export function checkNotExpired(metadata: OperationMetadata, now: Date): void {
  if (now.getTime() >= Date.parse(metadata.expiresAt)) {
    throw new ExpiredError(`operation ${metadata.operationId} expired at ${metadata.expiresAt}`);
  }
}

/** What follows finding an operation: a read of one artifact, or a listing of all. */
export type Then = "read" | "listing";

export interface Located {
  backend: Backend;
  metadata: OperationMetadata;
  /** The operation lives in the read-only migration fallback. */
  fallback: boolean;
  /** Layout 2: index.json, read beside metadata.json. */
  index?: Promise<IndexRead | null>;
  /** Layout 2, seen before by this process: the LIST after the index, started beside both. */
  prefetched?: PrefetchedNames;
}

/** One store's finding of operations and reading of their entries (and what it remembers of them). */
export class Operations {
  readonly pacer = new IndexPacer();
  /**
   * Operations last seen in layout 2 (bounded), with their incarnation and index `covers` (and on
   * S3/R2 their metadata.json and index.json): a read of one asks for what it needs at once.
   */
  private readonly seen = new SeenOperations();
  /** Layout 2 entries this process committed, per operation (bounded): its index writes need no GETs for them. */
  private readonly commits = new Map<string, { incarnation: string; entries: Map<string, NamedEntry> }>();

  constructor(
    private readonly primary: Promise<Backend>,
    private readonly fallback: Promise<Backend> | undefined,
    private readonly now: () => Date,
  ) {}

  /** The operation was deleted: nothing of it remembered. */
  forget(operationId: string): void {
    this.commits.delete(operationId);
    this.seen.forget(operationId);
  }

  /**
   * Finds an operation in primary storage, else in the migration fallback; `not_found` otherwise.
   * `then`: what follows (layout 2): a read of one artifact starts index.json early, a listing
   * also the LIST after it.
   */
  async locate(operationId: string, then?: Then): Promise<Located> {
    const backend = await this.primary;
    const found = await this.readFrom(backend, operationId, false, then);
    if (found !== null) return found;
    const fallback = await this.readFallback(operationId, then);
    if (fallback !== null) return fallback;
    throw new NotFoundError(`operation ${operationId} not found`);
  }

  async readFallback(operationId: string, then?: Then): Promise<Located | null> {
    return this.fallback === undefined ? null : this.readFrom(await this.fallback, operationId, true, then);
  }

  private async readFrom(backend: Backend, operationId: string, fallback: boolean, then: Then | undefined): Promise<Located | null> {
    const withIndex = then !== undefined;
    const hint = withIndex ? this.seen.get(operationId) : undefined;
    // metadata.json and index.json remembered on S3/R2: one LIST tells whether both are still the same.
    if (then === "listing" && hint?.metadata !== undefined) {
      const quick = await this.readSeen(backend, operationId, fallback, hint);
      if (quick !== undefined) return quick;
    }
    // index.json beside metadata.json for an operation this process has seen in layout 2 (a
    // grantee's listing, then its downloads), and for a listing on S3/R2 of one it has not seen
    // (two round trips, not three) unless it is known to be on layout 1; after it otherwise.
    const early = hint !== undefined || (then === "listing" && backend.kind !== "local" && !this.seen.isLayout1(operationId));
    let index = early ? readIndex(backend, operationId) : undefined;
    index?.catch(() => {}); // awaited (and its error surfaced) by the listing or read that follows
    // A read of one artifact usually finds it in the index: no LIST (Class A on R2) for it.
    const prefetched = hint === undefined || then !== "listing" ? undefined : prefetchNames(backend, operationId, hint);
    const read = await readMetadata(backend, operationId);
    if (read === null) return null;
    const { metadata } = read;
    if (metadata.version !== 2) {
      this.seen.sawLayout1(operationId);
      return { backend, metadata, fallback };
    }
    const remember = backend.kind !== "local"; // locally a read is a file read: nothing to spare
    this.seen.sawMetadata(metadata, remember ? read.etag : undefined);
    if (withIndex) index ??= readIndex(backend, operationId);
    if (remember) index = index?.then((r) => (this.seen.sawIndex(operationId, r), r));
    index?.catch(() => {});
    return { backend, metadata, fallback, index, prefetched };
  }

  /**
   * A listing of an operation this process read before on S3/R2: one LIST after the entries up to
   * the `covers` it saw shows the new entries and the ETags of metadata.json and index.json; what
   * changed since is read again. Undefined: read it the ordinary way (gone, or created anew).
   */
  private async readSeen(backend: Backend, operationId: string, fallback: boolean, hint: Seen): Promise<Located | undefined> {
    const tail = await listTail(backend, operationId, hint);
    let metadata = hint.metadata!.value;
    if (tail.metadataEtag !== hint.metadata!.etag) {
      // Rewritten, or gone (no ETag): read it again.
      const read = await readMetadata(backend, operationId);
      if (read?.metadata.version !== 2 || read.metadata.incarnation !== hint.incarnation) return undefined;
      metadata = read.metadata;
      this.seen.sawMetadata(metadata, read.etag);
    }
    let index: Promise<IndexRead | null>;
    if (tail.indexEtag === undefined) index = Promise.resolve(null);
    else if (tail.indexEtag === hint.index?.etag) index = Promise.resolve(hint.index);
    else index = readIndex(backend, operationId).then((r) => (this.seen.sawIndex(operationId, r), r));
    index.catch(() => {});
    const prefetched = { incarnation: hint.incarnation, covers: hint.covers, names: Promise.resolve(tail.names) };
    return { backend, metadata, fallback, index, prefetched };
  }

  /** The operation's committed entries, one per path. */
  async entries(located: Located): Promise<ArtifactEntry[]> {
    const { backend, metadata } = located;
    if (metadata.version === 1) return metadata.artifacts;
    // The fallback directory is read-only: no index written there.
    // What this process committed is not used here: a read goes by what storage holds.
    const ctx = { backend, now: this.now(), prefetched: located.prefetched, ...(located.fallback ? {} : { pacer: this.pacer }) };
    const entries = await listEntries(ctx, metadata, located.index ?? readIndex(backend, metadata.operationId));
    this.seen.sawCovers(metadata.operationId, metadata.incarnation, entries.covers ?? "");
    return entries;
  }

  /**
   * On S3/R2 the writer keeps the index up to date: every 32 commits to an operation (paced like any index
   * write), it lists the entries (index.json and one LIST; its own need no GET) and writes the
   * index, so the first reader of a large operation does not GET every entry. Best effort.
   */
  async compactAfterCommit(backend: Backend, metadata: MetadataV2, entry: NamedEntry): Promise<void> {
    // Locally a reader's GET of an entry is a small file read, and a listing walks the whole
    // entries folder: not worth doing on the upload path (row 7 of docs/performance.md).
    if (backend.kind === "local") return;
    const { operationId, incarnation } = metadata;
    let mine = this.commits.get(operationId);
    if (mine?.incarnation !== incarnation) {
      if (this.commits.size >= 100) this.commits.delete(this.commits.keys().next().value!);
      mine = { incarnation, entries: new Map() };
      this.commits.set(operationId, mine);
    }
    if (mine.entries.size >= 50_000) mine.entries.clear();
    mine.entries.set(entry.name, entry);
    if (mine.entries.size % 32 !== 0 || !this.pacer.ready(operationId, this.now().getTime())) return;
    const ctx = { backend, now: this.now(), pacer: this.pacer, committed: mine.entries, compactAlways: true };
    await listEntries(ctx, metadata, readIndex(backend, operationId)).catch(() => {});
  }

  /** One artifact's entry: from layout 2's index when it is there and covered, else from the full listing. */
  private async findEntry(located: Located, path: string): Promise<ArtifactEntry> {
    if (located.metadata.version === 2 && located.index !== undefined) {
      const read = await located.index;
      const { metadata } = located;
      const hit = read?.index.incarnation === metadata.incarnation ? read.index.entries.find((e) => e.path === path) : undefined;
      if (hit !== undefined && hit.name <= read!.index.covers) return hit;
    }
    return findEntry(await this.entries(located), located.metadata.operationId, path);
  }

  /**
   * `findEntry` for an authorized read: a path missing because the operation was deleted, swept
   * or created anew meanwhile answers what the operation now is (404/410), as a missing object does.
   */
  async readEntry(located: Located, path: string): Promise<ArtifactEntry> {
    const { metadata } = located;
    return this.findEntry(located, path).catch(async (error: unknown) => {
      if (!(error instanceof NotFoundError) || metadata.version !== 2) throw error;
      const now = await this.locate(metadata.operationId).catch((e: unknown) => {
        throw e instanceof NotFoundError ? notShared(metadata.operationId) : e;
      });
      if (now.metadata.version !== 2 || now.metadata.incarnation !== metadata.incarnation) throw notShared(metadata.operationId);
      checkNotExpired(now.metadata, this.now());
      throw error;
    });
  }
}
