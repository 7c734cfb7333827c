// `pnpm artifacts doctor --deep`, the acceptance check users run against their own bucket, through
// the CLI's real entry point, against the two S3 peers that run here: Cloudflare's R2 simulator,
// and moto behind the R2-limits proxy (one write per second per key, 412 for If-Match on a missing
// key). Each peer's table is asserted row by row: what the peer does and does not implement.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfig } from "@personal-server/artifacts";
import { openBackend } from "@personal-server/artifacts/internal";
import { startR2LimitsProxy, type R2LimitsProxy } from "../../../test-support/r2-limits.js";
import { motoEndpoint, putBucketCors } from "../../../test-support/s3.js";
import type { DeepResult } from "../src/commands/doctor.js";
import { DEEP_CHECKS } from "../src/doctor/deep/run.js";
import { type Env, REPO_ROOT, putLifecycle, runChild, s3Env, tempDir } from "./helpers.js";

type Report = { ok: boolean; prefix: string; results: DeepResult[] };
const ORIGIN = "https://web.example.com";

async function keys(env: Env): Promise<string[]> {
  const backend = await openBackend(loadConfig(env).storage, { timeoutMs: 10_000, connectTimeoutMs: 5000 });
  const found: string[] = [];
  for await (const o of backend.list("")) found.push(o.key);
  await backend.close();
  return found.sort();
}

/** An object the check must leave alone: a neighbour of its prefix. */
async function putNeighbour(env: Env): Promise<void> {
  const backend = await openBackend(loadConfig(env).storage, { timeoutMs: 10_000, connectTimeoutMs: 5000 });
  await backend.put("operations/.doctor-deep-kept/metadata.json", Buffer.from("someone else's"));
  await backend.put("operations/keep/metadata.json", Buffer.from("{}"));
  await backend.close();
}

/** `doctor --deep --json`, and with `text` the table as users see it (a second run). */
async function deep(env: Env, text = false): Promise<{ code: number; report: Report; table: string }> {
  const json = await runChild(["doctor", "--deep", "--json"], env, tempDir("deep-cwd"));
  let report: Report;
  try {
    report = JSON.parse(json.stdout) as Report;
  } catch {
    throw new Error(`doctor --deep --json printed no JSON (exit ${json.code}):\n${json.stdout}\n${json.stderr}`);
  }
  if (!text) return { code: json.code, report, table: "" };
  const table = await runChild(["doctor", "--deep"], env, tempDir("deep-cwd"));
  expect(table.code).toBe(json.code);
  return { code: json.code, report, table: table.stdout };
}

const rows = (r: Report) => r.results.map((x) => [x.name, x.status]);

let proxy: R2LimitsProxy | undefined;
afterAll(async () => {
  await proxy?.close();
});

