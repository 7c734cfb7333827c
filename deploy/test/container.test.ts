// The image a user builds (Dockerfile), in a real container with podman: healthy, `pnpm smoke`
// passes against it, artifacts and keys survive a restart on the /data volume, SIGTERM during a
// download drains it and exits 0. No registry image can be pulled here, so BASE is a local
// stand-in for node:24-bookworm-slim (local-base.sh), cached under the OS temp dir.
import { createHash } from "node:crypto";
import { request } from "node:http";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createGranteeClient, createWriterClient } from "@personal-server/artifacts/client";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BASE_TAG, IMAGE, ROOT, ensureBaseImage, freePort, must, podman, podmanEnv, requireTools, run, waitHealthy } from "./podman.js";

const NAME = `psa-test-${process.pid}`;
const VOLUME = `psa-test-data-${process.pid}`;
let port: number;
let baseUrl: string;
let metricsPort: number;
const timings: Record<string, number> = {};

async function timed<T>(label: string, fn: () => Promise<T>): Promise<T> {
  const started = Date.now();
  try {
    return await fn();
  } finally {
    timings[label] = Date.now() - started;
  }
}

async function containerToken(): Promise<string> {
  return (await podman("exec", NAME, "cat", "/data/.writer-token")).trim();
}

async function collect(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(Buffer.from(part));
  return Buffer.concat(parts);
}

const stepStarted = Date.now();

beforeAll(async () => {
  requireTools("podman", "runc", "debootstrap");
  const base = await timed("base image", ensureBaseImage);
  timings["base image built now"] = base.built ? 1 : 0;
  await timed("image build", () => must("podman", ["build", "--format", "docker", "--build-arg", `BASE=${BASE_TAG}`, "-t", IMAGE, ROOT]));
  port = await freePort();
  baseUrl = `http://127.0.0.1:${port}`;
  metricsPort = await freePort();
  await run("podman", ["rm", "-f", NAME]);
  await run("podman", ["volume", "rm", "-f", VOLUME]);
  await podman(
    "run", "-d", "--name", NAME,
    "-p", `127.0.0.1:${port}:8080`,
    "-p", `127.0.0.1:${metricsPort}:9464`,
    "-v", `${VOLUME}:/data`,
    "-e", `ARTIFACTS_AUDIENCE=${baseUrl}`,
    // No systemd here to run the health timer; the tests poll `podman healthcheck run`.
    "--health-interval", "disable",
    IMAGE,
  );
  await timed("healthy", () => waitHealthy(NAME));
});

afterAll(async () => {
  await run("podman", ["rm", "-f", "-t", "0", NAME]);
  await run("podman", ["volume", "rm", "-f", VOLUME]);
  const size = await run("podman", ["image", "inspect", "--format", "{{.Size}}", IMAGE]);
  const total = Date.now() - stepStarted;
  console.log(
    `container step: ${Math.round(total / 1000)} s (${Object.entries(timings).map(([k, v]) => `${k} ${k.endsWith("now") ? (v ? "yes" : "no, cached") : `${(v / 1000).toFixed(1)} s`}`).join(", ")}); image ${(Number(size.stdout) / 1e6).toFixed(0)} MB`,
  );
});

