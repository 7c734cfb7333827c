// The `doctor` transcripts in docs/operations.md are real runs: each one is replayed here on a
// store set up as the document describes (local storage, or a moto bucket), and its output must
// match the document line for line once what differs between runs is masked: paths, ports,
// bucket names, random hex, timestamps, timings. A line "…" in the document elides lines.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT, type Env, GRANTEE, cli, putLifecycle, s3Env, storeFor, tempDir } from "./helpers.js";

const doc = readFileSync(join(REPO_ROOT, "docs/operations.md"), "utf8");
const troubleshooting = doc.slice(doc.indexOf("\n## Troubleshooting\n"), doc.indexOf("\n## Monitoring\n"));

/** Obviously fake keys under the kids the document's story uses (rotated from k2026a to k2026b). */
const K2026A = `k2026a:${Buffer.alloc(32, 0x2a).toString("base64")}`;
const K2026B = `k2026b:${Buffer.alloc(32, 0x2b).toString("base64")}`;
const WRITER_TOKEN = "docs-writer-token-obviously-fake-0000000"; // 40 characters, as shown

interface Run {
  env: Env;
  output: string;
}

/** `$ [VAR=value ...] pnpm artifacts doctor` runs of the section's console blocks. */
function doctorRuns(): Run[] {
  const runs: Run[] = [];
  for (const [, block] of troubleshooting.matchAll(/```console\n([\s\S]*?)```/g)) {
    for (const run of block!.split(/^(?=\$ )/m)) {
      const [command, ...output] = run.split("\n");
      const match = /^\$ ((?:[A-Z0-9_]+=(?:"[^"]*"|\S+) )*)pnpm artifacts doctor(?: +#.*)?$/.exec(command!);
      if (!match) throw new Error(`unexpected command in the doctor transcripts: ${command}`);
      const env: Env = {};
      for (const [, name, quoted, plain] of match[1]!.matchAll(/([A-Z0-9_]+)=(?:"([^"]*)"|(\S+))/g)) env[name!] = quoted ?? plain!;
      runs.push({ env, output: output.join("\n").replace(/\n+$/, "\n") });
    }
  }
  return runs;
}

/** What legitimately differs between two runs, replaced by a placeholder. */
function mask(text: string): string {
  return text
    .replace(/\/tmp\/[^\s"),;]+/g, "<path>")
    .replace(/127\.0\.0\.1:\d+/g, "127.0.0.1:<port>")
    .replace(/port \d+/g, "port <port>")
    .replace(/bucket "[^"]+"/g, 'bucket "<bucket>"')
    .replace(/S3_BUCKET \("[^"]+"\)/g, 'S3_BUCKET ("<bucket>")')
    .replace(/\.doctor-[0-9a-f]+/g, ".doctor-<hex>")
    .replace(/_\d{13}\b/g, "_<ms>")
    .replace(/\(\d+ ms\)/g, "(<n> ms)")
    .replace(/within \d+ s of/g, "within <n> s of")
    .replace(/ +$/gm, "")
    .replace(/ {2,}/g, "  ");
}

/** Every chunk of `expected` between "…" lines appears in `actual`, in order. */
function expectTranscript(actual: string, expected: string): void {
  const chunks = mask(expected).split(/^…\n/m);
  if (chunks.length === 1) {
    expect(mask(actual)).toBe(chunks[0]);
    return;
  }
  let from = 0;
  const masked = mask(actual);
  for (const chunk of chunks.filter((c) => c !== "")) {
    const at = masked.indexOf(chunk, from);
    expect(at, `not found after offset ${from}:\n${chunk}\nin:\n${masked}`).toBeGreaterThanOrEqual(0);
    from = at + chunk.length;
  }
}

/** A store holding operations wrapped with `keys`' current kid, the newest by agent "claude". */
async function withOperations(env: Env, agents: string[]): Promise<void> {
  const store = storeFor(env);
  for (const agent of agents) {
    const op = await store.createOperation({ grantee: GRANTEE, agent });
    await store.putArtifact(op.operationId, "report.txt", `by ${agent}`);
    await new Promise((r) => setTimeout(r, 2)); // distinct milliseconds: "newest" is well defined
  }
  await store.close();
}

/** The bucket the document's S3 runs use: a moto bucket whose lifecycle rule expires operations/ after 8 days. */
async function bucketWithRule(label: string, keys: string): Promise<Env> {
  const env = await s3Env(label, { ARTIFACTS_MASTER_KEYS: keys, ARTIFACTS_WRITER_TOKEN: WRITER_TOKEN, ARTIFACTS_TTL: "7d" });
  await putLifecycle(env.S3_ENDPOINT, env.S3_BUCKET, "operations/", 8);
  return env;
}

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
  const runs = doctorRuns();

  it("has one scenario per transcript", () => {
    expect(runs.length).toBe(scenarios.length);
  });

  it.each(scenarios.map((s, i) => [s.name, i] as const))("%s", async (_name, i) => {
    const run = runs[i]!;
    const env = { ...(await scenarios[i]!.setup()), ...run.env };
    const r = await cli(["doctor"], env);
    expect(r.code).toBe(/doctor: all checks passed/.test(run.output) ? 0 : 1);
    expectTranscript(r.stdout, run.output);
  });
});
