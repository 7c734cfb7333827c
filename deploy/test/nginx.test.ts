// The nginx recipe (deploy/nginx) for real: Debian's nginx on loopback with a self-signed
// certificate made here, the server mounted at /psa with the variables the recipe names
// (ARTIFACTS_AUDIENCE carrying the prefix, ARTIFACTS_TRUSTED_PROXIES), a grantee download through
// TLS with the SDK's client (it signs the prefixed target), signatures aimed at the Host /
// X-Forwarded-* the proxy passes on refused, one client's failures locking out that client only
// (clients on 127.0.0.2 and 127.0.0.3), and /metrics not served.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { request as httpsRequest } from "node:https";
import { getCACertificates, setDefaultCACertificates } from "node:tls";
import { createGranteeClient, createWriterClient, signRequest } from "@personal-server/artifacts/client";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type ServerProcess } from "../../test-support/server-process.js";
import { ROOT, freePort, must, requireTools } from "./podman.js";

const RECIPE = join(ROOT, "deploy/nginx/personal-server-artifacts.conf");
const TOKEN = "nginx-test-writer-token-0123456789abcdef";
let dir: string;
let server: ServerProcess;
let nginx: ChildProcess;
let origin: string;
let audience: string;

/**
 * The server's variables as the recipe's header names them (`#   NAME=value` lines), with the
 * placeholder origin replaced by the test's.
 */
function recipeEnv(publicOrigin: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const m of readFileSync(RECIPE, "utf8").matchAll(/^#\s+(ARTIFACTS_[A-Z_]+)=(\S+)$/gm)) {
    env[m[1]!] = m[2]!.replace("https://artifacts.example.com", publicOrigin);
  }
  return env;
}

/** The recipe with only its placeholders replaced: port, certificate and the upstream address. */
function recipeFor(port: number, upstream: string, cert: string, key: string): string {
  const text = readFileSync(RECIPE, "utf8");
  const out = text
    .replace("listen 443 ssl;", `listen 127.0.0.1:${port} ssl;`)
    .replace("/etc/ssl/certs/artifacts.example.com.pem", cert)
    .replace("/etc/ssl/private/artifacts.example.com.key", key)
    .replace("http://127.0.0.1:8080$psa_upstream_target", `${upstream}$psa_upstream_target`);
  for (const placeholder of ["listen 443", "artifacts.example.com.pem", "artifacts.example.com.key", "127.0.0.1:8080$"]) {
    expect(out, `the recipe no longer has ${placeholder}`).not.toContain(placeholder);
  }
  return out;
}

beforeAll(async () => {
  requireTools("nginx", "openssl");
  dir = mkdtempSync(join(tmpdir(), "psa-nginx-"));
  const cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  await must("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert,
  ], { env: process.env as Record<string, string> });
  // Trust the test certificate in this process only (fetch uses the default CA list).
  setDefaultCACertificates([...getCACertificates("default"), readFileSync(cert, "utf8")]);

  const port = await freePort();
  origin = `https://127.0.0.1:${port}`;
  audience = `${origin}/psa`;
  const env = recipeEnv(origin);
  expect(env).toEqual({ ARTIFACTS_AUDIENCE: audience, ARTIFACTS_TRUSTED_PROXIES: "127.0.0.1" });
  server = await startServer({ ARTIFACTS_LOCAL_DIR: join(dir, "data"), ARTIFACTS_WRITER_TOKEN: TOKEN, ...env });

  writeFileSync(join(dir, "site.conf"), recipeFor(port, server.url, cert, key));
  writeFileSync(
    join(dir, "nginx.conf"),
    [
      "worker_processes 1;",
      `pid ${join(dir, "nginx.pid")};`,
      `error_log ${join(dir, "error.log")} warn;`,
      "events { worker_connections 64; }",
      "http {",
      `  access_log ${join(dir, "access.log")};`,
      ...["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((t) => `  ${t}_temp_path ${join(dir, `${t}-temp`)};`),
      `  include ${join(dir, "site.conf")};`,
      "}",
      "",
    ].join("\n"),
  );
  await must("nginx", ["-t", "-q", "-p", dir, "-c", join(dir, "nginx.conf")], { env: process.env as Record<string, string> });
  nginx = spawn("nginx", ["-p", dir, "-c", join(dir, "nginx.conf"), "-g", "daemon off;"], { stdio: "ignore" });
  for (let i = 0; i < 100; i++) {
    const up = await fetch(`${audience}/health`).then((r) => r.status, () => 0);
    if (up === 200) break;
    await new Promise((w) => setTimeout(w, 100));
  }
});

