// Cheap refusals: failed authentications are counted per client; past ARTIFACTS_AUTH_FAILURE_LIMIT
// a minute the client gets 429 rate_limited with Retry-After before any check runs (so a valid
// signature sent then is not even spent). The client is the socket's peer, or X-Forwarded-For's
// when the peer is in ARTIFACTS_TRUSTED_PROXIES, and never X-Forwarded-For otherwise.
import { ConfigError, RateLimitedError, loadConfig } from "@personal-server/artifacts";
import { bodyHash, newNonce } from "@personal-server/artifacts/client";
import fc from "fast-check";
import Fastify from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WRITER_TOKEN, patternBytes, rawRequest, signedFor, startTestServer, wallet, type TestServer } from "./helpers.js";

const LIMIT = 5;
const garbage = `Web3Signed ${Buffer.from("{}").toString("base64url")}.0x${"00".repeat(65)}`;

describe("authentication failure limit", () => {
  let proxied: TestServer;
  let direct: TestServer;
  beforeAll(async () => {
    const env = { ARTIFACTS_AUTH_FAILURE_LIMIT: String(LIMIT) };
    proxied = await startTestServer("local", { ...env, ARTIFACTS_TRUSTED_PROXIES: "127.0.0.1" });
    direct = await startTestServer("local", env);
  });
  afterAll(async () => {
    await proxied?.close();
    await direct?.close();
  });

  const operation = async (s: TestServer) => {
    const grantee = wallet();
    const { operationId } = await s.writer.createOperation({ grantee: grantee.address });
    await s.writer.upload(operationId, "a.txt", "abc");
    return { grantee, target: `/api/v1/operations/${operationId}/artifacts/a.txt` };
  };

  it("past the limit: 429 with Retry-After, before the signature is looked at; other clients are unaffected", async () => {
    const { grantee, target } = await operation(proxied);
    const from = (ip: string, authorization: string) => rawRequest(proxied.url, "GET", target, { authorization, "x-forwarded-for": ip });
    for (let i = 0; i < LIMIT; i++) expect((await from("203.0.113.1", garbage)).status).toBe(401);
    const limited = await from("203.0.113.1", garbage);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers["retry-after"])).toBeGreaterThanOrEqual(1);
    expect(Number(limited.headers["retry-after"])).toBeLessThanOrEqual(60);
    expect(limited.json).toEqual({
      error: { code: "rate_limited", message: `too many failed authentications from this client; retry in ${limited.headers["retry-after"]} s` },
    });
    // A valid signature from the limited client is refused unread: its nonce stays unspent, so the
    // very same header is served to another client.
    const valid = await signedFor(proxied, grantee, "GET", target);
    expect((await from("203.0.113.1", valid)).status).toBe(429);
    const elsewhere = await from("203.0.113.2", valid);
    expect([elsewhere.status, elsewhere.body.toString()]).toEqual([200, "abc"]);
    // Writer failures count too, and a limited client's writer token is refused alike.
    for (let i = 0; i < LIMIT; i++) {
      const res = await rawRequest(proxied.url, "DELETE", "/api/v1/operations/x", { authorization: "Bearer wrong", "x-forwarded-for": "203.0.113.3" });
      expect(res.status).toBe(401);
    }
    const writer = await rawRequest(proxied.url, "DELETE", "/api/v1/operations/x", { authorization: `Bearer ${WRITER_TOKEN}`, "x-forwarded-for": "203.0.113.3" });
    expect(writer.status).toBe(429);
  });

  it("without trusted proxies X-Forwarded-For is ignored: the socket's address is the client", async () => {
    const { target } = await operation(direct);
    for (let i = 0; i < LIMIT; i++) {
      const res = await rawRequest(direct.url, "GET", target, { authorization: garbage, "x-forwarded-for": `198.51.100.${i}` });
      expect(res.status).toBe(401);
    }
    const res = await rawRequest(direct.url, "GET", target, { authorization: garbage, "x-forwarded-for": "198.51.100.99" });
    expect(res.status).toBe(429);
    // The clients map it back, with the delay (the whole loopback client is limited now).
    await expect(direct.grantee(wallet()).list("any-op")).rejects.toMatchObject({
      name: "RateLimitedError",
      code: "rate_limited",
      status: 429,
      details: { status: 429, retryAfterSeconds: expect.any(Number) },
    });
    await expect(direct.writer.createOperation({ grantee: wallet().address })).rejects.toBeInstanceOf(RateLimitedError);
    // Unauthenticated routes are not limited.
    expect((await rawRequest(direct.url, "GET", "/health")).status).toBe(200);
  });
});

