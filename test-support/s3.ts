/**
 * Test-side S3 helpers: the shared S3 peers (moto, and Cloudflare's local R2 simulator) and a
 * fresh bucket per test file, so files can run in parallel against one peer without resetting it.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { inject } from "vitest";
import type { R2SimInfo } from "./r2sim.js";
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

/**
 * The S3 peers tests run against: moto (lenient, implements every API the backend uses) and
 * `r2sim`, Cloudflare's local R2 simulator (checks signatures; see docs/development.md for
 * where it differs from R2).
 */
export type S3Peer = "moto" | "r2sim";
export const S3_PEERS: readonly S3Peer[] = ["moto", "r2sim"];

/** How to reach the R2 simulator the globalSetup started. */
export function r2Sim(): R2SimInfo {
  const sim = inject("r2Sim");
  if (!sim) throw new Error("r2Sim is not provided: is test-support/r2sim-global-setup.ts in this project's globalSetup?");
  return sim;
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

/**
 * A bucket nobody else in this run uses, on either peer. moto creates one; the simulator
 * cannot (its buckets come only from its config), so this leases one of its pool for the run.
 */
export async function freshBucketOn(peer: S3Peer, label = "t"): Promise<FreshBucket> {
  if (peer === "moto") return freshBucket(motoEndpoint(), label);
  if (peer !== "r2sim") throw new Error(`freshBucketOn: unknown S3 peer ${JSON.stringify(peer)} (one of ${S3_PEERS.join(", ")})`);
  const sim = r2Sim();
  const bucket = sim.buckets.find((name) => {
    try {
      mkdirSync(join(sim.leaseDir, name)); // atomic: exactly one caller gets each bucket
      return true;
    } catch {
      return false;
    }
  });
  if (bucket === undefined) throw new Error(`all ${sim.buckets.length} R2 simulator buckets are taken: raise POOL_SIZE in test-support/r2sim.ts`);
  const storage: S3StorageConfig = {
    kind: "s3",
    endpoint: sim.endpoint,
    region: "auto",
    bucket,
    accessKeyId: sim.accessKeyId,
    secretAccessKey: sim.secretAccessKey,
  };
  return {
    bucket,
    storage,
    env: {
      S3_ENDPOINT: sim.endpoint,
      S3_ACCESS_KEY_ID: sim.accessKeyId,
      S3_SECRET_ACCESS_KEY: sim.secretAccessKey,
      S3_BUCKET: bucket,
      S3_REGION: "auto",
    },
  };
}

/**
 * An Authorization header of the right shape with fake values. moto does not check signatures,
 * but it treats requests without one as anonymous (reads of private objects are then 403).
 */
export const FAKE_AUTHORIZATION =
  `AWS4-HMAC-SHA256 Credential=${FAKE_ACCESS_KEY_ID}/20250101/us-east-1/s3/aws4_request, ` +
  "SignedHeaders=host;x-amz-date, Signature=" +
  "0".repeat(64);

/** A raw, path-style request to moto (no @aws-sdk in test helpers). Returns status and body text. */
export async function rawS3(
  endpoint: string,
  method: string,
  path: string,
  init: { body?: string | Buffer; headers?: Record<string, string> } = {},
): Promise<{ status: number; text: string }> {
  const res = await fetch(`${endpoint}${path}`, {
    method,
    headers: { authorization: FAKE_AUTHORIZATION, ...init.headers },
    body: init.body,
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, text: await res.text() };
}

/** One expiration rule for `putLifecycleRules`. */
export interface TestLifecycleRule {
  id: string;
  prefix: string;
  days: number;
  /** Default true. */
  enabled?: boolean;
}

/** Sets the bucket's lifecycle configuration (PutBucketLifecycleConfiguration) on moto. */
export async function putLifecycleRules(endpoint: string, bucket: string, rules: TestLifecycleRule[]): Promise<void> {
  const xml =
    '<LifecycleConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
    rules
      .map(
        (r) =>
          `<Rule><ID>${r.id}</ID><Filter><Prefix>${r.prefix}</Prefix></Filter>` +
          `<Status>${r.enabled === false ? "Disabled" : "Enabled"}</Status><Expiration><Days>${r.days}</Days></Expiration></Rule>`,
      )
      .join("") +
    "</LifecycleConfiguration>";
  const md5 = createHash("md5").update(xml).digest("base64"); // the API requires Content-MD5
  const res = await rawS3(endpoint, "PUT", `/${bucket}?lifecycle`, {
    body: xml,
    headers: { "content-md5": md5, "content-type": "application/xml" },
  });
  if (res.status !== 200) throw new Error(`PutBucketLifecycleConfiguration failed: HTTP ${res.status} ${res.text.slice(0, 300)}`);
}

/** One CORS rule for `putBucketCors` (PutBucketCors). */
export interface TestCorsRule {
  origins: string[];
  methods: string[];
  headers?: string[];
  expose?: string[];
  maxAgeSeconds?: number;
}

/** Sets the bucket's CORS configuration (PutBucketCors) on moto. */
export async function putBucketCors(endpoint: string, bucket: string, rules: TestCorsRule[]): Promise<void> {
  const tags = (name: string, values: string[] = []) => values.map((v) => `<${name}>${v}</${name}>`).join("");
  const xml =
    `<CORSConfiguration>` +
    rules
      .map(
        (r) =>
          `<CORSRule>${tags("AllowedOrigin", r.origins)}${tags("AllowedMethod", r.methods)}${tags("AllowedHeader", r.headers)}` +
          `${tags("ExposeHeader", r.expose)}${r.maxAgeSeconds === undefined ? "" : `<MaxAgeSeconds>${r.maxAgeSeconds}</MaxAgeSeconds>`}</CORSRule>`,
      )
      .join("") +
    `</CORSConfiguration>`;
  const md5 = createHash("md5").update(xml).digest("base64");
  const res = await rawS3(endpoint, "PUT", `/${bucket}?cors`, { body: xml, headers: { "content-md5": md5, "content-type": "application/xml" } });
  if (res.status !== 200) throw new Error(`PutBucketCors failed: HTTP ${res.status} ${res.text.slice(0, 300)}`);
}

/**
 * Starts a multipart upload and leaves it dangling, like a crashed uploader (for sweep tests).
 * Note: moto reports `Initiated` of every upload as 2010-11-10T20:48:33Z, so on moto any
 * cutoff treats it as old.
 */
export async function startDanglingMultipartUpload(endpoint: string, bucket: string, key: string): Promise<string> {
  const res = await rawS3(endpoint, "POST", `/${bucket}/${key}?uploads`);
  const id = /<UploadId>([^<]+)<\/UploadId>/.exec(res.text)?.[1];
  if (res.status !== 200 || !id) throw new Error(`CreateMultipartUpload failed: HTTP ${res.status} ${res.text.slice(0, 300)}`);
  return id;
}

/** The bucket's unfinished multipart uploads (ListMultipartUploads, first 1000). */
export async function listMultipartUploads(endpoint: string, bucket: string): Promise<{ key: string; uploadId: string }[]> {
  const res = await rawS3(endpoint, "GET", `/${bucket}?uploads`);
  if (res.status !== 200) throw new Error(`ListMultipartUploads failed: HTTP ${res.status} ${res.text.slice(0, 300)}`);
  return [...res.text.matchAll(/<Upload>([\s\S]*?)<\/Upload>/g)].map((m) => ({
    key: /<Key>([^<]*)<\/Key>/.exec(m[1]!)?.[1] ?? "",
    uploadId: /<UploadId>([^<]*)<\/UploadId>/.exec(m[1]!)?.[1] ?? "",
  }));
}
