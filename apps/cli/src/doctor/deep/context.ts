import { randomBytes } from "node:crypto";
import { type ArtifactsConfig, StorageUnavailableError } from "@personal-server/artifacts";
import type { Backend } from "@personal-server/artifacts/internal";
import { DOCTOR_PREFIX } from "../../scan.js";

export { messageOf } from "../check.js";

/** One row of the `doctor --deep` table. Only `fail` makes it exit non-zero. */
export interface DeepResult {
  name: string;
  status: "pass" | "fail" | "not supported" | "skip";
  /** What was observed; for `fail`, what is wrong; for `not supported` and `skip`, why. */
  detail: string;
}

/** One acceptance check: what the code relies on, tried against the bucket. */
export interface DeepCheck {
  name: string;
  run(ctx: DeepContext): Promise<Omit<DeepResult, "name">>;
}

/** R2 takes about one write per second to a key: the wait before writing the same key again. */
export const KEY_WRITE_INTERVAL_MS = 1100;

/**
 * What the checks share: the backend, and the keys they write, all under one unique prefix
 * (`operations/.doctor-deep-<random>/`, which usage, cleanup and doctor's own checks skip).
 * Only keys made with `key()` are written, and cleanup deletes exactly those.
 */
export class DeepContext {
  readonly prefix = `${DOCTOR_PREFIX}deep-${randomBytes(6).toString("hex")}/`;
  /** Every key a check may have written, for cleanup by exact key. */
  readonly written = new Set<string>();

  constructor(
    readonly backend: Backend,
    readonly config: ArtifactsConfig,
  ) {}

  /** A key under the unique prefix, recorded for cleanup before anything is written to it. */
  key(name: string): string {
    const key = `${this.prefix}${name}`;
    this.written.add(key);
    return key;
  }

  /**
   * Runs a write, and again after a pause when storage answered 429 (R2: one write per second to a
   * key) through the backend's own retries: the checks test their subject, not the rate limit.
   */
  async write<T>(run: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await run();
      } catch (error) {
        const throttled = error instanceof StorageUnavailableError && error.details?.throttled === true;
        if (!throttled || attempt >= 4) throw error;
        await pause(KEY_WRITE_INTERVAL_MS);
      }
    }
  }
}

export const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