describe("ARTIFACTS_TRUSTED_PROXIES", () => {
  it("every entry the configuration accepts, the server's proxy matching takes; the rest are config errors", () => {
    const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((parts) => parts.join("."));
    const ipv6 = fc.ipV6();
    const entry = fc.oneof(
      ipv4,
      ipv6,
      fc.tuple(ipv4, fc.nat(40)).map(([a, bits]) => `${a}/${bits}`),
      fc.tuple(ipv6, fc.nat(140)).map(([a, bits]) => `${a}/${bits}`),
      fc.constantFrom("0.0.0.0/0", "::/0", "1.2.3.4/00", "::ffff:1.2.3.4/120", "fe80::1%eth0", "10.0.0.0/255.0.0.0", "01.2.3.4"),
    );
    fc.assert(
      fc.property(entry, (value) => {
        let proxies: string[];
        try {
          proxies = loadConfig({ ARTIFACTS_LOCAL_DIR: "/nonexistent/psa", ARTIFACTS_TRUSTED_PROXIES: value }).trustedProxies;
        } catch (error) {
          expect(error).toBeInstanceOf(ConfigError);
          return;
        }
        // The same option buildServer hands Fastify (apps/server/src/app.ts): compiling it must not throw.
        expect(() => Fastify({ trustProxy: proxies })).not.toThrow();
      }),
      { numRuns: 400 },
    );
    expect(() => loadConfig({ ARTIFACTS_LOCAL_DIR: "/nonexistent/psa", ARTIFACTS_TRUSTED_PROXIES: "::/0" })).toThrow(
      '"::/0" would trust every address, so any client could choose its own with X-Forwarded-For',
    );
  });
});

// Issue 19, item 2: a valid signature recovers to some address, so a flood that keeps one real
// signature and changes the payload (a fresh nonce each time) is 404, never 401. Every such
// recovery now counts against the client's budget unless the signer is the operation's grantee,
// and only the grantee's nonces are spent, so the flood neither runs unthrottled nor fills the
// spent-nonce store (cut to 100 entries here) while the grantee, on another address, keeps working.
describe("a flood that reuses one real signature", () => {
  const BUDGET = 60; // the default ARTIFACTS_AUTH_FAILURE_LIMIT
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer("local", { ARTIFACTS_TRUSTED_PROXIES: "127.0.0.1" }, { nonceCacheSize: 100 });
  });
  afterAll(async () => {
    await s?.close();
  });

  it("is throttled after the budget; the grantee on another address gets no 429 or 503", async () => {
    const grantee = wallet();
    const { operationId } = await s.writer.createOperation({ grantee: grantee.address });
    const body = patternBytes(1024 * 1024 + 3, 11);
    await s.writer.upload(operationId, "report.bin", body);
    const target = `/api/v1/operations/${operationId}/artifacts/report.bin`;

    // The attacker's own real signature, replayed over payloads it never signed.
    const attacker = wallet();
    const payload = (nonce: string) => {
      const now = Math.floor(Date.now() / 1000);
      return JSON.stringify({ aud: s.url, method: "GET", uri: target, bodyHash: bodyHash(""), iat: now, exp: now + 60, nonce });
    };
    const signature = await attacker.signMessage({ message: payload(newNonce()) });
    const forged = () => `Web3Signed ${Buffer.from(payload(newNonce())).toString("base64url")}.${signature}`;

    const flood: number[] = [];
    let stop = false;
    const attackers = Array.from({ length: 8 }, async () => {
      while (!stop) flood.push((await rawRequest(s.url, "GET", target, { authorization: forged(), "x-forwarded-for": "203.0.113.66" })).status);
    });
    const granteeStatuses: number[] = [];
    try {
      // The grantee downloads over and over while the flood runs, until the flood has met its 429s.
      // (Bounded: unthrottled, the flood would never meet them.)
      while ((flood.filter((x) => x === 429).length < 200 || granteeStatuses.length < 5) && flood.length < 1000) {
        const answer = await rawRequest(s.url, "GET", target, { authorization: await signedFor(s, grantee, "GET", target), "x-forwarded-for": "198.51.100.20" });
        granteeStatuses.push(answer.status);
        if (answer.status === 200) expect(answer.body.equals(body)).toBe(true);
      }
    } finally {
      stop = true;
      await Promise.all(attackers);
    }
    const served = flood.filter((x) => x !== 429);
    console.log(`[flood] ${flood.length} forged requests: ${served.length} answered (404), ${flood.length - served.length} 429; the grantee: ${granteeStatuses.length} downloads`);
    expect(new Set(served)).toEqual(new Set([404]));
    // At most the budget, plus the requests already in flight on the 8 connections when it ran out.
    expect(served.length).toBeLessThanOrEqual(BUDGET + 8);
    expect(new Set(granteeStatuses)).toEqual(new Set([200]));
  });
});
