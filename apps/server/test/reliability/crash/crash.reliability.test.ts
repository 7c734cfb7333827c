/**
 * Crash points (issue 14): SIGKILL the server and the CLI at seeded event points, at least 100
 * times per run, restart, and check storage with an independent checker after each kill.
 *
 *   CRASH_SEED=<text>   replays a run (printed at the start and in the summary; default random)
 *   CRASH_SOAK=1        the long mode: 10x the kills (CRASH_KILLS overrides the total)
 *
 * Three lanes run side by side, each on its own storage: the server on local disk, the server on
 * S3 (moto behind a counting proxy), and the CLI (cleanup, migrate, rotate-key).
 */
import { randomBytes } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { SecretWatch } from "../harness.js";
import { cliLane } from "./cli-lane.js";
import type { LaneReport } from "./points.js";
import { serverLane } from "./server-lane.js";

const seed = process.env.CRASH_SEED ?? randomBytes(6).toString("hex");
const soak = process.env.CRASH_SOAK === "1";
const total = Number(process.env.CRASH_KILLS ?? (soak ? 1000 : 100));
const watch = new SecretWatch();

afterAll(() => {
  expect(watch.leaks()).toEqual([]);
});

describe(`crash points (CRASH_SEED=${seed})`, () => {
  it(`${total} SIGKILLs of the server and the CLI at seeded points: no invariant broken, nothing acknowledged lost`, { timeout: (soak ? 60 : 4) * 60_000 }, async () => {
    console.log(`[crash] CRASH_SEED=${seed}: ${total} kills (${soak ? "soak" : "CI"} mode)`);
    const started = Date.now();
    // Shares of the kills: the two server lanes (uploads, concurrent uploads) and the CLI lane.
    const quotas = { local: Math.ceil(total * 0.4), s3: Math.ceil(total * 0.3), cli: Math.ceil(total * 0.3) };
    const reports: LaneReport[] = await Promise.all([
      serverLane("local", quotas.local, seed, watch, { large: soak }),
      serverLane("s3", quotas.s3, seed, watch, { large: soak }),
      cliLane(quotas.cli, seed, watch),
    ]);
    const sum = (f: (r: LaneReport) => number) => reports.reduce((n, r) => n + f(r), 0);
    const byKind: Record<string, number> = {};
    for (const r of reports) for (const [k, n] of Object.entries(r.byKind)) byKind[k] = (byKind[k] ?? 0) + n;
    for (const r of reports) for (const line of r.log) console.log(`[crash] ${line}`);
    console.log(
      `[crash] CRASH_SEED=${seed}: ${sum((r) => r.kills)} kills survived in ${sum((r) => r.trials)} trials, ` +
        `${sum((r) => r.violations.length)} invariant violations, ${sum((r) => r.lost.length)} artifacts lost, ` +
        `${sum((r) => r.unexpected.length)} unexpected answers, ${sum((r) => r.decrypted)} objects decrypted by the checker, ` +
        `${sum((r) => r.servedAfterRestart)} artifacts read back through a restarted server, ` +
        `${Math.round((Date.now() - started) / 1000)} s; by kind: ${JSON.stringify(byKind)}`,
    );
    expect(reports.flatMap((r) => r.violations)).toEqual([]);
    expect(reports.flatMap((r) => r.lost)).toEqual([]);
    expect(reports.flatMap((r) => r.unexpected)).toEqual([]);
    expect(sum((r) => r.kills)).toBeGreaterThanOrEqual(total);
    expect(sum((r) => r.servedAfterRestart)).toBeGreaterThan(0);
  });
});
