// export-env: the stack-output mapping and the .env merge as pure functions over fixtures,
// then the command itself as a real process: with no pulumi on PATH, and with a stand-in
// `pulumi` executable (the real CLI needs the Pulumi service, unreachable here).
import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { envFromStackOutputs, hasMasterKey, MANAGED_KEYS, mergeDotenv, type EnvVars } from "../src/env";
import { parseArgs, PULUMI_MISSING, writeEnvFile } from "../src/export-env";

const infraDir = path.resolve(__dirname, "..");
const fixture = (name: string): string => readFileSync(path.join(__dirname, "fixtures", name), "utf8");
const outputs = (): Record<string, unknown> => JSON.parse(fixture("stack-outputs.json")) as Record<string, unknown>;
const SECRET = "0123456789abcdef".repeat(4);
const ACCOUNT = "0123456789abcdef0123456789abcdef";

const EXPECTED_VARS: EnvVars = [
  ["R2_ACCOUNT_ID", ACCOUNT],
  ["R2_ACCESS_KEY_ID", "fake-token-id-2026-11-01"],
  ["R2_SECRET_ACCESS_KEY", SECRET],
  ["R2_BUCKET_NAME", "personal-server-artifacts-dev"],
  ["R2_JURISDICTION", "default"],
  ["ARTIFACTS_TTL", "7d"],
  ["ARTIFACTS_CORS_ORIGINS", "https://app.example.com,https://admin.example.com:8443"],
];

describe("stack outputs -> SDK variables", () => {
  it("maps artifactStore to R2_*, retentionDays to ARTIFACTS_TTL and the bucket's CORS origins to ARTIFACTS_CORS_ORIGINS", () => {
    expect(envFromStackOutputs(outputs())).toEqual(EXPECTED_VARS);
    const none = outputs();
    none.corsOrigins = [];
    expect(new Map(envFromStackOutputs(none)).get("ARTIFACTS_CORS_ORIGINS")).toBe("");
    for (const bad of [undefined, "https://app.example.com", ["http://app.example.com"], ["https://app.example.com/"]]) {
      const o = outputs();
      o.corsOrigins = bad;
      expect(() => envFromStackOutputs(o)).toThrow(`stack output corsOrigins must be a list of https origins (run pulumi up for this stack), got ${JSON.stringify(bad)}`);
    }
  });

  it("follows the jurisdiction and retention", () => {
    const o = outputs();
    o.artifactStore = { ...(o.artifactStore as object), jurisdiction: "eu" };
    o.retentionDays = 30;
    const vars = new Map(envFromStackOutputs(o));
    expect(vars.get("R2_JURISDICTION")).toBe("eu");
    expect(vars.get("ARTIFACTS_TTL")).toBe("30d");
  });

  it("refuses outputs read without --show-secrets", () => {
    const o = outputs();
    o.artifactStore = "[secret]";
    expect(() => envFromStackOutputs(o)).toThrow("the stack has no artifactStore output: run pulumi up for this stack first");
    o.artifactStore = { ...(outputs().artifactStore as object), secretAccessKey: "[secret]" };
    expect(() => envFromStackOutputs(o)).toThrow(
      'stack output artifactStore.secretAccessKey must be 64 hex characters (SHA-256 of the token value), got "[secret]" (secrets were not shown: run pulumi stack output with --show-secrets)',
    );
  });

  it("refuses a stack that was never deployed, and malformed values, without echoing the secret", () => {
    expect(() => envFromStackOutputs({})).toThrow("the stack has no artifactStore output: run pulumi up for this stack first");
    const o = outputs();
    o.artifactStore = { ...(outputs().artifactStore as object), secretAccessKey: "not-hex-but-sensitive" };
    expect(() => envFromStackOutputs(o)).toThrow("stack output artifactStore.secretAccessKey must be 64 hex characters (SHA-256 of the token value), got a value");
    o.artifactStore = { ...(outputs().artifactStore as object), jurisdiction: "us" };
    expect(() => envFromStackOutputs(o)).toThrow('stack output artifactStore.jurisdiction must be default, eu or fedramp, got "us"');
    const p = outputs();
    p.retentionDays = 0;
    expect(() => envFromStackOutputs(p)).toThrow("stack output retentionDays must be a positive integer, got 0");
  });
});

