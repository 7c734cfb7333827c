import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { extname } from "node:path";
import { Readable } from "node:stream";
import { InvalidInputError } from "../errors.js";
import { normalizeGrantee, validateArtifactPath, validateOperationId } from "../validate.js";
import { responseError, send, serverLocation, type Fetch } from "./http.js";

/** Options of {@link createWriterClient}. */
export interface WriterClientOptions {
  /** The server: `http(s)://host[:port][/prefix]`. */
  baseUrl: string;
  /** ARTIFACTS_WRITER_TOKEN (sent as a bearer token). */
  token: string;
  /** fetch implementation (default: the global one). */
  fetch?: Fetch;
}

/** Input of `createOperation`. */
export interface CreateOperationRequest {
  /** EVM address of the only reader: all lower case, all upper case, or mixed case with a valid EIP-55 checksum. */
  grantee: string;
  /** Agent name; the generated id is `<agent>_<epoch ms>`. */
  agent?: string;
  /** Explicit id; `conflict` if it exists. */
  operationId?: string;
  /** Lifetime in whole seconds, 1 to the server's ARTIFACTS_TTL; default that maximum. */
  ttlSeconds?: number;
}

/** The answer of `createOperation`. */
export interface CreatedOperation {
  operationId: string;
  /** Lower-case grantee address. */
  grantee: string;
  /** ISO-8601 UTC. */
  expiresAt: string;
}

/** The answer of `upload`. */
export interface UploadedArtifact {
  path: string;
  /** Plaintext bytes stored. */
  size: number;
  contentType: string;
}

/** An upload body: bytes, text, a Node stream, or any async iterable of bytes. */
export type UploadBody = Uint8Array | string | Readable | AsyncIterable<Uint8Array>;

/** Options of `upload` / `uploadFile`. */
export interface UploadOptions {
  /** Stored with the artifact and served on download. Default `application/octet-stream` (`uploadFile`: from the extension). */
  contentType?: string;
  /** Byte count of a stream body, when known: lets the server refuse an oversized upload before it starts. */
  contentLength?: number;
  /** Aborts the upload; nothing is stored. */
  signal?: AbortSignal;
}

/** Creates operations, uploads artifacts and deletes operations with the writer token. */
export interface WriterClient {
  createOperation(input: CreateOperationRequest): Promise<CreatedOperation>;
  /** Streams `body` to the server, which encrypts it as it arrives. Paths are immutable: a second upload is `conflict`. */
  upload(operationId: string, path: string, body: UploadBody, options?: UploadOptions): Promise<UploadedArtifact>;
  /** Uploads a file, streaming it from disk with its length announced. */
  uploadFile(operationId: string, path: string, filePath: string, options?: Omit<UploadOptions, "contentLength">): Promise<UploadedArtifact>;
  /** Deletes the operation and all its artifacts. */
  deleteOperation(operationId: string): Promise<void>;
}

const TYPES: Record<string, string> = {
  ".md": "text/markdown; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
  ".json": "application/json",
  ".csv": "text/csv; charset=utf-8",
  ".html": "text/html; charset=utf-8",
  ".pdf": "application/pdf",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".gz": "application/gzip",
  ".zip": "application/zip",
};

/**
 * The body's pieces as bytes, skipping empty ones: Node 22's fetch (undici 6) never sends a
 * streamed body that yields an empty piece, first or later (the request hangs until the
 * connection is dropped; Node 24's undici 7 sends it), and transforms, generators and network
 * sources can yield one.
 */
async function* nonEmptyPieces(source: AsyncIterable<Uint8Array | string>): AsyncGenerator<Uint8Array> {
  for await (const piece of source) {
    const bytes = typeof piece === "string" ? Buffer.from(piece, "utf8") : piece;
    if (bytes.length > 0) yield bytes;
  }
}

/** Content type for a file name by extension (`application/octet-stream` when unknown). */
export function contentTypeFor(fileName: string): string {
  return TYPES[extname(fileName).toLowerCase()] ?? "application/octet-stream";
}

/** Creates a writer client (bearer ARTIFACTS_WRITER_TOKEN). */
export function createWriterClient(options: WriterClientOptions): WriterClient {
  const location = serverLocation(options.baseUrl);
  const fetchImpl = options.fetch ?? fetch;
  const authorization = `Bearer ${options.token}`;
  const url = (apiPath: string): string => `${location.origin}${location.prefix}${apiPath}`;

  const upload = async (operationId: string, path: string, body: UploadBody, opts: UploadOptions = {}): Promise<UploadedArtifact> => {
    const target = url(`/api/v1/operations/${validateOperationId(operationId)}/artifacts/${validateArtifactPath(path)}`);
    const headers: Record<string, string> = { authorization, "content-type": opts.contentType ?? "application/octet-stream" };
    let requestBody: Uint8Array | string | AsyncIterable<Uint8Array>;
    if (typeof body === "string" || body instanceof Uint8Array) {
      requestBody = body;
    } else if (Symbol.asyncIterator in body) {
      requestBody = nonEmptyPieces(body);
      if (opts.contentLength !== undefined) {
        if (!Number.isSafeInteger(opts.contentLength) || opts.contentLength < 0) throw new InvalidInputError("contentLength must be a whole number of bytes");
        headers["content-length"] = String(opts.contentLength);
      }
    } else {
      throw new InvalidInputError("body must be bytes, a string, a Readable or an async iterable of bytes");
    }
    const response = await send(fetchImpl, target, {
      method: "PUT",
      headers,
      body: requestBody as RequestInit["body"],
      // Streams go out as they are read (request bodies in fetch need half duplex for that).
      duplex: "half",
      ...(opts.signal ? { signal: opts.signal } : {}),
    } as RequestInit);
    if (response.status !== 201) throw await responseError(response);
    return (await response.json()) as UploadedArtifact;
  };

  return {
    async createOperation(input) {
      // The server checks it too; refusing here keeps a mistyped address from leaving this process.
      normalizeGrantee(input.grantee);
      const response = await send(fetchImpl, url("/api/v1/operations"), {
        method: "POST",
        headers: { authorization, "content-type": "application/json" },
        body: JSON.stringify(input),
      });
      if (response.status !== 201) throw await responseError(response);
      return (await response.json()) as CreatedOperation;
    },

    upload,

    async uploadFile(operationId, path, filePath, opts = {}) {
      const { size } = await stat(filePath);
      return upload(operationId, path, createReadStream(filePath), {
        ...opts,
        contentType: opts.contentType ?? contentTypeFor(filePath),
        contentLength: size,
      });
    },

    async deleteOperation(operationId) {
      const response = await send(fetchImpl, url(`/api/v1/operations/${validateOperationId(operationId)}`), {
        method: "DELETE",
        headers: { authorization },
      });
      if (response.status !== 204) throw await responseError(response);
    },
  };
}
