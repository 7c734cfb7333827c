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
  /** Throws `unauthenticated` unless the request carries the writer bearer token. */
  requireWriter(request: FastifyRequest): void;
  /** Verifies the request's Web3Signed header and returns the signer's address (401 otherwise). */
  requireSigner(request: FastifyRequest): Promise<string>;
}

/** A route handler: answers through `reply` or throws an ArtifactError. */
export type Handler = (ctx: Context, request: FastifyRequest, reply: FastifyReply, match: RouteMatch) => Promise<void>;
