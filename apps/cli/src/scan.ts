import { IntegrityError, OPERATIONS_PREFIX, UnsupportedLayoutError } from "@personal-server/artifacts";
import {
  type ArtifactEntry,
  type Backend,
  type ObjectInfo,
  type OperationMetadata,
  ORPHAN_GRACE_MS,
  metadataKey,
  operationReferences,
  parseMetadata,
} from "@personal-server/artifacts/internal";

/** Prefix of doctor's probe objects: neither an operation nor an orphan, never counted or touched. */
export const DOCTOR_PREFIX = `${OPERATIONS_PREFIX}.doctor-`;

/** What one `operations/<id>/` prefix holds, as `usage` and `cleanup --dry-run` see it. */
export interface ScannedOperation {
  operationId: string;
  /** Parsed metadata.json; undefined when absent (a crash leftover) or malformed. */
  metadata: OperationMetadata | undefined;
  /** Committed artifacts (layout 1: metadata.json's; layout 2: the entry objects); empty without metadata. */
  entries: ArtifactEntry[];
  /**
   * Set when metadata.json or an entry exists but does not parse (IntegrityError message), or
   * is a layout newer than this release (the sweep leaves both alone).
   */
  malformed: string | undefined;
  /** Every object under the prefix. */
  objects: ObjectInfo[];
  /** Sum of the objects' sizes. */
  storedBytes: number;
  /** Objects no metadata.json references (all of them when there is no metadata). */
  unreferenced: ObjectInfo[];
  /** now >= expiresAt. */
  expired: boolean;
}

/**
 * Walks every object under operations/ once (one ListObjects per 1000 objects), grouped by
 * operation (a prefix's keys are contiguous in key order), and reads each metadata.json.
 * Skips doctor's probe prefixes.
 */
export async function* scanOperations(backend: Backend, now: Date): AsyncGenerator<ScannedOperation> {
  let current: { id: string; objects: ObjectInfo[] } | undefined;
  for await (const object of backend.list(OPERATIONS_PREFIX)) {
    if (object.key.startsWith(DOCTOR_PREFIX)) continue;
    const rest = object.key.slice(OPERATIONS_PREFIX.length);
    const slash = rest.indexOf("/");
    // A stray key directly under operations/ is its own (metadata-less) group.
    const id = slash === -1 ? rest : rest.slice(0, slash);
    if (current !== undefined && current.id !== id) {
      yield await finish(backend, current.id, current.objects, now);
      current = undefined;
    }
    current ??= { id, objects: [] };
    current.objects.push(object);
  }
  if (current !== undefined) yield await finish(backend, current.id, current.objects, now);
}

async function finish(backend: Backend, operationId: string, objects: ObjectInfo[], now: Date): Promise<ScannedOperation> {
  const metaKey = metadataKey(operationId);
  let metadata: OperationMetadata | undefined;
  let malformed: string | undefined;
  let entries: ArtifactEntry[] = [];
  let referenced = (key: string) => malformed !== undefined && key === metaKey;
  if (objects.some((o) => o.key === metaKey)) {
    const got = await backend.getBytes(metaKey);
    if (got !== null) {
      try {
        metadata = parseMetadata(got.body, operationId);
        ({ entries, referenced } = await operationReferences({ backend, now }, metadata));
      } catch (error) {
        if (!(error instanceof IntegrityError || error instanceof UnsupportedLayoutError)) throw error;
        metadata = undefined;
        malformed = error.message;
      }
    }
  }
  return {
    operationId,
    metadata,
    entries,
    malformed,
    objects,
    storedBytes: objects.reduce((sum, o) => sum + o.size, 0),
    unreferenced: objects.filter((o) => !referenced(o.key)),
    expired: metadata !== undefined && now.getTime() >= Date.parse(metadata.expiresAt),
  };
}

/** Unreferenced objects old enough for the sweep to delete (ORPHAN_GRACE_MS, 24 h). */
export function sweepableOrphans(op: ScannedOperation, now: Date): ObjectInfo[] {
  if (op.malformed !== undefined) return []; // the sweep leaves malformed operations to a human
  // The sweep groups its flat listing by the first segment after operations/, as scanOperations
  // does: a stray key directly under operations/ is a group of its own and goes like any orphan.
  return op.unreferenced.filter((o) => o.lastModified.getTime() <= now.getTime() - ORPHAN_GRACE_MS);
}
