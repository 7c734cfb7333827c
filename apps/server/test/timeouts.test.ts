// Slow clients: headers that never finish and bodies that stop flowing are cut; a body that keeps
// flowing is not (there is no total request time limit).
import { connect, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WRITER_TOKEN, startTestServer, wallet, type TestServer } from "./helpers.js";

/** Opens a raw TCP connection and collects what the server sends until it closes the connection. */
function openRaw(url: string): { socket: Socket; closed: Promise<string> } {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  let received = "";
  socket.on("data", (d: Buffer) => (received += d.toString("latin1")));
  socket.on("error", () => {});
  const closed = new Promise<string>((resolve) => socket.on("close", () => resolve(received)));
  return { socket, closed };
}

describe("slow clients and requests the HTTP parser refuses", () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer("local", {}, { headersTimeoutMs: 400, idleTimeoutMs: 1500 });
  });
  afterAll(async () => {
    await s?.close();
  });

  const jsonBody = (answer: string): unknown => JSON.parse(answer.slice(answer.indexOf("\r\n\r\n") + 4));

  it("a client that never finishes its headers gets 408 and the connection closed", async () => {
    const { socket, closed } = openRaw(s.url);
    socket.write("GET /health HTTP/1.1\r\nHost: x\r\n");
    const answer = await closed;
    expect(answer.startsWith("HTTP/1.1 408 Request Timeout\r\n")).toBe(true);
    expect(jsonBody(answer)).toEqual({ error: { code: "invalid_input", message: "the request headers did not arrive in time" } });
  });

  it("raw non-ASCII bytes in the target, oversized headers and a missing Host get the API's JSON error", async () => {
    const cases: [Buffer, string, unknown][] = [
      [
        Buffer.from("GET /api/v1/operations/r\u00e9sum\u00e9/artifacts HTTP/1.1\r\nHost: x\r\n\r\n", "utf8"),
        "HTTP/1.1 400 Bad Request\r\n",
        { error: { code: "invalid_input", message: "malformed HTTP request: the request target may hold only printable ASCII (percent-encoding is not accepted either)" } },
      ],
      [
        Buffer.from(`GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`),
        "HTTP/1.1 431 Request Header Fields Too Large\r\n",
        { error: { code: "too_large", message: "the request line and headers are larger than 16 KiB" } },
      ],
      [Buffer.from("GET /health HTTP/1.1\r\nConnection: close\r\n\r\n"), "HTTP/1.1 400 Bad Request\r\n", { error: { code: "invalid_input", message: "malformed HTTP request: HTTP/1.1 needs a Host header" } }],
    ];
    for (const [bytes, statusLine, body] of cases) {
      const { socket, closed } = openRaw(s.url);
      socket.write(bytes);
      const answer = await closed;
      expect(answer.startsWith(statusLine)).toBe(true);
      expect(jsonBody(answer)).toEqual(body);
    }
  });

  it("an upload that stops flowing is cut once the connection sits idle, and nothing is stored", async () => {
    const { operationId: id } = await s.writer.createOperation({ grantee: wallet().address });
    const { socket, closed } = openRaw(s.url);
    socket.write(
      `PUT /api/v1/operations/${id}/artifacts/stalled.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${WRITER_TOKEN}\r\nContent-Length: 1000\r\n\r\n`,
    );
    socket.write(Buffer.alloc(100, 1));
    await closed;
    const op = await s.store.getOperation(id);
    expect(op.artifactCount).toBe(0);
  });

  it("an upload that keeps flowing for longer than the idle and header limits completes", async () => {
    const grantee = wallet();
    const { operationId: id } = await s.writer.createOperation({ grantee: grantee.address });
    // 20 pieces 100 ms apart: the upload outlives both limits (2 s) but is never idle for long.
    const pieces = 20;
    async function* slowly() {
      for (let i = 0; i < pieces; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        yield Buffer.alloc(1000, i);
      }
    }
    const uploaded = await s.writer.upload(id, "slow.bin", slowly());
    expect(uploaded.size).toBe(pieces * 1000);
  });
});
