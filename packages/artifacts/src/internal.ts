// `@personal-server/artifacts/internal`: what only this repository's server, CLI, tests and bench
// use (storage backends, metadata and encryption primitives, `.env` parsing, the dev secret files).
// Not covered by the package's semver promise: it changes with the server and CLI (see CHANGELOG.md).
export { readEnvironment, parseDotEnv, repositoryRoot, type EnvLocations } from "./env-file.js";
export { r2Endpoint, decodeKey, MASTER_KEY_FILE, WRITER_TOKEN_FILE, type ConfigProblem } from "./config.js";
export { readOrCreateSecretFile, readSecretFile } from "./secret-file.js";
export { ORPHAN_GRACE_MS } from "./store.js";
export {
  LAYOUT_VERSION,
  artifactObjectKey,
  isArtifactEntry,
  metadataKey,
  operationPrefix,
  parseMetadata,
  readMetadata,
  serializeMetadata,
  MetadataWriter,
  type ArtifactEntry,
  type MetadataV1,
  type MetadataV2,
  type OperationMetadata,
} from "./metadata.js";
export {
  entriesPrefix,
  entryName,
  indexKey,
  INDEX_MARGIN_MS,
  parseEntry,
  pathHash,
  serializeEntry,
  type EntryIndex,
} from "./layout-v2.js";
export { openBackend } from "./backends/index.js";
export { isArtifactPath } from "./validate.js";
export { writeArtifact, type UploadContext } from "./store/upload.js";
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
export { freeBytes } from "./free-bytes.js";
export { operationReferences, type OperationReferences } from "./references.js";
export { PRICES, type R2StorageClass } from "./cost/pricing.js";
export {
  estimateCost,
  layoutBytes,
  storageCost,
  sweepRequests,
  LIST_PAGE_KEYS,
  type BillLine,
  type CostEstimate,
  type CostInput,
  type LayoutBytes,
  type RequestCounts,
  type StorageCost,
  type SweepCounts,
} from "./cost/model.js";
export { STORAGE_OPERATIONS, observeBackend } from "./backends/observed.js";
