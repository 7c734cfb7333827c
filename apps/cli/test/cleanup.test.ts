import { describe, expect, it } from "vitest";
import { metadataKey, artifactObjectKey } from "@personal-server/artifacts";
import { listMultipartUploads, startDanglingMultipartUpload } from "../../../test-support/s3.js";
import { type Kind, cli, cliJson, listKeys, makeFixture, runChild, tempDir } from "./helpers.js";

describe.each<Kind>(["local", "s3"])("cleanup on %s", (kind) => {
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
    const prefixes = 4 + (kind === "local" ? 1 : 0);
    expect(r.stderr).toBe(`cleanup: 0/${prefixes} operations\ncleanup: ${prefixes}/${prefixes} operations\n`);
    expect(r.stdout).toContain(`: deleted 2 expired operation(s), ${4 + f.oldOrphans.length} object(s) (theirs and orphans), 0 temp file(s)/incomplete upload(s).\n`);
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
    expect(again.json).toMatchObject({ ok: true, dryRun: false, deletedOperations: 0, deletedObjects: 0, deletedTemporary: 0 });
    expect((await listKeys(f.env)).sort()).toEqual(expected);
  });
});

describe("cleanup as a child process", () => {
  it("sweeps a moto bucket, incomplete multipart uploads included, and prints JSON", async () => {
    const f = await makeFixture("s3", "cleanup-child");
    // A crashed uploader's leftover (moto dates every upload 2010, so it is past the 24 h grace).
    await startDanglingMultipartUpload(f.env.S3_ENDPOINT!, f.env.S3_BUCKET!, `operations/${f.live[0]}/artifacts/crashed.bin`);
    const r = await runChild(["cleanup", "--json"], f.env, tempDir("cwd"));
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, deletedOperations: 2, deletedObjects: 4, deletedTemporary: 1 });
    expect(await listMultipartUploads(f.env.S3_ENDPOINT!, f.env.S3_BUCKET!)).toEqual([]);
  });
});
