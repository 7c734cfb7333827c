import { createHash, randomBytes } from "node:crypto";

/**
 * Anything that can `personal_sign` (EIP-191) a text message: a viem `LocalAccount`
 * (`privateKeyToAccount(...)`), or any wrapper around a wallet with the same method.
 */
export interface MessageSigner {
  /** The signer's EVM address. */
  readonly address: `0x${string}`;
  /** EIP-191 personal_sign of the UTF-8 text `message`; returns the 65-byte signature as 0x-hex. */
  signMessage(args: { message: string }): Promise<`0x${string}`>;
}

/** The signed payload of `Authorization: Web3Signed <payload>.<signature>` (docs/http-api.md#authentication). */
export interface Web3SignedPayload {
  /** The server's audience: its public origin plus path prefix, no trailing slash. */
  aud: string;
  /** Request method, upper case. */
  method: string;
  /** Raw request-target as sent to the audience: path and query, not decoded. */
  uri: string;
  /** `sha256:<hex>` of the request body (of the empty string for GET and HEAD). */
  bodyHash: string;
  /** Issued at, unix seconds. */
  iat: number;
  /** Expires at, unix seconds; `0 < exp - iat <= 300`. */
  exp: number;
  /** At least 16 random bytes, base64url; a nonce is accepted once. */
  nonce: string;
}

/** `sha256:<hex>` of a body, as `bodyHash` carries it. */
export function bodyHash(body: string | Uint8Array = ""): string {
  return `sha256:${createHash("sha256").update(body).digest("hex")}`;
}

/** A fresh nonce: 16 random bytes, base64url (22 characters). */
export function newNonce(): string {
  return randomBytes(16).toString("base64url");
}

/**
 * Signs `payload` exactly as given (its JSON text, fields in the order given, is what the wallet
 * shows and signs) and returns the Authorization header value. Low level: tests and other
 * languages' ports use it to see the exact bytes; clients use {@link signRequest}.
 */
export async function web3SignedAuthorization(signer: MessageSigner, payload: Web3SignedPayload | Record<string, unknown>): Promise<string> {
  const text = JSON.stringify(payload);
  const signature = await signer.signMessage({ message: text });
  return `Web3Signed ${Buffer.from(text, "utf8").toString("base64url")}.${signature}`;
}

/** What to sign with {@link signRequest}. */
export interface SignRequestInput {
  /** The server's audience (origin + path prefix, no trailing slash). */
  audience: string;
  /** Method, any case (sent upper case). */
  method: string;
  /** Raw request-target exactly as sent: path and query. */
  uri: string;
  /** Request body, if any (hashed into `bodyHash`). */
  body?: string | Uint8Array;
  /** Lifetime in seconds (1 to 300). Default 60. */
  lifetimeSeconds?: number;
  /** Clock, for tests. */
  now?: () => Date;
}

/** Builds and signs a fresh payload (new nonce, iat now) for one request; returns the Authorization header value. */
export async function signRequest(signer: MessageSigner, input: SignRequestInput): Promise<string> {
  const iat = Math.floor((input.now?.() ?? new Date()).getTime() / 1000);
  const payload: Web3SignedPayload = {
    aud: input.audience,
    method: input.method.toUpperCase(),
    uri: input.uri,
    bodyHash: bodyHash(input.body ?? ""),
    iat,
    exp: iat + (input.lifetimeSeconds ?? 60),
    nonce: newNonce(),
  };
  return web3SignedAuthorization(signer, payload);
}
