import type { Handler } from "../context.js";

/** GET /metrics: Prometheus text (behind ARTIFACTS_METRICS_TOKEN when set; checked by the dispatcher). */
export const metrics: Handler = async (ctx, _request, reply) => {
  const text = await ctx.metrics.registry.metrics();
  reply.header("Cache-Control", "no-store").type(ctx.metrics.registry.contentType).send(text);
};
