/**
 * Faults (issue 7): storage that stops answering mid-upload (moto behind a recording proxy that
 * is cut, never moto itself), the server SIGKILLed mid-upload on local storage, and two writers
 * updating one operation at once (two server processes on one directory, plus a store in this
 * process like the CLI; two servers on one bucket).
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createArtifactStore, loadConfig } from "@personal-server/artifacts";
import { metadataKey, artifactObjectKey } from "@personal-server/artifacts/internal";
import { createGranteeClient, createWriterClient, type GranteeClient } from "@personal-server/artifacts/client";
import { freshBucket, listMultipartUploads, motoEndpoint } from "../../../../test-support/s3.js";
import { startRecordingProxy, type RecordingProxy } from "../../../../test-support/proxy.js";
import {
  collect,
  diffSnapshots,
  localEnv,
  pacedUpload,
  patternBytes,
  SecretWatch,
  sha256,
  snapshotBackend,
  spawnServer,
  startInProcess,
  tempDir,
  waitFor,
  wallet,
  watchedSigner,
  WRITER_TOKEN,
  type InProcessServer,
} from "./harness.js";

const watch = new SecretWatch();
const proxies: RecordingProxy[] = [];
const MIB = 1024 * 1024;
/** Slack on top of the configured storage timeout: a loaded 2-core CI box, not a performance bound. */
const SLACK_MS = 5000;
let faultsSurvived = 0;

afterAll(async () => {
  for (const p of proxies) {
    watch.s3Signatures(p.requests);
    await p.close();
  }
  console.log(`[faults] ${faultsSurvived} faults survived; secret watch: ${watch.textCount} texts checked for ${watch.secretCount} secrets`);
  expect(watch.leaks()).toEqual([]);
});

/** An S3-backed server whose storage traffic goes through a recording proxy in front of moto. */
async function s3ServerBehindProxy(timeoutMs: number): Promise<{ server: InProcessServer; proxy: RecordingProxy; bucket: string }> {
  const bucket = await freshBucket(motoEndpoint(), "rel-faults");
  watch.secret("S3 secret access key", bucket.env.S3_SECRET_ACCESS_KEY);
  const proxy = await startRecordingProxy(motoEndpoint());
  proxies.push(proxy);
  const server = await startInProcess(
    { ...bucket.env, S3_ENDPOINT: proxy.url, ARTIFACTS_S3_TIMEOUT_MS: String(timeoutMs) },
    watch,
    { rawStorage: bucket.storage },
  );
  return { server, proxy, bucket: bucket.bucket };
}

async function expectExact(grantee: GranteeClient, operationId: string, path: string, body: Buffer): Promise<void> {
  const got = await collect(await grantee.download(operationId, path));
  expect(got.length, `${path} length`).toBe(body.length);
  expect(sha256(got), `${path} content`).toBe(sha256(body));
}

/**
 * Two writers upload different bodies to the same new path at once, 12 times. docs/http-api.md: artifacts
 * are immutable and a second PUT of a path is `conflict`; the writer told 201 must find its bytes.
 * Returns what went wrong (empty when nothing did).
 */
async function raceSamePaths(urlA: string, urlB: string): Promise<string[]> {
  const account = watchedSigner(wallet(), watch);
  const writers = [createWriterClient({ baseUrl: urlA, token: WRITER_TOKEN }), createWriterClient({ baseUrl: urlB, token: WRITER_TOKEN })];
  const op = await writers[0]!.createOperation({ grantee: account.address, agent: "race" });
  const grantee = createGranteeClient({ baseUrl: urlA, account });
  const problems: string[] = [];
  for (let k = 0; k < 12; k++) {
    // Same size half of the time (a swap would go unnoticed by size), different otherwise.
    const bodies = [patternBytes(200_000, 500 + k), patternBytes(k % 2 === 0 ? 200_000 : 150_000, 900 + k)];
    const path = `race/${k}.bin`;
    const outcomes = await Promise.allSettled(writers.map((w, i) => w.upload(op.operationId, path, bodies[i]!)));
    const winners = outcomes.flatMap((o, i) => (o.status === "fulfilled" ? [i] : []));
    const losers = outcomes.flatMap((o) => (o.status === "rejected" ? [(o.reason as { code?: string }).code] : []));
    if (winners.length !== 1 || losers.join() !== "conflict") {
      problems.push(`${path}: ${winners.length} succeeded, losers ${JSON.stringify(losers)}`);
      continue;
    }
    const got = await (async () => collect(await grantee.download(op.operationId, path)))().catch((e: unknown) => e as Error);
    if (got instanceof Error) problems.push(`${path}: the winner's artifact is unreadable: ${got.message}`);
    else if (!got.equals(bodies[winners[0]!]!)) {
      problems.push(`${path}: reads back ${got.equals(bodies[1 - winners[0]!]!) ? "the loser's bytes" : `${got.length} other bytes`}`);
    }
  }
  return problems;
}

