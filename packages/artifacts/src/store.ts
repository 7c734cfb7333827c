import { randomBytes } from "node:crypto";
import type { ArtifactsConfig } from "./config-types.js";
import { loadConfig } from "./config.js";
import { OPERATIONS_PREFIX } from "./constants.js";
import { newDataKey, unwrapDataKey, wrapDataKey } from "./crypto.js";
import { ConfigError, ConflictError, ExpiredError, IntegrityError, InvalidInputError, NotFoundError, StorageUnavailableError, UnsupportedLayoutError } from "./errors.js";
import { openBackend } from "./backends/index.js";
import { observeBackend } from "./backends/observed.js";
import type { Backend } from "./backends/types.js";
import {
  IndexPacer,
  type IndexRead,
  listEntries,
  type NamedEntry,
  newIncarnation,
  prefetchNames,
  type PrefetchedNames,
  readIndex,
} from "./layout-v2.js";
import { type ArtifactEntry, metadataKey, type MetadataV2, MetadataWriter, type OperationMetadata, operationPrefix, readMetadata } from "./metadata.js";
import { type DeliveredObject, type DeliveryTicket, issueTicket, openDelivery } from "./store/delivery.js";
import { checkRange, openPlaintext } from "./store/read.js";
import { listTail, type Seen, SeenOperations } from "./store/seen.js";
import { sweep } from "./store/sweep.js";
import type {
  ArtifactInfo,
  ArtifactStore,
  CreateOperationInput,
  GetArtifactOptions,
  GetArtifactResult,
  OperationInfo,
  PutArtifactOptions,
  ReadOptions,
  StoreOptions,
  SweepOptions,
  SweepResult,
  TicketOptions,
  TicketListing,
} from "./store/types.js";
import { type Body, checkUploadInput, destroyInput, writeArtifact } from "./store/upload.js";
import { artifactInfo, findEntry, operationInfo, sortedEntries } from "./store/views.js";
import { isOperationId, normalizeGrantee, validateAgent, validateArtifactPath, validateOperationId } from "./validate.js";

export type * from "./store/types.js";
export { ORPHAN_GRACE_MS } from "./store/sweep.js";
export { DELIVERY_ROUTE, DELIVERY_URL_MAX_SECONDS, type DeliveredObject, type DeliveryTicket } from "./store/delivery.js";

/** What a reader gets for an operation that is missing or not theirs: the same answer, byte for byte. */
const notShared = (operationId: string) => new NotFoundError(`operation ${operationId} not found or not shared with this wallet`);
/** Writes to an operation not migrated yet out of the read-only fallback directory. */
const inFallback = (operationId: string) =>
  new ConflictError(`operation ${operationId} is still in the local fallback directory; migrate first`);

/**
 * Opens the store for a configuration (default: `loadConfig(undefined, { create: true })`, which on
 * local storage creates the directory and a development master key). The storage client is created
 * lazily: `@aws-sdk/*` is loaded only when R2 or S3 is configured. A configuration loaded without
 * `create` whose master key is missing is refused with a `config` error.
 */
export function createArtifactStore(config: ArtifactsConfig = loadConfig(undefined, { create: true }), options: StoreOptions = {}): ArtifactStore {
  if (config.masterKeySource.kind === "missing") {
    throw new ConfigError(
      `no master key: ${config.masterKeySource.path} does not exist and ARTIFACTS_MASTER_KEY(S) is unset; check ARTIFACTS_LOCAL_DIR names the directory that holds it, or set ARTIFACTS_MASTER_KEYS`,
      { details: { problems: [{ variable: "ARTIFACTS_MASTER_KEY", message: `no key variable and no ${config.masterKeySource.path}` }] } },
    );
  }
  return new Store(config, options);
}

/** What follows finding an operation: a read of one artifact, or a listing of all. */
type Then = "read" | "listing";

interface Located {
  backend: Backend;
  metadata: OperationMetadata;
  /** The operation lives in the read-only migration fallback. */
  fallback: boolean;
  /** Layout 2: index.json, read beside metadata.json. */
  index?: Promise<IndexRead | null>;
  /** Layout 2, seen before by this process: the LIST after the index, started beside both. */
  prefetched?: PrefetchedNames;
}

