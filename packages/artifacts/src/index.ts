// The SDK's public entry: what a service that stores or reads artifacts in-process needs.
// Storage backends, the metadata and encryption primitives, `.env` parsing and the dev secret
// files are internal (`@personal-server/artifacts/internal`, used by this repository's server and CLI).
export { DEFAULT_RETENTION_DAYS, OPERATIONS_PREFIX } from "./constants.js";
export * from "./errors.js";
export type { ArtifactsConfig, MasterKeys, MetricsListen, NonceStoreConfig, R2Config, R2Jurisdiction, StorageConfig } from "./config-types.js";
export { loadConfig, type LoadConfigOptions } from "./config.js";
export { AGENT, MAX_PATH_BYTES, MAX_SEGMENT_BYTES, OPERATION_ID, PATH_SEGMENT, isOperationId, normalizeGrantee, parseDuration, validateAgent, validateArtifactPath, validateOperationId } from "./validate.js";
export {
  createArtifactStore,
  DELIVERY_ROUTE,
  DELIVERY_URL_MAX_SECONDS,
  type DeliveredObject,
  type DeliveryTicket,
  type TicketListing,
  type TicketOptions,
  type ArtifactInfo,
  type ArtifactStore,
  type CreateOperationInput,
  type GetArtifactOptions,
  type GetArtifactResult,
  type OperationInfo,
  type PutArtifactOptions,
  type ReadOptions,
  type StoreOptions,
  type SweepOptions,
  type SweepResult,
  type StoredUsage,
} from "./store.js";
export type { StorageObserver, StorageOperation } from "./backends/observed.js";