describe("the container image", () => {
  it("runs node as PID 1 as the node user, /data is node's with mode 0700, and no secret is in the image", async () => {
    expect((await podman("exec", NAME, "cat", "/proc/1/cmdline")).split("\0").filter(Boolean)).toEqual(["node", "/app/dist/main.js"]);
    expect((await podman("exec", NAME, "id", "-u")).trim()).toBe("1000");
    expect((await podman("exec", NAME, "stat", "-c", "%U %a", "/data")).trim()).toBe("node 700");
    expect((await podman("exec", NAME, "stat", "-c", "%U %a", "/data/.master-key", "/data/.writer-token")).trim().split("\n")).toEqual(["node 600", "node 600"]);
    const health = await fetch(`${baseUrl}/health`);
    expect(await health.json()).toEqual({ status: "ok", storage: "local" });
    // The image's own layers: no generated key, token or .env anywhere (they are made at first start, on the volume).
    const mount = (await podman("image", "mount", IMAGE)).trim();
    try {
      const found = await must("find", [mount, "-xdev", "(", "-name", ".master-key", "-o", "-name", ".writer-token", "-o", "-name", ".env", ")", "-print"]);
      expect(found).toBe("");
      const data = await must("find", [join(mount, "data"), "-mindepth", "1"]);
      expect(data).toBe("");
    } finally {
      await run("podman", ["image", "unmount", IMAGE]);
    }
  });

  it("serves metrics on 9464 (all interfaces inside, published on loopback here), never on the API port", async () => {
    const metrics = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toMatch(/^artifacts_storage_info\{kind="local"\} 1$/m);
    expect((await fetch(`${baseUrl}/metrics`)).status).toBe(404);
    const logs = await run("podman", ["logs", NAME]);
    expect(logs.stdout).toContain("  metrics:      http://127.0.0.1:9464/metrics (no token: anyone who reaches this address); never on the API port");
  });

  it("passes pnpm smoke against the container", async () => {
    const token = await containerToken();
    const smoke = await run("pnpm", ["--silent", "smoke"], {
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", BASE_URL: baseUrl, ARTIFACTS_WRITER_TOKEN: token, ARTIFACTS_LOCAL_DIR: mkdtempSync(join(tmpdir(), "psa-smoke-")) },
    });
    expect(smoke.code, smoke.stdout + smoke.stderr).toBe(0);
    expect(smoke.stdout).toContain("smoke run passed: 14 checks");
  });

  it("keeps artifacts and keys on the volume across a restart", async () => {
    const token = await containerToken();
    const keyBefore = await podman("exec", NAME, "sha256sum", "/data/.master-key");
    const account = privateKeyToAccount(generatePrivateKey());
    const writer = createWriterClient({ baseUrl, token });
    const { operationId } = await writer.createOperation({ grantee: account.address, agent: "restart" });
    const text = "kept across a restart\n";
    await writer.upload(operationId, "kept.txt", text, { contentType: "text/plain" });

    await timed("restart", async () => {
      await podman("restart", "-t", "30", NAME);
      await waitHealthy(NAME);
    });
    expect(await podman("exec", NAME, "sha256sum", "/data/.master-key")).toBe(keyBefore);
    expect(await containerToken()).toBe(token);
    const logs = await run("podman", ["logs", NAME]);
    expect(logs.stdout).toContain("master key:   /data/.master-key (mode 0600; whoever holds it can read every artifact)");
    expect(logs.stdout).not.toContain(token);
    const grantee = createGranteeClient({ baseUrl, account });
    expect((await collect(await grantee.download(operationId, "kept.txt"))).toString()).toBe(text);
    await writer.deleteOperation(operationId);
  });

  it("SIGTERM during a download: the download finishes intact and the container exits 0 within the drain time", async () => {
    const token = await containerToken();
    const account = privateKeyToAccount(generatePrivateKey());
    const writer = createWriterClient({ baseUrl, token });
    const { operationId } = await writer.createOperation({ grantee: account.address, agent: "drain" });
    const data = Buffer.alloc(48 * 1024 * 1024);
    for (let i = 0; i < data.length; i += 4096) data.writeUInt32BE(i, i);
    await writer.upload(operationId, "long.bin", data);

    const grantee = createGranteeClient({ baseUrl, account });
    const stream = await grantee.download(operationId, "long.bin");
    const hash = createHash("sha256");
    let received = 0;
    const iterator = stream[Symbol.asyncIterator]();
    const first = await iterator.next();
    hash.update(first.value as Buffer);
    received += (first.value as Buffer).length;
    expect(received).toBeLessThan(data.length);

    const signalled = Date.now();
    await podman("kill", "--signal", "TERM", NAME);
    // New connections are refused meanwhile, the started download goes on.
    await new Promise((w) => setTimeout(w, 1000));
    const refused = await new Promise<string>((resolve) => {
      const probe = request({ host: "127.0.0.1", port, path: "/health", agent: false }, (res) => {
        res.resume();
        resolve(String(res.statusCode));
      });
      probe.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? "error"));
      probe.end();
    });
    expect(["ECONNRESET", "ECONNREFUSED", "503"]).toContain(refused);
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
      hash.update(next.value as Buffer);
      received += (next.value as Buffer).length;
    }
    expect(received).toBe(data.length);
    expect(hash.digest("hex")).toBe(createHash("sha256").update(data).digest("hex"));
    expect((await podman("wait", NAME)).trim()).toBe("0");
    expect(Date.now() - signalled).toBeLessThan(25_000);
    const logs = await run("podman", ["logs", NAME]);
    expect(logs.stdout).toContain('"signal":"SIGTERM","graceMs":25000');
    expect(logs.stdout).toContain('"msg":"server closed"');
  });
});