afterAll(async () => {
  nginx?.kill("SIGQUIT");
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("nginx in front of the server at /psa with TLS", () => {
  it("serves /health and the API under the prefix only", async () => {
    const health = await fetch(`${audience}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: "ok", storage: "local" });
    expect((await fetch(`${origin}/health`)).status).toBe(404);
  });

  it("a grantee downloads through the proxy with the SDK's client, signing the prefixed target", async () => {
    const account = privateKeyToAccount(generatePrivateKey());
    const writer = createWriterClient({ baseUrl: audience, token: TOKEN });
    const { operationId } = await writer.createOperation({ grantee: account.address, agent: "nginx" });
    const body = Buffer.alloc(3 * 1024 * 1024 + 17, 0x5a);
    await writer.upload(operationId, "report.bin", body);

    const grantee = createGranteeClient({ baseUrl: audience, account });
    const listing = await grantee.list(operationId);
    expect(listing.artifacts.map((a) => [a.path, a.size])).toEqual([["report.bin", body.length]]);
    const parts: Buffer[] = [];
    for await (const part of await grantee.download(operationId, "report.bin")) parts.push(Buffer.from(part));
    expect(Buffer.concat(parts).equals(body)).toBe(true);
    const ranged = await grantee.download(operationId, "report.bin", { range: { start: 10, end: 19 } });
    const rangedParts: Buffer[] = [];
    for await (const part of ranged) rangedParts.push(Buffer.from(part));
    expect(Buffer.concat(rangedParts)).toEqual(body.subarray(10, 20));

    // The access log shows the prefixed target the grantee signed.
    expect(readFileSync(join(dir, "access.log"), "utf8")).toContain(`GET /psa/api/v1/operations/${operationId}/artifacts/report.bin HTTP/1.1" 200`);
  });

  it("does not trust Host or X-Forwarded-* for the audience: signatures for another origin or the bare target are 401", async () => {
    const account = privateKeyToAccount(generatePrivateKey());
    const writer = createWriterClient({ baseUrl: audience, token: TOKEN });
    const { operationId } = await writer.createOperation({ grantee: account.address });
    const target = `/api/v1/operations/${operationId}/artifacts`;
    const attempt = async (aud: string, uri: string, headers: Record<string, string> = {}) => {
      const authorization = await signRequest(account, { audience: aud, method: "GET", uri });
      const answer = await fetch(`${audience}${target}`, { headers: { authorization, ...headers } });
      const json = (await answer.json()) as { error?: { code: string } };
      return `${answer.status} ${json.error?.code ?? "ok"}`;
    };
    // Right: the public audience and the prefixed target.
    expect(await attempt(audience, `/psa${target}`)).toBe("200 ok");
    // The upstream's own address, or the target without the prefix nginx strips.
    expect(await attempt(server.url, target)).toBe("401 unauthenticated");
    expect(await attempt(audience, target)).toBe("401 unauthenticated");
    // An origin the client claims through Host / X-Forwarded-*, which nginx passes on.
    const evil = "https://evil.example/psa";
    expect(await attempt(evil, `/psa${target}`, { "x-forwarded-host": "evil.example", "x-forwarded-proto": "https", "x-forwarded-prefix": "/psa" })).toBe(
      "401 unauthenticated",
    );
    expect(await attempt("https://evil.example", target, { host: "evil.example" })).toBe("401 unauthenticated");
  });
});

/** One HTTPS request from a given loopback source address (another client, as nginx sees it). */
function from(localAddress: string, method: string, path: string, headers: Record<string, string>): Promise<{ status: number; code?: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(`${origin}${path}`, { method, headers, localAddress, ca: readFileSync(join(dir, "cert.pem")) }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        let code: string | undefined;
        try {
          code = (JSON.parse(Buffer.concat(chunks).toString("utf8")) as { error?: { code: string } }).error?.code;
        } catch {
          code = undefined;
        }
        resolve({ status: res.statusCode ?? 0, ...(code === undefined ? {} : { code }) });
      });
    });
    req.on("error", reject);
    req.end();
  });
}

describe("nginx recipe: clients and /metrics", () => {
  it("one client's failed authentications lock out that client only", async () => {
    const account = privateKeyToAccount(generatePrivateKey());
    const writer = createWriterClient({ baseUrl: audience, token: TOKEN });
    const { operationId } = await writer.createOperation({ grantee: account.address });
    await writer.upload(operationId, "a.txt", "abc");
    const target = `/psa/api/v1/operations/${operationId}/artifacts/a.txt`;
    // 61 bad writer tokens from 127.0.0.2, claiming to be someone else as well: the last one is 429.
    const bad = { authorization: "Bearer not-the-writer-token", "x-forwarded-for": "127.0.0.3" };
    for (let i = 0; i < 60; i++) expect(await from("127.0.0.2", "DELETE", "/psa/api/v1/operations/nope", bad)).toEqual({ status: 401, code: "unauthenticated" });
    expect(await from("127.0.0.2", "DELETE", "/psa/api/v1/operations/nope", bad)).toEqual({ status: 429, code: "rate_limited" });
    const signed = () => signRequest(account, { audience, method: "GET", uri: target });
    expect(await from("127.0.0.2", "GET", target, { authorization: await signed() })).toEqual({ status: 429, code: "rate_limited" });
    // Another client (127.0.0.3): the writer and the grantee both work.
    expect(await from("127.0.0.3", "GET", target, { authorization: await signed() })).toEqual({ status: 200 });
    expect(await from("127.0.0.3", "DELETE", `/psa/api/v1/operations/${operationId}`, { authorization: `Bearer ${TOKEN}` })).toEqual({ status: 204 });
  });

  it("does not serve /metrics, in any spelling the server would answer", async () => {
    for (const path of ["/psa/metrics", "/psa/metrics?x=1", "/psa/%6detrics", "/psa/./metrics"]) {
      expect((await from("127.0.0.4", "GET", path, {})).status, path).toBe(404);
    }
    // The API port never serves it; the server's own metrics listener does (the operator scrapes that).
    expect((await fetch(`${server.url}/metrics`)).status).toBe(404);
    expect((await fetch(server.metricsUrl!)).status).toBe(200);
  });
});
