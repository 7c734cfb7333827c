/**
 * vitest globalSetup for the projects whose tests use the shared nonce store (server): starts
 * redis-server once per project run, provides its URL as `inject("redisUrl")`, kills it after.
 * Without redis-server the run fails with `REDIS_MISSING`: those tests are never skipped.
 */
import type { TestProject } from "vitest/node";
import { startRedis } from "./redis.js";
import "./provided-context.js";

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const redis = await startRedis();
  project.provide("redisUrl", redis.url);
  return () => redis.stop();
}
