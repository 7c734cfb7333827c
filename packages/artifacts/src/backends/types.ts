import type { Readable } from "node:stream";

/** One stored object, as listings and HEAD report it. Keys are full keys ("operations/<id>/..."). */
export interface ObjectInfo {
  key: string;
  /** Stored (encrypted) size in bytes. */
  size: number;
  /** Strong entity tag of the stored bytes, without quotes. */
  etag: string;
  lastModified: Date;
}

/**
 * Inclusive byte range, as in HTTP. Backends clamp an `end` past the object's last byte, and
 * answer an empty body when `start` is at or past the end (the store checks ranges against the
 * plaintext size before asking, so this only keeps the two backends alike).
 */
export interface ByteRange {
  start: number;
  end: number;
}

/** Options of `Backend.put`. */
export interface PutOptions {
  /** Create only: fail with `PreconditionFailedError` if the key exists (two writers racing for one path). */
  ifAbsent?: boolean;
  /**
   * The body's pieces are held by nobody else (the engine's fresh output): the backend may free
   * each one's memory once it has written it (`freeBytes`).
   */
  releasePieces?: boolean;
}

/** Options of `Backend.list`. */
export interface ListOptions {
  /** A full key: list only keys after it in byte order. */
  startAfter?: string;
}

/** Condition for `putConditional`: create only if absent, or replace only if the current ETag matches. */
export type WriteCondition = { ifNoneMatch: "*" } | { ifMatch: string };

/**
 * Storage behind the store: keys and bytes only, no crypto and no metadata semantics.
 * Implementations: `LocalBackend` (disk) and `S3Backend` (S3-compatible, R2).
 *
 * Errors: every method throws `StorageUnavailableError` when storage cannot be reached
 * (connection refused, timeout, 5xx after retries), `ConfigError` with a
 * hint for access denied / missing bucket, and `PreconditionFailedError` (below) from
 * `putConditional` when the condition does not hold. Absent objects are `null`, not errors.
 */
export interface Backend {
  readonly kind: "local" | "s3" | "r2";

  /** Streams an object (or an inclusive byte range of it); null when the key does not exist. */
  getStream(key: string, range?: ByteRange): Promise<Readable | null>;

  /**
   * Reads a small object whole (or a range of it), with its ETag and the whole object's length;
   * null when absent. For metadata.json and headers.
   */
  getBytes(key: string, range?: ByteRange): Promise<{ body: Buffer; etag: string; size: number } | null>;

  /** Size/ETag/mtime of an object; null when absent. */
  head(key: string): Promise<ObjectInfo | null>;

  /**
   * A URL that GETs (and HEADs) the object without credentials until `signedAt + expiresInSeconds`
   * (S3: SigV4 query signature; the answer is the stored bytes with Range support). Null for local
   * storage, whose objects the server itself delivers (`/api/v1/delivery/...`). No I/O.
   */
  presignGet(key: string, options: { expiresInSeconds: number; signedAt: Date }): Promise<string | null>;

  /**
   * Stores an object. A Buffer is written in one request; a stream is written as it arrives
   * (S3: multipart via lib-storage for large bodies; local: temp file + fsync + rename),
   * never buffered whole. If the body stream errors, nothing is left at `key` (local removes
   * its temp file, S3 aborts the multipart upload) and the body's error is rethrown as is.
   * With `ifAbsent`, an existing object is never replaced: `PreconditionFailedError` instead
   * (local: hard link into place; S3: If-None-Match on PutObject / CompleteMultipartUpload).
   */
  put(key: string, body: Buffer | Readable, options?: PutOptions): Promise<{ etag: string; size: number }>;

  /**
   * Writes a small object only if `condition` holds (S3: If-None-Match / If-Match headers;
   * local: under a lock file next to the key, compare then atomic rename). Throws
   * `PreconditionFailedError` when it does not, `StorageUnavailableError` on 429/503-like throttling
   * after the backend's own retries (the store retries with jittered backoff).
   */
  putConditional(key: string, body: Buffer, condition: WriteCondition): Promise<{ etag: string }>;

  /** Deletes keys (missing keys are fine). Batches internally (S3 DeleteObjects, 1000 per call). */
  delete(keys: readonly string[]): Promise<void>;

  /**
   * Lists objects under a prefix in key order, paginated internally; with `startAfter`, only keys
   * after it in byte order (S3 `StartAfter`).
   */
  list(prefix: string, options?: ListOptions): AsyncIterable<ObjectInfo>;

