import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ConflictError,
  ExpiredError,
  InvalidInputError,
  NotFoundError,
  RangeNotSatisfiableError,
  TooLargeError,
} from "@personal-server/artifacts";
import { DEFAULT_CHUNK_SIZE, encryptedSize } from "@personal-server/artifacts/internal";
import { GRANTEE, LAYOUT_CASES, type Harness, STRANGER, listKeys, openHarness, random, readAll, sha256 } from "./helpers.js";

const C = DEFAULT_CHUNK_SIZE;
const MiB = 1024 * 1024;

describe.each(LAYOUT_CASES)("store contract on %s, layout %i", (kind, layout) => {
  let h: Harness;
  beforeAll(async () => {
    h = await openHarness(kind, {}, layout);
  });
  afterAll(async () => {
    await h.close();
  });

  it("creates operations with agent ids, generated ids and explicit ids", async () => {
    h.clock.now = new Date("2026-01-01T00:00:00.000Z");
    const a = await h.store.createOperation({ grantee: GRANTEE.toUpperCase().replace("0X", "0x"), agent: "gemini" });
    expect(a.operationId).toBe(`gemini_${Date.parse("2026-01-01T00:00:00.000Z")}`);
    expect(a.grantee).toBe(GRANTEE);
    expect(a.expiresAt).toBe("2026-01-08T00:00:00.000Z");
    // Same agent, same millisecond: the next millisecond.
    const b = await h.store.createOperation({ grantee: GRANTEE, agent: "gemini" });
    expect(b.operationId).toBe(`gemini_${Date.parse("2026-01-01T00:00:00.001Z")}`);
    const c = await h.store.createOperation({ grantee: GRANTEE, ttlSeconds: 60 });
    expect(c.operationId).toMatch(/^op_\d{13}_[0-9a-f]{8}$/);
    expect(c.expiresAt).toBe("2026-01-01T00:01:00.000Z");
    await h.store.createOperation({ grantee: GRANTEE, operationId: "explicit-1" });
    await expect(h.store.createOperation({ grantee: GRANTEE, operationId: "explicit-1" })).rejects.toThrow(
      new ConflictError("operation explicit-1 already exists"),
    );
    h.clock.now = new Date();
  });

  it("refuses bad ttl, grantee, agent and id before any I/O", async () => {
    const before = await listKeys(h.raw);
    for (const ttlSeconds of [0, -1, 1.5, 7 * 86400 + 1, Number.NaN]) {
      await expect(h.store.createOperation({ grantee: GRANTEE, ttlSeconds })).rejects.toThrow(
        new InvalidInputError("ttlSeconds must be a whole number from 1 to 604800"),
      );
    }
    await expect(h.store.createOperation({ grantee: "0x12" })).rejects.toBeInstanceOf(InvalidInputError);
    await expect(h.store.createOperation({ grantee: GRANTEE, agent: "../x" })).rejects.toBeInstanceOf(InvalidInputError);
    await expect(h.store.createOperation({ grantee: GRANTEE, operationId: "../x" })).rejects.toBeInstanceOf(InvalidInputError);
    expect(await listKeys(h.raw)).toEqual(before);
  });

  it.each([0, 1, C - 1, C, C + 1, 3 * C + 5])("round-trips %i bytes (buffer and stream bodies)", async (size) => {
    const op = await h.store.createOperation({ grantee: GRANTEE, agent: "rt" });
    const data = random(size);
    const viaBuffer = await h.store.putArtifact(op.operationId, "buf.bin", data, { contentType: "application/x-test" });
    expect(viaBuffer).toMatchObject({ path: "buf.bin", size, contentType: "application/x-test", chunkSize: C });
    expect(viaBuffer.encryptedSize).toBe(encryptedSize(size, C));
    // Stream bodies arrive in awkward pieces.
    const pieces = [] as Buffer[];
    for (let i = 0; i < size; i += 100_003) pieces.push(data.subarray(i, i + 100_003));
    await h.store.putArtifact(op.operationId, "dir/stream.bin", Readable.from(pieces));
    for (const path of ["buf.bin", "dir/stream.bin"]) {
      const { info, body } = await h.store.getArtifact(op.operationId, path, { requester: GRANTEE });
      expect(info.size).toBe(size);
      expect((await readAll(body)).equals(data)).toBe(true);
    }
    const objects = await listKeys(h.raw, `operations/${op.operationId}/artifacts/`);
    expect(objects).toEqual([`operations/${op.operationId}/artifacts/buf.bin`, `operations/${op.operationId}/artifacts/dir/stream.bin`]);
  });

  // The R2 simulator uploads at about 20 MB/s: 8 MiB there (still two parts).
  const big = kind === "r2sim" ? 8 * MiB : 64 * MiB;
  it(`round-trips a ${big / MiB} MiB random body (multipart on S3) in bounded memory`, async () => {
    const op = await h.store.createOperation({ grantee: GRANTEE });
    const data = random(big);
    const info = await h.store.putArtifact(
      op.operationId,
      "big.bin",
      Readable.from((function* () {
        for (let i = 0; i < data.length; i += 64 * 1024) yield data.subarray(i, i + 64 * 1024);
      })()),
    );
    expect(info.size).toBe(big);
    const { body } = await h.store.getArtifact(op.operationId, "big.bin", { requester: GRANTEE });
    expect(sha256(await readAll(body))).toBe(sha256(data));
  });

  it("serves ranges at chunk edges, open-ended and clamped, decrypting only covering chunks", async () => {
    const op = await h.store.createOperation({ grantee: GRANTEE });
    const data = random(2 * C + 1000);
    await h.store.putArtifact(op.operationId, "r.bin", data);
    const cases: [number, number | undefined][] = [
      [0, 0],
      [C - 1, C],
      [C - 10, 2 * C + 10],
      [C, 2 * C - 1],
      [2 * C, undefined],
      [data.length - 1, data.length - 1],
      [5, data.length + 100],
      [0, undefined],
    ];
    for (const [start, end] of cases) {
      const got = await h.store.getArtifact(op.operationId, "r.bin", { requester: GRANTEE, range: { start, end } });
      const last = Math.min(end ?? data.length - 1, data.length - 1);
      expect(got.range).toEqual({ start, end: last });
      expect((await readAll(got.body)).equals(data.subarray(start, last + 1))).toBe(true);
    }
    await expect(
      h.store.getArtifact(op.operationId, "r.bin", { requester: GRANTEE, range: { start: data.length } }),
    ).rejects.toThrow(RangeNotSatisfiableError);
    await h.store.putArtifact(op.operationId, "empty", "");
    const error = await h.store
      .getArtifact(op.operationId, "empty", { requester: GRANTEE, range: { start: 0 } })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RangeNotSatisfiableError);
    expect((error as RangeNotSatisfiableError).details).toEqual({ size: 0 });
  });

  it("keeps artifacts immutable", async () => {
    const op = await h.store.createOperation({ grantee: GRANTEE });
    await h.store.putArtifact(op.operationId, "a.txt", "first");
    await expect(h.store.putArtifact(op.operationId, "a.txt", "second")).rejects.toThrow(
      new ConflictError(`artifact a.txt already exists in operation ${op.operationId}; artifacts are immutable`),
    );
    const both = await Promise.allSettled([
      h.store.putArtifact(op.operationId, "b.txt", random(3 * C)),
      h.store.putArtifact(op.operationId, "b.txt", random(3 * C)),
    ]);
    expect(both.map((r) => r.status).sort()).toEqual(["fulfilled", "rejected"]);
    const { body } = await h.store.getArtifact(op.operationId, "a.txt", { requester: GRANTEE });
    expect((await readAll(body)).toString()).toBe("first");
  });

  it("lets only the grantee read: anyone else gets a missing operation's not_found; then expiry", async () => {
    const op = await h.store.createOperation({ grantee: GRANTEE, ttlSeconds: 60 });
    await h.store.putArtifact(op.operationId, "x.txt", "x", { contentType: "text/plain" });
    const list = await h.store.listArtifacts(op.operationId, { requester: GRANTEE.toUpperCase().replace("0X", "0x") });
    expect(list.artifacts.map((a) => [a.path, a.size, a.contentType])).toEqual([["x.txt", 1, "text/plain"]]);
    const notShared = (id: string) => new NotFoundError(`operation ${id} not found or not shared with this wallet`);
    await expect(h.store.listArtifacts(op.operationId, { requester: STRANGER })).rejects.toThrow(notShared(op.operationId));
    await expect(h.store.getArtifact(op.operationId, "x.txt", { requester: STRANGER })).rejects.toThrow(notShared(op.operationId));
    await expect(h.store.statArtifact(op.operationId, "x.txt", { requester: STRANGER })).rejects.toThrow(notShared(op.operationId));
    // A stranger learns nothing about which operations or paths exist.
    await expect(h.store.getArtifact(op.operationId, "nope.txt", { requester: STRANGER })).rejects.toThrow(notShared(op.operationId));
    await expect(h.store.getArtifact("missing-op", "x.txt", { requester: STRANGER })).rejects.toThrow(notShared("missing-op"));
    await expect(h.store.getArtifact(op.operationId, "nope.txt", { requester: GRANTEE })).rejects.toThrow(
      new NotFoundError(`artifact nope.txt not found in operation ${op.operationId}`),
    );
    await expect(h.store.getArtifact("missing-op", "x.txt", { requester: GRANTEE })).rejects.toThrow(notShared("missing-op"));
    const saved = h.clock.now;
    h.clock.now = new Date(Date.parse(op.expiresAt));
    try {
      await expect(h.store.getArtifact(op.operationId, "x.txt", { requester: GRANTEE })).rejects.toThrow(
        new ExpiredError(`operation ${op.operationId} expired at ${op.expiresAt}`),
      );
      await expect(h.store.listArtifacts(op.operationId, { requester: GRANTEE })).rejects.toThrow(ExpiredError);
      await expect(h.store.putArtifact(op.operationId, "y.txt", "y")).rejects.toThrow(ExpiredError);
      await expect(h.store.getArtifact(op.operationId, "x.txt", { requester: STRANGER })).rejects.toThrow(notShared(op.operationId));
    } finally {
      h.clock.now = saved;
    }
  });

  it("calls onGrantee for the grantee only, before the expiry check; what it throws is the answer", async () => {
    const op = await h.store.createOperation({ grantee: GRANTEE, ttlSeconds: 60 });
    await h.store.putArtifact(op.operationId, "x.txt", "x");
    const calls: string[] = [];
    const as = (requester: string) => ({ requester, onGrantee: async () => void calls.push(requester) });
    await expect(h.store.listArtifacts(op.operationId, as(STRANGER))).rejects.toThrow(NotFoundError);
    await expect(h.store.getArtifact("missing-op", "x.txt", as(GRANTEE))).rejects.toThrow(NotFoundError);
    expect(calls).toEqual([]);
    await h.store.statArtifact(op.operationId, "x.txt", as(GRANTEE));
    await expect(h.store.getArtifact(op.operationId, "nope.txt", as(GRANTEE))).rejects.toThrow(NotFoundError);
    expect(calls).toEqual([GRANTEE, GRANTEE]);
    const refused = new Error("refused by the hook");
    await expect(h.store.listArtifacts(op.operationId, { requester: GRANTEE, onGrantee: async () => Promise.reject(refused) })).rejects.toBe(refused);
    const saved = h.clock.now;
    h.clock.now = new Date(Date.parse(op.expiresAt));
    try {
      await expect(h.store.listArtifacts(op.operationId, as(GRANTEE))).rejects.toThrow(ExpiredError);
      expect(calls).toHaveLength(3);
    } finally {
      h.clock.now = saved;
    }
  });

  it("refuses invalid names before any I/O and writes nothing", async () => {
    const op = await h.store.createOperation({ grantee: GRANTEE });
    const before = await listKeys(h.raw);
    for (const path of ["../x", "/abs", "a//b", ".", "%2e%2e/x", "a\0b", "a\\b", "x".repeat(513), "", "a/./b"]) {
      await expect(h.store.putArtifact(op.operationId, path, "x")).rejects.toBeInstanceOf(InvalidInputError);
      await expect(h.store.getArtifact(op.operationId, path, { requester: GRANTEE })).rejects.toBeInstanceOf(InvalidInputError);
    }
    for (const id of ["../x", "A", "", "x".repeat(129)]) {
      await expect(h.store.putArtifact(id, "a.txt", "x")).rejects.toBeInstanceOf(InvalidInputError);
    }
    await expect(h.store.putArtifact(op.operationId, "a.txt", "x", { contentType: "text/plain\r\nx: y" })).rejects.toBeInstanceOf(
      InvalidInputError,
    );
    expect(await listKeys(h.raw)).toEqual(before);
  });

  it("cuts uploads over ARTIFACTS_MAX_BYTES and stores nothing", async () => {
    const small = h.reopen({ ARTIFACTS_MAX_BYTES: String(2 * C) });
    const op = await small.createOperation({ grantee: GRANTEE });
    const before = await listKeys(h.raw);
    await expect(small.putArtifact(op.operationId, "big", random(2 * C + 1))).rejects.toThrow(
      new TooLargeError(`artifact is larger than ARTIFACTS_MAX_BYTES (${2 * C} bytes)`),
    );
    await expect(small.putArtifact(op.operationId, "big", Readable.from([random(C), random(C), random(10)]))).rejects.toThrow(
      TooLargeError,
    );
    expect(await listKeys(h.raw)).toEqual(before);
    expect((await small.listArtifacts(op.operationId, { requester: GRANTEE })).artifacts).toEqual([]);
    await small.putArtifact(op.operationId, "fits", random(2 * C));
  });

  it("lists all of 50 concurrent uploads to one operation with few metadata writes", async () => {
    const op = await h.store.createOperation({ grantee: GRANTEE });
    const writesBefore = h.store.stats.metadataWrites;
    const bodies = Array.from({ length: 50 }, (_, i) => random(1000 + i));
    await Promise.all(bodies.map((b, i) => h.store.putArtifact(op.operationId, `f/${String(i).padStart(2, "0")}.bin`, b)));
    const writes = h.store.stats.metadataWrites - writesBefore;
    console.log(`[${kind}, layout ${layout}] 50 concurrent uploads -> ${writes} metadata writes`);
    // Layout 2 never rewrites metadata.json on a commit; layout 1 coalesces concurrent commits.
    if (layout === 2) expect(writes).toBe(0);
    else expect(writes).toBeLessThan(50);
    const list = await h.store.listArtifacts(op.operationId, { requester: GRANTEE });
    expect(list.artifacts.map((a) => a.path)).toEqual(bodies.map((_, i) => `f/${String(i).padStart(2, "0")}.bin`));
    for (const [i, b] of bodies.entries()) {
      const { body } = await h.store.getArtifact(op.operationId, `f/${String(i).padStart(2, "0")}.bin`, { requester: GRANTEE });
      expect((await readAll(body)).equals(b)).toBe(true);
    }
  });

  it("deletes operations: metadata and every object", async () => {
    const op = await h.store.createOperation({ grantee: GRANTEE });
    await h.store.putArtifact(op.operationId, "a", "a");
    await h.store.putArtifact(op.operationId, "b/c", "c");
    await h.store.deleteOperation(op.operationId);
    expect(await listKeys(h.raw, `operations/${op.operationId}/`)).toEqual([]);
    await expect(h.store.listArtifacts(op.operationId, { requester: GRANTEE })).rejects.toThrow(NotFoundError);
    await expect(h.store.deleteOperation(op.operationId)).rejects.toThrow(NotFoundError);
  });

  it("lists operations across pages", async () => {
    const fresh = await openHarness(kind, {}, layout);
    try {
      const made = new Set<string>();
      for (let i = 0; i < 25; i++) made.add((await fresh.store.createOperation({ grantee: GRANTEE, operationId: `list-${i}` })).operationId);
      const listed = new Set<string>();
      for await (const op of fresh.store.listOperations()) listed.add(op.operationId);
      expect(listed).toEqual(made);
    } finally {
      await fresh.close();
    }
  });

  it("sweeps expired operations, old orphans and leaves live data alone", async () => {
    const fresh = await openHarness(kind, {}, layout);
    try {
      const { store, raw, clock } = fresh;
      const t0 = new Date();
      clock.now = t0;
      const short = await store.createOperation({ grantee: GRANTEE, ttlSeconds: 60 });
      await store.putArtifact(short.operationId, "a", "a");
      const live = await store.createOperation({ grantee: GRANTEE });
      await store.putArtifact(live.operationId, "keep", "k");
      // Orphans: an object without an entry in a live operation, and an operation without metadata.
      await raw.put(`operations/${live.operationId}/artifacts/orphan`, Buffer.from("x"));
      await raw.put("operations/ghost_1/artifacts/x", Buffer.from("x"));
      const soon = await store.sweepExpired({ now: new Date(t0.getTime() + 61_000) });
      // metadata.json and the object (layout 2: and the entry object).
      expect(soon).toMatchObject({ deletedOperations: 1, deletedObjects: layout === 2 ? 3 : 2 });
      // The sweep tallies what it listed (the server's gauges): the expired operation it deleted and both orphans it found.
      expect(soon.usage).toMatchObject({ operations: 1, artifacts: 1, expiredOperations: 1, orphanObjects: 2 });
      expect(await listKeys(raw, `operations/${short.operationId}/`)).toEqual([]);
      // Young orphans survive: they may be uploads in flight.
      expect(await listKeys(raw, "operations/ghost_1/")).toEqual(["operations/ghost_1/artifacts/x"]);
      const later = await store.sweepExpired({ now: new Date(t0.getTime() + 25 * 3600_000) });
      expect(later.deletedObjects).toBe(2);
      expect(later.deletedOperations).toBe(0);
      const liveKeys = await listKeys(raw);
      expect(liveKeys.filter((k) => !k.includes("/entries/"))).toEqual([
        `operations/${live.operationId}/artifacts/keep`,
        // Layout 2: the sweep compacted the entries into the index.
        ...(layout === 2 ? [`operations/${live.operationId}/index.json`] : []),
        `operations/${live.operationId}/metadata.json`,
      ]);
      expect(liveKeys.filter((k) => k.includes("/entries/"))).toHaveLength(layout === 2 ? 1 : 0);
      clock.now = new Date(t0.getTime() + 25 * 3600_000);
      const { body } = await store.getArtifact(live.operationId, "keep", { requester: GRANTEE });
      expect((await readAll(body)).toString()).toBe("k");
      let left = 0;
      for await (const object of raw.list("operations/")) left += object.size;
      expect(later.usage).toEqual({ storedBytes: left, operations: 1, artifacts: 1, expiredOperations: 0, orphanObjects: 2 });
      expect(await store.sweepExpired({ now: new Date(t0.getTime() + 25 * 3600_000) })).toEqual({
        deletedOperations: 0,
        deletedObjects: 0,
        // The simulator does not implement ListMultipartUploads (docs/development.md).
        deletedTemporary: kind === "r2sim" ? "not_supported" : 0,
        usage: { storedBytes: left, operations: 1, artifacts: 1, expiredOperations: 0, orphanObjects: 0 },
      });
    } finally {
      await fresh.close();
    }
  });

  it("re-wraps data keys under a new master key without touching artifacts", async () => {
    const fresh = await openHarness(kind, {}, layout);
    try {
      const op = await fresh.store.createOperation({ grantee: GRANTEE });
      const data = random(C + 7);
      await fresh.store.putArtifact(op.operationId, "a", data);
      const objectBefore = (await fresh.raw.head(`operations/${op.operationId}/artifacts/a`))!.etag;
      const newKey = Buffer.alloc(32, 0x33).toString("base64");
      const both = fresh.reopen({ ARTIFACTS_MASTER_KEYS: `k2:${newKey},default:${Buffer.alloc(32, 0x11).toString("base64")}` });
      expect(await both.rewrapOperation(op.operationId)).toBe(true);
      expect(await both.rewrapOperation(op.operationId)).toBe(false);
      const onlyNew = fresh.reopen({ ARTIFACTS_MASTER_KEYS: `k2:${newKey}` });
      const { body } = await onlyNew.getArtifact(op.operationId, "a", { requester: GRANTEE });
      expect((await readAll(body)).equals(data)).toBe(true);
      expect((await fresh.raw.head(`operations/${op.operationId}/artifacts/a`))!.etag).toBe(objectBefore);
    } finally {
      await fresh.close();
    }
  });
});

