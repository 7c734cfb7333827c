import rateLimit from "@fastify/rate-limit";
import { RateLimitedError, UnauthenticatedError } from "@personal-server/artifacts";
import type { FastifyInstance, FastifyRequest } from "fastify";

/** Runs an authentication check for a request; see {@link authFailureLimit}. */
export type Authenticate = <T>(request: FastifyRequest, check: () => T | Promise<T>) => Promise<T>;

/** The per-client budget of failed authentications. */
export interface FailureLimit {
  /** Runs `check` unless the client is past its budget (429); a 401 it throws counts against the budget. */
  authenticated: Authenticate;
  /** Counts a failure that is not a 401: a signature that recovered to someone other than the grantee. */
  fail(request: FastifyRequest): Promise<void>;
}

/**
 * Counts failed authentications per client (`request.ip`: the socket's peer, or the client
 * X-Forwarded-For names when the peer is a trusted proxy) and minute: every 401, and every
 * signature recovered for a request whose signer is not the operation's grantee. A client past
 * `limit` is refused with 429 `rate_limited` before its check runs, signature recovery included.
 */
export async function authFailureLimit(app: FastifyInstance, limit: number): Promise<FailureLimit> {
  await app.register(rateLimit, { global: false });
  const failures = app.createRateLimit({ max: limit, timeWindow: 60_000 });
  const authenticated: Authenticate = async (request, check) => {
    const seen = await failures(request, { increment: false });
    if (!seen.isAllowed && seen.remaining === 0) {
      const retryAfterSeconds = Math.max(1, seen.ttlInSeconds);
      throw new RateLimitedError(`too many failed authentications from this client; retry in ${retryAfterSeconds} s`, {
        details: { retryAfterSeconds },
      });
    }
    try {
      return await check();
    } catch (error) {
      if (error instanceof UnauthenticatedError) await failures(request);
      throw error;
    }
  };
  return {
    authenticated,
    fail: async (request) => {
      await failures(request);
    },
  };
}
