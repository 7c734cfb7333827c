import { TooLargeError } from "@personal-server/artifacts";
import type { Handler } from "../context.js";
import { withUploadBody } from "../http/body.js";
import { quoteEtag } from "../http/headers.js";
import { validatedTarget } from "../http/target.js";

/**
 * PUT /api/v1/operations/:id/artifacts/:path*: the raw body is encrypted and stored as it
 * arrives, never buffered whole. 201 {path, size, contentType}.
 */
export const putArtifact: Handler = async (ctx, request, reply, match) => {
  await ctx.requireWriter(request);
  const { id, path } = validatedTarget(match);
  // Kept as the artifact's content type; the store validates it (400) before any I/O.
  const contentType = request.headers["content-type"];
  const declared = request.headers["content-length"];
  if (declared !== undefined && Number(declared) > ctx.config.maxBytes) {
    // Known too large before a byte is read: refuse without touching storage.
    throw new TooLargeError(`artifact is larger than ARTIFACTS_MAX_BYTES (${ctx.config.maxBytes} bytes)`);
  }
  const info = await withUploadBody(request.raw, (body, signal) =>
    ctx.store.putArtifact(id, path, body, { ...(contentType === undefined ? {} : { contentType }), signal }),
  );
  ctx.metrics.bytesIn.inc(info.size);
  reply
    .code(201)
    .header("Location", `/api/v1/operations/${id}/artifacts/${path}`)
    .header("ETag", quoteEtag(info.etag))
    .header("Cache-Control", "no-store")
    .send({ path: info.path, size: info.size, contentType: info.contentType });
};
