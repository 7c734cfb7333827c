/**
 * Spent Web3Signed nonces, each kept until its payload's `exp` (after that the payload is refused
 * as stale anyway, so the nonce can be forgotten). Bounded: when full of unexpired nonces, new
 * ones are refused rather than old ones evicted, because evicting would reopen a replay window.
 */
export class NonceCache {
  readonly #spent = new Map<string, number>();
  readonly #maxEntries: number;
  #lastPrune = 0;

  /** @param maxEntries upper bound on remembered nonces (about 100 bytes each). */
  constructor(maxEntries = 100_000) {
    this.#maxEntries = maxEntries;
  }

  /** Number of nonces currently remembered. */
  get size(): number {
    return this.#spent.size;
  }

  /** True if `nonce` was spent and its payload has not expired yet. */
  isSpent(nonce: string, now: number): boolean {
    const exp = this.#spent.get(nonce);
    return exp !== undefined && exp > now;
  }

  /**
   * Marks `nonce` spent until `exp` (unix seconds). Returns "spent" if it already was (a replay,
   * possibly a concurrent one that verified first), "full" if the cache cannot take more, else "ok".
   */
  spend(nonce: string, exp: number, now: number): "ok" | "spent" | "full" {
    if (this.isSpent(nonce, now)) return "spent";
    // Pruning is a full scan, so do it at most once a second, or when the cache is full.
    if (now !== this.#lastPrune || this.#spent.size >= this.#maxEntries) this.prune(now);
    if (this.#spent.size >= this.#maxEntries) return "full";
    this.#spent.set(nonce, exp);
    return "ok";
  }

  /** Forgets nonces whose payloads have expired. */
  prune(now: number): void {
    this.#lastPrune = now;
    for (const [nonce, exp] of this.#spent) {
      if (exp <= now) this.#spent.delete(nonce);
    }
  }
}
