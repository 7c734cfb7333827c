// The server's own housekeeping and its answers when storage fails: the expiry sweep on its
// interval (logged, counted), storage that cannot be reached (503) or is misconfigured (500 config).
import { createServer } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { freshBucket } from "../../../test-support/s3.js";
import { WRITER_TOKEN, errorBody, rawRequest, startTestServer, storedKeys, wallet, type TestServer } from "./helpers.js";

const servers: TestServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

/** Resolves once `check()` holds (re-checked every 50 ms, at most 10 s). */
async function eventually(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 50));
  expect(check()).toBe(true);
}

/** A port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const address = srv.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

describe("housekeeping and storage failures", () => {
  it.each(["local", "moto", "r2sim"] as const)("the sweep runs on ARTIFACTS_SWEEP_INTERVAL, deletes expired operations, logs and counts them (%s)", async (kind) => {
    const s = await startTestServer(kind, { ARTIFACTS_SWEEP_INTERVAL: "1s" });
    servers.push(s);
    const grantee = wallet();
    const { operationId: expired } = await s.writer.createOperation({ grantee: grantee.address, ttlSeconds: 60 });
    await s.writer.upload(expired, "old.txt", "old");
    const { operationId: live } = await s.writer.createOperation({ grantee: grantee.address });
    await s.writer.upload(live, "kept.txt", "kept");
    // The store's clock jumps two minutes ahead: the operation has expired; the next sweep removes it.
    s.clock.now = new Date(Date.now() + 120_000);
    await eventually(() => s.logs.some((line) => line.includes('"msg":"expiry sweep done"') && /"deletedOperations":[1-9]/.test(line)));
    expect(await storedKeys(s.raw, expired)).toEqual([]);
    const metrics = await fetch(s.metricsUrl).then((r) => r.text());
    expect(metrics).toMatch(/^artifacts_sweep_deleted_total\{kind="operations"\} [1-9]\d*$/m);
    expect(metrics).toMatch(/^artifacts_sweep_runs_total\{outcome="ok"\} [1-9]\d*$/m);
    // The sweep refreshed the bucket gauges from its own listing: current, with the refresh time.
    expect(metrics).toMatch(/^artifacts_usage_stale 0$/m);
    expect(metrics).toMatch(/^artifacts_sweep_interval_seconds 1$/m);
    const refreshed = Number(/^artifacts_usage_refreshed_timestamp_seconds (\S+)$/m.exec(metrics)?.[1]);
    expect(Math.abs(refreshed - Date.now() / 1000)).toBeLessThan(60);
    let stored = 0;
    for await (const object of s.raw.list("operations/")) stored += object.size;
    expect(metrics).toMatch(/^artifacts_stored_operations 1$/m);
    expect(metrics).toMatch(/^artifacts_stored_artifacts 1$/m);
    expect(metrics).toContain(`\nartifacts_stored_bytes ${stored}\n`);
    // The share as the cost model computes it (GB, then over the free 10 GB-month): equal up to float rounding.
    const share = Number(/^artifacts_free_tier_used_ratio (\S+)$/m.exec(metrics)?.[1]);
    expect(Math.abs(share - stored / 10e9)).toBeLessThan(1e-15);
    expect(metrics).toMatch(/^artifacts_storage_cost_month_usd 0$/m);
    expect(metrics).toMatch(/^artifacts_storage_requests_total\{operation="list"\} [1-9]\d*$/m);
  });

  it("storage that cannot be reached answers 503 storage_unavailable with Retry-After, naming the storage only in the log", async () => {
    const bucket = await freshBucket(undefined, "unreachable");
    const s = await startTestServer("moto", {
      ...bucket.env,
      S3_ENDPOINT: `http://127.0.0.1:${await closedPort()}`,
      ARTIFACTS_S3_TIMEOUT_MS: "3000",
    });
    servers.push(s);
    const res = await rawRequest(s.url, "POST", "/api/v1/operations", { authorization: `Bearer ${WRITER_TOKEN}`, "content-type": "application/json" }, JSON.stringify({ grantee: wallet().address }));
    expect(res.status).toBe(503);
    expect(res.headers["retry-after"]).toBe("5");
    const body = res.json as { error: { code: string; message: string } };
    expect(body.error.code).toBe("storage_unavailable");
    // The endpoint, bucket and object key are the operator's: in the log, never in the body.
    expect(body.error.message).toBe("storage is unavailable or too slow; retry shortly");
    for (const secretish of [new URL(bucket.env.S3_ENDPOINT!).host, "127.0.0.1", bucket.bucket, "operations/"]) {
      expect(res.body.toString()).not.toContain(secretish);
    }
    expect(s.logs.join("")).toMatch(/cannot reach storage at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED/);
    // Counted by the kind of storage call that failed (the conditional metadata.json write).
    const metrics = await fetch(s.metricsUrl).then((r) => r.text());
    expect(metrics).toMatch(/^artifacts_storage_errors_total\{operation="put"\} [1-9]\d*$/m);
    expect(metrics).toMatch(/^artifacts_storage_errors_total\{operation="get"\} 0$/m);
  });

  it("a missing bucket is a 500 config error naming it (the hint stays in the log)", async () => {
    const bucket = await freshBucket(undefined, "missing");
    const s = await startTestServer("moto", { ...bucket.env, S3_BUCKET: `${bucket.bucket}-absent` });
    servers.push(s);
    const res = await rawRequest(s.url, "POST", "/api/v1/operations", { authorization: `Bearer ${WRITER_TOKEN}`, "content-type": "application/json" }, JSON.stringify({ grantee: wallet().address }));
    expect({ status: res.status, body: res.json }).toEqual({
      status: 500,
      body: errorBody("config", `bucket "${bucket.bucket}-absent" does not exist at ${bucket.env.S3_ENDPOINT}`),
    });
  });
});