describe(".env merge", () => {
  it("writes all variables into a new file", () => {
    const result = mergeDotenv(undefined, EXPECTED_VARS, "pulumi stack dev");
    expect(result.text).toBe(
      [
        "# Cloudflare R2, written by export-env from pulumi stack dev",
        ...EXPECTED_VARS.map(([k, v]) => `${k}=${v}`),
        "",
      ].join("\n"),
    );
    expect(result.added).toEqual(MANAGED_KEYS);
  });

  it("rewrites managed lines in place, drops their duplicates, keeps every other line byte for byte", () => {
    const existing = fixture("existing.env");
    const result = mergeDotenv(existing, EXPECTED_VARS, "pulumi stack dev");
    expect(result.text).toBe(fixture("merged.env"));
    expect(result.updated).toEqual(["R2_ACCOUNT_ID", "R2_BUCKET_NAME"]);
    expect(result.unchanged).toEqual(["ARTIFACTS_TTL"]);
    expect(result.added).toEqual(["R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY", "R2_JURISDICTION", "ARTIFACTS_CORS_ORIGINS"]);
    const managed = /^\s*(export\s+)?(R2_[A-Z_]+|ARTIFACTS_TTL|ARTIFACTS_CORS_ORIGINS)\s*=/;
    const others = (text: string): string[] => text.split("\n").filter((l) => !managed.test(l) && !l.startsWith("# Cloudflare R2, written"));
    expect(others(result.text).filter((l) => l !== "")).toEqual(others(existing).filter((l) => l !== ""));
  });

  it("never touches a master key, and refuses to write one", () => {
    const existing = "ARTIFACTS_MASTER_KEY=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nARTIFACTS_MASTER_KEYS=\n";
    const merged = mergeDotenv(existing, EXPECTED_VARS).text;
    expect(merged.startsWith(existing)).toBe(true);
    expect(() => mergeDotenv(existing, [["ARTIFACTS_MASTER_KEY", "BBBB"]])).toThrow(
      "refusing to write ARTIFACTS_MASTER_KEY: export-env only writes R2_ACCOUNT_ID, R2_ACCESS_KEY_ID, R2_SECRET_ACCESS_KEY, R2_BUCKET_NAME, R2_JURISDICTION, ARTIFACTS_TTL, ARTIFACTS_CORS_ORIGINS",
    );
    expect(() => mergeDotenv(existing, [["R2_BUCKET_NAME", "two words"]])).toThrow(
      "refusing to write R2_BUCKET_NAME: its value has characters .env would need quoting for",
    );
    expect(hasMasterKey(existing)).toBe(true);
    expect(hasMasterKey("ARTIFACTS_MASTER_KEYS=\n# ARTIFACTS_MASTER_KEY=x\n")).toBe(false);
  });

  it("is idempotent", () => {
    const once = mergeDotenv(fixture("existing.env"), EXPECTED_VARS).text;
    const twice = mergeDotenv(once, EXPECTED_VARS);
    expect(twice.text).toBe(once);
    expect(twice.updated).toEqual([]);
    expect(twice.added).toEqual([]);
  });

  it("keeps CRLF line endings and a missing final newline's content", () => {
    const result = mergeDotenv("HOST=0.0.0.0\r\nR2_BUCKET_NAME=old\r\nPORT=1", EXPECTED_VARS);
    const lines = result.text.split("\n");
    expect(lines.slice(0, 3)).toEqual(["HOST=0.0.0.0\r", "R2_BUCKET_NAME=personal-server-artifacts-dev\r", "PORT=1\r"]);
    expect(lines.slice(3, -1).every((l) => l.endsWith("\r"))).toBe(true);
    expect(lines[lines.length - 1]).toBe("");
  });
});

describe("writing .env", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), "infra-env-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("replaces the file with mode 0600, leaving no temporary file", () => {
    const file = path.join(dir, ".env");
    writeFileSync(file, "OLD=1\n", { mode: 0o644 });
    chmodSync(file, 0o644);
    writeEnvFile(file, "NEW=1\n");
    expect(readFileSync(file, "utf8")).toBe("NEW=1\n");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual([".env"]);
  });

  it("writes through a symlinked .env to its target", () => {
    const target = path.join(dir, "real.env");
    writeFileSync(target, "OLD=1\n");
    symlinkSync(target, path.join(dir, ".env"));
    writeEnvFile(path.join(dir, ".env"), "NEW=1\n");
    expect(readFileSync(target, "utf8")).toBe("NEW=1\n");
    expect(statSync(target).mode & 0o777).toBe(0o600);
  });
});

describe("command line", () => {
  it("parses --stack, --stack=, -s, --dotenv and a pnpm `--`", () => {
    expect(parseArgs(["--stack", "dev"])).toEqual({ stack: "dev", envFile: undefined, help: false });
    expect(parseArgs(["--", "--stack=prod", "--dotenv", "x/.env"])).toEqual({ stack: "prod", envFile: "x/.env", help: false });
    expect(parseArgs(["-s", "dev"]).stack).toBe("dev");
    expect(() => parseArgs(["--stack"])).toThrow("--stack needs a value");
    expect(() => parseArgs(["env"])).toThrow('unknown argument "env"');
  });
});