describe("compose.yaml and the Makefile (podman-compose)", () => {
  const project = `psa-compose-${process.pid}`;
  const volume = `${project}-data`;
  let scratch: string;
  let publishPort: number;
  let metricsPort: number;
  let env: Record<string, string>;
  const make = (target: string, extra: Record<string, string> = {}) => run("make", ["--no-print-directory", target], { env: { ...env, ...extra } });
  const mustMake = async (target: string) => {
    const r = await make(target);
    if (r.code !== 0) throw new Error(`make ${target} exited ${r.code}:\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}`);
    return r.stdout;
  };

  beforeAll(async () => {
    requireTools("make", "podman-compose");
    publishPort = await freePort();
    scratch = mkdtempSync(join(tmpdir(), "psa-compose-"));
    metricsPort = await freePort();
    const envFile = join(scratch, "server.env");
    writeFileSync(envFile, `ARTIFACTS_AUDIENCE=http://127.0.0.1:${publishPort}\n`);
    env = {
      ...podmanEnv(),
      COMPOSE: `podman-compose -p ${project}`,
      BASE: BASE_TAG,
      ARTIFACTS_IMAGE: IMAGE,
      ARTIFACTS_ENV_FILE: envFile,
      ARTIFACTS_PUBLISH: `127.0.0.1:${publishPort}`,
      ARTIFACTS_VOLUME: volume,
      ARTIFACTS_METRICS_PORT: String(metricsPort),
      // `make smoke`'s own configuration: nothing from a developer's .env, no local storage of ours.
      ARTIFACTS_LOCAL_DIR: join(scratch, "unused"),
    };
  });

  afterAll(async () => {
    await run("podman-compose", ["-p", project, "down", "-t", "0"], { env });
    await run("podman", ["volume", "rm", "-f", volume]);
    rmSync(scratch, { recursive: true, force: true });
  });

  it("make build, make up (waits until healthy), make smoke, make logs, make down -t 30: the named volume keeps the data", async () => {
    await timed("compose build", () => mustMake("build"));
    const up = await mustMake("up");
    expect(up).toMatch(/make up: healthy after \d+ s/);
    const container = `${project}_artifacts_1`;
    const inspect = JSON.parse(await podman("inspect", container)) as { HostConfig: { RestartPolicy: { Name: string } }; Mounts: { Name?: string }[] }[];
    expect(inspect[0]!.HostConfig.RestartPolicy.Name).toBe("unless-stopped");
    // compose.yaml names the volume: podman-compose does not prefix it with the project.
    expect(inspect[0]!.Mounts.map((m) => m.Name)).toContain(volume);
    const smoke = await mustMake("smoke");
    expect(smoke).toContain(`smoke run against http://127.0.0.1:${publishPort}`);
    expect(smoke).toContain("smoke run passed: 14 checks");
    expect(await mustMake("logs")).toContain("artifacts server listening on http://127.0.0.1:8080");
    // compose publishes the metrics listener on the host's loopback only.
    expect((await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).status).toBe(200);
    expect(await podman("port", container)).toContain(`9464/tcp -> 127.0.0.1:${metricsPort}`);
    const key = await podman("exec", container, "sha256sum", "/data/.master-key");
    const down = await mustMake("down");
    expect(down).toContain(`podman stop -t 30 ${container}`);
    expect((await run("podman", ["container", "exists", container])).code).toBe(1);
    await mustMake("up");
    expect(await podman("exec", container, "sha256sum", "/data/.master-key")).toBe(key);
    await mustMake("down");
  });

  it("make build exits non-zero when the base image is missing, even with an older image under the tag, and names make base", async () => {
    const r = await make("build", { BASE: "localhost/psa-missing-base:none" });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`make build: FAILED: the build failed (the output above says why); ${IMAGE} is still an earlier build`);
    expect(r.stderr).toContain("the base image localhost/psa-missing-base:none could not be pulled");
    expect(r.stderr).toContain("make base");
  });

  it("make up exits non-zero within HEALTH_TIMEOUT when the container does not become healthy, with its log and the fix", async () => {
    const badEnv = join(scratch, "bad.env");
    writeFileSync(badEnv, "ARTIFACTS_TTL=a week\n");
    const started = Date.now();
    const r = await make("up", { ARTIFACTS_ENV_FILE: badEnv, HEALTH_TIMEOUT: "15" });
    expect(r.code).not.toBe(0);
    expect(Date.now() - started).toBeLessThan(60_000);
    expect(r.stderr).toMatch(/make up: FAILED: the container (is \w+, not running|runs but is not healthy after 15 s)/);
    expect(r.stderr).toContain('ARTIFACTS_TTL: invalid duration "a week"');
    expect(r.stderr).toContain("fix: the server refused its configuration (above): fix .env (docs/configuration.md), then make up again");
    await make("down");
  });
});
