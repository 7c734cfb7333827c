// Several replicas on one bucket: three server processes (the real entry point, configured from the
// environment) on one moto bucket behind the R2-limits proxy (one write per second per key),
// behind a round-robin loopback proxy that is their audience, with the shared nonce store on
// redis-server and the expiry sweep every second on each of them.
// - concurrent uploads to one operation, spread over the replicas, are all listed and read back
//   (layout 2: the create-only object and entry writes are the only coordination; no 429);
// - writers racing for one path through different replicas: exactly one wins, the rest get 409;
// - uploads racing a delete or an expiry leave nothing readable, and nothing a sweep never collects;
// - sweeps running on all three at once leave no expired operation behind and fail nowhere;
// - downloads while they sweep either succeed with the right bytes or answer 410/404 cleanly.
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createArtifactStore, loadConfig } from "@personal-server/artifacts";
import { openBackend, type Backend } from "@personal-server/artifacts/internal";
import { createGranteeClient, createWriterClient, type WriterClient } from "@personal-server/artifacts/client";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { startRoundRobinProxy, type RoundRobinProxy } from "../../../test-support/round-robin-proxy.js";
import { startR2LimitsProxy, type R2LimitsProxy } from "../../../test-support/r2-limits.js";
import { freshBucket, motoEndpoint, type FreshBucket } from "../../../test-support/s3.js";
import { TEST_MASTER_KEY, WRITER_TOKEN, collect, patternBytes, sha256, wallet } from "./helpers.js";

const MAIN = fileURLToPath(new URL("../src/main.ts", import.meta.url));
const TSX = import.meta.resolve("tsx");
const REPLICAS = 3;
const WRITERS = 60;

interface Replica {
  child: ChildProcess;
  url: string;
  /** Its metrics listener's `/metrics`. */
  metricsUrl: string;
  output: () => string;
}

/** Starts `apps/server/src/main.ts` as its own process (from source, as `pnpm smoke` runs). */
async function startReplica(env: Record<string, string>): Promise<Replica> {
  const child = spawn(process.execPath, ["--conditions=source", "--import", TSX, MAIN], {
    // A scratch cwd: no developer .env is read.
    cwd: "/",
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ARTIFACTS_METRICS_LISTEN: "127.0.0.1:0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
  const [url, metricsUrl] = await new Promise<[string, string]>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`replica did not start within 30 s:\n${output}`)), 30_000);
    const check = () => {
      const match = /^artifacts server listening on (\S+)$/m.exec(output);
      const metrics = /^ {2}metrics: +(\S+\/metrics) /m.exec(output);
      if (match && metrics) {
        clearTimeout(timer);
        resolve([match[1]!, metrics[1]!]);
      }
    };
    child.stdout!.on("data", check);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`replica exited (${code}) before listening:\n${output}`));
    });
  });
  return { child, url, metricsUrl, output: () => output };
}

/** `artifacts_<name>{<label>}` values from a replica's /metrics, summed over lines that match. */
async function metric(replica: Replica, name: string, label: string): Promise<number> {
  const text = await (await fetch(replica.metricsUrl)).text();
  let total = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith(`${name}{`) && line.includes(label)) total += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return total;
}

