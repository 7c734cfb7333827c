import type { Handler } from "../context.js";
import { validatedTarget } from "../http/target.js";

/** GET /api/v1/operations/:id/artifacts (grantee) -> 200 {operationId, expiresAt, artifacts: [{path, size, contentType, createdAt, etag}]}. */
export const listArtifacts: Handler = async (ctx, request, reply, match) => {
  const requester = await ctx.requireSigner(request);
  const { id } = validatedTarget(match);
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
