import type { ArtifactStore, ArtifactsConfig } from "@personal-server/artifacts";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { ServerMetrics } from "./metrics.js";
import type { RouteMatch } from "./routes.js";

/** What every route handler gets: the store, config, metrics and the two authentication checks. */
export interface Context {
  readonly config: ArtifactsConfig;
  readonly store: ArtifactStore;
  readonly metrics: ServerMetrics;
  /** Largest JSON body accepted (POST /api/v1/operations). */
  readonly jsonBodyLimit: number;
  /** The port this server listens on (for the loopback audience when ARTIFACTS_AUDIENCE is unset). */
  port(): number;
  /**
   * Throws `unauthenticated` unless the request carries the writer bearer token (`rate_limited`
   * first, for a client past its authentication failures).
   */
  requireWriter(request: FastifyRequest): Promise<void>;
  /**
   * Verifies the request's Web3Signed header (401 otherwise; 429 as above) and returns what the
   * store's read takes: the signer's address and the hook that spends the nonce once the store
   * finds the signer is the grantee. A request whose signer never turns out to be the grantee
   * counts as a failed authentication.
   */
  requireSigner(request: FastifyRequest): Promise<Signer>;
}

/** A verified grantee request as the store's reads take it (`ReadOptions`). */
export interface Signer {
  /** The recovered signer's address. */
  readonly requester: string;
  /** Spends the signature's nonce (once, however often called): 401 if it already was. */
  readonly onGrantee: () => Promise<void>;
}

/** A route handler: answers through `reply` or throws an ArtifactError. */
export type Handler = (ctx: Context, request: FastifyRequest, reply: FastifyReply, match: RouteMatch) => Promise<void>;
