import { describe, expect, it } from "vitest";
import { metadataKey, openBackend } from "@personal-server/artifacts";
import type { CostEstimate } from "../src/cost-model.js";
import { GRANTEE, cli, cliJson, localEnv, storeFor } from "./helpers.js";

// Hand-computed from the pricing pages (apps/cli/src/pricing.ts) and the SDK's request pattern.
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
  it("the guide's example: 100 operations x 2 artifacts of 5 MB for 7 days", async () => {
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
    // Class A: uploads 100 x (1 create + 2 x (1 PUT + 1 metadata update)) = 500;
    // sweeps: 720 a month x (1 list of operations/ + 100*7/30 = 23.33 per-operation lists + 1 multipart list) = 18,240.
    expect(e.requests.r2.classA).toEqual({ uploads: 500, sweeps: 18_240, total: 18_740 });
    // Class B: 200 metadata reads on upload; downloads 100 x (1 list + 2 x (metadata + HEAD + GET)) = 700; sweeps 720 x 23.33 = 16,800.
    expect(e.requests.r2.classB).toEqual({ uploads: 200, downloads: 700, sweeps: 16_800, total: 17_700 });
    for (const l of e.r2.lines) expect(l.cost).toBe(0); // all inside the free tier
    expect(e.r2.total).toBe(0);

    // S3 Standard: 730-hour month, GB = 2^30.
    const s3GbMonth = (100 * (10_000_242 + m) * 7) / (730 / 24) / 2 ** 30;
    expect(line(e.s3.lines, "storage").cost).toBeCloseTo(s3GbMonth * 0.023, 6);
    // PUT/LIST: 500 + 730 sweeps x 2 + 16,800 = 18,760 -> $0.0938; GET: 17,700 -> $0.00708.
    expect(e.requests.s3.classA.total).toBe(18_760);
    expect(line(e.s3.lines, "PUT/LIST requests").cost).toBeCloseTo(0.0938, 6);
    expect(line(e.s3.lines, "GET/HEAD requests").cost).toBeCloseTo(0.00708, 6);
    // 200 downloads of 5,000,121 bytes = 0.93 GiB, inside the free 100 GB.
    expect(line(e.s3.lines, "egress to the internet").usage).toBeCloseTo((200 * 5_000_121) / 2 ** 30, 5);
    expect(line(e.s3.lines, "egress to the internet").cost).toBe(0);
    expect(e.s3.total).toBeCloseTo(s3GbMonth * 0.023 + 0.0938 + 0.00708, 5);

    // The guide's own arithmetic for the same inputs: 1 GB x $0.015 + 200 x $4.50/million.
    expect(e.guideMethod).toEqual({ storageGB: 1, storageCost: 0.015, uploads: 200, uploadCost: 0.0009, total: 0.0159 });
  });

  it("explains in plain text why the guide's 1 GB for a month overstates storage", async () => {
    const r = await cli(["cost", "--ops-per-month", "100", "--artifacts-per-op", "2", "--artifact-size", "5MB", "--retention", "7d"], {});
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("1 GB written per month that lives 7 days averages 0.2333 GB stored");
    expect(r.stdout).toContain("as if every artifact were kept all month, and ignores the free 10 GB-month");
    expect(r.stdout).toContain("The setup guide's method for these inputs: 1 GB x $0.015 + 200 uploads x $4.50/million = $0.0159");
    expect(r.stdout).toMatch(/Cloudflare R2 \(standard\)[\s\S]*total +\$0\.00\n/);
    expect(r.stdout).toMatch(/Amazon S3 Standard[\s\S]*total +\$0\.1058\n/);
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
    // Class A: 1000 x (1 + 2 x (5 + 1)) = 13,000; sweeps 720 x (1 + 466.67 + 1) = 337,440. Free.
    expect(e.requests.r2.classA).toEqual({ uploads: 13_000, sweeps: 337_440, total: 350_440 });
    // Class B: 2,000 + 1000 x (1 + 2 x 3) = 7,000 + 720 x 466.67 = 336,000. Free.
    expect(e.requests.r2.classB.total).toBe(345_000);
    expect(e.r2.total).toBeCloseTo(0.21, 10);
  });

  it("Class A past the free million is billed as a whole million (the sweep lists every live operation)", async () => {
    const e = await estimate(["--ops-per-month", "10000", "--artifacts-per-op", "1", "--artifact-size", "100KB", "--retention", "7d"]);
    // live = 10,000 x 7/30 = 2,333.33 -> 3 listing pages; 720 x (3 + 2,333.33 + 1) = 1,682,880; uploads 10,000 x 3.
    expect(e.requests.r2.classA).toEqual({ uploads: 30_000, sweeps: 1_682_880, total: 1_712_880 });
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
