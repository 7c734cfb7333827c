// docs/performance.md shows the committed full run (bench/results/latest.json): its table is the
// one the bench renders from that file, and the run's Node version and date are the file's.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { renderTable, type BenchReport } from "../src/report.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const doc = readFileSync(`${ROOT}docs/performance.md`, "utf8");
const latest = JSON.parse(readFileSync(`${ROOT}bench/results/latest.json`, "utf8")) as BenchReport;

describe("docs/performance.md", () => {
  const run = doc.slice(doc.indexOf("## Latest full run\n"), doc.indexOf("\n## ", doc.indexOf("## Latest full run\n") + 1));

  it("shows the table of the committed full run", () => {
    expect(latest.mode).toBe("full");
    expect(run).toContain(renderTable(latest.rows).trim());
  });

  it("names the run's Node version and date", () => {
    const node = latest.machine.node.replace(/^v/, "").split(".").slice(0, 2).join(".");
    expect(run).toContain(`Node ${node}`);
    expect(run).toContain(latest.startedAt.slice(0, 10));
  });
});
