// Layout 2: an upload whose entry lands after another process deleted the operation (or deleted
// and created it again, or after it expired) is not acknowledged: it answers what a later upload
// would, removes what it wrote, and whatever stays is collected by the sweep (docs/format.md#layouts).
// The other process's action runs at the exact moment between the entry's write and the check,
// through a wrapper around a real backend.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ExpiredError, NotFoundError } from "@personal-server/artifacts";
import {
  type Backend,
  MetadataWriter,
  type MetadataV2,
  readMetadata,
  unwrapDataKey,
  writeArtifact,
} from "@personal-server/artifacts/internal";
import { GRANTEE, type Harness, listKeys, openHarness, readAll } from "./helpers.js";

describe.each(["local", "moto"] as const)("an upload racing a delete on %s", (kind) => {
  let h: Harness;
  beforeAll(async () => {
    h = await openHarness(kind);
  });
  afterAll(async () => {
    await h.close();
  });

  /** Requests the upload made, and an action run right after its entry is written (before the check). */
  function racing(afterEntry: () => Promise<void>, failDeletes = false) {
    const calls: string[] = [];
    const raw = h.raw;
    const backend: Backend = {
      ...raw,
      kind: raw.kind,
      put: async (key, body, options) => {
        calls.push(`put ${key.split("/")[2]}`);
        const stored = await raw.put(key, body, options);
        if (key.includes("/entries/")) await afterEntry();
        return stored;
      },
      getBytes: (key, range) => (calls.push(`get ${key.split("/")[2]}`), raw.getBytes(key, range)),
      head: (key) => (calls.push(`head ${key.split("/")[2]}`), raw.head(key)),
      putConditional: (key, body, options) => raw.putConditional(key, body, options),
      delete: (keys) => (calls.push(`delete ${keys.length}`), failDeletes ? Promise.reject(new Error("storage went away")) : raw.delete(keys)),
    };
    return { backend, calls };
  }

  function write(writer: MetadataWriter, metadata: MetadataV2, path: string, body: string, r: ReturnType<typeof racing>) {
    const dataKey = unwrapDataKey(metadata.wrappedKey, h.config.masterKeys, metadata);
    const ctx = { backend: r.backend, writer, entries: async () => [], dataKey, maxBytes: 1 << 20, now: () => h.clock.now };
    return writeArtifact(ctx, metadata, path, body, "text/plain");
  }

  /** As a process that did not write metadata.json uploads: it read the document (no ETag kept). */
  async function upload(operationId: string, path: string, body: string, r: ReturnType<typeof racing>) {
    const metadata = (await readMetadata(h.raw, operationId))!.metadata as MetadataV2;
    return write(new MetadataWriter(r.backend), metadata, path, body, r);
  }

  /** As the process that wrote metadata.json uploads: its writer holds the document and its ETag. */
  async function uploadAsWriter(operationId: string, path: string, body: string, r: ReturnType<typeof racing>) {
    const writer = new MetadataWriter(r.backend);
    await writer.update(operationId, () => {}); // an If-Match rewrite, as rotate-key makes: now cached with its ETag
    r.calls.length = 0;
    return write(writer, writer.cached(operationId) as MetadataV2, path, body, r);
  }

  const prefix = (id: string) => `operations/${id}/`;

  it("by the process that wrote metadata.json: the check is 1 HEAD (a stat locally); the artifact reads back", async () => {
    const { operationId } = await h.store.createOperation({ grantee: GRANTEE });
    const r = racing(async () => {});
    await uploadAsWriter(operationId, "a.txt", "alone", r);
    expect(r.calls).toEqual(["put artifacts", "put entries", "head metadata.json"]);
    expect((await readAll((await h.store.getArtifact(operationId, "a.txt", { requester: GRANTEE })).body)).toString()).toBe("alone");
  });

  it("by that process, deleted and created again meanwhile: the HEAD shows another ETag, the GET another incarnation: not_found", async () => {
    const { operationId } = await h.store.createOperation({ grantee: GRANTEE, operationId: `race-writer-${kind}` });
    const other = h.reopen();
    const r = racing(async () => {
      await other.deleteOperation(operationId);
      await other.createOperation({ grantee: GRANTEE, operationId });
    });
    await expect(uploadAsWriter(operationId, "a.txt", "late", r)).rejects.toThrow(new NotFoundError(`operation ${operationId} not found`));
    expect(r.calls.slice(0, 4)).toEqual(["put artifacts", "put entries", "head metadata.json", "get metadata.json"]);
    expect((await other.listArtifacts(operationId, { requester: GRANTEE })).artifacts).toEqual([]);
  });

  it("by that process, metadata.json rewritten meanwhile (as rotate-key does): another ETag, the same incarnation: acknowledged", async () => {
    const { operationId } = await h.store.createOperation({ grantee: GRANTEE });
    const r = racing(() =>
      new MetadataWriter(h.raw).update(operationId, (m) => {
        m.agent = "rewritten"; // other bytes, so another ETag on every backend
      }),
    );
    await uploadAsWriter(operationId, "a.txt", "kept", r);
    expect(r.calls).toEqual(["put artifacts", "put entries", "head metadata.json", "get metadata.json"]);
    expect((await readAll((await h.store.getArtifact(operationId, "a.txt", { requester: GRANTEE })).body)).toString()).toBe("kept");
  });

  it("without a race: 2 writes (object, entry) and 1 read (metadata.json); the artifact reads back", async () => {
    const { operationId } = await h.store.createOperation({ grantee: GRANTEE });
    const r = racing(async () => {});
    await upload(operationId, "a.txt", "alone", r);
    expect(r.calls).toEqual(["put artifacts", "put entries", "get metadata.json"]);
    expect((await readAll((await h.store.getArtifact(operationId, "a.txt", { requester: GRANTEE })).body)).toString()).toBe("alone");
  });

  it("metadata.json deleted before the check: not_found, and the entry and object it wrote are removed", async () => {
    const { operationId } = await h.store.createOperation({ grantee: GRANTEE });
    const r = racing(() => h.raw.delete([`${prefix(operationId)}metadata.json`]));
    await expect(upload(operationId, "a.txt", "late", r)).rejects.toThrow(new NotFoundError(`operation ${operationId} not found`));
    expect(await listKeys(h.raw, prefix(operationId))).toEqual([]);
  });

  it("deleted and created again: not_found; the new operation lists nothing and keeps nothing of it", async () => {
    const { operationId } = await h.store.createOperation({ grantee: GRANTEE, operationId: `race-again-${kind}` });
    const other = h.reopen();
    const r = racing(async () => {
      // Another replica's delete ran before this upload's object was listed only in part: metadata.json first.
      await h.raw.delete([`${prefix(operationId)}metadata.json`]);
      await other.createOperation({ grantee: GRANTEE, operationId });
    });
    await expect(upload(operationId, "a.txt", "late", r)).rejects.toThrow(new NotFoundError(`operation ${operationId} not found`));
    expect((await other.listArtifacts(operationId, { requester: GRANTEE })).artifacts).toEqual([]);
    expect(await listKeys(h.raw, prefix(operationId))).toEqual([`${prefix(operationId)}metadata.json`]);
  });

  it("the path stored again by the new operation meanwhile: that artifact is left alone", async () => {
    const { operationId } = await h.store.createOperation({ grantee: GRANTEE, operationId: `race-taken-${kind}` });
    const other = h.reopen();
    const r = racing(async () => {
      await other.deleteOperation(operationId);
      await other.createOperation({ grantee: GRANTEE, operationId });
      await other.putArtifact(operationId, "a.txt", "the new one");
    });
    await expect(upload(operationId, "a.txt", "late", r)).rejects.toThrow(NotFoundError);
    const read = await other.getArtifact(operationId, "a.txt", { requester: GRANTEE });
    expect((await readAll(read.body)).toString()).toBe("the new one");
  });

  it("expired before the check: expired, and what it wrote is removed", async () => {
    const { operationId, expiresAt } = await h.store.createOperation({ grantee: GRANTEE, ttlSeconds: 60 });
    const r = racing(async () => {
      h.clock.now = new Date(Date.parse(expiresAt));
    });
    try {
      await expect(upload(operationId, "a.txt", "late", r)).rejects.toThrow(new ExpiredError(`operation ${operationId} expired at ${expiresAt}`));
    } finally {
      h.clock.now = new Date();
    }
    expect(await listKeys(h.raw, prefix(operationId))).toEqual([`${prefix(operationId)}metadata.json`]);
  });

  it("what the upload cannot remove stays unreferenced and the sweep collects it after the grace period", async () => {
    const { operationId } = await h.store.createOperation({ grantee: GRANTEE });
    const r = racing(() => h.raw.delete([`${prefix(operationId)}metadata.json`]), true);
    await expect(upload(operationId, "a.txt", "late", r)).rejects.toThrow(NotFoundError);
    const left = await listKeys(h.raw, prefix(operationId));
    expect(left.map((k) => k.split("/")[2])).toEqual(["artifacts", "entries"]);
    await h.store.sweepExpired({ now: new Date(Date.now() + 3600_000) });
    expect(await listKeys(h.raw, prefix(operationId))).toEqual(left);
    const swept = await h.store.sweepExpired({ now: new Date(Date.now() + 25 * 3600_000) });
    expect(swept.deletedObjects).toBeGreaterThanOrEqual(2);
    expect(await listKeys(h.raw, prefix(operationId))).toEqual([]);
  });
});
