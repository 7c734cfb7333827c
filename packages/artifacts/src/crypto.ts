/**
 * Encryption format v1, specified in docs/format.md.
 *
 * - Envelope (envelope.ts): a random 32-byte data key per operation, wrapped by the current
 *   master key with AES-256-GCM; the AAD binds operation id, grantee and expiry.
 * - Objects (format.ts, oneshot.ts, streams.ts): header "PSAE" | 1 | u32be C | salt, then
 *   chunks of C plaintext bytes, each AES-256-GCM (ciphertext || tag) under
 *   HKDF(data key, salt, "psa/v1\0<operationId>\0<path>") with nonce = 11-byte BE index |
 *   final flag. No AAD on chunks: the nonce binds position and finality, the key binds
 *   path and operation. Plaintext is released only after its chunk's tag verifies.
 *
 * Known-answer vectors: test/vectors/format-v1.json (generated independently by
 * test/vectors/generate.py with Python's `cryptography`).
 */
export {
  FORMAT_VERSION,
  MAGIC,
  HEADER_BYTES,
  TAG_BYTES,
  MIN_CHUNK_SIZE,
  MAX_CHUNK_SIZE,
  DEFAULT_CHUNK_SIZE,
  chunkCount,
  chunkPlainLength,
  encryptedSize,
  plaintextSize,
  parseHeader,
  deriveArtifactKey,
  planRange,
  type EncryptOptions,
  type DecryptOptions,
  type RangePlan,
} from "./crypto/format.js";
export {
  wrapAad,
  newDataKey,
  wrapDataKey,
  unwrapDataKey,
  type WrappedKey,
  type KeyContext,
} from "./crypto/envelope.js";
export { encryptArtifact, decryptArtifact } from "./crypto/oneshot.js";
export {
  createEncryptStream,
  createDecryptStream,
  createRangeDecryptStream,
  EncryptStream,
  DecryptStream,
  RangeDecryptStream,
  type DecryptStreamOptions,
  type RangeDecryptOptions,
} from "./crypto/streams.js";
