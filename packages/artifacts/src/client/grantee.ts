import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { rename, unlink } from "node:fs/promises";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { IntegrityError, NotFoundError } from "../errors.js";
import { validateArtifactPath, validateOperationId } from "../validate.js";
import { nodePieceCipher } from "../crypto/node-cipher.js";
import { type DeliveryTicket, readDirect, resolveRange } from "./direct.js";
import { responseError, send, serverLocation, type Fetch } from "./http.js";
import { checkTicketListing, type ArtifactListing, type ByteRangeRequest, type TicketListing } from "./listing.js";
import { signRequest, type MessageSigner } from "./web3signed.js";

export type { ArtifactListing, ByteRangeRequest, RemoteArtifact, TicketedArtifact, TicketFailure, TicketListing } from "./listing.js";

/** Options of {@link createGranteeClient}. */
export interface GranteeClientOptions {
  /** The server: `http(s)://host[:port][/prefix]` (the prefix when it is mounted under a path). */
  baseUrl: string;
  /** The grantee's signer, e.g. viem's `privateKeyToAccount(key)`. */
  account: MessageSigner;
  /** Lifetime of each signed request, seconds (1 to 300). Default 60. */
  signatureLifetimeSeconds?: number;
  /** fetch implementation (default: the global one). */
  fetch?: Fetch;
  /** Direct downloads: ciphertext bytes per request to storage, in whole chunks (default: one request per download). */
  directSegmentBytes?: number;
}

/** Options of `download` and `downloadToFile`. */
export interface DownloadOptions {
  /** Only these bytes (the answer is then 206). */
  range?: ByteRangeRequest;
  /** Aborts the request. */
  signal?: AbortSignal;
  /**
   * Direct delivery: fetch the ciphertext from storage through a ticket and verify and decrypt it
   * here; the server answers one small signed request. Default false (the server decrypts).
   */
  direct?: boolean;
  /** With `direct`: a ticket already in hand (from `tickets`), so no signature is needed until its URL expires. */
  ticket?: DeliveryTicket;
}

/** What the server said about a download, next to its bytes. */
export interface DownloadInfo {
  /** 200 for the whole artifact, 206 for a range. */
  status: number;
  contentType: string;
  /** Bytes in this answer. */
  contentLength: number;
  /** Size of the whole artifact. */
  size: number;
  /** Strong entity tag, unquoted. */
  etag: string;
  /** The range served, for a 206. */
  range?: { start: number; end: number };
}

/** A download: the plaintext as a stream, plus what the server said about it. */
export type DownloadStream = Readable & { readonly artifact: DownloadInfo };

/**
 * Reads one operation's artifacts as its grantee; every request is signed with a fresh nonce.
 * An operation that is missing or shared with another wallet fails alike with `NotFoundError`
 * (the server does not say which); `ExpiredError` reaches only the grantee.
 */
export interface GranteeClient {
  /** The grantee's address. */
  readonly address: `0x${string}`;
  /** Lists the operation's artifacts. */
  list(operationId: string, options?: { signal?: AbortSignal }): Promise<ArtifactListing>;
  /** HEAD of an artifact: its size, type and ETag without the bytes. */
  stat(operationId: string, path: string, options?: { signal?: AbortSignal }): Promise<DownloadInfo>;
  /**
   * Downloads an artifact (or a range of it) as a stream. The stream errors with `integrity`
   * if the answer ends short, which is how the server signals bytes that failed to verify.
   */
  download(operationId: string, path: string, options?: DownloadOptions): Promise<DownloadStream>;
  /** A delivery ticket for one artifact (its URL, key and sizes); the same checks as a download. */
  ticket(operationId: string, path: string, options?: { signal?: AbortSignal }): Promise<DeliveryTicket>;
  /** Every artifact's ticket in one signed request; an artifact whose stored bytes fail the server's checks has `error` instead. */
  tickets(operationId: string, options?: { signal?: AbortSignal }): Promise<TicketListing>;
  /** Downloads to `filePath` (written to a temp file beside it, then renamed into place). */
  downloadToFile(operationId: string, path: string, filePath: string, options?: DownloadOptions): Promise<{ filePath: string; bytes: number; etag: string }>;
}

function rangeHeader(range: ByteRangeRequest): string {
  if ("suffix" in range) return `bytes=-${range.suffix}`;
  return `bytes=${range.start}-${range.end ?? ""}`;
}

function downloadInfo(response: Response): DownloadInfo {
  const contentLength = Number(response.headers.get("content-length") ?? "NaN");
  const etag = (response.headers.get("etag") ?? "").replace(/^"|"$/g, "");
  const contentType = response.headers.get("content-type") ?? "application/octet-stream";
  const match = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(response.headers.get("content-range") ?? "");
  if (response.status === 206 && match !== null) {
    return {
      status: 206,
      contentType,
      contentLength,
      size: Number(match[3]),
      etag,
      range: { start: Number(match[1]), end: Number(match[2]) },
    };
  }
  return { status: response.status, contentType, contentLength, size: contentLength, etag };
}

