// docs/provisioning.md's configuration table lists exactly the keys infra/Pulumi.yaml declares,
// "required" exactly for those without a default.
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { INFRA_DIR, loadYaml } from "./helpers";

const doc = readFileSync(path.resolve(INFRA_DIR, "..", "docs", "provisioning.md"), "utf8");
const declared = (loadYaml("Pulumi.yaml") as { config: Record<string, { default?: unknown }> }).config;

describe("docs/provisioning.md", () => {
  const section = doc.slice(doc.indexOf("## Configuration"), doc.indexOf("\n## ", doc.indexOf("## Configuration") + 1));
  const rows = [...section.matchAll(/^\| `([A-Za-z]+)` \| ([^|]+) \|/gm)].map(([, key, cell]) => ({ key: key!, required: cell!.trim() === "required" }));

  it("documents every key of Pulumi.yaml's config, and no others", () => {
    expect(rows.map((r) => r.key).sort()).toEqual(Object.keys(declared).sort());
  });

  it("calls exactly the keys without a default required", () => {
    for (const { key, required } of rows) expect({ key, required }).toEqual({ key, required: !("default" in declared[key]!) });
  });
});
