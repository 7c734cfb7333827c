import { randomBytes } from "node:crypto";
import { Readable, addAbortSignal, pipeline } from "node:stream";
import type { ArtifactsConfig } from "./config-types.js";
import { loadConfig } from "./config.js";
import { OPERATIONS_PREFIX } from "./constants.js";
import {
  DEFAULT_CHUNK_SIZE,
  createDecryptStream,
  createEncryptStream,
  createRangeDecryptStream,
  decryptArtifact,
  deriveArtifactKey,
  encryptArtifact,
  encryptedSize,
  HEADER_BYTES,
  newDataKey,
  parseHeader,
  planRange,
  plaintextSize,
  unwrapDataKey,
  wrapDataKey,
} from "./crypto.js";
import {
  ConfigError,
  ConflictError,
  ExpiredError,
  ForbiddenError,
  IntegrityError,
  InvalidInputError,
  NotFoundError,
  RangeNotSatisfiableError,
  TooLargeError,
} from "./errors.js";
import { openBackend } from "./backends/index.js";
import { type Backend, type ObjectInfo, PreconditionFailedError } from "./backends/types.js";
import {
  type ArtifactEntry,
  artifactObjectKey,
  metadataKey,
  MetadataWriter,
  type OperationMetadata,
  operationPrefix,
  readMetadata,
} from "./metadata.js";
import { isOperationId, normalizeGrantee, validateAgent, validateArtifactPath, validateOperationId } from "./validate.js";

/** An artifact as clients see it: its metadata entry. */
export type ArtifactInfo = ArtifactEntry;

/** An operation as the writer and the operator see it. */
export interface OperationInfo {
  operationId: string;
  agent: string | null;
  /** Lower-case EVM address of the only reader. */
  grantee: string;
  createdAt: string;
  expiresAt: string;
  artifactCount: number;
  /** Plaintext bytes of all artifacts. */
  totalBytes: number;
  /** Stored bytes of all artifacts. */
  encryptedBytes: number;
}

export interface CreateOperationInput {
  /** EVM address of the only reader (any case; stored lower case). */
  grantee: string;
  /** Agent name; the generated id is `<agent>_<epoch ms>`. */
  agent?: string;
  /** Explicit id (`^[a-z0-9][a-z0-9_-]{0,127}$`); `conflict` if it exists. */
  operationId?: string;
  /** Lifetime in whole seconds, 1 to the configured maximum (`ARTIFACTS_TTL`); default the maximum. */
  ttlSeconds?: number;
}

export interface PutArtifactOptions {
  /** Stored with the artifact and served on download. Default `application/octet-stream`. */
  contentType?: string;
  /** Aborts the upload; nothing is stored. */
  signal?: AbortSignal;
}

export interface ReadOptions {
  /** The caller's EVM address; only the operation's grantee may read. */
  requester: string;
}

export interface GetArtifactOptions extends ReadOptions {
  /** Plaintext byte range, `end` inclusive as in HTTP (clamped to the last byte); omit `end` for "to the end". */
  range?: { start: number; end?: number };
}

export interface GetArtifactResult {
  info: ArtifactInfo;
  /** Plaintext; errors with `IntegrityError` (never ends cleanly) if stored bytes were tampered with. */
  body: Readable;
  /** The satisfied range, when one was asked for. */
  range?: { start: number; end: number };
}

export interface SweepResult {
  deletedOperations: number;
  deletedObjects: number;
  deletedTemporary: number;
}

export interface SweepOptions {
  /** The sweep's notion of now (default: the store's clock). */
  now?: Date;
  /** Called after each operation prefix is handled, with running totals. */
  onProgress?: (progress: SweepResult & { operations: number }) => void;
}

export interface StoreOptions {
  /** Clock, for tests. */
  now?: () => Date;
}

