/**
 * vitest globalSetup for the projects whose tests also run on Cloudflare's local R2 simulator
 * (artifacts, server, cli): starts it once for the whole run, provides how to reach it as
 * `inject("r2Sim")`, stops it at the end. If it cannot start, the run fails with
 * `R2SIM_MISSING` and wrangler's output: those tests are never skipped.
 */
import type { TestProject } from "vitest/node";
import { acquireR2Sim, releaseR2Sim } from "./r2sim.js";
import "./provided-context.js";

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const { endpoint, accessKeyId, secretAccessKey, buckets, leaseDir } = await acquireR2Sim();
  project.provide("r2Sim", { endpoint, accessKeyId, secretAccessKey, buckets, leaseDir });
  return releaseR2Sim;
}
