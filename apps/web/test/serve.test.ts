// The server serving the built page with ARTIFACTS_WEB_UI=1 (and not without it).
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ConfigError, loadConfig } from "@personal-server/artifacts";
import { rawRequest, startTestServer, type TestServer } from "../../server/test/helpers.js";
import "./provided-context.js";

let on: TestServer;
let off: TestServer;

beforeAll(async () => {
  on = await startTestServer("local", { ARTIFACTS_WEB_UI: "1" }, { webUiDir: inject("webDist") });
  off = await startTestServer("local", {}, { webUiDir: inject("webDist") });
});
afterAll(async () => {
  await on?.close();
  await off?.close();
});

describe("ARTIFACTS_WEB_UI", () => {
  it("=1 serves the page at / with its security headers, the worker and the hashed assets", async () => {
    const page = await rawRequest(on.url, "GET", "/");
    expect(page.status).toBe(200);
    expect(page.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(page.headers["cache-control"]).toBe("no-cache");
    expect(page.headers["content-security-policy"]).toContain("default-src 'self'");
    expect(page.headers["content-security-policy"]).toContain("frame-ancestors 'none'");
    expect(page.headers["referrer-policy"]).toBe("no-referrer");
    const html = page.body.toString("utf8");
    expect(html).toContain("<title>Shared artifacts</title>");
    const script = /src="\.\/(assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(script).toBeDefined();
    const asset = await rawRequest(on.url, "GET", `/${script}`);
    expect(asset.status).toBe(200);
    expect(asset.headers["content-type"]).toBe("text/javascript; charset=utf-8");
    expect(asset.headers["cache-control"]).toBe("public, max-age=31536000, immutable");
    const worker = await rawRequest(on.url, "GET", "/sw.js");
    expect(worker.status).toBe(200);
    expect(worker.body.toString("utf8")).toContain("psa-download");
    const head = await rawRequest(on.url, "HEAD", "/index.html");
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
    expect(Number(head.headers["content-length"])).toBe(page.body.length);
  });

  it("=1 leaves every other path to the API: unknown files are the API's 404, nothing outside the build is reachable", async () => {
    for (const target of ["/missing.js", "/assets/../../package.json", "/%2e%2e/package.json", "/.env"]) {
      const answer = await rawRequest(on.url, "GET", target);
      expect(answer.status, target).toBe(404);
      expect(answer.json, target).toMatchObject({ error: { code: "not_found" } });
    }
    expect((await rawRequest(on.url, "POST", "/")).status).toBe(404);
    expect((await rawRequest(on.url, "GET", "/health")).status).toBe(200);
  });

  it("unset, / is a 404 like any unknown path", async () => {
    expect((await rawRequest(off.url, "GET", "/")).status).toBe(404);
    expect((await rawRequest(off.url, "GET", "/sw.js")).status).toBe(404);
  });

  it("anything but 0 or 1 is a configuration error", () => {
    expect(() => loadConfig({ ARTIFACTS_LOCAL_DIR: on.config.localDir, ARTIFACTS_WEB_UI: "yes" })).toThrow(ConfigError);
    expect(() => loadConfig({ ARTIFACTS_LOCAL_DIR: on.config.localDir, ARTIFACTS_WEB_UI: "yes" })).toThrow('ARTIFACTS_WEB_UI: must be 0 or 1, got "yes"');
  });
});
