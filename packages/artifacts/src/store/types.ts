import type { Readable } from "node:stream";
import type { StorageObserver } from "../backends/observed.js";
import type { NotSupported } from "../backends/types.js";
import type { TicketFailure } from "../client/listing.js";
import type { ArtifactsConfig } from "../config-types.js";
import type { ArtifactEntry } from "../metadata.js";
import type { DeliveredObject, DeliveryTicket } from "./delivery.js";

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
  /** Storage layout of the operation (docs/format.md#layouts): 2 for new operations, 1 for those written by earlier releases. */
  layout: 1 | 2;
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
  /**
   * Called once `requester` is found to be the operation's grantee, before the expiry check and
   * any other read; what it throws is the read's answer. The server spends the signature's nonce
   * here, so only the grantee's signatures are spent. A read may call it more than once.
   */
  onGrantee?: () => Promise<void>;
}

export interface TicketOptions extends ReadOptions {
  /**
   * Base of local delivery URLs: the server's public origin and prefix. Default `ARTIFACTS_AUDIENCE`.
   * Only local storage needs it (R2/S3 tickets carry presigned URLs of the bucket).
   */
  localBaseUrl?: string;
}

/** An operation's listing with a delivery ticket per artifact. */
export interface TicketListing {
  operationId: string;
  grantee: string;
  expiresAt: string;
  /** Each with its ticket, or the `integrity` error that kept it from having one (stored object missing, sizes disagree). */
  artifacts: (ArtifactInfo & ({ ticket: DeliveryTicket; error?: undefined } | { ticket?: undefined; error: TicketFailure }))[];
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
  /** Temp files and incomplete uploads removed; `"not_supported"` when the endpoint cannot list uploads (HTTP 501). */
  deletedTemporary: number | NotSupported;
  /** What the listing showed, counted on the way (no extra request): the server's storage gauges. */
  usage: StoredUsage;
}

/** The bucket as one sweep saw it under operations/. */
export interface StoredUsage {
  /** Bytes of every object the sweep left (encrypted artifacts, metadata, orphans). */
  storedBytes: number;
  /** Operations with a readable metadata.json the sweep left (not expired). */
  operations: number;
  /** Artifacts those operations list. */
  artifacts: number;
  /** Expired operations the sweep found waiting for it (and deleted). */
  expiredOperations: number;
  /** Objects no readable metadata.json references, as found (the sweep deletes those older than 24 h). */
  orphanObjects: number;
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
  /**
   * Layout of operations this store creates (default 2). Layout 1 is kept only so tests can make
   * the operations an earlier release wrote; both are read and written whatever this says.
   */
  createLayout?: 1 | 2;
  /** Told of every call to the primary storage and its outcome (the server's storage metrics). */
  onStorageCall?: StorageObserver;
}

export interface ArtifactStore {
  readonly config: ArtifactsConfig;
  readonly kind: "local" | "s3" | "r2";
  /** Counters for tests and metrics. */
  readonly stats: { readonly metadataWrites: number; readonly indexWrites: number };
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
  /** A delivery ticket for one artifact, after the checks of a download (docs/http-api.md#direct-delivery). */
  deliveryTicket(operationId: string, path: string, options: TicketOptions): Promise<DeliveryTicket>;
  /**
   * The listing with a ticket per artifact (one signed request for all of them). An artifact whose
   * own ticket fails verification carries its `integrity` error instead; the others are served.
   */
  deliveryTickets(operationId: string, options: TicketOptions): Promise<TicketListing>;
  /** Checks a local delivery URL (raw id, path and query); `forbidden` for anything bad, expired or unknown. */
  openDelivery(operationId: string, path: string, query: string): Promise<DeliveredObject>;
  getOperation(operationId: string): Promise<OperationInfo>;
  deleteOperation(operationId: string): Promise<void>;
  listOperations(): AsyncIterable<OperationInfo>;
  sweepExpired(options?: SweepOptions): Promise<SweepResult>;
  rewrapOperation(operationId: string): Promise<boolean>;
  close(): Promise<void>;
}
