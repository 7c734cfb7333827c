/**
 * Secrets (issue 7): no master key, writer token, secret access key or signature in any log line,
 * error body, response header or metrics page. Every file of this suite feeds its own watch and
 * checks it when it ends; this file drives the paths most likely to leak: startup config errors
 * that must name a bad variable without echoing it, storage failures whose SDK errors carry
 * request details, generated local secrets, and an in-process server logging at trace level.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createGranteeClient, createWriterClient, signRequest } from "@personal-server/artifacts/client";
import { startRecordingProxy, type RecordingProxy } from "../../../../test-support/proxy.js";
import { freshBucket, motoEndpoint } from "../../../../test-support/s3.js";
import {
  collect,
  localEnv,
  MASTER_KEY,
  METRICS_TOKEN,
  patternBytes,
  rawExchange,
  rawRequestBytes,
  REPO,
  SecretWatch,
  appCommand,
  spawnServer,
  startInProcess,
  tempDir,
  wallet,
  watchedSigner,
  WRITER_TOKEN,
  type RawAnswer,
} from "./harness.js";

const watch = new SecretWatch();
const proxies: RecordingProxy[] = [];
let scenarios = 0;

afterAll(async () => {
  let signatures = 0;
  for (const p of proxies) {
    signatures += watch.s3Signatures(p.requests);
    await p.close();
  }
  const leaks = watch.leaks();
  console.log(`[secrets] ${scenarios} scenarios; ${watch.textCount} log lines, bodies and headers checked for ${watch.secretCount} secrets (${signatures} S3 request signatures)`);
  expect(leaks).toEqual([]);
});

/** Runs the server expecting it to refuse to start; returns its exit code and output. */
async function failedStart(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const { args } = appCommand("server");
  const child = spawn(process.execPath, args, {
    cwd: REPO,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOST: "127.0.0.1", PORT: "0", ARTIFACTS_METRICS_LISTEN: "127.0.0.1:0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (d: Buffer) => (output += d.toString("utf8")));
  child.stderr?.on("data", (d: Buffer) => (output += d.toString("utf8")));
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
  clearTimeout(timer);
  watch.see("server startup output", output);
  return { code, output };
}

/** A value that looks like a secret but is one byte short of a master key: a near-miss must not be echoed either. */
const ALMOST_KEY = Buffer.alloc(31, 0x7e).toString("base64");
const SHORT_TOKEN = "short-writer-token-value-0123";
const S3_SECRET = "s3-secret-access-key-for-the-config-error-test";
const R2_SECRET = "r2-secret-access-key-for-the-config-error-test";

describe("the watch itself", () => {
  it("finds a secret in any of its encodings, and a signature", () => {
    // A watch that can never fire would make every "no leaks" above meaningless.
    const probe = new SecretWatch();
    const hex = Buffer.from(MASTER_KEY, "base64").toString("hex").toUpperCase();
    probe.see("line 1", `{"msg":"boom","key":"${hex}"}`);
    probe.see("line 2", `token=${WRITER_TOKEN}`);
    probe.s3Signatures([{ headers: { authorization: `AWS4-HMAC-SHA256 Credential=x, SignedHeaders=host, Signature=${"ab".repeat(32)}` } }]);
    probe.see("line 3", `sig ${"ab".repeat(32)}`);
    expect(probe.leaks().map((l) => l.split(":")[0])).toEqual(["master key (hex) in line 1", "writer token in line 2", "S3 request signature in line 3"]);
  });
});

describe("startup refusals name the variable, never its value", () => {
  const cases: [string, Record<string, string>, RegExp][] = [
    ["a master key of 31 bytes", { ...localEnv(tempDir("sec")), ARTIFACTS_MASTER_KEY: ALMOST_KEY }, /ARTIFACTS_MASTER_KEY/],
    ["a bad entry in ARTIFACTS_MASTER_KEYS", { ...localEnv(tempDir("sec")), ARTIFACTS_MASTER_KEY: "", ARTIFACTS_MASTER_KEYS: `new:${MASTER_KEY},old:${ALMOST_KEY}` }, /ARTIFACTS_MASTER_KEYS/],
    ["both master key variables", { ...localEnv(tempDir("sec")), ARTIFACTS_MASTER_KEYS: `k:${MASTER_KEY}` }, /ARTIFACTS_MASTER_KEY/],
    ["a short writer token", { ...localEnv(tempDir("sec")), ARTIFACTS_WRITER_TOKEN: SHORT_TOKEN }, /ARTIFACTS_WRITER_TOKEN/],
    [
      "both R2 and S3 configured",
      {
        ...localEnv(tempDir("sec")),
        S3_ENDPOINT: "http://127.0.0.1:9",
        S3_ACCESS_KEY_ID: "FAKEACCESSKEYID00000",
        S3_SECRET_ACCESS_KEY: S3_SECRET,
        S3_BUCKET: "b",
        R2_ACCOUNT_ID: "0123456789abcdef0123456789abcdef",
        R2_ACCESS_KEY_ID: "FAKEACCESSKEYID00001",
        R2_SECRET_ACCESS_KEY: R2_SECRET,
        R2_BUCKET_NAME: "b",
      },
      /R2|S3/,
    ],
    ["S3 without a bucket", { ...localEnv(tempDir("sec")), S3_ENDPOINT: "http://127.0.0.1:9", S3_ACCESS_KEY_ID: "FAKEACCESSKEYID00000", S3_SECRET_ACCESS_KEY: S3_SECRET }, /S3_BUCKET/],
    ["S3 without a master key", { ARTIFACTS_WRITER_TOKEN: WRITER_TOKEN, S3_ENDPOINT: "http://127.0.0.1:9", S3_ACCESS_KEY_ID: "FAKEACCESSKEYID00000", S3_SECRET_ACCESS_KEY: S3_SECRET, S3_BUCKET: "b" }, /ARTIFACTS_MASTER_KEY/],
  ];
  watch.secret("31-byte master key", ALMOST_KEY);
  watch.secret("short writer token", SHORT_TOKEN);
  watch.secret("S3 secret access key", S3_SECRET);
  watch.secret("R2 secret access key", R2_SECRET);
  for (const [name, env, names] of cases) {
    it(`${name}: exit 1, the variable is named, no value echoed`, async () => {
      const { code, output } = await failedStart(env);
      expect(code).toBe(1);
      expect(output).toMatch(names);
      expect(watch.leaks()).toEqual([]);
      scenarios++;
    });
  }
});

describe("a running server never shows a secret", () => {
  it("local storage with generated secrets: the banner names the files, never their contents", async () => {
    const dir = tempDir("generated");
    const server = await spawnServer({ ARTIFACTS_LOCAL_DIR: dir }, watch, "server with generated secrets");
    try {
      const masterKey = readFileSync(join(dir, ".master-key"), "utf8").trim();
      const token = readFileSync(join(dir, ".writer-token"), "utf8").trim();
      watch.secret("generated master key", masterKey);
      watch.secret("generated writer token", token);
      expect(server.lines.join("\n")).toContain(join(dir, ".master-key"));
      const writer = createWriterClient({ baseUrl: server.url, token });
      const grantee = createGranteeClient({ baseUrl: server.url, account: watchedSigner(wallet(), watch) });
      const op = await writer.createOperation({ grantee: grantee.address, agent: "gen" });
      await writer.upload(op.operationId, "a.txt", "a");
      expect((await collect(await grantee.download(op.operationId, "a.txt"))).toString()).toBe("a");
      // A near-miss token (the real one plus a character) is refused without being echoed.
      const near = await rawExchange(server.url, rawRequestBytes("DELETE", `/api/v1/operations/${op.operationId}`, { authorization: `Bearer ${token}x` }));
      watch.see("error answer", near.head + near.body.toString());
      expect(near.status).toBe(401);
    } finally {
      await server.stop();
    }
    expect(watch.leaks()).toEqual([]);
    scenarios++;
  });

  it("S3 storage behind a failing proxy: every storage failure mode, logged and answered without secrets or signatures", async () => {
    const bucket = await freshBucket(motoEndpoint(), "rel-secrets");
    watch.secret("S3 secret access key", bucket.env.S3_SECRET_ACCESS_KEY);
    const proxy = await startRecordingProxy(motoEndpoint());
    proxies.push(proxy);
    const server = await spawnServer(
      { ...localEnv(tempDir("unused")), ...bucket.env, S3_ENDPOINT: proxy.url, ARTIFACTS_S3_TIMEOUT_MS: "1500", ARTIFACTS_METRICS_TOKEN: METRICS_TOKEN },
      watch,
      "S3 server",
    );
    const answers: RawAnswer[] = [];
    const see = (a: RawAnswer) => {
      answers.push(a);
      watch.see("answer", `${a.head}\r\n\r\n${a.body.toString("utf8")}`);
      return a;
    };
    try {
      const account = watchedSigner(wallet(), watch);
      const writer = createWriterClient({ baseUrl: server.url, token: WRITER_TOKEN });
      const grantee = createGranteeClient({ baseUrl: server.url, account });
      const op = await writer.createOperation({ grantee: account.address, agent: "secrets" });
      await writer.upload(op.operationId, "ok.bin", patternBytes(2 * 1024 * 1024, 5));
      const target = `/api/v1/operations/${op.operationId}/artifacts/ok.bin`;
      const put = (path: string) =>
        rawExchange(server.url, rawRequestBytes("PUT", `/api/v1/operations/${op.operationId}/artifacts/${path}`, { authorization: `Bearer ${WRITER_TOKEN}` }, "payload"));
      const signedGet = async (t: string) => rawExchange(server.url, rawRequestBytes("GET", t, { authorization: await signRequest(account, { audience: server.url, method: "GET", uri: t }) }));

      // Each way storage can fail, on a write and on a read.
      const modes: Parameters<RecordingProxy["cut"]>[0][] = [
        { status: 500, body: "<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>" },
        { status: 503, body: "<Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message></Error>" },
        { status: 403, body: "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>" },
        { status: 400, body: "<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message></Error>" },
        { status: 404, body: "<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>" },
        "reset",
        "hang",
      ];
      for (const [i, mode] of modes.entries()) {
        proxy.cut(mode);
        const w = see(await put(`fail-${i}.txt`));
        const r = see(await signedGet(target));
        proxy.restore();
        expect(w.status, `upload under ${JSON.stringify(mode)}`).toBeGreaterThanOrEqual(500);
        expect(r.status === 200 ? r.cut : r.status >= 500, `download under ${JSON.stringify(mode)}`).toBe(true);
      }
      // Authentication failures that carry secrets in the request.
      see(await rawExchange(server.url, rawRequestBytes("DELETE", `/api/v1/operations/${op.operationId}`, { authorization: `Bearer ${WRITER_TOKEN}x` })));
      see(await rawExchange(server.url, rawRequestBytes("DELETE", `/api/v1/operations/${op.operationId}`, { authorization: `Basic ${Buffer.from(`u:${WRITER_TOKEN}`).toString("base64")}` })));
      const header = await signRequest(account, { audience: server.url, method: "GET", uri: target });
      see(await rawExchange(server.url, rawRequestBytes("GET", target, { authorization: header })));
      see(await rawExchange(server.url, rawRequestBytes("GET", target, { authorization: header }))); // replay
      see(await rawExchange(server.url, rawRequestBytes("GET", `${target}x`, { authorization: header })));
      see(await rawExchange(server.metricsOrigin!, rawRequestBytes("GET", "/metrics", { authorization: `Bearer ${WRITER_TOKEN}` })));
      const metrics = see(await rawExchange(server.metricsOrigin!, rawRequestBytes("GET", "/metrics", { authorization: `Bearer ${METRICS_TOKEN}` })));
      expect(metrics.status).toBe(200);
      // Storage is back: everything still works, and deleting works.
      expect((await collect(await grantee.download(op.operationId, "ok.bin"))).length).toBe(2 * 1024 * 1024);
      await writer.deleteOperation(op.operationId);
    } finally {
      proxy.restore();
      await server.stop();
    }
    const signatures = watch.s3Signatures(proxy.requests);
    expect(signatures).toBeGreaterThan(10);
    const errorLines = server.lines.filter((l) => /"level":50/.test(l));
    console.log(`[secrets] S3 failure modes: ${answers.length} answers, ${server.lines.length} log lines (${errorLines.length} at error level), ${signatures} S3 signatures watched`);
    expect(errorLines.length).toBeGreaterThan(0);
    expect(watch.leaks()).toEqual([]);
    scenarios++;
  });

  it("an in-process server logging at trace level: a full round trip and its failures", async () => {
    const bucket = await freshBucket(motoEndpoint(), "rel-secrets-trace");
    watch.secret("S3 secret access key", bucket.env.S3_SECRET_ACCESS_KEY);
    const proxy = await startRecordingProxy(motoEndpoint());
    proxies.push(proxy);
    const server = await startInProcess({ ...bucket.env, S3_ENDPOINT: proxy.url, ARTIFACTS_S3_TIMEOUT_MS: "1500" }, watch, { rawStorage: bucket.storage, logLevel: "trace" });
    try {
      const account = watchedSigner(wallet(), watch);
      const writer = createWriterClient({ baseUrl: server.url, token: WRITER_TOKEN });
      const grantee = createGranteeClient({ baseUrl: server.url, account });
      const op = await writer.createOperation({ grantee: account.address, agent: "trace" });
      await writer.upload(op.operationId, "t.txt", "trace me");
      await grantee.list(op.operationId);
      await collect(await grantee.download(op.operationId, "t.txt"));
      proxy.cut({ status: 500, body: "<Error><Code>InternalError</Code></Error>" });
      await expect(writer.upload(op.operationId, "u.txt", "x")).rejects.toMatchObject({ code: "storage_unavailable" });
      proxy.restore();
      await writer.deleteOperation(op.operationId);
      expect(server.logs.length).toBeGreaterThan(5);
    } finally {
      proxy.restore();
      await server.close();
    }
    watch.s3Signatures(proxy.requests);
    expect(watch.leaks()).toEqual([]);
    scenarios++;
  });
});
