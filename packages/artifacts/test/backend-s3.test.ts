/**
 * S3Backend specifics, over real HTTP to moto, with the recording proxy in between where the
 * wire matters: no checksum headers/trailers on uploads, error mapping with the
 * hints, timeouts on a hung store, batching.
 */
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, StorageUnavailableError } from "../src/errors.js";
import { S3Backend, type S3BackendOptions } from "../src/backends/s3.js";
import { ACCESS_DENIED_HINT } from "../src/backends/s3-errors.js";
import { LocalBackend, openBackend } from "../src/backends/index.js";
import type { StorageConfig } from "../src/config-types.js";
import { startRecordingProxy, type RecordedRequest, type RecordingProxy } from "../../../test-support/proxy.js";
import { freshBucket, listMultipartUploads, motoEndpoint, type FreshBucket } from "../../../test-support/s3.js";

const MiB = 1024 * 1024;

let bucket: FreshBucket;
let proxy: RecordingProxy;
const opened: S3Backend[] = [];

function through(p: RecordingProxy, options: Partial<S3BackendOptions> = {}, storage: Partial<StorageConfig> = {}): S3Backend {
  const backend = new S3Backend({ ...bucket.storage, endpoint: p.url, ...storage } as typeof bucket.storage, {
    timeoutMs: 10_000,
    connectTimeoutMs: 2000,
    partSize: 5 * MiB,
    ...options,
  });
  opened.push(backend);
  return backend;
}

beforeAll(async () => {
  bucket = await freshBucket(motoEndpoint(), "s3-backend");
  proxy = await startRecordingProxy(motoEndpoint());
});
afterEach(() => {
  proxy.restore();
  proxy.rewriteHeaders = undefined;
});
afterAll(async () => {
  await Promise.all(opened.map((b) => b.close()));
  await proxy?.close();
});

/** Everything that would show a flexible checksum or an aws-chunked body on the wire. */
function checksumEvidence(r: RecordedRequest): string[] {
  const found: string[] = [];
  for (const [name, value] of Object.entries(r.headers)) {
    if (name.startsWith("x-amz-checksum-")) found.push(`header ${name}`);
    if (name === "x-amz-trailer") found.push(`header x-amz-trailer: ${value}`);
    if (name === "x-amz-sdk-checksum-algorithm") found.push(`header ${name}: ${value}`);
    if (name === "x-amz-decoded-content-length") found.push(`header ${name}`);
    if (name === "content-encoding" && value.includes("aws-chunked")) found.push(`content-encoding: ${value}`);
    if (name === "x-amz-content-sha256" && value.startsWith("STREAMING-")) found.push(`x-amz-content-sha256: ${value}`);
  }
  for (const name of Object.keys(r.trailers)) found.push(`trailer ${name}`);
  if (/x-amz-checksum-/i.test(r.bodyHead + r.bodyTail)) found.push("checksum inside the body");
  return found;
}

