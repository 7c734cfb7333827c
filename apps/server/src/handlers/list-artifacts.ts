import type { Handler } from "../context.js";
import { validatedTarget } from "../http/target.js";
import { deliveryMode, sendTickets } from "./delivery.js";

/** GET /api/v1/operations/:id/artifacts (grantee) -> 200 {operationId, expiresAt, artifacts: [{path, size, contentType, createdAt, etag}]}; with `?delivery=direct`, each with its `ticket`. */
export const listArtifacts: Handler = async (ctx, request, reply, match) => {
  const requester = await ctx.requireSigner(request);
  const { id } = validatedTarget(match);
  if (deliveryMode(request) === "direct") return sendTickets(ctx, reply, id, requester);
  const listing = await ctx.store.listArtifacts(id, { requester });
  reply.header("Cache-Control", "private, no-store").send({
    operationId: listing.operationId,
    expiresAt: listing.expiresAt,
    artifacts: listing.artifacts.map((a) => ({
      path: a.path,
      size: a.size,
      contentType: a.contentType,
      createdAt: a.createdAt,
      etag: a.etag,
    })),
  });
};
