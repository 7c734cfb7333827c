import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ArtifactStore } from "@personal-server/artifacts";
import { type FreshBucket, freshBucket, motoEndpoint, rawS3 } from "../../../test-support/s3.js";
import { type RecordedRequest, type RecordingProxy, startRecordingProxy } from "../../../test-support/proxy.js";
import { estimateCost, sweepRequests } from "@personal-server/artifacts/internal";
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
const cost = (artifactSize: number, artifactsPerOp = 1) =>
  estimateCost({
    opsPerMonth: 1,
    artifactsPerOp,
    artifactSize,
    retentionSeconds: 7 * 86_400,
    storageClass: "standard",
    downloads: 1,
    sweepIntervalSeconds: 3600,
    partSize: S3_PART_SIZE,
  });

// The cost model's per-request counts, checked against what the SDK really sends to S3 (moto
// behind a recording proxy) for layout 2 operations: if the SDK's request pattern changes, `cost`
// must change with it.
describe("cost's request model matches the SDK on the wire", () => {
  let proxy: RecordingProxy;
  let store: ArtifactStore;
  let bucket: FreshBucket;
  const clock = { now: new Date() };
  const sizes = [300_000, 5 * MB, 9 * MB]; // one chunk; several chunks in one PutObject; multipart

  beforeAll(async () => {
    bucket = await freshBucket(motoEndpoint(), "cost-wire");
    proxy = await startRecordingProxy(motoEndpoint());
    store = storeFor(
      { ...bucket.env, S3_ENDPOINT: proxy.url, ARTIFACTS_MASTER_KEYS: KEY_A, ARTIFACTS_S3_TIMEOUT_MS: "20000" },
      { createLayout: 2, now: () => clock.now },
    );
  });
  afterAll(async () => {
    await store.close();
    await proxy.close();
  });

  it("uploads, the index's completion, downloads and sweeps cost the Class A and B requests the model counts", async () => {
    const models = sizes.map((size) => cost(size));
    expect(models.map((m) => m.derived.uploadRequestsPerArtifact)).toEqual([1, 1, 4]); // 9 MB: create + 2 parts + complete

    // Uploads: 1 create, then per artifact the object, the entry and a read of metadata.json after the commit.
    let mark = proxy.requests.length;
    const op = await store.createOperation({ grantee: GRANTEE, agent: "wire" });
    for (const [i, size] of sizes.entries()) await store.putArtifact(op.operationId, `a${i}.bin`, Buffer.alloc(size, i + 1));
    const uploads = count(proxy.requests.slice(mark));
    expect(uploads).toEqual({ A: 1 + models.reduce((n, m) => n + m.derived.uploadRequestsPerArtifact + 1, 0), B: 3 });
    for (const m of models) {
      expect(m.derived.perOperation.uploads).toEqual({ classA: 1 + m.derived.uploadRequestsPerArtifact + 1, classB: 1 });
      expect(m.derived.perOperation.writerIndex).toEqual({ classA: 0, classB: 0 }); // fewer than 32 commits
    }

    // 20 minutes later (past the index's 16-minute margin) the first sweep completes the index: one
    // listing of operations/ (metadata.json, 3 objects, 3 entries) and of multipart uploads, the
    // metadata.json and index.json (absent) reads, a GET of each entry the index lacks, 1 index write.
    clock.now = new Date(clock.now.getTime() + 20 * 60_000);
    mark = proxy.requests.length;
    await store.sweepExpired();
    const first = count(proxy.requests.slice(mark));
    const completion = cost(1, 3).derived.perOperation.indexCompletion;
    expect(completion).toEqual({ classA: 1, classB: 3 });
    const firstModel = sweepRequests({ objects: 7, operationsWithMetadata: 1, liveOperations: 1 });
    expect(first).toEqual({ A: firstModel.classA + completion.classA, B: firstModel.classB + completion.classB });

    // Downloads: one listing (metadata.json, index.json, 1 LIST after it), then each artifact
    // (metadata.json, index.json, then GET, or HEAD + GET).
    mark = proxy.requests.length;
    await store.listArtifacts(op.operationId, { requester: GRANTEE });
    const listing = count(proxy.requests.slice(mark));
    expect(listing).toEqual({ A: 1, B: 2 });
    for (const m of models) expect(m.derived.perOperation.listing).toEqual({ classA: listing.A, classB: listing.B });
    for (const [i, m] of models.entries()) {
      mark = proxy.requests.length;
      await readAll((await store.getArtifact(op.operationId, `a${i}.bin`, { requester: GRANTEE })).body);
      const read = count(proxy.requests.slice(mark));
      expect(read).toEqual({ A: 0, B: i === 0 ? 3 : 4 });
      expect(m.derived.perOperation.read).toEqual({ classA: read.A, classB: read.B });
      expect(m.requests.r2.classB.downloads).toBe(listing.B + read.B);
      expect(m.requests.r2.classA.downloads).toBe(listing.A);
    }

    // Every later sweep of the compacted operation: one listing of operations/ (now with index.json)
    // and of multipart uploads (Class A), metadata.json and index.json (Class B). The entries' names
    // come with the flat listing: no LIST per operation.
    mark = proxy.requests.length;
    await store.sweepExpired();
    const sweep = count(proxy.requests.slice(mark));
    expect(sweep).toEqual({ A: 1 + 1, B: 2 });
    expect(sweepRequests({ objects: 8, operationsWithMetadata: 1, liveOperations: 1 })).toEqual({ listPages: 1, classA: sweep.A, classB: sweep.B });
    for (const m of models) expect(m.derived.perSweep).toMatchObject({ listPages: 1, classA: sweep.A });
  });

  it("a sweep reads each operation's metadata.json once, deletes for free, and lists once per 1000 objects", async () => {
    // Written straight to moto (not through the proxy): an operation that expired 3 days ago,
    // a prefix without metadata.json (an upload in flight: kept), and the live one from above.
    const past = storeFor(
      { ...bucket.env, ARTIFACTS_MASTER_KEYS: KEY_A, ARTIFACTS_S3_TIMEOUT_MS: "20000" },
      { createLayout: 2, now: () => new Date(clock.now.getTime() - 10 * 86_400_000) },
    );
    const old = await past.createOperation({ grantee: GRANTEE, agent: "expired" });
    await past.putArtifact(old.operationId, "old.bin", "expired");
    await past.close();
    const put = async (key: string) => expect((await rawS3(bucket.env.S3_ENDPOINT, "PUT", `/${bucket.bucket}/${key}`, { body: "x" })).status).toBe(200);
    await put("operations/inflight_1/artifacts/part.bin");

    let mark = proxy.requests.length;
    const result = await store.sweepExpired();
    // The usage tally of the server's gauges comes from the same listing and reads: no request of its own.
    expect(result).toMatchObject({ deletedOperations: 1, deletedObjects: 3, deletedTemporary: 0 });
    expect(result.usage).toMatchObject({ operations: 1, artifacts: 3, expiredOperations: 1, orphanObjects: 1 });
    const swept = proxy.requests.slice(mark);
    const sweep = count(swept);
    // 8 + 3 + 1 objects listed in one page; metadata.json of the live and the expired operation
    // read, index.json of the live one.
    expect(sweep).toEqual({ A: 1 + 1, B: 3 });
    expect(sweepRequests({ objects: 12, operationsWithMetadata: 2, liveOperations: 1 })).toMatchObject({ classA: sweep.A, classB: sweep.B });
    expect(swept.filter((r) => r2Class(r) === "free").length).toBeGreaterThan(0); // the expired operation's deletes

    // 1000 more objects in the in-flight prefix: the listing takes a second page, nothing else changes.
    const keys = Array.from({ length: 1000 }, (_, i) => `operations/inflight_1/artifacts/p${String(i).padStart(4, "0")}.bin`);
    for (let i = 0; i < keys.length; i += 25) await Promise.all(keys.slice(i, i + 25).map(put));
    mark = proxy.requests.length;
    expect(await store.sweepExpired()).toMatchObject({ deletedOperations: 0, deletedObjects: 0, deletedTemporary: 0 });
    const paged = count(proxy.requests.slice(mark));
    expect(paged).toEqual({ A: 2 + 1, B: 2 });
    expect(sweepRequests({ objects: 8 + 1001, operationsWithMetadata: 1, liveOperations: 1 })).toEqual({ listPages: 2, classA: paged.A, classB: paged.B });
  }, 60_000);

  it("the writer's index upkeep: at the 32nd commit 1 index.json GET, 1 LIST of the entries, 1 index.json PUT", async () => {
    const model = cost(10, 33).derived.perOperation;
    expect(model.writerIndex).toEqual({ classA: 2, classB: 1 });
    const mark = proxy.requests.length;
    const op = await store.createOperation({ grantee: GRANTEE, agent: "index" });
    for (let i = 0; i < 33; i++) await store.putArtifact(op.operationId, `f${i}.txt`, "0123456789");
    const uploads = count(proxy.requests.slice(mark));
    expect(uploads).toEqual({ A: model.uploads.classA + model.writerIndex.classA, B: model.uploads.classB + model.writerIndex.classB });
    expect(uploads).toEqual({ A: 1 + 33 * 2 + 2, B: 33 + 1 });
  });
});
