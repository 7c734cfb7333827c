/**
 * `pnpm bench [--quick] [--only 1,5] [--runs N] [--out file]`: every figure of docs/performance.md's
 * "Performance" table, each as a ratio against a baseline measured in the same invocation
 * (alternating ours and baseline, median of the timed runs after a warm-up). Prints one markdown
 * table and writes it, with every sample, to bench/results/latest.json (quick runs:
 * bench/results/quick.json; runs of some rows: bench/results/partial.json, both ignored by git). Exits 1 when a row failed to run (not when a target is missed).
 */
import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { BenchContext, RowResult } from "./harness.js";
import { renderTable, type BenchReport } from "./report.js";
import { ROWS, type RowSpec } from "./rows/index.js";

const USAGE = `usage: pnpm bench [--quick] [--only 1,5,...] [--runs N] [--out file]
  --quick    every row on small sizes (about a minute); writes bench/results/quick.json
  --only     run only these rows (numbers as in the table)
  --runs     timed runs per side after the warm-up (default 5; 3 with --quick)
  --out      where to write the JSON results (default bench/results/latest.json; quick.json with --quick,
             partial.json with --only: only a full run replaces the committed one)`;

interface Options {
  quick: boolean;
  only: Set<string> | undefined;
  runs: number;
  out: string | undefined;
}

function parseArgs(argv: string[]): Options {
  const options: Options = { quick: false, only: undefined, runs: 0, out: undefined };
  const args = argv.filter((a) => a !== "--");
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i]!.split(/=(.*)/s, 2) as [string, string | undefined];
    const value = () => {
      const v = inline ?? args[++i];
      if (v === undefined) throw new Error(`${flag} needs a value\n${USAGE}`);
      return v;
    };
    if (flag === "--quick") options.quick = true;
    else if (flag === "--only") options.only = new Set(value().split(",").map((s) => s.trim()));
    else if (flag === "--runs") {
      options.runs = Number(value());
      if (!Number.isInteger(options.runs) || options.runs < 1) throw new Error(`--runs must be a whole number >= 1\n${USAGE}`);
    } else if (flag === "--out") options.out = resolve(value());
    else if (flag === "--help" || flag === "-h") {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else throw new Error(`unknown argument ${args[i]}\n${USAGE}`);
  }
  // A quick run checks that every row still works, on small sizes and fewer runs; the table
  // in docs/performance.md comes from a full run (at least 5 timed runs per side).
  if (options.runs === 0) options.runs = options.quick ? 3 : 5;
  if (options.only) {
    const unknown = [...options.only].filter((id) => !ROWS.some((r) => r.id === id));
    if (unknown.length > 0) throw new Error(`no such row: ${unknown.join(", ")} (rows are ${ROWS.map((r) => r.id).join(", ")})`);
  }
  return options;
}

async function main(): Promise<number> {
  const options = parseArgs(process.argv.slice(2));
  const benchDir = fileURLToPath(new URL("../", import.meta.url));
  const out = options.out ?? join(benchDir, "results", options.quick ? "quick.json" : options.only ? "partial.json" : "latest.json");
  const started = new Date();
  const loadBefore = loadavg()[0]!;
  const dir = await mkdtemp(join(tmpdir(), "psa-bench-"));
  // Ctrl-C: remove the scratch files (GBs in a full run); the children get the signal too.
  const onSignal = () => {
    rmSync(dir, { recursive: true, force: true });
    process.exit(130);
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const ctx: BenchContext = {
    quick: options.quick,
    dir,
    runs: options.runs,
    warmup: 1,
    log: (m) => process.stderr.write(`${m}\n`),
  };
  ctx.log(`bench: ${options.quick ? "quick" : "full"} run, ${ctx.warmup} warm-up + ${ctx.runs} timed runs per side, scratch ${dir}`);
  if (loadBefore > cpus().length * 0.75) ctx.log(`bench: load average is ${loadBefore.toFixed(2)}; other work may skew the numbers`);

  const rows: RowResult[] = [];
  try {
    for (const spec of ROWS) {
      if (options.only && !options.only.has(spec.id)) continue;
      ctx.log(`row ${spec.id}: ${spec.figure}`);
      const rowStarted = Date.now();
      try {
        rows.push(...(await runRow(spec, ctx)));
        ctx.log(`row ${spec.id}: ${((Date.now() - rowStarted) / 1000).toFixed(1)} s`);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        ctx.log(`row ${spec.id} failed: ${message}`);
        rows.push({ id: spec.id, figure: spec.figure, target: spec.target, failed: message.split("\n")[0]!, note: "" });
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }

  const table = renderTable(rows);
  const report: BenchReport = {
    version: 1,
    mode: options.quick ? "quick" : "full",
    command: options.quick ? "pnpm bench --quick" : "pnpm bench",
    startedAt: started.toISOString(),
    durationSeconds: Math.round((Date.now() - started.getTime()) / 100) / 10,
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? "unknown",
      memoryGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
      loadBefore: Math.round(loadBefore * 100) / 100,
      loadAfter: Math.round(loadavg()[0]! * 100) / 100,
    },
    runs: ctx.runs,
    warmup: ctx.warmup,
    rows,
    table,
  };
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`${table}\n`);
  ctx.log(`bench: ${report.durationSeconds} s; results in ${out}`);
  return rows.some((r) => "failed" in r) ? 1 : 0;
}

/** Runs one row in its own Node process (src/row.ts) and reads back its results. */
async function runRow(spec: RowSpec, ctx: BenchContext): Promise<RowResult[]> {
  const resultFile = join(ctx.dir, `row-${spec.id}.json`);
  const args = [
    "--conditions=source",
    "--import",
    import.meta.resolve("tsx"),
    fileURLToPath(new URL("./row.ts", import.meta.url)),
    spec.id,
    ctx.dir,
    resultFile,
    String(ctx.runs),
    String(ctx.warmup),
    ...(ctx.quick ? ["--quick"] : []),
  ];
  const code = await new Promise<number | null>((done, fail) => {
    const child = spawn(process.execPath, args, { stdio: ["ignore", "inherit", "inherit"] });
    child.once("error", fail);
    child.once("exit", (c) => done(c));
  });
  if (code !== 0) throw new Error(`row ${spec.id} exited with code ${code} (see the log above)`);
  return JSON.parse(await readFile(resultFile, "utf8")) as RowResult[];
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(2);
  },
);
