// Every route's success path and error codes, the check order of docs/http-api.md, Range/HEAD, the upload
// limit, immutability and concurrency: over real HTTP, on local storage and on S3 (moto).
import { Readable } from "node:stream";
import {
  ConflictError,
  NotFoundError,
  RangeNotSatisfiableError,
  TooLargeError,
  UnauthenticatedError,
} from "@personal-server/artifacts";
import { createWriterClient } from "@personal-server/artifacts/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  KINDS,
  WRITER_TOKEN,
  collect,
  errorBody,
  patternBytes,
  rawRequest,
  sha256,
  signedFor,
  startTestServer,
  storageKind,
  storedKeys,
  wallet,
  type TestServer,
} from "./helpers.js";

const MiB = 1024 * 1024;
const bearer = { authorization: `Bearer ${WRITER_TOKEN}` };

describe.each(KINDS)("HTTP API on %s storage", (kind) => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer(kind);
  });
  afterAll(async () => {
    await s?.close();
  });

  const newOperation = async (grantee = wallet()) => {
    const op = await s.writer.createOperation({ grantee: grantee.address, agent: "gemini" });
    return { grantee, id: op.operationId, op };
  };

  it("GET /health answers ok and the storage kind", async () => {
    const res = await rawRequest(s.url, "GET", "/health");
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ status: "ok", storage: storageKind(kind) });
  });

  it("POST /api/v1/operations creates an operation (201) with a generated or explicit id", async () => {
    const grantee = wallet();
    const res = await rawRequest(
      s.url,
      "POST",
      "/api/v1/operations",
      { ...bearer, "content-type": "application/json" },
      JSON.stringify({ grantee: grantee.address, agent: "gemini", ttlSeconds: 3600 }),
    );
    expect(res.status).toBe(201);
    const body = res.json as { operationId: string; grantee: string; expiresAt: string };
    expect(Object.keys(body).sort()).toEqual(["expiresAt", "grantee", "operationId"]);
    expect(body.operationId).toMatch(/^gemini_\d{13}$/);
    expect(body.grantee).toBe(grantee.address.toLowerCase());
    const lifetime = Date.parse(body.expiresAt) - Number(body.operationId.slice("gemini_".length));
    expect(lifetime).toBe(3600 * 1000);
    expect(res.headers.location).toBe(`/api/v1/operations/${body.operationId}/artifacts`);

    const explicit = `explicit_${Date.now()}`;
    const made = await s.writer.createOperation({ grantee: grantee.address, operationId: explicit });
    expect(made.operationId).toBe(explicit);
    const again = s.writer.createOperation({ grantee: grantee.address, operationId: explicit });
    await expect(again).rejects.toBeInstanceOf(ConflictError);
    await expect(again).rejects.toMatchObject({ code: "conflict", message: `operation ${explicit} already exists` });
  });

  it("POST /api/v1/operations refuses bad input: 401, 400, 413", async () => {
    const json = { "content-type": "application/json" };
    const good = JSON.stringify({ grantee: wallet().address });
    const cases: [Record<string, string>, string, number, string, string][] = [
      [json, good, 401, "unauthenticated", "missing Authorization: Bearer <writer token>"],
      [{ ...json, authorization: "Bearer not-the-token-at-all-but-long-enough" }, good, 401, "unauthenticated", "the bearer token is not the writer token"],
      [{ ...json, ...bearer }, JSON.stringify({ grantee: "0x1234" }), 400, "invalid_input", "grantee must be an EVM address: 0x followed by 40 hex digits"],
      [{ ...json, ...bearer }, JSON.stringify({ grantee: wallet().address, ttlSeconds: 8 * 86_400 }), 400, "invalid_input", "ttlSeconds must be a whole number from 1 to 604800"],
      [{ ...json, ...bearer }, JSON.stringify({ grantee: wallet().address, ttlSeconds: 1.5 }), 400, "invalid_input", "ttlSeconds must be a whole number from 1 to 604800"],
      [{ ...json, ...bearer }, JSON.stringify({ grantee: wallet().address, color: "red" }), 400, "invalid_input", "unknown field(s): color"],
      [{ ...json, ...bearer }, JSON.stringify({ grantee: wallet().address, operationId: "Bad Id" }), 400, "invalid_input", "operationId must match ^[a-z0-9][a-z0-9_-]{0,127}$ (lower-case letters, digits, '_' and '-', at most 128)"],
      [{ ...json, ...bearer }, "{not json", 400, "invalid_input", "request body is not valid UTF-8 JSON"],
      [{ ...json, ...bearer }, "[1,2]", 400, "invalid_input", "body must be a JSON object {grantee, agent?, operationId?, ttlSeconds?}"],
      [{ "content-type": "text/plain", ...bearer }, good, 400, "invalid_input", "Content-Type must be application/json"],
      [{ ...json, ...bearer }, JSON.stringify({ grantee: wallet().address, agent: "x".repeat(17 * 1024) }), 413, "too_large", "JSON body is larger than 16384 bytes"],
    ];
    for (const [headers, body, status, code, message] of cases) {
      const res = await rawRequest(s.url, "POST", "/api/v1/operations", headers, body);
      expect({ status: res.status, body: res.json }).toEqual({ status, body: errorBody(code, message) });
    }
  });

  it("an artifact and one inside it as a folder (d and d/c, either order): 409 saying why on local storage, both stored on S3", async () => {
    const { id } = await newOperation();
    for (const [first, second] of [["d", "d/c"], ["e/f", "e"]]) {
      await s.writer.upload(id, first!, "first");
      const res = await rawRequest(s.url, "PUT", `/api/v1/operations/${id}/artifacts/${second}`, bearer, "second");
      if (kind === "local") {
        const folder = first!.length < second!.length ? first : second;
        expect({ status: res.status, body: res.json, retryAfter: res.headers["retry-after"] }).toEqual({
          status: 409,
          body: errorBody(
            "conflict",
            `artifact ${second} cannot be stored beside artifact ${first} in operation ${id}: local storage keeps paths as files and folders, and ${folder} cannot be both; choose another path`,
          ),
          retryAfter: undefined,
        });
      } else {
        expect(res.status).toBe(201);
      }
    }
    const paths = (await s.store.listArtifacts(id, { requester: (await s.store.getOperation(id)).grantee })).artifacts.map((a) => a.path);
    expect(paths).toEqual(kind === "local" ? ["d", "e/f"] : ["d", "d/c", "e", "e/f"]);
    expect((await storedKeys(s.raw, id)).filter((k) => k.includes("/artifacts/"))).toHaveLength(paths.length);
  });

  it("grantee addresses: all lower or all upper case, or mixed case with a valid EIP-55 checksum; a checksum typo is 400 naming the field", async () => {
    const address = wallet().address;
    const hex = address.slice(2);
    const at = hex.search(/[a-fA-F]/);
    const typo = `0x${hex.slice(0, at)}${hex[at] === hex[at]!.toLowerCase() ? hex[at]!.toUpperCase() : hex[at]!.toLowerCase()}${hex.slice(at + 1)}`;
    for (const grantee of [address, address.toLowerCase(), `0x${hex.toUpperCase()}`]) {
      const res = await rawRequest(s.url, "POST", "/api/v1/operations", { "content-type": "application/json", ...bearer }, JSON.stringify({ grantee }));
      expect({ grantee, status: res.status, stored: (res.json as { grantee?: string }).grantee }).toEqual({ grantee, status: 201, stored: address.toLowerCase() });
    }
    const refused = await rawRequest(s.url, "POST", "/api/v1/operations", { "content-type": "application/json", ...bearer }, JSON.stringify({ grantee: typo }));
    const message = "grantee has mixed case but not a valid EIP-55 checksum: check the address for a typo, or give it all in lower case";
    expect({ status: refused.status, body: refused.json }).toEqual({ status: 400, body: errorBody("invalid_input", message) });
    // The writer client refuses it before sending (same function, same message).
    const offline = createWriterClient({ baseUrl: "http://127.0.0.1:9", token: WRITER_TOKEN });
    await expect(offline.createOperation({ grantee: typo })).rejects.toThrow(message);
  });

  it("PUT stores the raw body with its Content-Type (201); GET and HEAD serve it back with the download headers", async () => {
    const { grantee, id } = await newOperation();
    const target = `/api/v1/operations/${id}/artifacts/reports/privacy_audit.md`;
    const text = "# Privacy audit\n\nAll good.\n";
    const put = await rawRequest(s.url, "PUT", target, { ...bearer, "content-type": "text/markdown; charset=utf-8" }, text);
    expect(put.status).toBe(201);
    expect(put.json).toEqual({ path: "reports/privacy_audit.md", size: Buffer.byteLength(text), contentType: "text/markdown; charset=utf-8" });

    const get = await rawRequest(s.url, "GET", target, { authorization: await signedFor(s, grantee, "GET", target) });
    expect(get.status).toBe(200);
    expect(get.body.toString("utf8")).toBe(text);
    expect(get.headers["content-type"]).toBe("text/markdown; charset=utf-8");
    expect(get.headers["content-length"]).toBe(String(Buffer.byteLength(text)));
    expect(get.headers["accept-ranges"]).toBe("bytes");
    expect(get.headers["cache-control"]).toBe("private, no-store");
    expect(get.headers["content-disposition"]).toBe(`attachment; filename="privacy_audit.md"; filename*=UTF-8''privacy_audit.md`);
    expect(get.headers["x-content-type-options"]).toBe("nosniff");
    expect(get.headers.etag).toMatch(/^"[^"]+"$/);

    const head = await rawRequest(s.url, "HEAD", target, { authorization: await signedFor(s, grantee, "HEAD", target) });
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
    for (const name of ["content-type", "content-length", "etag", "accept-ranges", "cache-control", "content-disposition"]) {
      expect(head.headers[name]).toBe(get.headers[name]);
    }

    const list = await s.grantee(grantee).list(id);
    expect(list).toEqual({
      operationId: id,
      expiresAt: expect.any(String),
      artifacts: [
        {
          path: "reports/privacy_audit.md",
          size: Buffer.byteLength(text),
          contentType: "text/markdown; charset=utf-8",
          createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
          etag: get.headers.etag!.slice(1, -1),
        },
      ],
    });

    const noType = `/api/v1/operations/${id}/artifacts/blob.bin`;
    const putNoType = await rawRequest(s.url, "PUT", noType, bearer, Buffer.from([1, 2, 3]));
    expect(putNoType.json).toEqual({ path: "blob.bin", size: 3, contentType: "application/octet-stream" });
    const empty = await s.writer.upload(id, "empty.txt", "", { contentType: "text/plain" });
    expect(empty).toEqual({ path: "empty.txt", size: 0, contentType: "text/plain" });
    const emptyBody = await collect(await s.grantee(grantee).download(id, "empty.txt"));
    expect(emptyBody.length).toBe(0);
  });

  it("If-None-Match with the current ETag answers 304", async () => {
    const { grantee, id } = await newOperation();
    await s.writer.upload(id, "a.txt", "abc");
    const target = `/api/v1/operations/${id}/artifacts/a.txt`;
    const first = await rawRequest(s.url, "GET", target, { authorization: await signedFor(s, grantee, "GET", target) });
    const etag = first.headers.etag!;
    const again = await rawRequest(s.url, "GET", target, { authorization: await signedFor(s, grantee, "GET", target), "if-none-match": etag });
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);
    expect(again.headers.etag).toBe(etag);
    const other = await rawRequest(s.url, "GET", target, { authorization: await signedFor(s, grantee, "GET", target), "if-none-match": '"other"' });
    expect(other.status).toBe(200);
    expect(other.body.toString()).toBe("abc");
  });

  it("PUT errors: 401 before 400 before 404 before 410 before 409", async () => {
    const { id } = await newOperation();
    const target = (path: string, op = id) => `/api/v1/operations/${op}/artifacts/${path}`;
    const cases: [string, Record<string, string>, number, string, string][] = [
      [target("a.txt"), {}, 401, "unauthenticated", "missing Authorization: Bearer <writer token>"],
      [target("a%2Fb.txt"), {}, 401, "unauthenticated", "missing Authorization: Bearer <writer token>"],
      [target("a%zz"), {}, 401, "unauthenticated", "missing Authorization: Bearer <writer token>"],
      [target("a%2Fb.txt"), bearer, 400, "invalid_input", "artifact path must not contain '%' (percent-encoding is not accepted)"],
      [target("a%zz"), bearer, 400, "invalid_input", "artifact path must not contain '%' (percent-encoding is not accepted)"],
      [target("x", "op%5fone"), bearer, 400, "invalid_input", "operation id must not contain '%' (percent-encoding is not accepted)"],
      [target("../escape.txt"), bearer, 400, "invalid_input", "artifact path must be relative with no empty, '.' or '..' segments"],
      [target("a//b.txt"), bearer, 400, "invalid_input", "artifact path must be relative with no empty, '.' or '..' segments"],
      [target("dir/"), bearer, 400, "invalid_input", "artifact path must be relative with no empty, '.' or '..' segments"],
      [target("a:b.txt"), bearer, 400, "invalid_input", "artifact path segments may contain only letters, digits, '.', '_' and '-'"],
      [target(`d/${"s".repeat(256)}`), bearer, 400, "invalid_input", "artifact path segments may be at most 255 bytes long"],
      [target("a.txt", "Upper"), bearer, 400, "invalid_input", "operationId must match ^[a-z0-9][a-z0-9_-]{0,127}$ (lower-case letters, digits, '_' and '-', at most 128)"],
      [target("a.txt", "no_such_operation"), bearer, 404, "not_found", "operation no_such_operation not found"],
      [target("a.txt"), { "content-type": "not a type" }, 401, "unauthenticated", "missing Authorization: Bearer <writer token>"],
      [target("a.txt"), { ...bearer, "content-type": "not a type" }, 400, "invalid_input", "contentType must be a media type like text/plain; charset=utf-8"],
    ];
    for (const [t, headers, status, code, message] of cases) {
      const res = await rawRequest(s.url, "PUT", t, headers, "x");
      expect({ t, status: res.status, body: res.json }).toEqual({ t, status, body: errorBody(code, message) });
    }

    // A 255-byte segment is stored on every backend.
    expect((await s.writer.upload(id, `d/${"s".repeat(255)}`, "long name")).size).toBe(9);
    await s.writer.upload(id, "a.txt", "first");
    const second = await rawRequest(s.url, "PUT", target("a.txt"), bearer, "second");
    expect({ status: second.status, body: second.json }).toEqual({
      status: 409,
      body: errorBody("conflict", `artifact a.txt already exists in operation ${id}; artifacts are immutable`),
    });
    await expect(s.writer.upload(id, "a.txt", "third")).rejects.toBeInstanceOf(ConflictError);

    // Expired beats conflict: move the store's clock past expiry.
    const saved = s.clock.now;
    s.clock.now = new Date(Date.now() + 8 * 86_400_000);
    try {
      for (const path of ["a.txt", "b.txt"]) {
        const res = await rawRequest(s.url, "PUT", target(path), bearer, "late");
        expect(res.status).toBe(410);
        expect((res.json as { error: { code: string; message: string } }).error.code).toBe("expired");
        expect((res.json as { error: { message: string } }).error.message).toMatch(new RegExp(`^operation ${id} expired at `));
      }
    } finally {
      s.clock.now = saved;
    }
    const list = await s.writer.createOperation({ grantee: wallet().address });
    expect(list.operationId).toMatch(/^op_\d{13}_[0-9a-f]{8}$/);
  });

  it("reads: 401 before 400 before 404 before 410; a stranger gets a missing operation's 404; a missing path is 404", async () => {
    const { grantee, id } = await newOperation();
    await s.writer.upload(id, "a.txt", "abc");
    const stranger = wallet();
    const list = (op: string) => `/api/v1/operations/${op}/artifacts`;
    const art = (op: string, path: string) => `${list(op)}/${path}`;
    const ask = async (target: string, who = grantee, auth = true) =>
      rawRequest(s.url, "GET", target, auth ? { authorization: await signedFor(s, who, "GET", target) } : {});

    const expectAnswer = async (p: Promise<Awaited<ReturnType<typeof rawRequest>>>, status: number, code: string, message: string) => {
      const res = await p;
      expect({ status: res.status, body: res.json }).toEqual({ status, body: errorBody(code, message) });
    };
    await expectAnswer(ask(list("Bad%20Id"), grantee, false), 401, "unauthenticated", "missing Authorization: Web3Signed <payload>.<signature>");
    await expectAnswer(ask(list("bad%20id")), 400, "invalid_input", "operation id must not contain '%' (percent-encoding is not accepted)");
    await expectAnswer(ask(art(id, "a%2e.txt")), 400, "invalid_input", "artifact path must not contain '%' (percent-encoding is not accepted)");
    await expectAnswer(ask(art(id, "./a.txt")), 400, "invalid_input", "artifact path must be relative with no empty, '.' or '..' segments");
    const notShared = (op: string) => `operation ${op} not found or not shared with this wallet`;
    await expectAnswer(ask(list("missing_op"), stranger), 404, "not_found", notShared("missing_op"));
    await expectAnswer(ask(list("missing_op")), 404, "not_found", notShared("missing_op"));
    await expectAnswer(ask(list(id), stranger), 404, "not_found", notShared(id));
    await expectAnswer(ask(art(id, "a.txt"), stranger), 404, "not_found", notShared(id));
    await expectAnswer(ask(art(id, "nope.txt"), stranger), 404, "not_found", notShared(id));
    await expectAnswer(ask(art(id, "nope.txt")), 404, "not_found", `artifact nope.txt not found in operation ${id}`);

    const saved = s.clock.now;
    s.clock.now = new Date(Date.now() + 8 * 86_400_000);
    try {
      await expectAnswer(ask(list(id), stranger), 404, "not_found", notShared(id));
      const expired = await ask(list(id));
      expect(expired.status).toBe(410);
      expect((expired.json as { error: { code: string } }).error.code).toBe("expired");
      const expiredGet = await ask(art(id, "a.txt"));
      expect(expiredGet.status).toBe(410);
    } finally {
      s.clock.now = saved;
    }

    // The clients map answers back to the SDK's classes, same code and message.
    await expect(s.grantee(stranger).list(id)).rejects.toMatchObject({ name: "NotFoundError", message: notShared(id) });
    await expect(s.grantee(stranger).download(id, "a.txt")).rejects.toMatchObject({ code: "not_found", status: 404 });
    await expect(s.grantee(stranger).stat(id, "a.txt")).rejects.toMatchObject({ code: "not_found", message: expect.stringMatching(/not shared with this wallet/) });
    await expect(s.grantee(grantee).download(id, "nope.txt")).rejects.toBeInstanceOf(NotFoundError);
    await expect(s.grantee(grantee).stat(id, "nope.txt")).rejects.toMatchObject({ code: "not_found" });
    await expect(createWriterClient({ baseUrl: s.url, token: "x".repeat(40) }).deleteOperation(id)).rejects.toBeInstanceOf(UnauthenticatedError);
  });

  it("Range: first byte, last byte, a span over a chunk edge, suffix, open end, 416; HEAD ignores Range", async () => {
    const { grantee, id } = await newOperation();
    const size = 2 * MiB + 4321;
    const data = patternBytes(size, 7);
    await s.writer.upload(id, "big.bin", data);
    await s.writer.upload(id, "empty.bin", "");
    const target = `/api/v1/operations/${id}/artifacts/big.bin`;
    const get = async (range: string, t = target) =>
      rawRequest(s.url, "GET", t, { authorization: await signedFor(s, grantee, "GET", t), range });

    const partial: [string, number, number][] = [
      ["bytes=0-0", 0, 0],
      [`bytes=${size - 1}-${size - 1}`, size - 1, size - 1],
      [`bytes=${MiB - 10}-${MiB + 9}`, MiB - 10, MiB + 9],
      [`bytes=${2 * MiB - 1}-${2 * MiB}`, 2 * MiB - 1, 2 * MiB],
      ["bytes=-100", size - 100, size - 1],
      [`bytes=-${size + 5}`, 0, size - 1],
      [`bytes=${size - 50}-`, size - 50, size - 1],
      [`bytes=${size - 50}-${size + 1000}`, size - 50, size - 1],
    ];
    for (const [header, start, end] of partial) {
      const res = await get(header);
      expect({ header, status: res.status, range: res.headers["content-range"], length: res.headers["content-length"] }).toEqual({
        header,
        status: 206,
        range: `bytes ${start}-${end}/${size}`,
        length: String(end - start + 1),
      });
      expect(res.body.equals(data.subarray(start, end + 1))).toBe(true);
    }

    for (const header of ["bytes=0-1,5-6", "bytes=9-3", "items=0-1", "bytes=abc", "bytes=--1"]) {
      const res = await get(header);
      expect({ header, status: res.status, range: res.headers["content-range"] }).toEqual({ header, status: 200, range: undefined });
      expect(sha256(res.body)).toBe(sha256(data));
    }

    for (const header of [`bytes=${size}-`, `bytes=${size + 10}-${size + 20}`, "bytes=-0"]) {
      const res = await get(header);
      expect({ header, status: res.status, range: res.headers["content-range"], code: (res.json as { error: { code: string } }).error.code }).toEqual({
        header,
        status: 416,
        range: `bytes */${size}`,
        code: "range_not_satisfiable",
      });
    }
    const emptyTarget = `/api/v1/operations/${id}/artifacts/empty.bin`;
    for (const header of ["bytes=0-0", "bytes=-1", "bytes=0-"]) {
      const res = await get(header, emptyTarget);
      expect({ header, status: res.status, range: res.headers["content-range"] }).toEqual({ header, status: 416, range: "bytes */0" });
    }

    // If-Range: the range holds only while the ETag still matches.
    const plain = await get("bytes=0-0");
    const etag = plain.headers.etag!;
    const matching = await rawRequest(s.url, "GET", target, { authorization: await signedFor(s, grantee, "GET", target), range: "bytes=0-9", "if-range": etag });
    expect({ status: matching.status, range: matching.headers["content-range"] }).toEqual({ status: 206, range: `bytes 0-9/${size}` });
    const stale = await rawRequest(s.url, "GET", target, { authorization: await signedFor(s, grantee, "GET", target), range: "bytes=0-9", "if-range": '"stale"' });
    expect({ status: stale.status, length: stale.body.length }).toEqual({ status: 200, length: size });

    const head = await rawRequest(s.url, "HEAD", target, { authorization: await signedFor(s, grantee, "HEAD", target), range: "bytes=0-0" });
    expect(head.status).toBe(200);
    expect(head.headers["content-length"]).toBe(String(size));

    // Through the client: a range gives a 206 stream with its bounds; 416 maps to RangeNotSatisfiableError with the size.
    const client = s.grantee(grantee);
    const stream = await client.download(id, "big.bin", { range: { start: MiB - 3, end: MiB + 3 } });
    expect(stream.artifact).toMatchObject({ status: 206, size, range: { start: MiB - 3, end: MiB + 3 }, contentLength: 7 });
    expect((await collect(stream)).equals(data.subarray(MiB - 3, MiB + 4))).toBe(true);
    const suffix = await collect(await client.download(id, "big.bin", { range: { suffix: 10 } }));
    expect(suffix.equals(data.subarray(size - 10))).toBe(true);
    const refused = client.download(id, "big.bin", { range: { start: size } });
    await expect(refused).rejects.toBeInstanceOf(RangeNotSatisfiableError);
    await expect(refused).rejects.toMatchObject({ details: { status: 416, size } });
  });

  it("DELETE removes the operation (204); unknown 404; needs the writer token", async () => {
    const { grantee, id } = await newOperation();
    await s.writer.upload(id, "a.txt", "abc");
    const target = `/api/v1/operations/${id}`;
    const unauth = await rawRequest(s.url, "DELETE", target, { authorization: await signedFor(s, grantee, "DELETE", target) });
    expect({ status: unauth.status, body: unauth.json }).toEqual({
      status: 401,
      body: errorBody("unauthenticated", "missing Authorization: Bearer <writer token>"),
    });
    const res = await rawRequest(s.url, "DELETE", target, bearer);
    expect(res.status).toBe(204);
    expect(res.body.length).toBe(0);
    expect(await storedKeys(s.raw, id)).toEqual([]);
    await expect(s.grantee(grantee).list(id)).rejects.toMatchObject({ code: "not_found", message: `operation ${id} not found or not shared with this wallet` });
    const again = await rawRequest(s.url, "DELETE", target, bearer);
    expect({ status: again.status, body: again.json }).toEqual({ status: 404, body: errorBody("not_found", `operation ${id} not found`) });
    const bad = await rawRequest(s.url, "DELETE", "/api/v1/operations/a%2e", bearer);
    expect(bad.status).toBe(400);
  });

  it("wrong method on a known path is 405 with Allow; unknown paths are 404 JSON", async () => {
    const cases: [string, string, string][] = [
      ["PATCH", "/api/v1/operations", "POST"],
      ["GET", "/api/v1/operations", "POST"],
      ["GET", "/api/v1/operations/abc", "DELETE"],
      ["DELETE", "/api/v1/operations/abc/artifacts", "GET"],
      ["POST", "/api/v1/operations/abc/artifacts/x.txt", "GET, HEAD, PUT"],
      ["PROPFIND", "/api/v1/operations/abc/artifacts/x.txt", "GET, HEAD, PUT"],
      ["POST", "/health", "GET, HEAD"],
    ];
    for (const [method, target, allow] of cases) {
      const res = await rawRequest(s.url, method, target, bearer);
      expect({ method, target, status: res.status, allow: res.headers.allow, code: (res.json as { error: { code: string } }).error.code }).toEqual({
        method,
        target,
        status: 405,
        allow,
        code: "method_not_allowed",
      });
    }
    for (const target of ["/", "/api/v1", "/api/v1/operations/abc/other", "/health/x", "/api/v2/operations"]) {
      const res = await rawRequest(s.url, "GET", target);
      expect({ target, status: res.status, body: res.json }).toEqual({
        target,
        status: 404,
        body: errorBody("not_found", `no route for GET ${target}`),
      });
    }
  });

  it("50 concurrent uploads to one operation are all stored and listed", async () => {
    const { grantee, id } = await newOperation();
    const uploads = Array.from({ length: 50 }, (_, i) => s.writer.upload(id, `parts/part-${String(i).padStart(2, "0")}.txt`, `part ${i}\n`, { contentType: "text/plain" }));
    const results = await Promise.all(uploads);
    expect(results.map((r) => r.size)).toEqual(Array.from({ length: 50 }, (_, i) => `part ${i}\n`.length));
    const list = await s.grantee(grantee).list(id);
    expect(list.artifacts.map((a) => a.path)).toEqual(Array.from({ length: 50 }, (_, i) => `parts/part-${String(i).padStart(2, "0")}.txt`));
    const body = await collect(await s.grantee(grantee).download(id, "parts/part-37.txt"));
    expect(body.toString()).toBe("part 37\n");
  });

  it("a streamed (chunked) upload of several MiB round-trips through the clients, also to a file", async () => {
    const { grantee, id } = await newOperation();
    const data = patternBytes(3 * MiB + 17, 3);
    async function* pieces() {
      for (let offset = 0; offset < data.length; offset += 100_000) yield data.subarray(offset, offset + 100_000);
    }
    const up = await s.writer.upload(id, "stream.bin", Readable.from(pieces()));
    expect(up.size).toBe(data.length);
    const { mkdtempSync, readFileSync, rmSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const dir = mkdtempSync(`${tmpdir()}/psa-download-`);
    try {
      const saved = await s.grantee(grantee).downloadToFile(id, "stream.bin", `${dir}/downloaded.bin`);
      expect(saved.bytes).toBe(data.length);
      expect(sha256(readFileSync(`${dir}/downloaded.bin`))).toBe(sha256(data));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("streamed bodies that start with an empty piece, or have no pieces at all, upload", async () => {
    const { grantee, id } = await newOperation();
    const first = await s.writer.upload(id, "empty-first.bin", Readable.from([Buffer.alloc(0), Buffer.from("abc")]), { signal: AbortSignal.timeout(20_000) });
    expect(first.size).toBe(3);
    async function* nothing(): AsyncGenerator<Uint8Array> {}
    const none = await s.writer.upload(id, "no-pieces.bin", nothing(), { signal: AbortSignal.timeout(20_000) });
    expect(none.size).toBe(0);
    expect((await collect(await s.grantee(grantee).download(id, "empty-first.bin"))).toString()).toBe("abc");
  });

  it("GET /metrics on the metrics listener exposes requests by route and status, bytes, errors by code, auth failures by reason, storage calls and the storage kind", async () => {
    const { grantee, id } = await newOperation();
    await s.writer.upload(id, "m.txt", "12345");
    await collect(await s.grantee(grantee).download(id, "m.txt"));
    await rawRequest(s.url, "GET", "/api/v1/operations/nope/artifacts");
    // The API port never serves metrics: /metrics there is an unknown route.
    const api = await rawRequest(s.url, "GET", "/metrics");
    expect({ status: api.status, body: api.json }).toEqual({ status: 404, body: errorBody("not_found", "no route for GET /metrics") });
    const url = new URL(s.metricsUrl);
    const res = await rawRequest(url.origin, "GET", url.pathname);
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toMatch(/^text\/plain/);
    const text = res.body.toString();
    expect(text).toContain('artifacts_http_requests_total{route="/api/v1/operations",method="POST",status="201"}');
    expect(text).toContain('artifacts_http_requests_total{route="/api/v1/operations/:id/artifacts/:path*",method="PUT",status="201"}');
    expect(text).toContain('artifacts_http_requests_total{route="/api/v1/operations/:id/artifacts",method="GET",status="401"}');
    expect(text).toContain(`artifacts_storage_info{kind="${storageKind(kind)}"} 1`);
    // 401s are counted once, by reason; every known label value exists from the start.
    expect(text).toMatch(/^artifacts_auth_failures_total\{reason="missing"\} [1-9]\d*$/m);
    expect(text).toMatch(/^artifacts_auth_failures_total\{reason="replayed"\} \d+$/m);
    expect(text).not.toContain('code="unauthenticated"');
    expect(text).toMatch(/^artifacts_errors_total\{code="not_found"\} \d+$/m);
    expect(text).toMatch(/^artifacts_storage_requests_total\{operation="put"\} [1-9]\d*$/m);
    expect(text).toMatch(/^artifacts_storage_errors_total\{operation="put"\} 0$/m);
    expect(text).toMatch(/^artifacts_usage_stale 1$/m); // ARTIFACTS_SWEEP_INTERVAL=0 in tests: never refreshed
    expect(text).toMatch(/^artifacts_cost_budget_usd 0$/m);
    const bytesIn = Number(/^artifacts_bytes_in_total (\d+)$/m.exec(text)?.[1]);
    const bytesOut = Number(/^artifacts_bytes_out_total (\d+)$/m.exec(text)?.[1]);
    expect(bytesIn).toBeGreaterThanOrEqual(5);
    expect(bytesOut).toBeGreaterThanOrEqual(5);
  });
});

describe.each(KINDS)("upload limit, metrics token, CORS and audience on %s storage", (kind) => {
  const LIMIT = 2 * MiB;
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer(kind, {
      ARTIFACTS_MAX_BYTES: String(LIMIT),
      ARTIFACTS_METRICS_TOKEN: "test-metrics-token-obviously-fake-000000",
      ARTIFACTS_CORS_ORIGINS: "https://app.example.com",
      ARTIFACTS_AUDIENCE: "https://artifacts.example.com/psa",
    });
  });
  afterAll(async () => {
    await s?.close();
  });

  it("a body over ARTIFACTS_MAX_BYTES is cut with 413 and nothing is stored (Content-Length and chunked)", async () => {
    const grantee = wallet();
    const { operationId: id } = await s.writer.createOperation({ grantee: grantee.address });
    const tooBig = patternBytes(LIMIT + 1, 5);

    const declared = await rawRequest(s.url, "PUT", `/api/v1/operations/${id}/artifacts/declared.bin`, bearer, tooBig);
    expect({ status: declared.status, body: declared.json }).toEqual({
      status: 413,
      body: errorBody("too_large", `artifact is larger than ARTIFACTS_MAX_BYTES (${LIMIT} bytes)`),
    });

    async function* chunked() {
      for (let offset = 0; offset < LIMIT + 3 * MiB; offset += 256 * 1024) yield patternBytes(256 * 1024, offset + 1);
    }
    const streamed = s.writer.upload(id, "chunked.bin", Readable.from(chunked()));
    await expect(streamed).rejects.toBeInstanceOf(TooLargeError);
    await expect(streamed).rejects.toMatchObject({ message: `artifact is larger than ARTIFACTS_MAX_BYTES (${LIMIT} bytes)`, details: { status: 413 } });

    // Exactly at the limit is fine.
    const atLimit = await s.writer.upload(id, "exact.bin", patternBytes(LIMIT, 9));
    expect(atLimit.size).toBe(LIMIT);

    const keys = await storedKeys(s.raw, id);
    // The artifact, its entry (layout 2) and metadata.json: nothing of the refused bodies.
    expect(keys.filter((k) => !k.includes("/entries/"))).toEqual([`operations/${id}/artifacts/exact.bin`, `operations/${id}/metadata.json`]);
    expect(keys.filter((k) => k.includes("/entries/"))).toHaveLength(1);
    const op = await s.store.getOperation(id);
    expect(op.artifactCount).toBe(1);
  });

  it("the metrics listener needs ARTIFACTS_METRICS_TOKEN when set, and serves nothing else", async () => {
    const metrics = new URL(s.metricsUrl).origin;
    const none = await rawRequest(metrics, "GET", "/metrics");
    expect({ status: none.status, body: none.json }).toEqual({
      status: 401,
      body: errorBody("unauthenticated", "missing Authorization: Bearer <metrics token>"),
    });
    expect(none.headers["www-authenticate"]).toBe("Bearer");
    const writer = await rawRequest(metrics, "GET", "/metrics", bearer);
    expect(writer.status).toBe(401);
    const token = { authorization: "Bearer test-metrics-token-obviously-fake-000000" };
    const ok = await rawRequest(metrics, "GET", "/metrics", token);
    expect(ok.status).toBe(200);
    expect(ok.body.toString()).toMatch(/^artifacts_auth_failures_total\{reason="bad_token"\} [1-9]\d*$/m);
    expect((await rawRequest(metrics, "GET", "/health", token)).status).toBe(404);
    expect((await rawRequest(metrics, "POST", "/metrics", token)).status).toBe(405);
    // The API port does not serve it, token or not.
    expect((await rawRequest(s.url, "GET", "/metrics", token)).status).toBe(404);
  });

  it("answers browser preflights for listed origins only and exposes the download headers", async () => {
    const preflight = await rawRequest(s.url, "OPTIONS", "/api/v1/operations/abc/artifacts/x.txt", {
      origin: "https://app.example.com",
      "access-control-request-method": "GET",
      "access-control-request-headers": "authorization, range",
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers["access-control-allow-origin"]).toBe("https://app.example.com");
    expect(preflight.headers["access-control-allow-headers"]).toBe("Authorization, Range, Content-Type, If-None-Match, If-Range");
    expect(preflight.headers["access-control-allow-methods"]).toBe("GET, HEAD, PUT, POST, DELETE");
    expect(preflight.headers.vary).toBe("Origin");

    const foreign = await rawRequest(s.url, "OPTIONS", "/api/v1/operations/abc/artifacts/x.txt", {
      origin: "https://evil.example.com",
      "access-control-request-method": "GET",
    });
    expect(foreign.headers["access-control-allow-origin"]).toBeUndefined();

    const health = await rawRequest(s.url, "GET", "/health", { origin: "https://app.example.com" });
    expect(health.headers["access-control-allow-origin"]).toBe("https://app.example.com");
    expect(health.headers["access-control-expose-headers"]).toBe(
      "Content-Range, Content-Length, Content-Type, Content-Disposition, ETag, Accept-Ranges",
    );
  });

  it("ARTIFACTS_AUDIENCE is the only aud accepted, and its path prefixes the signed uri", async () => {
    const grantee = wallet();
    const { operationId: id } = await s.writer.createOperation({ grantee: grantee.address });
    await s.writer.upload(id, "a.txt", "behind a proxy");
    const target = `/api/v1/operations/${id}/artifacts/a.txt`;
    const { signRequest } = await import("@personal-server/artifacts/client");
    const sign = (audience: string, uri: string) => signRequest(grantee, { audience, method: "GET", uri });

    // What a client of https://artifacts.example.com/psa signs; the proxy strips /psa before us.
    const ok = await rawRequest(s.url, "GET", target, { authorization: await sign("https://artifacts.example.com/psa", `/psa${target}`) });
    expect(ok.status).toBe(200);
    expect(ok.body.toString()).toBe("behind a proxy");

    const refusals: [string, string, Record<string, string>, string][] = [
      ["https://artifacts.example.com/psa", target, {}, "Web3Signed uri does not match the request target"],
      [s.url, target, { host: new URL(s.url).host }, "Web3Signed aud is not this server's audience"],
      ["https://evil.example.com", target, { host: "evil.example.com", "x-forwarded-host": "evil.example.com" }, "Web3Signed aud is not this server's audience"],
      ["https://artifacts.example.com", target, { "x-forwarded-prefix": "/" }, "Web3Signed aud is not this server's audience"],
    ];
    for (const [aud, uri, headers, message] of refusals) {
      const res = await rawRequest(s.url, "GET", target, { ...headers, authorization: await sign(aud, uri) });
      expect({ aud, status: res.status, body: res.json }).toEqual({ aud, status: 401, body: errorBody("unauthenticated", message) });
    }
  });
});
