/**
 * Fixed cases for problems the reliability suite found outside the store, kept as plain tests
 * so a regression names itself. (Store-level tamper findings live in
 * packages/artifacts/test/fuzz/store-tamper.regressions.test.ts; the same-path race in
 * faults.reliability.test.ts; the parser-level error bodies in bad-input.reliability.test.ts.)
 */
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createWriterClient, type WriterClient } from "@personal-server/artifacts/client";
import { SecretWatch, startInProcess, tempDir, wallet, WRITER_TOKEN, type InProcessServer } from "./harness.js";

const watch = new SecretWatch();
let server: InProcessServer;
let writer: WriterClient;
let operationId: string;

beforeAll(async () => {
  server = await startInProcess({ ARTIFACTS_LOCAL_DIR: tempDir("findings") }, watch);
  writer = createWriterClient({ baseUrl: server.url, token: WRITER_TOKEN });
  operationId = (await writer.createOperation({ grantee: wallet().address, agent: "findings" })).operationId;
});

afterAll(async () => {
  await server?.close();
  expect(watch.leaks()).toEqual([]);
});

describe("writer client upload bodies", () => {
  // Found by the load test: the fetch of Node 22 (undici 6; engines allows it) never sends a
  // streamed request body that yields an empty piece; the request sits unsent until the server
  // drops the idle keep-alive connection (10 s), then fails as storage_unavailable "other side
  // closed". Streams from transforms, generators or network sources can start with one.
  it("uploads a stream whose first piece is empty", async () => {
    const body = Readable.from([Buffer.alloc(0), Buffer.from("abc")]);
    const uploaded = await writer.upload(operationId, "first-piece-empty.bin", body, { signal: AbortSignal.timeout(5000) });
    expect(uploaded.size).toBe(3);
  });

  it("uploads an async iterable that yields an empty piece first", async () => {
    async function* pieces() {
      yield new Uint8Array(0);
      yield new TextEncoder().encode("hello");
    }
    const uploaded = await writer.upload(operationId, "generator-empty-first.bin", pieces(), { signal: AbortSignal.timeout(5000) });
    expect(uploaded.size).toBe(5);
  });
});