  /**
   * Lists the "directories" directly under a prefix (S3 CommonPrefixes with delimiter "/"),
   * e.g. listPrefixes("operations/") yields "operations/<id>/". Paginated internally.
   */
  listPrefixes(prefix: string): AsyncIterable<string>;

  /**
   * Removes leftovers of interrupted writes older than `olderThan`: local temp files and stale
   * lock files; S3 incomplete multipart uploads under the prefix. Returns how many were removed,
   * or `"not_supported"` when the endpoint does not implement listing them (HTTP 501).
   */
  sweepTemporary(prefix: string, olderThan: Date): Promise<number | NotSupported>;

  /**
   * Checks that the bucket (or local root directory) exists and is usable: S3 HeadBucket, local
   * stat + access. Returns the storage server's clock (the response `Date` header) so `doctor`
   * can report clock skew, which breaks S3 request signing; `undefined` for local storage.
   * Throws `ConfigError` (missing bucket/directory, access denied) or `StorageUnavailableError`.
   */
  checkBucket(): Promise<BucketCheck>;

  /**
   * The bucket's lifecycle (expiration) rules, for `doctor`: S3 GetBucketLifecycleConfiguration.
   * `[]` when the bucket has none, `"not_visible"` when the credentials may not read them
   * (AccessDenied: bucket-scoped R2 tokens usually cannot), `"not_supported"` when the endpoint
   * does not implement lifecycle configuration (HTTP 501), `null` for local storage.
   */
  getLifecycleRules(): Promise<LifecycleRule[] | "not_visible" | NotSupported | null>;

  /**
   * The origins of the bucket's CORS rules, for `doctor --deep` (S3 GetBucketCors; S3-compatible
   * storage only, local storage has no CORS configuration). `[]` when the bucket has none,
   * `"not_visible"` when the credentials may not read it, `"not_supported"` on HTTP 501.
   */
  getCorsOrigins?(): Promise<string[] | "not_visible" | NotSupported>;

  /** Releases sockets and handles. */
  close(): Promise<void>;
}

/** An optional S3 operation the endpoint answers with 501 Not Implemented (some S3-compatible stores, R2's local simulator). */
export type NotSupported = "not_supported";

/** Result of `Backend.checkBucket`. */
export interface BucketCheck {
  /** The storage server's clock (HTTP `Date` of the HeadBucket response); undefined for local storage or when absent. */
  serverDate: Date | undefined;
}

/** One bucket lifecycle rule as `Backend.getLifecycleRules` reports it. */
export interface LifecycleRule {
  /** Rule id (`""` when the rule has none). */
  id: string;
  /** Key prefix the rule applies to (`""` = the whole bucket). */
  prefix: string;
  /** Days after creation when objects expire; undefined when the rule does not expire objects by age. */
  expirationDays: number | undefined;
}

/** Timeouts for `openBackend` / the S3 backend (from `ARTIFACTS_S3_TIMEOUT_MS`; connect 5000 ms). */
export interface BackendTimeouts {
  /** Budget of one storage call in ms, SDK retries included; past it the call fails with `StorageUnavailableError`. */
  timeoutMs: number;
  /** TCP/TLS connect timeout in ms. */
  connectTimeoutMs: number;
}

/** Thrown by `Backend.putConditional` when the write condition does not hold (HTTP 412). Internal to the SDK. */
export class PreconditionFailedError extends Error {
  readonly #status: number | undefined;

  /**
   * @param status The storage's HTTP answer (412; 404 where a store answers If-Match on a
   * missing key that way, as moto does); undefined for local storage.
   */
  constructor(key: string, status?: number) {
    super(`precondition failed for ${key}`);
    this.name = "PreconditionFailedError";
    this.#status = status;
  }

  /** The storage's HTTP status, for `doctor --deep`. A getter, not an own field, so the backends' refusals stay equal. */
  get status(): number | undefined {
    return this.#status;
  }
}

/**
 * A write refused because storage that keeps keys as files and folders (local disk) holds the key's
 * folder as a file or the key as a folder: `a` and `a/b` cannot both exist there. Not retryable.
 */
export class KeyClashError extends Error {
  constructor(key: string) {
    super(`${key} clashes with a key that uses it as a folder, or with a file on its folder path`);
    this.name = "KeyClashError";
  }
}
