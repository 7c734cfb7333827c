import { OPERATIONS_PREFIX } from "./constants.js";
import type { WrappedKey } from "./crypto.js";
import { ArtifactError, IntegrityError, isKeyWriteThrottled, NotFoundError, StorageUnavailableError, UnsupportedLayoutError } from "./errors.js";
import { type Backend, PreconditionFailedError } from "./backends/types.js";
import { isArtifactPath, isContentType } from "./validate.js";

/**
 * One committed artifact: an element of metadata.json's `artifacts` (layout 1) or its own entry
 * object (layout 2). An artifact without an entry does not exist.
 */
export interface ArtifactEntry {
  /** Relative artifact path. */
  path: string;
  /** Plaintext size in bytes. */
  size: number;
  /** Stored (encrypted) size in bytes: 41 + size + 16 * max(1, ceil(size / chunkSize)). */
  encryptedSize: number;
  /** Content type given at upload. */
  contentType: string;
  /** Plaintext chunk size C of the stored object. */
  chunkSize: number;
  /** ISO-8601 UTC upload time. */
  createdAt: string;
  /** Strong entity tag (unquoted) served to clients; unique per upload. */
  etag: string;
}

/** The newest storage layout this code reads and writes (docs/format.md#layouts). */
export const LAYOUT_VERSION = 2;

/** What metadata.json holds in every layout: fixed at creation (the wrapped key changes only by rotate-key). */
interface MetadataFields {
  operationId: string;
  agent: string | null;
  /** Lower-case EVM address of the only reader. */
  grantee: string;
  createdAt: string;
  expiresAt: string;
  /** The operation's data key, wrapped by a master key; bound to operationId, grantee and expiresAt. */
  wrappedKey: WrappedKey;
}

/** metadata.json in layout 1: the entries live in it, and every commit rewrites it. */
export interface MetadataV1 extends MetadataFields {
  version: 1;
  artifacts: ArtifactEntry[];
}

/** metadata.json in layout 2: written once (and by rotate-key); entries are objects of their own. */
export interface MetadataV2 extends MetadataFields {
  version: 2;
  /** 32 hex digits, random per creation: entries of an earlier operation with the same id are not this one's. */
  incarnation: string;
}

export type OperationMetadata = MetadataV1 | MetadataV2;

export function operationPrefix(operationId: string): string {
  return `${OPERATIONS_PREFIX}${operationId}/`;
}

export function metadataKey(operationId: string): string {
  return `${operationPrefix(operationId)}metadata.json`;
}

export function artifactObjectKey(operationId: string, path: string): string {
  return `${operationPrefix(operationId)}artifacts/${path}`;
}

export function serializeMetadata(metadata: OperationMetadata): Buffer {
  // Compact: an operation with thousands of artifacts rewrites this on every coalesced commit.
  return Buffer.from(`${JSON.stringify(metadata)}\n`);
}

const isString = (v: unknown): v is string => typeof v === "string";
const isCount = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

const INCARNATION = /^[0-9a-f]{32}$/;

/** Checks one artifact entry's shape (metadata.json's `artifacts` or an entry object). */
export function isArtifactEntry(value: unknown): value is ArtifactEntry {
  const a = value as Partial<ArtifactEntry> | null;
  return (
    a !== null &&
    typeof a === "object" &&
    isString(a.path) &&
    isArtifactPath(a.path) &&
    isCount(a.size) &&
    isCount(a.encryptedSize) &&
    isString(a.contentType) &&
    isContentType(a.contentType) &&
    isCount(a.chunkSize) &&
    isString(a.createdAt) &&
    isString(a.etag)
  );
}

/**
 * Parses and shape-checks metadata.json; anything malformed is `integrity`. A layout newer than
 * this code knows is `unsupported_layout` (its grantee, when readable, rides on the error so the
 * store answers strangers as for a missing operation).
 */
