// The shared replay guard: two servers on one storage and one audience (replicas), each spending
// nonces in the same redis-server. A signature spent on one is refused on the other; with the
// in-memory default it is not (why replicas need the shared store). Redis stopped or gone is 503
// storage_unavailable and nothing is served; the password never reaches a log.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { signRequest } from "@personal-server/artifacts/client";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { TEST_REDIS_PASSWORD, startRedis, type RedisServer } from "../../../test-support/redis.js";
import { rawRequest, startTestServer, wallet, type TestServer } from "./helpers.js";

const AUDIENCE = "http://artifacts.replicas.test";
const dirs: string[] = [];
const servers: TestServer[] = [];
afterAll(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** `count` servers over one local directory and one audience, with `env` (e.g. the nonce store). */
async function replicas(count: number, env: Record<string, string> = {}): Promise<TestServer[]> {
  const dir = mkdtempSync(join(tmpdir(), "psa-replicas-"));
  dirs.push(dir);
  const started: TestServer[] = [];
  for (let i = 0; i < count; i++) started.push(await startTestServer("local", { ARTIFACTS_LOCAL_DIR: dir, ARTIFACTS_AUDIENCE: AUDIENCE, ...env }));
  servers.push(...started);
  return started;
}

async function sharedOperation(writerSide: TestServer) {
  const grantee = wallet();
  const { operationId } = await writerSide.writer.createOperation({ grantee: grantee.address, agent: "replay" });
  await writerSide.writer.upload(operationId, "a.txt", "replica bytes");
  const target = `/api/v1/operations/${operationId}/artifacts/a.txt`;
  const sign = () => signRequest(grantee, { audience: AUDIENCE, method: "GET", uri: target });
  return { target, sign };
}

describe("replay guard shared by replicas (Redis)", () => {
  it("a signature spent on one replica is refused on the others; concurrent copies: exactly one is served", async () => {
    const [a, b, c] = await replicas(3, { ARTIFACTS_NONCE_STORE: inject("redisUrl") });
    const { target, sign } = await sharedOperation(a!);
    let refused = 0;
    for (const [first, second] of [[a!, b!], [b!, c!], [c!, a!]] as const) {
      const header = await sign();
      const served = await rawRequest(first.url, "GET", target, { authorization: header });
      expect(served.status).toBe(200);
      expect(served.body.toString()).toBe("replica bytes");
      const replay = await rawRequest(second.url, "GET", target, { authorization: header });
      expect({ status: replay.status, body: replay.json }).toEqual({
        status: 401,
        body: { error: { code: "unauthenticated", message: "Web3Signed nonce was already used" } },
      });
      refused++;
    }
    // The same header sent to all three at once, ten times over: one answer each time is 200.
    for (let round = 0; round < 10; round++) {
      const header = await sign();
      const answers = await Promise.all([a!, b!, c!, a!, b!, c!].map((s) => rawRequest(s.url, "GET", target, { authorization: header })));
      expect(answers.map((r) => r.status).sort()).toEqual([200, 401, 401, 401, 401, 401]);
      refused += 5;
    }
    expect(refused).toBe(53);
    for (const s of [a!, b!, c!]) expect(s.logs.join("")).not.toContain(TEST_REDIS_PASSWORD);
  });

  it("without the shared store a replay on another replica is served again (why replicas need it)", async () => {
    const [a, b] = await replicas(2);
    const { target, sign } = await sharedOperation(a!);
    const header = await sign();
    expect((await rawRequest(a!.url, "GET", target, { authorization: header })).status).toBe(200);
    expect((await rawRequest(b!.url, "GET", target, { authorization: header })).status).toBe(200);
    expect((await rawRequest(b!.url, "GET", target, { authorization: header })).status).toBe(401);
  });
});

describe("nonce store unavailable", () => {
  let redis: RedisServer;
  let s: TestServer;
  beforeAll(async () => {
    redis = await startRedis();
    [s] = await replicas(1, { ARTIFACTS_NONCE_STORE: redis.url });
  });
  afterAll(async () => {
    await redis?.stop();
  });

  const expect503 = async (target: string, header: string) => {
    const res = await rawRequest(s.url, "GET", target, { authorization: header });
    expect(res.status).toBe(503);
    expect(res.headers["retry-after"]).toBe("5");
    expect(res.headers["content-type"]).toBe("application/json; charset=utf-8");
    expect((res.json as { error: { code: string; message: string } }).error).toMatchObject({
      code: "storage_unavailable",
      message: "the replay guard's nonce store did not answer; retry shortly",
    });
    // Not served: no artifact byte in the answer.
    expect(res.body.toString()).not.toContain("replica bytes");
  };

  it("a store that does not answer within 1 s (stopped) is 503; one that is gone is 503; back, it serves again", async () => {
    const { target, sign } = await sharedOperation(s);
    expect((await rawRequest(s.url, "GET", target, { authorization: await sign() })).status).toBe(200);

    process.kill(redis.pid, "SIGSTOP");
    try {
      await expect503(target, await sign());
    } finally {
      process.kill(redis.pid, "SIGCONT");
    }
    expect((await rawRequest(s.url, "GET", target, { authorization: await sign() })).status).toBe(200);

    await redis.stop();
    await expect503(target, await sign());
    await expect503(target, await sign());
    const logs = s.logs.join("");
    expect(logs).toMatch(/nonce store redis:\/\/:\*\*\*@127\.0\.0\.1:\d+\/0: /);
    expect(logs).not.toContain(TEST_REDIS_PASSWORD);
  });

  it("a wrong password is 503 and is never logged", async () => {
    const wrong = "wrong-password-obviously-fake";
    const [w] = await replicas(1, { ARTIFACTS_NONCE_STORE: inject("redisUrl").replace(TEST_REDIS_PASSWORD, wrong) });
    const { target, sign } = await sharedOperation(w!);
    const res = await rawRequest(w!.url, "GET", target, { authorization: await sign() });
    expect(res.status).toBe(503);
    expect(JSON.stringify(res.json)).not.toContain(wrong);
    expect(w!.logs.join("")).not.toContain(wrong);
  });
});
