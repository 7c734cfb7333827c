/** The crash harness's CLI lane (issue 14): see points.ts for the event points. */
import { spawn } from "node:child_process";
import { mkdirSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { createArtifactStore, loadConfig } from "@personal-server/artifacts";
import { openBackend } from "@personal-server/artifacts/internal";
import { startRecordingProxy, type RecordingProxy } from "../../../../../test-support/proxy.js";
import { freshBucket, motoEndpoint, startDanglingMultipartUpload } from "../../../../../test-support/s3.js";
import { run as runCli } from "../../../../cli/src/main.js";
import { appCommand, MASTER_KEY, patternBytes, sha256, tempDir, wallet, type SecretWatch } from "../harness.js";
import { checkStorage, lostWork, localView, s3View, type Expected, type StorageView } from "./checker.js";
import {
  armProxy,
  countKill,
  DEFAULT_KEYS,
  describePoint,
  eventPoint,
  fsKillEnv,
  HOUR,
  int,
  keyMap,
  MIB,
  NEW_KEY,
  newReport,
  OLD_KEY,
  pick,
  record,
  rng,
  type LaneReport,
} from "./points.js";

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
  const legacy = createArtifactStore(loadConfig(env), { now: clock, createLayout: 1 });
  const ids: string[] = [];
  try {
    for (let i = 0; i < count; i++) {
      // Layouts 1 and 2 alike: the CLI's kills land on both.
      const op = await (i % 2 === 0 ? store : legacy).createOperation({ grantee: wallet().address, ttlSeconds: options.expired ? 3600 : 86_400 });
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
    await Promise.all([store.close(), legacy.close()]);
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
    if (target.proxy) watch.s3Signatures(target.proxy.requests);
    await target.proxy?.close();
    for (const s of [target, source]) if (s?.root) rmSync(dirname(s.root), { recursive: true, force: true });
    report.log.push(`${label}: checked, rerun and checked again (${Date.now() - t0} ms in all)`);
  }
  rmSync(cwd, { recursive: true, force: true });
  return report;
}

