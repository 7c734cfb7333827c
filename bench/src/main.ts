/**
 * `pnpm bench [--quick] [--only 1,5] [--runs N] [--out file]`: every figure of the README's
 * "Performance" table, each as a ratio against a baseline measured in the same invocation
 * (alternating ours and baseline, median of the timed runs after a warm-up). Prints one markdown
 * table and writes it, with every sample, to bench/results/latest.json (quick runs:
 * bench/results/quick.json). Exits 1 when a row failed to run (not when a target is missed).
 */
import { rmSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { BenchContext, RowResult, Target } from "./harness.js";
import { renderTable, type BenchReport } from "./report.js";
import { row1, row2, row7 } from "./rows/local.js";
import { row3, row4 } from "./rows/peers.js";
import { row8 } from "./rows/s3.js";
import { row5, row6 } from "./rows/server.js";

interface RowSpec {
  /** Row number in the issue; a spec may produce several rows (3a, 3b). */
  id: string;
  /** Shown if the row throws. */
  figure: string;
  target: Target;
  measure(ctx: BenchContext): Promise<RowResult | RowResult[]>;
}

const ROWS: RowSpec[] = [
  { id: "1", figure: "SDK encrypt + store vs plain stream copy", target: { kind: "min-ratio", ratio: 0.9 }, measure: row1 },
  { id: "2", figure: "SDK read + decrypt vs plain stream read", target: { kind: "min-ratio", ratio: 0.9 }, measure: row2 },
  { id: "3", figure: "SDK vs AWS Encryption SDK", target: { kind: "min-ratio", ratio: 4 }, measure: row3 },
  { id: "4", figure: "SDK vs age", target: { kind: "min-ratio", ratio: 1 }, measure: row4 },
  { id: "5", figure: "HTTP download through the server vs plain node:http", target: { kind: "min-ratio", ratio: 0.7 }, measure: row5 },
  { id: "6", figure: "Server peak RSS", target: { kind: "max-and-flat", max: 128, growth: 1.1 }, measure: row6 },
  { id: "7", figure: "10,000 small artifacts vs plain atomic writes", target: { kind: "min-ratio", ratio: 0.5 }, measure: row7 },
  { id: "8", figure: "S3 upload client overhead", target: { kind: "min-ratio", ratio: 0.9 }, measure: row8 },
];

const USAGE = `usage: pnpm bench [--quick] [--only 1,5,...] [--runs N] [--out file]
  --quick    every row on small sizes (about a minute); writes bench/results/quick.json
  --only     run only these rows (numbers as in the table)
  --runs     timed runs per side after the warm-up (default 5, at least 5 for the README table)
  --out      where to write the JSON results (default bench/results/latest.json, quick.json with --quick)`;

interface Options {
  quick: boolean;
  only: Set<string> | undefined;
  runs: number;
  out: string | undefined;
}

function parseArgs(argv: string[]): Options {
  const options: Options = { quick: false, only: undefined, runs: 5, out: undefined };
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
  if (options.only) {
    const unknown = [...options.only].filter((id) => !ROWS.some((r) => r.id === id));
    if (unknown.length > 0) throw new Error(`no such row: ${unknown.join(", ")} (rows are ${ROWS.map((r) => r.id).join(", ")})`);
  }
  return options;
}

async function main(): Promise<number> {
  const options = parseArgs(process.argv.slice(2));
  const benchDir = fileURLToPath(new URL("../", import.meta.url));
  const out = options.out ?? join(benchDir, "results", options.quick ? "quick.json" : "latest.json");
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
      try {
        const result = await spec.measure(ctx);
        rows.push(...(Array.isArray(result) ? result : [result]));
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        ctx.log(`row ${spec.id} failed: ${error instanceof Error ? (error.stack ?? message) : message}`);
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

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(2);
  },
);
