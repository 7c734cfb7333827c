// The `cost` transcripts in docs/operations.md are real outputs: `cost` needs no configuration
// and sends no request, so each one is rerun here and must match the document byte for byte.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT, cli } from "./helpers.js";

const doc = readFileSync(join(REPO_ROOT, "docs/operations.md"), "utf8");

/** `$ pnpm artifacts cost ...` commands of the document's console blocks, with the output shown under each. */
function costTranscripts(): { argv: string[]; output: string }[] {
  const out: { argv: string[]; output: string }[] = [];
  for (const [, block] of doc.matchAll(/```console\n([\s\S]*?)```/g)) {
    const runs = block!.split(/^(?=\$ )/m);
    for (const run of runs) {
      const [command, ...output] = run.split("\n");
      const match = /^\$ pnpm artifacts (cost .*)$/.exec(command!);
      if (match) out.push({ argv: match[1]!.trim().split(/\s+/), output: output.join("\n").replace(/\n+$/, "\n") });
    }
  }
  return out;
}

describe("docs/operations.md cost transcripts", () => {
  const transcripts = costTranscripts();

  it("are there", () => {
    expect(transcripts.length).toBeGreaterThanOrEqual(2);
  });

  it.each(transcripts.map((t) => [t.argv.join(" "), t] as const))("%s prints what the document shows", async (_name, t) => {
    const r = await cli(t.argv, {});
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(t.output);
  });
});
