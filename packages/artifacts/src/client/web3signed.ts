import { createHash, randomBytes } from "node:crypto";
import { buildPayload, web3SignedAuthorization, type MessageSigner, type SignRequestInput } from "./web3signed-payload.js";

export {
  canonicalSignature,
  signatureFormProblem,
  web3SignedAuthorization,
  type MessageSigner,
  type SignRequestInput,
  type Web3SignedPayload,
} from "./web3signed-payload.js";

/** `sha256:<hex>` of a body, as `bodyHash` carries it. */
export function bodyHash(body: string | Uint8Array = ""): string {
  return `sha256:${createHash("sha256").update(body).digest("hex")}`;
}

/** A fresh nonce: 16 random bytes, base64url (22 characters). */
export function newNonce(): string {
  return randomBytes(16).toString("base64url");
}

/** Builds and signs a fresh payload (new nonce, iat now) for one request; returns the Authorization header value. */
export async function signRequest(signer: MessageSigner, input: SignRequestInput): Promise<string> {
  return web3SignedAuthorization(signer, buildPayload(input, bodyHash(input.body ?? ""), newNonce()));
}
