import { StorageUnavailableError } from "@personal-server/artifacts";
import type { NonceStore } from "./nonce-store.js";

/**
 * Spent Web3Signed nonces in this process's memory, each kept until its payload's `exp` (after
 * that the payload is refused as stale anyway, so the nonce can be forgotten). Right for exactly
 * one server process: replicas need the shared store. Bounded: when full of unexpired nonces, new
 * ones are refused rather than old ones evicted, because evicting would reopen a replay window.
 */
export class NonceCache implements NonceStore {
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

  async isSpent(nonce: string, now: number): Promise<boolean> {
    return this.#isSpent(nonce, now);
  }

  async spend(nonce: string, exp: number, now: number): Promise<"ok" | "spent"> {
    if (this.#isSpent(nonce, now)) return "spent";
    // Pruning is a full scan, so do it at most once a second, or when the cache is full.
    if (now !== this.#lastPrune || this.#spent.size >= this.#maxEntries) this.prune(now);
    if (this.#spent.size >= this.#maxEntries) {
      throw new StorageUnavailableError("too many signed requests in the last few minutes; retry shortly");
    }
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

  async close(): Promise<void> {
    this.#spent.clear();
  }

  #isSpent(nonce: string, now: number): boolean {
    const exp = this.#spent.get(nonce);
    return exp !== undefined && exp > now;
  }
}