describe("S3Backend on the wire", () => {
  it("sends no checksum headers, trailers or aws-chunked bodies on PutObject and UploadPart", async () => {
    const p = await startRecordingProxy(motoEndpoint());
    try {
      const b = through(p);
      const big = Buffer.alloc(11 * MiB, 7);
      await b.put("operations/wire/artifacts/small", Buffer.from("small buffer"));
      await b.put("operations/wire/artifacts/stream-small", Readable.from([Buffer.from("small "), Buffer.from("stream")]));
      await b.put("operations/wire/artifacts/stream-big", Readable.from([big.subarray(0, 3 * MiB), big.subarray(3 * MiB)]));
      await b.put("operations/wire/artifacts/buffer-big", big);
      const created = await b.putConditional("operations/wire/metadata.json", Buffer.from("{}"), { ifNoneMatch: "*" });
      await b.putConditional("operations/wire/metadata.json", Buffer.from('{"a":1}'), { ifMatch: created.etag });

      const puts = p.requests.filter((r) => r.method === "PUT");
      const uploadParts = puts.filter((r) => /[?&]partNumber=\d+/.test(r.path));
      const putObjects = puts.filter((r) => !/[?&]partNumber=/.test(r.path));
      // small, stream-small (single part via lib-storage), two conditional writes
      expect(putObjects.map((r) => r.path.split("?")[0])).toEqual([
        `/${bucket.bucket}/operations/wire/artifacts/small`,
        `/${bucket.bucket}/operations/wire/artifacts/stream-small`,
        `/${bucket.bucket}/operations/wire/metadata.json`,
        `/${bucket.bucket}/operations/wire/metadata.json`,
      ]);
      expect(uploadParts).toHaveLength(6); // 11 MiB in 5 MiB parts, twice
      for (const r of puts) {
        expect(checksumEvidence(r), `${r.method} ${r.path}`).toEqual([]);
        // A plain body of exactly Content-Length bytes.
        expect(r.complete).toBe(true);
        expect(r.headers["content-length"], `${r.method} ${r.path}`).toBe(String(r.bodyLength));
      }
      // Reads do not ask for checksum validation either (responseChecksumValidation WHEN_REQUIRED).
      expect((await b.getBytes("operations/wire/artifacts/small"))!.body.toString()).toBe("small buffer");
      const gets = p.requests.filter((r) => r.method === "GET");
      expect(gets).toHaveLength(1);
      expect(gets[0]!.headers["x-amz-checksum-mode"]).toBeUndefined();
      expect(putObjects[2]!.headers["if-none-match"]).toBe("*");
      expect(putObjects[3]!.headers["if-match"]).toBe(`"${created.etag}"`);
      // Path-style addressing: the bucket is in the path, the host is the endpoint's.
      expect(puts[0]!.headers.host).toBe(new URL(p.url).host);
    } finally {
      await p.close();
    }
  });

  it("deletes in DeleteObjects batches of deleteBatchSize", async () => {
    const p = await startRecordingProxy(motoEndpoint());
    try {
      const b = through(p, { deleteBatchSize: 4 });
      const keys = Array.from({ length: 10 }, (_, i) => `operations/batch/artifacts/${i}`);
      await Promise.all(keys.map((k) => b.put(k, Buffer.from(k))));
      await b.delete(keys);
      const deletes = p.requests.filter((r) => r.method === "POST" && /[?&]delete(=|&|$)/.test(r.path));
      expect(deletes).toHaveLength(3);
      const listed: string[] = [];
      for await (const o of b.list("operations/batch/")) listed.push(o.key);
      expect(listed).toEqual([]);
    } finally {
      await p.close();
    }
  });
});

