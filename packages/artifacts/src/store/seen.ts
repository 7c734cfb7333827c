/**
 * What one process remembers of the layout 2 operations it has read (bounded), so that the next
 * listing asks storage as little as possible. Nothing here is trusted without storage saying so:
 * a remembered metadata.json or index.json is used only when a LIST made now shows that key with
 * the same ETag (a strong ETag of the bytes: a rotated key, a new incarnation or a rewritten index
 * is another ETag), and a metadata.json the LIST does not show is read again (not found, then).
 */
import type { Backend } from "../backends/types.js";
import { entriesPrefix, type IndexHint, type IndexRead, indexKey } from "../layout-v2.js";
import { metadataKey, type MetadataV2, operationPrefix } from "../metadata.js";

/** Operations remembered at most. */
const MAX_OPERATIONS = 10_000;
/** Index entries remembered at most, over all operations (a parsed 1,000-entry index is about 0.3 MB of heap). */
const MAX_INDEX_ENTRIES = 20_000;

export interface Seen extends IndexHint {
  /** metadata.json as last read, with its ETag. */
  metadata?: { etag: string; value: MetadataV2 };
  /** index.json as last read (its ETag inside). */
  index?: IndexRead;
}

/** What one LIST of `operations/<id>/` after the entries up to `covers` shows. */
export interface Tail {
  /** Entry names (of the remembered incarnation) after `covers`, in byte order. */
  names: string[];
  /** ETags of metadata.json and index.json; absent when the key is. */
  metadataEtag?: string;
  indexEtag?: string;
}

export class SeenOperations {
  private readonly seen = new Map<string, Seen>();
  /** Operations read in layout 1: a first listing of them needs no early index.json read. */
  private readonly layout1 = new Set<string>();
  private indexEntries = 0;

  get(operationId: string): Seen | undefined {
    return this.seen.get(operationId);
  }

  forget(operationId: string): void {
    this.setIndex(operationId, undefined);
    this.seen.delete(operationId);
  }

  isLayout1(operationId: string): boolean {
    return this.layout1.has(operationId);
  }

  /** Read metadata.json of a layout 1 operation. */
  sawLayout1(operationId: string): void {
    this.forget(operationId);
    this.layout1.add(operationId);
    if (this.layout1.size > MAX_OPERATIONS) this.layout1.delete(this.layout1.values().next().value!);
  }

  /** Read metadata.json of a layout 2 operation (its ETag when known). */
  sawMetadata(metadata: MetadataV2, etag: string | undefined): void {
    const { operationId, incarnation } = metadata;
    this.layout1.delete(operationId);
    const before = this.seen.get(operationId);
    if (before !== undefined && before.incarnation !== incarnation) this.forget(operationId);
    const kept = this.seen.get(operationId) ?? { incarnation, covers: "" };
    if (!this.seen.has(operationId)) {
      if (this.seen.size >= MAX_OPERATIONS) this.forget(this.seen.keys().next().value!);
      this.seen.set(operationId, kept);
    }
    if (etag !== undefined) kept.metadata = { etag, value: metadata };
  }

  /** A listing found the index's `covers` (only moves forward). */
  sawCovers(operationId: string, incarnation: string, covers: string): void {
    const kept = this.seen.get(operationId);
    if (kept?.incarnation === incarnation && covers > kept.covers) kept.covers = covers;
  }

  /** Read index.json (kept only within the bound on entries). */
  sawIndex(operationId: string, read: IndexRead | null): void {
    this.setIndex(operationId, read ?? undefined);
  }

  private setIndex(operationId: string, read: IndexRead | undefined): void {
    const kept = this.seen.get(operationId);
    if (kept === undefined) return;
    this.indexEntries -= kept.index?.index.entries.length ?? 0;
    kept.index = undefined;
    const size = read?.index.entries.length ?? 0;
    if (read === undefined || size > MAX_INDEX_ENTRIES) return;
    // Oldest first, until this one fits.
    for (const [id, other] of this.seen) {
      if (this.indexEntries + size <= MAX_INDEX_ENTRIES) break;
      if (other.index === undefined || id === operationId) continue;
      this.indexEntries -= other.index.index.entries.length;
      other.index = undefined;
    }
    kept.index = read;
    this.indexEntries += size;
  }
}

/**
 * One LIST of the operation's prefix after its entries up to `covers`: `artifacts/` sorts before
 * `entries/`, so it returns the entries committed since (then any left from another incarnation,
 * skipped), then index.json and metadata.json with their ETags.
 */
export async function listTail(backend: Backend, operationId: string, hint: IndexHint): Promise<Tail> {
  const entries = entriesPrefix({ operationId, incarnation: hint.incarnation });
  const tail: Tail = { names: [] };
  for await (const o of backend.list(operationPrefix(operationId), { startAfter: entries + hint.covers })) {
    if (o.key.startsWith(entries)) tail.names.push(o.key.slice(entries.length));
    else if (o.key === indexKey(operationId)) tail.indexEtag = o.etag;
    else if (o.key === metadataKey(operationId)) tail.metadataEtag = o.etag;
  }
  return tail;
}
