import { bodyHash, signatureFormProblem, type Web3SignedPayload } from "@personal-server/artifacts/client";
import { type AuthFailureReason, unauthenticated } from "./failure-reason.js";
import { repeatedKey } from "./json-keys.js";
import type { NonceStore } from "./nonce-store.js";

/** Longest accepted lifetime of a signed payload (`exp - iat`), in seconds. */
export const MAX_PAYLOAD_LIFETIME_SECONDS = 300;
/** How far in the future `iat` may be (client clock ahead of ours), in seconds. */
export const MAX_CLOCK_SKEW_SECONDS = 30;

/** `bodyHash` of the empty body (GET and HEAD). */
export const EMPTY_BODY_HASH = bodyHash("");

export { bodyHash, type Web3SignedPayload };

// viem (its `viem/utils` subpath, never the root barrel) is loaded on the first signed request, not
// at start: it costs ~16 MiB of resident memory that a server only taking uploads never needs.
let recoverer: Promise<typeof import("viem/utils").recoverMessageAddress> | undefined;
function loadRecoverer(): Promise<typeof import("viem/utils").recoverMessageAddress> {
  recoverer ??= import("viem/utils").then((viem) => viem.recoverMessageAddress);
  return recoverer;
}

const FIELDS = ["aud", "bodyHash", "exp", "iat", "method", "nonce", "uri"] as const;
const HEADER = /^Web3Signed ([A-Za-z0-9_-]{1,4096})\.(0x[0-9a-fA-F]{130})$/i;
const NONCE = /^[A-Za-z0-9_-]{22,256}$/;
const BODY_HASH = /^sha256:[0-9a-f]{64}$/;
// ignoreBOM keeps a leading U+FEFF in the text, where JSON.parse refuses it: one accepted byte form.
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** What the request must match, as this server received it. */
export interface VerifyRequest {
  /** Audiences this server accepts (exact strings; from ARTIFACTS_AUDIENCE or localhost defaults). */
  audiences: ReadonlyMap<string, string>;
  /** Request method as received (upper case). */
  method: string;
  /** Raw request-target as received (path and query, undecoded); prefixed with the audience's path here. */
  target: string;
  /** `sha256:<hex>` of the body received. */
  bodyHash: string;
  /** Current time, unix seconds. */
  now: number;
  /** Spent nonces (this process, or shared by every replica). */
  nonces: NonceStore;
}

/** A verified grantee request: the recovered signer (checksummed) and its payload. */
export interface VerifiedSigner {
  address: `0x${string}`;
  payload: Web3SignedPayload;
}

function reject(reason: AuthFailureReason, message: string): never {
  throw unauthenticated(reason, message);
}

/**
 * Verifies a `Web3Signed` Authorization header per docs/http-api.md#authentication and returns the signer. Throws
 * `unauthenticated` for anything malformed, stale, already spent or aimed at another request. Whether
 * the signer is the grantee is the store's check (404 otherwise), not this one; the nonce is spent
 * after that check, by {@link spendNonce}.
 *
 * Cheap refusals first: syntax, audience, method, URI, body hash, times and an already spent
 * nonce are all checked before the signature is recovered, the one costly step.
 */
