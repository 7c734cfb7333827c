// Everything the README, the documents and the programs' messages point a reader to must exist:
// every relative link (and its #section), every repository path they name in code spans, and
// every docs/… or README reference in the source of the SDK, the server, the CLI and infra.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const root = resolve(import.meta.dirname, "../..");
const docsDir = join(root, "docs");
const documents = ["README.md", ...readdirSync(docsDir).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];
/** Where messages shown to users and comments that cite documents live. */
const sourceDirs = ["apps/cli/src", "apps/server/src", "packages/artifacts/src", "infra/src", "infra/index.ts", "bench/src"];
/** Top-level entries of the repository: a code span starting with one of them names a repo path. */
const topLevel = new Set(readdirSync(root).filter((name) => name !== "node_modules" && name !== ".git" && name !== ".node"));

/** Markdown outside fenced code blocks (links and spans inside examples are example text). */
function prose(markdown: string): string {
  return markdown.replace(/^```[\s\S]*?^```/gm, "");
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to '-', repeats numbered. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const [, title] of prose(markdown).matchAll(/^#{1,6} +(.+?) *#*$/gm)) {
    const base = title!
      .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
      .toLowerCase()
      .replace(/[^\p{L}\p{N} _-]/gu, "")
      .replace(/ /g, "-");
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** Problems with one reference `target` (a path relative to `fromDir`, with an optional #anchor). */
function check(target: string, fromDir: string): string | undefined {
  const [file, anchor] = target.split("#", 2) as [string, string | undefined];
  const path = file === "" ? undefined : resolve(fromDir, file);
  if (path !== undefined && !existsSync(path)) return `${target}: ${relative(root, path)} does not exist`;
  if (anchor === undefined) return undefined;
  if (path !== undefined && (statSync(path).isDirectory() || !path.endsWith(".md"))) return `${target}: only a .md file has sections`;
  const text = readFileSync(path ?? fromDir, "utf8");
  return anchors(text).has(anchor) ? undefined : `${target}: no section #${anchor} in ${relative(root, path ?? fromDir)}`;
}

/** A file git ignores (an output such as bench/results/quick.json) may be named before it exists. */
function ignoredOutput(path: string): boolean {
  const git = spawnSync("git", ["check-ignore", "-q", path], { cwd: root });
  if (git.error) throw new Error(`git is needed to tell ignored outputs from missing files: ${git.error.message}`);
  return git.status === 0;
}

function sourceFiles(entry: string): string[] {
  const path = join(root, entry);
  if (statSync(path).isFile()) return [path];
  return readdirSync(path, { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts"))
    .map((f) => join(path, f));
}

describe("links and named files", () => {
  it("the checker sees the documents and reads GitHub's anchors", () => {
    expect(documents).toEqual(expect.arrayContaining(["README.md", "docs/http-api.md", "docs/format.md", "docs/configuration.md"]));
    expect(anchors("# Key rotation\n## Migration: local -> R2 (`migrate`)\n## Key rotation\n```\n# not a heading\n```\n")).toEqual(
      new Set(["key-rotation", "migration-local---r2-migrate", "key-rotation-1"]),
    );
  });

  it.each(documents)("%s: every relative link and its section exist", (doc) => {
    const text = readFileSync(join(root, doc), "utf8");
    const problems: string[] = [];
    for (const [, target] of prose(text).matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target!)) continue; // https:, mailto:
      const problem = target!.startsWith("#") ? check(target!, join(root, doc)) : check(target!, dirname(join(root, doc)));
      if (problem) problems.push(problem);
    }
    expect(problems).toEqual([]);
  });

  it.each(documents)("%s: every repository path it names exists", (doc) => {
    const text = readFileSync(join(root, doc), "utf8");
    const problems: string[] = [];
    for (const [, span] of prose(text).matchAll(/`([^`\s]+)`/g)) {
      // Placeholders, globs and URLs are not paths; a path starts at a top-level entry of the repo.
      if (/[<>*…{}$:]/.test(span!) || !topLevel.has(span!.split("/")[0]!) || (!span!.includes("/") && !span!.includes("."))) continue;
      if (!existsSync(join(root, span!)) && !ignoredOutput(span!)) problems.push(`${span}: does not exist`);
    }
    expect(problems).toEqual([]);
  });

  it.each(documents)("%s: cites no file a user does not have", (doc) => {
    const text = readFileSync(join(root, doc), "utf8");
    expect([...text.matchAll(/the setup guide|DESIGN\.md|FACTS\.md|R2_SETUP_GUIDE/gi)].map((m) => m[0])).toEqual([]);
  });

  it("every document and section the source code's messages and comments cite exists", () => {
    const problems: string[] = [];
    let cited = 0;
    for (const file of sourceDirs.flatMap(sourceFiles)) {
      const text = readFileSync(file, "utf8");
      for (const [, target] of text.matchAll(/(?<![\w/.-])((?:docs\/[\w-]+\.md|README\.md|\.env\.example)(?:#[\w-]+)?)/g)) {
        cited += 1;
        const problem = check(target!, root);
        if (problem) problems.push(`${relative(root, file)}: ${problem}`);
      }
      for (const [, phrase] of text.matchAll(/(the setup guide|DESIGN\.md|FACTS\.md)/gi)) problems.push(`${relative(root, file)}: cites ${phrase}`);
    }
    expect(problems).toEqual([]);
    expect(cited).toBeGreaterThan(10);
  });
});
