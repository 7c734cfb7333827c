import { Readable, addAbortSignal } from "node:stream";
import { type Backend, KeyClashError, PreconditionFailedError, type PutOptions } from "../backends/types.js";
import { DEFAULT_CHUNK_SIZE, encrypt, encryptedSize } from "../crypto.js";
import { nodePieceCipher } from "../crypto/node-cipher.js";
import { sealOneChunk } from "../crypto/one-chunk.js";
import { ConflictError, ExpiredError, IntegrityError, InvalidInputError, isKeyWriteThrottled, NotFoundError, StorageUnavailableError, TooLargeError } from "../errors.js";
import { commitEntry, entriesPrefix, type NamedEntry, operationAfterCommit } from "../layout-v2.js";
import { type ArtifactEntry, artifactObjectKey, type MetadataV2, type MetadataWriter, type OperationMetadata } from "../metadata.js";
import { isContentType } from "../validate.js";

/** An unreferenced object at an artifact's key older than this is a crash leftover a new upload may replace. */
const LEFTOVER_AGE_MS = 5 * 60 * 1000;

export type Body = Readable | Uint8Array | string;

/** The content type to store: the given one trimmed, default `application/octet-stream`. */
export function checkUploadInput(body: Body, contentType: string | undefined): string {
  const type = contentType?.trim() || "application/octet-stream";
  if (!isContentType(type)) {
    throw new InvalidInputError("contentType must be a media type like text/plain; charset=utf-8");
  }
  if (!(body instanceof Readable) && !(body instanceof Uint8Array) && typeof body !== "string") {
    throw new InvalidInputError("body must be a Readable, a Uint8Array or a string");
  }
  return type;
}

export function destroyInput(body: Body): void {
  if (body instanceof Readable) body.destroy();
}

export interface UploadContext {
  backend: Backend;
  writer: MetadataWriter;
  /** The operation's committed entries, read afresh (only on the rare paths: a key taken or clashing). */
  entries: () => Promise<ArtifactEntry[]>;
  /** Layout 2: called once the entry is committed, with its object's name. */
  committed?: (entry: NamedEntry) => Promise<void>;
  dataKey: Buffer;
  maxBytes: number;
  now: () => Date;
  signal?: AbortSignal;
}

/**
 * Encrypts and stores one artifact create-only, then commits its entry (the commit point: layout
 * 1 appends it to metadata.json, layout 2 writes its own entry object create-only): of two
 * writers racing for one path the first object stays, the other gets `conflict`.
 */
export async function writeArtifact(
  ctx: UploadContext,
  metadata: OperationMetadata,
  path: string,
  body: Body,
  contentType: string,
): Promise<ArtifactEntry> {
  const { operationId } = metadata;
  const { backend, dataKey } = ctx;
  const key = artifactObjectKey(operationId, path);
  const chunkSize = DEFAULT_CHUNK_SIZE;
  let size: number;
  let stored: { etag: string; size: number };
  const started = performance.now();
  const input = await readHead(body, chunkSize, ctx.maxBytes, ctx.signal);
  const taken = () => new ConflictError(`artifact ${path} is being uploaded by another writer to operation ${operationId}`);
  const put = (object: Buffer | Readable, options: PutOptions) =>
    backend.put(key, object, options).catch(async (error: unknown) => {
      if (error instanceof KeyClashError) throw await clash(ctx, operationId, path);
      // R2 answers 429 to a write of a key written within the last second: another writer's upload of this path.
      if (isKeyWriteThrottled(error)) throw taken();
      throw error;
    });
  if (input.rest === undefined) {
    // One chunk: the one-shot cipher costs a fraction of a stream pipeline (small artifacts dominate).
    size = input.head.length;
    const object = sealOneChunk(input.head, { dataKey, operationId, path, chunkSize });
    try {
      stored = await put(object, { ifAbsent: true });
    } catch (error) {
      if (!(error instanceof PreconditionFailedError) || !(await removeLeftover(ctx, operationId, path))) {
        throw error instanceof PreconditionFailedError ? taken() : error;
      }
      stored = await put(object, { ifAbsent: true }).catch((e: unknown) => {
        throw e instanceof PreconditionFailedError ? taken() : e;
      });
    }
  } else {
    const encrypted = encrypt(input.rest, { dataKey, operationId, path, chunkSize, pieceCipher: nodePieceCipher });
    try {
      stored = await put(Readable.from(encrypted, { objectMode: false }), { ifAbsent: true, releasePieces: true });
    } catch (error) {
      if (!(error instanceof PreconditionFailedError)) throw error;
      // A stream cannot be sent twice: clear a crash leftover so that the client's retry succeeds.
      if (await removeLeftover(ctx, operationId, path)) {
        throw new ConflictError(
          `artifact ${path} had a leftover of an interrupted upload in operation ${operationId}; it was removed, retry the upload`,
        );
      }
      throw taken();
    }
    size = encrypted.plaintextBytes;
  }
  const expected = encryptedSize(size, chunkSize);
  if (stored.size !== expected) {
    await backend.delete([key]);
    throw new IntegrityError(`stored ${stored.size} bytes for ${path}, expected ${expected}`);
  }
  const entry: ArtifactEntry = {
    path,
    size,
    encryptedSize: expected,
    contentType,
    chunkSize,
    createdAt: ctx.now().toISOString(),
    etag: stored.etag,
  };
  if (metadata.version === 2) {
    // Another upload may take this path once our object is LEFTOVER_AGE_MS old and unreferenced:
    // never commit that late (the object stays as a leftover for the retry or the sweep).
    if (performance.now() - started > LEFTOVER_AGE_MS / 2) {
      throw new StorageUnavailableError(`upload of ${path} took too long to commit; retry it`);
    }
    const named = await commitEntry(backend, metadata, entry, ctx.now().getTime());
    await confirmCommit(ctx, metadata, named, stored.etag);
    await ctx.committed?.(named);
    return entry;
  }
  try {
    await ctx.writer.update(operationId, (m) => {
      if (m.version !== 1) throw new ConflictError(`operation ${operationId} changed layout during the upload; retry it`);
      if (m.artifacts.some((a) => a.path === path)) {
        throw new ConflictError(`artifact ${path} already exists in operation ${operationId}; artifacts are immutable`);
      }
      m.artifacts.push(entry);
    });
  } catch (error) {
    // The operation vanished (deleted or swept) while we uploaded: leave no orphan behind.
    if (error instanceof NotFoundError) await backend.delete([key]).catch(() => {});
    throw error;
  }
  return entry;
}

