import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { ConfigError, type ArtifactsConfig } from "@personal-server/artifacts";
import { WRITER_TOKEN_FILE, readOrCreateSecretFile } from "@personal-server/artifacts/internal";


/** Where the writer token came from. */
export type WriterTokenSource = { kind: "env" } | { kind: "file"; path: string; created: boolean };

/**
 * The writer bearer token: ARTIFACTS_WRITER_TOKEN, or for local storage a generated one kept in
 * `<ARTIFACTS_LOCAL_DIR>/.writer-token` (mode 0600). With r2/s3 storage and no token, `config` error:
 * a server reachable by others must not invent a credential nobody configured.
 */
export function resolveWriterToken(config: ArtifactsConfig): { token: string; source: WriterTokenSource } {
  if (config.writerToken !== undefined) return { token: config.writerToken, source: { kind: "env" } };
  if (config.storage.kind !== "local") {
    throw new ConfigError(
      `ARTIFACTS_WRITER_TOKEN is required with ${config.storage.kind} storage (at least 32 characters, e.g. \`openssl rand -base64 32\`)`,
      { details: { problems: [{ variable: "ARTIFACTS_WRITER_TOKEN", message: "required unless storage is local" }] } },
    );
  }
  const path = join(config.localDir, WRITER_TOKEN_FILE);
  const { value, created } = readOrCreateSecretFile(path, () => randomBytes(32).toString("base64url"));
  if (value.length < 32) throw new ConfigError(`${path} holds a token shorter than 32 characters; delete it to generate a new one`);
  return { token: value, source: { kind: "file", path, created } };
}
