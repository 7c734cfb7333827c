// What doctor reads of the stored operations: one listing of operations/ and each metadata.json
// (one GET per operation), shared by the master key and layout checks.
import { IntegrityError, OPERATIONS_PREFIX, UnsupportedLayoutError } from "@personal-server/artifacts";
import { type Backend, metadataKey, type OperationMetadata, parseMetadata } from "@personal-server/artifacts/internal";

const READ_PARALLEL = 16;

/** The operations stored, by what their metadata.json says. */
export interface StoredOperations {
  /** Readable operations, newest metadata.json write first. */
  readable: OperationMetadata[];
  /** Operations in a layout newer than this release reads, with that layout. */
  newer: { operationId: string; layout: number }[];
  /** Operations whose metadata.json does not parse. */
  malformed: string[];
}

/** Lists operations/ once and reads every metadata.json (16 at a time); storage errors throw. */
export async function readOperations(backend: Backend): Promise<StoredOperations> {
  const found: { id: string; at: number }[] = [];
  for await (const object of backend.list(OPERATIONS_PREFIX)) {
    const match = /^operations\/([a-z0-9][a-z0-9_-]*)\/metadata\.json$/.exec(object.key);
    if (match) found.push({ id: match[1]!, at: object.lastModified.getTime() });
  }
  found.sort((a, b) => b.at - a.at);
  const read: (OperationMetadata | { newer: number } | "malformed" | null)[] = [];
  for (let i = 0; i < found.length; i += READ_PARALLEL) {
    read.push(...(await Promise.all(found.slice(i, i + READ_PARALLEL).map(({ id }) => readOne(backend, id)))));
  }
  const stored: StoredOperations = { readable: [], newer: [], malformed: [] };
  read.forEach((r, i) => {
    const operationId = found[i]!.id;
    if (r === "malformed") stored.malformed.push(operationId);
    else if (r !== null && "newer" in r) stored.newer.push({ operationId, layout: r.newer });
    else if (r !== null) stored.readable.push(r);
  });
  return stored;
}

/** null: deleted since the listing. */
async function readOne(backend: Backend, operationId: string): Promise<OperationMetadata | { newer: number } | "malformed" | null> {
  const got = await backend.getBytes(metadataKey(operationId));
  if (got === null) return null;
  try {
    return parseMetadata(got.body, operationId);
  } catch (error) {
    if (error instanceof UnsupportedLayoutError) return { newer: (JSON.parse(got.body.toString()) as { version: number }).version };
    if (error instanceof IntegrityError) return "malformed";
    throw error;
  }
}