describe("storage unreachable mid-upload (S3 via a cut proxy)", () => {
  for (const mode of ["hang", "reset"] as const) {
    it(`${mode}: 503 storage_unavailable within the timeout, nothing changed, and the same upload succeeds once storage is back`, async () => {
      const TIMEOUT = 1500;
      const { server, proxy } = await s3ServerBehindProxy(TIMEOUT);
      try {
        const writer = createWriterClient({ baseUrl: server.url, token: WRITER_TOKEN });
        const grantee = createGranteeClient({ baseUrl: server.url, account: watchedSigner(wallet(), watch) });
        const op = await writer.createOperation({ grantee: grantee.address, agent: "faults" });
        const small = Buffer.from("an earlier result\n");
        const big = patternBytes(1.5 * MIB, 11);
        await writer.upload(op.operationId, "earlier/small.txt", small, { contentType: "text/plain" });
        await writer.upload(op.operationId, "earlier/big.bin", big);
        const metadataBefore = (await server.raw.getBytes(metadataKey(op.operationId)))!.body;
        const objectsBefore = await snapshotBackend(server.raw);

        const late = patternBytes(3 * MIB, 12);
        const upload = pacedUpload(server.url, `/api/v1/operations/${op.operationId}/artifacts/late/report.bin`, {
          authorization: `Bearer ${WRITER_TOKEN}`,
          "content-type": "application/octet-stream",
        });
        await upload.write(late.subarray(0, MIB));
        proxy.cut(mode);
        const cutAt = Date.now();
        await upload.write(late.subarray(MIB));
        upload.end();
        const answer = await upload.response;
        watch.see("error body", JSON.stringify(answer.json));
        const elapsed = answer.at - cutAt;
        console.log(`[faults] S3 ${mode} mid-upload: HTTP ${answer.status} after ${elapsed} ms (timeout ${TIMEOUT} ms)`);
        expect(answer.status).toBe(503);
        expect((answer.json as { error: { code: string } }).error.code).toBe("storage_unavailable");
        expect((answer.json as { error: { message: string } }).error.message).toBe("storage is unavailable or too slow; retry shortly");
        expect(server.logs.join("")).toMatch(
          mode === "hang" ? /storage did not answer within 1500 ms/ : /(cannot reach storage|storage did not answer within 1500 ms)/,
        );
        expect(answer.headers["retry-after"]).toBe("5");
        expect(elapsed).toBeLessThan(TIMEOUT + SLACK_MS);

        proxy.restore();
        // Storage is back: nothing was committed or left behind, and earlier artifacts read back.
        expect((await server.raw.getBytes(metadataKey(op.operationId)))!.body.equals(metadataBefore)).toBe(true);
        expect(diffSnapshots(objectsBefore, await snapshotBackend(server.raw))).toBe("");
        await expectExact(grantee, op.operationId, "earlier/small.txt", small);
        await expectExact(grantee, op.operationId, "earlier/big.bin", big);
        expect((await grantee.list(op.operationId)).artifacts.map((a) => a.path)).toEqual(["earlier/big.bin", "earlier/small.txt"]);

        // The same upload again: it succeeds and reads back.
        await writer.upload(op.operationId, "late/report.bin", late);
        await expectExact(grantee, op.operationId, "late/report.bin", late);
        faultsSurvived++;
      } finally {
        proxy.restore();
        await server.close();
      }
    });
  }

  it("hang after the first multipart part: 503 within the timeout, no artifact, the dangling upload is swept, the retry succeeds", async () => {
    // Parts are 8 MiB; moto takes a while to swallow one, so this server allows 4 s per request.
    const TIMEOUT = 4000;
    const { server, proxy, bucket } = await s3ServerBehindProxy(TIMEOUT);
    try {
      const writer = createWriterClient({ baseUrl: server.url, token: WRITER_TOKEN });
      const grantee = createGranteeClient({ baseUrl: server.url, account: watchedSigner(wallet(), watch) });
      const op = await writer.createOperation({ grantee: grantee.address, agent: "multipart" });
      const earlier = patternBytes(200_000, 21);
      await writer.upload(op.operationId, "earlier.bin", earlier);
      const metadataBefore = (await server.raw.getBytes(metadataKey(op.operationId)))!.body;
      const objectsBefore = await snapshotBackend(server.raw);

      const body = patternBytes(9 * MIB, 22);
      const upload = pacedUpload(server.url, `/api/v1/operations/${op.operationId}/artifacts/large.bin`, {
        authorization: `Bearer ${WRITER_TOKEN}`,
      });
      await upload.write(body.subarray(0, 8.5 * MIB));
      // Wait until the first part has reached moto and been answered, then pull the plug.
      await waitFor("the first UploadPart", () =>
        proxy.requests.some((r) => r.method === "PUT" && /partNumber=1\b/.test(r.path) && r.complete && r.outcome === "forwarded") ? true : undefined,
      );
      await new Promise((r) => setTimeout(r, 300));
      proxy.cut("hang");
      const cutAt = Date.now();
      await upload.write(body.subarray(8.5 * MIB));
      upload.end();
      const answer = await upload.response;
      watch.see("error body", JSON.stringify(answer.json));
      console.log(`[faults] S3 hang after part 1 of a multipart upload: HTTP ${answer.status} after ${answer.at - cutAt} ms (timeout ${TIMEOUT} ms)`);
      expect(answer.status).toBe(503);
      expect((answer.json as { error: { code: string } }).error.code).toBe("storage_unavailable");
      expect(answer.at - cutAt).toBeLessThan(TIMEOUT + SLACK_MS);

      proxy.restore();
      expect((await server.raw.getBytes(metadataKey(op.operationId)))!.body.equals(metadataBefore)).toBe(true);
      expect(diffSnapshots(objectsBefore, await snapshotBackend(server.raw))).toBe("");
      await expectExact(grantee, op.operationId, "earlier.bin", earlier);
      // The abort could not reach storage: the incomplete upload is the sweep's to remove.
      const dangling = await listMultipartUploads(motoEndpoint(), bucket);
      const swept = await server.store.sweepExpired({ now: new Date(Date.now() + 25 * 3600 * 1000) });
      expect(swept.deletedTemporary).toBeGreaterThanOrEqual(dangling.length);
      expect(await listMultipartUploads(motoEndpoint(), bucket)).toEqual([]);
      await expectExact(grantee, op.operationId, "earlier.bin", earlier);

      await writer.upload(op.operationId, "large.bin", body);
      await expectExact(grantee, op.operationId, "large.bin", body);
      faultsSurvived++;
    } finally {
      proxy.restore();
      await server.close();
    }
  });
});

