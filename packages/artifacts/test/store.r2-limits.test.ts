/**
 * The store under R2's documented limits that no local peer enforces (test-support/r2-limits.ts,
 * in front of moto): one write per second per key (429 past it) and 412 for If-Match on a
 * missing key. Layout 2 writes no key twice per operation (no 429 at all); layout 1's coalesced
 * metadata writes and their backoff must keep every upload.
 */
import { createArtifactStore, loadConfig } from "@personal-server/artifacts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { S3Backend } from "../src/backends/s3.js";
import { PreconditionFailedError } from "../src/backends/types.js";
import { startR2LimitsProxy, type R2LimitsProxy } from "../../../test-support/r2-limits.js";
import { freshBucket, motoEndpoint, type FreshBucket } from "../../../test-support/s3.js";
import { GRANTEE, TEST_MASTER_KEY, random, readAll } from "./helpers.js";

let bucket: FreshBucket;
let proxy: R2LimitsProxy;

beforeAll(async () => {
  bucket = await freshBucket(motoEndpoint(), "r2-limits");
  proxy = await startR2LimitsProxy(motoEndpoint());
});
afterAll(async () => {
  await proxy?.close();
});

describe("R2's limits in front of moto", () => {
  it("the proxy enforces them: a second write to one key within a second is 429, If-Match on a missing key is 412", async () => {
    // One attempt, so the backend's answer is the proxy's first one.
    const b = new S3Backend({ ...bucket.storage, endpoint: proxy.url }, { timeoutMs: 10_000, connectTimeoutMs: 2000, maxAttempts: 1 });
    try {
      const before = { ...proxy.limits };
      await b.put("operations/rule/metadata.json", Buffer.from("{}"));
      await expect(b.put("operations/rule/metadata.json", Buffer.from("{}"))).rejects.toMatchObject({
        code: "storage_unavailable",
        details: { s3Code: "TooManyRequests", status: 429, throttled: true },
      });
      // Another key is not limited by the first one's writes.
      await b.put("operations/rule/other.json", Buffer.from("{}"));
      await new Promise((r) => setTimeout(r, 1100));
      await b.put("operations/rule/metadata.json", Buffer.from('{"v":2}'));
      // Reads are not writes.
      expect((await b.getBytes("operations/rule/metadata.json"))!.body.toString()).toBe('{"v":2}');

      await expect(b.putConditional("operations/rule/none.json", Buffer.from("{}"), { ifMatch: "0123456789abcdef" })).rejects.toBeInstanceOf(
        PreconditionFailedError,
      );
      expect(await b.head("operations/rule/none.json")).toBeNull();
      expect(proxy.limits.throttled - before.throttled).toBe(1);
      expect(proxy.limits.missingIfMatch - before.missingIfMatch).toBe(1);
      expect(proxy.requests.filter((r) => r.outcome === "answered").map((r) => r.method)).toEqual(["PUT", "PUT"]);
    } finally {
      await b.close();
    }
  });

  it("layout 2: 50 sequential and 50 concurrent uploads to one operation see no 429, and all list and read back", async () => {
    const store = createArtifactStore(
      loadConfig({ ...bucket.env, S3_ENDPOINT: proxy.url, ARTIFACTS_MASTER_KEY: TEST_MASTER_KEY, ARTIFACTS_S3_TIMEOUT_MS: "20000" }),
    );
    try {
      const before = { ...proxy.limits };
      const op = await store.createOperation({ grantee: GRANTEE });
      const names = Array.from({ length: 100 }, (_, i) => `f/${String(i).padStart(3, "0")}.bin`);
      const bodies = names.map((_, i) => random(1000 + i));
      const started = performance.now();
      for (let i = 0; i < 50; i++) await store.putArtifact(op.operationId, names[i]!, bodies[i]!);
      const sequentialMs = performance.now() - started;
      await Promise.all(names.slice(50).map((name, i) => store.putArtifact(op.operationId, name, bodies[50 + i]!)));
      await store.listArtifacts(op.operationId, { requester: GRANTEE });
      const list = await store.listArtifacts(op.operationId, { requester: GRANTEE });
      expect(list.artifacts.map((a) => a.path)).toEqual(names);
      for (const [i, name] of names.entries()) {
        const { body } = await store.getArtifact(op.operationId, name, { requester: GRANTEE });
        expect((await readAll(body)).equals(bodies[i]!)).toBe(true);
      }
      const throttled = proxy.limits.throttled - before.throttled;
      console.log(`[R2 limits, layout 2] 50 sequential uploads in ${sequentialMs.toFixed(0)} ms; ${throttled} answered 429; ${store.stats.indexWrites} index writes`);
      expect(throttled).toBe(0);
      expect(store.stats.metadataWrites).toBe(1);
      // The index is the one key written more than once: by the writer every 32 commits and by
      // listings, paced (at most one write per 2 s per operation per process), so never a 429.
      expect(store.stats.indexWrites).toBeGreaterThanOrEqual(1);
      expect(store.stats.indexWrites).toBeLessThanOrEqual(100 / 32 + 1);
    } finally {
      await store.close();
    }
  });

  it("layout 1: 50 concurrent uploads to one operation all land; the metadata writes back off and retry their 429s", async () => {
    const store = createArtifactStore(
      loadConfig({ ...bucket.env, S3_ENDPOINT: proxy.url, ARTIFACTS_MASTER_KEY: TEST_MASTER_KEY, ARTIFACTS_S3_TIMEOUT_MS: "20000" }),
      { createLayout: 1 },
    );
    try {
      const before = { ...proxy.limits };
      const op = await store.createOperation({ grantee: GRANTEE });
      const writesBefore = store.stats.metadataWrites;
      const names = Array.from({ length: 50 }, (_, i) => `f/${String(i).padStart(2, "0")}.bin`);
      const bodies = names.map((_, i) => random(1000 + i));
      await Promise.all(names.map((name, i) => store.putArtifact(op.operationId, name, bodies[i]!)));
      const metadataWrites = store.stats.metadataWrites - writesBefore;
      const throttled = proxy.limits.throttled - before.throttled;
      const retried = proxy.limits.retried - before.retried;
      console.log(`[R2 limits] 50 concurrent uploads -> ${metadataWrites} metadata writes, ${throttled} answered 429, ${retried} of them retried`);

      const list = await store.listArtifacts(op.operationId, { requester: GRANTEE });
      expect(list.artifacts.map((a) => a.path)).toEqual(names);
      for (const [i, name] of names.entries()) {
        const { body } = await store.getArtifact(op.operationId, name, { requester: GRANTEE });
        expect((await readAll(body)).equals(bodies[i]!)).toBe(true);
      }
      expect(metadataWrites).toBeLessThan(50);
      // The first commit follows createOperation's write of metadata.json within a second, so
      // the limit is hit; every 429 was followed by another write of the same key.
      expect(throttled).toBeGreaterThan(0);
      expect(retried).toBe(throttled);
    } finally {
      await store.close();
    }
  });
});
