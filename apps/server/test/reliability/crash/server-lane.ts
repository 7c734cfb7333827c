/** The crash harness's server lanes (issue 14): see points.ts for the event points. */
import { rmSync } from "node:fs";
import { createArtifactStore, loadConfig } from "@personal-server/artifacts";
import { createGranteeClient, createWriterClient } from "@personal-server/artifacts/client";
import { startRecordingProxy, type RecordingProxy } from "../../../../../test-support/proxy.js";
import { freshBucket, motoEndpoint } from "../../../../../test-support/s3.js";
import {
  collect,
  MASTER_KEY,
  pacedUpload,
  patternBytes,
  sha256,
  spawnServer,
  tempDir,
  wallet,
  watchedSigner,
  WRITER_TOKEN,
  type ChildServer,
  type SecretWatch,
} from "../harness.js";
import { checkStorage, lostWork, localView, s3View, type Expected, type StorageView } from "./checker.js";
import { armProxy, countKill, DEFAULT_KEYS, describePoint, eventPoint, fsKillEnv, HOUR, int, MIB, newReport, record, rng, type LaneReport, type Point } from "./points.js";

/**
 * The server on one storage (`local`: a directory; `s3`: a moto bucket behind the counting proxy).
 * Trials alternate between streamed uploads (killed after byte N of a body, or at a storage event)
 * and 4-6 concurrent uploads to one new operation. Half the new operations are layout 2 (created
 * through the server), half layout 1 (written beside it by the kept v1 writer, as the release
 * before layout 2 left them; their uploads take the coalesced metadata commits), so the kills are
 * split between the two. Operations and artifacts accumulate over the lane, so every kill is
 * checked against everything earlier too.
 */
