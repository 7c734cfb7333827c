/**
 * One contract for every Backend: the same tests against LocalBackend (temp dir) and S3Backend
 * on both S3 peers (a fresh bucket on moto, and on Cloudflare's local R2 simulator). Where the
 * simulator differs from R2's documented behaviour, the test's name says so and the documented
 * behaviour is asserted on moto (docs/development.md lists the differences).
 * Backend-specific behaviour lives in backend-local/backend-s3.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm, utimes, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalBackend } from "../src/backends/local.js";
import { observeBackend } from "../src/backends/observed.js";
import { S3Backend } from "../src/backends/s3.js";
import { PreconditionFailedError, type Backend, type ObjectInfo } from "../src/backends/types.js";
import {
  freshBucketOn,
  listMultipartUploads,
  motoEndpoint,
  putLifecycleRules,
  startDanglingMultipartUpload,
  type S3Peer,
} from "../../../test-support/s3.js";

const MiB = 1024 * 1024;

type Kind = "local" | S3Peer;

interface Harness {
  backend: Backend;
  /**
   * Leaves an interrupted write behind (an old temp file / a dangling multipart upload); absent
   * where the peer cannot list multipart uploads (the simulator answers 501).
   */
  makeLeftover?(key: string): Promise<void>;
  /** How many interrupted writes are left (temp files / multipart uploads); absent like makeLeftover. */
  leftovers?(): Promise<number>;
  /** Sets one enabled expiration rule (S3) — local storage has no lifecycle. */
  setLifecycle?(rules: { id: string; prefix: string; days: number; enabled?: boolean }[]): Promise<void>;
  cleanup(): Promise<void>;
}

/** The simulator uploads at about 20 MB/s: its multipart body is two parts, not three. */
const MULTIPART_BODY: Record<Kind, number> = { local: 11 * MiB + 12345, moto: 11 * MiB + 12345, r2sim: 6 * MiB + 12345 };

/** A test name, with the simulator's difference from R2 spelled out when it has one. */
const named = (kind: Kind, name: string, r2simDifference?: string) =>
  kind === "r2sim" && r2simDifference ? `${name} (r2sim differs from R2: ${r2simDifference}; R2's behaviour is checked on moto)` : name;

async function s3Harness(peer: S3Peer): Promise<Harness> {
  const { storage, bucket } = await freshBucketOn(peer, "contract");
  // Small pages and delete batches, so pagination and batching run with a few dozen keys.
  const backend = new S3Backend(storage, {
    timeoutMs: 15_000,
    connectTimeoutMs: 2000,
    partSize: 5 * MiB,
    listPageSize: 7,
    deleteBatchSize: 10,
  });
  const cleanup = () => backend.close();
  if (peer === "r2sim") return { backend, cleanup };
  const endpoint = motoEndpoint();
  return {
    // On moto through the metrics wrapper, as the server opens its storage: it must pass on every argument.
    backend: observeBackend(backend, () => {}),
    async makeLeftover(key) {
      await startDanglingMultipartUpload(endpoint, bucket, key);
    },
    leftovers: () => listMultipartUploads(endpoint, bucket).then((ids) => ids.length),
    setLifecycle: (rules) => putLifecycleRules(endpoint, bucket, rules),
    cleanup,
  };
}

const harnesses: Record<Kind, () => Promise<Harness>> = {
  async local() {
    const dir = await mkdtemp(join(tmpdir(), "psa-backend-"));
    const backend = new LocalBackend(dir);
    return {
      backend,
      async makeLeftover() {
        await mkdir(join(dir, ".tmp"), { recursive: true });
        const file = join(dir, ".tmp", `${randomBytes(6).toString("hex")}.part`);
        await writeFile(file, "half an artifact");
        const old = new Date(Date.now() - 2 * 3600_000);
        await utimes(file, old, old);
      },
      async leftovers() {
        const { readdir } = await import("node:fs/promises");
        return (await readdir(join(dir, ".tmp")).catch(() => [])).length;
      },
      async cleanup() {
        await backend.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  },
  moto: () => s3Harness("moto"),
  r2sim: () => s3Harness("r2sim"),
};

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A stream of `total` deterministic bytes in uneven chunks. */
function bytes(total: number, seed = 1): Buffer {
  const out = Buffer.alloc(total);
  let x = seed;
  for (let i = 0; i < total; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    out[i] = x >>> 16;
  }
  return out;
}

function chunked(buf: Buffer, size = 64 * 1024 + 3): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) parts.push(buf.subarray(i, i + size));
  return Readable.from(parts);
}

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
const byteOrder = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

