import type { ArtifactInfo, TicketListing } from "@personal-server/artifacts";
import type { Handler } from "../context.js";
import { validatedTarget } from "../http/target.js";
import { deliveryMode, ticketJson, ticketListing } from "./delivery.js";

/**
 * GET /api/v1/operations/:id/artifacts (grantee) -> 200 {operationId, expiresAt, artifacts: [{path, size,
 * contentType, createdAt, etag}]}; with `?delivery=direct`, each artifact also has its `ticket`, or the
 * `error` ({code, message}) that kept it from having one.
 */
export const listArtifacts: Handler = async (ctx, request, reply, match) => {
  const signer = await ctx.requireSigner(request);
  const { id } = validatedTarget(match);
  const direct = deliveryMode(request) === "direct";
  const listing: { operationId: string; expiresAt: string; artifacts: (ArtifactInfo & Partial<TicketListing["artifacts"][number]>)[] } = direct
    ? await ticketListing(ctx, request.log, id, signer)
    : await ctx.store.listArtifacts(id, signer);
  reply.header("Cache-Control", direct ? "no-store" : "private, no-store").send({
    operationId: listing.operationId,
    expiresAt: listing.expiresAt,
    artifacts: listing.artifacts.map((a) => ({
      path: a.path,
      size: a.size,
      contentType: a.contentType,
      createdAt: a.createdAt,
      etag: a.etag,
      ...(a.ticket === undefined ? {} : { ticket: ticketJson(a.ticket) }),
      ...(a.error === undefined ? {} : { error: { code: a.error.code, message: a.error.message } }),
    })),
  });
};
