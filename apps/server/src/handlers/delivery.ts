import { InvalidInputError, RangeNotSatisfiableError, type DeliveryTicket, type TicketListing } from "@personal-server/artifacts";
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from "fastify";
import type { Context, Handler, Signer } from "../context.js";
import { quoteEtag } from "../http/headers.js";
import { parseRange, resolveSuffix } from "../http/range.js";

/** The raw query of a request (after `?`, undecoded), `undefined` when there is none. */
export function rawQuery(request: FastifyRequest): string | undefined {
  const target = request.raw.url ?? "";
  const at = target.indexOf("?");
  return at === -1 ? undefined : target.slice(at + 1);
}

/**
 * What a grantee request asks for: the proxied bytes (the default; other queries are ignored, as
 * they always were) or, with `delivery` in the query, a delivery ticket. A ticket request's query
 * is exactly `delivery=direct` on a GET; any other `delivery` value or parameter beside it is
 * `invalid_input`.
 */
export function deliveryMode(request: FastifyRequest): "proxied" | "direct" {
  const query = rawQuery(request);
  if (query === undefined || !query.split("&").some((p) => p === "delivery" || p.startsWith("delivery="))) return "proxied";
  if (query === "delivery=direct" && request.method === "GET") return "direct";
  throw new InvalidInputError(
    request.method === "GET"
      ? "a delivery ticket is asked for with exactly ?delivery=direct and no other query parameter"
      : `delivery tickets are asked for with GET, not ${request.method}`,
  );
}

/** Where local delivery URLs point: ARTIFACTS_AUDIENCE, else the loopback audience this server accepts (never Host). */
function localBaseUrl(ctx: Context): string {
  return ctx.config.audience ?? `http://127.0.0.1:${ctx.port()}`;
}

/** GET /api/v1/operations/:id/artifacts/:path*?delivery=direct -> 200 ticket (after the checks of a download). */
export async function sendTicket(ctx: Context, reply: FastifyReply, id: string, path: string, signer: Signer): Promise<void> {
  const ticket = await ctx.store.deliveryTicket(id, path, { ...signer, localBaseUrl: localBaseUrl(ctx) });
  ctx.metrics.deliveryTickets.inc({ storage: ctx.store.kind });
  reply.header("Cache-Control", "no-store").send(ticketJson(ticket));
}

/** The listing with a ticket per artifact (for `GET /api/v1/operations/:id/artifacts?delivery=direct`), counted. */
export async function ticketListing(ctx: Context, log: FastifyBaseLogger, id: string, signer: Signer): Promise<TicketListing> {
  const listing = await ctx.store.deliveryTickets(id, { ...signer, localBaseUrl: localBaseUrl(ctx) });
  const failed = listing.artifacts.filter((a) => a.error !== undefined);
  // Served as an error beside the artifact, but an operator must hear of stored bytes gone bad.
  for (const a of failed) log.error({ operationId: id, path: a.path, code: a.error!.code }, `ticket listing: ${a.error!.message}`);
  ctx.metrics.deliveryTickets.inc({ storage: ctx.store.kind }, listing.artifacts.length - failed.length);
  return listing;
}

/** A ticket's JSON: exactly the documented fields. */
export function ticketJson(t: DeliveryTicket): DeliveryTicket {
  const { url, urlExpiresAt, key, format, size, encryptedSize, etag, contentType } = t;
  return { url, urlExpiresAt, key, format, size, encryptedSize, etag, contentType };
}

/**
 * GET|HEAD /api/v1/delivery/:id/:path*?exp=&etag=&sig= (no authentication but the URL's own
 * signature): the stored ciphertext of one artifact on local storage, with Range. Anything bad,
 * expired or unknown is one identical 403.
 */
export const delivery: Handler = async (ctx, request, reply, match) => {
  const object = await ctx.store.openDelivery(match.id ?? "", match.path ?? "", rawQuery(request) ?? "");
  reply
    .header("Content-Type", "application/octet-stream")
    .header("ETag", quoteEtag(object.etag))
    .header("Accept-Ranges", "bytes")
    .header("Cache-Control", "private, no-store")
    .header("X-Content-Type-Options", "nosniff");
  // HEAD answers what GET would, Range included (206 and Content-Range), as storage's presigned URLs do.
  const head = request.method === "HEAD";
  let range = parseRange(request.headers.range);
  if (range.kind === "suffix") {
    const resolved = resolveSuffix(range.length, object.size);
    range = resolved === null ? { kind: "range", start: object.size, end: undefined } : { kind: "range", ...resolved };
  }
  if (range.kind === "range") {
    const end = Math.min(range.end ?? object.size - 1, object.size - 1);
    if (range.start >= object.size) {
      throw new RangeNotSatisfiableError(`range starts beyond the end of the object (${object.size} bytes)`, { details: { size: object.size } });
    }
    reply.code(206).header("Content-Range", `bytes ${range.start}-${end}/${object.size}`).header("Content-Length", String(end - range.start + 1));
    reply.send(head ? undefined : await object.open({ start: range.start, end }));
    return;
  }
  reply.code(200).header("Content-Length", String(object.size)).send(head ? undefined : await object.open());
};
