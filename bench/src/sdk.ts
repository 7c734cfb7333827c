import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { createArtifactStore, loadConfig, type ArtifactStore } from "@personal-server/artifacts";
import { generatePrivateKey, privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";

/** A master key made up for this run (base64 of 32 random bytes); nothing outlives the bench. */
export function benchMasterKey(): string {
  return randomBytes(32).toString("base64");
}

/** A fresh grantee wallet for this run. */
export function benchGrantee(): PrivateKeyAccount {
  return privateKeyToAccount(generatePrivateKey());
}

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
