import rateLimit from "@fastify/rate-limit";
import { RateLimitedError, UnauthenticatedError } from "@personal-server/artifacts";
import type { FastifyInstance, FastifyRequest } from "fastify";

/** Runs an authentication check for a request; see {@link authFailureLimit}. */
export type Authenticate = <T>(request: FastifyRequest, check: () => T | Promise<T>) => Promise<T>;

/**
 * Counts failed authentications (401) per client (`request.ip`: the socket's peer, or the client
 * X-Forwarded-For names when the peer is a trusted proxy) and minute. A client past `limit` is
 * refused with 429 `rate_limited` before its check runs, signature recovery included.
 */
export async function authFailureLimit(app: FastifyInstance, limit: number): Promise<Authenticate> {
  await app.register(rateLimit, { global: false });
  const failures = app.createRateLimit({ max: limit, timeWindow: 60_000 });
  return async (request, check) => {
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
}
