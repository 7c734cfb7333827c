import { NotFoundError } from "../errors.js";
import type { ArtifactEntry, OperationMetadata } from "../metadata.js";
import type { ArtifactInfo, OperationInfo } from "./types.js";

export function findEntry(metadata: OperationMetadata, path: string): ArtifactEntry {
  const entry = metadata.artifacts.find((a) => a.path === path);
  if (entry === undefined) throw new NotFoundError(`artifact ${path} not found in operation ${metadata.operationId}`);
  return entry;
}

/** The operation's artifacts in path order (byte order: paths are ASCII). */
export function sortedEntries(metadata: OperationMetadata): ArtifactEntry[] {
  return [...metadata.artifacts].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

export function artifactInfo(entry: ArtifactEntry): ArtifactInfo {
  const { path, size, encryptedSize, contentType, chunkSize, createdAt, etag } = entry;
  return { path, size, encryptedSize, contentType, chunkSize, createdAt, etag };
}

export function operationInfo(m: OperationMetadata): OperationInfo {
  return {
    operationId: m.operationId,
    agent: m.agent,
    grantee: m.grantee,
    createdAt: m.createdAt,
    expiresAt: m.expiresAt,
    artifactCount: m.artifacts.length,
    totalBytes: m.artifacts.reduce((sum, a) => sum + a.size, 0),
    encryptedBytes: m.artifacts.reduce((sum, a) => sum + a.encryptedSize, 0),
  };
}
