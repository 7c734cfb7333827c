import type { RowResult, Target } from "./harness.js";

/** The results file (`bench/results/latest.json`). */
export interface BenchReport {
  /** Format of this file. */
  version: 1;
  mode: "full" | "quick";
  /** How to reproduce it. */
  command: string;
  startedAt: string;
  durationSeconds: number;
  machine: {
    cpus: number;
    cpuModel: string;
    memoryGiB: number;
    node: string;
    platform: string;
    /** 1-minute load average before and after: above the core count, other work shared the CPUs. */
    loadBefore: number;
    loadAfter: number;
  };
  /** Timed runs per side (after `warmup` discarded runs), alternating ours and baseline. */
  runs: number;
  warmup: number;
  rows: RowResult[];
  /** The same rows as the printed markdown table. */
  table: string;
}

function number(value: number, unit: string): string {
  const digits = value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return `${value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })} ${unit}`;
}

export function describeTarget(target: Target): string {
  if (target.kind === "min-ratio") return `>= ${target.ratio}x`;
  if (target.kind === "max-ratio") return `<= ${target.ratio}x`;
  return `<= ${target.max} ${target.unit ?? "MiB"}, ratio <= ${target.growth}x`;
}

const cell = (s: string) => s.replace(/\|/g, "\\|");

/** One markdown table: figure, ours, baseline, ratio, target, met? */
export function renderTable(rows: readonly RowResult[]): string {
  const lines = ["| # | figure | ours | baseline | ratio | target | met? |", "| --- | --- | --- | --- | --- | --- | --- |"];
  for (const row of rows) {
    const target = describeTarget(row.target);
    if ("failed" in row) {
      lines.push(`| ${row.id} | ${cell(row.figure)} | - | - | - | ${target} | failed: ${cell(row.failed)} |`);
    } else {
      lines.push(
        `| ${row.id} | ${cell(row.figure)} | ${number(row.ours, row.unit)} | ${number(row.baseline, row.unit)} | ${row.ratio.toFixed(2)}x | ${target} | ${row.met ? "yes" : "no"} |`,
      );
    }
  }
  return lines.join("\n");
}