describe.each(["local", "moto", "r2sim"] as const)("Backend contract: %s", (kind) => {
  let h: Harness;
  let b: Backend;
  beforeAll(async () => {
    h = await harnesses[kind]();
    b = h.backend;
  });
  afterAll(async () => {
    await h?.cleanup();
  });

  it("reports its kind", () => {
    expect(b.kind).toBe(kind === "local" ? "local" : "s3");
  });

  it("puts a buffer and reads it back whole, by range, and by head, with one ETag", async () => {
    const key = "operations/rt/artifacts/hello.txt";
    const body = Buffer.from("hello, backend");
    const put = await b.put(key, body);
    expect(put.size).toBe(body.length);
    expect(put.etag).toMatch(/^[0-9a-f-]+$/);

    const got = await b.getBytes(key);
    expect(got).toEqual({ body, etag: put.etag, size: body.length });
    const head = await b.head(key);
    expect(head).toMatchObject({ key, size: body.length, etag: put.etag });
    expect(head!.lastModified).toBeInstanceOf(Date);
    expect(Math.abs(head!.lastModified.getTime() - Date.now())).toBeLessThan(10 * 60_000);

    expect(await readAll((await b.getStream(key))!)).toEqual(body);
    expect(await readAll((await b.getStream(key, { start: 0, end: 0 }))!)).toEqual(Buffer.from("h"));
    expect(await readAll((await b.getStream(key, { start: 7, end: 13 }))!)).toEqual(Buffer.from("backend"));
    // A range reads its bytes and tells the whole object's length.
    expect(await b.getBytes(key, { start: 2, end: 4 })).toEqual({ body: Buffer.from("llo"), etag: put.etag, size: body.length });
    // An end past the last byte is clamped; a start at or past the end reads nothing.
    expect(await readAll((await b.getStream(key, { start: 12, end: 1000 }))!)).toEqual(Buffer.from("nd"));
    expect(await readAll((await b.getStream(key, { start: 14, end: 20 }))!)).toEqual(Buffer.alloc(0));
    expect(await b.getBytes(key, { start: 14, end: 20 })).toEqual({ body: Buffer.alloc(0), etag: put.etag, size: body.length });
  });

  it("answers null, not an error, for a missing key", async () => {
    const key = "operations/missing/artifacts/nothing.bin";
    expect(await b.getStream(key)).toBeNull();
    expect(await b.getStream(key, { start: 0, end: 10 })).toBeNull();
    expect(await b.getBytes(key)).toBeNull();
    expect(await b.head(key)).toBeNull();
  });

  it("stores an empty object", async () => {
    const key = "operations/empty/artifacts/zero";
    const put = await b.put(key, Buffer.alloc(0));
    expect(put.size).toBe(0);
    expect(await b.getBytes(key)).toEqual({ body: Buffer.alloc(0), etag: put.etag, size: 0 });
    expect(await readAll((await b.getStream(key))!)).toEqual(Buffer.alloc(0));
    expect((await b.head(key))!.size).toBe(0);
    const fromStream = await b.put(`${key}-stream`, Readable.from([]));
    expect(fromStream.size).toBe(0);
    expect((await b.head(`${key}-stream`))!.size).toBe(0);
  });

  it("streams a body larger than one part (multipart on S3) and reads ranges across parts", async () => {
    const key = "operations/big/artifacts/blob.bin";
    const data = bytes(MULTIPART_BODY[kind], 7);
    const put = await b.put(key, chunked(data));
    expect(put.size).toBe(data.length);
    const head = await b.head(key);
    expect(head).toMatchObject({ size: data.length, etag: put.etag });
    expect(sha(await readAll((await b.getStream(key))!))).toBe(sha(data));
    const start = 5 * MiB - 10;
    const end = Math.min(10 * MiB + 10, data.length - 2);
    expect(sha(await readAll((await b.getStream(key, { start, end }))!))).toBe(sha(data.subarray(start, end + 1)));
  });

  it("gives every write a new strong ETag, even for the same bytes", async () => {
    const key = "operations/etag/metadata.json";
    const first = await b.put(key, Buffer.from("same"));
    const second = await b.put(key, Buffer.from("same"));
    const other = await b.put(key, Buffer.from("diff"));
    expect(other.etag).not.toBe(first.etag);
    if (kind === "local") expect(second.etag).not.toBe(first.etag);
    // S3 ETags of single-part objects are content MD5s: equal bytes, equal tags (still strong).
    else expect(second.etag).toBe(first.etag);
  });

  it("writes conditionally: create once, update only from the current ETag", async () => {
    const key = "operations/cond/metadata.json";
    const v1 = await b.putConditional(key, Buffer.from('{"v":1}'), { ifNoneMatch: "*" });
    expect((await b.getBytes(key))!).toMatchObject({ body: Buffer.from('{"v":1}'), etag: v1.etag });

    await expect(b.putConditional(key, Buffer.from('{"v":"again"}'), { ifNoneMatch: "*" })).rejects.toThrow(
      new PreconditionFailedError(key),
    );
    const v2 = await b.putConditional(key, Buffer.from('{"v":2}'), { ifMatch: v1.etag });
    expect(v2.etag).not.toBe(v1.etag);
    expect((await b.head(key))!.etag).toBe(v2.etag);

    // A stale ETag loses, and so does a quoted one (as HTTP headers carry them).
    const stale = b.putConditional(key, Buffer.from('{"v":"stale"}'), { ifMatch: v1.etag });
    await expect(stale).rejects.toBeInstanceOf(PreconditionFailedError);
    await expect(stale).rejects.toThrow(`precondition failed for ${key}`);
    const v3 = await b.putConditional(key, Buffer.from('{"v":3}'), { ifMatch: `"${v2.etag}"` });
    expect((await b.getBytes(key))!).toMatchObject({ body: Buffer.from('{"v":3}'), etag: v3.etag });

    // If-Match on a key that does not exist fails the condition too.
    await expect(b.putConditional("operations/cond/none.json", Buffer.from("{}"), { ifMatch: v3.etag })).rejects.toBeInstanceOf(
      PreconditionFailedError,
    );
    expect(await b.head("operations/cond/none.json")).toBeNull();
  });

  it(
    named(kind, "puts create-only: an existing key is never replaced, in one request or multipart", "CompleteMultipartUpload ignores If-None-Match and overwrites"),
    async () => {
      const key = "operations/once/artifacts/blob.bin";
      const first = await b.put(key, Buffer.from("first"), { ifAbsent: true });
      await expect(b.put(key, Buffer.from("second"), { ifAbsent: true })).rejects.toThrow(new PreconditionFailedError(key));
      expect(await b.getBytes(key)).toMatchObject({ body: Buffer.from("first"), etag: first.etag });

      // A body past one part goes multipart: If-None-Match rides on CompleteMultipartUpload.
      const big = bytes(5 * MiB + 1000, 9);
      const bigKey = "operations/once/artifacts/big.bin";
      const stored = await b.put(bigKey, chunked(big), { ifAbsent: true });
      const again = b.put(bigKey, chunked(bytes(5 * MiB + 1000, 10)), { ifAbsent: true });
      if (kind === "r2sim") {
        // The simulator's known difference (docs/development.md): the second upload replaces the first.
        expect((await again).etag).not.toBe(stored.etag);
        return;
      }
      await expect(again).rejects.toBeInstanceOf(PreconditionFailedError);
      expect((await b.head(bigKey))!.etag).toBe(stored.etag);
      expect(sha(await readAll((await b.getStream(bigKey))!))).toBe(sha(big));
    },
  );

  it("lists in key (byte) order with pagination, and lists operation prefixes", async () => {
    // "-" (0x2d) and "." (0x2e) sort before "/" (0x2f): a naive directory walk gets this wrong.
    const names = ["o1/metadata.json", "o1/artifacts/a.txt", "o1/artifacts/a-b.txt", "o1/artifacts/a/b.txt", "o1-x/metadata.json", "o2/artifacts/Z", "o1.5/x"];
    for (let i = 0; i < 20; i++) names.push(`o3/artifacts/n${String(i).padStart(2, "0")}.tmp-${i}`);
    const prefix = "listing/";
    await Promise.all(names.map((n, i) => b.put(prefix + n, Buffer.from(`#${i}`))));

    const listed = await collect(b.list(prefix));
    const expected = names.map((n) => prefix + n).sort(byteOrder);
    expect(listed.map((o) => o.key)).toEqual(expected);
    expect(listed.find((o) => o.key === `${prefix}o1/artifacts/a.txt`)).toMatchObject({ size: 2 }); // "#1"
    const byKey = new Map(listed.map((o: ObjectInfo) => [o.key, o]));
    expect(byKey.get(`${prefix}o2/artifacts/Z`)!.etag).toBe((await b.head(`${prefix}o2/artifacts/Z`))!.etag);

    // A prefix that ends mid-name, as S3 matches it.
    expect((await collect(b.list(`${prefix}o1`))).map((o) => o.key)).toEqual(expected.filter((k) => k.startsWith(`${prefix}o1`)));
    expect((await collect(b.list(`${prefix}o1/artifacts/a`))).map((o) => o.key)).toEqual([
      `${prefix}o1/artifacts/a-b.txt`,
      `${prefix}o1/artifacts/a.txt`,
      `${prefix}o1/artifacts/a/b.txt`,
    ]);
    expect(await collect(b.list("listing-none/"))).toEqual([]);

    expect(await collect(b.listPrefixes(prefix))).toEqual([`${prefix}o1-x/`, `${prefix}o1.5/`, `${prefix}o1/`, `${prefix}o2/`, `${prefix}o3/`]);
    expect(await collect(b.listPrefixes(`${prefix}o1/`))).toEqual([`${prefix}o1/artifacts/`]);
    expect(await collect(b.listPrefixes(`${prefix}o1`))).toEqual([`${prefix}o1-x/`, `${prefix}o1.5/`, `${prefix}o1/`]);
    expect(await collect(b.listPrefixes("listing-none/"))).toEqual([]);

    // After a key (S3 StartAfter, in byte order; the key itself need not exist): layout 2 lists new entries this way.
    for (const after of [`${prefix}o1/artifacts/a-b.txt`, `${prefix}o1/artifacts/a`, `${prefix}o1/artifacts/a/`, `${prefix}o3/artifacts/n17`, `${prefix}zzz`]) {
      expect((await collect(b.list(prefix, { startAfter: after }))).map((o) => o.key), after).toEqual(expected.filter((k) => byteOrder(k, after) > 0));
    }
    expect((await collect(b.list(`${prefix}o3/`, { startAfter: `${prefix}o1` }))).map((o) => o.key)).toEqual(expected.filter((k) => k.startsWith(`${prefix}o3/`)));
  });

  it("deletes in batches, ignores missing keys, and leaves the rest", async () => {
    const prefix = "operations/del/";
    const keys = Array.from({ length: 25 }, (_, i) => `${prefix}artifacts/f${String(i).padStart(2, "0")}`);
    await Promise.all(keys.map((k) => b.put(k, Buffer.from(k))));
    await b.put(`${prefix}metadata.json`, Buffer.from("{}"));
    await b.delete([...keys, `${prefix}artifacts/never-existed`]);
    expect((await collect(b.list(prefix))).map((o) => o.key)).toEqual([`${prefix}metadata.json`]);
    expect(await b.head(keys[0]!)).toBeNull();
    await b.delete([`${prefix}metadata.json`]);
    expect(await collect(b.list(prefix))).toEqual([]);
    expect(await collect(b.listPrefixes("operations/"))).not.toContain(prefix);
    await b.delete([]);
  });

  it(named(kind, "leaves nothing behind when the body stream fails, and rethrows the body's error", "no ListMultipartUploads (501), so aborted uploads are not counted"), async () => {
    const key = "operations/broken/artifacts/upload.bin";
    const boom = new Error("client went away");
    // Past one part, so S3 has a multipart upload in flight when the body fails.
    const first = bytes(6 * MiB, 3);
    async function* body() {
      yield first.subarray(0, 3 * MiB);
      yield first.subarray(3 * MiB);
      await new Promise((r) => setTimeout(r, 50));
      throw boom;
    }
    const before = await h.leftovers?.();
    const put = b.put(key, Readable.from(body()));
    await expect(put).rejects.toBe(boom);
    expect(await b.head(key)).toBeNull();
    expect(await collect(b.list("operations/broken/"))).toEqual([]);
    expect(await h.leftovers?.()).toBe(before);

    const small = Readable.from(
      (async function* () {
        yield Buffer.from("a few bytes");
        throw boom;
      })(),
    );
    await expect(b.put(key, small)).rejects.toBe(boom);
    expect(await b.head(key)).toBeNull();
    expect(await h.leftovers?.()).toBe(before);
  });

  it(named(kind, "sweeps leftovers of interrupted writes", "ListMultipartUploads is 501, reported as not_supported"), async () => {
    const prefix = "operations/";
    if (!h.makeLeftover || !h.leftovers) {
      // An endpoint that cannot list multipart uploads: the sweep says so instead of failing.
      expect(await b.sweepTemporary(prefix, new Date(Date.now() + 60_000))).toBe("not_supported");
      return;
    }
    await b.sweepTemporary(prefix, new Date(Date.now() + 60_000));
    expect(await h.leftovers()).toBe(0);
    await h.makeLeftover(`${prefix}crashed/artifacts/a.bin`);
    await h.makeLeftover(`${prefix}crashed/artifacts/b.bin`);
    expect(await h.leftovers()).toBe(2);
    if (kind === "local") {
      // Younger than the cutoff: kept. (moto reports every upload as initiated in 2010, so this
      // half cannot be checked there.)
      expect(await b.sweepTemporary(prefix, new Date(Date.now() - 4 * 3600_000))).toBe(0);
      expect(await h.leftovers()).toBe(2);
    }
    expect(await b.sweepTemporary(prefix, new Date(Date.now() - 60_000))).toBe(2);
    expect(await h.leftovers()).toBe(0);
    expect(await b.sweepTemporary(prefix, new Date(Date.now() + 60_000))).toBe(0);
  });

  it(named(kind, "checks the bucket and reports the server's clock", "no Date header on any answer, so no clock to report"), async () => {
    const check = await b.checkBucket();
    if (kind === "local" || kind === "r2sim") {
      expect(check).toEqual({ serverDate: undefined });
    } else {
      expect(check.serverDate).toBeInstanceOf(Date);
      // Same machine: the HTTP Date (second resolution) is within a minute of ours.
      expect(Math.abs(check.serverDate!.getTime() - Date.now())).toBeLessThan(60_000);
    }
  });

  it(named(kind, "reports lifecycle rules", "lifecycle configuration is 501, reported as not_supported"), async () => {
    if (kind === "local") {
      expect(await b.getLifecycleRules()).toBeNull();
      return;
    }
    if (!h.setLifecycle) {
      expect(await b.getLifecycleRules()).toBe("not_supported");
      return;
    }
    expect(await b.getLifecycleRules()).toEqual([]);
    await h.setLifecycle([
      { id: "expire-operations", prefix: "operations/", days: 8 },
      { id: "off", prefix: "other/", days: 1, enabled: false },
    ]);
    expect(await b.getLifecycleRules()).toEqual([{ id: "expire-operations", prefix: "operations/", expirationDays: 8 }]);
  });
});
