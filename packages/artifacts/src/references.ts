import { entriesPrefix, indexKey, type ListContext, listEntries, readIndex } from "./layout-v2.js";
import { type ArtifactEntry, artifactObjectKey, metadataKey, type OperationMetadata } from "./metadata.js";

/** What an operation's keys are: the ones its metadata and entries reference, and the rest (orphans once old). */
export interface OperationReferences {
  /** Committed entries, one per path. */
  entries: ArtifactEntry[];
  /** metadata.json, layout 2's index.json and current entries, and the objects of committed entries. */
  referenced(key: string): boolean;
}

/**
 * The sweep's and the CLI's one view of which keys of an operation are live. Layout 2: entries of
 * an earlier incarnation and objects only they name are not. Throws `integrity` on a malformed entry.
 */
export async function operationReferences(
  ctx: Pick<ListContext, "backend" | "now" | "pacer" | "compactAlways" | "onIndexWritten" | "prefetched">,
  m: OperationMetadata,
): Promise<OperationReferences> {
  const keys = new Set([metadataKey(m.operationId)]);
  let entries: ArtifactEntry[];
  let current = (_key: string) => false;
  if (m.version === 1) entries = m.artifacts;
  else {
    keys.add(indexKey(m.operationId));
    const prefix = entriesPrefix(m);
    current = (key) => key.startsWith(prefix);
    entries = await listEntries(ctx, m, readIndex(ctx.backend, m.operationId));
  }
  for (const a of entries) keys.add(artifactObjectKey(m.operationId, a.path));
  return { entries, referenced: (key) => keys.has(key) || current(key) };
}