export function parseMetadata(bytes: Buffer | string, operationId?: string): OperationMetadata {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString());
  } catch (error) {
    throw new IntegrityError(`metadata.json${operationId ? ` of ${operationId}` : ""} is not valid JSON`, { cause: error });
  }
  const m = value as (Partial<Omit<MetadataV1, "version"> & Omit<MetadataV2, "version">> & { version?: unknown }) | null;
  if (m !== null && typeof m === "object" && typeof m.version === "number" && Number.isSafeInteger(m.version) && m.version > LAYOUT_VERSION) {
    throw new UnsupportedLayoutError(
      `operation${operationId ? ` ${operationId}` : ""} is stored in layout ${m.version}; this release reads layouts 1 to ${LAYOUT_VERSION}: upgrade the server and CLI`,
      { grantee: isString(m.grantee) ? m.grantee : undefined },
    );
  }
  const wk = m?.wrappedKey as Partial<WrappedKey> | undefined;
  const ok =
    m !== null &&
    typeof m === "object" &&
    (m.version === 1 ? Array.isArray(m.artifacts) && m.artifacts.every(isArtifactEntry) : m.version === 2 && isString(m.incarnation) && INCARNATION.test(m.incarnation)) &&
    isString(m.operationId) &&
    (m.agent === null || isString(m.agent)) &&
    isString(m.grantee) &&
    isString(m.createdAt) &&
    isString(m.expiresAt) &&
    !Number.isNaN(Date.parse(m.expiresAt)) &&
    wk !== undefined &&
    isString(wk.kid) &&
    isString(wk.iv) &&
    isString(wk.ciphertext);
  if (!ok || (operationId !== undefined && m.operationId !== operationId)) {
    throw new IntegrityError(`metadata.json${operationId ? ` of ${operationId}` : ""} is malformed`);
  }
  return m as OperationMetadata;
}

/** Reads an operation's metadata.json with its ETag; null when the operation does not exist. */
export async function readMetadata(
  backend: Backend,
  operationId: string,
): Promise<{ metadata: OperationMetadata; etag: string } | null> {
  const got = await backend.getBytes(metadataKey(operationId));
  if (got === null) return null;
  return { metadata: parseMetadata(got.body, operationId), etag: got.etag };
}

/**
 * A change to one operation's metadata (layout 1: commits append entries; any layout: rotate-key
 * replaces the wrapped key): it may throw to refuse (only its caller sees the error),
 * but only before changing anything, and it replaces fields and appends entries rather than
 * editing existing entries in place.
 */
export type MetadataMutation = (metadata: OperationMetadata) => void;

interface Waiter {
  mutate: MetadataMutation;
  resolve: () => void;
  reject: (error: unknown) => void;
}

const MAX_ATTEMPTS = 10;

/**
 * Serialises and coalesces metadata.json updates per operation. R2 takes about one write per
 * second to one key, so mutations that arrive while a write is in flight are applied together
 * in the next write: 50 concurrent uploads cost a few writes, not 50. Each write is conditional
 * on the ETag read (If-Match); on 412 (another process wrote) it re-reads and re-applies, and
 * on 412/429/503 it backs off with jitter.
 */
export class MetadataWriter {
  /** Conditional writes that reached storage (for tests and metrics). */
  writes = 0;
  private readonly queues = new Map<string, Waiter[]>();
  private readonly cache = new Map<string, { metadata: OperationMetadata; etag: string }>();

  constructor(private readonly backend: Backend) {}

  /** Applies `mutate` to the stored metadata; resolves once a write containing it succeeded. */
  update(operationId: string, mutate: MetadataMutation): Promise<void> {
    return new Promise((resolve, reject) => {
      const queue = this.queues.get(operationId);
      if (queue) {
        queue.push({ mutate, resolve, reject });
        return;
      }
      this.queues.set(operationId, [{ mutate, resolve, reject }]);
      void this.drain(operationId);
    });
  }