describe("server SIGKILLed mid-upload (local storage)", () => {
  it("after a restart no partial artifact is visible, the next sweep removes the temp file, and the upload succeeds", async () => {
    const dir = tempDir("sigkill");
    const first = await spawnServer(localEnv(dir), watch, "server before SIGKILL");
    const writer1 = createWriterClient({ baseUrl: first.url, token: WRITER_TOKEN });
    const account = watchedSigner(wallet(), watch);
    const op = await writer1.createOperation({ grantee: account.address, agent: "crash" });
    const kept = patternBytes(100_000, 31);
    await writer1.upload(op.operationId, "kept.bin", kept);

    const body = patternBytes(6 * MIB, 32);
    const upload = pacedUpload(first.url, `/api/v1/operations/${op.operationId}/artifacts/partial.bin`, {
      authorization: `Bearer ${WRITER_TOKEN}`,
    });
    await upload.write(body.subarray(0, 3 * MIB));
    const tmp = join(dir, ".tmp");
    const partFiles = () => (existsSync(tmp) ? readdirSync(tmp).filter((n) => n.endsWith(".part")) : []);
    // Kill it while the encrypted bytes are on their way to disk.
    await waitFor("a temp file with data", () => (partFiles().some((n) => statSync(join(tmp, n)).size > 0) ? true : undefined));
    first.kill("SIGKILL");
    expect((await first.exited).signal).toBe("SIGKILL");
    await expect(upload.response).rejects.toThrow();
    const leftovers = partFiles();
    expect(leftovers.length).toBeGreaterThan(0);
    expect(existsSync(join(dir, artifactObjectKey(op.operationId, "partial.bin")))).toBe(false);

    const second = await spawnServer(localEnv(dir), watch, "server after SIGKILL");
    try {
      const grantee = createGranteeClient({ baseUrl: second.url, account });
      const writer2 = createWriterClient({ baseUrl: second.url, token: WRITER_TOKEN });
      expect((await grantee.list(op.operationId)).artifacts.map((a) => a.path)).toEqual(["kept.bin"]);
      await expect(grantee.download(op.operationId, "partial.bin")).rejects.toMatchObject({
        code: "not_found",
        message: `artifact partial.bin not found in operation ${op.operationId}`,
      });
      await expectExact(grantee, op.operationId, "kept.bin", kept);

      // The next sweep (here: a store like the CLI's, an hour and more later) removes the leftovers.
      const store = createArtifactStore(loadConfig(localEnv(dir)));
      try {
        const swept = await store.sweepExpired({ now: new Date(Date.now() + 2 * 3600 * 1000) });
        expect(swept.deletedTemporary).toBeGreaterThanOrEqual(leftovers.length);
        expect(swept.deletedOperations).toBe(0);
      } finally {
        await store.close();
      }
      expect(partFiles()).toEqual([]);
      await expectExact(grantee, op.operationId, "kept.bin", kept);

      await writer2.upload(op.operationId, "partial.bin", body);
      await expectExact(grantee, op.operationId, "partial.bin", body);
      faultsSurvived++;
    } finally {
      await second.stop();
    }
  });
});