describe("doctor --deep", () => {
  it("docs/operations.md describes every row, in the table's order", () => {
    const doc = readFileSync(join(REPO_ROOT, "docs/operations.md"), "utf8");
    const start = doc.indexOf("## The acceptance check for your bucket");
    const next = doc.indexOf("\n## ", start + 1);
    const section = doc.slice(start, next === -1 ? undefined : next);
    const described = [...section.matchAll(/^\| ([^|]+?) \| [^|]/gm)].map((m) => m[1]!).filter((name) => name !== "row" && name !== "---");
    expect(described).toEqual([...DEEP_CHECKS.map((c) => c.name), "cleanup"]);
  });

  it("on the R2 simulator: writes, presigned URLs, listings and ranges pass; CORS and lifecycle are not supported (501)", async () => {
    const env = await s3Env("deep-r2sim", { ARTIFACTS_CORS_ORIGINS: ORIGIN }, "r2sim");
    await putNeighbour(env);
    const before = await keys(env);
    const { code, report, table } = await deep(env, true);
    expect(rows(report), JSON.stringify(report.results, null, 1)).toEqual([
      ["conditional create", "pass"],
      ["If-Match, missing key", "pass"],
      ["If-Match, replace", "pass"],
      ["one write per second", "pass"],
      ["presigned GET", "pass"],
      ["presigned expiry", "pass"],
      ["CORS", "not supported"],
      ["lifecycle", "not supported"],
      ["listing", "pass"],
      ["ranges", "pass"],
      ["cleanup", "pass"],
    ]);
    expect(code).toBe(0);
    expect(report.ok).toBe(true);
    expect(report.prefix).toMatch(/^operations\/\.doctor-deep-[0-9a-f]{12}\/$/);
    expect(report.results[1]!.detail).toBe("refused with 412, and nothing was created");
    expect(report.results[6]!.detail).toMatch(/^the endpoint has no CORS configuration \(GetBucketCors answers 501\); preflight: https:\/\/web\.example\.com: preflight answered 403/);
    expect(table).toMatch(/^check {18}result {9}detail$/m);
    expect(table).toMatch(/^CORS {19}not supported {2}the endpoint has no CORS configuration/m);
    expect(table).toContain("doctor --deep: 9 passed, 0 failed, 2 not supported, 0 skipped");
    // Only its own keys were deleted: the neighbours (one under a look-alike prefix) are still there.
    expect(await keys(env)).toEqual(before);
  });

  it("on moto behind the R2-limits proxy: the write rate is met with retries; moto's accepted expired URL fails", async () => {
    proxy = await startR2LimitsProxy(motoEndpoint());
    const direct = await s3Env("deep-moto", { ARTIFACTS_CORS_ORIGINS: ORIGIN });
    await putLifecycle(direct.S3_ENDPOINT, direct.S3_BUCKET, "operations/", 8);
    // The rule infra sets (corsOrigins): GET/HEAD with Range, Content-Range and ETag exposed.
    await putBucketCors(direct.S3_ENDPOINT, direct.S3_BUCKET, [{ origins: [ORIGIN], methods: ["GET", "HEAD"], headers: ["range"], expose: ["Content-Range", "ETag", "Content-Length"] }]);
    const env = { ...direct, S3_ENDPOINT: proxy.url };
    await putNeighbour(env);
    const before = await keys(env);
    const { code, report } = await deep(env);
    expect(rows(report), JSON.stringify(report.results, null, 1)).toEqual([
      ["conditional create", "pass"],
      ["If-Match, missing key", "pass"],
      ["If-Match, replace", "pass"],
      ["one write per second", "pass"],
      ["presigned GET", "pass"],
      ["presigned expiry", "fail"],
      ["CORS", "pass"],
      ["lifecycle", "pass"],
      ["listing", "pass"],
      ["ranges", "pass"],
      ["cleanup", "pass"],
    ]);
    expect(code).toBe(1);
    expect(report.results[1]!.detail).toBe("refused with 412, and nothing was created");
    expect(report.results[5]!.detail).toBe("a URL that expired a minute ago was answered 200: this store does not enforce presigned expiry");
    expect(report.results[7]!.detail).toBe('lifecycle rule "expire-operations" expires "operations/" after 8 days, longer than ARTIFACTS_TTL (7d)');
    // The proxy answered 429 to writes within a second of the last to the same key, and they were retried.
    expect(proxy.limits.throttled).toBeGreaterThan(0);
    expect(proxy.limits.retried).toBeGreaterThan(0);
    expect(proxy.limits.missingIfMatch).toBe(1);
    expect(await keys(env)).toEqual(before);
    // Deleted by exact key (DeleteObjects naming each), only keys under its own prefix.
    const deleted = proxy.requests
      .filter((r) => r.method === "POST" && /[?&]delete/.test(r.path))
      .flatMap((r) => [...r.bodyHead.matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1]!));
    expect(deleted.length).toBeGreaterThan(0);
    expect(deleted.filter((key) => !key.startsWith(report.prefix))).toEqual([]);
  });
});
