/**
 * vitest globalSetup for the projects that talk to S3 (artifacts, server, cli): starts moto once
 * for the whole run, provides its endpoint as `inject("motoEndpoint")`, stops it at the end.
 * If python3 or moto is missing the run fails with `MOTO_MISSING`: S3 tests are never skipped.
 */
import type { TestProject } from "vitest/node";
import { acquireMoto, releaseMoto } from "./moto.js";
import "./provided-context.js";

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const moto = await acquireMoto();
  project.provide("motoEndpoint", moto.endpoint);
  return releaseMoto;
}
