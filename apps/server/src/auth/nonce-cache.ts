import { randomBytes } from "node:crypto";
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { ConfigError, StorageUnavailableError } from "@personal-server/artifacts";
import type { NonceStore } from "./nonce-store.js";

/** Where a server without ARTIFACTS_NONCE_STORE journals spent nonces: its state directory, whatever the storage. */
export function nonceJournalPath(localDir: string): string {
  return join(localDir, ".spent-nonces");
}

function unusable(journal: string, error: unknown): ConfigError {
  return new ConfigError(`cannot keep spent nonces in ${journal}: ${(error as Error).message}`, {
    cause: error,
    details: { problems: [{ variable: "ARTIFACTS_LOCAL_DIR", message: "must be a directory the server can write (it keeps .spent-nonces there)" }] },
  });
}

/** Below this many journal lines the journal is never rewritten (a rewrite is one small sync write). */
const MIN_COMPACT_LINES = 1000;

/**
 * Spent Web3Signed nonces in this process's memory, each kept until its payload's `exp` (after
 * that the payload is refused as stale anyway, so the nonce can be forgotten). Right for exactly
 * one server process: replicas need the shared store. Bounded: when full of unexpired nonces, new
 * ones are refused rather than old ones evicted, because evicting would reopen a replay window.
 *
 * With a `journal` file, every spend is also appended to it (one `write` of about 60 bytes to the
 * page cache, no fsync) before the request is served, and the journal's unexpired entries are
 * loaded at start: a nonce spent before a crash (SIGKILL, an OOM kill, a panic) is still spent
 * after the restart. The journal is rewritten with only the live entries at start and whenever
 * it has grown past twice their number.
 */
export class NonceCache implements NonceStore {
  readonly #spent = new Map<string, number>();
  readonly #maxEntries: number;
  readonly #journal: string | undefined;
  #fd: number | undefined;
  #journalLines = 0;
  #lastPrune = 0;

  /**
   * @param maxEntries upper bound on remembered nonces (about 100 bytes each).
   * @param journal file that keeps spent nonces across restarts (created 0600, its directory 0700).
   */
  constructor(maxEntries = 100_000, journal?: string, now = Math.floor(Date.now() / 1000)) {
    this.#maxEntries = maxEntries;
    this.#journal = journal;
    if (journal === undefined) return;
    let text = "";
    try {
      text = readFileSync(journal, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw unusable(journal, error);
      try {
        mkdirSync(dirname(journal), { recursive: true, mode: 0o700 });
      } catch (mkdirError) {
        throw unusable(journal, mkdirError);
      }
    }
    // "<exp> <nonce>\n" per entry; the text after the last newline is empty, or an entry torn by a
    // crash mid-write (its request was never served), and is dropped.
    for (const line of text.split("\n").slice(0, -1)) {
      const match = /^(\d{1,15}) ([A-Za-z0-9_-]{1,256})$/.exec(line);
      if (match !== null && Number(match[1]) > now) this.#spent.set(match[2]!, Number(match[1]));
    }
    try {
      this.#rewriteJournal();
    } catch (error) {
      throw unusable(journal, error);
    }
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
      throw new StorageUnavailableError("too many signed requests in the last few minutes; retry shortly", { details: { publicMessage: true } });
    }
    if (this.#fd !== undefined) {
      try {
        writeSync(this.#fd, `${exp} ${nonce}\n`);
      } catch (error) {
        // Not remembered across a restart means not spent safely: refuse rather than serve.
        throw new StorageUnavailableError(`cannot record the spent nonce in ${this.#journal}: ${(error as Error).message}`, { cause: error });
      }
      this.#journalLines++;
    }
    this.#spent.set(nonce, exp);
    return "ok";
  }

  /** Forgets nonces whose payloads have expired (and rewrites a journal grown past twice the live ones). */
  prune(now: number): void {
    this.#lastPrune = now;
    for (const [nonce, exp] of this.#spent) {
      if (exp <= now) this.#spent.delete(nonce);
    }
    if (this.#fd !== undefined && this.#journalLines > Math.max(MIN_COMPACT_LINES, 2 * this.#spent.size)) {
      try {
        this.#rewriteJournal();
      } catch {
        // Appends go on to the current journal; the next prune tries again.
      }
    }
  }

  async close(): Promise<void> {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
    this.#spent.clear();
  }

  #isSpent(nonce: string, now: number): boolean {
    const exp = this.#spent.get(nonce);
    return exp !== undefined && exp > now;
  }

  /** Replaces the journal with the live entries (a new file renamed over it), then appends to it. */
  #rewriteJournal(): void {
    const journal = this.#journal!;
    const lines = [...this.#spent].map(([nonce, exp]) => `${exp} ${nonce}\n`);
    // A temporary name of this process's own: processes sharing a directory (unsupported without
    // Redis, but tests and operators do start two) never rename each other's file away.
    const temporary = `${journal}.${process.pid}.${randomBytes(4).toString("hex")}.new`;
    writeFileSync(temporary, lines.join(""), { mode: 0o600 });
    renameSync(temporary, journal);
    const fd = openSync(journal, "a", 0o600);
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = fd;
    this.#journalLines = lines.length;
  }
}
