import type { Handler } from "../context.js";
import { validatedTarget } from "../http/target.js";

/** DELETE /api/v1/operations/:id (writer) -> 204. */
export const deleteOperation: Handler = async (ctx, request, reply, match) => {
  await ctx.requireWriter(request);
  const { id } = validatedTarget(match);
  await ctx.store.deleteOperation(id);
  reply.code(204).header("Cache-Control", "no-store").send();
};