describe("S3Backend error mapping", () => {
  it("maps a missing bucket to ConfigError naming S3_BUCKET", async () => {
    const b = through(proxy, {}, { bucket: "no-such-bucket-psa" });
    const hint = `check that S3_BUCKET ("no-such-bucket-psa") names an existing bucket at S3_ENDPOINT (${proxy.url})`;
    const expected = { code: "config", status: 500, message: `bucket "no-such-bucket-psa" does not exist at ${proxy.url}`, hint };
    await expect(b.getBytes("operations/x/metadata.json")).rejects.toMatchObject(expected);
    await expect(b.put("operations/x/a", Buffer.from("x"))).rejects.toMatchObject(expected);
    await expect(b.checkBucket()).rejects.toMatchObject(expected);
    await expect(b.checkBucket()).rejects.toBeInstanceOf(ConfigError);
  });

  it("names R2_BUCKET_NAME, the account and the jurisdiction for R2", async () => {
    const account = "0123456789abcdef0123456789abcdef";
    const b = new S3Backend(
      {
        kind: "r2",
        endpoint: proxy.url,
        region: "auto",
        bucket: "no-such-bucket-psa",
        accessKeyId: "FAKEACCESSKEYID00000",
        secretAccessKey: "fake-secret",
        accountId: account,
        jurisdiction: "eu",
      },
      { timeoutMs: 10_000, connectTimeoutMs: 2000 },
    );
    opened.push(b);
    await expect(b.checkBucket()).rejects.toMatchObject({
      code: "config",
      hint:
        `check that R2_BUCKET_NAME ("no-such-bucket-psa") matches a bucket in account ${account} exactly, ` +
        `and that R2_JURISDICTION (eu, endpoint host ${new URL(proxy.url).host}) is the bucket's jurisdiction`,
    });
    // R2 signs for region "auto".
    const head = proxy.requests.at(-1)!;
    expect(head.headers.authorization).toContain("/auto/s3/aws4_request");
  });

  it("maps access denied to ConfigError with the token/account/bucket hint, never echoing credentials", async () => {
    const b = through(proxy);
    await b.put("operations/denied/metadata.json", Buffer.from("{}"));
    // moto answers unsigned requests as an anonymous caller: 403 on a private object.
    proxy.rewriteHeaders = (h) => {
      delete h.authorization;
    };
    const err = await b.getBytes("operations/denied/metadata.json").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect(err).toMatchObject({
      code: "config",
      hint: ACCESS_DENIED_HINT,
      details: { status: 403 },
    });
    // moto's anonymous 403 has no body, hence no S3 error code.
    expect((err as Error).message).toBe(`storage denied access (HTTP 403) to bucket "${bucket.bucket}" (GetObject operations/denied/metadata.json)`);
    expect(ACCESS_DENIED_HINT).toBe(
      "check the API token has Object Read & Write on this bucket, the account id, and that the bucket name matches exactly",
    );
    expect(JSON.stringify({ m: (err as Error).message, h: (err as ConfigError).hint })).not.toContain(bucket.storage.secretAccessKey);
  });

  it("reports lifecycle rules it may not read as not_visible, and a refused HeadBucket as ConfigError", async () => {
    // moto lets anyone head a bucket and read its lifecycle rules; R2 answers a token without
    // the permission like this (HEAD answers carry no body).
    const b = through(proxy);
    proxy.cut({ status: 403 });
    await expect(b.checkBucket()).rejects.toMatchObject({
      code: "config",
      message: `storage denied access (HTTP 403) to bucket "${bucket.bucket}" (HeadBucket on bucket "${bucket.bucket}")`,
      hint: ACCESS_DENIED_HINT,
    });
    proxy.cut({
      status: 403,
      body: '<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>',
    });
    expect(await b.getLifecycleRules()).toBe("not_visible");
    await expect(b.putConditional("operations/x/metadata.json", Buffer.from("{}"), { ifNoneMatch: "*" })).rejects.toMatchObject({
      code: "config",
      message: `storage denied access (AccessDenied) to bucket "${bucket.bucket}" (PutObject operations/x/metadata.json)`,
      hint: ACCESS_DENIED_HINT,
      details: { s3Code: "AccessDenied", status: 403 },
    });
  });

  it("maps a closed port to StorageUnavailableError with the endpoint hint", async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, "127.0.0.1", () => {
        const a = s.address();
        s.close(() => resolve(typeof a === "object" && a ? a.port : 0));
      });
    });
    const endpoint = `http://127.0.0.1:${port}`;
    const b = new S3Backend({ ...bucket.storage, endpoint }, { timeoutMs: 10_000, connectTimeoutMs: 2000 });
    opened.push(b);
    const err = await b.head("operations/x/metadata.json").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageUnavailableError);
    expect(err).toMatchObject({
      code: "storage_unavailable",
      status: 503,
      hint: `check the endpoint URL (S3_ENDPOINT=${endpoint}) and that the store is running and reachable`,
      details: { errno: "ECONNREFUSED", timeout: false },
    });
    expect((err as Error).message).toBe(
      `cannot reach storage at ${endpoint} (ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:${port}; HeadObject operations/x/metadata.json)`,
    );
  });

  it("gives the account-id hint for connection errors on R2", async () => {
    const b = new S3Backend(
      {
        kind: "r2",
        endpoint: "http://127.0.0.1:1",
        region: "auto",
        bucket: "b",
        accessKeyId: "FAKEACCESSKEYID00000",
        secretAccessKey: "fake-secret",
        accountId: "0123456789abcdef0123456789abcdef",
        jurisdiction: "default",
      },
      { timeoutMs: 10_000, connectTimeoutMs: 2000, maxAttempts: 1 },
    );
    opened.push(b);
    await expect(b.checkBucket()).rejects.toMatchObject({
      code: "storage_unavailable",
      hint: "check the account id format (R2_ACCOUNT_ID, 32 hex) and the endpoint URL (http://127.0.0.1:1), and test connectivity to Cloudflare",
    });
  });

  it("maps a dropped connection (socket hang up) to StorageUnavailableError", async () => {
    const b = through(proxy, { maxAttempts: 2 });
    proxy.cut("reset");
    const before = proxy.requests.length;
    const err = await b.getBytes("operations/x/metadata.json").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageUnavailableError);
    expect(err).toMatchObject({ code: "storage_unavailable", details: { errno: "ECONNRESET", timeout: false } });
    expect((err as Error).message).toBe(
      `cannot reach storage at ${proxy.url} (ECONNRESET: socket hang up; GetObject operations/x/metadata.json)`,
    );
    expect(proxy.requests.length - before).toBe(2); // retried once, as configured
  });

  it("fails a download cut midway with StorageUnavailableError on the stream", async () => {
    const b = through(proxy);
    const key = "operations/midway/artifacts/big";
    await b.put(key, Buffer.alloc(6 * MiB, 5));
    const stream = (await b.getStream(key))!;
    let received = 0;
    const err = await new Promise<unknown>((resolve) => {
      stream.on("data", (chunk: Buffer) => {
        received += chunk.length;
        if (received > 0) proxy.cut("reset");
      });
      stream.on("error", resolve);
      stream.on("end", () => resolve(new Error(`ended cleanly after ${received} bytes`)));
    });
    expect(received).toBeLessThan(6 * MiB);
    expect(err).toBeInstanceOf(StorageUnavailableError);
    expect(err).toMatchObject({
      code: "storage_unavailable",
      message: `cannot reach storage at ${proxy.url} (ECONNRESET: aborted; GetObject ${key})`,
      hint: `check the endpoint URL (S3_ENDPOINT=${proxy.url}) and that the store is running and reachable`,
    });
  });

  it("maps 503 SlowDown to StorageUnavailableError marked throttled, after the SDK's retries", async () => {
    const b = through(proxy, { maxAttempts: 2 });
    proxy.cut({
      status: 503,
      body: "<?xml version=\"1.0\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>",
    });
    const before = proxy.requests.length;
    const err = await b.putConditional("operations/x/metadata.json", Buffer.from("{}"), { ifNoneMatch: "*" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageUnavailableError);
    expect(err).toMatchObject({ details: { throttled: true, s3Code: "SlowDown", status: 503 } });
    expect((err as Error).message).toBe("storage is throttling or unavailable (SlowDown, HTTP 503; PutObject operations/x/metadata.json)");
    expect(proxy.requests.length - before).toBe(2);
  });

  it.each([
    [403, "RequestTimeTooSkewed", "The difference between the request time and the server's time is too large."],
    // R2 documents a request signed too long ago as 400 ExpiredRequest (its simulator answers 403).
    [400, "ExpiredRequest", "Request has expired"],
  ])("maps %i %s to ConfigError telling to fix the clock", async (status, code, message) => {
    const b = through(proxy, { maxAttempts: 1 });
    proxy.cut({ status, body: `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message></Error>` });
    await expect(b.getBytes("operations/x/metadata.json")).rejects.toMatchObject({
      code: "config",
      message: "storage refused the request: this machine's clock is off (GetObject operations/x/metadata.json)",
      hint: "synchronise the system clock (NTP); S3 signatures are valid for 15 minutes",
      details: { s3Code: code, status },
    });
  });
});

