import type { Handler } from "../context.js";

/** GET /health: liveness and the storage kind. */
export const health: Handler = async (ctx, _request, reply) => {
  reply.header("Cache-Control", "no-store").send({ status: "ok", storage: ctx.store.kind });
};
