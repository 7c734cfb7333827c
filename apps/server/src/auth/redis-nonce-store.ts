import type { NonceStoreConfig } from "@personal-server/artifacts";
import { StorageUnavailableError } from "@personal-server/artifacts";
import { Redis } from "ioredis";
import type { NonceStore } from "./nonce-store.js";

/** How long the store may take to answer before the request is refused with 503. */
export const NONCE_STORE_TIMEOUT_MS = 1000;

/**
 * Spent nonces on a Redis server that every replica behind one audience shares, so a signature
 * spent on one replica is refused on all. One atomic `SET <prefix>:nonce:<nonce> 1 NX EXAT <exp>`
 * spends a nonce: a null reply means another request (on any replica) spent it first. Redis must
 * not evict these keys (`maxmemory-policy noeviction`), or replays reopen. The only module that
 * loads the Redis client.
 */
export class RedisNonceStore implements NonceStore {
  readonly #display: string;
  readonly #redis: Redis;
  readonly #prefix: string;

  constructor(config: Extract<NonceStoreConfig, { kind: "redis" }>, log: (message: string) => void, prefix = "artifacts") {
    this.#display = config.display;
    this.#prefix = prefix;
    let lastError: string | undefined;
    this.#redis = new Redis({
      host: config.host,
      port: config.port,
      db: config.db,
      ...(config.username === undefined ? {} : { username: config.username }),
      ...(config.password === undefined ? {} : { password: config.password }),
      ...(config.tls ? { tls: { servername: config.host } } : {}),
      connectTimeout: NONCE_STORE_TIMEOUT_MS,
      // Every command, queued while (re)connecting or sent, gets an answer or an error within 1 s.
      commandTimeout: NONCE_STORE_TIMEOUT_MS,
      maxRetriesPerRequest: 0,
      retryStrategy: (attempt) => Math.min(100 * attempt, 1000),
    });
    // Messages only: a raw client error may carry the AUTH command's arguments.
    this.#redis.on("error", (error: Error) => {
      if (error.message !== lastError) log(`nonce store ${config.display}: ${error.message}`);
      lastError = error.message;
    });
    this.#redis.on("ready", () => {
      if (lastError !== undefined) log(`nonce store ${config.display}: connected again`);
      lastError = undefined;
    });
  }

  async isSpent(nonce: string): Promise<boolean> {
    return (await this.#call("EXISTS", this.#key(nonce))) === 1;
  }

  async spend(nonce: string, exp: number): Promise<"ok" | "spent"> {
    const reply = await this.#call("SET", this.#key(nonce), "1", "NX", "EXAT", String(exp));
    return reply === null ? "spent" : "ok";
  }

  async close(): Promise<void> {
    this.#redis.disconnect();
  }

  #key(nonce: string): string {
    return `${this.#prefix}:nonce:${nonce}`;
  }

  async #call(command: string, ...args: string[]): Promise<unknown> {
    try {
      return await this.#redis.call(command, ...args);
    } catch (error) {
      // The message is the client's; where the store is and what it said are the log's.
      throw new StorageUnavailableError("the replay guard's nonce store did not answer; retry shortly", {
        details: { publicMessage: true, nonceStore: this.#display, reason: (error as Error).message },
      });
    }
  }
}