class Store implements ArtifactStore {
  readonly kind: "local" | "s3" | "r2";
  private readonly primary: Promise<Backend>;
  private readonly fallback: Promise<Backend> | undefined;
  private writer: MetadataWriter | undefined;
  private readonly pacer = new IndexPacer();
  /**
   * Operations last seen in layout 2 (bounded), with their incarnation and index `covers` (and on
   * S3/R2 their metadata.json and index.json): a read of one asks for what it needs at once.
   */
  private readonly seen = new SeenOperations();
  /** Layout 2 entries this process committed, per operation (bounded): its index writes need no GETs for them. */
  private readonly commits = new Map<string, { incarnation: string; entries: Map<string, NamedEntry> }>();
  private readonly createLayout: 1 | 2;
  private readonly now: () => Date;
  /** `<operationId>/<path>` uploads in flight in this process: a second one is `conflict`. */
  private readonly inFlight = new Set<string>();

  constructor(
    readonly config: ArtifactsConfig,
    options: StoreOptions,
  ) {
    this.kind = config.storage.kind;
    this.now = options.now ?? (() => new Date());
    this.createLayout = options.createLayout ?? 2;
    const timeouts = { timeoutMs: config.s3TimeoutMs, connectTimeoutMs: config.s3ConnectTimeoutMs };
    const observe = options.onStorageCall;
    this.primary = openBackend(config.storage, timeouts).then((b) => (observe === undefined ? b : observeBackend(b, observe)));
    this.primary.catch(() => {}); // surfaced by the first call that needs it
    if (config.fallbackLocalDir !== undefined) {
      const fallback = openBackend({ kind: "local", dir: config.fallbackLocalDir }, timeouts);
      fallback.catch(() => {});
      this.fallback = fallback;
    }
  }

