import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { OPERATIONS_PREFIX, loadConfig } from "@personal-server/artifacts";
import { openBackend } from "@personal-server/artifacts/internal";
import type { Check } from "../src/commands/doctor.js";
import { GRANTEE, KEY_A, KEY_B, cli, cliJson, closedPort, localEnv, putLifecycle, runChild, s3Env, startServer, storeFor, tempDir } from "./helpers.js";

type Report = { ok: boolean; checks: Check[] };
const byName = (r: Report, name: string) => {
  const c = r.checks.find((x) => x.name === name);
  if (!c) throw new Error(`no check ${name} in ${JSON.stringify(r.checks.map((x) => x.name))}`);
  return c;
};

async function remaining(env: Record<string, string>, prefix: string): Promise<string[]> {
  const backend = await openBackend(loadConfig(env).storage, { timeoutMs: 10_000, connectTimeoutMs: 5000 });
  const keys: string[] = [];
  for await (const o of backend.list(prefix)) keys.push(o.key);
  await backend.close();
  return keys;
}

describe("doctor on local storage", () => {
  it("passes a good configuration, and leaves no probe behind", async () => {
    const env = localEnv({ ARTIFACTS_WRITER_TOKEN: "x".repeat(40) });
    const store = storeFor(env);
    const op = await store.createOperation({ grantee: GRANTEE, agent: "agent" });
    await store.close();
    const { code, json } = await cliJson<Report>(["doctor"], env);
    expect(code).toBe(0);
    expect(json.ok).toBe(true);
    expect(json.checks.map((c) => [c.name, c.status])).toEqual([
      ["configuration", "pass"],
      ["writer token", "pass"],
      ["bucket", "pass"],
      ["clock", "skip"],
      ["read/write", "pass"],
      ["master keys", "pass"],
      ["layouts", "pass"],
      ["lifecycle", "skip"],
    ]);
    expect(byName(json, "master keys").message).toBe(`unwrap the newest operation's data key (${op.operationId}, kid "key-a")`);
    expect(await remaining(env, `${OPERATIONS_PREFIX}.doctor-`)).toEqual([]);
  });

  it("fails when the loaded keys cannot unwrap the newest operation, naming the kid", async () => {
    const env = localEnv();
    const store = storeFor(env);
    await store.createOperation({ grantee: GRANTEE, agent: "agent" });
    await store.close();
    const { code, json } = await cliJson<Report>(["doctor"], { ...env, ARTIFACTS_MASTER_KEYS: KEY_B });
    expect(code).toBe(1);
    const keys = byName(json, "master keys");
    expect(keys.status).toBe("fail");
    expect(keys.message).toContain('"key-a"');
    expect(keys.fix).toBe("add the master key with that kid to ARTIFACTS_MASTER_KEYS (after the current one); without it those artifacts cannot be read");
  });

  it("reports every missing or malformed variable with its fix, then stops when storage variables are among them", async () => {
    const { code, json } = await cliJson<Report>(["doctor"], {
      ARTIFACTS_LOCAL_DIR: tempDir("doc"),
      S3_ENDPOINT: "http://127.0.0.1:1",
      ARTIFACTS_TTL: "a week",
      ARTIFACTS_WRITER_TOKEN: "short",
    });
    expect(code).toBe(1);
    expect(json.checks.filter((c) => c.status === "fail").map((c) => c.name)).toEqual(
      expect.arrayContaining(["S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "S3_BUCKET", "ARTIFACTS_TTL", "ARTIFACTS_WRITER_TOKEN"]),
    );
    expect(byName(json, "S3_BUCKET").message).toBe("required when any S3_* variable is set");
    expect(byName(json, "ARTIFACTS_TTL").fix).toBe("a whole number with a unit: 7d, 36h, 90m, 3600s");
    expect(byName(json, "ARTIFACTS_WRITER_TOKEN").fix).toBe("use at least 32 random characters: openssl rand -base64 32");
    expect(byName(json, "storage")).toEqual({
      name: "storage",
      status: "skip",
      message: "not checked: S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY, S3_BUCKET above must be fixed first",
    });
    expect(json.checks.map((c) => c.name)).not.toContain("endpoint");
  });

  it("checks storage with malformed master keys, skipping only the key check and writing no development key", async () => {
    const dir = join(tempDir("doc-keys"), "store");
    const store = storeFor({ ARTIFACTS_LOCAL_DIR: dir, ARTIFACTS_MASTER_KEYS: KEY_A });
    await store.createOperation({ grantee: GRANTEE, agent: "agent" });
    await store.close();
    const { code, json } = await cliJson<Report>(["doctor"], { ARTIFACTS_LOCAL_DIR: dir, ARTIFACTS_MASTER_KEYS: "key-a:c2hvcnQ=" });
    expect(code).toBe(1);
    expect(json.checks.map((c) => [c.name, c.status])).toEqual([
      ["ARTIFACTS_MASTER_KEYS", "fail"],
      ["storage", "pass"],
      ["writer token", "pass"],
      ["bucket", "pass"],
      ["clock", "skip"],
      ["read/write", "pass"],
      ["master keys", "skip"],
      ["layouts", "pass"],
      ["lifecycle", "skip"],
    ]);
    expect(byName(json, "storage").message).toBe(`storage variables well-formed: local directory ${dir}; checking it without ARTIFACTS_MASTER_KEYS (reported above)`);
    expect(byName(json, "master keys").message).toBe("not checked: the master key variables above must be fixed first");
    expect(existsSync(join(dir, ".master-key"))).toBe(false);
  });

  it("fails on a missing or empty directory (a mistyped ARTIFACTS_LOCAL_DIR) with the fix, and creates nothing", async () => {
    // The server's real directory beside the mistyped one: the fix names it, and nothing tells
    // the user to start the server (which would create "stroe" with a new master key).
    const parent = tempDir("doc-typo");
    const real = join(parent, "store");
    mkdirSync(real, { mode: 0o700 });
    writeFileSync(join(real, ".master-key"), "");
    const missing = join(parent, "stroe");
    const { code, json } = await cliJson<Report>(["doctor"], { ARTIFACTS_LOCAL_DIR: missing });
    expect(code).toBe(1);
    expect(json.checks.map((c) => [c.name, c.status])).toEqual([
      ["configuration", "pass"],
      ["local directory", "fail"],
    ]);
    expect(byName(json, "local directory")).toMatchObject({
      message: `${missing} does not exist`,
      fix: `check ARTIFACTS_LOCAL_DIR for a typo: it must name the directory that holds .master-key and operations/; this one does: ARTIFACTS_LOCAL_DIR=${real}`,
    });
    expect(existsSync(missing)).toBe(false);

    const empty = tempDir("doc-empty");
    const text = await cli(["doctor"], { ARTIFACTS_LOCAL_DIR: empty, ARTIFACTS_MASTER_KEYS: KEY_A });
    expect(text.code).toBe(1);
    expect(text.stdout).toContain(`fail  local directory  ${empty} is empty: no master key, no operations\n`);
    expect(text.stdout).toContain("fix: check ARTIFACTS_LOCAL_DIR for a typo: it must name the directory that holds .master-key and operations/");
    // Only this directory's name is in question: no "run the server once", which would fill it with a new key.
    expect(text.stdout).not.toContain("run the server once");
    expect(text.stdout).toContain("doctor: 1 check(s) failed\n");
    expect(readdirSync(empty)).toEqual([]);
  });

  it("fails on a directory with operations but no master key (key file lost, no key variables)", async () => {
    const env = localEnv();
    const store = storeFor(env);
    await store.createOperation({ grantee: GRANTEE, agent: "agent" });
    await store.close();
    const { code, json } = await cliJson<Report>(["doctor"], { ARTIFACTS_LOCAL_DIR: env.ARTIFACTS_LOCAL_DIR! });
    expect(code).toBe(1);
    const keys = byName(json, "master keys");
    const path = join(env.ARTIFACTS_LOCAL_DIR!, ".master-key");
    expect(keys).toEqual({
      name: "master keys",
      status: "fail",
      message: `1 operation(s) in ${env.ARTIFACTS_LOCAL_DIR} but no master key: ${path} is missing and ARTIFACTS_MASTER_KEY(S) is unset`,
      fix: `restore ${path} from a backup, or set ARTIFACTS_MASTER_KEYS to the key(s) that wrote them; without it they cannot be read`,
    });
    expect(json.checks.filter((c) => c.name === "master keys")).toHaveLength(1);
    expect(existsSync(path)).toBe(false);
  });

  it("--server checks a running server's /health and that it serves the configured storage", async () => {
    const dir = join(tempDir("doc-server"), "store");
    const server = await startServer({ ARTIFACTS_LOCAL_DIR: dir, ARTIFACTS_MASTER_KEYS: KEY_A });
    try {
      const env = { ARTIFACTS_LOCAL_DIR: dir, ARTIFACTS_MASTER_KEYS: KEY_A };
      const ok = await cliJson<Report>(["doctor", "--server", server.url], env);
      expect(byName(ok.json, "server")).toEqual({ name: "server", status: "pass", message: `${server.url}/health answers ok with local storage, as configured` });
      expect(ok.code).toBe(0);
      // The same through ARTIFACTS_SERVER_URL; an S3 configuration does not match a local server.
      const s3 = await s3Env("doctor-server", { ARTIFACTS_SERVER_URL: server.url });
      const mismatch = await cliJson<Report>(["doctor"], s3);
      expect(byName(mismatch.json, "server")).toMatchObject({
        status: "fail",
        message: `${server.url} serves local storage, but this configuration selects s3`,
      });
      expect(mismatch.code).toBe(1);
    } finally {
      await server.stop();
    }
    const down = await cliJson<Report>(["doctor", "--server", `http://127.0.0.1:${await closedPort()}`], localEnv());
    expect(byName(down.json, "server")).toMatchObject({ status: "fail", fix: "start the server (make up, or node apps/server/dist/main.js), or check the URL and port" });
    expect(byName(down.json, "server").message).toMatch(/^GET http:\/\/127\.0\.0\.1:\d+\/health failed: fetch failed \(.*ECONNREFUSED/);
    const bad = await cliJson<Report>(["doctor", "--server", "ftp://example"], localEnv());
    expect(byName(bad.json, "server").status).toBe("fail");
  });

  it("flags a malformed R2 account id with the dashboard advice", async () => {
    const r = await cli(["doctor"], {
      ARTIFACTS_LOCAL_DIR: tempDir("doc"),
      R2_ACCOUNT_ID: "my-account",
      R2_ACCESS_KEY_ID: "0".repeat(32),
      R2_SECRET_ACCESS_KEY: "0".repeat(64),
      R2_BUCKET_NAME: "personal-server-artifacts",
      ARTIFACTS_MASTER_KEYS: KEY_A,
    });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("fail  R2_ACCOUNT_ID  must be 32 hex characters (Cloudflare dashboard, right sidebar: Account ID)\n");
    expect(r.stdout).toContain("fix: copy the Account ID from the Cloudflare dashboard (right sidebar): 32 hex characters\n");
    expect(r.stdout).toContain("doctor: 1 check(s) failed\n");
  });
});

describe("doctor on S3 (moto)", () => {
  it("passes a good configuration with a lifecycle rule longer than the TTL", async () => {
    const env = await s3Env("doctor-ok", { ARTIFACTS_WRITER_TOKEN: "x".repeat(40), ARTIFACTS_TTL: "7d" });
    await putLifecycle(env.S3_ENDPOINT, env.S3_BUCKET, OPERATIONS_PREFIX, 8);
    const store = storeFor(env);
    const op = await store.createOperation({ grantee: GRANTEE, agent: "agent" });
    await store.close();
    const { code, json } = await cliJson<Report>(["doctor"], env);
    expect(json.checks.filter((c) => c.status !== "pass")).toEqual([]);
    expect(code).toBe(0);
    expect(json.checks.map((c) => c.name)).toEqual(["configuration", "writer token", "endpoint", "bucket", "clock", "read/write", "master keys", "layouts", "lifecycle"]);
    expect(byName(json, "endpoint").message).toMatch(/^127\.0\.0\.1 resolves to 127\.0\.0\.1 and accepts TCP on port \d+ \(\d+ ms\)$/);
    expect(byName(json, "master keys").message).toContain(op.operationId);
    expect(byName(json, "lifecycle").message).toBe('lifecycle rule "expire-operations" expires "operations/" after 8 days, longer than ARTIFACTS_TTL (7d)');
    expect(await remaining(env, `${OPERATIONS_PREFIX}.doctor-`)).toEqual([]);
  });

  it("fails when the lifecycle rule is not longer than ARTIFACTS_TTL: storage would delete live artifacts", async () => {
    const env = await s3Env("doctor-ttl", { ARTIFACTS_TTL: "7d" });
    await putLifecycle(env.S3_ENDPOINT, env.S3_BUCKET, OPERATIONS_PREFIX, 7);
    const { code, json } = await cliJson<Report>(["doctor"], env);
    expect(code).toBe(1);
    expect(byName(json, "lifecycle")).toEqual({
      name: "lifecycle",
      status: "fail",
      message: 'lifecycle rule "expire-operations" expires "operations/" after 7 day(s), not longer than ARTIFACTS_TTL (7d): storage would delete live artifacts',
      fix: "lengthen the rule to 8 days or more, or set ARTIFACTS_TTL below 7d",
    });
  });

  it("warns (does not fail) when there is no lifecycle rule", async () => {
    const env = await s3Env("doctor-nolc", { ARTIFACTS_WRITER_TOKEN: "x".repeat(40) });
    const { code, json } = await cliJson<Report>(["doctor"], env);
    expect(code).toBe(0);
    expect(byName(json, "lifecycle").status).toBe("warn");
    expect(byName(json, "lifecycle").message).toBe("no lifecycle rule expires operations/: expired artifacts are deleted by the sweep alone");
  });

  it("fails a missing bucket with the Bucket Not Found advice", async () => {
    const env = await s3Env("doctor-nobucket");
    const r = await cli(["doctor"], { ...env, S3_BUCKET: "no-such-bucket-here" });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/fail  bucket +bucket "no-such-bucket-here" does not exist at http:\/\/127\.0\.0\.1:\d+\n/);
    expect(r.stdout).toContain(`fix: Bucket Not Found: check S3_BUCKET ("no-such-bucket-here") exists at ${env.S3_ENDPOINT}`);
  });

  it("fails a closed port at the endpoint check with the connection advice, without waiting on retries", async () => {
    const port = await closedPort();
    const env = await s3Env("doctor-port");
    const { code, json } = await cliJson<Report>(["doctor"], { ...env, S3_ENDPOINT: `http://127.0.0.1:${port}` });
    expect(code).toBe(1);
    const endpoint = byName(json, "endpoint");
    expect(endpoint.status).toBe("fail");
    expect(endpoint.message).toBe(`http://127.0.0.1:${port}: TCP to 127.0.0.1:${port} failed (connect ECONNREFUSED 127.0.0.1:${port})`);
    expect(endpoint.fix).toBe(
      `Connection error: check S3_ENDPOINT (http://127.0.0.1:${port}: scheme, host and port) and that the storage server is running and reachable from here`,
    );
    expect(byName(json, "bucket")).toEqual({ name: "bucket", status: "skip", message: "not checked: the endpoint is unreachable" });
  });

  it("goes on to the storage checks when only unrelated variables are malformed, and finds the storage's own problem", async () => {
    const env = await s3Env("doctor-partial");
    const { code, json } = await cliJson<Report>(["doctor"], {
      ...env,
      S3_BUCKET: "no-such-bucket-here",
      ARTIFACTS_TTL: "a week",
      ARTIFACTS_WRITER_TOKEN: "short",
    });
    expect(code).toBe(1);
    expect(json.checks.map((c) => [c.name, c.status])).toEqual([
      ["ARTIFACTS_TTL", "fail"],
      ["ARTIFACTS_WRITER_TOKEN", "fail"],
      ["storage", "pass"],
      ["endpoint", "pass"],
      ["bucket", "fail"],
    ]);
    expect(byName(json, "ARTIFACTS_TTL").fix).toBe("a whole number with a unit: 7d, 36h, 90m, 3600s");
    expect(byName(json, "storage").message).toBe(
      `storage variables well-formed: s3 bucket "no-such-bucket-here" at ${env.S3_ENDPOINT}; checking it without ARTIFACTS_TTL, ARTIFACTS_WRITER_TOKEN (reported above)`,
    );
    expect(byName(json, "bucket").fix).toBe(`Bucket Not Found: check S3_BUCKET ("no-such-bucket-here") exists at ${env.S3_ENDPOINT} (and S3_REGION=us-east-1)`);
  });

  it("with a malformed ARTIFACTS_TTL and master keys, runs every storage check and describes the lifecycle rule uncompared", async () => {
    const env = await s3Env("doctor-partial-ok", { ARTIFACTS_WRITER_TOKEN: "x".repeat(40) });
    await putLifecycle(env.S3_ENDPOINT, env.S3_BUCKET, OPERATIONS_PREFIX, 8);
    const r = await cli(["doctor"], { ...env, ARTIFACTS_TTL: "a week", ARTIFACTS_MASTER_KEYS: "not-a-key" });
    expect(r.code).toBe(1);
    const lines = r.stdout.split("\n").filter((l) => /^(pass|fail|skip|warn) /.test(l));
    expect(lines.map((l) => l.split(/ {2,}/).slice(0, 2).join(" "))).toEqual([
      "fail ARTIFACTS_TTL",
      "fail ARTIFACTS_MASTER_KEYS",
      "pass storage",
      "pass writer token",
      "pass endpoint",
      "pass bucket",
      "pass clock",
      "pass read/write",
      "skip master keys",
      "pass layouts",
      "skip lifecycle",
    ]);
    expect(r.stdout).toMatch(/\nskip  lifecycle +not compared with ARTIFACTS_TTL \(malformed above\): rule "expire-operations" expires "operations\/" after 8 day\(s\)\n/);
    expect(r.stdout).toContain("\ndoctor: 2 check(s) failed\n");
    expect(await remaining(env, `${OPERATIONS_PREFIX}.doctor-`)).toEqual([]);
  });

  it("as a child process reads .env like the server, variable by variable", async () => {
    const env = await s3Env("doctor-dotenv", { ARTIFACTS_WRITER_TOKEN: "x".repeat(40) });
    const cwd = tempDir("cwd");
    writeFileSync(join(cwd, ".env"), "ARTIFACTS_TTL=forever\n");
    const r = await runChild(["doctor"], env, cwd);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^fail  ARTIFACTS_TTL +/);
    expect(r.stdout).toMatch(/\npass  bucket +bucket "[^"]+" exists and answers \(HeadBucket\)\n/);
    expect(r.stdout).toContain("\ndoctor: 1 check(s) failed\n");
  });

  it("runs as a child process: exit 1 and the advice on stdout", async () => {
    const port = await closedPort();
    const env = await s3Env("doctor-child");
    const r = await runChild(["doctor"], { ...env, S3_ENDPOINT: `http://127.0.0.1:${port}` }, tempDir("cwd"));
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("fix: Connection error: check S3_ENDPOINT");
    const ok = await runChild(["doctor"], env, tempDir("cwd"));
    expect(ok.stdout).toContain("doctor: all checks passed (");
    expect(ok.code).toBe(0);
  });
});

describe("doctor on the R2 simulator (stricter signatures, fewer APIs)", () => {
  it("passes a good configuration; the lifecycle API it lacks (501) and the Date header it never sends are skips, not failures", async () => {
    const env = await s3Env("doctor-r2sim", { ARTIFACTS_WRITER_TOKEN: "x".repeat(40) }, "r2sim");
    const store = storeFor(env);
    const op = await store.createOperation({ grantee: GRANTEE, agent: "agent" });
    await store.close();
    const { code, json } = await cliJson<Report>(["doctor"], env);
    expect(code).toBe(0);
    expect(json.checks.filter((c) => c.status !== "pass").map((c) => [c.name, c.status, c.message])).toEqual([
      ["clock", "skip", "storage sent no Date header"],
      [
        "lifecycle",
        "skip",
        "this storage endpoint does not implement lifecycle configuration (HTTP 501) (not a failure); expired artifacts are deleted by the sweep alone unless the store expires operations/ some other way",
      ],
    ]);
    expect(byName(json, "master keys").message).toContain(op.operationId);
    expect(await remaining(env, `${OPERATIONS_PREFIX}.doctor-`)).toEqual([]);
  });

  it("fails a wrong secret at the bucket check with the Access Denied advice", async () => {
    const env = await s3Env("doctor-r2sim-denied", {}, "r2sim");
    const r = await cli(["doctor"], { ...env, S3_SECRET_ACCESS_KEY: "wrong-secret-access-key-for-the-r2-simulator" });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/fail  bucket +storage denied access \(HTTP 403\)/);
    expect(r.stdout).toContain("fix: Access Denied");
    expect(r.stdout).not.toContain("wrong-secret-access-key-for-the-r2-simulator");
  });
});

