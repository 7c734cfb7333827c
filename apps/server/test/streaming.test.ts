// Large artifacts streamed through the server both ways and checked by hash; bytes that fail to
// verify after the headers went out cut the connection instead of ending the answer cleanly.
import { createHash, randomBytes } from "node:crypto";
import { request as httpRequest } from "node:http";
import { Readable } from "node:stream";
import { IntegrityError } from "@personal-server/artifacts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KINDS, collect, patternBytes, signedFor, startTestServer, wallet, type Kind, type TestServer } from "./helpers.js";

const MiB = 1024 * 1024;
// moto is pure Python and slow with big PUTs, the R2 simulator uploads at about 20 MB/s: the
// full 256 MiB runs on local disk.
const BIG: Record<Kind, number> = { local: 256 * MiB, moto: 32 * MiB, r2sim: 8 * MiB };

/** `size` random bytes in 1 MiB pieces, hashed as they are produced (never held whole). */
function randomSource(size: number): { stream: Readable; digest: () => string } {
  const hash = createHash("sha256");
  async function* produce() {
    for (let left = size; left > 0; left -= MiB) {
      const piece = randomBytes(Math.min(MiB, left));
      hash.update(piece);
      yield piece;
    }
  }
  return { stream: Readable.from(produce(), { objectMode: false }), digest: () => hash.digest("hex") };
}

/** GETs with node:http and reports how the answer ended: complete, or cut mid-body. */
function getAndWatch(url: string, target: string, authorization: string): Promise<{ status: number; received: number; declared: number; complete: boolean; error?: string }> {
  const base = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: base.hostname, port: base.port, path: target, headers: { authorization } }, (res) => {
      let received = 0;
      let error: string | undefined;
      res.on("data", (chunk: Buffer) => {
        received += chunk.length;
      });
      res.on("error", (e) => {
        error = e.message;
      });
      res.on("close", () =>
        resolve({ status: res.statusCode ?? 0, received, declared: Number(res.headers["content-length"]), complete: res.complete, ...(error ? { error } : {}) }),
      );
    });
    req.on("error", reject);
    req.end();
  });
}

describe.each(KINDS)("streaming on %s storage", (kind) => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer(kind);
  });
  afterAll(async () => {
    await s?.close();
  });

  it(`a ${BIG[kind] / MiB} MiB upload and download stream through the server and match by hash`, async () => {
    const grantee = wallet();
    const { operationId: id } = await s.writer.createOperation({ grantee: grantee.address });
    const source = randomSource(BIG[kind]);
    const uploaded = await s.writer.upload(id, "big/archive.bin", source.stream, { contentType: "application/octet-stream" });
    expect(uploaded.size).toBe(BIG[kind]);
    const sent = source.digest();

    const download = await s.grantee(grantee).download(id, "big/archive.bin");
    expect(download.artifact).toMatchObject({ status: 200, size: BIG[kind], contentLength: BIG[kind] });
    const hash = createHash("sha256");
    let received = 0;
    for await (const chunk of download) {
      hash.update(chunk as Buffer);
      received += (chunk as Buffer).length;
    }
    expect(received).toBe(BIG[kind]);
    expect(hash.digest("hex")).toBe(sent);
  });

  it("a tampered multi-chunk artifact: 200 headers, then the connection is destroyed (never a clean end)", async () => {
    const grantee = wallet();
    const { operationId: id } = await s.writer.createOperation({ grantee: grantee.address });
    const data = patternBytes(3 * MiB, 11);
    await s.writer.upload(id, "tampered.bin", data);
    const key = `operations/${id}/artifacts/tampered.bin`;
    const stored = (await s.raw.getBytes(key))!.body;
    // Flip one byte in the third chunk: the first two verify and go out, then the tag check fails.
    stored[41 + 2 * (MiB + 16) + 100]! ^= 0x01;
    await s.raw.put(key, stored);

    const target = `/api/v1/operations/${id}/artifacts/tampered.bin`;
    const answer = await getAndWatch(s.url, target, await signedFor(s, grantee, "GET", target));
    expect(answer.status).toBe(200);
    expect(answer.declared).toBe(3 * MiB);
    expect(answer.complete).toBe(false);
    expect(answer.received).toBeLessThan(3 * MiB);

    const stream = await s.grantee(grantee).download(id, "tampered.bin");
    const read = collect(stream);
    await expect(read).rejects.toBeInstanceOf(IntegrityError);
    await expect(read).rejects.toMatchObject({ code: "integrity" });

    const metrics = await fetch(s.metricsUrl).then((r) => r.text());
    expect(metrics).toMatch(/^artifacts_errors_total\{code="integrity"\} [1-9]\d*$/m);
  });

  it("a tampered one-chunk artifact fails before the headers: 500 integrity", async () => {
    const grantee = wallet();
    const { operationId: id } = await s.writer.createOperation({ grantee: grantee.address });
    await s.writer.upload(id, "small.txt", "short and sweet", { contentType: "text/plain" });
    const key = `operations/${id}/artifacts/small.txt`;
    const stored = (await s.raw.getBytes(key))!.body;
    stored[45]! ^= 0x80;
    await s.raw.put(key, stored);
    const target = `/api/v1/operations/${id}/artifacts/small.txt`;
    const res = await fetch(`${s.url}${target}`, { headers: { authorization: await signedFor(s, grantee, "GET", target) } });
    expect(res.status).toBe(500);
    expect(res.headers.get("content-disposition")).toBeNull();
    expect(res.headers.get("etag")).toBeNull();
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("integrity");
  });
});
