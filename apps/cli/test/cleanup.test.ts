import { describe, expect, it } from "vitest";
import { metadataKey, artifactObjectKey } from "@personal-server/artifacts";
import { listMultipartUploads, startDanglingMultipartUpload } from "../../../test-support/s3.js";
import { GRANTEE, type Kind, cli, cliJson, listKeys, localEnv, makeFixture, runChild, storeFor, tempDir } from "./helpers.js";

describe.each<Kind>(["local", "moto", "r2sim"])("cleanup on %s", (kind) => {
  // The R2 simulator does not implement ListMultipartUploads (501): cleanup says so, never fails.
  const temporary = kind === "r2sim" ? "incomplete uploads not swept (this storage endpoint does not implement ListMultipartUploads)" : "0 temp file(s)/incomplete upload(s)";

  it("--dry-run lists exactly what the sweep will delete, and deletes nothing", async () => {
    const f = await makeFixture(kind, "cleanup-dry");
    const before = await listKeys(f.env);
    const { code, json } = await cliJson<Record<string, unknown>>(["cleanup", "--dry-run"], f.env);
    expect(code).toBe(0);
    expect(json).toMatchObject({
      ok: true,
      dryRun: true,
      expiredOperations: [...f.expired].sort(),
      expiredObjects: 4, // metadata.json and one artifact each
      orphanObjects: f.oldOrphans.length,
    });
    expect(await listKeys(f.env)).toEqual(before);
  });

  it("deletes exactly the expired operations and the orphans older than 24 h, and is idempotent", async () => {
    const f = await makeFixture(kind, "cleanup");
    const r = await cli(["cleanup"], f.env);
    expect(r.code).toBe(0);
    // Every operations/ group the sweep's listing reaches: on local also ghost_1/ and the stray key.
    const prefixes = 4 + (kind === "local" ? 2 : 0);
    const deleted = 4 + f.oldOrphans.length;
    // Fewer than 100: no periodic line, only the final count with the sweep's own running totals.
    expect(r.stderr).toBe(`cleanup: ${prefixes} operations (deleted 2 expired operation(s), ${deleted} object(s))\n`);
    expect(r.stdout).toContain(`: deleted 2 expired operation(s), ${deleted} object(s) (theirs and orphans), ${temporary}.\n`);
    const expected = [
      metadataKey(f.live[0]!),
      artifactObjectKey(f.live[0]!, "a.bin"),
      artifactObjectKey(f.live[0]!, "b.bin"),
      metadataKey(f.live[1]!),
      artifactObjectKey(f.live[1]!, "c.txt"),
      ...f.youngOrphans,
    ].sort();
    expect((await listKeys(f.env)).sort()).toEqual(expected);

    const again = await cliJson<Record<string, unknown>>(["cleanup"], f.env);
    expect(again.code).toBe(0);
    expect(again.json).toMatchObject({ ok: true, dryRun: false, deletedOperations: 0,
      deletedObjects: 0,
      deletedTemporary: kind === "r2sim" ? "not_supported" : 0,
    });
    expect((await listKeys(f.env)).sort()).toEqual(expected);
  });
});

describe("cleanup's progress", () => {
  it("is a running count with the deletions so far: a plain line every 100 operations, then the final one", async () => {
    const env = localEnv();
    const now = Date.now();
    const past = storeFor(env, { now: () => new Date(now - 10 * 86_400_000) });
    const present = storeFor(env);
    // Ids chosen so the listing (key order) reaches the 130 expired operations first.
    for (let i = 0; i < 130; i++) await past.createOperation({ grantee: GRANTEE, operationId: `a-old-${String(i).padStart(3, "0")}` });
    for (let i = 0; i < 120; i++) await present.createOperation({ grantee: GRANTEE, operationId: `b-live-${String(i).padStart(3, "0")}` });
    await Promise.all([past.close(), present.close()]);
    const r = await cli(["cleanup"], env);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(
      "cleanup: 100 operations (deleted 100 expired operation(s), 100 object(s))\n" +
        "cleanup: 200 operations (deleted 130 expired operation(s), 130 object(s))\n" +
        "cleanup: 250 operations (deleted 130 expired operation(s), 130 object(s))\n",
    );
    expect(r.stdout).toContain(": deleted 130 expired operation(s), 130 object(s) (theirs and orphans)");
    expect(await listKeys(env)).toHaveLength(120);
  });

  it("--dry-run counts the same way, with what it would delete", async () => {
    const f = await makeFixture("local", "cleanup-dry-progress");
    const r = await cli(["cleanup", "--dry-run"], f.env);
    expect(r.code).toBe(0);
    // scanOperations skips nothing here (no doctor probes): 4 operations, ghost_1/ and the stray key.
    expect(r.stderr).toBe(`cleanup --dry-run: 6 operations (would delete 2 expired operation(s), ${4 + f.oldOrphans.length} object(s))\n`);
  });
});

describe("cleanup as a child process", () => {
  it("sweeps a moto bucket, incomplete multipart uploads included, and prints JSON", async () => {
    const f = await makeFixture("moto", "cleanup-child");
    // A crashed uploader's leftover (moto dates every upload 2010, so it is past the 24 h grace).
    await startDanglingMultipartUpload(f.env.S3_ENDPOINT!, f.env.S3_BUCKET!, `operations/${f.live[0]}/artifacts/crashed.bin`);
    const r = await runChild(["cleanup", "--json"], f.env, tempDir("cwd"));
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, deletedOperations: 2, deletedObjects: 4, deletedTemporary: 1 });
    expect(await listMultipartUploads(f.env.S3_ENDPOINT!, f.env.S3_BUCKET!)).toEqual([]);
  });
});
