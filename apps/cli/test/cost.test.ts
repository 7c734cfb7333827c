import { describe, expect, it } from "vitest";
import { indexKey, metadataKey, openBackend } from "@personal-server/artifacts/internal";
import type { CostEstimate } from "@personal-server/artifacts/internal";
import { GRANTEE, cli, cliJson, localEnv, storeFor } from "./helpers.js";

// Hand-computed from the pricing pages (packages/artifacts/src/cost/pricing.ts) and the SDK's request pattern
// for layout 2 operations (cost-wire.test.ts checks that pattern on the wire). Only the sizes of
// metadata.json, the entries and index.json come from the tool itself (measured against real ones below).
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
    const m = e.derived.layoutBytes.total;
    expect(e.derived.bytesPerOperation).toBe(2 * 5_000_121 + m);

    // R2: 100 ops/month each stored 7 of 30 days.
    const gbMonth = (100 * (10_000_242 + m) * 7) / 30 / 1e9;
    expect(line(e.r2.lines, "storage").usage).toBeCloseTo(gbMonth, 6);
    expect(gbMonth).toBeCloseTo(0.2334, 4);
    // Each hourly sweep finds the 100*7/30 = 23.33 live operations and the 100/720 = 0.1389 that
    // expired since the previous sweep: 23.47 operations of 6 objects (2 objects, 2 entries,
    // metadata.json, index.json) = 140.8 objects, one listing page; metadata.json of each, index.json of the live ones.
    expect(e.derived.perSweep).toEqual({ listPages: 1, classA: 2, classB: 46.8056, operations: 23.4722, objects: 140.8333 });
    // Class A: uploads 100 x (1 create + 2 x (1 PUT + 1 entry PUT) + 1 index write once it covers both) = 600;
    // downloads 100 x 1 LIST of the entries after the index; sweeps: 720 a month x (1 page listing operations/ + 1 ListMultipartUploads) = 1,440.
    expect(e.requests.r2.classA).toEqual({ uploads: 600, downloads: 100, sweeps: 1_440, total: 2_140 });
    // Class B: uploads 100 x (2 metadata.json reads after the commits + 2 entries read once for the index) = 400;
    // downloads 100 x (metadata + index + 2 x (metadata + index + HEAD + GET)) = 1,000;
    // sweeps 720 x 23.33 live x 2 (metadata.json, index.json) + each of the 100 operations once more in the sweep that deletes it = 33,700.
    expect(e.requests.r2.classB).toEqual({ uploads: 400, downloads: 1_000, sweeps: 33_700, total: 35_100 });
    for (const l of e.r2.lines) expect(l.cost).toBe(0); // all inside the free tier
    expect(e.r2.total).toBe(0);

    // S3 Standard: 730-hour month, GB = 2^30.
    const s3GbMonth = (100 * (10_000_242 + m) * 7) / (730 / 24) / 2 ** 30;
    expect(line(e.s3.lines, "storage").cost).toBeCloseTo(s3GbMonth * 0.023, 6);
    // PUT/LIST: 600 + 100 + 730 sweeps x 2 = 2,160 -> $0.0108;
    // GET: 400 + 1,000 + 730 x 2 x (100 x 7 / 30.42 = 23.01 live) + 100 = 35,100 -> $0.01404.
    expect(e.requests.s3.classA).toEqual({ uploads: 600, downloads: 100, sweeps: 1_460, total: 2_160 });
    expect(e.requests.s3.classB).toEqual({ uploads: 400, downloads: 1_000, sweeps: 33_700, total: 35_100 });
    expect(line(e.s3.lines, "PUT/LIST requests").cost).toBeCloseTo(0.0108, 6);
    expect(line(e.s3.lines, "GET/HEAD requests").cost).toBeCloseTo(0.01404, 6);
    // 200 downloads of 5,000,121 bytes = 0.93 GiB, inside the free 100 GB.
    expect(line(e.s3.lines, "egress to the internet").usage).toBeCloseTo((200 * 5_000_121) / 2 ** 30, 5);
    expect(line(e.s3.lines, "egress to the internet").cost).toBe(0);
    expect(e.s3.total).toBeCloseTo(s3GbMonth * 0.023 + 0.0108 + 0.01404, 5);
  });

  it("explains in plain text how it counts: 1 GB written a month and kept 7 days is 0.23 GB-month", async () => {
    const r = await cli(["cost", "--ops-per-month", "100", "--artifacts-per-op", "2", "--artifact-size", "5MB", "--retention", "7d"], {});
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("1 GB written per month that lives 7 days averages 0.2333 GB stored");
    expect(r.stdout).toContain("so a byte costs the monthly price only if it is kept all month.");
    expect(r.stdout).toContain("\nHow this is counted:\n  - Storage is billed per GB-month");
    expect(r.stdout).not.toMatch(/guide/i);
    expect(r.stdout).toMatch(/Cloudflare R2 \(standard\)[\s\S]*total +\$0\.00\n/);
    expect(r.stdout).toMatch(/Amazon S3 Standard[\s\S]*total +\$0\.0298\n/);
    expect(r.stdout).toContain(
      "Each sweep: 1 ListObjects page(s) for 140.8333 objects + 1 ListMultipartUploads (Class A), 23.4722 metadata.json + 23.3333 index.json reads (Class B; deletes are free)\n",
    );
    expect(r.stdout).toContain(
      "1,440 for 720 sweeps a month (each lists operations/ once, one request per 1,000 objects: 1 for 140.8333 objects, entries included, and lists incomplete multipart uploads once).",
    );
    expect(r.stdout).toContain(
      "33,700 for sweeps: each reads the metadata.json of every operation it finds (23.3333 live, and 0.1389 expired since the previous sweep, which it deletes) and the index.json of each live one.",
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
    const m = e.derived.layoutBytes.total;
    const gbMonth = (1000 * (50_000_850 + m) * 14) / 30 / 1e9; // 23.33 GB-month
    expect(gbMonth).toBeGreaterThan(23.33);
    expect(gbMonth).toBeLessThan(23.34);
    const storage = line(e.r2.lines, "storage");
    expect(storage.usage).toBeCloseTo(gbMonth, 5);
    expect(storage.billable).toBe(14); // 13.33 after the free 10, rounded up
    expect(storage.cost).toBeCloseTo(0.21, 10);
    // Each sweep finds 1000 x 14/30 = 466.67 live + 1000/720 = 1.39 expired operations of 6 objects:
    // 2,808.3 objects, 3 listing pages.
    expect(e.derived.perSweep).toMatchObject({ listPages: 3, classA: 4, objects: 2808.3333 });
    // Class A: 1000 x (1 + 2 x (5 + 1) + 1) = 14,000; downloads 1000 LISTs; sweeps 720 x (3 + 1) = 2,880. Free.
    expect(e.requests.r2.classA).toEqual({ uploads: 14_000, downloads: 1_000, sweeps: 2_880, total: 17_880 });
    // Class B: uploads 1000 x (2 + 2); downloads 1000 x (2 + 2 x 4) = 10,000; sweeps 720 x 2 x 466.67 + 1000 = 673,000. Free.
    expect(e.requests.r2.classB).toEqual({ uploads: 4_000, downloads: 10_000, sweeps: 673_000, total: 687_000 });
    expect(e.r2.total).toBeCloseTo(0.21, 10);
  });

  it("requests past the free tier are billed in whole millions; the sweep's listing is paged per 1000 objects", async () => {
    const e = await estimate(["--ops-per-month", "200000", "--artifacts-per-op", "2", "--artifact-size", "100KB", "--retention", "1d"]);
    // Uploads 200,000 x (1 create + 2 x (1 PUT + 1 entry PUT) + 1 index write) = 1,200,000.
    // Each sweep: 200,000/30 = 6,666.67 live + 200,000/720 = 277.78 expired operations of 6 objects
    // = 41,666.7 objects -> 42 pages + 1 ListMultipartUploads; 720 x 43 = 30,960.
    expect(e.derived.perSweep).toMatchObject({ listPages: 42, classA: 43, operations: 6944.4444, objects: 41666.6667 });
    expect(e.requests.r2.classA).toEqual({ uploads: 1_200_000, downloads: 200_000, sweeps: 30_960, total: 1_430_960 });
    // Class B: 200,000 x (2 + 2) + 200,000 x (2 + 2 x 3) + (720 x 2 x 6,666.67 + 200,000) = 12,200,000: past the free 10 million.
    expect(e.requests.r2.classB).toEqual({ uploads: 800_000, downloads: 1_600_000, sweeps: 9_800_000, total: 12_200_000 });
    const b = line(e.r2.lines, "Class B requests");
    expect(b.billable).toBe(3); // 2.2 million past the free 10, rounded up
    expect(b.cost).toBeCloseTo(1.08, 10);
    const a = line(e.r2.lines, "Class A requests");
    expect(a.billable).toBe(1);
    expect(a.cost).toBe(4.5);
    expect(line(e.r2.lines, "storage").cost).toBe(0);
    expect(e.r2.total).toBeCloseTo(5.58, 10);
  });

  it("infrequent access: no free tier, 30-day minimum, retrieval fees", async () => {
    const e = await estimate([
      "--ops-per-month", "100", "--artifacts-per-op", "2", "--artifact-size", "5MB", "--retention", "7d", "--storage-class", "infrequent",
    ]);
    const m = e.derived.layoutBytes.total;
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
    expect(e.requests.r2.classA).toEqual({ uploads: 600, downloads: 100, sweeps: 0, total: 700 });
    expect(e.requests.r2.classB).toEqual({ uploads: 400, downloads: 1_000, sweeps: 0, total: 1_400 });
    expect(e.derived.perSweep).toEqual({ listPages: 0, classA: 0, classB: 0, operations: 0, objects: 0 });
  });

  it("its metadata.json, entries and index.json sizes are what the SDK really writes", async () => {
    const env = localEnv();
    const clock = { now: new Date() };
    const store = storeFor(env, { createLayout: 2, now: () => clock.now });
    const op = await store.createOperation({ grantee: GRANTEE, agent: "agent" });
    for (const path of ["artifact-001.bin", "artifact-002.bin"]) await store.putArtifact(op.operationId, path, Buffer.alloc(5_000_000, 7));
    // Past the index's margin a sweep writes the index that covers both entries.
    clock.now = new Date(clock.now.getTime() + 20 * 60_000);
    await store.sweepExpired();
    await store.close();
    const backend = await openBackend({ kind: "local", dir: env.ARTIFACTS_LOCAL_DIR! }, { timeoutMs: 5000, connectTimeoutMs: 5000 });
    const size = async (key: string) => (await backend.getBytes(key))!.body.length;
    const entries = [];
    for await (const o of backend.list(`operations/${op.operationId}/entries/`)) entries.push(o.size);
    const real = { metadataJson: await size(metadataKey(op.operationId)), entries: entries.reduce((a, b) => a + b, 0), index: await size(indexKey(op.operationId)) };
    await backend.close();
    expect(entries).toHaveLength(2);
    const e = await estimate(["--ops-per-month", "1", "--artifacts-per-op", "2", "--artifact-size", "5MB", "--retention", "7d"]);
    // Local ETags are shorter than the multipart ETag the estimate assumes, ids differ a little; within a few dozen bytes each.
    for (const part of ["metadataJson", "entries", "index"] as const) expect(Math.abs(e.derived.layoutBytes[part] - real[part])).toBeLessThan(40);
    expect(e.derived.layoutBytes.total).toBe(e.derived.layoutBytes.metadataJson + e.derived.layoutBytes.entries + e.derived.layoutBytes.index);
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