/** Creates a client that signs each request (Web3Signed, docs/http-api.md) with `account`. */
export function createGranteeClient(options: GranteeClientOptions): GranteeClient {
  const location = serverLocation(options.baseUrl);
  const fetchImpl = options.fetch ?? fetch;
  const { account } = options;

  const request = async (method: string, apiPath: string, headers: Record<string, string>, signal?: AbortSignal): Promise<Response> => {
    const url = new URL(`${location.origin}${location.prefix}${apiPath}`);
    // The exact target fetch sends (after URL parsing), so the signature covers what the server receives.
    const uri = `${url.pathname}${url.search}`;
    const authorization = await signRequest(account, {
      audience: location.audience,
      method,
      uri,
      ...(options.signatureLifetimeSeconds === undefined ? {} : { lifetimeSeconds: options.signatureLifetimeSeconds }),
    });
    return send(fetchImpl, url.href, { method, headers: { ...headers, authorization }, ...(signal ? { signal } : {}) });
  };

  const artifactPath = (operationId: string, path: string): string =>
    `/api/v1/operations/${validateOperationId(operationId)}/artifacts/${validateArtifactPath(path)}`;

  const ticket = async (operationId: string, path: string, signal?: AbortSignal): Promise<DeliveryTicket> => {
    const response = await request("GET", `${artifactPath(operationId, path)}?delivery=direct`, {}, signal);
    if (response.status !== 200) throw await responseError(response);
    return (await response.json()) as DeliveryTicket;
  };

  const downloadDirect = async (operationId: string, path: string, opts: DownloadOptions): Promise<DownloadStream> => {
    const first = opts.ticket ?? (await ticket(operationId, path, opts.signal));
    const range = opts.range === undefined ? undefined : resolveRange(opts.range, first.size);
    const contentLength = range === undefined ? first.size : range.end - range.start + 1;
    const info: DownloadInfo = {
      status: range === undefined ? 200 : 206,
      contentType: first.contentType,
      contentLength,
      size: first.size,
      etag: first.etag,
      ...(range === undefined ? {} : { range }),
    };
    const plaintext = readDirect(first, {
      renew: () => ticket(operationId, path, opts.signal),
      fetch: fetchImpl,
      range,
      path,
      ...(options.directSegmentBytes === undefined ? {} : { segmentBytes: options.directSegmentBytes }),
      ...(opts.signal ? { signal: opts.signal } : {}),
      pieceCipher: nodePieceCipher,
    });
    async function* counted(): AsyncGenerator<Uint8Array> {
      let received = 0;
      for await (const piece of plaintext) {
        received += piece.length;
        yield piece;
      }
      if (received !== contentLength) throw new IntegrityError(`direct download of ${path} gave ${received} of ${contentLength} bytes`);
    }
    return Object.assign(Readable.from(counted(), { objectMode: false }), { artifact: info });
  };

  const download = async (operationId: string, path: string, opts: DownloadOptions = {}): Promise<DownloadStream> => {
    if (opts.direct === true) return downloadDirect(operationId, path, opts);
    const headers: Record<string, string> = {};
    if (opts.range !== undefined) headers.range = rangeHeader(opts.range);
    const response = await request("GET", artifactPath(operationId, path), headers, opts.signal);
    if (response.status !== 200 && response.status !== 206) throw await responseError(response);
    const info = downloadInfo(response);
    const body = response.body;
    async function* relay(): AsyncGenerator<Uint8Array> {
      let received = 0;
      try {
        if (body !== null) {
          for await (const chunk of body) {
            received += chunk.length;
            yield chunk;
          }
        }
      } catch (error) {
        throw new IntegrityError(
          `download of ${path} was cut after ${received} of ${info.contentLength} bytes (the server ends a download this way when stored bytes fail to verify)`,
          { cause: error },
        );
      }
      if (received !== info.contentLength) {
        throw new IntegrityError(`download of ${path} ended after ${received} of ${info.contentLength} bytes`);
      }
    }
    return Object.assign(Readable.from(relay(), { objectMode: false }), { artifact: info });
  };

  return {
    address: account.address,

    async list(operationId, opts = {}) {
      const response = await request("GET", `/api/v1/operations/${validateOperationId(operationId)}/artifacts`, {}, opts.signal);
      if (response.status !== 200) throw await responseError(response);
      return (await response.json()) as ArtifactListing;
    },

    async stat(operationId, path, opts = {}) {
      const response = await request("HEAD", artifactPath(operationId, path), {}, opts.signal);
      if (response.status === 404) {
        // A HEAD answer has no body to say which: the same 404 covers a missing path and an operation missing or not shared.
        throw new NotFoundError(`artifact ${path} of operation ${operationId} not found, or the operation is not shared with this wallet`, {
          details: { status: 404 },
        });
      }
      if (response.status !== 200) throw await responseError(response);
      return downloadInfo(response);
    },

    download,

    ticket: (operationId, path, opts = {}) => ticket(operationId, path, opts.signal),

    async tickets(operationId, opts = {}) {
      const response = await request("GET", `/api/v1/operations/${validateOperationId(operationId)}/artifacts?delivery=direct`, {}, opts.signal);
      if (response.status !== 200) throw await responseError(response);
      return checkTicketListing(await response.json());
    },

    async downloadToFile(operationId, path, filePath, opts = {}) {
      const stream = await download(operationId, path, opts);
      const temp = `${filePath}.${randomBytes(6).toString("hex")}.partial`;
      try {
        await pipeline(stream, createWriteStream(temp, { flags: "wx", mode: 0o600 }));
        await rename(temp, filePath);
      } catch (error) {
        await unlink(temp).catch(() => {});
        throw error;
      }
      // The relay checked that exactly contentLength bytes arrived.
      return { filePath, bytes: stream.artifact.contentLength, etag: stream.artifact.etag };
    },
  };
}