export async function serverLane(
  storage: "local" | "s3",
  quota: number,
  seed: string,
  watch: SecretWatch,
  options: { large?: boolean } = {},
): Promise<LaneReport> {
  const report = newReport(`server-${storage}`);
  const r = rng(`${seed}:${report.lane}`);
  const expected: Expected = { operations: new Map() };
  let env: Record<string, string>;
  /** The same storage, not through the counting proxy: where layout 1 operations are made. */
  let direct: Record<string, string>;
  let view: StorageView;
  let proxy: RecordingProxy | undefined;
  let root = "";
  if (storage === "local") {
    root = tempDir("crash-server");
    env = { ARTIFACTS_LOCAL_DIR: root, ARTIFACTS_MASTER_KEY: MASTER_KEY, ARTIFACTS_WRITER_TOKEN: WRITER_TOKEN };
    direct = env;
    view = localView(root);
  } else {
    const bucket = await freshBucket(motoEndpoint(), "crash-server");
    proxy = await startRecordingProxy(motoEndpoint());
    env = { ...bucket.env, S3_ENDPOINT: proxy.url, ARTIFACTS_MASTER_KEY: MASTER_KEY, ARTIFACTS_WRITER_TOKEN: WRITER_TOKEN };
    direct = { ...bucket.env, ARTIFACTS_MASTER_KEY: MASTER_KEY };
    view = s3View(motoEndpoint(), bucket.bucket);
  }
  const account = wallet();
  const grantee = account.address;
  let current: string | undefined;
  let currentLayout: 1 | 2 = 2;
  let alive: ChildServer | undefined;
  try {
    for (let trial = 0; report.kills < quota && trial < quota * 2; trial++) {
      report.trials++;
      const t0 = Date.now();
      const concurrent = r() < 0.35;
      const newOperation = r() < 0.3; // drawn every trial, so later draws do not depend on outcomes
      const drawnLayout: 1 | 2 = r() < 0.5 ? 1 : 2;
      const eventKind = storage === "s3" ? "s3" : "fs";
      const plan = concurrent
        ? { create: true, sizes: Array.from({ length: int(r, 4, 6) }, () => (r() < 0.5 ? int(r, 1, 200_000) : int(r, MIB + 1, 1.6 * MIB))) }
        : {
            create: current === undefined || newOperation,
            sizes: Array.from({ length: int(r, 1, 2) }, () => {
              const size = r() < 0.3 ? int(r, 1, MIB) : int(r, MIB + 1, 2.5 * MIB);
              // In the soak, now and then one past the S3 multipart threshold (moto is too slow for these in CI).
              return r() < 0.1 && options.large ? int(r, 9 * MIB, 10 * MIB) : size;
            }),
          };
      const layout = plan.create ? drawnLayout : currentLayout;
      const work = `${concurrent ? "concurrent uploads" : "streamed upload"}, layout ${layout}`;
      let point: Point;
      if (!concurrent && r() < 0.4) {
        const upload = int(r, 0, plan.sizes.length - 1);
        point = { kind: "body", upload, bytes: int(r, 0, plan.sizes[upload]! - 1) };
      } else {
        // Upper bounds from calibration runs: about the events one trial of this kind makes.
        const kmax = storage === "s3" ? (concurrent ? 11 : 6) : concurrent ? 70 : 30;
        point = eventPoint(r, eventKind, kmax);
      }
      const sizes = plan.sizes.map((n) => (n < MIB ? `${Math.ceil(n / 1024)} KiB` : `${(n / MIB).toFixed(1)} MiB`)).join(" + ");
      const label = `${report.lane} trial ${trial} (${work} of ${sizes}, ${describePoint(point)})`;

      const tPlan = Date.now();
      const server = await spawnServer({ ...env, ...fsKillEnv(point, root) }, watch, `crash ${report.lane}`);
      const t1 = Date.now();
      alive = server;
      const killServer = (): void => server.kill("SIGKILL");
      const tap = proxy ? armProxy(proxy, point, killServer) : undefined;
      const writer = createWriterClient({ baseUrl: server.url, token: WRITER_TOKEN });
      let killedByHarness = false;
      const dead = server.exited.then(() => true);

      const workload = async (): Promise<void> => {
        if (plan.create) {
          // An explicit id, recorded before asking: a create killed before its 201 may still have happened.
          const operationId = `crash_${storage}_${seed.replace(/[^a-z0-9]/gi, "").toLowerCase().slice(0, 16)}_${trial}`;
          const op = { acknowledged: false, expiresAt: Date.now() + 24 * HOUR, artifacts: new Map() };
          expected.operations.set(operationId, op);
          const created =
            layout === 2
              ? await writer.createOperation({ grantee, operationId, ttlSeconds: 86_400 })
              : await withV1Writer(direct, (store) => store.createOperation({ grantee, operationId, ttlSeconds: 86_400 }));
          op.expiresAt = Date.parse(created.expiresAt);
          op.acknowledged = true;
          current = operationId;
          currentLayout = layout;
        }
        const operationId = current!;
        const artifacts = expected.operations.get(operationId)!.artifacts;
        const bodies = plan.sizes.map((size, i) => ({ path: `t${trial}/u${i}.bin`, body: patternBytes(size, trial * 16 + i + 1) }));
        for (const b of bodies) artifacts.set(b.path, { sha256: sha256(b.body), acknowledged: false });
        if (concurrent) {
          const outcomes = await Promise.allSettled(
            bodies.map(async (b) => {
              await writer.upload(operationId, b.path, b.body);
              artifacts.get(b.path)!.acknowledged = true;
            }),
          );
          const failed = outcomes.find((o) => o.status === "rejected");
          if (failed) throw (failed as PromiseRejectedResult).reason;
          return;
        }
        for (const [i, b] of bodies.entries()) {
          const upload = pacedUpload(server.url, `/api/v1/operations/${operationId}/artifacts/${b.path}`, {
            authorization: `Bearer ${WRITER_TOKEN}`,
            "content-type": "application/octet-stream",
          });
          const stopAt = point.kind === "body" && point.upload === i ? point.bytes : b.body.length;
          for (let off = 0; off < stopAt; off += 64 * 1024) await upload.write(b.body.subarray(off, Math.min(stopAt, off + 64 * 1024)));
          if (stopAt < b.body.length) {
            killedByHarness = true;
            killServer();
            await upload.response.catch(() => {});
            return;
          }
          upload.end();
          const answer = await upload.response;
          if (answer.status !== 201) throw Object.assign(new Error(`HTTP ${answer.status} ${JSON.stringify(answer.json)}`), { status: answer.status });
          artifacts.get(b.path)!.acknowledged = true;
        }
      };
      const outcome = await workload().then(
        () => undefined,
        (error: unknown) => error,
      );
      // A failure while the server was alive and not being killed is wrong even in a crash test.
      const killed =
        killedByHarness ||
        tap?.fired() !== undefined ||
        (await Promise.race([dead, new Promise<false>((res) => setTimeout(() => res(false), 1000))]));
      if (outcome !== undefined && !killed) report.unexpected.push(`${label}: ${String(outcome)}`);
      let landed = tap?.fired() ?? server.lines.find((l) => l.startsWith("crash-point:"))?.slice("crash-point: ".length);
      if (killedByHarness) landed = `after byte ${point.kind === "body" ? point.bytes : "?"} of upload ${point.kind === "body" ? point.upload : "?"}`;
      if (landed === undefined) {
        // The work finished before the event came: kill it idle, which is a crash point too.
        landed = `after the work (${tap ? tap.count() : server.lines.filter((l) => l.startsWith("crash-event:")).length} events)`;
        killServer();
      }
      const exit = await server.exited;
      if (exit.signal !== "SIGKILL") report.unexpected.push(`${label}: the server exited with ${JSON.stringify(exit)}, not SIGKILL`);
      countKill(report, work, landed.startsWith("after the work") ? "idle" : point.kind);
      if (proxy) proxy.tap = undefined;
      const t2 = Date.now();
      const result = await checkStorage(view, expected, { masterKeys: DEFAULT_KEYS, now: Date.now() });
      report.log.push(`${label}: killed ${landed} (plan ${tPlan - t0} ms, start ${t1 - tPlan} ms, work and kill ${t2 - t1} ms, check ${Date.now() - t2} ms)`);
      record(report, label, result, lostWork(expected, [result], Date.now()));
    }
    // Last, the product's own read path after all those kills: a restarted server serves a
    // seeded sample of the acknowledged artifacts byte for byte.
    const server = await spawnServer(env, watch, `crash ${report.lane} final`);
    alive = server;
    const reader = createGranteeClient({ baseUrl: server.url, account: watchedSigner(account, watch) });
    const acknowledged = [...expected.operations].flatMap(([id, op]) =>
      [...op.artifacts].filter(([, a]) => a.acknowledged).map(([path, a]) => ({ id, path, sha: a.sha256 })),
    );
    for (let i = 0; i < 12 && acknowledged.length > 0; i++) {
      const { id, path, sha } = acknowledged.splice(int(r, 0, acknowledged.length - 1), 1)[0]!;
      const got = await reader.download(id, path).then(collect, (e: unknown) => e as Error);
      if (got instanceof Error) report.violations.push(`${report.lane} final read: ${id}/${path} fails through the server: ${got.message}`);
      else if (sha256(got) !== sha) report.violations.push(`${report.lane} final read: ${id}/${path} reads back other bytes through the server`);
      else report.servedAfterRestart++;
    }
  } finally {
    alive?.kill("SIGKILL");
    await alive?.exited;
    if (proxy) watch.s3Signatures(proxy.requests);
    await proxy?.close();
    if (root) rmSync(root, { recursive: true, force: true });
  }
  return report;
}


/** The release before layout 2's operations, made by the store's kept v1 writer. */
async function withV1Writer<T>(env: Record<string, string>, work: (store: ReturnType<typeof createArtifactStore>) => Promise<T>): Promise<T> {
  const store = createArtifactStore(loadConfig(env), { createLayout: 1 });
  try {
    return await work(store);
  } finally {
    await store.close();
  }
}
