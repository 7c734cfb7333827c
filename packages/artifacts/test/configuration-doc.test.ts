// docs/configuration.md is the one variable reference; .env.example lists the same variables.
// They must agree both ways (names and defaults), and both must agree with loadConfig: every
// variable it reads is documented, and each documented default is what it does when unset.
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "@personal-server/artifacts";

const root = resolve(import.meta.dirname, "../../..");
const doc = readFileSync(join(root, "docs/configuration.md"), "utf8");
const example = readFileSync(join(root, ".env.example"), "utf8");

/** `| \`NAME\` | default | meaning |` rows: a literal default is one code span, anything else means none. */
function documented(): Map<string, string> {
  const out = new Map<string, string>();
  for (const [, name, cell] of doc.matchAll(/^\| `([A-Z][A-Z0-9_]+)` \| ([^|]+) \|/gm)) {
    if (out.has(name!)) throw new Error(`${name} is documented twice`);
    const literal = /^`([^`]+)`$/.exec(cell!.trim());
    out.set(name!, literal ? literal[1]! : "");
  }
  return out;
}

/** `# NAME=default   # comment` lines: the value after "=" is the default, empty for none. */
function listed(): Map<string, string> {
  const out = new Map<string, string>();
  for (const [, name, value] of example.matchAll(/^# ([A-Z][A-Z0-9_]+)=(\S*)/gm)) {
    if (out.has(name!)) throw new Error(`${name} is listed twice in .env.example`);
    out.set(name!, value!);
  }
  return out;
}

const KEY = Buffer.alloc(32, 7).toString("base64");
const localBase = () => ({ ARTIFACTS_LOCAL_DIR: join(mkdtempSync(join(tmpdir(), "psa-config-doc-")), "data"), ARTIFACTS_MASTER_KEY: KEY });
const r2Base = () => ({
  R2_ACCOUNT_ID: "0".repeat(32),
  R2_ACCESS_KEY_ID: "a".repeat(32),
  R2_SECRET_ACCESS_KEY: "b".repeat(64),
  R2_BUCKET_NAME: "personal-server-artifacts",
  ARTIFACTS_MASTER_KEY: KEY,
});
const s3Base = () => ({
  S3_ENDPOINT: "http://127.0.0.1:9000",
  S3_ACCESS_KEY_ID: "test",
  S3_SECRET_ACCESS_KEY: "test",
  S3_BUCKET: "artifacts",
  ARTIFACTS_MASTER_KEY: KEY,
});
/** A complete configuration of the storage a variable belongs to, without that variable. */
const baseFor = (name: string): Record<string, string> =>
  name.startsWith("R2_") ? r2Base() : name.startsWith("S3_") ? s3Base() : localBase();

/** The names loadConfig looks up, recorded as it reads them. */
function namesRead(env: Record<string, string>): Set<string> {
  const read = new Set<string>();
  const recording = new Proxy(env, {
    get(target, name) {
      if (typeof name === "string") read.add(name);
      return target[name as string];
    },
  });
  loadConfig(recording);
  return read;
}

describe("docs/configuration.md", () => {
  const docs = documented();
  const env = listed();

  it("documents the variables .env.example lists, and no others, with the same defaults", () => {
    expect(docs.size).toBeGreaterThan(20);
    expect([...docs.keys()].sort()).toEqual([...env.keys()].sort());
    for (const [name, value] of env) expect({ name, default: docs.get(name) }).toEqual({ name, default: value });
  });

  it("documents every variable loadConfig reads, on every kind of storage", () => {
    const read = new Set([...namesRead(localBase()), ...namesRead(r2Base()), ...namesRead(s3Base())]);
    expect([...read].filter((name) => !docs.has(name)).sort()).toEqual([]);
    expect([...docs.keys()].filter((name) => !read.has(name)).sort()).toEqual([]);
  });

  it("gives as each default what loadConfig does when the variable is unset", () => {
    const withDefaults = [...docs].filter(([, value]) => value !== "");
    expect(withDefaults.map(([name]) => name).sort()).toEqual(
      ["ARTIFACTS_AUTH_FAILURE_LIMIT", "ARTIFACTS_MAX_BYTES", "ARTIFACTS_METRICS_LISTEN", "ARTIFACTS_MONTHLY_BUDGET_USD", "ARTIFACTS_S3_TIMEOUT_MS", "ARTIFACTS_SHUTDOWN_GRACE", "ARTIFACTS_SWEEP_INTERVAL", "ARTIFACTS_TTL", "ARTIFACTS_WEB_UI", "HOST", "PORT", "R2_JURISDICTION", "S3_REGION"],
    );
    for (const [name, value] of withDefaults) {
      const base = baseFor(name);
      expect({ name, config: loadConfig({ ...base, [name]: value }) }).toEqual({ name, config: loadConfig(base) });
    }
  });

  it("would notice a wrong default", () => {
    const base = localBase();
    expect(loadConfig({ ...base, ARTIFACTS_TTL: "6d" })).not.toEqual(loadConfig(base));
  });
});