/**
 * Layout 2: the entry is written, but a delete (and perhaps a create of the same id) or an
 * expiry from another process may have come first; then the entry is never read, and the upload
 * answers what a later one would (`not_found`, `expired`) after removing what it wrote. Best
 * effort: whatever stays is unreferenced, and the sweep deletes it once ORPHAN_GRACE_MS old.
 */
async function confirmCommit(ctx: UploadContext, metadata: MetadataV2, entry: NamedEntry, etag: string): Promise<void> {
  const { backend } = ctx;
  const { operationId } = metadata;
  const now = await operationAfterCommit(backend, metadata, ctx.now().getTime(), ctx.writer.cachedEtag(metadata));
  if (now === "current") return;
  ctx.writer.forget(operationId);
  const key = artifactObjectKey(operationId, entry.path);
  await backend
    .delete([entriesPrefix(metadata) + entry.name])
    .then(() => backend.head(key))
    // The object only if it is still ours: once a delete removed it, a writer of a new
    // incarnation may have stored that path again.
    .then((object) => (object?.etag === etag ? backend.delete([key]) : undefined))
    .catch(() => {});
  throw now === "expired"
    ? new ExpiredError(`operation ${operationId} expired at ${metadata.expiresAt}`)
    : new NotFoundError(`operation ${operationId} not found`);
}

/** `path` and another artifact where one is the other's folder, on storage that keeps paths as files and folders. */
async function clash(ctx: UploadContext, operationId: string, path: string): Promise<ConflictError> {
  const other = (await ctx.entries().catch(() => [])).find((a) => a.path.startsWith(`${path}/`) || path.startsWith(`${a.path}/`))?.path;
  const folder = other === undefined ? "a folder on its path" : other.length < path.length ? other : path;
  return new ConflictError(
    `artifact ${path} cannot be stored beside ${other === undefined ? "another artifact being uploaded" : `artifact ${other}`} in operation ${operationId}: ` +
      `local storage keeps paths as files and folders, and ${folder} cannot be both; choose another path`,
  );
}

/**
 * An object at an artifact's key with no metadata entry is either another writer's upload
 * about to commit (seconds old) or the leftover of a crash between write and commit. Removes
 * it only in the second case (older than LEFTOVER_AGE_MS, still unreferenced); true if removed.
 */
async function removeLeftover(ctx: UploadContext, operationId: string, path: string): Promise<boolean> {
  const { backend } = ctx;
  const key = artifactObjectKey(operationId, path);
  const [object, current] = await Promise.all([backend.head(key), ctx.entries()]);
  if (current.some((a) => a.path === path)) {
    throw new ConflictError(`artifact ${path} already exists in operation ${operationId}; artifacts are immutable`);
  }
  if (object === null) return true; // gone meanwhile: nothing to remove (never delete what another writer may be creating)
  if (Date.now() - object.lastModified.getTime() < LEFTOVER_AGE_MS) return false;
  await backend.delete([key]);
  return true;
}

/**
 * Reads up to one chunk (+1 byte) of the body. `rest` is undefined when that was all of it;
 * otherwise it yields the same bytes again followed by the remainder, counted against maxBytes.
 */
async function readHead(
  body: Body,
  chunkSize: number,
  maxBytes: number,
  signal: AbortSignal | undefined,
): Promise<{ head: Buffer; rest?: AsyncIterable<Buffer> }> {
  const tooLarge = () => new TooLargeError(`artifact is larger than ARTIFACTS_MAX_BYTES (${maxBytes} bytes)`);
  if (!(body instanceof Readable)) {
    const bytes = typeof body === "string" ? Buffer.from(body) : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    if (bytes.length > maxBytes) throw tooLarge();
    if (bytes.length <= chunkSize) return { head: bytes };
    return { head: Buffer.alloc(0), rest: slices(bytes, chunkSize) };
  }
  const iterator = (signal ? addAbortSignal(signal, body) : body)[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
  const head: Buffer[] = [];
  let seen = 0;
  try {
    while (seen <= chunkSize) {
      const next = await iterator.next();
      if (next.done) return { head: Buffer.concat(head, seen) };
      const chunk = typeof next.value === "string" ? Buffer.from(next.value) : next.value;
      head.push(chunk);
      seen += chunk.length;
      if (seen > maxBytes) throw tooLarge();
    }
  } catch (error) {
    await iterator.return?.();
    throw error;
  }
  async function* rest(): AsyncGenerator<Buffer> {
    try {
      yield* head;
      for (;;) {
        const next = await iterator.next();
        if (next.done) return;
        const chunk = typeof next.value === "string" ? Buffer.from(next.value) : next.value;
        seen += chunk.length;
        if (seen > maxBytes) throw tooLarge();
        yield chunk;
      }
    } finally {
      await iterator.return?.();
    }
  }
  return { head: Buffer.alloc(0), rest: rest() };
}

async function* slices(bytes: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let offset = 0; offset < bytes.length; offset += size) yield bytes.subarray(offset, offset + size);
}