describe("two writers on one operation", () => {
  it("two server processes and a store (like the CLI) on one directory, 50 concurrent uploads: nothing lost", async () => {
    const dir = tempDir("two-writers");
    const [a, b] = await Promise.all([spawnServer(localEnv(dir), watch, "writer A"), spawnServer(localEnv(dir), watch, "writer B")]);
    const cli = createArtifactStore(loadConfig(localEnv(dir)));
    try {
      const account = watchedSigner(wallet(), watch);
      const writerA = createWriterClient({ baseUrl: a.url, token: WRITER_TOKEN });
      const writerB = createWriterClient({ baseUrl: b.url, token: WRITER_TOKEN });
      const op = await writerA.createOperation({ grantee: account.address, agent: "shared" });
      const jobs = Array.from({ length: 50 }, (_, i) => ({ i, path: `out/${i}.bin`, body: patternBytes(1000 + i * 3001, 100 + i), via: i % 5 === 4 ? "cli" : i % 2 === 0 ? "A" : "B" }));
      const settled = await Promise.allSettled(
        jobs.map((j) =>
          j.via === "cli"
            ? cli.putArtifact(op.operationId, j.path, j.body)
            : (j.via === "A" ? writerA : writerB).upload(op.operationId, j.path, j.body),
        ),
      );
      expect(settled.flatMap((s, i) => (s.status === "rejected" ? [`${jobs[i]!.path} via ${jobs[i]!.via}: ${String(s.reason)}`] : []))).toEqual([]);
      const grantee = createGranteeClient({ baseUrl: b.url, account });
      const listing = await grantee.list(op.operationId);
      expect(listing.artifacts.map((x) => [x.path, x.size]).sort()).toEqual(jobs.map((j) => [j.path, j.body.length]).sort());
      for (const j of jobs) await expectExact(grantee, op.operationId, j.path, j.body);
      faultsSurvived++;
    } finally {
      await cli.close();
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  it("two server processes racing for the same paths (local): one 201 and one 409 each, and the stored bytes are the winner's", async () => {
    const dir = tempDir("same-path");
    const [a, b] = await Promise.all([spawnServer(localEnv(dir), watch, "racer A"), spawnServer(localEnv(dir), watch, "racer B")]);
    try {
      expect(await raceSamePaths(a.url, b.url)).toEqual([]);
      faultsSurvived++;
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  it("two servers racing for the same paths (one bucket): one 201 and one 409 each, and the stored bytes are the winner's", async () => {
    const bucket = await freshBucket(motoEndpoint(), "rel-race");
    const env = { ...bucket.env, ARTIFACTS_S3_TIMEOUT_MS: "20000" };
    const a = await startInProcess(env, watch);
    const b = await startInProcess(env, watch);
    try {
      expect(await raceSamePaths(a.url, b.url)).toEqual([]);
      faultsSurvived++;
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it("two servers on one bucket, 40 concurrent uploads to one operation: nothing lost", async () => {
    const bucket = await freshBucket(motoEndpoint(), "rel-two-writers");
    const env = { ...bucket.env, ARTIFACTS_S3_TIMEOUT_MS: "20000" };
    const a = await startInProcess(env, watch);
    const b = await startInProcess(env, watch);
    try {
      const account = watchedSigner(wallet(), watch);
      const writers = [createWriterClient({ baseUrl: a.url, token: WRITER_TOKEN }), createWriterClient({ baseUrl: b.url, token: WRITER_TOKEN })];
      const op = await writers[0]!.createOperation({ grantee: account.address, agent: "bucket" });
      const jobs = Array.from({ length: 40 }, (_, i) => ({ path: `x/${i}.txt`, body: patternBytes(500 + i * 997, 300 + i) }));
      const settled = await Promise.allSettled(jobs.map((j, i) => writers[i % 2]!.upload(op.operationId, j.path, j.body)));
      expect(settled.flatMap((s, i) => (s.status === "rejected" ? [`${jobs[i]!.path}: ${String(s.reason)}`] : []))).toEqual([]);
      const grantee = createGranteeClient({ baseUrl: b.url, account });
      expect((await grantee.list(op.operationId)).artifacts.map((x) => [x.path, x.size]).sort()).toEqual(jobs.map((j) => [j.path, j.body.length]).sort());
      for (const j of jobs) await expectExact(grantee, op.operationId, j.path, j.body);
      faultsSurvived++;
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});