describe("export-env as a process", () => {
  const infraRequire = createRequire(path.join(infraDir, "package.json"));
  const tsNode = infraRequire.resolve("ts-node/register/transpile-only");
  const script = path.join(infraDir, "scripts", "export-env.ts");
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), "infra-export-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  function run(command: string, args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = spawn(command, args, { cwd: infraDir, env, stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      child.on("close", (code) => resolve({ code, stdout, stderr }));
    });
  }

  /** A `pulumi` stand-in (a node script) that records its working directory and arguments, then prints `stdout`. */
  function standInPulumi(stdout: string, exitCode = 0, stderr = ""): string {
    const bin = path.join(dir, "bin");
    mkdirSync(bin);
    const body = `
      const fs = require("node:fs");
      fs.writeFileSync(${JSON.stringify(path.join(dir, "pulumi-args"))}, [process.cwd(), ...process.argv.slice(2), ""].join("\\n"));
      process.stdout.write(${JSON.stringify(stdout)});
      process.stderr.write(${JSON.stringify(stderr)});
      process.exitCode = ${exitCode};
    `;
    writeFileSync(path.join(bin, "pulumi"), `#!${process.execPath}\n${body}`, { mode: 0o755 });
    return bin;
  }

  it("fails clearly, writing nothing, when the pulumi CLI is not installed", async () => {
    const emptyPath = path.join(dir, "empty-bin");
    mkdirSync(emptyPath);
    const envFile = path.join(dir, ".env");
    const result = await run(process.execPath, ["-r", tsNode, script, "--dotenv", envFile], { PATH: emptyPath });
    expect(result.stderr.trim()).toBe(PULUMI_MISSING);
    expect(result.code).toBe(1);
    expect(existsSync(envFile)).toBe(false);
  });

  it("runs `pulumi stack output --json --show-secrets --stack NAME` in infra/ and merges the result (via pnpm)", async () => {
    const bin = standInPulumi(fixture("stack-outputs.json"));
    const envFile = path.join(dir, ".env");
    writeFileSync(envFile, "ARTIFACTS_MASTER_KEYS=key-fake:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", { mode: 0o644 });
    const pnpmEnv = { PATH: `${bin}${path.delimiter}${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ""}`, HOME: dir };
    const result = await run("pnpm", ["--silent", "--filter", "@personal-server/infra", "export-env", "--stack", "dev", "--dotenv", envFile], pnpmEnv);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(readFileSync(path.join(dir, "pulumi-args"), "utf8").split("\n")).toEqual([infraDir, "stack", "output", "--json", "--show-secrets", "--stack", "dev", ""]);
    expect(readFileSync(envFile, "utf8")).toBe(
      [
        "ARTIFACTS_MASTER_KEYS=key-fake:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "",
        "# Cloudflare R2, written by export-env from pulumi stack dev",
        ...EXPECTED_VARS.map(([k, v]) => `${k}=${v}`),
        "",
      ].join("\n"),
    );
    expect(statSync(envFile).mode & 0o777).toBe(0o600);
    // Names only on the terminal, never values.
    expect(result.stdout.trim()).toBe(
      `export-env: ${envFile} (mode 0600): added R2_ACCOUNT_ID, R2_ACCESS_KEY_ID, R2_SECRET_ACCESS_KEY, R2_BUCKET_NAME, R2_JURISDICTION, ARTIFACTS_TTL, ARTIFACTS_CORS_ORIGINS`,
    );
    expect(result.stdout).not.toContain(SECRET);
  });

  it("passes pulumi's own error through and leaves .env alone", async () => {
    const bin = standInPulumi("", 255, "error: no stack named 'nope' found\n");
    const envFile = path.join(dir, ".env");
    writeFileSync(envFile, "PORT=1\n");
    const result = await run(process.execPath, ["-r", tsNode, script, "--stack", "nope", "--dotenv", envFile], { PATH: bin });
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toBe("export-env: `pulumi stack output --json --show-secrets --stack nope` failed (exit 255):\nerror: no stack named 'nope' found");
    expect(readFileSync(envFile, "utf8")).toBe("PORT=1\n");
  });

  it("warns when the .env has no master key", async () => {
    const bin = standInPulumi(fixture("stack-outputs.json"));
    const envFile = path.join(dir, ".env");
    const result = await run(process.execPath, ["-r", tsNode, script, "--dotenv", envFile], { PATH: bin });
    expect(result.code).toBe(0);
    expect(result.stderr.trim()).toBe("export-env: no ARTIFACTS_MASTER_KEY in that file; R2 storage needs one: pnpm artifacts keygen --env");
    expect(readFileSync(path.join(dir, "pulumi-args"), "utf8").split("\n")).toEqual([infraDir, "stack", "output", "--json", "--show-secrets", ""]);
  });
});