  get stats() {
    return { metadataWrites: this.writer?.writes ?? 0, indexWrites: this.pacer.writes };
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
      // A generated id moves on by a millisecond; an explicit one, asked again, is created now.
      const ms = explicitId === undefined ? started + offset : this.now().getTime();
      const operationId =
        explicitId ?? (agent !== null ? `${agent}_${ms}` : `op_${ms}_${randomBytes(4).toString("hex")}`);
      const createdAt = new Date(ms).toISOString();
      const expiresAt = new Date(ms + ttl * 1000).toISOString();
      const dataKey = newDataKey();
      const fields = {
        operationId,
        agent,
        grantee,
        createdAt,
        expiresAt,
        wrappedKey: wrapDataKey(dataKey, this.config.masterKeys, { operationId, grantee, expiresAt }),
      };
      const metadata: OperationMetadata =
        this.createLayout === 1 ? { version: 1, ...fields, artifacts: [] } : { version: 2, incarnation: newIncarnation(), ...fields };
      const created = await writer.create(metadata);
      if (created === "created") return operationInfo(metadata, []);
      if (explicitId !== undefined) {
        if (created === "taken") throw new ConflictError(`operation ${operationId} already exists`);
        // The id's key was written within the last second (R2 allows one write a second per key):
        // perhaps a delete of this very id just now. Ask again once the second is over.
        if (offset >= 3) throw new StorageUnavailableError(`operation ${operationId} was written too recently; retry shortly`);
        await new Promise((resolve) => setTimeout(resolve, 1100));
        continue;
      }
      // Generated id taken or being written (same agent, same millisecond): try the next millisecond.
      if (offset > 1000) throw new ConflictError("could not allocate an operation id");
    }
  }

  async putArtifact(operationId: string, path: string, body: Body, options: PutArtifactOptions = {}): Promise<ArtifactInfo> {
    validateOperationId(operationId);
    validateArtifactPath(path);
    const contentType = checkUploadInput(body, options.contentType);
    const writer = await this.metadataWriter();
    const cached = writer.cached(operationId);
    const { metadata, fallback } = cached ? { metadata: cached, fallback: false } : await this.locate(operationId);
    if (fallback) throw inFallback(operationId);
    this.checkNotExpired(metadata);
    const flightKey = `${operationId}/${path}`;
    // Layout 2 finds out at the object's create-only write (no listing per upload).
    if ((metadata.version === 1 && metadata.artifacts.some((a) => a.path === path)) || this.inFlight.has(flightKey)) {
      destroyInput(body);
      throw new ConflictError(`artifact ${path} already exists in operation ${operationId}; artifacts are immutable`);
    }
    this.inFlight.add(flightKey);
    try {
      const backend = await this.primary;
      const context = {
        backend,
        writer,
        entries: async () => this.entries({ backend, metadata: (await this.locate(operationId)).metadata, fallback: false }),
        committed: metadata.version === 2 ? (entry: NamedEntry) => this.compactAfterCommit(backend, metadata, entry) : undefined,
        dataKey: this.unwrap(metadata),
        maxBytes: this.config.maxBytes,
        now: this.now,
        signal: options.signal,
      };
      return artifactInfo(await writeArtifact(context, metadata, path, body, contentType));
    } finally {
      this.inFlight.delete(flightKey);
    }
  }

  async listArtifacts(operationId: string, options: ReadOptions) {
    validateOperationId(operationId);
    const located = await this.authorize(operationId, options, "listing");
    const { metadata } = located;
    return {
      operationId,
      grantee: metadata.grantee,
      expiresAt: metadata.expiresAt,
      artifacts: sortedEntries(await this.entries(located)).map(artifactInfo),
    };
  }

  async statArtifact(operationId: string, path: string, options: ReadOptions): Promise<ArtifactInfo> {
    validateOperationId(operationId);
    validateArtifactPath(path);
    return artifactInfo(await this.readEntry(await this.authorize(operationId, options), path));
  }

  async getArtifact(operationId: string, path: string, options: GetArtifactOptions): Promise<GetArtifactResult> {
    validateOperationId(operationId);
    validateArtifactPath(path);
    checkRange(options.range);
    const located = await this.authorize(operationId, options);
    const { backend, metadata } = located;
    const entry = await this.readEntry(located, path);
    const opened = await openPlaintext(backend, operationId, entry, this.unwrap(metadata), options.range).catch(async (error: unknown) => {
      // Deleted or swept (here or on another replica) since it was authorized: say that (404/410), not integrity.
      if (error instanceof IntegrityError && error.details?.missing === true) await this.authorize(operationId, options);
      throw error;
    });
    return { info: artifactInfo(entry), ...opened };
  }

  async deliveryTicket(operationId: string, path: string, options: TicketOptions): Promise<DeliveryTicket> {
    validateOperationId(operationId);
    validateArtifactPath(path);
    const located = await this.authorize(operationId, options);
    const { backend, metadata } = located;
    const entry = await this.readEntry(located, path);
    return issueTicket(this.ticketContext(options), backend, operationId, metadata.expiresAt, entry, this.unwrap(metadata));
  }

  async deliveryTickets(operationId: string, options: TicketOptions): Promise<TicketListing> {
    validateOperationId(operationId);
    const located = await this.authorize(operationId, options, "listing");
    const { backend, metadata } = located;
    const ctx = this.ticketContext(options);
    const dataKey = this.unwrap(metadata);
    const entries = sortedEntries(await this.entries(located));
    const artifacts: TicketListing["artifacts"] = [];
    // One artifact that fails verification (its object missing or cut) keeps its error; the rest are served.
    const ticketOrError = (entry: ArtifactEntry): Promise<TicketListing["artifacts"][number]> =>
      issueTicket(ctx, backend, operationId, metadata.expiresAt, entry, dataKey).then(
        (ticket) => ({ ...artifactInfo(entry), ticket }),
        (error: unknown) => {
          if (!(error instanceof IntegrityError)) throw error;
          return { ...artifactInfo(entry), error: { code: error.code, message: error.message } };
        },
      );
    // A few at a time: each ticket costs one small read of storage (the 41-byte header).
    for (let i = 0; i < entries.length; i += 8) artifacts.push(...(await Promise.all(entries.slice(i, i + 8).map(ticketOrError))));
    // Objects missing because the operation was deleted or swept meanwhile: answer that (404/410), not a list of errors.
    if (artifacts.some((a) => a.error !== undefined)) await this.authorize(operationId, options);
    return { operationId, grantee: metadata.grantee, expiresAt: metadata.expiresAt, artifacts };
  }

  async openDelivery(operationId: string, path: string, query: string): Promise<DeliveredObject> {
    const local: Backend[] = [];
    for (const source of [this.primary, this.fallback]) {
      const backend = source === undefined ? undefined : await source;
      if (backend?.kind === "local") local.push(backend);
    }
    return openDelivery(this.config.masterKeys, this.now(), local, operationId, path, query);
  }

  async getOperation(operationId: string): Promise<OperationInfo> {
    validateOperationId(operationId);
    const located = await this.locate(operationId, "listing");
    return operationInfo(located.metadata, await this.entries(located));
  }

  async deleteOperation(operationId: string): Promise<void> {
    validateOperationId(operationId);
    const { backend, fallback } = await this.locate(operationId);
    if (fallback) throw inFallback(operationId);
    // metadata.json first (the commit point), then every object under the operation.
    await backend.delete([metadataKey(operationId)]);
    this.writer?.forget(operationId);
    this.commits.delete(operationId);
    this.seen.forget(operationId);
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
          throw error; // unsupported_layout included: never a listing that silently leaves operations out
        });
        if (read === null) continue;
        seen.add(operationId);
        const located = { backend, metadata: read.metadata, fallback: backend !== (await this.primary) };
        yield operationInfo(read.metadata, await this.entries(located));
      }
    }
  }

  async sweepExpired(options: SweepOptions = {}): Promise<SweepResult> {
    return sweep(await this.primary, { writer: this.writer, pacer: this.pacer }, options.now ?? this.now(), options);
  }

  async rewrapOperation(operationId: string): Promise<boolean> {
    validateOperationId(operationId);
    const { fallback } = await this.locate(operationId);
    if (fallback) throw inFallback(operationId);
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

  /**
   * Finds an operation in primary storage, else in the migration fallback; `not_found` otherwise.
   * `then`: what follows (layout 2): a read of one artifact starts index.json early, a listing
   * also the LIST after it.
   */
  private async locate(operationId: string, then?: Then): Promise<Located> {
    const backend = await this.primary;
    const found = await this.readFrom(backend, operationId, false, then);
    if (found !== null) return found;
    const fallback = await this.readFallback(operationId, then);
    if (fallback !== null) return fallback;
    throw new NotFoundError(`operation ${operationId} not found`);
  }

  private async readFallback(operationId: string, then?: Then): Promise<Located | null> {
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
    // grantee's listing, then its downloads); after it otherwise, so a layout 1 operation costs no index read.
    let index = hint === undefined ? undefined : readIndex(backend, operationId);
    index?.catch(() => {}); // awaited (and its error surfaced) by the listing or read that follows
    // A read of one artifact usually finds it in the index: no LIST (Class A on R2) for it.
    const prefetched = hint === undefined || then !== "listing" ? undefined : prefetchNames(backend, operationId, hint);
    const read = await readMetadata(backend, operationId);
    if (read === null) return null;
    const { metadata } = read;
    if (metadata.version !== 2) {
      this.seen.forget(operationId);
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
  private async entries(located: Located): Promise<ArtifactEntry[]> {
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
  private async compactAfterCommit(backend: Backend, metadata: MetadataV2, entry: NamedEntry): Promise<void> {
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
  private async readEntry(located: Located, path: string): Promise<ArtifactEntry> {
    const { metadata } = located;
    return this.findEntry(located, path).catch(async (error: unknown) => {
      if (!(error instanceof NotFoundError) || metadata.version !== 2) throw error;
      const now = await this.locate(metadata.operationId).catch((e: unknown) => {
        throw e instanceof NotFoundError ? notShared(metadata.operationId) : e;
      });
      if (now.metadata.version !== 2 || now.metadata.incarnation !== metadata.incarnation) throw notShared(metadata.operationId);
      this.checkNotExpired(now.metadata);
      throw error;
    });
  }

  /**
   * A read by `requester`: only the grantee learns that the operation exists. Anyone else gets
   * exactly the answer of a missing operation (no existence oracle); the grantee then gets 410
   * once it expired.
   */
  private async authorize(operationId: string, { requester, onGrantee }: ReadOptions, then: Then = "read"): Promise<Located> {
    const isGrantee = (grantee: string | undefined) => typeof requester === "string" && requester.toLowerCase() === grantee;
    const located = await this.locate(operationId, then).catch(async (error: unknown) => {
      if (error instanceof NotFoundError) throw notShared(operationId);
      if (error instanceof UnsupportedLayoutError) {
        // A newer layout: only its grantee learns that it exists (and that this release cannot read it).
        if (!isGrantee(error.grantee)) throw notShared(operationId);
        await onGrantee?.();
      }
      throw error;
    });
    if (!isGrantee(located.metadata.grantee)) throw notShared(operationId);
    await onGrantee?.();
    this.checkNotExpired(located.metadata);
    return located;
  }

  private ticketContext(options: TicketOptions) {
    return { masterKeys: this.config.masterKeys, now: this.now(), localBaseUrl: options.localBaseUrl ?? this.config.audience };
  }

  private checkNotExpired(metadata: OperationMetadata): void {
    if (this.now().getTime() >= Date.parse(metadata.expiresAt)) {
      throw new ExpiredError(`operation ${metadata.operationId} expired at ${metadata.expiresAt}`);
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
