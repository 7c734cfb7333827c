// The transcripts of docs/operations.md are real runs, replayed here in the document's order on
// the stores it describes; outputs must match once what differs between runs is masked
// (transcripts.ts). `cost` needs no store and sends no request, so it must match byte for byte.
// The doctor transcripts of Troubleshooting are replayed in docs-doctor.test.ts.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { type CliResult, type Env, cli, s3Env, tempDir } from "./helpers.js";
import { K2026A, K2026B, bucketWithRule, expectTranscript, storyOperations, transcripts, type Transcript } from "./transcripts.js";

/** What a documented run shows: progress lines (stderr) first when it shows them, errors when stdout is empty. */
function shown(t: Transcript, r: CliResult): string {
  if (/^(migrate|rotate-key|cleanup)( --dry-run)?: /.test(t.output)) return r.stderr + r.stdout;
  return r.stdout === "" ? r.stderr : r.stdout;
}

/** Replays `runs` in order against `env`, each with its documented exit code. */
async function replay(runs: Transcript[], codes: number[], env: Env, opts: { cwd?: string; argv?: (argv: string[]) => string[] } = {}) {
  expect(runs.map((t) => t.argv[0])).toHaveLength(codes.length);
  for (const [i, t] of runs.entries()) {
    // "k2026b:…" in a documented variable stands for that kid's key.
    const extra = Object.fromEntries(Object.entries(t.env).map(([k, v]) => [k, v === "k2026b:…" ? K2026B : v]));
    const r = await cli(opts.argv ? opts.argv(t.argv) : t.argv, { ...env, ...extra }, opts.cwd === undefined ? {} : { cwd: opts.cwd });
    expect({ run: t.argv.join(" "), code: r.code }).toEqual({ run: t.argv.join(" "), code: codes[i] });
    expectTranscript(shown(t, r), t.output);
  }
}

describe("docs/operations.md transcripts", () => {
  it("Cost: every run prints exactly what the document shows", async () => {
    const runs = transcripts("Cost");
    expect(runs.length).toBeGreaterThanOrEqual(2);
    for (const t of runs) {
      const r = await cli(t.argv, {});
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(t.output);
    }
  });

  it("Monitoring: usage on 5 operations (2 expired), then usage --json on the 3 live ones", async () => {
    const [usage, json] = transcripts("Monitoring");
    const withExpired = await bucketWithRule("docs-usage", K2026A);
    await storyOperations(withExpired, ["gemini", "qwen"]);
    await replay([usage!], [0], withExpired);
    const live = await bucketWithRule("docs-usage-json", K2026A);
    await storyOperations(live);
    await replay([json!], [0], live);
  });

  it("Cleanup: a dry run, the sweep, and the sweep again, on 5 operations (2 expired)", async () => {
    const env = await bucketWithRule("docs-cleanup", K2026A);
    await storyOperations(env, ["gemini", "qwen"]);
    await replay(transcripts("Cleanup"), [0, 0, 0], env);
  });

  it("Migration: a local directory of 4 operations (1 expired) into a bucket, resumed, then the source deleted", async () => {
    const local = join(tempDir("docs-migrate"), "local");
    await storyOperations({ ARTIFACTS_LOCAL_DIR: local, ARTIFACTS_MASTER_KEYS: K2026A }, ["old"]);
    const bucket = await s3Env("docs-migrate", { ARTIFACTS_MASTER_KEYS: K2026A, ARTIFACTS_FALLBACK_LOCAL_DIR: local });
    await replay(transcripts("Migration"), [0, 0, 0, 0], bucket, {
      argv: (argv) => argv.map((a) => a.replace(/^local:\/tmp\/readme\/local$/, `local:${local}`)),
    });
  });

  it("Key rotation: keygen, keygen --env twice, rotate-key twice, doctor with the old key removed", async () => {
    const [keygen, keygenJson, env1, env2, ...rotation] = transcripts("Key rotation");
    await replay([keygen!, keygenJson!], [0, 0], {});
    // A repository root of its own as the working directory (`pnpm artifacts` runs from the root);
    // from anywhere else keygen --env writes the root of the repository the CLI runs from.
    const repo = tempDir("docs-repo");
    writeFileSync(join(repo, "pnpm-workspace.yaml"), "packages: []\n");
    await replay([env1!, env2!], [0, 1], { ARTIFACTS_LOCAL_DIR: join(repo, "data") }, { cwd: repo });
    const bucket = await bucketWithRule("docs-rotate", K2026A);
    await storyOperations(bucket);
    await replay(rotation, [0, 0, 0], { ...bucket, ARTIFACTS_MASTER_KEYS: `${K2026B},${K2026A}` });
  });
});
