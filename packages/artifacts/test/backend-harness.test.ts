import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { MOTO_MISSING, startMoto } from "../../../test-support/moto.js";
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

  it("fails, saying how to install moto, when python3 or moto is missing", async () => {
    expect(MOTO_MISSING).toBe("moto is required for the S3 tests: pip install 'moto[server]'");
    await expect(startMoto("python3-that-does-not-exist")).rejects.toThrow(`${MOTO_MISSING} (no python3-that-does-not-exist on PATH)`);
    // A python that cannot see site-packages has no moto.
    const dir = await mkdtemp(join(tmpdir(), "psa-nomoto-"));
    try {
      const python = join(dir, "python-without-moto");
      await writeFile(python, '#!/bin/sh\nexec python3 -S "$@"\n');
      await chmod(python, 0o755);
      await expect(startMoto(python)).rejects.toThrow(`${MOTO_MISSING} (No module named 'moto')`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
