import { existsSync, mkdtempSync, mkdirSync, chmodSync, chownSync, statSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, createArtifactStore, loadConfig } from "@personal-server/artifacts";
import { parseDotEnv, readEnvironment, repositoryRoot } from "@personal-server/artifacts/internal";

const KEY = Buffer.alloc(32, 7).toString("base64");
const KEY2 = Buffer.alloc(32, 9).toString("base64");
const tempDir = () => mkdtempSync(join(tmpdir(), "psa-config-"));

function problemsOf(env: Record<string, string>): { variable: string; message: string }[] {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).details!.problems as { variable: string; message: string }[];
  }
  throw new Error("expected a ConfigError");
}

const r2 = {
  R2_ACCOUNT_ID: "0".repeat(32),
  R2_ACCESS_KEY_ID: "a".repeat(32),
  R2_SECRET_ACCESS_KEY: "b".repeat(64),
  R2_BUCKET_NAME: "personal-server-artifacts",
  ARTIFACTS_MASTER_KEY: KEY,
};

describe("loadConfig", () => {
  it("reads the nonce store URL without ever echoing its password, the trusted proxies and the auth failure limit", () => {
    const dir = tempDir();
    const base = { ARTIFACTS_LOCAL_DIR: dir, ARTIFACTS_MASTER_KEY: KEY };
    const defaults = loadConfig(base);
    expect([defaults.nonceStore, defaults.trustedProxies, defaults.authFailureLimit]).toEqual([{ kind: "memory" }, [], 60]);
    const store = (url: string) => loadConfig({ ...base, ARTIFACTS_NONCE_STORE: url }).nonceStore;
    expect(store("redis://127.0.0.1")).toEqual({
      kind: "redis", tls: false, host: "127.0.0.1", port: 6379, db: 0, username: undefined, password: undefined, display: "redis://127.0.0.1/0",
    });
    expect(store("rediss://app:s%40cret-obviously-fake@cache.example.com:6380/3")).toEqual({
      kind: "redis", tls: true, host: "cache.example.com", port: 6380, db: 3, username: "app", password: "s@cret-obviously-fake",
      display: "rediss://app:***@cache.example.com:6380/3",
    });
    expect(store("redis://:only-a-password-obviously-fake@[::1]:7000")).toMatchObject({ host: "::1", port: 7000, username: undefined, password: "only-a-password-obviously-fake", display: "redis://:***@[::1]:7000/0" });
    for (const bad of ["http://127.0.0.1", "redis://:pw-obviously-fake@127.0.0.1/x", "redis://:pw-obviously-fake@127.0.0.1/0?tls=1", "redis://", "not a url"]) {
      const problems = problemsOf({ ...base, ARTIFACTS_NONCE_STORE: bad });
      expect(problems).toEqual([{ variable: "ARTIFACTS_NONCE_STORE", message: "must be redis[s]://[[user]:password@]host[:port][/db]" }]);
    }
    const proxies = loadConfig({ ...base, ARTIFACTS_TRUSTED_PROXIES: "127.0.0.1, 10.0.0.0/8,::1", ARTIFACTS_AUTH_FAILURE_LIMIT: "5" });
    expect([proxies.trustedProxies, proxies.authFailureLimit]).toEqual([["127.0.0.1", "10.0.0.0/8", "::1"], 5]);
    expect(problemsOf({ ...base, ARTIFACTS_TRUSTED_PROXIES: "0.0.0.0/0" })).toEqual([
      {
        variable: "ARTIFACTS_TRUSTED_PROXIES",
        message: '"0.0.0.0/0" would trust every address, so any client could choose its own with X-Forwarded-For; list the proxy\'s address (e.g. 127.0.0.1)',
      },
    ]);
    expect(problemsOf({ ...base, ARTIFACTS_TRUSTED_PROXIES: "proxy.local,10.0.0.0/33", ARTIFACTS_AUTH_FAILURE_LIMIT: "0" })).toEqual([
      { variable: "ARTIFACTS_TRUSTED_PROXIES", message: '"proxy.local" is not an IP address or CIDR range like 10.0.0.0/8 or ::1' },
      { variable: "ARTIFACTS_TRUSTED_PROXIES", message: '"10.0.0.0/33" is not an IP address or CIDR range like 10.0.0.0/8 or ::1' },
      { variable: "ARTIFACTS_AUTH_FAILURE_LIMIT", message: `must be a whole number from 1 to ${Number.MAX_SAFE_INTEGER}` },
    ]);
  });

  it("defaults to local storage and, with create, generates a 0600 dev master key once", () => {
    const dir = join(tempDir(), "data");
    const first = loadConfig({ ARTIFACTS_LOCAL_DIR: dir }, { create: true });
    expect(first.storage).toEqual({ kind: "local", dir });
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(first.masterKeySource).toEqual({ kind: "file", path: join(dir, ".master-key"), generated: true });
    expect(statSync(join(dir, ".master-key")).mode & 0o777).toBe(0o600);
    const second = loadConfig({ ARTIFACTS_LOCAL_DIR: dir }, { create: true });
    expect(second.masterKeySource).toMatchObject({ generated: false });
    expect(second.masterKeys.keys.get("default")).toEqual(first.masterKeys.keys.get("default"));
    expect(first.ttlSeconds).toBe(7 * 86400);
    expect(first.maxBytes).toBe(5 * 1024 ** 3);
    expect(first.s3TimeoutMs).toBe(30000);
    expect(first.s3ConnectTimeoutMs).toBe(5000);
    expect(first.sweepIntervalSeconds).toBe(3600);
    expect(first.host).toBe("127.0.0.1");
    expect(first.port).toBe(8080);
    expect(first.shutdownGraceSeconds).toBe(25);
    // Without create, the existing key is read, not regenerated.
    const reader = loadConfig({ ARTIFACTS_LOCAL_DIR: dir });
    expect(reader.masterKeySource).toEqual({ kind: "file", path: join(dir, ".master-key"), generated: false });
    expect(reader.masterKeys.keys.get("default")).toEqual(first.masterKeys.keys.get("default"));
  });

  it("without create writes nothing: a missing directory and key are reported, and a store refuses them", () => {
    const dir = join(tempDir(), "typo");
    const config = loadConfig({ ARTIFACTS_LOCAL_DIR: dir, ARTIFACTS_SHUTDOWN_GRACE: "5s" });
    expect(config.masterKeySource).toEqual({ kind: "missing", path: join(dir, ".master-key") });
    expect(config.masterKeys.keys.size).toBe(0);
    expect(config.shutdownGraceSeconds).toBe(5);
    expect(existsSync(dir)).toBe(false);
    expect(() => createArtifactStore(config)).toThrow(
      `no master key: ${join(dir, ".master-key")} does not exist and ARTIFACTS_MASTER_KEY(S) is unset; check ARTIFACTS_LOCAL_DIR names the directory that holds it, or set ARTIFACTS_MASTER_KEYS`,
    );
    expect(existsSync(dir)).toBe(false);
    // Keys from the environment need no file; the directory is still not created.
    expect(loadConfig({ ARTIFACTS_LOCAL_DIR: dir, ARTIFACTS_MASTER_KEY: KEY }).masterKeySource).toEqual({ kind: "env" });
    expect(existsSync(dir)).toBe(false);
    expect(() => loadConfig({ ARTIFACTS_LOCAL_DIR: dir, ARTIFACTS_SHUTDOWN_GRACE: "soon" })).toThrow(/ARTIFACTS_SHUTDOWN_GRACE/);
  });

  it("refuses a local dir writable by others", () => {
    const dir = tempDir();
    chmodSync(dir, 0o777);
    expect(() => loadConfig({ ARTIFACTS_LOCAL_DIR: dir })).toThrow(/writable by group or others/);
  });

  it("refuses a dev key file readable by others", () => {
    const dir = tempDir();
    chmodSync(dir, 0o700);
    writeFileSync(join(dir, ".master-key"), `${KEY}\n`, { mode: 0o644 });
    chmodSync(join(dir, ".master-key"), 0o644);
    expect(() => loadConfig({ ARTIFACTS_LOCAL_DIR: dir })).toThrow(/readable by group or others/);
  });

  it("selects r2 with the endpoint per jurisdiction", () => {
    const config = loadConfig(r2);
    expect(config.storage).toMatchObject({
      kind: "r2",
      endpoint: `https://${"0".repeat(32)}.r2.cloudflarestorage.com`,
      region: "auto",
      bucket: "personal-server-artifacts",
    });
    expect(loadConfig({ ...r2, R2_JURISDICTION: "eu" }).storage).toMatchObject({
      endpoint: `https://${"0".repeat(32)}.eu.r2.cloudflarestorage.com`,
    });
    expect(loadConfig({ ...r2, R2_JURISDICTION: "fedramp" }).storage).toMatchObject({
      endpoint: `https://${"0".repeat(32)}.fedramp.r2.cloudflarestorage.com`,
    });
    expect(config.masterKeySource).toEqual({ kind: "env" });
  });

  it("names every missing and malformed variable at once", () => {
    const problems = problemsOf({ R2_ACCOUNT_ID: "not-hex", ARTIFACTS_TTL: "7 days", PORT: "99999" });
    expect(problems.map((p) => p.variable).sort()).toEqual(
      ["ARTIFACTS_MASTER_KEY", "ARTIFACTS_TTL", "PORT", "R2_ACCESS_KEY_ID", "R2_ACCOUNT_ID", "R2_BUCKET_NAME", "R2_SECRET_ACCESS_KEY"].sort(),
    );
    expect(problems.find((p) => p.variable === "R2_ACCOUNT_ID")!.message).toMatch(/32 hex/);
  });

  it("refuses R2 and S3 together, and a bad jurisdiction", () => {
    expect(problemsOf({ ...r2, S3_BUCKET: "x" })[0]!.message).toMatch(/both R2_\* and S3_\*/);
    expect(problemsOf({ ...r2, R2_JURISDICTION: "us" })[0]).toEqual({
      variable: "R2_JURISDICTION",
      message: "must be one of default, eu, fedramp",
    });
  });

  it("selects s3 with all four variables and a default region", () => {
    const config = loadConfig({
      S3_ENDPOINT: "http://127.0.0.1:9000/",
      S3_ACCESS_KEY_ID: "test",
      S3_SECRET_ACCESS_KEY: "test",
      S3_BUCKET: "bucket",
      ARTIFACTS_MASTER_KEY: KEY,
    });
    expect(config.storage).toEqual({
      kind: "s3",
      endpoint: "http://127.0.0.1:9000",
      region: "us-east-1",
      bucket: "bucket",
      accessKeyId: "test",
      secretAccessKey: "test",
    });
    expect(problemsOf({ S3_BUCKET: "bucket" }).map((p) => p.variable)).toEqual([
      "S3_ENDPOINT",
      "S3_ACCESS_KEY_ID",
      "S3_SECRET_ACCESS_KEY",
      "ARTIFACTS_MASTER_KEY",
    ]);
  });

  it("parses master key lists and never echoes key material", () => {
    const config = loadConfig({ ...r2, ARTIFACTS_MASTER_KEY: "", ARTIFACTS_MASTER_KEYS: `new:${KEY2},old:${KEY}` });
    expect(config.masterKeys.currentKid).toBe("new");
    expect([...config.masterKeys.keys.keys()]).toEqual(["new", "old"]);
    const secretish = "c2VjcmV0LW1hdGVyaWFsLXRoYXQtaXMtbm90LTMyLWJ5dGVz";
    let message = "";
    try {
      loadConfig({ ...r2, ARTIFACTS_MASTER_KEY: "", ARTIFACTS_MASTER_KEYS: `a:${secretish}` });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain("ARTIFACTS_MASTER_KEYS: entry 1 must be kid:base64");
    expect(message).not.toContain(secretish);
    expect(problemsOf({ ...r2, ARTIFACTS_MASTER_KEYS: `a:${KEY}` })[0]!.message).toMatch(/not both/);
    expect(problemsOf({ ...r2, ARTIFACTS_MASTER_KEY: "", ARTIFACTS_MASTER_KEYS: `a:${KEY},a:${KEY2}` })[0]!.message).toMatch(
      /appears twice/,
    );
  });

  it("parses TTLs, intervals, tokens, audience and origins", () => {
    const dir = tempDir();
    const config = loadConfig({
      ARTIFACTS_LOCAL_DIR: dir,
      ARTIFACTS_TTL: "36h",
      ARTIFACTS_SWEEP_INTERVAL: "0",
      ARTIFACTS_AUDIENCE: "https://example.com/artifacts/",
      ARTIFACTS_CORS_ORIGINS: "https://a.example.com, http://localhost:3000",
      ARTIFACTS_WRITER_TOKEN: "w".repeat(32),
    });
    expect(config.ttlSeconds).toBe(36 * 3600);
    expect(config.sweepIntervalSeconds).toBe(0);
    expect(config.audience).toBe("https://example.com/artifacts");
    expect(config.corsOrigins).toEqual(["https://a.example.com", "http://localhost:3000"]);
    expect(loadConfig({ ARTIFACTS_LOCAL_DIR: dir, ARTIFACTS_TTL: "90m" }).ttlSeconds).toBe(5400);
    expect(loadConfig({ ARTIFACTS_LOCAL_DIR: dir, ARTIFACTS_TTL: "3600s" }).ttlSeconds).toBe(3600);
    const problems = problemsOf({
      ARTIFACTS_LOCAL_DIR: dir,
      ARTIFACTS_WRITER_TOKEN: "short",
      ARTIFACTS_CORS_ORIGINS: "https://a.example.com/path",
      ARTIFACTS_AUDIENCE: "ftp://x",
      ARTIFACTS_TTL: "0d",
    });
    expect(problems.map((p) => p.variable).sort()).toEqual(
      ["ARTIFACTS_AUDIENCE", "ARTIFACTS_CORS_ORIGINS", "ARTIFACTS_TTL", "ARTIFACTS_WRITER_TOKEN"].sort(),
    );
  });

  it(".env comes from the working directory and this repository's root only: never from an ancestor of the working directory", () => {
    // Anyone who can write /tmp can make it look like a repository root (pnpm-workspace.yaml) with a .env.
    const planted = tempDir();
    writeFileSync(join(planted, "pnpm-workspace.yaml"), "packages: []\n");
    writeFileSync(join(planted, ".env"), "PSA_PLANTED_BY_SOMEONE_ELSE=1\n", { mode: 0o600 });
    const cwd = join(planted, "server");
    mkdirSync(cwd);
    writeFileSync(join(cwd, ".env"), "PSA_FROM_CWD=1\n", { mode: 0o600 });
    const before = process.cwd();
    try {
      process.chdir(cwd);
      const env = readEnvironment();
      expect([env.PSA_FROM_CWD, env.PSA_PLANTED_BY_SOMEONE_ELSE]).toEqual(["1", undefined]);
    } finally {
      process.chdir(before);
    }
    // The repository root is found from where the SDK's code lives, whatever the working directory.
    expect(repositoryRoot()).toBe(resolve(import.meta.dirname, "../../.."));
    const root = tempDir();
    writeFileSync(join(root, ".env"), "PSA_FROM_ROOT=1\nPSA_FROM_CWD=root\n", { mode: 0o600 });
    expect(readEnvironment({ cwd, root })).toMatchObject({ PSA_FROM_ROOT: "1", PSA_FROM_CWD: "1" });
  });

  it("refuses a .env that others may write, or that another user owns (config error naming it)", () => {
    const dir = tempDir();
    const file = join(dir, ".env");
    writeFileSync(file, "PSA_MODE_OK=1\n");
    chmodSync(file, 0o666);
    expect(() => readEnvironment({ cwd: dir, root: undefined })).toThrow(`${file} is writable by group or others; not reading it`);
    chmodSync(file, 0o644);
    expect(readEnvironment({ cwd: dir, root: undefined }).PSA_MODE_OK).toBe("1");
    if (process.getuid?.() === 0) {
      chownSync(file, 65534, 65534);
      expect(() => readEnvironment({ cwd: dir, root: undefined })).toThrow(`${file} is owned by another user; not reading it`);
    }
  });

  it("reads .env files from the working directory for unset variables only", () => {
    const dir = tempDir();
    mkdirSync(join(dir, "data"), { mode: 0o700 });
    writeFileSync(join(dir, ".env"), `# comment\nexport ARTIFACTS_TTL="36h"\nPORT=9090 # trailing\nHOST=\n`);
    const cwd = process.cwd();
    const saved = { ...process.env };
    try {
      process.chdir(dir);
      for (const name of ["ARTIFACTS_TTL", "PORT", "HOST", "R2_ACCOUNT_ID", "S3_BUCKET", "S3_ENDPOINT"]) delete process.env[name];
      process.env.ARTIFACTS_LOCAL_DIR = join(dir, "data");
      process.env.PORT = "7070";
      const config = loadConfig(readEnvironment({ cwd: dir, root: undefined }));
      expect(config.ttlSeconds).toBe(36 * 3600);
      expect(config.port).toBe(7070);
      expect(config.host).toBe("127.0.0.1");
    } finally {
      process.chdir(cwd);
      process.env = saved;
    }
    expect(parseDotEnv("A='x y'\nB=\"q\"\n C = d \n#E=f\nbad line")).toEqual({ A: "x y", B: "q", C: "d" });
    expect(readFileSync(join(dir, ".env"), "utf8")).toContain("36h");
  });
});

describe("loadConfig: monitoring", () => {
  it("serves metrics on loopback port 9464 unless ARTIFACTS_METRICS_LISTEN says otherwise, and reads the monthly budget", () => {
    const base = { ARTIFACTS_LOCAL_DIR: tempDir(), ARTIFACTS_MASTER_KEY: KEY };
    const defaults = loadConfig(base);
    expect([defaults.metricsListen, defaults.metricsToken, defaults.monthlyBudgetUsd]).toEqual([{ host: "127.0.0.1", port: 9464 }, undefined, 0]);
    const listen = (value: string) => loadConfig({ ...base, ARTIFACTS_METRICS_LISTEN: value }).metricsListen;
    expect(listen("0.0.0.0:9464")).toEqual({ host: "0.0.0.0", port: 9464 });
    expect(listen("[::1]:0")).toEqual({ host: "::1", port: 0 });
    expect(listen("off")).toBeUndefined();
    expect(loadConfig({ ...base, ARTIFACTS_MONTHLY_BUDGET_USD: "2.50" }).monthlyBudgetUsd).toBe(2.5);
    for (const bad of ["9464", "localhost:9464", "::1:9464", "[1.2.3.4]:80", "127.0.0.1:65536", "127.0.0.1:"]) {
      expect(problemsOf({ ...base, ARTIFACTS_METRICS_LISTEN: bad })).toEqual([
        { variable: "ARTIFACTS_METRICS_LISTEN", message: `must be ADDRESS:PORT like 127.0.0.1:9464 or [::1]:9464, or off; got "${bad}"` },
      ]);
    }
    for (const bad of ["-1", "five", "1e3", "$5"]) {
      expect(problemsOf({ ...base, ARTIFACTS_MONTHLY_BUDGET_USD: bad })).toEqual([
        { variable: "ARTIFACTS_MONTHLY_BUDGET_USD", message: `must be US dollars a month like 0, 5 or 2.50; got "${bad}"` },
      ]);
    }
  });
});