export interface ArtifactStore {
  readonly config: ArtifactsConfig;
  readonly kind: "local" | "s3" | "r2";
  /** Counters for tests and metrics. */
  readonly stats: { readonly metadataWrites: number };
  createOperation(input: CreateOperationInput): Promise<OperationInfo>;
  putArtifact(
    operationId: string,
    path: string,
    body: Readable | Uint8Array | string,
    options?: PutArtifactOptions,
  ): Promise<ArtifactInfo>;
  listArtifacts(
    operationId: string,
    options: ReadOptions,
  ): Promise<{ operationId: string; grantee: string; expiresAt: string; artifacts: ArtifactInfo[] }>;
  statArtifact(operationId: string, path: string, options: ReadOptions): Promise<ArtifactInfo>;
  getArtifact(operationId: string, path: string, options: GetArtifactOptions): Promise<GetArtifactResult>;
  getOperation(operationId: string): Promise<OperationInfo>;
  deleteOperation(operationId: string): Promise<void>;
  listOperations(): AsyncIterable<OperationInfo>;
  sweepExpired(options?: SweepOptions): Promise<SweepResult>;
  rewrapOperation(operationId: string): Promise<boolean>;
  close(): Promise<void>;
}

/** Objects no metadata.json references are deleted once they are this old (crash leftovers). */
export const ORPHAN_GRACE_MS = 24 * 3600 * 1000;
/** An unreferenced object at an artifact's key older than this is a crash leftover a new upload may replace. */
const LEFTOVER_AGE_MS = 5 * 60 * 1000;
/** Temp files (local) and incomplete multipart uploads (S3) older than this are removed by the sweep. */
const TEMP_GRACE_MS = { local: 3600 * 1000, remote: 24 * 3600 * 1000 };
const CONTENT_TYPE = /^[A-Za-z0-9!#$&^_.+-]{1,127}\/[A-Za-z0-9!#$&^_.+-]{1,127}(\s*;\s*[A-Za-z0-9!#$&^_.+-]+=("[^"\\\r\n]*"|[A-Za-z0-9!#$&^_.+-]+))*$/;

/**
 * Opens the store for a configuration (default: `loadConfig(undefined, { create: true })`, which on
 * local storage creates the directory and a development master key). The storage client is created
 * lazily: `@aws-sdk/*` is loaded only when R2 or S3 is configured. A configuration loaded without
 * `create` whose master key is missing is refused with a `config` error.
 */
export function createArtifactStore(config: ArtifactsConfig = loadConfig(undefined, { create: true }), options: StoreOptions = {}): ArtifactStore {
  if (config.masterKeySource.kind === "missing") {
    throw new ConfigError(
      `no master key: ${config.masterKeySource.path} does not exist and ARTIFACTS_MASTER_KEY(S) is unset; run the server once, or set ARTIFACTS_LOCAL_DIR`,
      { details: { problems: [{ variable: "ARTIFACTS_MASTER_KEY", message: `no key variable and no ${config.masterKeySource.path}` }] } },
    );
  }
  return new Store(config, options);
}

interface Located {
  backend: Backend;
  metadata: OperationMetadata;
  /** The operation lives in the read-only migration fallback. */
  fallback: boolean;
}

class Store implements ArtifactStore {
  readonly kind: "local" | "s3" | "r2";
  private readonly primary: Promise<Backend>;
  private readonly fallback: Promise<Backend> | undefined;
  private writer: MetadataWriter | undefined;
  private readonly now: () => Date;
  /** `<operationId>/<path>` uploads in flight in this process: a second one is `conflict`. */
  private readonly inFlight = new Set<string>();

  constructor(
    readonly config: ArtifactsConfig,
    options: StoreOptions,
  ) {
    this.kind = config.storage.kind;
    this.now = options.now ?? (() => new Date());
    const timeouts = { timeoutMs: config.s3TimeoutMs, connectTimeoutMs: config.s3ConnectTimeoutMs };
    this.primary = openBackend(config.storage, timeouts);
    this.primary.catch(() => {}); // surfaced by the first call that needs it
    if (config.fallbackLocalDir !== undefined) {
      const fallback = openBackend({ kind: "local", dir: config.fallbackLocalDir }, timeouts);
      fallback.catch(() => {});
      this.fallback = fallback;
    }
  }

  get stats() {
    return { metadataWrites: this.writer?.writes ?? 0 };
  }

  private async backend(): Promise<Backend> {
    return this.primary;
  }

  private async metadataWriter(): Promise<MetadataWriter> {
    this.writer ??= new MetadataWriter(await this.primary);
    return this.writer;
  }

  async createOperation(input: CreateOperationInput): Promise<OperationInfo> {
    const grantee = normalizeGrantee(input.grantee);
    const agent = input.agent === undefined ? null : validateAgent(input.agent);
    const explicitId = input.operationId === undefined ? undefined : validateOperationId(input.operationId);
    const ttl = input.ttlSeconds ?? this.config.ttlSeconds;
    if (!Number.isSafeInteger(ttl) || ttl < 1 || ttl > this.config.ttlSeconds) {
      throw new InvalidInputError(`ttlSeconds must be a whole number from 1 to ${this.config.ttlSeconds}`);
    }
    const writer = await this.metadataWriter();
    if (explicitId !== undefined && (await this.readFallback(explicitId)) !== null) {
      throw new ConflictError(`operation ${explicitId} already exists`);
    }
    const started = this.now().getTime();
    for (let offset = 0; ; offset++) {
      const ms = started + offset;
      const operationId =
        explicitId ?? (agent !== null ? `${agent}_${ms}` : `op_${ms}_${randomBytes(4).toString("hex")}`);
      const createdAt = new Date(ms).toISOString();
      const expiresAt = new Date(ms + ttl * 1000).toISOString();
      const dataKey = newDataKey();
      const metadata: OperationMetadata = {
        version: 1,
        operationId,
        agent,
        grantee,
        createdAt,
        expiresAt,
        wrappedKey: wrapDataKey(dataKey, this.config.masterKeys, { operationId, grantee, expiresAt }),
        artifacts: [],
      };
      if (await writer.create(metadata)) return operationInfo(metadata);
      if (explicitId !== undefined) throw new ConflictError(`operation ${operationId} already exists`);
      // Generated id taken (same agent, same millisecond): DESIGN.md says try the next millisecond.
      if (offset > 1000) throw new ConflictError("could not allocate an operation id");
    }
  }

  async putArtifact(
    operationId: string,
    path: string,
    body: Readable | Uint8Array | string,
    options: PutArtifactOptions = {},
  ): Promise<ArtifactInfo> {
    validateOperationId(operationId);
    validateArtifactPath(path);
    const contentType = options.contentType?.trim() || "application/octet-stream";
    if (contentType.length > 255 || !CONTENT_TYPE.test(contentType)) {
      throw new InvalidInputError("contentType must be a media type like text/plain; charset=utf-8");
    }
    if (!(body instanceof Readable) && !(body instanceof Uint8Array) && typeof body !== "string") {
      throw new InvalidInputError("body must be a Readable, a Uint8Array or a string");
    }
    const cached = (await this.metadataWriter()).cached(operationId);
    const { metadata, fallback } = cached ? { metadata: cached, fallback: false } : await this.locate(operationId);
    if (fallback) {
      throw new ConflictError(`operation ${operationId} is still in the local fallback directory; migrate first`);
    }
    this.checkNotExpired(metadata);
    const flightKey = `${operationId}/${path}`;
    if (metadata.artifacts.some((a) => a.path === path) || this.inFlight.has(flightKey)) {
      destroyInput(body);
      throw new ConflictError(`artifact ${path} already exists in operation ${operationId}; artifacts are immutable`);
    }
    this.inFlight.add(flightKey);
    try {
      return await this.upload(metadata, path, body, contentType, options.signal);
    } finally {
      this.inFlight.delete(flightKey);
    }
  }

  private async upload(
    metadata: OperationMetadata,
    path: string,
    body: Readable | Uint8Array | string,
    contentType: string,
    signal: AbortSignal | undefined,
  ): Promise<ArtifactInfo> {
    const { operationId } = metadata;
    const backend = await this.backend();
    const key = artifactObjectKey(operationId, path);
    const chunkSize = DEFAULT_CHUNK_SIZE;
    const dataKey = this.unwrap(metadata);
    let size: number;
    let stored: { etag: string; size: number };
    const input = await this.readHead(body, chunkSize, signal);
    // Objects are written create-only, so of two writers racing for one path (two processes)
    // the first object stays and the other writer gets `conflict` before committing anything.
    const taken = () =>
      new ConflictError(`artifact ${path} is being uploaded by another writer to operation ${operationId}`);
    if (input.rest === undefined) {
      // One chunk: the one-shot cipher costs a fraction of a stream pipeline (small artifacts dominate).
      size = input.head.length;
      const object = encryptArtifact(input.head, { dataKey, operationId, path, chunkSize });
      try {
        stored = await backend.put(key, object, { ifAbsent: true });
      } catch (error) {
        if (!(error instanceof PreconditionFailedError) || !(await this.removeLeftover(backend, operationId, path))) {
          throw error instanceof PreconditionFailedError ? taken() : error;
        }
        stored = await backend.put(key, object, { ifAbsent: true }).catch((e: unknown) => {
          throw e instanceof PreconditionFailedError ? taken() : e;
        });
      }
    } else {
      const encrypt = createEncryptStream({ dataKey, operationId, path, chunkSize });
      pipeline(Readable.from(input.rest, { objectMode: false }), encrypt, () => {});
      try {
        stored = await backend.put(key, encrypt, { ifAbsent: true });
      } catch (error) {
        if (!(error instanceof PreconditionFailedError)) throw error;
        // A stream cannot be sent twice: clear a crash leftover so that the client's retry succeeds.
        if (await this.removeLeftover(backend, operationId, path)) {
          throw new ConflictError(
            `artifact ${path} had a leftover of an interrupted upload in operation ${operationId}; it was removed, retry the upload`,
          );
        }
        throw taken();
      }
      size = encrypt.plaintextBytes;
    }
    const expected = encryptedSize(size, chunkSize);
    if (stored.size !== expected) {
      await backend.delete([key]);
      throw new IntegrityError(`stored ${stored.size} bytes for ${path}, expected ${expected}`);
    }
    const entry: ArtifactEntry = {
      path,
      size,
      encryptedSize: expected,
      contentType,
      chunkSize,
      createdAt: this.now().toISOString(),
      etag: stored.etag,
    };
    const writer = await this.metadataWriter();
    try {
      await writer.update(operationId, (m) => {
        if (m.artifacts.some((a) => a.path === path)) {
          throw new ConflictError(`artifact ${path} already exists in operation ${operationId}; artifacts are immutable`);
        }
        m.artifacts.push(entry);
      });
    } catch (error) {
      // The operation vanished (deleted or swept) while we uploaded: leave no orphan behind.
      if (error instanceof NotFoundError) await backend.delete([key]).catch(() => {});
      throw error;
    }
    return artifactInfo(entry);
  }

  /**
   * An object at an artifact's key with no metadata entry is either another writer's upload
   * about to commit (seconds old) or the leftover of a crash between write and commit. Removes
   * it only in the second case (older than LEFTOVER_AGE_MS, still unreferenced); true if removed.
   */
  private async removeLeftover(backend: Backend, operationId: string, path: string): Promise<boolean> {
    const key = artifactObjectKey(operationId, path);
    const [object, current] = await Promise.all([backend.head(key), readMetadata(backend, operationId)]);
    if (current?.metadata.artifacts.some((a) => a.path === path)) {
      throw new ConflictError(`artifact ${path} already exists in operation ${operationId}; artifacts are immutable`);
    }
    if (object !== null && Date.now() - object.lastModified.getTime() < LEFTOVER_AGE_MS) return false;
    await backend.delete([key]);
    return true;
  }

  /**
   * Reads up to one chunk (+1 byte) of the body. `rest` is undefined when that was all of it;
   * otherwise it yields the same bytes again followed by the remainder, counted against maxBytes.
   */
  private async readHead(
    body: Readable | Uint8Array | string,
    chunkSize: number,
    signal: AbortSignal | undefined,
  ): Promise<{ head: Buffer; rest?: AsyncIterable<Buffer> }> {
    const maxBytes = this.config.maxBytes;
    const tooLarge = () => new TooLargeError(`artifact is larger than ARTIFACTS_MAX_BYTES (${maxBytes} bytes)`);
    if (!(body instanceof Readable)) {
      const bytes = typeof body === "string" ? Buffer.from(body) : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
      if (bytes.length > maxBytes) throw tooLarge();
      if (bytes.length <= chunkSize) return { head: bytes };
      return { head: Buffer.alloc(0), rest: slices(bytes, chunkSize) };
    }
    const iterator = (signal ? addAbortSignal(signal, body) : body)[Symbol.asyncIterator]() as AsyncIterator<
      Buffer | string
    >;
    const head: Buffer[] = [];
    let seen = 0;
    try {
      while (seen <= chunkSize) {
        const next = await iterator.next();
        if (next.done) return { head: Buffer.concat(head, seen) };
        const chunk = typeof next.value === "string" ? Buffer.from(next.value) : next.value;
        head.push(chunk);
        seen += chunk.length;
        if (seen > maxBytes) throw tooLarge();
      }
    } catch (error) {
      await iterator.return?.();
      throw error;
    }
    async function* rest(): AsyncGenerator<Buffer> {
      try {
        yield* head;
        for (;;) {
          const next = await iterator.next();
          if (next.done) return;
          const chunk = typeof next.value === "string" ? Buffer.from(next.value) : next.value;
          seen += chunk.length;
          if (seen > maxBytes) throw tooLarge();
          yield chunk;
        }
      } finally {
        await iterator.return?.();
      }
    }
    return { head: Buffer.alloc(0), rest: rest() };
  }

  async listArtifacts(operationId: string, options: ReadOptions) {
    validateOperationId(operationId);
    const { metadata } = await this.authorize(operationId, options.requester);
    return {
      operationId,
      grantee: metadata.grantee,
      expiresAt: metadata.expiresAt,
      artifacts: metadata.artifacts.map(artifactInfo).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)),
    };
  }

  async statArtifact(operationId: string, path: string, options: ReadOptions): Promise<ArtifactInfo> {
    validateOperationId(operationId);
    validateArtifactPath(path);
    const { metadata } = await this.authorize(operationId, options.requester);
    return artifactInfo(findEntry(metadata, path));
  }

  async getArtifact(operationId: string, path: string, options: GetArtifactOptions): Promise<GetArtifactResult> {
    validateOperationId(operationId);
    validateArtifactPath(path);
    const range = options.range;
    if (range !== undefined) {
      const endOk = range.end === undefined || (Number.isSafeInteger(range.end) && range.end >= range.start);
      if (!Number.isSafeInteger(range.start) || range.start < 0 || !endOk) {
        throw new InvalidInputError("range must have whole numbers 0 <= start <= end");
      }
    }
    const { backend, metadata } = await this.authorize(operationId, options.requester);
    const entry = findEntry(metadata, path);
    const info = artifactInfo(entry);
    const key = artifactObjectKey(operationId, path);
    // plaintextSize refuses an edited chunk size as `integrity` (encryptedSize would call it invalid input).
    if (plaintextSize(entry.encryptedSize, entry.chunkSize) !== entry.size) {
      throw new IntegrityError(`metadata sizes of ${path} do not agree`);
    }
    const dataKey = this.unwrap(metadata);

    if (range !== undefined) {
      const end = Math.min(range.end ?? entry.size - 1, entry.size - 1);
      if (entry.size === 0 || range.start >= entry.size) {
        throw new RangeNotSatisfiableError(`range starts beyond the end of ${path} (${entry.size} bytes)`, {
          details: { size: entry.size },
        });
      }
      const plan = planRange(entry.size, entry.chunkSize, range.start, end);
      const [head, header] = await Promise.all([
        backend.head(key),
        backend.getBytes(key, { start: 0, end: HEADER_BYTES - 1 }),
      ]);
      this.checkStored(path, entry, head);
      const parsed = parseHeader(header!.body);
      if (parsed.chunkSize !== entry.chunkSize) {
        throw new IntegrityError(`chunk size of ${path} does not match its metadata`);
      }
      const artifactKey = deriveArtifactKey(dataKey, parsed.salt, operationId, path);
      const source = await backend.getStream(key, { start: plan.objectStart, end: plan.objectEnd });
      if (source === null) throw new IntegrityError(`object of ${path} is missing`);
      const decrypt = createRangeDecryptStream({
        artifactKey,
        chunkSize: entry.chunkSize,
        plainSize: entry.size,
        firstChunk: plan.firstChunk,
        lastChunk: plan.lastChunk,
        skip: plan.skip,
        take: plan.take,
      });
      return { info, body: pipeline(source, decrypt, () => {}), range: { start: range.start, end } };
    }

    if (entry.size <= entry.chunkSize) {
      // One chunk: fetch and verify it whole before releasing a byte.
      const object = await backend.getBytes(key);
      this.checkStored(path, entry, object && { size: object.body.length });
      // A one-chunk object decrypts the same under any C >= its length, so the header's C (not
      // covered by the tags) must match what metadata recorded, and so must the plaintext size.
      if (parseHeader(object!.body.subarray(0, HEADER_BYTES)).chunkSize !== entry.chunkSize) {
        throw new IntegrityError(`chunk size of ${path} does not match its metadata`);
      }
      const plaintext = decryptArtifact(object!.body, { dataKey, operationId, path });
      if (plaintext.length !== entry.size) {
        throw new IntegrityError(`${path} decrypted to ${plaintext.length} bytes, metadata says ${entry.size}`);
      }
      return { info, body: Readable.from([plaintext], { objectMode: false }) };
    }
    const [head, source] = await Promise.all([backend.head(key), backend.getStream(key)]);
    try {
      this.checkStored(path, entry, head);
    } catch (error) {
      source?.destroy();
      throw error;
    }
    const decrypt = createDecryptStream({
      dataKey,
      operationId,
      path,
      expectedChunkSize: entry.chunkSize,
      expectedPlainSize: entry.size,
    });
    return { info, body: pipeline(source!, decrypt, () => {}) };
  }

  async getOperation(operationId: string): Promise<OperationInfo> {
    validateOperationId(operationId);
    return operationInfo((await this.locate(operationId)).metadata);
  }

  async deleteOperation(operationId: string): Promise<void> {
    validateOperationId(operationId);
    const { backend, fallback } = await this.locate(operationId);
    if (fallback) {
      throw new ConflictError(`operation ${operationId} is still in the local fallback directory; migrate first`);
    }
    // metadata.json first (the commit point), then every object under the operation.
    await backend.delete([metadataKey(operationId)]);
    this.writer?.forget(operationId);
    const keys: string[] = [];
    for await (const object of backend.list(operationPrefix(operationId))) keys.push(object.key);
    await backend.delete(keys);
  }

  async *listOperations(): AsyncIterable<OperationInfo> {
    const seen = new Set<string>();
    for (const source of [this.primary, this.fallback]) {
      if (source === undefined) continue;
      const backend = await source;
      for await (const prefix of backend.listPrefixes(OPERATIONS_PREFIX)) {
        const operationId = prefix.slice(OPERATIONS_PREFIX.length).replace(/\/$/, "");
        if (seen.has(operationId) || !isOperationId(operationId)) continue;
        const read = await readMetadata(backend, operationId).catch((error: unknown) => {
          if (error instanceof IntegrityError) return null; // malformed: not listable, the operator sees it in doctor/usage
          throw error;
        });
        if (read === null) continue;
        seen.add(operationId);
        yield operationInfo(read.metadata);
      }
    }
  }

  async sweepExpired(options: SweepOptions = {}): Promise<SweepResult> {
    const now = options.now ?? this.now();
    const backend = await this.backend();
    const result: SweepResult = { deletedOperations: 0, deletedObjects: 0, deletedTemporary: 0 };
    let scanned = 0;
    // One flat listing of operations/ (keys sorted, so each operation's objects are adjacent):
    // 1 list request per 1000 objects instead of one per operation (Class A on R2).
    let group: { operationId: string; objects: ObjectInfo[] } | undefined;
    const finish = async () => {
      if (group === undefined) return;
      await this.sweepOperation(backend, group.operationId, group.objects, now, result);
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

  /** Expired: metadata.json first, then the rest. Live: only objects no entry references, once 24 h old. */
  private async sweepOperation(
    backend: Backend,
    operationId: string,
    objects: ObjectInfo[],
    now: Date,
    result: SweepResult,
  ): Promise<void> {
    const metaKey = metadataKey(operationId);
    let read: Awaited<ReturnType<typeof readMetadata>> = null;
    if (isOperationId(operationId) && objects.some((o) => o.key === metaKey)) {
      try {
        read = await readMetadata(backend, operationId);
      } catch (error) {
        if (error instanceof IntegrityError) return; // malformed metadata: leave it for a human (doctor reports it)
        throw error;
      }
    }
    if (read !== null && now.getTime() >= Date.parse(read.metadata.expiresAt)) {
      await backend.delete([metaKey]);
      this.writer?.forget(operationId);
      await backend.delete(objects.filter((o) => o.key !== metaKey).map((o) => o.key));
      result.deletedOperations++;
      result.deletedObjects += objects.length;
      return;
    }
    const referenced = new Set<string>();
    if (read !== null) {
      referenced.add(metaKey);
      for (const a of read.metadata.artifacts) referenced.add(artifactObjectKey(operationId, a.path));
    }
    const cutoff = now.getTime() - ORPHAN_GRACE_MS;
    const orphans = objects.filter((o) => !referenced.has(o.key) && o.lastModified.getTime() <= cutoff).map((o) => o.key);
    await backend.delete(orphans);
    result.deletedObjects += orphans.length;
  }

  async rewrapOperation(operationId: string): Promise<boolean> {
    validateOperationId(operationId);
    const { fallback } = await this.locate(operationId);
    if (fallback) throw new ConflictError(`operation ${operationId} is still in the local fallback directory; migrate first`);
    const { masterKeys } = this.config;
    let changed = false;
    const writer = await this.metadataWriter();
    await writer.update(operationId, (m) => {
      changed = false;
      if (m.wrappedKey.kid === masterKeys.currentKid) return;
      const context = { operationId: m.operationId, grantee: m.grantee, expiresAt: m.expiresAt };
      const dataKey = unwrapDataKey(m.wrappedKey, masterKeys, context);
      m.wrappedKey = wrapDataKey(dataKey, masterKeys, context);
      changed = true;
    });
    return changed;
  }

  async close(): Promise<void> {
    const backends = await Promise.allSettled([this.primary, ...(this.fallback ? [this.fallback] : [])]);
    await Promise.all(backends.map((b) => (b.status === "fulfilled" ? b.value.close() : undefined)));
  }

  /** Finds an operation in primary storage, else in the migration fallback; `not_found` otherwise. */
  private async locate(operationId: string): Promise<Located> {
    const backend = await this.backend();
    const read = await readMetadata(backend, operationId);
    if (read !== null) return { backend, metadata: read.metadata, fallback: false };
    const fallback = await this.readFallback(operationId);
    if (fallback !== null) return fallback;
    throw new NotFoundError(`operation ${operationId} not found`);
  }

  private async readFallback(operationId: string): Promise<Located | null> {
    if (this.fallback === undefined) return null;
    const backend = await this.fallback;
    const read = await readMetadata(backend, operationId);
    return read === null ? null : { backend, metadata: read.metadata, fallback: true };
  }

  /** Order of checks: exists (404), grantee (403), expiry (410). */
  private async authorize(operationId: string, requester: string): Promise<Located> {
    const located = await this.locate(operationId);
    if (typeof requester !== "string" || requester.toLowerCase() !== located.metadata.grantee) {
      throw new ForbiddenError(`only the grantee of operation ${operationId} may read it`);
    }
    this.checkNotExpired(located.metadata);
    return located;
  }

  private checkNotExpired(metadata: OperationMetadata): void {
    if (this.now().getTime() >= Date.parse(metadata.expiresAt)) {
      throw new ExpiredError(`operation ${metadata.operationId} expired at ${metadata.expiresAt}`);
    }
  }

  /**
   * The stored length must be what the entry committed. (ETags are not compared: a migration or
   * a restore from backup rewrites identical bytes under new ETags; the tags catch any change.)
   */
  private checkStored(path: string, entry: ArtifactEntry, stored: { size: number } | null | undefined): void {
    if (stored === null || stored === undefined) throw new IntegrityError(`object of ${path} is missing`);
    if (stored.size !== entry.encryptedSize) {
      throw new IntegrityError(`object of ${path} has ${stored.size} bytes, metadata says ${entry.encryptedSize}`);
    }
  }

  private unwrap(metadata: OperationMetadata): Buffer {
    return unwrapDataKey(metadata.wrappedKey, this.config.masterKeys, {
      operationId: metadata.operationId,
      grantee: metadata.grantee,
      expiresAt: metadata.expiresAt,
    });
  }
}

function findEntry(metadata: OperationMetadata, path: string): ArtifactEntry {
  const entry = metadata.artifacts.find((a) => a.path === path);
  if (entry === undefined) throw new NotFoundError(`artifact ${path} not found in operation ${metadata.operationId}`);
  return entry;
}

function artifactInfo(entry: ArtifactEntry): ArtifactInfo {
  const { path, size, encryptedSize, contentType, chunkSize, createdAt, etag } = entry;
  return { path, size, encryptedSize, contentType, chunkSize, createdAt, etag };
}

function operationInfo(m: OperationMetadata): OperationInfo {
  return {
    operationId: m.operationId,
    agent: m.agent,
    grantee: m.grantee,
    createdAt: m.createdAt,
    expiresAt: m.expiresAt,
    artifactCount: m.artifacts.length,
    totalBytes: m.artifacts.reduce((sum, a) => sum + a.size, 0),
    encryptedBytes: m.artifacts.reduce((sum, a) => sum + a.encryptedSize, 0),
  };
}

function destroyInput(body: Readable | Uint8Array | string): void {
  if (body instanceof Readable) body.destroy();
}

async function* slices(bytes: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let offset = 0; offset < bytes.length; offset += size) yield bytes.subarray(offset, offset + size);
}
