import { NotFoundError } from "../errors.js";
import type { ArtifactEntry, OperationMetadata } from "../metadata.js";
import type { ArtifactInfo, OperationInfo } from "./types.js";

export function findEntry(entries: readonly ArtifactEntry[], operationId: string, path: string): ArtifactEntry {
  const entry = entries.find((a) => a.path === path);
  if (entry === undefined) throw new NotFoundError(`artifact ${path} not found in operation ${operationId}`);
  return entry;
}

/** Artifacts in path order (byte order: paths are ASCII). */
export function sortedEntries(entries: readonly ArtifactEntry[]): ArtifactEntry[] {
  return [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

export function artifactInfo(entry: ArtifactEntry): ArtifactInfo {
  const { path, size, encryptedSize, contentType, chunkSize, createdAt, etag } = entry;
  return { path, size, encryptedSize, contentType, chunkSize, createdAt, etag };
}

export function operationInfo(m: OperationMetadata, entries: readonly ArtifactEntry[]): OperationInfo {
  return {
    operationId: m.operationId,
    agent: m.agent,
    grantee: m.grantee,
    createdAt: m.createdAt,
    expiresAt: m.expiresAt,
    layout: m.version,
    artifactCount: entries.length,
    totalBytes: entries.reduce((sum, a) => sum + a.size, 0),
    encryptedBytes: entries.reduce((sum, a) => sum + a.encryptedSize, 0),
  };
}
