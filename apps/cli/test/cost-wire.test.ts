import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ArtifactStore } from "@personal-server/artifacts";
import { freshBucket, motoEndpoint } from "../../../test-support/s3.js";
import { type RecordedRequest, type RecordingProxy, startRecordingProxy } from "../../../test-support/proxy.js";
import { estimateCost } from "../src/cost-model.js";
import { S3_PART_SIZE } from "../src/sdk-facts.js";
import { GRANTEE, KEY_A, readAll, storeFor } from "./helpers.js";

/** R2's classes for the S3 API calls the SDK makes (https://developers.cloudflare.com/r2/pricing/). */
function r2Class(r: RecordedRequest): "A" | "B" | "free" {
  const q = new URL(r.path, "http://x").searchParams;
  if (r.method === "DELETE" || (r.method === "POST" && q.has("delete"))) return "free";
  if (r.method === "PUT" || r.method === "POST") return "A"; // PutObject, UploadPart, Create/CompleteMultipartUpload
  if (r.method === "GET" && (q.has("list-type") || q.has("uploads"))) return "A"; // ListObjects(V2), ListMultipartUploads
  return "B"; // GetObject, HeadObject, HeadBucket
}

function count(requests: RecordedRequest[]): { A: number; B: number } {
  const out = { A: 0, B: 0 };
  for (const r of requests) {
    const c = r2Class(r);
    if (c !== "free") out[c]++;
  }
  return out;
}

const MB = 1_000_000;
const cost = (artifactSize: number) =>
  estimateCost({
    opsPerMonth: 1,
    artifactsPerOp: 1,
    artifactSize,
    retentionSeconds: 7 * 86_400,
    storageClass: "standard",
    downloads: 1,
    sweepIntervalSeconds: 3600,
    partSize: S3_PART_SIZE,
  });

// The cost model's per-request counts, checked against what the SDK really sends to S3 (moto
// behind a recording proxy): if the SDK's request pattern changes, `cost` must change with it.
describe("cost's request model matches the SDK on the wire", () => {
  let proxy: RecordingProxy;
  let store: ArtifactStore;
  const sizes = [300_000, 5 * MB, 9 * MB]; // one chunk; several chunks in one PutObject; multipart

  beforeAll(async () => {
    const bucket = await freshBucket(motoEndpoint(), "cost-wire");
    proxy = await startRecordingProxy(motoEndpoint());
    store = storeFor({ ...bucket.env, S3_ENDPOINT: proxy.url, ARTIFACTS_MASTER_KEYS: KEY_A, ARTIFACTS_S3_TIMEOUT_MS: "20000" });
  });
  afterAll(async () => {
    await store.close();
    await proxy.close();
  });

  it("uploads, downloads and a sweep cost the Class A and B requests the model counts", async () => {
    const models = sizes.map(cost);
    expect(models.map((m) => m.derived.uploadRequestsPerArtifact)).toEqual([1, 1, 4]); // 9 MB: create + 2 parts + complete

    // Uploads: 1 create, then per artifact (metadata read, object, metadata update).
    let mark = proxy.requests.length;
    const op = await store.createOperation({ grantee: GRANTEE, agent: "wire" });
    for (const [i, size] of sizes.entries()) await store.putArtifact(op.operationId, `a${i}.bin`, Buffer.alloc(size, i + 1));
    const uploads = count(proxy.requests.slice(mark));
    expect(uploads.A).toBe(1 + models.reduce((n, m) => n + m.derived.uploadRequestsPerArtifact + 1, 0));
    expect(uploads.B).toBe(sizes.length);
    // The model's own per-operation figure, for one artifact of each size.
    for (const m of models) expect(m.requests.r2.classA.uploads).toBe(1 + m.derived.uploadRequestsPerArtifact + 1);

    // Downloads: one listing, then each artifact.
    mark = proxy.requests.length;
    await store.listArtifacts(op.operationId, { requester: GRANTEE });
    for (const [i] of sizes.entries()) await readAll((await store.getArtifact(op.operationId, `a${i}.bin`, { requester: GRANTEE })).body);
    const downloads = count(proxy.requests.slice(mark));
    expect(downloads.A).toBe(0);
    // 1 listing + per artifact: metadata + GET (one chunk) or metadata + HEAD + GET.
    expect(downloads.B).toBe(1 + 2 + 3 + 3);
    expect(models.map((m) => m.requests.r2.classB.downloads)).toEqual([1 + 2, 1 + 3, 1 + 3]);

    // One sweep over one live operation: list operations/, list its prefix, list multipart uploads; read its metadata.
    mark = proxy.requests.length;
    await store.sweepExpired();
    const sweep = count(proxy.requests.slice(mark));
    expect(sweep).toEqual({ A: 1 + 1 + 1, B: 1 });
  });
});
