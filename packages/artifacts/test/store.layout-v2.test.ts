// Layout 2's own promises (docs/format.md#layouts): the index and the LIST after it find every
// entry, an earlier incarnation's entries are never listed, and a newer layout is refused.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ArtifactStore, createArtifactStore, NotFoundError, UnsupportedLayoutError } from "@personal-server/artifacts";
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

describe.each(["moto", "r2sim"] as const)("layout 2 listed again by one process on %s", (kind) => {
  let h: Harness;
  beforeAll(async () => {
    h = await openHarness(kind);
  });
  afterAll(async () => {
    await h.close();
  });

  it("one LIST while nothing changed; every change made elsewhere is seen: new entries, a new index, a rewritten metadata.json, a delete, a new incarnation", async () => {
    const calls: string[] = [];
    const reader = createArtifactStore(h.config, { now: () => h.clock.now, onStorageCall: (operation) => calls.push(operation) });
    const elsewhere = h.reopen();
    const paths = (n: number) => Array.from({ length: n }, (_, i) => `f/${i}.txt`);
    const op = await h.store.createOperation({ grantee: GRANTEE, operationId: `seen-${kind}` });
    const id = op.operationId;
    // Entries are named by the writer's clock: let it run, as the index's margin assumes.
    const put = (store: ArtifactStore, path: string) => ((h.clock.now = new Date()), store.putArtifact(id, path, path));
    for (const path of paths(3)) await put(h.store, path);
    const list = async () => (await reader.listArtifacts(id, { requester: GRANTEE })).artifacts.map((a) => a.path);
    const counted = async () => {
      calls.length = 0;
      const listed = await list();
      return { listed, calls: [...calls].sort() };
    };
    try {
      // The sweep of another process writes index.json (20 minutes on: past the margin, it covers all three).
      await elsewhere.sweepExpired({ now: new Date(Date.now() + 20 * 60_000) });
      expect(await list()).toEqual(paths(3));
      // metadata.json and index.json remembered: one LIST shows both unchanged and no new entry.
      expect(await counted()).toEqual({ listed: paths(3), calls: ["list"] });
      await put(h.store, "f/3.txt");
      // A new entry: found by that LIST (and read).
      expect(await counted()).toEqual({ listed: paths(4), calls: ["get", "list"] });
      // A new index.json written elsewhere: read once, then remembered.
      await elsewhere.sweepExpired({ now: new Date(Date.now() + 40 * 60_000) });
      expect(JSON.parse((await h.raw.getBytes(indexKey(id)))!.body.toString()).entries).toHaveLength(4);
      expect(await counted()).toEqual({ listed: paths(4), calls: ["get", "list"] });
      expect(await counted()).toEqual({ listed: paths(4), calls: ["list"] });
      expect((await readAll((await reader.getArtifact(id, "f/2.txt", { requester: GRANTEE })).body)).toString()).toBe("f/2.txt");
      // metadata.json rewritten (as rotate-key does): another ETag, read again.
      const meta = (await h.raw.getBytes(metadataKey(id)))!.body;
      await h.raw.put(metadataKey(id), Buffer.from(`${JSON.stringify(JSON.parse(meta.toString()), null, 1)}\n`));
      expect(await counted()).toEqual({ listed: paths(4), calls: ["get", "list"] });
      await expect(reader.listArtifacts(id, { requester: STRANGER })).rejects.toThrow(NotFoundError);
      // Deleted elsewhere: not found, never the remembered listing.
      const earlier = (await listKeys(h.raw, `operations/${id}/entries/`))[0]!;
      const entryBytes = (await h.raw.getBytes(earlier))!.body;
      await elsewhere.deleteOperation(id);
      await expect(list()).rejects.toThrow(NotFoundError);
      // Created again elsewhere, with an entry of the earlier incarnation put back (an upload that raced the delete).
      await elsewhere.createOperation({ grantee: GRANTEE, operationId: id });
      await h.raw.put(earlier, entryBytes);
      expect(await list()).toEqual([]);
      await put(elsewhere, "new.txt");
      expect(await list()).toEqual(["new.txt"]);
      expect(await list()).toEqual(["new.txt"]);
      await expect(reader.getArtifact(id, "f/0.txt", { requester: GRANTEE })).rejects.toThrow(NotFoundError);
    } finally {
      await reader.close();
    }
  });

  it("a process that never read an operation reads index.json beside metadata.json (two round trips); one it read on layout 1 is spared that read", async () => {
    const calls: string[] = [];
    const reader = createArtifactStore(h.config, { now: () => h.clock.now, onStorageCall: (operation) => calls.push(operation) });
    const v1 = createArtifactStore(h.config, { now: () => h.clock.now, createLayout: 1 });
    // Calls are told when they settle, and a layout 1 listing does not wait for the index.json read
    // it started: let every call the listing made settle (on loopback, milliseconds) before counting.
    const counted = async (id: string) => {
      calls.length = 0;
      const listed = (await reader.listArtifacts(id, { requester: GRANTEE })).artifacts.map((a) => a.path);
      await new Promise((resolve) => setTimeout(resolve, 300));
      return { listed, calls: [...calls].sort() };
    };
    try {
      const { operationId: two } = await h.store.createOperation({ grantee: GRANTEE });
      await h.store.putArtifact(two, "a.txt", "a");
      const { operationId: one } = await v1.createOperation({ grantee: GRANTEE });
      await v1.putArtifact(one, "b.txt", "b");
      // Layout 2: metadata.json and index.json (absent here) at once, then the LIST of the entries.
      expect(await counted(two)).toEqual({ listed: ["a.txt"], calls: ["get", "get", "get", "list"] });
      // Layout 1, first time: the early index.json read finds nothing; metadata.json holds the entries.
      expect(await counted(one)).toEqual({ listed: ["b.txt"], calls: ["get", "get"] });
      // Known to be on layout 1: metadata.json alone.
      expect(await counted(one)).toEqual({ listed: ["b.txt"], calls: ["get"] });
    } finally {
      await Promise.all([reader.close(), v1.close()]);
    }
  });
});
