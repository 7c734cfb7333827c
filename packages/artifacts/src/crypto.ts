/**
 * Encryption format v1 (docs/format.md): the envelope (envelope.ts: a random 32-byte data key per operation,
 * wrapped by the current master key with AES-256-GCM; the AAD binds operation id, grantee and
 * expiry) and the object engine (crypto/engine/: header, chunks, keys, streaming encrypt and
 * decrypt; also the `@personal-server/artifacts/engine` subpath for browsers and clients).
 */
export * from "./crypto/engine/index.js";
export {
  wrapAad,
  newDataKey,
  wrapDataKey,
  unwrapDataKey,
  type WrappedKey,
  type KeyContext,
} from "./crypto/envelope.js";
