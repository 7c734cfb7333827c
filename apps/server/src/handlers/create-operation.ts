import { InvalidInputError } from "@personal-server/artifacts";
import type { Handler } from "../context.js";
import { readJsonBody } from "../http/body.js";

const FIELDS = new Set(["grantee", "agent", "operationId", "ttlSeconds"]);

/** POST /api/v1/operations {grantee, agent?, operationId?, ttlSeconds?} -> 201 {operationId, grantee, expiresAt}. */
export const createOperation: Handler = async (ctx, request, reply) => {
  await ctx.requireWriter(request);
  const body = await readJsonBody(request.raw, ctx.jsonBodyLimit);
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new InvalidInputError("body must be a JSON object {grantee, agent?, operationId?, ttlSeconds?}");
  }
  const unknown = Object.keys(body).filter((key) => !FIELDS.has(key));
  if (unknown.length > 0) throw new InvalidInputError(`unknown field(s): ${unknown.join(", ")}`);
  const input = body as Record<string, unknown>;
  for (const key of ["agent", "operationId"] as const) {
    if (input[key] !== undefined && typeof input[key] !== "string") throw new InvalidInputError(`${key} must be a string`);
  }
  if (input.ttlSeconds !== undefined && typeof input.ttlSeconds !== "number") {
    throw new InvalidInputError("ttlSeconds must be a number of seconds");
  }
  const operation = await ctx.store.createOperation({
    grantee: input.grantee as string,
    ...(input.agent === undefined ? {} : { agent: input.agent as string }),
    ...(input.operationId === undefined ? {} : { operationId: input.operationId as string }),
    ...(input.ttlSeconds === undefined ? {} : { ttlSeconds: input.ttlSeconds as number }),
  });
  reply
    .code(201)
    .header("Location", `/api/v1/operations/${operation.operationId}/artifacts`)
    .header("Cache-Control", "no-store")
    .send({ operationId: operation.operationId, grantee: operation.grantee, expiresAt: operation.expiresAt });
};
