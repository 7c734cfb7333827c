import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const root = resolve(import.meta.dirname, "../../..");
const example = resolve(import.meta.dirname, "../examples/quickstart.ts");
// Run from an empty directory (so no developer .env is read) with the repo's tsx loader.
const tsxLoader = pathToFileURL(join(root, "node_modules/tsx/dist/loader.mjs")).href;

describe("README SDK example", () => {
  it("is in the README verbatim", () => {
    const readme = readFileSync(join(root, "README.md"), "utf8");
    expect(readme).toContain(readFileSync(example, "utf8").trim());
  });

  it("runs and prints the artifact", async () => {
    const dir = mkdtempSync(join(tmpdir(), "psa-example-"));
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ["--conditions=source", "--import", tsxLoader, example],
      // Only what a fresh shell has: no S3/R2 variables, a private local directory.
      { cwd: dir, env: { PATH: process.env.PATH ?? "", HOME: dir, ARTIFACTS_LOCAL_DIR: join(dir, "data") } },
    );
    expect(stdout).toMatch(/^gemini_\d{13} privacy_audit\.md \(29 B\)\n# Privacy audit\nNo findings\.\n$/);
  });
});