export async function verifyWeb3Signed(header: string | undefined, request: VerifyRequest): Promise<VerifiedSigner> {
  if (header === undefined || header === "") reject("missing", "missing Authorization: Web3Signed <payload>.<signature>");
  const match = HEADER.exec(header);
  if (match === null) reject("malformed", "Authorization must be Web3Signed <base64url payload>.<0x-hex 65-byte signature>");
  const encoded = match[1]!;
  const signature = match[2]! as `0x${string}`;
  const form = signatureFormProblem(signature);
  if (form !== undefined) reject("malformed", `Web3Signed signature ${form}`);

  const bytes = Buffer.from(encoded, "base64url");
  if (bytes.toString("base64url") !== encoded) reject("malformed", "Web3Signed payload is not unpadded base64url");
  let text: string;
  let parsed: unknown;
  try {
    text = utf8.decode(bytes);
    parsed = JSON.parse(text);
  } catch {
    reject("malformed", "Web3Signed payload is not UTF-8 JSON");
  }
  const repeated = repeatedKey(text);
  if (repeated !== undefined) reject("malformed", `Web3Signed payload has the field ${JSON.stringify(repeated)} twice`);
  const payload = checkShape(parsed);

  const prefix = request.audiences.get(payload.aud);
  if (prefix === undefined) reject("wrong_request", "Web3Signed aud is not this server's audience");
  if (payload.method !== request.method) reject("wrong_request", "Web3Signed method does not match the request method");
  if (payload.uri !== prefix + request.target) reject("wrong_request", "Web3Signed uri does not match the request target");
  if (payload.bodyHash !== request.bodyHash) reject("wrong_request", "Web3Signed bodyHash does not match the request body");
  const lifetime = payload.exp - payload.iat;
  if (lifetime <= 0 || lifetime > MAX_PAYLOAD_LIFETIME_SECONDS) {
    reject("time", `Web3Signed exp - iat must be between 1 and ${MAX_PAYLOAD_LIFETIME_SECONDS} seconds`);
  }
  if (payload.iat > request.now + MAX_CLOCK_SKEW_SECONDS) reject("time", "Web3Signed iat is in the future");
  if (request.now >= payload.exp) reject("time", "Web3Signed payload has expired");
  // Cheap early refusal of a replay; the authoritative check is spend() after the signature verifies.
  if (await request.nonces.isSpent(payload.nonce, request.now)) reject("replayed", "Web3Signed nonce was already used");

  const recoverMessageAddress = await loadRecoverer();
  let address: `0x${string}`;
  try {
    address = await recoverMessageAddress({ message: text!, signature });
  } catch {
    reject("bad_signature", "Web3Signed signature is invalid");
  }
  // Not spent here: only once the store finds the signer is the operation's grantee (spendNonce),
  // so strangers' signatures never fill the spent-nonce store.
  return { address, payload };
}

/**
 * Spends a verified payload's nonce, atomically: `unauthenticated` if it already was (a replay,
 * perhaps a concurrent one), `storage_unavailable` (503) if the store cannot take it, and the
 * request is then not served.
 */
export async function spendNonce(nonces: NonceStore, payload: Web3SignedPayload, now: number): Promise<void> {
  if ((await nonces.spend(payload.nonce, payload.exp, now)) === "spent") reject("replayed", "Web3Signed nonce was already used");
}

function checkShape(value: unknown): Web3SignedPayload {
  if (typeof value !== "object" || value === null || Array.isArray(value)) reject("malformed", "Web3Signed payload must be a JSON object");
  const keys = Object.keys(value).sort();
  if (keys.length !== FIELDS.length || keys.some((key, i) => key !== FIELDS[i])) {
    reject("malformed", `Web3Signed payload must have exactly the fields ${FIELDS.join(", ")}`);
  }
  const p = value as Record<string, unknown>;
  if (typeof p.aud !== "string" || typeof p.method !== "string" || typeof p.uri !== "string") {
    reject("malformed", "Web3Signed aud, method and uri must be strings");
  }
  if (typeof p.bodyHash !== "string" || !BODY_HASH.test(p.bodyHash)) reject("malformed", "Web3Signed bodyHash must be sha256:<64 lower-case hex>");
  if (!Number.isSafeInteger(p.iat) || !Number.isSafeInteger(p.exp)) reject("malformed", "Web3Signed iat and exp must be integers (unix seconds)");
  if (typeof p.nonce !== "string" || !NONCE.test(p.nonce) || Buffer.from(p.nonce, "base64url").length < 16) {
    reject("malformed", "Web3Signed nonce must be at least 16 random bytes, base64url");
  }
  return p as unknown as Web3SignedPayload;
}

/**
 * The audiences this server accepts, each mapped to the path prefix it mounts the API under.
 * ARTIFACTS_AUDIENCE when set (never Host or X-Forwarded-*); otherwise the two loopback spellings
 * with the port the server listens on.
 */
export function acceptedAudiences(audience: string | undefined, port: number): Map<string, string> {
  if (audience !== undefined) {
    return new Map([[audience, new URL(audience).pathname.replace(/\/+$/, "")]]);
  }
  const accepted = new Map([
    [`http://localhost:${port}`, ""],
    [`http://127.0.0.1:${port}`, ""],
  ]);
  // A client that builds aud from URL.origin drops the default port.
  if (port === 80) for (const host of ["localhost", "127.0.0.1"]) accepted.set(`http://${host}`, "");
  return accepted;
}
