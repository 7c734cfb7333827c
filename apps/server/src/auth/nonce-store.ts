/**
 * Where spent Web3Signed nonces are remembered, each until its payload's `exp`: the server's own
 * memory ({@link NonceCache}, one process) or Redis ({@link RedisNonceStore}, shared by replicas).
 */
export interface NonceStore {
  /**
   * True if `nonce` is already spent: the cheap early refusal, before the signature is recovered.
   * Throws `storage_unavailable` when the store cannot answer.
   */
  isSpent(nonce: string, now: number): Promise<boolean>;
  /**
   * Spends `nonce` until `exp` (unix seconds), atomically: "spent" if it already was (a replay,
   * possibly a concurrent one on another replica). Throws `storage_unavailable` when the store
   * cannot take it or does not answer in time: the request is then not served.
   */
  spend(nonce: string, exp: number, now: number): Promise<"ok" | "spent">;
  close(): Promise<void>;
}
