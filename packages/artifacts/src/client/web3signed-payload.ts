// The Web3Signed payload and header, with no Node built-ins: the Node signer (web3signed.ts) and the
// browser client (../browser) build exactly the same bytes from here. docs/http-api.md, "Web3Signed".

/**
 * Anything that can `personal_sign` (EIP-191) a text message: a viem `LocalAccount`
 * (`privateKeyToAccount(...)`), an EIP-1193 wallet (`providerSigner` in the browser client), or
 * any wrapper around a wallet with the same method.
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

/** What to sign with `signRequest`. */
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

/** Unpadded base64url of `bytes`. */
export function base64url(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** A fresh payload (iat now) for one request, given its body hash and a fresh nonce. */
export function buildPayload(input: SignRequestInput, bodyHash: string, nonce: string): Web3SignedPayload {
  const iat = Math.floor((input.now?.() ?? new Date()).getTime() / 1000);
  return {
    aud: input.audience,
    method: input.method.toUpperCase(),
    uri: input.uri,
    bodyHash,
    iat,
    exp: iat + (input.lifetimeSeconds ?? 60),
    nonce,
  };
}

/** The order of secp256k1's group: a signature's `s` is accepted only in the lower half (EIP-2). */
const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const SIGNATURE = /^0x[0-9a-fA-F]{130}$/;

/**
 * Why the server refuses a 65-byte `r || s || v` signature's form, or `undefined` when it is the one
 * accepted form: `s` in the lower half of the curve order and `v` 27 or 28. Every ECDSA signature
 * has a high-s twin and wallets write `v` as 0/1 or 27/28; one accepted byte form per signed message.
 */
export function signatureFormProblem(signature: string): string | undefined {
  if (!SIGNATURE.test(signature)) return "must be 0x and 130 hex digits (65 bytes: r, s, v)";
  const v = Number.parseInt(signature.slice(130, 132), 16);
  if (v !== 27 && v !== 28) return `must end in v = 27 or 28 (1b or 1c), not ${v}`;
  if (BigInt(`0x${signature.slice(66, 130)}`) > SECP256K1_N / 2n) return "has a high s (EIP-2): send the low-s form";
  return undefined;
}

/**
 * The accepted form of a signature from any wallet: `v` 0/1 becomes 27/28 and a high `s` becomes
 * `n - s` with the other `v` (the same signer recovers from both). Anything else is returned as it is.
 */
export function canonicalSignature(signature: `0x${string}`): `0x${string}` {
  if (!SIGNATURE.test(signature)) return signature;
  const hex = signature.slice(2).toLowerCase();
  let v = Number.parseInt(hex.slice(128), 16);
  if (v === 0 || v === 1) v += 27;
  if (v !== 27 && v !== 28) return signature;
  let s = BigInt(`0x${hex.slice(64, 128)}`);
  if (s > SECP256K1_N / 2n) {
    s = SECP256K1_N - s;
    v = v === 27 ? 28 : 27;
  }
  return `0x${hex.slice(0, 64)}${s.toString(16).padStart(64, "0")}${v.toString(16)}`;
}

/**
 * Signs `payload` exactly as given (its JSON text, fields in the order given, is what the wallet
 * shows and signs) and returns the Authorization header value, the signature in its accepted form
 * ({@link canonicalSignature}). Low level: tests and other
 * languages' ports use it to see the exact bytes; clients use `signRequest`.
 */
export async function web3SignedAuthorization(signer: MessageSigner, payload: Web3SignedPayload | Record<string, unknown>): Promise<string> {
  const text = JSON.stringify(payload);
  const signature = canonicalSignature(await signer.signMessage({ message: text }));
  return `Web3Signed ${base64url(new TextEncoder().encode(text))}.${signature}`;
}
