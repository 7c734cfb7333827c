// `pnpm artifacts doctor --deep`: the acceptance check for a bucket. Runs what the code relies on
// against the configured storage, under a unique prefix, and deletes exactly the keys it wrote.
import type { ArtifactsConfig } from "@personal-server/artifacts";
import { openBackend } from "@personal-server/artifacts/internal";
import { DeepContext, type DeepCheck, type DeepResult, messageOf } from "./context.js";
import { lifecycle } from "./lifecycle.js";
import { cors, presignedExpiry, presignedGet } from "./presigned.js";
import { listing, ranges } from "./reads.js";
import { ifMatchMissing, ifMatchReplace, racingCreates, writeRate } from "./writes.js";

/** In table order. */
export const DEEP_CHECKS: readonly DeepCheck[] = [racingCreates, ifMatchMissing, ifMatchReplace, writeRate, presignedGet, presignedExpiry, cors, lifecycle, listing, ranges];

/** The table, and where the checks wrote. */
export interface DeepReport {
  /** The prefix every written key was under (`operations/.doctor-deep-<random>/`). */
  prefix: string;
  results: DeepResult[];
}

/** Runs every deep check (a check that throws is a `fail`), then deletes the keys they wrote, by exact key. */
export async function runDeep(config: ArtifactsConfig): Promise<DeepReport> {
  const backend = await openBackend(config.storage, { timeoutMs: config.s3TimeoutMs, connectTimeoutMs: config.s3ConnectTimeoutMs });
  const ctx = new DeepContext(backend, config);
  const results: DeepResult[] = [];
  try {
    for (const check of DEEP_CHECKS) {
      try {
        results.push({ name: check.name, ...(await check.run(ctx)) });
      } catch (error) {
        results.push({ name: check.name, status: "fail", detail: messageOf(error) });
      }
    }
    results.push(await cleanup(ctx));
  } finally {
    await backend.close();
  }
  return { prefix: ctx.prefix, results };
}

/** Deletes the keys the checks wrote (each by its exact key, never by prefix) and checks none is left. */
async function cleanup(ctx: DeepContext): Promise<DeepResult> {
  const keys = [...ctx.written];
  try {
    await ctx.backend.delete(keys);
    const left: string[] = [];
    for (const key of keys) if ((await ctx.backend.head(key)) !== null) left.push(key);
    if (left.length > 0) return { name: "cleanup", status: "fail", detail: `still there after deleting: ${left.join(", ")}` };
    return { name: "cleanup", status: "pass", detail: `deleted its ${keys.length} keys under ${ctx.prefix}, each by its exact key; none is left` };
  } catch (error) {
    return { name: "cleanup", status: "fail", detail: `deleting ${keys.length} keys under ${ctx.prefix} failed: ${messageOf(error)}` };
  }
}
