/**
 * The crypto engine of format v1: one implementation for the SDK, the server and the clients,
 * in Node (>= 22) and in browsers. WebCrypto (`globalThis.crypto.subtle`) and Uint8Array only:
 * no `node:*` module, no Buffer, no WHATWG or Node streams (test/crypto-engine.test.ts checks it).
 *
 * Object layout: header "PSAE" | u8 1 | u32be C | 32-byte salt (41 bytes), then chunks of C
 * plaintext bytes (the last 0..C), each AES-256-GCM ciphertext || 16-byte tag under the
 * artifact key HKDF-SHA256(data key, salt, "psa/v1" NUL operationId NUL path), nonce = 11-byte
 * big-endian chunk index | 0x01 on the final chunk, else 0x00. No AAD on chunks: the nonce binds
 * position and finality, the key binds path and operation. Known answers:
 * test/vectors/format-v1.json (generated independently by test/vectors/generate.py).
 *
 * API (errors are the SDK's: `InvalidInputError` for bad arguments, `IntegrityError` for
 * anything wrong with stored bytes):
 * - Layout: `buildHeader(C, salt)`, `parseHeader(bytes)` (checks magic, version and
 *   16 KiB <= C <= 4 MiB before anything is sized from it), `chunkNonce(index, final)`,
 *   `chunkCount`, `chunkPlainLength`, `encryptedSize(L, C)`, `plaintextSize(E, C)`,
 *   `planRange(L, C, start, end)` -> covering chunks and the object byte range to fetch.
 * - Keys: `deriveArtifactKeyBytes(dataKey, salt, operationId, path)` (raw 32 bytes),
 *   `importArtifactKey(raw)`, `deriveArtifactKey(...)` (both steps) -> `ArtifactKey` (CryptoKey).
 * - Streams, `AsyncIterable<Uint8Array>` in and out, `concurrency` chunks in flight on
 *   WebCrypto's worker threads (default 4), output in order, pulled: the source is read only as
 *   fast as the output is consumed, so memory is O(concurrency x C) whatever the artifact size:
 *   `encrypt(plain, { dataKey, operationId, path, chunkSize?, salt? })` -> object bytes;
 *   `decrypt(object, { dataKey, operationId, path, expectedChunkSize?, expectedPlainSize? })`
 *   -> plaintext, each chunk released only after its tag verifies; an end without a valid final
 *   chunk is `IntegrityError`; `decryptRange(storedChunks, { key, chunkSize, plainSize,
 *   ...planRange(...) })` -> the range's plaintext from the stored bytes of chunks first..last.
 *   Each returns a `Transformed` (iterate once; `plaintextBytes` counts what went through).
 *   With `pieceCipher` (the SDK passes node:crypto's in Node), each works through that
 *   synchronous `PieceCipher` instead of WebCrypto: `encrypt` seals piece by piece as bytes
 *   arrive (the same bytes), the decrypts open whole chunks (`decryptRange` then takes the raw key).
 * - In memory: `encryptObject(plain, opts)`, `decryptObject(object, opts)`, `collect(iterable)`.
 */
export {
  FORMAT_VERSION,
  MAGIC,
  HEADER_BYTES,
  TAG_BYTES,
  MIN_CHUNK_SIZE,
  MAX_CHUNK_SIZE,
  DEFAULT_CHUNK_SIZE,
  KEY_BYTES,
  SALT_BYTES,
  NONCE_BYTES,
  assertChunkSize,
  buildHeader,
  parseHeader,
  chunkNonce,
  chunkCount,
  chunkPlainLength,
  encryptedSize,
  plaintextSize,
  planRange,
  type RangePlan,
} from "./format.js";
export { deriveArtifactKeyBytes, importArtifactKey, deriveArtifactKey, hkdfInfo, type ArtifactKey } from "./keys.js";
export type { PieceCipher, PieceSealer } from "./pieces.js";
export {
  DEFAULT_CONCURRENCY,
  encrypt,
  decrypt,
  decryptRange,
  encryptObject,
  decryptObject,
  collect,
  type EncryptOptions,
  type DecryptOptions,
  type RangeDecryptOptions,
  type Transformed,
  type Source,
} from "./stream.js";
