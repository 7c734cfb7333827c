import { randomBytes } from "node:crypto";
import type { ArtifactsConfig } from "./config-types.js";
import { loadConfig } from "./config.js";
import { OPERATIONS_PREFIX } from "./constants.js";
import { newDataKey, unwrapDataKey, wrapDataKey } from "./crypto.js";
import { ConfigError, ConflictError, IntegrityError, InvalidInputError, NotFoundError, StorageUnavailableError, UnsupportedLayoutError } from "./errors.js";
import { openBackend } from "./backends/index.js";
import { observeBackend } from "./backends/observed.js";
import type { Backend } from "./backends/types.js";
import { type NamedEntry, newIncarnation } from "./layout-v2.js";
import { type ArtifactEntry, metadataKey, MetadataWriter, type OperationMetadata, operationPrefix, readMetadata } from "./metadata.js";
import { type DeliveredObject, type DeliveryTicket, issueTicket, openDelivery } from "./store/delivery.js";
import { checkRange, openPlaintext } from "./store/read.js";
import { checkNotExpired, type Located, notShared, Operations, type Then } from "./store/locate.js";
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
import { artifactInfo, operationInfo, sortedEntries } from "./store/views.js";
import { isOperationId, normalizeGrantee, validateAgent, validateArtifactPath, validateOperationId } from "./validate.js";

export type * from "./store/types.js";
export { ORPHAN_GRACE_MS } from "./store/sweep.js";
export { DELIVERY_ROUTE, DELIVERY_URL_MAX_SECONDS, type DeliveredObject, type DeliveryTicket } from "./store/delivery.js";

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

class Store implements ArtifactStore {
  readonly kind: "local" | "s3" | "r2";
  private readonly primary: Promise<Backend>;
  private readonly fallback: Promise<Backend> | undefined;
  private writer: MetadataWriter | undefined;
  /** Finds operations and reads their entries. */
  private readonly operations: Operations;
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
    this.operations = new Operations(this.primary, this.fallback, this.now);
  }

  get stats() {
    return { metadataWrites: this.writer?.writes ?? 0, indexWrites: this.operations.pacer.writes };
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
    if (explicitId !== undefined && (await this.operations.readFallback(explicitId)) !== null) {
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
    const { metadata, fallback } = cached ? { metadata: cached, fallback: false } : await this.operations.locate(operationId);
    if (fallback) throw inFallback(operationId);
    checkNotExpired(metadata, this.now());
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
        entries: async () => this.operations.entries({ backend, metadata: (await this.operations.locate(operationId)).metadata, fallback: false }),
        committed: metadata.version === 2 ? (entry: NamedEntry) => this.operations.compactAfterCommit(backend, metadata, entry) : undefined,
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
      artifacts: sortedEntries(await this.operations.entries(located)).map(artifactInfo),
    };
  }

  async statArtifact(operationId: string, path: string, options: ReadOptions): Promise<ArtifactInfo> {
    validateOperationId(operationId);
    validateArtifactPath(path);
    return artifactInfo(await this.operations.readEntry(await this.authorize(operationId, options), path));
  }

  async getArtifact(operationId: string, path: string, options: GetArtifactOptions): Promise<GetArtifactResult> {
    validateOperationId(operationId);
    validateArtifactPath(path);
    checkRange(options.range);
    const located = await this.authorize(operationId, options);
    const { backend, metadata } = located;
    const entry = await this.operations.readEntry(located, path);
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
    const entry = await this.operations.readEntry(located, path);
    return issueTicket(this.ticketContext(options), backend, operationId, metadata.expiresAt, entry, this.unwrap(metadata));
  }

  async deliveryTickets(operationId: string, options: TicketOptions): Promise<TicketListing> {
    validateOperationId(operationId);
    const located = await this.authorize(operationId, options, "listing");
    const { backend, metadata } = located;
    const ctx = this.ticketContext(options);
    const dataKey = this.unwrap(metadata);
    const entries = sortedEntries(await this.operations.entries(located));
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
    const located = await this.operations.locate(operationId, "listing");
    return operationInfo(located.metadata, await this.operations.entries(located));
  }

  async deleteOperation(operationId: string): Promise<void> {
    validateOperationId(operationId);
    const { backend, fallback } = await this.operations.locate(operationId);
    if (fallback) throw inFallback(operationId);
    // metadata.json first (the commit point), then every object under the operation.
    await backend.delete([metadataKey(operationId)]);
    this.writer?.forget(operationId);
    this.operations.forget(operationId);
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
        yield operationInfo(read.metadata, await this.operations.entries(located));
      }
    }
  }

  async sweepExpired(options: SweepOptions = {}): Promise<SweepResult> {
    return sweep(await this.primary, { writer: this.writer, pacer: this.operations.pacer }, options.now ?? this.now(), options);
  }

  async rewrapOperation(operationId: string): Promise<boolean> {
    validateOperationId(operationId);
    const { fallback } = await this.operations.locate(operationId);
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
   * A read by `requester`: only the grantee learns that the operation exists. Anyone else gets
   * exactly the answer of a missing operation (no existence oracle); the grantee then gets 410
   * once it expired.
   */
  private async authorize(operationId: string, { requester, onGrantee }: ReadOptions, then: Then = "read"): Promise<Located> {
    const isGrantee = (grantee: string | undefined) => typeof requester === "string" && requester.toLowerCase() === grantee;
    const located = await this.operations.locate(operationId, then).catch(async (error: unknown) => {
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
    checkNotExpired(located.metadata, this.now());
    return located;
  }

  private ticketContext(options: TicketOptions) {
    return { masterKeys: this.config.masterKeys, now: this.now(), localBaseUrl: options.localBaseUrl ?? this.config.audience };
  }

  private unwrap(metadata: OperationMetadata): Buffer {
    return unwrapDataKey(metadata.wrappedKey, this.config.masterKeys, {
      operationId: metadata.operationId,
      grantee: metadata.grantee,
      expiresAt: metadata.expiresAt,
    });
  }
}
