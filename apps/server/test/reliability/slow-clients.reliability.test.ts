/**
 * Slow and abusive clients (issue 7): headers trickled a byte at a time and uploads that stall are
 * cut by the server's timeouts (configured short here), and uploads over ARTIFACTS_MAX_BYTES are
 * refused with 413 without storing anything, on local storage and on moto (including a body big
 * enough to have started a multipart upload).
 */
import { existsSync, readdirSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { artifactObjectKey } from "@personal-server/artifacts/internal";
import { createWriterClient, type WriterClient } from "@personal-server/artifacts/client";
import { startRecordingProxy } from "../../../../test-support/proxy.js";
import { freshBucket, listMultipartUploads, motoEndpoint } from "../../../../test-support/s3.js";
import {
  diffSnapshots,
  pacedUpload,
  patternBytes,
  rawExchange,
  rawRequestBytes,
  SecretWatch,
  snapshotBackend,
  snapshotDir,
  startInProcess,
  tempDir,
  waitFor,
  wallet,
  WRITER_TOKEN,
  type InProcessServer,
} from "./harness.js";

const watch = new SecretWatch();
const HEADERS_TIMEOUT = 1000;
const IDLE_TIMEOUT = 1500;
/** Slack for a loaded CI machine; these are "is it cut at all" checks, not performance bounds. */
const SLACK = 5000;
const MIB = 1024 * 1024;
const MAX = 3 * MIB;

let server: InProcessServer;
let dir: string;
let writer: WriterClient;
let operationId: string;

beforeAll(async () => {
  dir = tempDir("slow");
  server = await startInProcess({ ARTIFACTS_LOCAL_DIR: dir, ARTIFACTS_MAX_BYTES: String(MAX) }, watch, {
    headersTimeoutMs: HEADERS_TIMEOUT,
    idleTimeoutMs: IDLE_TIMEOUT,
  });
  writer = createWriterClient({ baseUrl: server.url, token: WRITER_TOKEN });
  operationId = (await writer.createOperation({ grantee: wallet().address, agent: "slow" })).operationId;
  // One real upload first, so the temp and lock directories exist and "unchanged" means unchanged.
  await writer.upload(operationId, "seed.txt", "seed");
});

afterAll(async () => {
  await server?.close();
  expect(watch.leaks()).toEqual([]);
});

const partFiles = () => (existsSync(join(dir, ".tmp")) ? readdirSync(join(dir, ".tmp")).filter((n) => n.endsWith(".part")) : []);

/** Opens a raw connection; resolves with what the server sent and when it closed the connection. */
function rawConnection(): { write(data: string | Buffer): boolean; closed: Promise<{ received: string; at: number }> } {
  const url = new URL(server.url);
  const socket = connect(Number(url.port), url.hostname);
  let received = "";
  socket.on("data", (d: Buffer) => (received += d.toString("latin1")));
  socket.on("error", () => {});
  const closed = new Promise<{ received: string; at: number }>((resolve) => socket.on("close", () => resolve({ received, at: Date.now() })));
  return { write: (data) => !socket.destroyed && socket.write(data), closed };
}

describe("slow clients are cut by timeouts", () => {
  it("headers trickled one byte every 100 ms are cut by the header timeout; the server keeps serving", async () => {
    const conn = rawConnection();
    const started = Date.now();
    conn.write("GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ");
    // Never idle (a byte every 100 ms), never finished: only the header deadline can end this.
    let closed = false;
    void conn.closed.then(() => (closed = true));
    while (!closed && Date.now() - started < HEADERS_TIMEOUT + SLACK + 2000) {
      conn.write("a");
      await new Promise((r) => setTimeout(r, 100));
    }
    const { received, at } = await conn.closed;
    console.log(`[slow] trickled headers cut after ${at - started} ms (headers timeout ${HEADERS_TIMEOUT} ms): ${JSON.stringify(received.split("\r\n")[0])}`);
    expect(at - started).toBeLessThan(HEADERS_TIMEOUT + SLACK);
    expect(received === "" || received.startsWith("HTTP/1.1 408 ")).toBe(true);
    const health = await rawExchange(server.url, rawRequestBytes("GET", "/health"));
    expect(health.status).toBe(200);
  });

  for (const framing of ["content-length", "chunked"] as const) {
    it(`an upload that stalls mid-body (${framing}, past the first chunk) is cut by the idle timeout and nothing is stored`, async () => {
      const before = snapshotDir(dir);
      const body = patternBytes(1.5 * MIB, 41);
      const upload = pacedUpload(server.url, `/api/v1/operations/${operationId}/artifacts/stalled-${framing}.bin`, {
        authorization: `Bearer ${WRITER_TOKEN}`,
        ...(framing === "content-length" ? { "content-length": String(2 * MIB) } : {}),
      });
      await upload.write(body);
      const stalledAt = Date.now();
      const outcome = await upload.response.then(
        (r) => `HTTP ${r.status}`,
        (e: Error) => `connection closed (${e.message})`,
      );
      const cutAfter = Date.now() - stalledAt;
      console.log(`[slow] upload stalled after 1.5 MiB (${framing}): ${outcome} after ${cutAfter} ms (idle timeout ${IDLE_TIMEOUT} ms)`);
      expect(outcome).toMatch(/^connection closed/);
      expect(cutAfter).toBeLessThan(IDLE_TIMEOUT + SLACK);
      // The aborted write removes its temp file; nothing else changes.
      await waitFor("the temp file to go", () => (partFiles().length === 0 ? true : undefined), 10_000);
      expect(existsSync(join(dir, artifactObjectKey(operationId, `stalled-${framing}.bin`)))).toBe(false);
      expect(diffSnapshots(before, snapshotDir(dir))).toBe("");
      expect((await server.store.getOperation(operationId)).artifactCount).toBe(1);
    });
  }

  it("a client that connects and sends nothing is dropped by the idle timeout", async () => {
    const conn = rawConnection();
    const started = Date.now();
    const { at } = await conn.closed;
    expect(at - started).toBeLessThan(Math.max(IDLE_TIMEOUT, HEADERS_TIMEOUT) + SLACK);
  });
});

describe(`uploads over ARTIFACTS_MAX_BYTES (${MAX} bytes) are 413 and store nothing`, () => {
  const message = `artifact is larger than ARTIFACTS_MAX_BYTES (${MAX} bytes)`;

  it("declared by Content-Length: refused before the body is read", async () => {
    const before = snapshotDir(dir);
    // Headers only: the answer must come without the client sending a byte of the body.
    const answer = await rawExchange(
      server.url,
      Buffer.from(
        `PUT /api/v1/operations/${operationId}/artifacts/declared.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${WRITER_TOKEN}\r\nContent-Length: ${MAX + 1}\r\n\r\n`,
      ),
    );
    watch.see("error body", answer.body);
    expect(answer.status).toBe(413);
    expect(answer.json).toEqual({ error: { code: "too_large", message } });
    expect(answer.headers.connection).toBe("close");
    expect(diffSnapshots(before, snapshotDir(dir))).toBe("");
  });

  it("chunked, one byte over: 413 once the limit is passed, no object, no temp file", async () => {
    const before = snapshotDir(dir);
    const upload = pacedUpload(server.url, `/api/v1/operations/${operationId}/artifacts/chunked.bin`, { authorization: `Bearer ${WRITER_TOKEN}` });
    const body = patternBytes(MAX + 1, 42);
    void upload.write(body).catch(() => {});
    upload.end();
    const answer = await upload.response;
    watch.see("error body", JSON.stringify(answer.json));
    expect(answer.status).toBe(413);
    expect(answer.json).toEqual({ error: { code: "too_large", message } });
    await waitFor("the temp file to go", () => (partFiles().length === 0 ? true : undefined), 10_000);
    expect(diffSnapshots(before, snapshotDir(dir))).toBe("");
  });

  it("the writer client with a stream of unknown length gets too_large; exactly the limit is stored", async () => {
    const before = snapshotDir(dir);
    const over = patternBytes(MAX + 1000, 43);
    await expect(writer.upload(operationId, "client-over.bin", Readable.from([over.subarray(0, MIB), over.subarray(MIB)]))).rejects.toMatchObject({
      code: "too_large",
      message,
    });
    await waitFor("the temp file to go", () => (partFiles().length === 0 ? true : undefined), 10_000);
    expect(diffSnapshots(before, snapshotDir(dir))).toBe("");
    // The limit itself is allowed.
    const exact = patternBytes(MAX, 44);
    expect((await writer.upload(operationId, "exactly-max.bin", Readable.from([exact.subarray(0, MIB), exact.subarray(MIB)]))).size).toBe(MAX);
  });

  it("on S3, a body past the limit after a multipart upload began: 413, no object, no open multipart upload", async () => {
    const bucket = await freshBucket(motoEndpoint(), "rel-too-large");
    watch.secret("S3 secret access key", bucket.env.S3_SECRET_ACCESS_KEY);
    // Past one 8 MiB part plus the engine's read-ahead (4 chunks of 1 MiB in flight), so the
    // limit is hit only after lib-storage has begun the multipart upload.
    const max = 14 * MIB;
    // Through a recording proxy, to see that a multipart upload really had begun.
    const proxy = await startRecordingProxy(motoEndpoint());
    const s3 = await startInProcess(
      { ...bucket.env, S3_ENDPOINT: proxy.url, ARTIFACTS_S3_TIMEOUT_MS: "20000", ARTIFACTS_MAX_BYTES: String(max) },
      watch,
      { rawStorage: bucket.storage },
    );
    try {
      const w = createWriterClient({ baseUrl: s3.url, token: WRITER_TOKEN });
      const op = await w.createOperation({ grantee: wallet().address, agent: "s3-large" });
      const before = await snapshotBackend(s3.raw);
      const upload = pacedUpload(s3.url, `/api/v1/operations/${op.operationId}/artifacts/over.bin`, { authorization: `Bearer ${WRITER_TOKEN}` });
      const body = patternBytes(max + 100_000, 45);
      void upload.write(body).catch(() => {});
      upload.end();
      const answer = await upload.response;
      watch.see("error body", JSON.stringify(answer.json));
      expect(answer.status).toBe(413);
      expect(answer.json).toEqual({ error: { code: "too_large", message: `artifact is larger than ARTIFACTS_MAX_BYTES (${max} bytes)` } });
      expect(diffSnapshots(before, await snapshotBackend(s3.raw))).toBe("");
      // lib-storage aborts the multipart upload it started; give the abort a moment to land.
      const open = await waitFor("no open multipart uploads", async () => ((await listMultipartUploads(motoEndpoint(), bucket.bucket)).length === 0 ? [] : undefined), 10_000).catch(
        async () => listMultipartUploads(motoEndpoint(), bucket.bucket),
      );
      expect(open).toEqual([]);
      const began = proxy.requests.filter((r) => r.method === "POST" && /[?&]uploads\b/.test(r.path)).length;
      const aborted = proxy.requests.filter((r) => r.method === "DELETE" && /[?&]uploadId=/.test(r.path)).length;
      console.log(`[slow] S3 over the limit: ${began} multipart upload(s) begun, ${aborted} aborted`);
      expect(began).toBeGreaterThan(0);
    } finally {
      await s3.close();
      watch.s3Signatures(proxy.requests);
      await proxy.close();
    }
  });
});
