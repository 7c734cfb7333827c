// docs/deployment.md and docs/installing.md say what the recipes do: each command and setting they
// name is the one in the Makefile, compose.yaml, the Dockerfile, the unit and the SDK package.
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT, requireTools, run } from "./podman.js";

const read = (path: string) => readFileSync(join(ROOT, path), "utf8");
const deployment = read("docs/deployment.md");
const installing = read("docs/installing.md");

describe("docs/deployment.md", () => {
  it("names only make targets the Makefile has, and every one it has", () => {
    const targets = [...read("Makefile").matchAll(/^([a-z]+):/gm)].map((m) => m[1]!).sort();
    const named = [...new Set([...deployment.matchAll(/\bmake ([a-z]+)\b/g)].map((m) => m[1]!))].sort();
    expect(named).toEqual(targets);
  });

  it("make up without a .env starts from .env.example, and never overwrites an existing one", async () => {
    requireTools("make");
    const dir = mkdtempSync(join(tmpdir(), "psa-make-"));
    try {
      copyFileSync(join(ROOT, ".env.example"), join(dir, ".env.example"));
      // COMPOSE=echo: the compose call is printed, not run; then make up fails (no container), after making .env.
      const env = { PATH: process.env.PATH ?? "", COMPOSE: "echo compose", HEALTH_TIMEOUT: "1" };
      const makeUp = () => run("make", ["--no-print-directory", "-f", join(ROOT, "Makefile"), "up"], { cwd: dir, env });
      const first = await makeUp();
      expect(first.stdout).toContain("no .env: copying .env.example (local storage); edit it for R2 or S3");
      expect(first.stdout).toContain("compose up -d");
      expect(first.code).not.toBe(0);
      expect(first.stderr).toContain("make up: FAILED: compose started no artifacts container");
      expect(readFileSync(join(dir, ".env"), "utf8")).toBe(readFileSync(join(ROOT, ".env.example"), "utf8"));
      writeFileSync(join(dir, ".env"), "ARTIFACTS_TTL=1d\n");
      const second = await makeUp();
      expect(second.stdout).not.toContain("copying");
      expect(readFileSync(join(dir, ".env"), "utf8")).toBe("ARTIFACTS_TTL=1d\n");
      expect(existsSync(join(dir, ".env.example"))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("states the defaults and settings the recipes use", () => {
    expect(read("compose.yaml")).toContain("stop_grace_period: 30s");
    expect(read("compose.yaml")).toContain("name: ${ARTIFACTS_VOLUME:-personal-server-artifacts-data}");
    expect(read("Makefile")).toContain("\t$(COMPOSE) down -t 30\n");
    expect(read("Makefile")).toContain("HEALTH_TIMEOUT ?= 90\n");
    expect(read("Makefile")).toContain("LOCAL_BASE := localhost/psa-node-base:24\n");
    expect(read("compose.yaml")).toContain('"${ARTIFACTS_PUBLISH:-127.0.0.1:8080}:8080"');
    expect(read("compose.yaml")).toContain("env_file: ${ARTIFACTS_ENV_FILE:-.env}");
    expect(read("Dockerfile")).toContain("ARG BASE=node:24-bookworm-slim");
    expect(read("Dockerfile")).toContain('CMD ["node", "/app/dist/main.js"]');
    const unit = read("deploy/systemd/personal-server-artifacts.service");
    for (const line of ["StateDirectory=personal-server-artifacts", "TimeoutStopSec=30", "ExecStart=/usr/bin/node /opt/personal-server-artifacts/dist/main.js"]) {
      expect(unit).toContain(line);
    }
    for (const text of [
      "`ARG BASE=node:24-bookworm-slim`",
      '`CMD ["node", "/app/dist/main.js"]`',
      "`stop_grace_period: 30s`",
      "`make down` passes `-t 30`",
      "`personal-server-artifacts-data`",
      "`HEALTH_TIMEOUT` seconds (default `90`)",
      "make build uses localhost/psa-node-base:24 when it exists",
      'default_ulimits',
      "error setting rlimit type 7: operation not permitted",
      "`TimeoutStopSec=30`",
      "`ARTIFACTS_SHUTDOWN_GRACE` (default `25s`)",
      "`/var/lib/personal-server-artifacts`",
      "ARTIFACTS_AUDIENCE=https://artifacts.example.com/psa",
      "node apps/server/dist/main.js",
      "pnpm --filter @personal-server/server deploy --prod --legacy /opt/personal-server-artifacts",
    ]) {
      expect(deployment).toContain(text);
    }
    expect(read("deploy/nginx/personal-server-artifacts.conf")).toContain("ARTIFACTS_AUDIENCE=https://artifacts.example.com/psa");
    expect(JSON.parse(read("package.json")).scripts.start).toMatch(/&& exec node apps\/server\/dist\/main\.js$/);
  });
});

describe("docs/installing.md", () => {
  it("lists the package's entry points, and the format and API versions it implements", () => {
    const pkg = JSON.parse(read("packages/artifacts/package.json")) as { exports: Record<string, unknown>; version: string };
    const entries = Object.keys(pkg.exports).filter((e) => e !== "./package.json");
    const named = [...installing.matchAll(/^\| `@personal-server\/artifacts(\/[a-z]+)?` \|/gm)].map((m) => (m[1] === undefined ? "." : `.${m[1]}`));
    expect(named.sort()).toEqual(entries.sort());
    expect(installing).toContain(`personal-server-artifacts-${pkg.version}.tgz`);
    const formatVersion = /\| format version, `u8` = (\d+) \|/.exec(read("docs/format.md"))?.[1];
    expect(formatVersion).toBeDefined();
    expect(installing).toContain(`**Encryption format version ${formatVersion}**`);
    // The storage layout is versioned apart from the encryption format: the one new operations get.
    const layoutVersion = /export const LAYOUT_VERSION = (\d+);/.exec(read("packages/artifacts/src/metadata.ts"))?.[1];
    expect(layoutVersion).toBeDefined();
    expect(installing).toContain(`**Storage layout version ${layoutVersion}**`);
    expect(installing).toContain("**HTTP API version 1** (the `/api/v1/` paths");
    expect(read("packages/artifacts/src/client/writer.ts")).toContain("/api/v1/");
    // The scratch project the package test installs into is an ES module project, as the doc says.
    expect(installing).toContain('`"type": "module"`');
    expect(installing).toContain("npm pkg set type=module");
    expect(read("deploy/test/package.test.ts")).toContain('type: "module"');
  });
});
