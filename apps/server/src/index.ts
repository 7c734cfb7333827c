export { buildServer, type BuildServerOptions } from "./app.js";
export { startServer, shutdownOnSignals, type RunningServer, type ShutdownOptions } from "./start.js";
export { resolveWriterToken, type WriterTokenSource } from "./writer-token.js";
export {
  verifyWeb3Signed,
  acceptedAudiences,
  bodyHash,
  EMPTY_BODY_HASH,
  MAX_PAYLOAD_LIFETIME_SECONDS,
  MAX_CLOCK_SKEW_SECONDS,
  type Web3SignedPayload,
} from "./auth/web3signed.js";
export { NonceCache } from "./auth/nonce-cache.js";
