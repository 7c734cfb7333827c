/**
 * Direct delivery (docs/http-api.md#direct-delivery): a ticket hands a grantee a short-lived URL
 * of an artifact's ciphertext and that artifact's own key, so the bytes go from storage to the
 * grantee without crossing the server, and are decrypted and verified by the grantee.
 *
 * R2/S3: the URL is a presigned GET. Local storage: the server's own delivery route, under an
 * HMAC-SHA256 signature with a key derived from the current master key (HKDF, info
 * `psa/v1 delivery`) over `exp NUL id NUL path NUL etag`.
 */
import { createHmac, hkdfSync, timingSafeEqual } from "node:crypto";
import type { Readable } from "node:stream";
import type { Backend, ByteRange } from "../backends/types.js";
import type { DeliveryTicket } from "../client/direct.js";
import type { MasterKeys } from "../config-types.js";
import { deriveArtifactKeyBytes, FORMAT_VERSION, HEADER_BYTES, parseHeader, plaintextSize } from "../crypto.js";
import { ConfigError, ExpiredError, ForbiddenError, IntegrityError } from "../errors.js";
import { type ArtifactEntry, artifactObjectKey } from "../metadata.js";
import { isOperationId, validateArtifactPath } from "../validate.js";

/** Longest lifetime of a delivery URL, seconds. */
export const DELIVERY_URL_MAX_SECONDS = 300;
/** Path of the local delivery route under the server's audience. */
export const DELIVERY_ROUTE = "/api/v1/delivery";

export type { DeliveryTicket };

/** The server's check of a local delivery URL passed: the object to serve. */
export interface DeliveredObject {
  /** Stored bytes of the whole object. */
  size: number;
  etag: string;
  /** The stored bytes (or an inclusive range of them). */
  open(range?: ByteRange): Promise<Readable>;
}

export interface TicketContext {
  masterKeys: MasterKeys;
  now: Date;
  /** Where the server is reached (`ARTIFACTS_AUDIENCE`): base of local delivery URLs. */
  localBaseUrl: string | undefined;
}

/** One answer for every local delivery URL that does not check out: bad, expired or unknown look alike. */
export function deliveryRefused(): ForbiddenError {
  return new ForbiddenError("delivery URL is invalid or has expired; ask for a new ticket");
}

function deliveryMacKey(masterKeys: MasterKeys): Buffer {
  const master = masterKeys.keys.get(masterKeys.currentKid);
  if (master === undefined) throw new ConfigError(`master key "${masterKeys.currentKid}" is not loaded`);
  return Buffer.from(hkdfSync("sha256", master, Buffer.alloc(0), "psa/v1 delivery", 32));
}

function deliveryMac(masterKeys: MasterKeys, exp: number, operationId: string, path: string, etag: string): Buffer {
  return createHmac("sha256", deliveryMacKey(masterKeys)).update(`${exp}\0${operationId}\0${path}\0${etag}`, "utf8").digest();
}

/**
 * The ticket for one artifact of an authorized, unexpired operation. The same checks as a ranged
 * download: sizes in metadata agree, the object exists with the committed length, its header's
 * chunk size is the recorded one (`integrity` otherwise).
 */
export async function issueTicket(
  ctx: TicketContext,
  backend: Backend,
  operationId: string,
  expiresAt: string,
  entry: ArtifactEntry,
  dataKey: Buffer,
): Promise<DeliveryTicket> {
  const { path } = entry;
  if (plaintextSize(entry.encryptedSize, entry.chunkSize) !== entry.size) {
    throw new IntegrityError(`metadata sizes of ${path} do not agree`);
  }
  const key = artifactObjectKey(operationId, path);
  // One read: the header, with the object's ETag and length.
  const header = await backend.getBytes(key, { start: 0, end: HEADER_BYTES - 1 });
  if (header === null) throw new IntegrityError(`object of ${path} is missing`);
  if (header.size !== entry.encryptedSize) {
    throw new IntegrityError(`object of ${path} has ${header.size} bytes, metadata says ${entry.encryptedSize}`);
  }
  const parsed = parseHeader(header.body);
  if (parsed.chunkSize !== entry.chunkSize) throw new IntegrityError(`chunk size of ${path} does not match its metadata`);

  // Whole seconds (SigV4's clock and `exp` both are): the URL dies no later than the operation.
  const nowS = Math.floor(ctx.now.getTime() / 1000);
  const exp = Math.min(nowS + DELIVERY_URL_MAX_SECONDS, Math.floor(Date.parse(expiresAt) / 1000));
  if (exp <= nowS) throw new ExpiredError(`operation ${operationId} expires at ${expiresAt}, too soon for a delivery URL`);
  const etag = header.etag;
  let url = await backend.presignGet(key, { expiresInSeconds: exp - nowS, signedAt: new Date(nowS * 1000) });
  if (url === null) {
    if (ctx.localBaseUrl === undefined) throw new ConfigError("direct delivery from local storage needs the server's address (ARTIFACTS_AUDIENCE)");
    const sig = deliveryMac(ctx.masterKeys, exp, operationId, path, etag).toString("base64url");
    url = `${ctx.localBaseUrl}${DELIVERY_ROUTE}/${operationId}/${path}?exp=${exp}&etag=${encodeURIComponent(etag)}&sig=${sig}`;
  }
  return {
    url,
    urlExpiresAt: new Date(exp * 1000).toISOString(),
    key: Buffer.from(await deriveArtifactKeyBytes(dataKey, parsed.salt, operationId, path)).toString("base64url"),
    format: { version: FORMAT_VERSION, chunkSize: entry.chunkSize },
    size: entry.size,
    encryptedSize: entry.encryptedSize,
    etag,
    contentType: entry.contentType,
  };
}

const QUERY = /^exp=(\d{1,12})&etag=([A-Za-z0-9-]{1,128})&sig=([A-Za-z0-9_-]{43})$/;

/**
 * Checks a local delivery URL (raw, undecoded id, path and query) and finds its object. The
 * signature is compared in constant time before any I/O; the object key is rebuilt from the
 * validated id and path, so nothing else under the data directory is reachable. Every refusal
 * is {@link deliveryRefused}.
 */
export async function openDelivery(
  masterKeys: MasterKeys,
  now: Date,
  localBackends: readonly Backend[],
  operationId: string,
  path: string,
  query: string,
): Promise<DeliveredObject> {
  const match = QUERY.exec(query);
  if (match === null || !isOperationId(operationId) || !validPath(path)) throw deliveryRefused();
  const exp = Number(match[1]);
  const etag = match[2]!;
  const given = Buffer.from(match[3]!, "base64url");
  // 43 characters carry 258 bits for 256: only the spelling that encodes zeros in the last 2 is the signature.
  if (given.toString("base64url") !== match[3]) throw deliveryRefused();
  if (Math.floor(now.getTime() / 1000) >= exp) throw deliveryRefused();
  const expected = deliveryMac(masterKeys, exp, operationId, path, etag);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw deliveryRefused();

  const key = artifactObjectKey(operationId, path);
  for (const backend of localBackends) {
    const head = await backend.head(key);
    if (head === null || head.etag !== etag) continue;
    return {
      size: head.size,
      etag,
      async open(range) {
        const body = await backend.getStream(key, range);
        if (body === null) throw deliveryRefused();
        return body;
      },
    };
  }
  throw deliveryRefused();
}

function validPath(path: string): boolean {
  try {
    validateArtifactPath(path);
    return true;
  } catch {
    return false;
  }
}
