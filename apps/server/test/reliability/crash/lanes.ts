/**
 * The crash harness's lanes (issue 14). A lane owns one storage and runs trials one after another:
 * each trial starts a process (the server, or the CLI), gives it work, SIGKILLs it at a seeded
 * event point, restarts, and runs the independent checker (checker.ts). Event points:
 *
 * - `body:N`: the harness is the client and kills the server once it has sent N bytes of a body;
 * - `s3:k:before|after`: the k-th storage request through a loopback proxy in front of moto, killed
 *   when it arrives (never forwarded) or once moto answered it (the answer never delivered);
 * - `fs:k:before|after`: the k-th state-changing filesystem call of the process under the local
 *   root, counted by fs-kill.mjs preloaded into the child only.
 *
 * Every choice comes from a PRNG seeded by (seed, lane), so one seed replays the same trials and
 * kill points on any machine; only the interleaving of concurrent uploads is the machine's.
 */
import { spawn } from "node:child_process";
import { mkdirSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { createArtifactStore, loadConfig, openBackend } from "@personal-server/artifacts";
import { createWriterClient } from "@personal-server/artifacts/client";
import { startRecordingProxy, type RecordingProxy } from "../../../../../test-support/proxy.js";
import { freshBucket, motoEndpoint, startDanglingMultipartUpload } from "../../../../../test-support/s3.js";
import { run as runCli } from "../../../../cli/src/main.js";
import {
  appCommand,
  MASTER_KEY,
  pacedUpload,
  patternBytes,
  sha256,
  spawnServer,
  tempDir,
  wallet,
  WRITER_TOKEN,
  type ChildServer,
  type SecretWatch,
} from "../harness.js";
import { checkStorage, lostWork, localView, s3View, type CheckResult, type Expected, type StorageView } from "./checker.js";

const MIB = 1024 * 1024;
const HOUR = 3600 * 1000;
const FS_KILL = pathToFileURL(resolve(import.meta.dirname, "fs-kill.mjs")).href;
/** Master keys of the rotate-key trials (obviously fake). */
const OLD_KEY = `old:${Buffer.alloc(32, 0x4f).toString("base64")}`;
const NEW_KEY = `new:${Buffer.alloc(32, 0x4e).toString("base64")}`;
const keyMap = (...specs: string[]): Map<string, Buffer> =>
  new Map(specs.map((s) => [s.slice(0, s.indexOf(":")), Buffer.from(s.slice(s.indexOf(":") + 1), "base64")]));
const DEFAULT_KEYS = keyMap(`default:${MASTER_KEY}`);

/** What a lane reports. */
export interface LaneReport {
  lane: string;
  trials: number;
  kills: number;
  /** Kills by kind of work and kind of event point. */
  byKind: Record<string, number>;
  violations: string[];
  lost: string[];
  /** Answers that are wrong even for a crash test (a 5xx or 409 from a server that was not being killed). */
  unexpected: string[];
  /** Every trial: kind, point and where the kill landed, for reproducing one. */
  log: string[];
  decrypted: number;
}

// ---- seeded choices -----------------------------------------------------------------------------

export function rng(seed: string): () => number {
  let h = 1779033703 ^ seed.length;
  for (let i = 0; i < seed.length; i++) h = Math.imul(h ^ seed.charCodeAt(i), 3432918353);
  let a = (h << 13) | (h >>> 19);
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const int = (r: () => number, lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));
const pick = <T>(r: () => number, items: readonly T[]): T => items[Math.floor(r() * items.length)]!;

type Point = { kind: "body"; upload: number; bytes: number } | { kind: "s3" | "fs"; k: number; when: "before" | "after" };
const describePoint = (p: Point): string => (p.kind === "body" ? `body:${p.bytes}@upload${p.upload}` : `${p.kind}:${p.k}:${p.when}`);

/** Draws a storage-event point: the k-th event, before or after it. */
const eventPoint = (r: () => number, kind: "s3" | "fs", kmax: number): Point => ({ kind, k: int(r, 1, kmax), when: r() < 0.5 ? "before" : "after" });

function fsKillEnv(point: Point | undefined, root: string): Record<string, string> {
  if (point?.kind !== "fs") return {};
  return { NODE_OPTIONS: `--import=${FS_KILL}`, CRASH_FS_ROOT: root, CRASH_FS_KILL_AT: String(point.k), CRASH_FS_WHEN: point.when, CRASH_FS_TRACE: "1" };
}

/** Counts storage requests through the proxy and runs `kill` at the chosen one. */
function armProxy(proxy: RecordingProxy, point: Point | undefined, kill: () => void): { count(): number; fired(): string | undefined } {
  let n = 0;
  let target: object | undefined;
  let fired: string | undefined;
  proxy.tap = (at, request) => {
    if (fired !== undefined) return "hold";
    if (at === "request") n++;
    if (point?.kind !== "s3") return;
    if (at === "request" && n === point.k) {
      target = request;
      if (point.when === "before") {
        fired = `#${n} before ${request.method} ${request.path.split("?")[0]}`;
        kill();
        return "hold";
      }
    }
    if (at === "response" && request === target && point.when === "after") {
      fired = `#${point.k} after ${request.method} ${request.path.split("?")[0]}`;
      kill();
      return "hold";
    }
  };
  return { count: () => n, fired: () => fired };
}

// ---- lane bookkeeping -----------------------------------------------------------------------------

function newReport(lane: string): LaneReport {
  return { lane, trials: 0, kills: 0, byKind: {}, violations: [], lost: [], unexpected: [], log: [], decrypted: 0 };
}

function record(report: LaneReport, label: string, result: CheckResult | CheckResult[], lost: string[]): void {
  for (const r of Array.isArray(result) ? result : [result]) {
    report.violations.push(...r.violations.map((v) => `${label}: ${v}`));
    report.decrypted += r.decrypted;
  }
  report.lost.push(...lost.map((l) => `${label}: ${l}`));
}

function countKill(report: LaneReport, work: string, point: Point["kind"] | "idle"): void {
  report.kills++;
  const key = `${work} ${point}`;
  report.byKind[key] = (report.byKind[key] ?? 0) + 1;
}

// ---- server lanes: streamed uploads, and concurrent uploads to one operation ---------------------

/**
 * The server on one storage (`local`: a directory; `s3`: a moto bucket behind the counting proxy).
 * Trials alternate between streamed uploads (killed after byte N of a body, or at a storage event)
 * and 4-6 concurrent uploads to one new operation (coalesced metadata commits). Operations and
 * artifacts accumulate over the lane, so every kill is checked against everything earlier too.
 */
export async function serverLane(storage: "local" | "s3", quota: number, seed: string, watch: SecretWatch): Promise<LaneReport> {
  const report = newReport(`server-${storage}`);
  const r = rng(`${seed}:${report.lane}`);
  const expected: Expected = { operations: new Map() };
  let env: Record<string, string>;
  let view: StorageView;
  let proxy: RecordingProxy | undefined;
  let root = "";
  if (storage === "local") {
    root = tempDir("crash-server");
    env = { ARTIFACTS_LOCAL_DIR: root, ARTIFACTS_MASTER_KEY: MASTER_KEY, ARTIFACTS_WRITER_TOKEN: WRITER_TOKEN };
    view = localView(root);
  } else {
    const bucket = await freshBucket(motoEndpoint(), "crash-server");
    proxy = await startRecordingProxy(motoEndpoint());
    env = { ...bucket.env, S3_ENDPOINT: proxy.url, ARTIFACTS_MASTER_KEY: MASTER_KEY, ARTIFACTS_WRITER_TOKEN: WRITER_TOKEN };
    view = s3View(motoEndpoint(), bucket.bucket);
  }
  const grantee = wallet().address;
  let current: string | undefined;
  let alive: ChildServer | undefined;
  try {
    for (let trial = 0; report.kills < quota && trial < quota * 2; trial++) {
      report.trials++;
      const t0 = Date.now();
      const concurrent = r() < 0.35;
      const newOperation = r() < 0.3; // drawn every trial, so later draws do not depend on outcomes
      const work = concurrent ? "concurrent uploads" : "streamed upload";
      const eventKind = storage === "s3" ? "s3" : "fs";
      const plan = concurrent
        ? { create: true, sizes: Array.from({ length: int(r, 4, 6) }, () => (r() < 0.5 ? int(r, 1, 200_000) : int(r, MIB + 1, 1.6 * MIB))) }
        : { create: current === undefined || newOperation, sizes: Array.from({ length: int(r, 1, 2) }, () => (r() < 0.3 ? int(r, 1, MIB) : int(r, MIB + 1, 2.5 * MIB))) };
      let point: Point;
      if (!concurrent && r() < 0.4) {
        const upload = int(r, 0, plan.sizes.length - 1);
        point = { kind: "body", upload, bytes: int(r, 0, plan.sizes[upload]! - 1) };
      } else {
        // Upper bounds from calibration runs: about the events one trial of this kind makes.
        const kmax = storage === "s3" ? (concurrent ? 11 : 6) : concurrent ? 70 : 40;
        point = eventPoint(r, eventKind, kmax);
      }
      const label = `${report.lane} trial ${trial} (${work}, ${describePoint(point)})`;

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
          const created = await writer.createOperation({ grantee, operationId, ttlSeconds: 86_400 });
          op.expiresAt = Date.parse(created.expiresAt);
          op.acknowledged = true;
          current = operationId;
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
  } finally {
    alive?.kill("SIGKILL");
    await alive?.exited;
    await proxy?.close();
    if (root) rmSync(root, { recursive: true, force: true });
  }
  return report;
}

// ---- CLI lane: cleanup (the sweep), migrate, rotate-key -----------------------------------------

interface CliChild {
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr: () => string;
  kill(): void;
}

function spawnCliChild(argv: string[], env: Record<string, string>, cwd: string): CliChild {
  const child = spawn(process.execPath, [...appCommand("cli").args, ...argv], {
    cwd,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? cwd, ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
    child.once("close", (code, signal) => res({ code, signal })),
  );
  return { exited, stderr: () => stderr, kill: () => child.kill("SIGKILL") };
}

/** The CLI in this process, to finish the work after a kill (the "restart"). */
async function finishWithCli(argv: string[], env: Record<string, string>): Promise<{ code: number; out: string }> {
  let out = "";
  const sink = { write: (s: string) => (out += s), isTTY: false };
  const code = await runCli(argv, { stdout: sink, stderr: sink, env });
  return { code, out };
}

type Storage = { env: Record<string, string>; view: StorageView; root: string; proxy?: RecordingProxy; bucket?: string };

async function freshStorage(kind: "local" | "s3", label: string): Promise<Storage> {
  if (kind === "local") {
    const root = join(tempDir(label), "store");
    mkdirSync(root, { mode: 0o700 });
    return { env: { ARTIFACTS_LOCAL_DIR: root }, view: localView(root), root };
  }
  const bucket = await freshBucket(motoEndpoint(), label);
  const proxy = await startRecordingProxy(motoEndpoint());
  return { env: { ...bucket.env, S3_ENDPOINT: proxy.url }, view: s3View(motoEndpoint(), bucket.bucket), root: "", proxy, bucket: bucket.bucket };
}

/** Direct storage (never through the proxy) for preparing a trial with the SDK. */
function directEnv(s: Storage): Record<string, string> {
  return s.bucket === undefined ? s.env : { ...s.env, S3_ENDPOINT: motoEndpoint() };
}

/** Operations with 1-3 artifacts (one streamed), written with the SDK, recorded as acknowledged. */
async function populate(
  env: Record<string, string>,
  expected: Expected,
  r: () => number,
  count: number,
  options: { expired?: boolean } = {},
): Promise<string[]> {
  const clock = options.expired ? () => new Date(Date.now() - 48 * HOUR) : () => new Date();
  const store = createArtifactStore(loadConfig(env), { now: clock });
  const ids: string[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const op = await store.createOperation({ grantee: wallet().address, ttlSeconds: options.expired ? 3600 : 86_400 });
      const artifacts = new Map<string, { sha256: string; acknowledged: boolean }>();
      expected.operations.set(op.operationId, { acknowledged: true, expiresAt: Date.parse(op.expiresAt), artifacts });
      for (let j = 0, n = int(r, 1, 3); j < n; j++) {
        // Mostly small (moto is slow to take large bodies); now and then one over a chunk.
        const body = patternBytes(r() < 0.2 ? int(r, MIB + 1, 1.3 * MIB) : int(r, 1, 100_000), int(r, 1, 1e9));
        const path = `a/${j}.bin`;
        await store.putArtifact(op.operationId, path, body);
        artifacts.set(path, { sha256: sha256(body), acknowledged: true });
      }
      ids.push(op.operationId);
    }
  } finally {
    await store.close();
  }
  return ids;
}

/** Sets every file under `root` (temp files included) 25 h into the past: past every grace period. */
function age(root: string): void {
  const past = (Date.now() - 25 * HOUR) / 1000;
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else utimesSync(path, past, past);
    }
  };
  walk(root);
}

