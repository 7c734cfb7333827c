export { DEFAULT_RETENTION_DAYS, OPERATIONS_PREFIX } from "./constants.js";
export * from "./errors.js";
export type { ArtifactsConfig, MasterKeys, R2Config, R2Jurisdiction, StorageConfig } from "./config-types.js";
export { loadConfig, readEnvironment, parseDotEnv, r2Endpoint, decodeKey, MASTER_KEY_FILE, WRITER_TOKEN_FILE, type ConfigProblem } from "./config.js";
export { readOrCreateSecretFile } from "./secret-file.js";
export { MAX_PATH_BYTES, isOperationId, normalizeGrantee, parseDuration, validateAgent, validateArtifactPath, validateOperationId } from "./validate.js";
export {
  createArtifactStore,
  DELIVERY_ROUTE,
  DELIVERY_URL_MAX_SECONDS,
  ORPHAN_GRACE_MS,
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
} from "./store.js";
export {
  artifactObjectKey,
  metadataKey,
  operationPrefix,
  parseMetadata,
  readMetadata,
  serializeMetadata,
  type ArtifactEntry,
  type OperationMetadata,
} from "./metadata.js";
export { openBackend } from "./backends/index.js";
export { PreconditionFailedError, type Backend, type ByteRange, type ObjectInfo, type WriteCondition } from "./backends/types.js";
export {
  DEFAULT_CHUNK_SIZE,
  HEADER_BYTES,
  encryptedSize,
  parseHeader,
  plaintextSize,
  unwrapDataKey,
  wrapDataKey,
  type KeyContext,
  type WrappedKey,
} from "./crypto.js";
