import type { FastifyReply, FastifyRequest } from "fastify";

const ALLOW_METHODS = "GET, HEAD, PUT, POST, DELETE";
const ALLOW_HEADERS = "Authorization, Range, Content-Type, If-None-Match, If-Range";
const EXPOSE_HEADERS = "Content-Range, Content-Length, Content-Type, Content-Disposition, ETag, Accept-Ranges";

/**
 * CORS for the origins in ARTIFACTS_CORS_ORIGINS (exact matches; no credentials: auth travels in
 * the Authorization header, not cookies). Preflights get the allowed methods and headers; other
 * answers the exposed headers. Origins not listed get no CORS headers, so browsers block them.
 */
export function applyCors(origins: readonly string[], request: FastifyRequest, reply: FastifyReply): void {
  if (origins.length === 0) return;
  reply.header("Vary", "Origin");
  const origin = request.headers.origin;
  if (origin === undefined || !origins.includes(origin)) return;
  reply.header("Access-Control-Allow-Origin", origin);
  if (request.method === "OPTIONS" && request.headers["access-control-request-method"] !== undefined) {
    reply
      .header("Access-Control-Allow-Methods", ALLOW_METHODS)
      .header("Access-Control-Allow-Headers", ALLOW_HEADERS)
      .header("Access-Control-Max-Age", "600");
  } else {
    reply.header("Access-Control-Expose-Headers", EXPOSE_HEADERS);
  }
}