type CliWork = "cleanup" | "migrate" | "rotate-key";

/**
 * The CLI's long-running commands, each on fresh storage prepared with the SDK: `cleanup` (the
 * sweep: expired operations, orphans and leftovers past their grace, on local or S3), `migrate`
 * (local to S3, half of the time with --delete-source) and `rotate-key` (local or S3). After the
 * kill the checker runs on the crash state; then the command runs again to completion and the
 * checker confirms what finishing promises.
 */
export async function cliLane(quota: number, seed: string, watch: SecretWatch): Promise<LaneReport> {
  const report = newReport("cli");
  const r = rng(`${seed}:${report.lane}`);
  const cwd = tempDir("crash-cli-cwd");
  for (let trial = 0; report.kills < quota && trial < quota * 2; trial++) {
    report.trials++;
    const t0 = Date.now();
    const work = pick<CliWork>(r, ["cleanup", "migrate", "rotate-key"]);
    const kind: "local" | "s3" = work === "migrate" ? "s3" : r() < 0.5 ? "local" : "s3";
    const expected: Expected = { operations: new Map() };
    const target = await freshStorage(kind, `crash-${work}`);
    let source: Storage | undefined;
    let argv: string[];
    let keys = DEFAULT_KEYS;
    let env: Record<string, string>;
    const deleteSource = work === "migrate" && r() < 0.5;
    if (work === "cleanup") {
      env = { ...target.env, ARTIFACTS_MASTER_KEY: MASTER_KEY };
      const prepare = { ...directEnv(target), ARTIFACTS_MASTER_KEY: MASTER_KEY };
      await populate(prepare, expected, r, int(r, 1, 3), { expired: true });
      const live = await populate(prepare, expected, r, int(r, 1, 2));
      // Leftovers: an unreferenced object in a live operation, a prefix without metadata, a temp file / multipart upload.
      const raw = await openBackend(loadConfig(prepare).storage, { timeoutMs: 20_000, connectTimeoutMs: 5000 });
      await raw.put(`operations/${live[0]}/artifacts/orphan.bin`, patternBytes(5000, 3));
      await raw.put(`operations/ghost_${trial}/artifacts/x.bin`, patternBytes(7000, 4));
      await raw.close();
      if (kind === "local") {
        mkdirSync(join(target.root, ".tmp"), { recursive: true, mode: 0o700 });
        writeFileSync(join(target.root, ".tmp", "leftover.part"), patternBytes(3000, 5));
        age(target.root);
      } else await startDanglingMultipartUpload(motoEndpoint(), target.bucket!, `operations/${live[0]}/artifacts/dangling.bin`);
      argv = ["cleanup", "--json"];
    } else if (work === "migrate") {
      source = await freshStorage("local", "crash-migrate-src");
      env = { ...target.env, ARTIFACTS_MASTER_KEY: MASTER_KEY };
      const srcEnv = { ...source.env, ARTIFACTS_MASTER_KEY: MASTER_KEY };
      await populate(srcEnv, expected, r, int(r, 2, 4));
      await populate(srcEnv, expected, r, 1, { expired: true });
      argv = ["migrate", "--from", `local:${source.root}`, "--to", "current", ...(deleteSource ? ["--delete-source"] : []), "--json"];
    } else {
      await populate({ ...directEnv(target), ARTIFACTS_MASTER_KEYS: OLD_KEY }, expected, r, int(r, 2, 4));
      env = { ...target.env, ARTIFACTS_MASTER_KEYS: `${NEW_KEY},${OLD_KEY}` };
      keys = keyMap(NEW_KEY, OLD_KEY);
      argv = ["rotate-key", "--json"];
    }
    // Upper bounds from calibration runs: about the events one run of the command makes here.
    const kmax = { cleanup: kind === "s3" ? 8 : 32, migrate: 24, "rotate-key": kind === "s3" ? 10 : 20 }[work];
    const point = eventPoint(r, kind === "s3" ? "s3" : "fs", kmax);
    const label = `cli trial ${trial} (${work}${deleteSource ? " --delete-source" : ""} on ${kind}, ${describePoint(point)})`;

    const t1 = Date.now();
    const child = spawnCliChild(argv, { ...env, ...fsKillEnv(point, target.root) }, cwd);
    const tap = target.proxy ? armProxy(target.proxy, point, child.kill) : undefined;
    const exit = await child.exited;
    if (target.proxy) target.proxy.tap = undefined;
    const landed = tap?.fired() ?? /crash-point: (.*)/.exec(child.stderr())?.[1];
    const views = source ? [target.view, source.view] : [target.view];
    if (exit.signal === "SIGKILL") {
      countKill(report, work, point.kind);
      report.log.push(`${label}: killed ${landed ?? "?"} (prepare ${t1 - t0} ms, run and kill ${Date.now() - t1} ms)`);
      // The crash state itself: nothing half-done is visible, nothing acknowledged is gone.
      const results = await Promise.all(views.map((v) => checkStorage(v, expected, { masterKeys: keys, now: Date.now() })));
      record(report, `${label}, after the kill`, results, lostWork(expected, results, Date.now()));
    } else {
      const events = tap ? tap.count() : (child.stderr().match(/^crash-event:/gm) ?? []).length;
      report.log.push(`${label}: finished before the event (exit ${exit.code}, ${events} events)`);
      if (exit.code !== 0) report.unexpected.push(`${label}: exit ${exit.code}: ${child.stderr().slice(-500)}`);
    }

    // Restart: the same command to completion, then what finishing promises.
    watch.see(`crash ${label} stderr`, child.stderr());
    const again = await finishWithCli(argv, env);
    watch.see(`crash ${label} rerun output`, again.out);
    if (again.code !== 0) report.unexpected.push(`${label}: the rerun exited ${again.code}: ${again.out.slice(-800)}`);
    const now = Date.now();
    const done = {
      masterKeys: keys,
      now,
      ...(work === "cleanup" ? { sweptAt: { orphanGraceMs: 24 * HOUR, temporaryGraceMs: kind === "local" ? HOUR : 24 * HOUR } } : {}),
      ...(work === "rotate-key" ? { kid: "new" } : {}),
    };
    const finals = await Promise.all([checkStorage(target.view, expected, done), ...(source ? [checkStorage(source.view, expected, { masterKeys: keys, now })] : [])]);
    // After a finished migration every live operation is on the target, whatever the source still holds.
    record(report, `${label}, after the rerun`, finals, lostWork(expected, work === "migrate" ? [finals[0]!] : finals, now));
    if (deleteSource && finals[1] !== undefined && finals[1].operations.size > 0) {
      report.violations.push(`${label}, after the rerun: ${finals[1].operations.size} operation(s) still in the source after --delete-source`);
    }
    await target.proxy?.close();
    for (const s of [target, source]) if (s?.root) rmSync(dirname(s.root), { recursive: true, force: true });
    report.log.push(`${label}: checked, rerun and checked again (${Date.now() - t0} ms in all)`);
  }
  rmSync(cwd, { recursive: true, force: true });
  return report;
}
