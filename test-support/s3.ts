/**
 * Test-side S3 helpers: the shared moto endpoint and a fresh bucket per test file, so files can
 * run in parallel against one moto without resetting it.
 */
import { randomBytes } from "node:crypto";
import { inject } from "vitest";
import type { StorageConfig } from "../packages/artifacts/src/config-types.js";
import "./provided-context.js";

/** The `kind: "s3"` member of the SDK's `StorageConfig`. */
export type S3StorageConfig = Extract<StorageConfig, { kind: "s3" }>;

/** Obviously fake credentials: moto ignores signatures, so any value works. */
export const FAKE_ACCESS_KEY_ID = "FAKEACCESSKEYID00000";
export const FAKE_SECRET_ACCESS_KEY = "fake-secret-access-key-for-moto-tests";

/** The moto endpoint the globalSetup started (`http://127.0.0.1:<port>`). */
export function motoEndpoint(): string {
  const endpoint = inject("motoEndpoint");
  if (!endpoint) throw new Error("motoEndpoint is not provided: is test-support/moto-global-setup.ts in this project's globalSetup?");
  return endpoint;
}

/** A bucket created by `freshBucket`, as SDK config and as environment variables. */
export interface FreshBucket {
  bucket: string;
  /** `StorageConfig` for `createArtifactStore`/`openBackend`. */
  storage: S3StorageConfig;
  /** The same as the `S3_*` variables `loadConfig` reads. */
  env: {
    S3_ENDPOINT: string;
    S3_ACCESS_KEY_ID: string;
    S3_SECRET_ACCESS_KEY: string;
    S3_BUCKET: string;
    S3_REGION: string;
  };
}

/**
 * Creates a uniquely named bucket on moto (region us-east-1: CreateBucket needs a real region
 * name, never R2's "auto"). `label` makes the name easier to spot in moto's log.
 */
export async function freshBucket(endpoint: string = motoEndpoint(), label = "t"): Promise<FreshBucket> {
  const clean = label.toLowerCase().replace(/[^a-z0-9-]/g, "-").slice(0, 20).replace(/^-+|-+$/g, "") || "t";
  const bucket = `${clean}-${Date.now().toString(36)}-${randomBytes(4).toString("hex")}`;
  // A raw path-style PUT keeps @aws-sdk out of the shared helpers; moto needs no signature and
  // us-east-1 needs no CreateBucketConfiguration body.
  const res = await fetch(`${endpoint}/${bucket}`, { method: "PUT", signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`CreateBucket ${bucket} on ${endpoint} failed: HTTP ${res.status} ${text.slice(0, 300)}`);
  return {
    bucket,
    storage: {
      kind: "s3",
      endpoint,
      region: "us-east-1",
      bucket,
      accessKeyId: FAKE_ACCESS_KEY_ID,
      secretAccessKey: FAKE_SECRET_ACCESS_KEY,
    },
    env: {
      S3_ENDPOINT: endpoint,
      S3_ACCESS_KEY_ID: FAKE_ACCESS_KEY_ID,
      S3_SECRET_ACCESS_KEY: FAKE_SECRET_ACCESS_KEY,
      S3_BUCKET: bucket,
      S3_REGION: "us-east-1",
    },
  };
}
