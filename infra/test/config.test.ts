// Stack configuration: what the program accepts, what it refuses (naming the key), and that
// Pulumi.yaml and the example stacks say the same as the code.
import * as pulumi from "@pulumi/pulumi";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { DEFAULT_RETENTION_DAYS } from "@personal-server/artifacts/constants";
import { CONFIG_KEYS, parseInfraConfig, PROJECT, type InfraConfig, type RawConfig } from "../src/config";
import { ACCOUNT, installMocks, loadYaml, setProjectConfig, valueOf } from "./helpers";

const GOOD = { accountId: ACCOUNT, tokenGenerations: ["2026-11-01"] };

/** Imports index.ts afresh with `config` set as the engine would, the way Pulumi runs the program. */
async function importProgram(config: Record<string, string | number | boolean | string[]>): Promise<typeof import("../index")> {
  await installMocks("dev");
  setProjectConfig(config);
  // A rotation reminder depends on today's date; it is tested in program.test.ts.
  vi.spyOn(pulumi.log, "warn").mockImplementation(async () => {});
  vi.resetModules();
  return import("../index.js");
}

describe("invalid config fails before any resource, naming the key", () => {
  beforeEach(() => vi.restoreAllMocks());

  const cases: [string, Record<string, string | number | boolean | string[]>, string][] = [
    ["accountId not 32 hex", { accountId: "0123456789abcdef" }, 'accountId: must be 32 hex characters (the Cloudflare account id), got "0123456789abcdef"'],
    ["accountId missing", { accountId: "" }, "accountId: is required: pulumi config set accountId <32-hex Cloudflare account id>"],
    ["retentionDays < 1", { retentionDays: 0 }, "retentionDays: must be between 1 and 3650, got 0"],
    ["retentionDays not an integer", { retentionDays: "7.5" }, 'retentionDays: must be an integer, got "7.5"'],
    ["an http:// origin", { corsOrigins: ["https://ok.example.com", "http://app.example.com"] }, 'corsOrigins: each entry must be an https origin like https://app.example.com (no path, no trailing slash), got "http://app.example.com"'],
    ["an origin with a path", { corsOrigins: ["https://app.example.com/"] }, 'corsOrigins: each entry must be an https origin like https://app.example.com (no path, no trailing slash), got "https://app.example.com/"'],
    ["corsOrigins not a list", { corsOrigins: "https://app.example.com" }, `corsOrigins: must be a list of strings (set items with: pulumi config set --path 'corsOrigins[0]' <value>), got "https://app.example.com"`],
    ["a malformed generation date", { tokenGenerations: ["2026-11-01", "2026-1-5"] }, 'tokenGenerations: each entry must be a calendar date YYYY-MM-DD, got "2026-1-5"'],
    ["an impossible generation date", { tokenGenerations: ["2026-02-30"] }, 'tokenGenerations: each entry must be a calendar date YYYY-MM-DD, got "2026-02-30"'],
    ["no generation", { tokenGenerations: [] }, "tokenGenerations: must list at least one date (YYYY-MM-DD)"],
    ["generations missing", { tokenGenerations: "" }, "tokenGenerations: is required: pulumi config set --path 'tokenGenerations[0]' YYYY-MM-DD (today's date)"],
    ["a duplicate generation", { tokenGenerations: ["2026-11-01", "2026-11-01"] }, "tokenGenerations: has duplicate dates"],
    ["tokenTtlDays negative", { tokenTtlDays: -1 }, "tokenTtlDays: must be between 0 and 3650, got -1"],
    ["location in upper case", { location: "WEUR" }, 'location: must be one of apac, eeur, enam, weur, wnam, oc (lower case), got "WEUR"'],
    ["an unknown jurisdiction", { jurisdiction: "us" }, 'jurisdiction: must be one of default, eu, fedramp, got "us"'],
    ["an unknown storage class", { storageClass: "Glacier" }, 'storageClass: must be one of Standard, InfrequentAccess, got "Glacier"'],
    ["a bad bucket name", { bucketName: "Artifacts_Bucket" }, 'bucketName: must be 3-63 characters of lower-case letters, digits and hyphens, starting and ending with a letter or digit, got "Artifacts_Bucket"'],
    ["a bad CIDR", { tokenAllowedIps: ["203.0.113.0/33"] }, 'tokenAllowedIps: each entry must be an IPv4 or IPv6 address or CIDR, got "203.0.113.0/33"'],
    ["notifications not a boolean", { notifications: "yes" }, 'notifications: must be true or false, got "yes"'],
  ];

  it.each(cases)("%s", async (_label, override, problem) => {
    const engine = await installMocks("dev");
    setProjectConfig({ ...GOOD, ...override });
    vi.resetModules();
    const failure = import("../index.js");
    await expect(failure).rejects.toThrow(`Invalid configuration ${PROJECT}:${problem}`);
    await expect(failure).rejects.toBeInstanceOf(pulumi.RunError);
    await expect(failure).rejects.toMatchObject({ key: `${PROJECT}:${problem.slice(0, problem.indexOf(":"))}` });
    expect(engine.registrations).toEqual([]);
  });
});

