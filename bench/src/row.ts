/**
 * Runs one row in a process of its own (started by main.ts), so what one row loads (the AWS
 * SDKs, viem) and leaves on the heap cannot change another row's numbers: V8's GC behaves
 * differently with a bigger heap, and both sides of every comparison should see the same one.
 *
 * usage: row.ts <id> <scratch dir> <result file> <runs> <warmup> [--quick]
 */
import { writeFile } from "node:fs/promises";
import type { BenchContext } from "./harness.js";
import { ROWS } from "./rows/index.js";

const [id, dir, resultFile, runs, warmup, quick] = process.argv.slice(2);
const spec = ROWS.find((r) => r.id === id);
if (spec === undefined || dir === undefined || resultFile === undefined) throw new Error(`usage: row.ts <id> <dir> <result file> <runs> <warmup> [--quick]`);
const ctx: BenchContext = {
  quick: quick === "--quick",
  dir,
  runs: Number(runs),
  warmup: Number(warmup),
  log: (m) => process.stderr.write(`${m}\n`),
};
const measure = await spec.load();
const result = await measure(ctx);
await writeFile(resultFile, JSON.stringify(Array.isArray(result) ? result : [result]));
