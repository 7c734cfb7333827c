// Presigned GETs: what the server's direct downloads and the grantee web page rely on.
import { randomBytes } from "node:crypto";
import type { DeepCheck, DeepContext } from "./context.js";

const FETCH_TIMEOUT_MS = 10_000;
const BODY = randomBytes(4096);

/** The object the presigned checks read (written once, by the first of them that runs). */
async function presignedObject(ctx: DeepContext): Promise<string> {
  const key = ctx.key("presigned");
  if ((await ctx.backend.head(key)) === null) await ctx.write(() => ctx.backend.put(key, BODY));
  return key;
}

const noPresigning = { status: "not supported" as const, detail: "local storage: the server delivers objects itself, nothing is presigned" };

/** A presigned URL answers the object, and a Range of it with 206 and Content-Range. */
export const presignedGet: DeepCheck = {
  name: "presigned GET",
  async run(ctx) {
    const key = await presignedObject(ctx);
    const url = await ctx.backend.presignGet(key, { expiresInSeconds: 300, signedAt: new Date() });
    if (url === null) return noPresigning;
    const whole = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
    const body = Buffer.from(await whole.arrayBuffer());
    if (whole.status !== 200 || !body.equals(BODY)) return { status: "fail", detail: `GET answered ${whole.status} with ${body.length} bytes, not the ${BODY.length} written` };
    const part = await fetch(url, { headers: { Range: "bytes=100-199" }, signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
    const slice = Buffer.from(await part.arrayBuffer());
    if (part.status !== 206 || !slice.equals(BODY.subarray(100, 200)) || part.headers.get("content-range") !== `bytes 100-199/${BODY.length}`) {
      return { status: "fail", detail: `Range bytes=100-199 answered ${part.status}, ${slice.length} bytes, Content-Range ${part.headers.get("content-range")}` };
    }
    return { status: "pass", detail: "the URL answered the object (200) and a range of it (206, Content-Range)" };
  },
};

/** A presigned URL past its expiry is refused (403): grantee links stop working when they should. */
export const presignedExpiry: DeepCheck = {
  name: "presigned expiry",
  async run(ctx) {
    const key = await presignedObject(ctx);
    // Signed two minutes ago for one minute: expired a minute ago.
    const url = await ctx.backend.presignGet(key, { expiresInSeconds: 60, signedAt: new Date(Date.now() - 120_000) });
    if (url === null) return noPresigning;
    const res = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
    await res.arrayBuffer();
    if (res.status === 403) return { status: "pass", detail: "a URL that expired a minute ago was refused (403)" };
    return { status: "fail", detail: `a URL that expired a minute ago was answered ${res.status}: this store does not enforce presigned expiry` };
  },
};

/**
 * The bucket's CORS rule, with a real preflight from each of ARTIFACTS_CORS_ORIGINS (a bucket
 * token cannot read the CORS configuration itself): GET with Range allowed, Content-Range and
 * ETag exposed, as the web page's direct downloads need.
 */
export const cors: DeepCheck = {
  name: "CORS",
  async run(ctx) {
    const origins = ctx.config.corsOrigins;
    if (origins.length === 0) return { status: "skip", detail: "ARTIFACTS_CORS_ORIGINS is unset: set the web page's origin(s) to check the bucket's CORS rule for them" };
    const key = await presignedObject(ctx);
    const url = await ctx.backend.presignGet(key, { expiresInSeconds: 300, signedAt: new Date() });
    if (url === null) return noPresigning;
    const problems: string[] = [];
    for (const origin of origins) {
      const preflight = await fetch(url, {
        method: "OPTIONS",
        headers: { Origin: origin, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "range" },
        signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
      });
      await preflight.arrayBuffer();
      if (preflight.status === 501) return { status: "not supported", detail: "the endpoint answers CORS preflights with 501 Not Implemented" };
      const allowOrigin = preflight.headers.get("access-control-allow-origin");
      const allowMethods = (preflight.headers.get("access-control-allow-methods") ?? "").toUpperCase();
      const allowHeaders = (preflight.headers.get("access-control-allow-headers") ?? "").toLowerCase();
      if (preflight.status >= 300 || (allowOrigin !== origin && allowOrigin !== "*") || !allowMethods.includes("GET") || !/(^|[\s,])(range|\*)($|[\s,])/.test(allowHeaders)) {
        problems.push(`${origin}: preflight answered ${preflight.status}, Allow-Origin ${allowOrigin ?? "none"}, Allow-Methods "${allowMethods}", Allow-Headers "${allowHeaders}"`);
        continue;
      }
      const get = await fetch(url, { headers: { Origin: origin, Range: "bytes=0-0" }, signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
      await get.arrayBuffer();
      const exposed = (get.headers.get("access-control-expose-headers") ?? "").toLowerCase();
      const missing = ["content-range", "etag"].filter((h) => !exposed.includes(h) && exposed.trim() !== "*");
      if (missing.length > 0) problems.push(`${origin}: a ranged GET does not expose ${missing.join(", ")} (Expose-Headers "${exposed}")`);
    }
    if (problems.length > 0) {
      // Why the preflight failed, where the token may read the CORS configuration.
      const configured = (await ctx.backend.getCorsOrigins?.()) ?? "not_supported";
      if (configured === "not_supported") return { status: "not supported", detail: `the endpoint has no CORS configuration (GetBucketCors answers 501); preflight: ${problems.join("; ")}` };
      if (Array.isArray(configured)) problems.push(configured.length === 0 ? "the bucket has no CORS rule" : `the bucket's CORS rules name ${configured.join(", ")}`);
      return { status: "fail", detail: `${problems.join("; ")}; the bucket's CORS rule must allow these origins GET with Range and expose Content-Range and ETag (infra's corsOrigins, then pulumi up)` };
    }
    return { status: "pass", detail: `preflight and ranged GET allowed for ${origins.join(", ")}, Content-Range and ETag exposed` };
  },
};
