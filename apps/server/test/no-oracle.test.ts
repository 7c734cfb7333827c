// No existence oracle: a wallet that is not the grantee gets, byte for byte, the answer of an
// operation that does not exist (status line, headers, body; only the id and Date differ), for
// listing, downloads (plain, ranged, conditional) and HEAD, live or expired. The grantee still
// learns that its own operation expired (410).
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KINDS, signedFor, startTestServer, wallet, type TestServer } from "./helpers.js";

/** One request over a fresh socket; the answer's exact bytes (the server closes: Connection: close). */
function exchange(server: TestServer, method: string, target: string, headers: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(server.port, "127.0.0.1");
    const chunks: Buffer[] = [];
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", reject);
    socket.on("close", () => resolve(Buffer.concat(chunks).toString("latin1")));
    const lines = [`${method} ${target} HTTP/1.1`, `Host: 127.0.0.1:${server.port}`, "Connection: close"];
    for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
    socket.write(`${lines.join("\r\n")}\r\n\r\n`);
  });
}

/** The answer with its Date header blanked and `id` replaced, so two answers compare byte for byte. */
const normalised = (answer: string, id: string) => answer.replace(/^date: .*$/im, "date: -").replaceAll(id, "<id>");

describe.each(KINDS)("no existence oracle on %s storage", (kind) => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer(kind);
  });
  afterAll(async () => {
    await s?.close();
  });

  it("a stranger's answers equal a missing operation's byte for byte; only the grantee sees 410", async () => {
    const grantee = wallet();
    const stranger = wallet();
    const { operationId: id } = await s.writer.createOperation({ grantee: grantee.address, agent: "oracle" });
    await s.writer.upload(id, "a.txt", "secret bytes", { contentType: "text/plain" });
    // Same length as the real id, so Content-Length cannot differ either; nobody created it.
    const missing = id.replace(/\d$/, (d) => String((Number(d) + 5) % 10));

    const requests: { method: string; path: (op: string) => string; headers?: Record<string, string> }[] = [
      { method: "GET", path: (op) => `/api/v1/operations/${op}/artifacts` },
      { method: "GET", path: (op) => `/api/v1/operations/${op}/artifacts/a.txt` },
      { method: "GET", path: (op) => `/api/v1/operations/${op}/artifacts/nope.txt` },
      { method: "GET", path: (op) => `/api/v1/operations/${op}/artifacts/a.txt`, headers: { range: "bytes=2-5" } },
      { method: "GET", path: (op) => `/api/v1/operations/${op}/artifacts/a.txt`, headers: { range: "bytes=-3" } },
      { method: "GET", path: (op) => `/api/v1/operations/${op}/artifacts/a.txt`, headers: { "if-none-match": '"x"' } },
      { method: "HEAD", path: (op) => `/api/v1/operations/${op}/artifacts/a.txt` },
    ];
    const compare = async (label: string) => {
      for (const r of requests) {
        const ask = async (op: string) => {
          const target = r.path(op);
          return exchange(s, r.method, target, { ...r.headers, authorization: await signedFor(s, stranger, r.method, target) });
        };
        const [theirs, nobodys] = [await ask(id), await ask(missing)];
        expect(theirs, `${label}: ${r.method} ${r.path("<id>")}`).toMatch(/^HTTP\/1\.1 404 Not Found\r\n/);
        expect(normalised(theirs, id), `${label}: ${r.method} ${r.path("<id>")}`).toBe(normalised(nobodys, missing));
      }
    };
    await compare("live");
    // The grantee reads it meanwhile, as always.
    const own = await exchange(s, "GET", `/api/v1/operations/${id}/artifacts/a.txt`, {
      authorization: await signedFor(s, grantee, "GET", `/api/v1/operations/${id}/artifacts/a.txt`),
    });
    expect(own).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nsecret bytes$/);

    const saved = s.clock.now;
    s.clock.now = new Date(Date.now() + 8 * 86_400_000);
    try {
      await compare("expired");
      const target = `/api/v1/operations/${id}/artifacts`;
      const expired = await exchange(s, "GET", target, { authorization: await signedFor(s, grantee, "GET", target) });
      expect(expired).toMatch(/^HTTP\/1\.1 410 Gone\r\n[\s\S]*"code":"expired"/);
    } finally {
      s.clock.now = saved;
    }
    // A sample of what they all look like: nothing in it names the grantee or the artifact.
    const target = `/api/v1/operations/${id}/artifacts/a.txt`;
    const sample = await exchange(s, "GET", target, { authorization: await signedFor(s, stranger, "GET", target) });
    expect(sample.slice(sample.indexOf("\r\n\r\n") + 4)).toBe(
      `{"error":{"code":"not_found","message":"operation ${id} not found or not shared with this wallet"}}`,
    );
  });
});