describe("crash leftovers at an artifact's key (local)", () => {
  it("a fresh unreferenced object means another writer: conflict; an old one is replaced", async () => {
    const { utimesSync } = await import("node:fs");
    const { join } = await import("node:path");
    const h = await openHarness("local");
    try {
      const op = await h.store.createOperation({ grantee: GRANTEE });
      const key = `operations/${op.operationId}/artifacts/a.bin`;
      await h.raw.put(key, Buffer.from("leftover"));
      await expect(h.store.putArtifact(op.operationId, "a.bin", "new")).rejects.toThrow(
        new ConflictError(`artifact a.bin is being uploaded by another writer to operation ${op.operationId}`),
      );
      await expect(h.store.putArtifact(op.operationId, "a.bin", Readable.from([random(2 * C)]))).rejects.toThrow(ConflictError);
      const old = new Date(Date.now() - 10 * 60 * 1000);
      utimesSync(join(h.config.localDir, key), old, old);
      await h.store.putArtifact(op.operationId, "a.bin", "new");
      const { body } = await h.store.getArtifact(op.operationId, "a.bin", { requester: GRANTEE });
      expect((await readAll(body)).toString()).toBe("new");
      await h.raw.put(`operations/${op.operationId}/artifacts/b.bin`, Buffer.from("leftover"));
      utimesSync(join(h.config.localDir, `operations/${op.operationId}/artifacts/b.bin`), old, old);
      const data = random(2 * C + 3);
      // A stream cannot be replayed: the leftover is removed and the client retries.
      await expect(h.store.putArtifact(op.operationId, "b.bin", Readable.from([data]))).rejects.toThrow(
        new ConflictError(
          `artifact b.bin had a leftover of an interrupted upload in operation ${op.operationId}; it was removed, retry the upload`,
        ),
      );
      await h.store.putArtifact(op.operationId, "b.bin", Readable.from([data]));
      const got = await h.store.getArtifact(op.operationId, "b.bin", { requester: GRANTEE });
      expect((await readAll(got.body)).equals(data)).toBe(true);
    } finally {
      await h.close();
    }
  });
});
