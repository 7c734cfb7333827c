import { ArtifactError, type ArtifactsConfig, ConfigError, OPERATIONS_PREFIX } from "@personal-server/artifacts";
import { type Backend, readMetadata, unwrapDataKey } from "@personal-server/artifacts/internal";
import { adviceFor, classify } from "../advice.js";
import { type Add, messageOf } from "./check.js";

/** The newest operation (by metadata.json's last write) must unwrap with the loaded keys. */
export async function masterKeyCheck(backend: Backend, config: ArtifactsConfig, add: Add): Promise<void> {
  try {
    let newest: { id: string; at: number } | undefined;
    for await (const object of backend.list(OPERATIONS_PREFIX)) {
      const match = /^operations\/([a-z0-9][a-z0-9_-]*)\/metadata\.json$/.exec(object.key);
      if (match && (newest === undefined || object.lastModified.getTime() > newest.at)) {
        newest = { id: match[1]!, at: object.lastModified.getTime() };
      }
    }
    if (newest === undefined) {
      add({ name: "master keys", status: "pass", message: "no operations stored yet: nothing to unwrap" });
      return;
    }
    const read = await readMetadata(backend, newest.id);
    if (read === null) {
      add({ name: "master keys", status: "pass", message: `newest operation ${newest.id} was just deleted: nothing to unwrap` });
      return;
    }
    const m = read.metadata;
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