describe("S3Backend on a hung store", () => {
  const timeoutMs = 1500;

  it("fails each call with StorageUnavailableError after about timeoutMs, retries included", async () => {
    const b = through(proxy, { timeoutMs, connectTimeoutMs: 1000 });
    await b.put("operations/hung/metadata.json", Buffer.from("{}")); // warm keep-alive connections
    proxy.cut("hang");
    const calls: [string, () => Promise<unknown>][] = [
      ["GetObject operations/hung/metadata.json", () => b.getBytes("operations/hung/metadata.json")],
      ["GetObject operations/hung/metadata.json", () => b.getStream("operations/hung/metadata.json")],
      ["HeadObject operations/hung/metadata.json", () => b.head("operations/hung/metadata.json")],
      ["PutObject operations/hung/metadata.json", () => b.putConditional("operations/hung/metadata.json", Buffer.from("{}"), { ifNoneMatch: "*" })],
      ["ListObjectsV2 operations/", () => b.list("operations/")[Symbol.asyncIterator]().next()],
      ["HeadBucket on bucket \"" + bucket.bucket + "\"", () => b.checkBucket()],
      // A streamed body goes through lib-storage; its requests get the same deadline.
      ["PutObject operations/hung/artifacts/a", () => b.put("operations/hung/artifacts/a", Readable.from([Buffer.from("abc")]))],
    ];
    // All at once: each must end on its own deadline.
    const results = await Promise.all(
      calls.map(async ([where, call]) => {
        const started = Date.now();
        const err = await call().catch((e: unknown) => e);
        return { where, err, elapsed: Date.now() - started };
      }),
    );
    for (const { where, err, elapsed } of results) {
      expect(err, where).toBeInstanceOf(StorageUnavailableError);
      expect(err, where).toMatchObject({
        message: `storage did not answer within ${timeoutMs} ms (${where})`,
        hint: `check the endpoint URL (S3_ENDPOINT=${proxy.url}) and that the store is running and reachable`,
        details: { timeout: true },
      });
      // Without the per-call deadline, 3 attempts would take at least 3 * timeoutMs.
      expect(elapsed, where).toBeLessThan(2.5 * timeoutMs);
    }
    proxy.restore();
    expect((await b.getBytes("operations/hung/metadata.json"))!.body.toString()).toBe("{}");
  });

  it("fails a download that stalls midway after about timeoutMs of silence", async () => {
    const b = through(proxy, { timeoutMs, connectTimeoutMs: 1000 });
    const key = "operations/stall/artifacts/big";
    await b.put(key, Buffer.alloc(6 * MiB, 9));
    const stream = (await b.getStream(key))!;
    let received = 0;
    let stalledAt = 0;
    const err = await new Promise<unknown>((resolve) => {
      stream.on("data", (chunk: Buffer) => {
        received += chunk.length;
        if (stalledAt === 0) {
          proxy.cut("hang");
          stalledAt = Date.now();
        }
      });
      stream.on("error", resolve);
      stream.on("end", () => resolve(new Error(`ended cleanly after ${received} bytes`)));
    });
    const silence = Date.now() - stalledAt;
    expect(received).toBeLessThan(6 * MiB);
    expect(err).toBeInstanceOf(StorageUnavailableError);
    expect(err).toMatchObject({
      message: `cannot reach storage at ${proxy.url} (timed out after ${timeoutMs} ms; GetObject ${key})`,
      details: { timeout: true },
    });
    expect(silence).toBeLessThan(2.5 * timeoutMs);
  });

  it("fails a multipart upload after about timeoutMs and leaves no upload once storage is back", async () => {
    const b = through(proxy, { timeoutMs: 3000, connectTimeoutMs: 1000 });
    let cut = false;
    const body = Readable.from(
      (async function* () {
        yield Buffer.alloc(6 * MiB, 1); // part 1 goes out
        await new Promise((r) => setTimeout(r, 200));
        proxy.cut("hang");
        cut = true;
        yield Buffer.alloc(6 * MiB, 2);
      })(),
    );
    const started = Date.now();
    const err = await b.put("operations/hung-mpu/artifacts/big", body).catch((e: unknown) => e);
    expect(cut).toBe(true);
    expect(err).toBeInstanceOf(StorageUnavailableError);
    expect((err as StorageUnavailableError).details).toMatchObject({ timeout: true });
    expect(Date.now() - started).toBeLessThan(2.5 * 3000 + 2000);
    proxy.restore();
    expect(await b.head("operations/hung-mpu/artifacts/big")).toBeNull();
    // The abort was sent in the background and went nowhere; the sweep is the backstop.
    const key = "operations/hung-mpu/artifacts/big";
    // The abort went out in the background: its retry may reach the store after restore(), or
    // not; either way the sweep leaves no upload behind.
    await b.sweepTemporary("operations/hung-mpu/", new Date(Date.now() + 60_000));
    expect((await listMultipartUploads(motoEndpoint(), bucket.bucket)).filter((u) => u.key === key)).toEqual([]);
  });
});

