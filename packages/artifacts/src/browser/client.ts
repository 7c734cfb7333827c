// The grantee's browser client: signed listing and delivery tickets (the bytes come from the ticket's URL).
import { IntegrityError } from "../errors.js";
import { responseError, send, serverLocation, type Fetch } from "../client/http.js";
import { checkTicket, type DeliveryTicket } from "../client/direct.js";
import { checkTicketListing, type ArtifactListing, type TicketListing } from "../client/listing.js";
import type { MessageSigner } from "../client/web3signed-payload.js";
import { validateArtifactPath, validateOperationId } from "../validate.js";
import { signRequest } from "./eip1193.js";

/** Options of {@link createBrowserClient}. */
export interface BrowserClientOptions {
  /** The server: `http(s)://host[:port][/prefix]`. */
  baseUrl: string;
  /** The grantee's signer: `providerSigner(window.ethereum, address)`. */
  signer: MessageSigner;
  /** Lifetime of each signed request, seconds (1 to 300). Default 60. */
  signatureLifetimeSeconds?: number;
  /** fetch implementation (default: the global one). */
  fetch?: Fetch;
}

/** Lists an operation's artifacts and asks for their delivery tickets, every request signed by the grantee. */
export interface BrowserClient {
  readonly address: `0x${string}`;
  /** The audience requests are signed for (the server's origin and prefix). */
  readonly audience: string;
  /** Lists the operation's artifacts (no tickets). */
  list(operationId: string, options?: { signal?: AbortSignal }): Promise<ArtifactListing>;
  /**
   * Lists the operation's artifacts with a ticket for each: the wallet signs once for all of them.
   * An artifact whose stored bytes fail the server's checks has `error` instead of `ticket`.
   */
  tickets(operationId: string, options?: { signal?: AbortSignal }): Promise<TicketListing>;
  /** A fresh ticket for one artifact. */
  ticket(operationId: string, path: string, options?: { signal?: AbortSignal }): Promise<DeliveryTicket>;
}

/** Creates a browser client; it imports no Node built-ins (WebCrypto, fetch, streams). */
export function createBrowserClient(options: BrowserClientOptions): BrowserClient {
  const location = serverLocation(options.baseUrl);
  const fetchImpl = options.fetch ?? ((input, init) => fetch(input, init));
  const { signer } = options;

  const getJson = async (apiPath: string, signal: AbortSignal | undefined): Promise<unknown> => {
    const url = new URL(`${location.origin}${location.prefix}${apiPath}`);
    const authorization = await signRequest(signer, {
      audience: location.audience,
      method: "GET",
      // The exact target fetch sends (after URL parsing), so the signature covers what the server receives.
      uri: `${url.pathname}${url.search}`,
      ...(options.signatureLifetimeSeconds === undefined ? {} : { lifetimeSeconds: options.signatureLifetimeSeconds }),
    });
    const response = await send(fetchImpl, url.href, { method: "GET", headers: { authorization }, cache: "no-store", ...(signal ? { signal } : {}) });
    if (response.status !== 200) throw await responseError(response);
    try {
      return await response.json();
    } catch (error) {
      throw new IntegrityError(`the answer of ${url.pathname} is not JSON`, { cause: error });
    }
  };

  const artifactsPath = (operationId: string): string => `/api/v1/operations/${validateOperationId(operationId)}/artifacts`;

  return {
    address: signer.address,
    audience: location.audience,

    async list(operationId, opts = {}) {
      return (await getJson(artifactsPath(operationId), opts.signal)) as ArtifactListing;
    },

    async tickets(operationId, opts = {}) {
      return checkTicketListing(await getJson(`${artifactsPath(operationId)}?delivery=direct`, opts.signal));
    },

    async ticket(operationId, path, opts = {}) {
      const target = `${artifactsPath(operationId)}/${validateArtifactPath(path)}?delivery=direct`;
      return checkTicket((await getJson(target, opts.signal)) as DeliveryTicket, path);
    },
  };
}
