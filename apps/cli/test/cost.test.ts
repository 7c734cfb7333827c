import { describe, expect, it } from "vitest";
import { metadataKey, openBackend } from "@personal-server/artifacts/internal";
import type { CostEstimate } from "@personal-server/artifacts/internal";
import { GRANTEE, cli, cliJson, localEnv, storeFor } from "./helpers.js";

// Hand-computed from the pricing pages (packages/artifacts/src/cost/pricing.ts) and the SDK's request pattern.
// Only metadata.json's size comes from the tool itself (it is measured against a real one below).
const MiB = 1024 * 1024;
const PART = 8 * MiB;

async function estimate(args: string[]): Promise<CostEstimate> {
  const { code, json } = await cliJson<CostEstimate & { ok: boolean }>(["cost", ...args], {});
  expect(code).toBe(0);
  return json;
}

const line = (lines: CostEstimate["r2"]["lines"], item: string) => {
  const found = lines.find((l) => l.item === item);
  if (!found) throw new Error(`no line ${item}`);
  return found;
};

describe("cost", () => {
  it("a small setup: 100 operations x 2 artifacts of 5 MB for 7 days", async () => {
    const e = await estimate(["--ops-per-month", "100", "--artifacts-per-op", "2", "--artifact-size", "5MB", "--retention", "7d"]);
    // 5,000,000 bytes in 1 MiB chunks: ceil(4.77) = 5 chunks -> 41 + 5,000,000 + 5 * 16.
    expect(e.derived.encryptedArtifactBytes).toBe(5_000_121);
    expect(e.derived.uploadRequestsPerArtifact).toBe(1); // < 8 MiB: one PutObject
    const m = e.derived.metadataBytes;
    expect(e.derived.bytesPerOperation).toBe(2 * 5_000_121 + m);

    // R2: 100 ops/month each stored 7 of 30 days.
    const gbMonth = (100 * (10_000_242 + m) * 7) / 30 / 1e9;
    expect(line(e.r2.lines, "storage").usage).toBeCloseTo(gbMonth, 6);
    expect(gbMonth).toBeCloseTo(0.2334, 4);
    // Each hourly sweep finds the 100*7/30 = 23.33 live operations and the 100/720 = 0.1389 that
    // expired since the previous sweep: 23.47 operations of 3 objects = 70.4 objects, one listing page.
    expect(e.derived.perSweep).toEqual({ listPages: 1, classA: 2, classB: 23.4722, operations: 23.4722, objects: 70.4167 });
    // Class A: uploads 100 x (1 create + 2 x (1 PUT + 1 metadata update)) = 500;
    // sweeps: 720 a month x (1 page listing operations/ + 1 ListMultipartUploads) = 1,440.
    expect(e.requests.r2.classA).toEqual({ uploads: 500, sweeps: 1_440, total: 1_940 });
    // Class B: no metadata reads on upload (the writer's own copy); downloads 100 x (1 list + 2 x (metadata + HEAD + GET)) = 700;
    // sweeps 720 x 23.33 live + each of the 100 operations once more in the sweep that deletes it = 16,900.
    expect(e.requests.r2.classB).toEqual({ uploads: 0, downloads: 700, sweeps: 16_900, total: 17_600 });
    for (const l of e.r2.lines) expect(l.cost).toBe(0); // all inside the free tier
    expect(e.r2.total).toBe(0);

    // S3 Standard: 730-hour month, GB = 2^30.
    const s3GbMonth = (100 * (10_000_242 + m) * 7) / (730 / 24) / 2 ** 30;
    expect(line(e.s3.lines, "storage").cost).toBeCloseTo(s3GbMonth * 0.023, 6);
    // PUT/LIST: 500 + 730 sweeps x 2 = 1,960 -> $0.0098;
    // GET: 700 + 730 x (100 x 7 / 30.42 = 23.01 live) + 100 = 17,600 -> $0.00704.
    expect(e.requests.s3.classA).toEqual({ uploads: 500, sweeps: 1_460, total: 1_960 });
    expect(e.requests.s3.classB).toEqual({ uploads: 0, downloads: 700, sweeps: 16_900, total: 17_600 });
    expect(line(e.s3.lines, "PUT/LIST requests").cost).toBeCloseTo(0.0098, 6);
    expect(line(e.s3.lines, "GET/HEAD requests").cost).toBeCloseTo(0.00704, 6);
    // 200 downloads of 5,000,121 bytes = 0.93 GiB, inside the free 100 GB.
    expect(line(e.s3.lines, "egress to the internet").usage).toBeCloseTo((200 * 5_000_121) / 2 ** 30, 5);
    expect(line(e.s3.lines, "egress to the internet").cost).toBe(0);
    expect(e.s3.total).toBeCloseTo(s3GbMonth * 0.023 + 0.0098 + 0.00704, 5);
  });

  it("explains in plain text how it counts: 1 GB written a month and kept 7 days is 0.23 GB-month", async () => {
    const r = await cli(["cost", "--ops-per-month", "100", "--artifacts-per-op", "2", "--artifact-size", "5MB", "--retention", "7d"], {});
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("1 GB written per month that lives 7 days averages 0.2333 GB stored");
    expect(r.stdout).toContain("so a byte costs the monthly price only if it is kept all month.");
    expect(r.stdout).toContain("\nHow this is counted:\n  - Storage is billed per GB-month");
    expect(r.stdout).not.toMatch(/guide/i);
    expect(r.stdout).toMatch(/Cloudflare R2 \(standard\)[\s\S]*total +\$0\.00\n/);
    expect(r.stdout).toMatch(/Amazon S3 Standard[\s\S]*total +\$0\.0218\n/);
    expect(r.stdout).toContain(
      "Each sweep: 1 ListObjects page(s) for 70.4167 objects + 1 ListMultipartUploads (Class A), 23.4722 metadata.json reads (Class B; deletes are free)\n",
    );
    expect(r.stdout).toContain(
      "1,440 for 720 sweeps a month (each lists operations/ once, one request per 1,000 objects: 1 for 70.4167 objects, and lists incomplete multipart uploads once).",
    );
    expect(r.stdout).toContain(
      "16,900 for sweeps: each reads the metadata.json of every operation it finds (23.3333 live, and 0.1389 expired since the previous sweep, which it deletes).",
    );
    expect(r.stdout).toContain("Prices checked 2026-11-27: https://developers.cloudflare.com/r2/pricing/ and https://aws.amazon.com/s3/pricing/");
  });

  it("a 10 GB+ case crosses the storage free tier and is billed in whole GB-months", async () => {
    const e = await estimate(["--ops-per-month", "1000", "--artifacts-per-op", "2", "--artifact-size", "25MB", "--retention", "14d"]);
    // ceil(25e6 / 1 MiB) = 24 chunks: 41 + 25,000,000 + 384.
    expect(e.derived.encryptedArtifactBytes).toBe(25_000_425);
    // > 8 MiB: CreateMultipartUpload + ceil(25,000,425 / 8 MiB) = 3 parts + Complete.
    expect(e.derived.uploadRequestsPerArtifact).toBe(Math.ceil(25_000_425 / PART) + 2);
    expect(e.derived.uploadRequestsPerArtifact).toBe(5);
    const m = e.derived.metadataBytes;
    const gbMonth = (1000 * (50_000_850 + m) * 14) / 30 / 1e9; // 23.33 GB-month
    expect(gbMonth).toBeGreaterThan(23.33);
    expect(gbMonth).toBeLessThan(23.34);
    const storage = line(e.r2.lines, "storage");
    expect(storage.usage).toBeCloseTo(gbMonth, 5);
    expect(storage.billable).toBe(14); // 13.33 after the free 10, rounded up
    expect(storage.cost).toBeCloseTo(0.21, 10);
    // Each sweep finds 1000 x 14/30 = 466.67 live + 1000/720 = 1.39 expired operations of 3 objects:
    // 1,404.2 objects, 2 listing pages.
    expect(e.derived.perSweep).toMatchObject({ listPages: 2, classA: 3, objects: 1404.1667 });
    // Class A: 1000 x (1 + 2 x (5 + 1)) = 13,000; sweeps 720 x (2 + 1) = 2,160. Free.
    expect(e.requests.r2.classA).toEqual({ uploads: 13_000, sweeps: 2_160, total: 15_160 });
    // Class B: uploads none; 1000 x (1 + 2 x 3) = 7,000 + 720 x 466.67 + 1000 = 337,000. Free.
    expect(e.requests.r2.classB).toEqual({ uploads: 0, downloads: 7_000, sweeps: 337_000, total: 344_000 });
    expect(e.r2.total).toBeCloseTo(0.21, 10);
  });

  it("Class A past the free million is billed as a whole million; the sweep's listing is paged per 1000 objects", async () => {
    const e = await estimate(["--ops-per-month", "200000", "--artifacts-per-op", "2", "--artifact-size", "100KB", "--retention", "1d"]);
    // Uploads 200,000 x (1 create + 2 x (1 PUT + 1 metadata update)) = 1,000,000.
    // Each sweep: 200,000/30 = 6,666.67 live + 200,000/720 = 277.78 expired operations of 3 objects
    // = 20,833.3 objects -> 21 pages + 1 ListMultipartUploads; 720 x 22 = 15,840.
    expect(e.derived.perSweep).toMatchObject({ listPages: 21, classA: 22, operations: 6944.4444, objects: 20833.3333 });
    expect(e.requests.r2.classA).toEqual({ uploads: 1_000_000, sweeps: 15_840, total: 1_015_840 });
    // Class B: no upload reads + 200,000 x (1 + 2 x 2) + (720 x 6,666.67 + 200,000) = 6,000,000: inside the free 10 million.
    expect(e.requests.r2.classB).toEqual({ uploads: 0, downloads: 1_000_000, sweeps: 5_000_000, total: 6_000_000 });
    expect(line(e.r2.lines, "Class B requests").cost).toBe(0);
    const a = line(e.r2.lines, "Class A requests");
    expect(a.billable).toBe(1);
    expect(a.cost).toBe(4.5);
    expect(line(e.r2.lines, "storage").cost).toBe(0);
    expect(e.r2.total).toBe(4.5);
  });

  it("infrequent access: no free tier, 30-day minimum, retrieval fees", async () => {
    const e = await estimate([
      "--ops-per-month", "100", "--artifacts-per-op", "2", "--artifact-size", "5MB", "--retention", "7d", "--storage-class", "infrequent",
    ]);
    const m = e.derived.metadataBytes;
    const gbMonth = (100 * (10_000_242 + m) * 30) / 30 / 1e9; // billed for 30 days, not 7
    expect(line(e.r2.lines, "storage").usage).toBeCloseTo(gbMonth, 6);
    // 1.0001 GB-month, no free tier, rounded up to 2 GB-month.
    expect(line(e.r2.lines, "storage").billable).toBe(2);
    expect(line(e.r2.lines, "storage").cost).toBeCloseTo(0.02, 10);
    expect(line(e.r2.lines, "Class A requests").cost).toBe(9);
    expect(line(e.r2.lines, "Class B requests").cost).toBe(0.9);
    expect(line(e.r2.lines, "data retrieval").billable).toBe(2); // 1.000024 GB rounds up
    expect(e.notes.join(" ")).toContain("bills at least 30 days per object: 7 days are billed as 30");
  });

  it("without a sweep the lifecycle rule deletes a day late and no listing requests are made", async () => {
    const e = await estimate(["--ops-per-month", "100", "--artifacts-per-op", "2", "--artifact-size", "5MB", "--retention", "7d", "--sweep-interval", "0"]);
    expect(e.derived.storedDays).toBe(8);
    expect(e.requests.r2.classA).toEqual({ uploads: 500, sweeps: 0, total: 500 });
    expect(e.requests.r2.classB).toEqual({ uploads: 0, downloads: 700, sweeps: 0, total: 700 });
    expect(e.derived.perSweep).toEqual({ listPages: 0, classA: 0, classB: 0, operations: 0, objects: 0 });
  });

  it("its metadata.json size is what the SDK really writes", async () => {
    const env = localEnv();
    const store = storeFor(env);
    const op = await store.createOperation({ grantee: GRANTEE, agent: "agent" });
    for (const path of ["artifact-001.bin", "artifact-002.bin"]) await store.putArtifact(op.operationId, path, Buffer.alloc(5_000_000, 7));
    await store.close();
    const backend = await openBackend({ kind: "local", dir: env.ARTIFACTS_LOCAL_DIR! }, { timeoutMs: 5000, connectTimeoutMs: 5000 });
    const real = (await backend.getBytes(metadataKey(op.operationId)))!.body.length;
    await backend.close();
    const e = await estimate(["--ops-per-month", "1", "--artifacts-per-op", "2", "--artifact-size", "5MB", "--retention", "7d"]);
    // Local ETags are shorter than the multipart ETag the estimate assumes; within a few dozen bytes.
    expect(Math.abs(e.derived.metadataBytes - real)).toBeLessThan(40);
  });

  it("rejects malformed values as command-line errors (exit 2) and documents itself", async () => {
    const bad = await cli(["cost", "--ops-per-month", "many", "--artifacts-per-op", "2", "--artifact-size", "5MB", "--retention", "7d"], {});
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(`error: option '--ops-per-month <n>' argument 'many' is invalid. value must be a whole number >= 0, got "many"`);
    const size = await cli(["cost", "--ops-per-month", "1", "--artifacts-per-op", "2", "--artifact-size", "5 parsecs", "--retention", "7d"], {});
    expect(size.code).toBe(2);
    expect(size.stderr).toContain(`invalid size "5 parsecs"`);
    const missing = await cli(["cost", "--ops-per-month", "1"], {});
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("error: required option '--artifacts-per-op <n>' not specified");
    const help = await cli(["cost", "--help"], {});
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("--storage-class <class>");
    expect(help.stdout).toContain("--json");
  });
});