describe("three replicas on one bucket behind a round-robin proxy", () => {
  let lb: RoundRobinProxy;
  let r2: R2LimitsProxy;
  let bucket: FreshBucket;
  let raw: Backend;
  let replicas: Replica[] = [];
  let writer: WriterClient;

  beforeAll(async () => {
    lb = await startRoundRobinProxy();
    bucket = await freshBucket(undefined, "replicas");
    r2 = await startR2LimitsProxy(motoEndpoint());
    raw = await openBackend(bucket.storage, { timeoutMs: 20_000, connectTimeoutMs: 5000 });
    const env = {
      ...bucket.env,
      S3_ENDPOINT: r2.url,
      ARTIFACTS_MASTER_KEY: TEST_MASTER_KEY,
      ARTIFACTS_WRITER_TOKEN: WRITER_TOKEN,
      ARTIFACTS_AUDIENCE: lb.url,
      ARTIFACTS_NONCE_STORE: inject("redisUrl"),
      ARTIFACTS_SWEEP_INTERVAL: "1s",
      ARTIFACTS_S3_TIMEOUT_MS: "20000",
      HOST: "127.0.0.1",
      PORT: "0",
    };
    replicas = await Promise.all(Array.from({ length: REPLICAS }, () => startReplica(env)));
    lb.setTargets(replicas.map((r) => r.url));
    writer = createWriterClient({ baseUrl: lb.url, token: WRITER_TOKEN });
  });
  afterAll(async () => {
    await Promise.all(
      replicas.map(
        (r) =>
          new Promise<void>((resolve) => {
            if (r.child.exitCode !== null || r.child.signalCode !== null) return resolve();
            r.child.once("exit", () => resolve());
            r.child.kill("SIGTERM");
            setTimeout(() => r.child.kill("SIGKILL"), 10_000).unref();
          }),
      ),
    );
    await raw?.close();
    await lb?.close();
    await r2?.close();
  });

  it(`${WRITERS} concurrent uploads to one operation through the ${REPLICAS} replicas are all listed and read back`, async () => {
    const grantee = wallet();
    const { operationId } = await writer.createOperation({ grantee: grantee.address, agent: "replicas" });
    const bodies = Array.from({ length: WRITERS }, (_, i) => patternBytes(1000 + 97 * i, i + 1));
    const before = lb.served;
    const throttledBefore = r2.limits.throttled;
    await Promise.all(bodies.map((body, i) => writer.upload(operationId, `part-${i}.bin`, body)));
    expect(r2.limits.throttled - throttledBefore).toBe(0);
    const spread = lb.served.map((n, i) => n - before[i]!);
    expect(spread.every((n) => n >= WRITERS / REPLICAS - 1)).toBe(true);

    const reader = createGranteeClient({ baseUrl: lb.url, account: grantee });
    const listing = await reader.list(operationId);
    expect(listing.artifacts.map((a) => [a.path, a.size]).sort()).toEqual(bodies.map((b, i) => [`part-${i}.bin`, b.length]).sort());
    for (const [i, body] of bodies.entries()) {
      expect(sha256(await collect(await reader.download(operationId, `part-${i}.bin`)))).toBe(sha256(body));
    }
    console.log(`replicas: ${WRITERS} concurrent uploads over ${REPLICAS} replicas (${spread.join("/")}), all ${listing.artifacts.length} listed`);
  });

  it("sweeps on all three at once leave no expired operation and fail nowhere; downloads meanwhile succeed or answer 410/404", async () => {
    const grantee = wallet();
    const reader = createGranteeClient({ baseUrl: lb.url, account: grantee });
    const OPS = 12;
    const small = patternBytes(3000, 5);
    const large = patternBytes(1024 * 1024 + 50_000, 6); // two chunks: a streamed, verified download
    const runsBefore = await Promise.all(replicas.map((r) => metric(r, "artifacts_sweep_runs_total", 'outcome="ok"')));
    const deletedBefore = await Promise.all(replicas.map((r) => metric(r, "artifacts_sweep_deleted_total", 'kind="operations"')));

    const ids = await Promise.all(
      Array.from({ length: OPS }, async () => {
        const { operationId } = await writer.createOperation({ grantee: grantee.address, agent: "sweep", ttlSeconds: 6 });
        await Promise.all([writer.upload(operationId, "small.txt", small), writer.upload(operationId, "large.bin", large)]);
        return operationId;
      }),
    );

    const outcomes = { ok: 0, expired: 0, notFound: 0 };
    const violations: string[] = [];
    const gone = new Set<string>();
    const deadline = Date.now() + 40_000;
    const worker = async (w: number) => {
      for (let n = w; gone.size < OPS && Date.now() < deadline; n++) {
        const id = ids[n % OPS]!;
        const [path, expected] = n % 2 === 0 ? ["large.bin", large] : ["small.txt", small];
        try {
          const bytes = await collect(await reader.download(id, path));
          if (sha256(bytes) === sha256(expected)) outcomes.ok++;
          else violations.push(`${id}/${path}: ${bytes.length} bytes that do not match`);
        } catch (error) {
          const code = (error as { code?: string }).code;
          if (code === "expired") outcomes.expired++;
          else if (code === "not_found") {
            outcomes.notFound++;
            gone.add(id);
          } else violations.push(`${id}/${path}: ${code} ${(error as Error).message}`);
        }
      }
    };
    await Promise.all([0, 1, 2, 3].map(worker));
    expect(violations).toEqual([]);
    expect(gone.size).toBe(OPS);
    expect(outcomes.ok).toBeGreaterThan(0);

    // Nothing of the expired operations is left in the bucket.
    const left: string[] = [];
    for await (const object of raw.list("operations/")) if (ids.some((id) => object.key.startsWith(`operations/${id}/`))) left.push(object.key);
    expect(left).toEqual([]);

    const failed = await Promise.all(replicas.map((r) => metric(r, "artifacts_sweep_runs_total", 'outcome="failed"')));
    const runs = await Promise.all(replicas.map((r, i) => metric(r, "artifacts_sweep_runs_total", 'outcome="ok"').then((v) => v - runsBefore[i]!)));
    const deleted = await Promise.all(replicas.map((r, i) => metric(r, "artifacts_sweep_deleted_total", 'kind="operations"').then((v) => v - deletedBefore[i]!)));
    expect(failed).toEqual(replicas.map(() => 0));
    expect(runs.every((n) => n >= 2)).toBe(true);
    const summed = deleted.reduce((a, b) => a + b, 0);
    expect(summed).toBeGreaterThanOrEqual(OPS);
    for (const r of replicas) expect(r.output()).not.toMatch(/expiry sweep failed|"level":50/);
    console.log(
      `replicas: ${OPS} expired operations swept by ${REPLICAS} replicas at once (sweeps ${runs.join("/")}, deletedOperations ${deleted.join("+")} = ${summed}); ` +
        `downloads meanwhile: ${outcomes.ok} ok, ${outcomes.expired} 410, ${outcomes.notFound} 404, ${violations.length} other`,
    );
  });

  it("writers racing for one path through different replicas: exactly one wins each path, the others get 409", async () => {
    const grantee = wallet();
    const { operationId } = await writer.createOperation({ grantee: grantee.address, agent: "race" });
    const PATHS = 5;
    const RACERS = 6;
    const attempts = Array.from({ length: PATHS * RACERS }, (_, n) => ({ path: `p-${n % PATHS}.bin`, body: patternBytes(2000 + n, n + 1) }));
    const results = await Promise.all(
      attempts.map(({ path, body }) =>
        writer.upload(operationId, path, body).then(
          () => "won" as const,
          (error: { code?: string }) => (error.code === "conflict" ? ("lost" as const) : `failed: ${error.code}`),
        ),
      ),
    );
    expect(results.filter((r) => r !== "won" && r !== "lost")).toEqual([]);
    const reader = createGranteeClient({ baseUrl: lb.url, account: grantee });
    const listing = await reader.list(operationId);
    expect(listing.artifacts.map((a) => a.path).sort()).toEqual(Array.from({ length: PATHS }, (_, i) => `p-${i}.bin`));
    for (let p = 0; p < PATHS; p++) {
      const winners = attempts.filter((a, n) => a.path === `p-${p}.bin` && results[n] === "won");
      expect(winners).toHaveLength(1);
      expect(sha256(await collect(await reader.download(operationId, `p-${p}.bin`)))).toBe(sha256(winners[0]!.body));
    }
  });

  it("uploads racing a delete and an expiry leave nothing readable, and a later sweep leaves nothing behind", async () => {
    const grantee = wallet();
    const reader = createGranteeClient({ baseUrl: lb.url, account: grantee });
    const body = patternBytes(4000, 9);
    // A delete while 20 uploads are in flight, then the same id again: the earlier incarnation's entries never show.
    const { operationId: deleted } = await writer.createOperation({ grantee: grantee.address, operationId: `race-del-${Date.now()}` });
    const uploads = Array.from({ length: 20 }, (_, i) => writer.upload(deleted, `u-${i}.bin`, body).then(() => "ok", (e: { code?: string }) => e.code));
    await new Promise((r) => setTimeout(r, 30));
    await writer.deleteOperation(deleted).catch(() => {});
    const outcomes = await Promise.all(uploads);
    expect(outcomes.filter((o) => o !== "ok" && o !== "not_found" && o !== "conflict")).toEqual([]);
    await expect(reader.list(deleted)).rejects.toMatchObject({ code: "not_found" });
    await writer.createOperation({ grantee: grantee.address, operationId: deleted });
    expect((await reader.list(deleted)).artifacts).toEqual([]);
    // Uploads running past an expiry: each succeeds or is refused; the replicas' sweeps delete the operation.
    const { operationId: expiring } = await writer.createOperation({ grantee: grantee.address, agent: "race-exp", ttlSeconds: 2 });
    const late: string[] = [];
    const started = Date.now();
    for (let i = 0; Date.now() - started < 3500; i++) {
      late.push(await writer.upload(expiring, `e-${i}.bin`, body).then(() => "ok", (e: { code?: string }) => e.code ?? "?"));
    }
    expect(late.filter((o) => o !== "ok" && o !== "expired" && o !== "not_found")).toEqual([]);
    expect(late).toContain("ok");
    await expect(reader.list(expiring)).rejects.toMatchObject({ code: expect.stringMatching(/^(expired|not_found)$/) });
    // A day later, whatever the races left (entries without metadata, an earlier incarnation's) is collected.
    const sweeper = createArtifactStore(loadConfig({ ...bucket.env, ARTIFACTS_MASTER_KEY: TEST_MASTER_KEY, ARTIFACTS_S3_TIMEOUT_MS: "20000" }));
    try {
      await sweeper.sweepExpired({ now: new Date(Date.now() + 25 * 3600_000) });
    } finally {
      await sweeper.close();
    }
    const left: string[] = [];
    for await (const object of raw.list(`operations/${deleted}/`)) left.push(object.key);
    for await (const object of raw.list(`operations/${expiring}/`)) left.push(object.key);
    expect(left.filter((k) => !k.endsWith("/metadata.json") && !k.endsWith("/index.json"))).toEqual([]);
    expect(left).toContain(`operations/${deleted}/metadata.json`);
  });
});
