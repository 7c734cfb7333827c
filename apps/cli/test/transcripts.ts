// Reading the CLI transcripts of docs/operations.md, so tests can replay them: each `$ ...` line of
// a console block is one run, the lines under it its output. Outputs are compared after masking
// what differs between two real runs (paths, ports, bucket names, random hex and keys, times,
// timings, sizes); a line "…" in the document elides lines.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { expect } from "vitest";
import { GRANTEE, REPO_ROOT, type Env, putLifecycle, s3Env, storeFor } from "./helpers.js";

const doc = readFileSync(join(REPO_ROOT, "docs/operations.md"), "utf8");

/** One documented run: `$ [VAR=value ...] pnpm artifacts <argv> [# comment]` and what it printed. */
export interface Transcript {
  env: Env;
  argv: string[];
  output: string;
}

/** The text of `## title` up to the next `## ` heading. */
export function section(title: string): string {
  const start = doc.indexOf(`\n## ${title}\n`);
  if (start < 0) throw new Error(`docs/operations.md has no section "## ${title}"`);
  const end = doc.indexOf("\n## ", start + 1);
  return doc.slice(start, end < 0 ? undefined : end);
}

/** The runs of a section's console blocks, in order. */
export function transcripts(title: string): Transcript[] {
  const out: Transcript[] = [];
  for (const [, block] of section(title).matchAll(/```console\n([\s\S]*?)```/g)) {
    for (const run of block!.split(/^(?=\$ )/m)) {
      const [command, ...output] = run.split("\n");
      const match = /^\$ ((?:[A-Z0-9_]+=(?:"[^"]*"|\S+) +)*)pnpm artifacts ((?:[^#\s]+ ?)+?) *(?:#.*)?$/.exec(command!);
      if (!match) throw new Error(`not a pnpm artifacts command: ${command}`);
      const env: Env = {};
      for (const [, name, quoted, plain] of match[1]!.matchAll(/([A-Z0-9_]+)=(?:"([^"]*)"|(\S+))/g)) env[name!] = quoted ?? plain!;
      out.push({ env, argv: match[2]!.trim().split(/\s+/), output: output.join("\n").replace(/\n+$/, "\n") });
    }
  }
  return out;
}

/** What legitimately differs between two runs, replaced by placeholders. */
export function mask(text: string): string {
  return text
    .replace(/\/tmp\/[^\s"),;]+/g, "<path>")
    .replace(/127\.0\.0\.1:\d+/g, "127.0.0.1:<port>")
    .replace(/port \d+/g, "port <port>")
    .replace(/bucket (\\?)"[^"\\]+\\?"/g, 'bucket $1"<bucket>$1"')
    .replace(/S3_BUCKET \("[^"]+"\)/g, 'S3_BUCKET ("<bucket>")')
    .replace(/\.doctor-[0-9a-f]+/g, ".doctor-<hex>")
    .replace(/key-\d{8}-[0-9a-f]{4}/g, "key-<date>-<hex>")
    .replace(/:[A-Za-z0-9+/]{43}=/g, ":<key>")
    .replace(/_\d{13}\b/g, "_<ms>")
    // Which operation is newest goes by metadata.json's last write, in whole seconds on S3.
    .replace(/newest operation's data key \([a-z0-9-]+_<ms>/g, "newest operation's data key (<operation>")
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/g, "<time>")
    .replace(/\(\d+ ms\)/g, "(<n> ms)")
    .replace(/within \d+ s of/g, "within <n> s of")
    .replace(/\d[\d.,]* (?:B|KB|MB|GB)\b/g, "<size>")
    .replace(/\(\d+ bytes\)/g, "(<n> bytes)")
    .replace(/"(storedBytes|plaintextBytes|bytes)": \d+/g, '"$1": <n>')
    .replace(/\$\d[\d.]*/g, () => "$<n>")
    .replace(/\d[\d.]*%/g, "<n>%")
    .replace(/ +$/gm, "")
    .replace(/ {2,}/g, "  ");
}

/** `actual` is the documented output: equal once masked, or containing each "…"-separated part in order. */
export function expectTranscript(actual: string, documented: string): void {
  const chunks = mask(documented).split(/^ *…\n/m);
  const masked = mask(actual);
  if (chunks.length === 1) {
    expect(masked).toBe(chunks[0]);
    return;
  }
  let from = 0;
  for (const chunk of chunks.filter((c) => c !== "")) {
    const at = masked.indexOf(chunk, from);
    expect(at, `not found after offset ${from}:\n${chunk}\nin:\n${masked}`).toBeGreaterThanOrEqual(0);
    from = at + chunk.length;
  }
}

// The store the document's story runs on.

/** Obviously fake keys under the kids the document's story uses (rotated from k2026a to k2026b). */
export const K2026A = `k2026a:${Buffer.alloc(32, 0x2a).toString("base64")}`;
export const K2026B = `k2026b:${Buffer.alloc(32, 0x2b).toString("base64")}`;
export const WRITER_TOKEN = "docs-writer-token-obviously-fake-0000000"; // 40 characters, as shown

/** A store holding operations wrapped with `keys`' current kid, the newest by agent "claude". */
export async function withOperations(env: Env, agents: string[]): Promise<void> {
  const store = storeFor(env);
  for (const agent of agents) {
    const op = await store.createOperation({ grantee: GRANTEE, agent });
    await store.putArtifact(op.operationId, "report.txt", `by ${agent}`);
    await new Promise((r) => setTimeout(r, 2)); // distinct milliseconds: "newest" is well defined
  }
  await store.close();
}

/** The bucket the document's S3 runs use: a moto bucket whose lifecycle rule expires operations/ after 8 days. */
export async function bucketWithRule(label: string, keys: string): Promise<Env> {
  const env = await s3Env(label, { ARTIFACTS_MASTER_KEYS: keys, ARTIFACTS_WRITER_TOKEN: WRITER_TOKEN, ARTIFACTS_TTL: "7d" });
  await putLifecycle(env.S3_ENDPOINT, env.S3_BUCKET, "operations/", 8);
  return env;
}

/**
 * The operations the usage, cleanup, migration and rotation transcripts were taken on: gemini (2
 * artifacts, 185 KB), qwen (1, 2.50 MB), claude (2, 1.21 MB), created in that order, and with
 * `expired` that many more of 300 KB made by a store whose clock was 8 days back (7-day TTL).
 */
export async function storyOperations(env: Env, expired: string[] = []): Promise<void> {
  const now = Date.now();
  const past = storeFor(env, { now: () => new Date(now - 8 * 86_400_000) });
  for (const agent of expired) {
    const op = await past.createOperation({ grantee: GRANTEE, agent });
    await past.putArtifact(op.operationId, "audit.md", Buffer.alloc(300_000, 0x61));
    await new Promise((r) => setTimeout(r, 2));
  }
  await past.close();
  const store = storeFor(env);
  const story: [string, [string, number][]][] = [
    ["gemini", [["privacy_audit.md", 120_000], ["recommendations.txt", 65_000]]],
    ["qwen", [["knowledge_base.py", 2_500_000]]],
    ["claude", [["report.pdf", 1_200_000], ["notes/summary.md", 8_000]]],
  ];
  for (const [agent, artifacts] of story) {
    const op = await store.createOperation({ grantee: GRANTEE, agent });
    for (const [path, size] of artifacts) await store.putArtifact(op.operationId, path, Buffer.alloc(size, 0x62));
    await new Promise((r) => setTimeout(r, 2));
  }
  await store.close();
}