  /**
   * Creates metadata.json: `created`; `taken` if it already exists; `busy` if R2 throttles the
   * write (429: the key was written within the last second, by another writer's create of the
   * same generated id, or by a delete of the operation just now).
   */
  async create(metadata: OperationMetadata): Promise<"created" | "taken" | "busy"> {
    try {
      const { etag } = await this.backend.putConditional(metadataKey(metadata.operationId), serializeMetadata(metadata), {
        ifNoneMatch: "*",
      });
      this.writes++;
      this.cache.set(metadata.operationId, { metadata, etag });
      return "created";
    } catch (error) {
      if (error instanceof PreconditionFailedError) return "taken";
      if (isKeyWriteThrottled(error)) return "busy";
      throw error;
    }
  }

  /**
   * The metadata this process last wrote for an operation, if any. Good enough for an upload's
   * early checks (existence, expiry, duplicate path): each is checked again when the entry is
   * committed, and reading a large metadata.json for every small upload is what would cost.
   */
  cached(operationId: string): OperationMetadata | undefined {
    return this.cache.get(operationId)?.metadata;
  }

  /** The ETag of the metadata.json this process last wrote for an operation, if it is `metadata`'s. */
  cachedEtag(metadata: OperationMetadata): string | undefined {
    const kept = this.cache.get(metadata.operationId);
    return kept?.metadata === metadata ? kept.etag : undefined;
  }

  /** Forgets cached state (after the operation is deleted). */
  forget(operationId: string): void {
    this.cache.delete(operationId);
  }

  private async drain(operationId: string): Promise<void> {
    for (;;) {
      const batch = this.queues.get(operationId) ?? [];
      // New arrivals queue behind a fresh array while this batch is written.
      this.queues.set(operationId, []);
      if (batch.length === 0) {
        this.queues.delete(operationId);
        return;
      }
      try {
        const accepted = await this.writeBatch(operationId, batch);
        for (const waiter of accepted) waiter.resolve();
      } catch (error) {
        for (const waiter of batch) waiter.reject(error);
      }
    }
  }

  /** Writes one batch; returns the waiters whose mutation went in (the others were rejected). */
  private async writeBatch(operationId: string, batch: Waiter[]): Promise<Waiter[]> {
    let fresh = false;
    for (let attempt = 1; ; attempt++) {
      let current = fresh ? undefined : this.cache.get(operationId);
      if (current === undefined) {
        const read = await readMetadata(this.backend, operationId);
        if (read === null) throw new NotFoundError(`operation ${operationId} not found`);
        current = read;
      }
      // Entries are never edited in place, so a copy of the top level and the list is enough
      // to keep the cached document intact if the write fails.
      const m = current.metadata;
      const next: OperationMetadata = m.version === 1 ? { ...m, artifacts: [...m.artifacts] } : { ...m };
      const accepted: Waiter[] = [];
      for (const waiter of batch) {
        try {
          waiter.mutate(next);
          accepted.push(waiter);
        } catch (error) {
          waiter.reject(error);
        }
      }
      batch = accepted;
      if (accepted.length === 0) return accepted;
      try {
        const { etag } = await this.backend.putConditional(metadataKey(operationId), serializeMetadata(next), {
          ifMatch: current.etag,
        });
        this.writes++;
        this.cache.set(operationId, { metadata: next, etag });
        return accepted;
      } catch (error) {
        this.cache.delete(operationId);
        const retryable =
          error instanceof PreconditionFailedError ||
          (error instanceof StorageUnavailableError && error.details?.throttled === true);
        if (!retryable || attempt >= MAX_ATTEMPTS) {
          if (error instanceof PreconditionFailedError) {
            throw new StorageUnavailableError(
              `metadata of ${operationId} kept changing during ${MAX_ATTEMPTS} attempts; try again`,
              { cause: error },
            );
          }
          throw error instanceof ArtifactError ? error : new StorageUnavailableError("metadata write failed", { cause: error });
        }
        fresh = true;
        // Full jitter, 50 ms doubling to ~3 s: R2 allows about one write per second per key.
        const ceiling = Math.min(3200, 50 * 2 ** attempt);
        await new Promise((r) => setTimeout(r, Math.random() * ceiling));
      }
    }
  }
}
