import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { createArtifactStore, loadConfig, type ArtifactStore } from "@personal-server/artifacts";

/** A master key made up for this run (base64 of 32 random bytes); nothing outlives the bench. */
export function benchMasterKey(): string {
  return randomBytes(32).toString("base64");
}

/**
 * The grantee of the SDK-only rows: a made-up address (the store only compares it; nothing is
 * signed there). viem is loaded only by the server rows, which sign requests.
 */
export const BENCH_GRANTEE = "0x00000000000000000000000000000000000b3c4e";

/**
 * The SDK's store on local disk under `dir`, configured from an explicit environment (so a
 * developer's `.env` or R2 variables never redirect the bench to real storage).
 */
export function localStore(dir: string, extra: Record<string, string> = {}): ArtifactStore {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return createArtifactStore(
    loadConfig({
      ARTIFACTS_LOCAL_DIR: dir,
      ARTIFACTS_MASTER_KEY: benchMasterKey(),
      ARTIFACTS_SWEEP_INTERVAL: "0",
      ARTIFACTS_MAX_BYTES: String(8 * 1024 ** 3),
      ...extra,
    }),
  );
}
