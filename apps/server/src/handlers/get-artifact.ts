import { ArtifactError, RangeNotSatisfiableError, type ArtifactInfo } from "@personal-server/artifacts";
import type { FastifyReply } from "fastify";
import type { Handler } from "../context.js";
import { contentDisposition, etagListMatches, quoteEtag } from "../http/headers.js";
import { parseRange, resolveSuffix, type RangeRequest } from "../http/range.js";
import { sendOwnedBody } from "../http/send-body.js";
import { validatedTarget } from "../http/target.js";
import { deliveryMode, sendTicket } from "./delivery.js";

function artifactHeaders(reply: FastifyReply, info: ArtifactInfo): void {
  reply
    .header("Content-Type", info.contentType)
    .header("ETag", quoteEtag(info.etag))
    .header("Accept-Ranges", "bytes")
    .header("Cache-Control", "private, no-store")
    .header("Content-Disposition", contentDisposition(info.path))
    // The content type is the uploader's; never let a browser sniff it into something else.
    .header("X-Content-Type-Options", "nosniff")
    .header("Last-Modified", new Date(info.createdAt).toUTCString());
}

function unsatisfiable(size: number): RangeNotSatisfiableError {
  return new RangeNotSatisfiableError(`requested range is not satisfiable for an artifact of ${size} bytes`, {
    details: { size },
  });
}

/**
 * GET and HEAD /api/v1/operations/:id/artifacts/:path* (grantee): the plaintext, decrypted as it
 * leaves. Range gives 206 (only the covering chunks are decrypted); If-None-Match gives 304.
 * With `?delivery=direct`, a delivery ticket instead of the bytes.
 */
export const getArtifact: Handler = async (ctx, request, reply, match) => {
  const signer = await ctx.requireSigner(request);
  const { id, path } = validatedTarget(match);
  if (deliveryMode(request) === "direct") return sendTicket(ctx, reply, id, path, signer);

  if (request.method === "HEAD") {
    const info = await ctx.store.statArtifact(id, path, signer);
    artifactHeaders(reply, info);
    reply.header("Content-Length", String(info.size)).code(200).send();
    return;
  }

  let range: RangeRequest = parseRange(request.headers.range);
  const ifNoneMatch = request.headers["if-none-match"];
  const ifRange = request.headers["if-range"] as string | undefined;
  // Conditional requests and suffix ranges need the size/ETag first; plain requests skip that round trip.
  if (ifNoneMatch !== undefined || (ifRange !== undefined && range.kind !== "none") || range.kind === "suffix") {
    const info = await ctx.store.statArtifact(id, path, signer);
    if (ifNoneMatch !== undefined && etagListMatches(ifNoneMatch, info.etag, true)) {
      reply
        .code(304)
        .header("ETag", quoteEtag(info.etag))
        .header("Cache-Control", "private, no-store")
        .send();
      return;
    }
    if (ifRange !== undefined && ifRange.trim() !== quoteEtag(info.etag)) range = { kind: "none" };
    if (range.kind === "suffix") {
      const resolved = resolveSuffix(range.length, info.size);
      if (resolved === null) throw unsatisfiable(info.size);
      range = { kind: "range", start: resolved.start, end: resolved.end };
    }
  }

  const result = await ctx.store.getArtifact(id, path, {
    ...signer,
    ...(range.kind === "range" ? { range: range.end === undefined ? { start: range.start } : { start: range.start, end: range.end } } : {}),
  });
  const { info, body } = result;
  artifactHeaders(reply, info);
  if (range.kind === "range") {
    const start = result.range?.start ?? range.start;
    const end = result.range?.end ?? Math.min(range.end ?? info.size - 1, info.size - 1);
    reply
      .code(206)
      .header("Content-Range", `bytes ${start}-${end}/${info.size}`)
      .header("Content-Length", String(end - start + 1));
  } else {
    reply.code(200).header("Content-Length", String(info.size));
  }
  await sendOwnedBody(reply, body, (error) => {
    // The headers went out: the connection is destroyed (never a clean end); count and log it.
    const code = error instanceof ArtifactError ? error.code : "internal";
    ctx.metrics.errors.inc({ code });
    request.log.warn({ err: error }, "response terminated with an error with headers already sent");
  });
};
