// Runs `pnpm bench --quick` for real, through the root script, so the harness cannot rot: every
// row must still run and report a number (a missing peer such as age fails the run). No timing is asserted.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BenchReport } from "../src/report.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const EXPECTED_IDS = ["1", "2", "3a", "3b", "4a", "4b", "5", "6", "7", "8", "9", "10", "11", "12a", "12b", "13", "14", "15", "16", "16b"];
const HEADER = "| # | figure | ours | baseline | ratio | target | met? |";

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  report: BenchReport;
}

let dir: string;
let run: Run;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "psa-bench-test-"));
  const out = join(dir, "quick.json");
  // The root script, as a reader would type it: this also checks that arguments pass through.
  const child = spawn("pnpm", ["--silent", "bench", "--quick", "--out", out], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const code = await new Promise<number | null>((resolve) => child.once("close", resolve));
  let report: BenchReport;
  try {
    report = JSON.parse(readFileSync(out, "utf8")) as BenchReport;
  } catch (error) {
    throw new Error(`pnpm bench --quick wrote no results (exit ${code}):\n${stderr.slice(-4000)}`, { cause: error });
  }
  run = { code, stdout, stderr, report };
}, 600_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("pnpm bench --quick", () => {
  it("exits 0 and ran in quick mode (so --quick reached the script)", () => {
    expect(run.code, run.stderr.slice(-4000)).toBe(0);
    expect(run.report.mode).toBe("quick");
    expect(run.report.version).toBe(1);
    expect(run.report.runs).toBeGreaterThanOrEqual(3);
    expect(run.report.warmup).toBeGreaterThanOrEqual(1);
  });

  it("reports every row, in order, each with a number", () => {
    expect(run.report.rows.map((r) => r.id)).toEqual(EXPECTED_IDS);
    for (const row of run.report.rows) {
      expect(row, `row ${row.id} failed`).not.toHaveProperty("failed");
      expect(row.figure.length).toBeGreaterThan(0);
      expect("ours" in row).toBe(true);
      if (!("ours" in row)) continue;
      for (const value of [row.ours, row.baseline, row.ratio]) {
        expect(Number.isFinite(value)).toBe(true);
        expect(value).toBeGreaterThan(0);
      }
      expect(row.ratio).toBeCloseTo(row.ours / row.baseline, 9);
      expect(typeof row.met).toBe("boolean");
      expect(row.samples.ours).toHaveLength(run.report.runs);
      expect(row.samples.baseline).toHaveLength(run.report.runs);
      expect(row.note.length).toBeGreaterThan(0);
    }
  });

  it("prints one markdown table, the same one it writes to the JSON file", () => {
    const lines = run.stdout.trim().split("\n");
    expect(lines[0]).toBe(HEADER);
    expect(lines[1]).toBe("| --- | --- | --- | --- | --- | --- | --- |");
    expect(lines).toHaveLength(2 + EXPECTED_IDS.length);
    expect(run.stdout.trim()).toBe(run.report.table);
    for (const [i, line] of lines.slice(2).entries()) {
      const cells = line.split(/(?<!\\)\|/).slice(1, -1).map((c) => c.trim());
      expect(cells).toHaveLength(7);
      expect(cells[0]).toBe(EXPECTED_IDS[i]);
      const met = cells[6]!;
      expect(met).toMatch(/^(yes|no)$/);
      expect(cells[2]).toMatch(/^[\d,.]+ \S+$/);
      expect(cells[3]).toMatch(/^[\d,.]+ \S+$/);
      expect(cells[4]).toMatch(/^\d+\.\d\dx$/);
    }
  });

  it("measured age (row 4 fails the run, saying how to install it, when age is missing)", () => {
    const ids = run.report.rows.filter((r) => r.id.startsWith("4") && "ours" in r).map((r) => r.id);
    expect(ids).toEqual(["4a", "4b"]);
  });
});