describe("doctor's advice (Access Denied, Bucket Not Found, connection errors)", async () => {
  const { ConfigError, StorageUnavailableError } = await import("@personal-server/artifacts");
  const { adviceFor, classify } = await import("../src/advice.js");
  const r2 = loadConfig({
    ARTIFACTS_LOCAL_DIR: tempDir("adv"),
    R2_ACCOUNT_ID: "0123456789abcdef0123456789abcdef",
    R2_ACCESS_KEY_ID: "0".repeat(32),
    R2_SECRET_ACCESS_KEY: "0".repeat(64),
    R2_BUCKET_NAME: "personal-server-artifacts",
    ARTIFACTS_MASTER_KEYS: KEY_A,
  });

  it("maps the S3 backend's errors to Access Denied, Bucket Not Found and connection advice", () => {
    // The shapes S3Backend.mapError produces for 403, NoSuchBucket and ECONNREFUSED.
    const denied = new ConfigError('storage denied access (AccessDenied) to bucket "personal-server-artifacts" (HeadBucket on bucket "personal-server-artifacts")', {
      details: { s3Code: "AccessDenied", status: 403 },
    });
    const missing = new ConfigError('bucket "personal-server-artifacts" does not exist at https://0123456789abcdef0123456789abcdef.r2.cloudflarestorage.com', {
      details: { s3Code: "NotFound", status: 404 },
    });
    const refused = new StorageUnavailableError("cannot reach storage at https://x (ECONNREFUSED: connect ECONNREFUSED)", { details: { errno: "ECONNREFUSED" } });
    expect([classify(denied), classify(missing), classify(refused)]).toEqual(["access_denied", "bucket_not_found", "connection"]);
    expect(adviceFor("access_denied", r2)).toBe(
      "Access Denied: check the API token has Object Read & Write (and Bucket Read) on this bucket, that R2_ACCOUNT_ID is the account the bucket is in, and that R2_BUCKET_NAME matches the bucket name exactly",
    );
    expect(adviceFor("bucket_not_found", r2)).toBe(
      'Bucket Not Found: check R2_BUCKET_NAME ("personal-server-artifacts"), that the bucket exists in account 0123456789abcdef0123456789abcdef, and its jurisdiction (R2_JURISDICTION=default: a bucket created in eu or fedramp is only reachable at that endpoint)',
    );
    expect(adviceFor("connection", r2)).toBe(
      "Connection error: check R2_ACCOUNT_ID is the 32-hex Account ID (dashboard sidebar), that the endpoint is https://<account>.r2.cloudflarestorage.com (https://0123456789abcdef0123456789abcdef.r2.cloudflarestorage.com), and that this machine can reach Cloudflare (DNS, firewall, proxy)",
    );
  });
});
