// Layout 2's own promises (docs/format.md#layouts): the index and the LIST after it find every
// entry, an earlier incarnation's entries are never listed, and a newer layout is refused.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NotFoundError, UnsupportedLayoutError } from "@personal-server/artifacts";
import { indexKey, metadataKey } from "@personal-server/artifacts/internal";
import { GRANTEE, type Harness, listKeys, openHarness, readAll, STRANGER } from "./helpers.js";

describe.each(["local", "moto"] as const)("layout 2 on %s", (kind) => {
  let h: Harness;
  beforeAll(async () => {
    h = await openHarness(kind);
  });
  afterAll(async () => {
    await h.close();
  });
  const names = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `f/${String(from + i).padStart(3, "0")}.txt`);

  it("on S3 the writer indexes every 32 commits; a listing past the margin writes an index covering every entry; later entries are found after it", async () => {
    const t0 = new Date();
    h.clock.now = t0;
    try {
      const op = await h.store.createOperation({ grantee: GRANTEE });
      for (const path of names(40)) await h.store.putArtifact(op.operationId, path, path);
      // On S3 the writer wrote the index at its 32nd commit (from what it committed: no GET per entry).
      // (Locally it does not: a reader's GET of an entry is a file read.)
      const byWriter = await h.raw.getBytes(indexKey(op.operationId));
      if (kind === "local") expect(byWriter).toBeNull();
      // (The test clock stands still: the names differ by path hash only.)
      else expect(JSON.parse(byWriter!.body.toString()).entries.map((e: { path: string }) => e.path).sort()).toEqual(names(32));
      const writes = h.store.stats.indexWrites;
      // 20 minutes later: past the margin (16 min on S3, 1 min locally), so the index covers all 40.
      h.clock.now = new Date(t0.getTime() + 20 * 60_000);
      expect((await h.store.listArtifacts(op.operationId, { requester: GRANTEE })).artifacts.map((a) => a.path)).toEqual(names(40));
      expect(h.store.stats.indexWrites).toBe(writes + 1);
      const index = JSON.parse((await h.raw.getBytes(indexKey(op.operationId)))!.body.toString());
      expect(index.entries).toHaveLength(40);
      expect(index.covers).toBe(index.entries[39].name);
      // Three more, then a reader in another process: index, then a LIST after `covers`.
      for (const path of names(3, 40)) await h.store.putArtifact(op.operationId, path, path);
      const other = h.reopen();
      expect((await other.listArtifacts(op.operationId, { requester: GRANTEE })).artifacts.map((a) => a.path)).toEqual(names(43));
      expect((await readAll((await other.getArtifact(op.operationId, "f/041.txt", { requester: GRANTEE })).body)).toString()).toBe("f/041.txt");
      expect((await other.getOperation(op.operationId)).artifactCount).toBe(43);
    } finally {
      h.clock.now = new Date();
    }
  });

  it("an operation deleted and created again with the same id never lists the earlier one's entries", async () => {
    const op = await h.store.createOperation({ grantee: GRANTEE, operationId: `again-${kind}` });
    await h.store.putArtifact(op.operationId, "old.txt", "old");
    const earlier = (await listKeys(h.raw, `operations/${op.operationId}/entries/`))[0]!;
    const entryBytes = (await h.raw.getBytes(earlier))!.body;
    await h.store.deleteOperation(op.operationId);
    await h.store.createOperation({ grantee: GRANTEE, operationId: op.operationId });
    // An upload that raced the delete lands its entry afterwards, under the earlier incarnation.
    await h.raw.put(earlier, entryBytes);
    expect((await h.store.listArtifacts(op.operationId, { requester: GRANTEE })).artifacts).toEqual([]);
    await expect(h.store.getArtifact(op.operationId, "old.txt", { requester: GRANTEE })).rejects.toThrow(NotFoundError);
    // The sweep collects it once it is past the orphan grace period.
    const swept = await h.store.sweepExpired({ now: new Date(Date.now() + 25 * 3600_000) });
    expect(swept.deletedObjects).toBeGreaterThanOrEqual(1);
    expect(await listKeys(h.raw, `operations/${op.operationId}/entries/`)).toEqual([]);
  });

  it("a newer layout: unsupported_layout to the writer and the grantee, not_found to anyone else, and no listing of operations", async () => {
    const op = await h.store.createOperation({ grantee: GRANTEE });
    const meta = JSON.parse((await h.raw.getBytes(metadataKey(op.operationId)))!.body.toString());
    await h.raw.put(metadataKey(op.operationId), Buffer.from(JSON.stringify({ ...meta, version: 3 })));
    const upgrade = new UnsupportedLayoutError(
      `operation ${op.operationId} is stored in layout 3; this release reads layouts 1 to 2: upgrade the server and CLI`,
      { grantee: GRANTEE },
    );
    await expect(h.store.getOperation(op.operationId)).rejects.toThrow(upgrade);
    // Another process (this one remembers the layout it created the operation in).
    await expect(h.reopen().putArtifact(op.operationId, "a.txt", "a")).rejects.toThrow(upgrade);
    await expect(h.store.listArtifacts(op.operationId, { requester: GRANTEE })).rejects.toMatchObject({ code: "unsupported_layout", status: 501 });
    await expect(h.store.listArtifacts(op.operationId, { requester: STRANGER })).rejects.toThrow(
      new NotFoundError(`operation ${op.operationId} not found or not shared with this wallet`),
    );
    const listing = (async () => {
      for await (const _ of h.store.listOperations());
    })();
    await expect(listing).rejects.toBeInstanceOf(UnsupportedLayoutError);
    await h.raw.delete([metadataKey(op.operationId)]);
  });
});
