import { type ArtifactsConfig, OPERATIONS_PREFIX } from "@personal-server/artifacts";
import { openBackend } from "@personal-server/artifacts/internal";
import { DOCTOR_PREFIX } from "../scan.js";
import { type Add, messageOf } from "./check.js";

/** ARTIFACTS_FALLBACK_LOCAL_DIR (a migration's old local directory) is readable; operations left there warn. */
export async function fallbackCheck(config: ArtifactsConfig, add: Add): Promise<void> {
  const dir = config.fallbackLocalDir!;
  try {
    const fallback = await openBackend({ kind: "local", dir }, { timeoutMs: config.s3TimeoutMs, connectTimeoutMs: config.s3ConnectTimeoutMs });
    try {
      await fallback.checkBucket();
      let operations = 0;
      for await (const prefix of fallback.listPrefixes(OPERATIONS_PREFIX)) if (!prefix.startsWith(DOCTOR_PREFIX)) operations++;
      add({
        name: "fallback",
        status: operations > 0 ? "warn" : "pass",
        message: `ARTIFACTS_FALLBACK_LOCAL_DIR ${dir} is readable; ${operations} operation(s) there are served read-only`,
        ...(operations > 0 ? { fix: `finish the migration: pnpm artifacts migrate --from local:${dir} --to current` } : {}),
      });
    } finally {
      await fallback.close();
    }
  } catch (error) {
    add({ name: "fallback", status: "fail", message: messageOf(error), fix: "point ARTIFACTS_FALLBACK_LOCAL_DIR at the old ARTIFACTS_LOCAL_DIR, or unset it" });
  }
}

