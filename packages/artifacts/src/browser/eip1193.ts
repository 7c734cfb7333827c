// Web3Signed requests signed by an EIP-1193 wallet (`window.ethereum`): the browser's MessageSigner.
import { UnauthenticatedError } from "../errors.js";
import { base64url, buildPayload, web3SignedAuthorization, type MessageSigner, type SignRequestInput } from "../client/web3signed-payload.js";
import { normalizeGrantee } from "../validate.js";

/** The one method of an EIP-1193 provider this client calls. */
export interface Eip1193Provider {
  request(args: { method: string; params?: unknown[] }): Promise<unknown>;
}

const SIGNATURE = /^0x[0-9a-fA-F]{130}$/;

function hexOfText(text: string): `0x${string}` {
  let hex = "0x";
  for (const byte of new TextEncoder().encode(text)) hex += byte.toString(16).padStart(2, "0");
  return hex as `0x${string}`;
}

/** A wallet refusal (EIP-1193 code 4001) or any provider failure, as `unauthenticated`. */
function walletError(error: unknown, what: string): UnauthenticatedError {
  const code = (error as { code?: unknown }).code;
  const message = (error as { message?: unknown }).message;
  const reason = code === 4001 ? "the wallet refused" : `the wallet failed: ${typeof message === "string" ? message : String(error)}`;
  return new UnauthenticatedError(`${what}: ${reason}`, { cause: error });
}

/** Asks the wallet for its accounts (`eth_requestAccounts`) and returns the first. */
export async function requestAccount(provider: Eip1193Provider): Promise<`0x${string}`> {
  let accounts: unknown;
  try {
    accounts = await provider.request({ method: "eth_requestAccounts" });
  } catch (error) {
    throw walletError(error, "connecting the wallet");
  }
  const first = Array.isArray(accounts) ? accounts[0] : undefined;
  try {
    normalizeGrantee(first, "the wallet's account");
  } catch (error) {
    throw new UnauthenticatedError(`the wallet returned no valid account: ${(error as Error).message}`, { cause: error });
  }
  return first as `0x${string}`;
}

/**
 * `address`'s signer through the wallet: `personal_sign` of the payload's UTF-8 bytes (hex-encoded,
 * as EIP-1193 wallets expect), which is EIP-191 as the server verifies it.
 */
export function providerSigner(provider: Eip1193Provider, address: `0x${string}`): MessageSigner {
  return {
    address,
    async signMessage({ message }) {
      let signature: unknown;
      try {
        signature = await provider.request({ method: "personal_sign", params: [hexOfText(message), address] });
      } catch (error) {
        throw walletError(error, "signing the request");
      }
      if (typeof signature !== "string" || !SIGNATURE.test(signature)) throw new UnauthenticatedError("the wallet returned no 65-byte signature");
      return signature as `0x${string}`;
    },
  };
}

/** `sha256:<hex>` of a body, with WebCrypto. */
export async function bodyHashOf(body: string | Uint8Array = ""): Promise<string> {
  const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return `sha256:${Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** The browser's signRequest: same payload as the Node client's, WebCrypto for the hash and nonce. */
export async function signRequest(signer: MessageSigner, input: SignRequestInput): Promise<string> {
  const nonce = base64url(crypto.getRandomValues(new Uint8Array(16)));
  return web3SignedAuthorization(signer, buildPayload(input, await bodyHashOf(input.body ?? ""), nonce));
}
