// docs/manual-r2-setup.md maps each dashboard step to the `pnpm artifacts doctor` checks that prove
// it: every check it names must be one doctor has, and every check that applies to R2 is named.
import { readFileSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const root = resolve(import.meta.dirname, "../..");
const doc = readFileSync(join(root, "docs/manual-r2-setup.md"), "utf8");
// doctor's checks, one module per group (deep/, the acceptance table, has rows, not checks).
const checksDir = join(root, "apps/cli/src/doctor");
const doctor = readdirSync(checksDir)
  .filter((f) => f.endsWith(".ts"))
  .map((f) => readFileSync(join(checksDir, f), "utf8"))
  .join("\n");

describe("docs/manual-r2-setup.md", () => {
  const checks = new Set([...doctor.matchAll(/name: "([a-z/ ]+)"/g)].map((m) => m[1]!));
  // The bold words of the paragraphs that start with *doctor*.
  const named = new Set(
    [...doc.matchAll(/^\*doctor\*[\s\S]*?(?=\n\n)/gm)].flatMap((m) => [...m[0].matchAll(/\*\*([a-z/ ]+)\*\*/g)].map((b) => b[1]!)),
  );

  it("names only checks doctor has", () => {
    expect(checks.size).toBeGreaterThan(5);
    expect([...named].filter((name) => !checks.has(name))).toEqual([]);
  });

  it("maps every check that applies to an R2 setup to a step", () => {
    // "fallback" is for migrations, "storage", "master key" (singular) and "local directory" for other setups.
    const r2 = [...checks].filter((name) => !["fallback", "storage", "master key", "local directory"].includes(name));
    expect(r2.filter((name) => !named.has(name))).toEqual([]);
  });
});
