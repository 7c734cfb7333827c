import { describe, expect, it } from "vitest";
import { freshBucket, motoEndpoint } from "../../../test-support/s3.js";
import { startRecordingProxy } from "../../../test-support/proxy.js";

describe("moto harness", () => {
  it("provides an endpoint and creates fresh buckets", async () => {
    const ep = motoEndpoint();
    expect(ep).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const a = await freshBucket(ep, "harness");
    const b = await freshBucket(ep, "harness");
    expect(a.bucket).not.toBe(b.bucket);
    const list = await (await fetch(`${ep}/`)).text();
    expect(list).toContain(`<Name>${a.bucket}</Name>`);
    expect(a.env.S3_BUCKET).toBe(a.bucket);
  });

  it("proxy records, forwards and cuts", async () => {
    const proxy = await startRecordingProxy(motoEndpoint());
    try {
      const res = await fetch(`${proxy.url}/?x=1`, { headers: { "X-Probe": "yes" } });
      expect(res.status).toBe(200);
      await res.text();
      expect(proxy.requests).toHaveLength(1);
      expect(proxy.requests[0]).toMatchObject({ method: "GET", path: "/?x=1", outcome: "forwarded" });
      expect(proxy.requests[0]!.headers["x-probe"]).toBe("yes");
      proxy.cut("reset");
      await expect(fetch(`${proxy.url}/`)).rejects.toThrow("fetch failed");
      proxy.restore();
      expect((await fetch(`${proxy.url}/`)).status).toBe(200);
    } finally {
      await proxy.close();
    }
  });
});
