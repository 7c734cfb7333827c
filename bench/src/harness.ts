import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { open } from "node:fs/promises";
import type { Readable } from "node:stream";

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

/** How a figure is judged against its target. */
export type Target =
  /** ours / baseline must be at least `ratio` (throughput: higher is better). */
  | { kind: "min-ratio"; ratio: number }
  /** ours / baseline must be at most `ratio` (a cost: lower is better). */
  | { kind: "max-ratio"; ratio: number }
  /** Peak memory: `ours` at most `max` (in the row's unit) and ours / baseline at most `growth`. */
  | { kind: "max-and-flat"; max: number; growth: number; /** Of `max`; default MiB. */ unit?: string };

/** One measured row of the table. */
export interface MeasuredRow {
  id: string;
  /** What is compared, with sizes (the table's "figure" column). */
  figure: string;
  /** Unit of `ours` and `baseline` ("MiB/s", "artifacts/s", "MiB"). */
  unit: string;
  /** Median of our runs, in `unit`. */
  ours: number;
  /** Median of the baseline's runs, in `unit`. */
  baseline: number;
  /** ours / baseline. */
  ratio: number;
  target: Target;
  met: boolean;
  /** What exactly ran on each side. */
  note: string;
  /** Every timed run after the warm-up, in `unit`, in the order they ran (A and B alternate). */
  samples: { ours: number[]; baseline: number[] };
}

/** A row whose measurement threw: the bench exits non-zero. */
export interface FailedRow {
  id: string;
  figure: string;
  target: Target;
  failed: string;
  note: string;
}

export type RowResult = MeasuredRow | FailedRow;

/** What every row gets: sizes for the mode, a scratch directory, the run count. */
export interface BenchContext {
  quick: boolean;
  /** Scratch directory (removed when the bench ends). */
  dir: string;
  /** Timed runs per side after the warm-up. */
  runs: number;
  /** Warm-up runs per side (not recorded). */
  warmup: number;
  /** Progress lines (stderr), so a long full run shows where it is. */
  log(message: string): void;
}

/** Median of a non-empty list. */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error("median of no values");
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Flushes dirty pages to disk (outside the timed part), so one run's write-back does not land
 * in the next run's time: every run then starts from the same clean page cache.
 */
export function flushDisk(): void {
  spawnSync("sync", { stdio: "ignore" });
}

/** One side of a comparison: `prepare` runs untimed, then `run` is timed, then `cleanup` untimed. */
export interface Side<P> {
  prepare?: (index: number) => Promise<P>;
  /** The timed work; returns the measured value if it is not elapsed time (e.g. peak RSS). */
  run: (prepared: P, index: number) => Promise<number | void>;
  cleanup?: (prepared: P, index: number) => Promise<void>;
}

/**
 * Runs A (ours) and B (baseline) alternately: `warmup` pairs that are thrown away, then `runs`
 * pairs. A run that returns nothing is measured in seconds of wall time; one that returns a
 * number is measured by that number. Returns every recorded value per side, in run order.
 */
export async function alternate<PA, PB>(
  ctx: BenchContext,
  label: string,
  a: Side<PA>,
  b: Side<PB>,
): Promise<{ a: number[]; b: number[] }> {
  const out = { a: [] as number[], b: [] as number[] };
  const total = ctx.warmup + ctx.runs;
  for (let i = 0; i < total; i++) {
    const recorded = i >= ctx.warmup;
    for (const [side, name, list] of [
      [a, "ours", out.a],
      [b, "baseline", out.b],
    ] as const) {
      const s = side as Side<unknown>;
      const prepared = s.prepare ? await s.prepare(i) : undefined;
      flushDisk();
      const started = process.hrtime.bigint();
      const value = await s.run(prepared, i);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (s.cleanup) await s.cleanup(prepared, i);
      const measured = typeof value === "number" ? value : seconds;
      if (recorded) list.push(measured);
      ctx.log(`  ${label} ${recorded ? `run ${i - ctx.warmup + 1}/${ctx.runs}` : "warm-up"} ${name}: ${measured.toFixed(3)}${typeof value === "number" ? "" : " s"}`);
    }
  }
  return out;
}

/** Builds a throughput row from run times (seconds): `amount / seconds` per run, medians, ratio. */
export function throughputRow(
  base: { id: string; figure: string; unit: string; target: Target; note: string },
  amount: number,
  times: { a: number[]; b: number[] },
): MeasuredRow {
  const ours = times.a.map((s) => amount / s);
  const baseline = times.b.map((s) => amount / s);
  const mo = median(ours);
  const mb = median(baseline);
  const ratio = mo / mb;
  return { ...base, ours: mo, baseline: mb, ratio, met: judge(base.target, mo, ratio), samples: { ours, baseline } };
}

/** Whether a figure meets its target. */
export function judge(target: Target, ours: number, ratio: number): boolean {
  if (target.kind === "min-ratio") return ratio >= target.ratio;
  if (target.kind === "max-ratio") return ratio <= target.ratio;
  return ours <= target.max && ratio <= target.growth;
}

/** Writes `size` random bytes to `path` (random, so nothing along the way can compress it). */
export async function writeRandomFile(path: string, size: number): Promise<void> {
  const fh = await open(path, "wx", 0o600);
  try {
    const block = 8 * MiB;
    for (let done = 0; done < size; ) {
      const n = Math.min(block, size - done);
      await fh.write(randomBytes(n));
      done += n;
    }
  } finally {
    await fh.close();
  }
}

/** Reads a stream to its end, discarding the bytes; returns how many there were. */
export async function drain(stream: Readable | AsyncIterable<Uint8Array>): Promise<number> {
  let bytes = 0;
  for await (const chunk of stream as AsyncIterable<Uint8Array>) bytes += chunk.length;
  return bytes;
}

/** Throws unless `actual === expected` (a benchmark that moved the wrong number of bytes measures nothing). */
export function expectBytes(what: string, actual: number, expected: number): void {
  if (actual !== expected) throw new Error(`${what}: moved ${actual} bytes, expected ${expected}`);
}

/** "1 GiB", "256 MiB", "4 KiB". */
export function formatSize(bytes: number): string {
  if (bytes >= GiB && bytes % GiB === 0) return `${bytes / GiB} GiB`;
  if (bytes >= MiB && bytes % MiB === 0) return `${bytes / MiB} MiB`;
  if (bytes >= KiB && bytes % KiB === 0) return `${bytes / KiB} KiB`;
  return `${bytes} B`;
}
