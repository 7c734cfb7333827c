/**
 * Load against one real server process (the built server as a child, local storage): 200
 * concurrent downloads of a 1 MiB artifact, then 50 concurrent uploads across 5 operations, every
 * body verified by hash, and the process's peak RSS (VmHWM) reported. The RSS bound is generous on
 * purpose: this is a "memory does not grow with the load" check, not a performance assertion.
 */
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createGranteeClient, createWriterClient, type GranteeClient, type WriterClient } from "@personal-server/artifacts/client";
import { collect, localEnv, patternBytes, SecretWatch, sha256, spawnServer, wallet, watchedSigner, WRITER_TOKEN, type ChildServer } from "./harness.js";

const watch = new SecretWatch();
let server: ChildServer;
let writer: WriterClient;
let grantee: GranteeClient;

beforeAll(async () => {
  server = await spawnServer(localEnv(), watch, "load server");
  writer = createWriterClient({ baseUrl: server.url, token: WRITER_TOKEN });
  grantee = createGranteeClient({ baseUrl: server.url, account: watchedSigner(wallet(), watch) });
});

afterAll(async () => {
  await server?.stop();
  expect(watch.leaks()).toEqual([]);
});

/** Runs every task at once; returns the failures (never throws, so one error does not hide the others). */
async function all<T>(tasks: (() => Promise<T>)[]): Promise<{ results: T[]; errors: string[] }> {
  const settled = await Promise.allSettled(tasks.map((t) => t()));
  const errors = settled.flatMap((s, i) => (s.status === "rejected" ? [`#${i}: ${String((s.reason as Error)?.message ?? s.reason)}`] : []));
  return { results: settled.flatMap((s) => (s.status === "fulfilled" ? [s.value] : [])), errors };
}

describe("load on one server process", () => {
  it("200 concurrent downloads of a 1 MiB artifact: 0 errors, every body verified", async () => {
    const op = await writer.createOperation({ grantee: grantee.address, agent: "load" });
    const body = patternBytes(1024 * 1024, 7);
    const want = sha256(body);
    await writer.upload(op.operationId, "model/output.bin", body);
    const before = server.peakRssKiB();
    const started = Date.now();
    const { results, errors } = await all(
      Array.from({ length: 200 }, () => async () => {
        const stream = await grantee.download(op.operationId, "model/output.bin");
        const got = await collect(stream);
        if (sha256(got) !== want) throw new Error(`body mismatch: ${got.length} bytes`);
        return got.length;
      }),
    );
    const seconds = (Date.now() - started) / 1000;
    const peak = server.peakRssKiB();
    console.log(
      `[load] 200 concurrent downloads of 1 MiB: ${results.length} verified, ${errors.length} errors, ${seconds.toFixed(1)} s; ` +
        `server VmHWM ${(before / 1024).toFixed(0)} -> ${(peak / 1024).toFixed(0)} MiB (${server.built ? "built dist/main.js" : "TypeScript source via tsx"})`,
    );
    expect(errors).toEqual([]);
    expect(results).toHaveLength(200);
    expect(peak).toBeLessThan(512 * 1024);
  });

  it("50 concurrent uploads across 5 operations: 0 errors, every artifact listed and verified by hash", async () => {
    const ops = await Promise.all(Array.from({ length: 5 }, (_, i) => writer.createOperation({ grantee: grantee.address, operationId: `load-up-${i}` })));
    // Sizes around the 1 MiB chunk edge, empty and tiny ones, and streamed (chunked) bodies.
    const sizes = [0, 1, 1000, 65_536, 300_000, 1024 * 1024 - 1, 1024 * 1024, 1024 * 1024 + 1, 1_500_000, 2 * 1024 * 1024 + 3];
    const jobs = ops.flatMap((op, o) =>
      sizes.map((size, i) => ({ operationId: op.operationId, path: `up/${i}-${size}.bin`, size, seed: 1000 + o * 100 + i, stream: (o + i) % 2 === 0 })),
    );
    const started = Date.now();
    const uploads = await all(
      jobs.map((job) => async () => {
        const bytes = patternBytes(job.size, job.seed);
        // Non-empty pieces only: the load is measured here; empty pieces are covered by the findings tests.
        const pieces = [bytes.subarray(0, job.size >> 1), bytes.subarray(job.size >> 1)].filter((p) => p.length > 0);
        const body = job.stream ? Readable.from(pieces) : bytes;
        const answer = await writer.upload(job.operationId, job.path, body, { contentType: "application/octet-stream" });
        if (answer.size !== job.size) throw new Error(`${job.path}: stored ${answer.size} bytes, sent ${job.size}`);
      }),
    );
    const uploadSeconds = (Date.now() - started) / 1000;
    expect(uploads.errors).toEqual([]);

    for (const op of ops) {
      const listing = await grantee.list(op.operationId);
      expect(listing.artifacts.map((a) => [a.path, a.size]).sort()).toEqual(
        jobs.filter((j) => j.operationId === op.operationId).map((j) => [j.path, j.size]).sort(),
      );
    }
    const verified = await all(
      jobs.map((job) => async () => {
        const got = await collect(await grantee.download(job.operationId, job.path));
        if (sha256(got) !== sha256(patternBytes(job.size, job.seed))) throw new Error(`${job.path}: body mismatch (${got.length} bytes)`);
      }),
    );
    const peak = server.peakRssKiB();
    console.log(
      `[load] 50 concurrent uploads across 5 operations: ${jobs.length - uploads.errors.length} stored in ${uploadSeconds.toFixed(1)} s, ` +
        `${jobs.length - verified.errors.length} verified by hash; server peak RSS (VmHWM) ${(peak / 1024).toFixed(0)} MiB`,
    );
    expect(verified.errors).toEqual([]);
    expect(peak).toBeLessThan(512 * 1024);
  });
});