describe("valid config", () => {
  beforeEach(() => vi.restoreAllMocks());

  it("defaults: SDK retention, stack-named bucket, default jurisdiction, 90-day tokens, no CORS, no notifications", () => {
    expect(parseInfraConfig({ accountId: ACCOUNT.toUpperCase(), tokenGenerations: '["2026-11-01"]' }, "Prod_EU")).toEqual<InfraConfig>({
      accountId: ACCOUNT,
      bucketName: "personal-server-artifacts-prod-eu",
      location: undefined,
      jurisdiction: "default",
      storageClass: "Standard",
      retentionDays: DEFAULT_RETENTION_DAYS,
      corsOrigins: [],
      tokenGenerations: ["2026-11-01"],
      tokenTtlDays: 90,
      tokenAllowedIps: [],
      notifications: false,
    });
  });

  it("treats empty values as unset and orders generations by date", () => {
    const raw: RawConfig = { accountId: ACCOUNT, tokenGenerations: '["2026-11-01","2025-12-31"]', bucketName: "", location: "", retentionDays: "" };
    const cfg = parseInfraConfig(raw, "dev");
    expect(cfg.tokenGenerations).toEqual(["2025-12-31", "2026-11-01"]);
    expect(cfg.bucketName).toBe("personal-server-artifacts-dev");
    expect(cfg.location).toBeUndefined();
    expect(cfg.retentionDays).toBe(DEFAULT_RETENTION_DAYS);
  });

  it("reads every key through pulumi.Config when the program runs", async () => {
    const mod = await importProgram({
      ...GOOD,
      bucketName: "my-artifacts",
      jurisdiction: "eu",
      retentionDays: 3,
      tokenGenerations: ["2026-11-01", "2026-11-20"],
    });
    expect(mod.accountId).toBe(ACCOUNT);
    expect(await valueOf(mod.bucketName)).toBe("my-artifacts");
    expect(mod.jurisdiction).toBe("eu");
    expect(mod.s3Endpoint).toBe(`https://${ACCOUNT}.eu.r2.cloudflarestorage.com`);
    expect(mod.retentionDays).toBe(3);
    expect(await valueOf(mod.accessKeyId)).toBe("fake-token-id-2026-11-20");
    expect(mod.tokenExpiresOn).toBe("2027-02-18T00:00:00Z");
    expect(Object.keys(mod).sort()).toEqual(
      ["accessKeyId", "accountId", "artifactStore", "bucketName", "corsOrigins", "jurisdiction", "retentionDays", "s3Endpoint", "secretAccessKey", "tokenExpiresOn"],
    );
  });
});

describe("Pulumi.yaml and the example stacks", () => {
  const project = loadYaml("Pulumi.yaml") as { name: string; runtime: { name: string; options: Record<string, unknown> }; config: Record<string, { type: string; default?: unknown; description: string }> };

  it("is the nodejs TypeScript project the program's config namespace names", () => {
    expect(project.name).toBe(PROJECT);
    expect(project.runtime.name).toBe("nodejs");
    expect(project.runtime.options.typescript).toBe(true);
  });

  it("documents exactly the keys the program reads; the required ones have no default", () => {
    expect(Object.keys(project.config).sort()).toEqual([...CONFIG_KEYS].sort());
    for (const [key, spec] of Object.entries(project.config)) expect(spec.description, key).toMatch(/\S/);
    const required = Object.entries(project.config).filter(([, spec]) => !("default" in spec)).map(([key]) => key);
    expect(required.sort()).toEqual(["accountId", "tokenGenerations"]);
  });

  it("declares the same defaults the program applies", () => {
    // What the engine passes when a stack sets only the required keys: the declared defaults.
    const raw: RawConfig = { accountId: ACCOUNT, tokenGenerations: '["2026-11-01"]' };
    for (const [key, spec] of Object.entries(project.config)) {
      if ("default" in spec) raw[key as keyof RawConfig] = typeof spec.default === "string" ? spec.default : JSON.stringify(spec.default);
    }
    const withYamlDefaults = parseInfraConfig(raw, "dev");
    const withProgramDefaults = parseInfraConfig({ accountId: ACCOUNT, tokenGenerations: '["2026-11-01"]' }, "dev");
    expect(withYamlDefaults).toEqual(withProgramDefaults);
    expect(project.config.retentionDays?.default).toBe(DEFAULT_RETENTION_DAYS);
  });

  it.each(["Pulumi.dev.yaml", "Pulumi.prod.yaml"])("%s is valid config, carries one generation, an obviously fake account and no secrets", (file) => {
    const stack = loadYaml(file) as { config: Record<string, unknown> };
    // Only plain project config: no encryption salt, no provider credentials, no `secure:` values.
    expect(Object.keys(stack)).toEqual(["config"]);
    expect(JSON.stringify(stack.config)).not.toContain('"secure"');
    const raw: RawConfig = {};
    for (const [key, value] of Object.entries(stack.config)) {
      expect(key.startsWith(`${PROJECT}:`), key).toBe(true);
      raw[key.slice(PROJECT.length + 1) as keyof RawConfig] = typeof value === "string" ? value : JSON.stringify(value);
    }
    const cfg = parseInfraConfig(raw, file.split(".")[1]!);
    expect(cfg.accountId).toBe("0".repeat(32));
    expect(cfg.tokenGenerations).toHaveLength(1);
  });
});