describe("openBackend", () => {
  it("opens local and S3 backends from StorageConfig", async () => {
    const local = await openBackend({ kind: "local", dir: "/tmp/psa-open-test" }, { timeoutMs: 1000, connectTimeoutMs: 1000 });
    expect(local).toBeInstanceOf(LocalBackend);
    expect(local.kind).toBe("local");
    const s3 = await openBackend(bucket.storage, { timeoutMs: 5000, connectTimeoutMs: 1000 });
    try {
      expect(s3.kind).toBe("s3");
      await s3.put("operations/open/metadata.json", Buffer.from("ok"));
      expect((await s3.getBytes("operations/open/metadata.json"))!.body.toString()).toBe("ok");
    } finally {
      await s3.close();
    }
  });

  it("does not load @aws-sdk for local storage", async () => {
    // A resolve hook that refuses @aws-sdk/*: local storage must work, s3 must hit the hook.
    const hook =
      "data:text/javascript," +
      encodeURIComponent(
        "export async function resolve(s, c, next) { if (s.startsWith('@aws-sdk/')) throw new Error('BLOCKED ' + s); return next(s, c); }",
      );
    const index = fileURLToPath(new URL("../src/backends/index.ts", import.meta.url));
    const script = `
      import { register } from "node:module";
      register(${JSON.stringify(hook)});
      const { openBackend } = await import(${JSON.stringify(index)});
      const dir = (await import("node:fs")).mkdtempSync((await import("node:os")).tmpdir() + "/psa-lazy-");
      const local = await openBackend({ kind: "local", dir }, { timeoutMs: 1000, connectTimeoutMs: 1000 });
      await local.put("operations/x/metadata.json", Buffer.from("ok"));
      console.log("local:" + (await local.getBytes("operations/x/metadata.json")).body);
      try {
        await openBackend({ kind: "s3", endpoint: "http://127.0.0.1:1", region: "us-east-1", bucket: "b", accessKeyId: "a", secretAccessKey: "s" }, { timeoutMs: 1000, connectTimeoutMs: 1000 });
        console.log("s3: loaded");
      } catch (e) { console.log("s3: " + e.message); }
    `;
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ["--conditions=source", "--import", "tsx", "--input-type=module", "-e", script], {
        cwd: fileURLToPath(new URL("..", import.meta.url)),
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d) => (stdout += d));
      child.stderr.on("data", (d) => (stderr += d));
      child.on("error", reject);
      child.on("close", (code) => (code === 0 ? resolve(stdout) : reject(new Error(`exit ${code}: ${stderr}`))));
    });
    expect(out.trim().split("\n")).toEqual(["local:ok", "s3: BLOCKED @aws-sdk/client-s3"]);
  });
});
