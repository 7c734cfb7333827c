import { ArtifactError, type ArtifactsConfig, ConfigError } from "@personal-server/artifacts";
import { unwrapDataKey } from "@personal-server/artifacts/internal";
import { adviceFor, classify } from "../advice.js";
import { type Add, messageOf } from "./check.js";
import type { StoredOperations } from "./operations.js";

/** The newest readable operation (by metadata.json's last write; any layout this release reads) must unwrap with the loaded keys. */
export function masterKeyCheck(stored: StoredOperations, config: ArtifactsConfig, add: Add): void {
  try {
    const m = stored.readable[0];
    if (m === undefined) {
      const none = stored.newer.length + stored.malformed.length === 0;
      add({ name: "master keys", status: none ? "pass" : "skip", message: none ? "no operations stored yet: nothing to unwrap" : "no operation this release can read: nothing to unwrap (see layouts)" });
      return;
    }
    unwrapDataKey(m.wrappedKey, config.masterKeys, { operationId: m.operationId, grantee: m.grantee, expiresAt: m.expiresAt });
    if (m.wrappedKey.kid !== config.masterKeys.currentKid) {
      add({
        name: "master keys",
        status: "warn",
        message: `the newest operation ${m.operationId} unwraps, but with kid "${m.wrappedKey.kid}", not the current "${config.masterKeys.currentKid}"`,
        fix: "restart every server with the new ARTIFACTS_MASTER_KEYS, then run `pnpm artifacts rotate-key`",
      });
      return;
    }
    add({ name: "master keys", status: "pass", message: `unwrap the newest operation's data key (${m.operationId}, kid "${m.wrappedKey.kid}")` });
  } catch (error) {
    const missing = error instanceof ConfigError;
    add({
      name: "master keys",
      status: "fail",
      message: messageOf(error),
      fix: missing
        ? "add the master key with that kid to ARTIFACTS_MASTER_KEYS (after the current one); without it those artifacts cannot be read"
        : error instanceof ArtifactError && error.code === "integrity"
          ? "the key loaded under that kid is not the one that wrapped this operation (or metadata.json was edited): restore the original key value for that kid"
          : adviceFor(classify(error), config),
    });
  }
}

