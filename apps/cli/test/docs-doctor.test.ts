// The `doctor` transcripts in docs/operations.md (Troubleshooting) are real runs: each one is
// replayed here on a store set up as the document describes (local storage, or a moto bucket),
// and its output must match the document line for line once what differs between runs is masked.
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { type Env, cli, tempDir } from "./helpers.js";
import { K2026A, K2026B, bucketWithRule, expectTranscript, transcripts, withOperations } from "./transcripts.js";

/** The state each transcript was taken in, in the document's order. */
const scenarios: { name: string; setup(): Promise<Env> }[] = [
  {
    name: "a healthy S3 setup, mid-migration (an empty bucket, 4 operations in the fallback directory)",
    async setup() {
      const local = { ARTIFACTS_LOCAL_DIR: join(tempDir("docs-fallback"), "local"), ARTIFACTS_MASTER_KEYS: K2026A };
      await withOperations(local, ["gemini", "qwen", "old", "claude"]);
      return { ...(await bucketWithRule("docs-healthy", K2026A)), ARTIFACTS_FALLBACK_LOCAL_DIR: local.ARTIFACTS_LOCAL_DIR };
    },
  },
  {
    name: "local storage with operations wrapped by k2026a",
    async setup() {
      const env = { ARTIFACTS_LOCAL_DIR: join(tempDir("docs-local"), "local"), ARTIFACTS_MASTER_KEYS: K2026A, ARTIFACTS_TTL: "7d" };
      await withOperations(env, ["gemini", "claude"]);
      return env;
    },
  },
  ...["endpoint refused", "missing bucket", "lifecycle not longer than ARTIFACTS_TTL", "malformed variables"].map((name) => ({
    name: `S3 after the rotation to k2026b: ${name}`,
    async setup() {
      const env = await bucketWithRule("docs-fail", K2026B);
      await withOperations(env, ["gemini", "claude"]);
      return env;
    },
  })),
  {
    name: "R2 variables half set",
    setup: () => Promise.resolve({ ARTIFACTS_LOCAL_DIR: join(tempDir("docs-r2"), "unused") }),
  },
];

describe("docs/operations.md doctor transcripts", () => {
  const runs = transcripts("Troubleshooting");

  it("has one scenario per transcript", () => {
    expect(runs.map((r) => r.argv)).toEqual(scenarios.map(() => ["doctor"]));
  });

  it.each(scenarios.map((s, i) => [s.name, i] as const))("%s", async (_name, i) => {
    const run = runs[i]!;
    const env = { ...(await scenarios[i]!.setup()), ...run.env };
    const r = await cli(["doctor"], env);
    expect(r.code).toBe(/doctor: all checks passed/.test(run.output) ? 0 : 1);
    expectTranscript(r.stdout, run.output);
  });
});
