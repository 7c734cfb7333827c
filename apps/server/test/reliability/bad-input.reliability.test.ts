/**
 * Bad input through the HTTP API (issue 7): invalid ids, paths, grantees, TTLs, headers, Range
 * and JSON bodies, sent byte for byte over a raw socket (so traversal, NUL, raw UTF-8 and
 * percent-encoding reach the server exactly as written). Each answer must be the right 4xx with
 * the API's JSON error and a clear message, and the storage (local directory, or the bucket)
 * must be byte-for-byte unchanged afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ERROR_STATUS } from "@personal-server/artifacts";
import { signRequest, web3SignedAuthorization, bodyHash, newNonce } from "@personal-server/artifacts/client";
import { freshBucket, listMultipartUploads, motoEndpoint } from "../../../../test-support/s3.js";
import {
  diffSnapshots,
  rawExchange,
  rawRequestBytes,
  SecretWatch,
  snapshotBackend,
  snapshotDir,
  startInProcess,
  tempDir,
  wallet,
  watchedSigner,
  WRITER_TOKEN,
  type InProcessServer,
  type RawAnswer,
} from "./harness.js";

const watch = new SecretWatch();
const OP = "rel-bad";
const API = "/api/v1/operations";
const MAX_TTL = 7 * 86_400;
const grantee = watchedSigner(wallet(), watch);
const stranger = watchedSigner(wallet(), watch);
const VALID_GRANTEE = grantee.address;

const MSG = {
  id: "operationId must match ^[a-z0-9][a-z0-9_-]{0,127}$ (lower-case letters, digits, '_' and '-', at most 128)",
  idPercent: "operation id must not contain '%' (percent-encoding is not accepted)",
  pathPercent: "artifact path must not contain '%' (percent-encoding is not accepted)",
  pathSegments: "artifact path must be relative with no empty, '.' or '..' segments",
  pathChars: "artifact path segments may contain only letters, digits, '.', '_' and '-'",
  pathLong: "artifact path is longer than 512 bytes",
  grantee: "grantee must be an EVM address: 0x followed by 40 hex digits",
  ttl: `ttlSeconds must be a whole number from 1 to ${MAX_TTL}`,
  ttlType: "ttlSeconds must be a number of seconds",
  agent: "agent must match ^[a-z0-9][a-z0-9_-]{0,99}$ (it prefixes the operation id)",
  jsonType: "Content-Type must be application/json",
  json: "request body is not valid UTF-8 JSON",
  jsonShape: "body must be a JSON object {grantee, agent?, operationId?, ttlSeconds?}",
  jsonLarge: "JSON body is larger than 16384 bytes",
  contentType: "contentType must be a media type like text/plain; charset=utf-8",
  noBearer: "missing Authorization: Bearer <writer token>",
  wrongBearer: "the bearer token is not the writer token",
  noWeb3: "missing Authorization: Web3Signed <payload>.<signature>",
  web3Shape: "Authorization must be Web3Signed <base64url payload>.<0x-hex 65-byte signature>",
  forbidden: `only the grantee of operation ${OP} may read it`,
};

/** How a case authenticates: as the writer, as the grantee or a stranger (signed for its exact target), or a literal header. */
type Auth = "writer" | "grantee" | "stranger" | "none" | { header: string } | ((server: InProcessServer, target: string, method: string) => Promise<string>);

interface Case {
  name: string;
  method: string;
  target: string;
  auth: Auth;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Literal request bytes instead of method/target/headers/body (request-line attacks). */
  raw?: (server: InProcessServer) => Buffer;
  status: number;
  /** Error code and message of the JSON error body; undefined for answers the HTTP parser gives before our code runs. */
  code?: string;
  message?: string | RegExp;
  /** Extra checks on the answer. */
  check?: (answer: RawAnswer) => void;
  /** Refused by Node's HTTP parser before any route runs (raw NUL/CR/UTF-8 in the target, malformed framing, oversized headers). */
  parser?: true;
}

/** Bytes Node's HTTP parser refuses in a request target: controls, space, DEL and anything non-ASCII. */
const PARSER_REFUSES = /[\u0000-\u0020\u007f-\uffff]/;

const cases: Case[] = [];
const add = (c: Case) => {
  if (c.status === 400 && PARSER_REFUSES.test(c.target)) {
    // Never reaches our routes: Node refuses the request line itself.
    cases.push({ name: c.name, method: c.method, target: c.target, auth: c.auth, body: c.body, status: 400, parser: true });
  } else cases.push(c);
};

/**
 * A signed GET of a bad target: 400 once the signature checks out. A target too long for the
 * signed payload (the server caps it at 4096 characters) is refused as malformed authentication
 * first (401, docs/http-api.md's order), and one that pushes the headers past 16 KiB by Node's parser (431).
 */
function granteeCase(name: string, target: string, message: string): Case {
  if (Buffer.byteLength(target) > 6000) return { name, method: "GET", target, auth: "grantee", status: 431, parser: true };
  if (Buffer.byteLength(target) > 2800) return { name, method: "GET", target, auth: "grantee", status: 401, code: "unauthenticated", message: MSG.web3Shape };
  return { name, method: "GET", target, auth: "grantee", status: 400, code: "invalid_input", message };
}

// ---- operation ids, in the three places they appear ----------------------------------------------
const BAD_IDS: [string, string][] = [
  ["..", MSG.id],
  [".", MSG.id],
  ["%2e%2e", MSG.idPercent],
  ["%2E%2e", MSG.idPercent],
  ["..%2f..", MSG.idPercent],
  ["%2f", MSG.idPercent],
  ["rel%00bad", MSG.idPercent],
  ["%72el-bad", MSG.idPercent], // an encoded "r": still the same id once decoded, refused anyway
  ["Rel-Bad", MSG.id],
  ["REL-BAD", MSG.id],
  ["-rel", MSG.id],
  ["_rel", MSG.id],
  ["a".repeat(129), MSG.id],
  ["a".repeat(5000), MSG.id],
  ["rel.bad", MSG.id],
  ["rel~bad", MSG.id],
  ["rel:bad", MSG.id],
  ["rel;bad", MSG.id],
  ["rel,bad", MSG.id],
  ["rel+bad", MSG.id],
  ["rel@bad", MSG.id],
  ["rel!bad", MSG.id],
  ["rel$bad", MSG.id],
  ["rel'bad", MSG.id],
  ["rel(bad)", MSG.id],
  ["rel*bad", MSG.id],
  ["rel=bad", MSG.id],
  ["rel&bad", MSG.id],
  ["rel\\bad", MSG.id],
  ["r\u0435l-bad", MSG.id], // Cyrillic "е", raw UTF-8
  ["\uff52\uff45\uff4c-bad", MSG.id], // fullwidth "rel"
  ["rel\uff0dbad", MSG.id], // fullwidth hyphen-minus
  ["rel\u2010bad", MSG.id], // Unicode hyphen
  ["rel\u200dbad", MSG.id], // zero-width joiner
  ["rel-ba\u0301d", MSG.id], // combining accent (NFD)
  ["%D1%80el-bad", MSG.idPercent],
  ["\uff0e\uff0e", MSG.id], // fullwidth "..", NFKC-normalises to ".."
];
for (const [id, message] of BAD_IDS) {
  const label = JSON.stringify(id.length > 40 ? `${id.slice(0, 20)}...(${id.length})` : id);
  add({ name: `DELETE id ${label}`, method: "DELETE", target: `${API}/${id}`, auth: "writer", status: 400, code: "invalid_input", message });
  add({ name: `PUT id ${label}`, method: "PUT", target: `${API}/${id}/artifacts/x.txt`, auth: "writer", body: "x", status: 400, code: "invalid_input", message });
  add(granteeCase(`GET list id ${label}`, `${API}/${id}/artifacts`, message));
}
add({ name: "DELETE empty id", method: "DELETE", target: `${API}/`, auth: "writer", status: 400, code: "invalid_input", message: MSG.id });
add({ name: "GET list empty id", method: "GET", target: `${API}//artifacts`, auth: "grantee", status: 400, code: "invalid_input", message: MSG.id });

// ---- artifact paths ----------------------------------------------------------------------------------
const BAD_PATHS: [string, string][] = [
  ["..", MSG.pathSegments],
  [".", MSG.pathSegments],
  ["../x", MSG.pathSegments],
  ["../../../etc/passwd", MSG.pathSegments],
  ["a/../b", MSG.pathSegments],
  ["a/..", MSG.pathSegments],
  ["./a", MSG.pathSegments],
  ["a/./b", MSG.pathSegments],
  ["a//b", MSG.pathSegments],
  ["/abs", MSG.pathSegments],
  ["//etc/passwd", MSG.pathSegments],
  ["a/", MSG.pathSegments],
  ["%2e%2e/x", MSG.pathPercent],
  ["..%2fx", MSG.pathPercent],
  ["%2e%2e%2f%2e%2e%2fmetadata.json", MSG.pathPercent],
  ["a%2fb", MSG.pathPercent],
  ["a%5cb", MSG.pathPercent],
  ["a%00", MSG.pathPercent],
  ["%C3%A9.txt", MSG.pathPercent],
  ["a%", MSG.pathPercent],
  ["a\\b", MSG.pathChars],
  ["..\\..\\x", MSG.pathChars],
  ["C:/x", MSG.pathChars],
  ["~/x", MSG.pathChars],
  ["a:b", MSG.pathChars],
  ["a*b", MSG.pathChars],
  ["a;b", MSG.pathChars],
  ["a\"b", MSG.pathChars],
  ["a<b>", MSG.pathChars],
  ["a|b", MSG.pathChars],
  ["a^b", MSG.pathChars],
  ["a`b", MSG.pathChars],
  ["a$b", MSG.pathChars],
  ["a'b", MSG.pathChars],
  ["r\u00e9sum\u00e9.txt", MSG.pathChars], // raw UTF-8, NFC
  ["re\u0301sume\u0301.txt", MSG.pathChars], // NFD
  ["\u0430.txt", MSG.pathChars], // Cyrillic "а"
  ["a\uff0fb", MSG.pathChars], // fullwidth solidus
  ["\uff0e\uff0e/x", MSG.pathChars], // fullwidth dots
  ["a\u2024b", MSG.pathChars], // one-dot leader
  ["x\u202etxt.exe", MSG.pathChars], // right-to-left override
  ["x\u200b.txt", MSG.pathChars], // zero-width space
  ["\ufb01le.txt", MSG.pathChars], // "ﬁ" ligature, NFKC "fi"
  ["a".repeat(513), MSG.pathLong],
  [`${"abcdefgh/".repeat(57)}x`, MSG.pathLong],
  ["a".repeat(8000), MSG.pathLong],
];
for (const [path, message] of BAD_PATHS) {
  const label = JSON.stringify(path.length > 40 ? `${path.slice(0, 20)}...(${path.length})` : path);
  add({ name: `PUT path ${label}`, method: "PUT", target: `${API}/${OP}/artifacts/${path}`, auth: "writer", body: "x", status: 400, code: "invalid_input", message });
  add(granteeCase(`GET path ${label}`, `${API}/${OP}/artifacts/${path}`, message));
}

// ---- request lines the HTTP parser refuses before any of our code runs --------------------------------
const RAW_LINES: [string, string][] = [
  ["NUL in the path", `PUT ${API}/${OP}/artifacts/a\u0000b HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${WRITER_TOKEN}\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx`],
  ["space in the path", `PUT ${API}/${OP}/artifacts/a b HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${WRITER_TOKEN}\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx`],
  ["tab in the path", `GET ${API}/${OP}/artifacts/a\tb HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`],
  ["CR in the path", `GET ${API}/${OP}/artifacts/a\rb HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`],
  ["unknown method", `FROB ${API}/${OP}/artifacts/x.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`],
  ["no Host header", `GET /health HTTP/1.1\r\nConnection: close\r\n\r\n`],
  ["Content-Length not a number", `PUT ${API}/${OP}/artifacts/x.txt HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${WRITER_TOKEN}\r\nContent-Length: abc\r\nConnection: close\r\n\r\nx`],
  ["negative Content-Length", `PUT ${API}/${OP}/artifacts/x.txt HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${WRITER_TOKEN}\r\nContent-Length: -1\r\nConnection: close\r\n\r\nx`],
  ["two Content-Lengths", `PUT ${API}/${OP}/artifacts/x.txt HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${WRITER_TOKEN}\r\nContent-Length: 1\r\nContent-Length: 2\r\nConnection: close\r\n\r\nxy`],
  ["Content-Length and chunked (smuggling)", `PUT ${API}/${OP}/artifacts/x.txt HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${WRITER_TOKEN}\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n1\r\nx\r\n0\r\n\r\n`],
  ["header with NUL", `GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\u0000b\r\nConnection: close\r\n\r\n`],
  ["HTTP/2 preface on HTTP/1", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"],
];
for (const [name, text] of RAW_LINES) {
  add({ name: `parser: ${name}`, method: "", target: "", auth: "none", raw: () => Buffer.from(text, "latin1"), status: 400, parser: true });
}
add({
  name: "parser: request line over 16 KiB",
  method: "",
  target: "",
  auth: "none",
  raw: () => Buffer.from(`GET ${API}/${OP}/artifacts/${"a/".repeat(10_000)}x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, "latin1"),
  status: 431,
  parser: true,
});
add({
  name: "absolute-form target for another host",
  method: "",
  target: "",
  auth: "none",
  raw: () => Buffer.from(`GET http://evil.example${API}/${OP}/artifacts HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n`, "latin1"),
  status: 404,
  code: "not_found",
  message: /^no route for GET http:\/\/evil\.example/,
});
add({ name: "asterisk-form target", method: "OPTIONS", target: "*", auth: "none", status: 404, code: "not_found", message: "no route for OPTIONS *" });

// ---- POST /api/v1/operations: grantee, TTL, agent, id, fields -------------------------------------
const post = (name: string, body: string | Buffer, status: number, code: string, message: string | RegExp, headers: Record<string, string> = { "content-type": "application/json" }) =>
  add({ name: `POST ${name}`, method: "POST", target: API, auth: "writer", headers, body, status, code, message });
const json = (o: unknown) => JSON.stringify(o);

const BAD_GRANTEES: unknown[] = [
  undefined,
  "",
  "0x",
  `0x${"a".repeat(39)}`,
  `0x${"a".repeat(41)}`,
  `0x${"a".repeat(40)}00`,
  "a".repeat(42),
  `00${"a".repeat(40)}`,
  `0X${"a".repeat(40)}`,
  `0x${"g".repeat(40)}`,
  ` 0x${"a".repeat(40)}`,
  `0x${"a".repeat(40)} `,
  `0x${"a".repeat(40)}\n`,
  `0x${"\u0660".repeat(40)}`, // Arabic-Indic zeros
  `\uff10\uff58${"\uff41".repeat(40)}`, // fullwidth 0xaaaa...
  `0x${"a".repeat(20)}\u200b${"a".repeat(20)}`,
  `0x${"\u0430".repeat(40)}`, // Cyrillic "а"
  "vitalik.eth",
  123,
  null,
  true,
  [VALID_GRANTEE],
  { address: VALID_GRANTEE },
];
for (const g of BAD_GRANTEES) {
  post(`grantee ${g === undefined ? "missing" : JSON.stringify(g)}`, json(g === undefined ? { agent: "x" } : { grantee: g }), 400, "invalid_input", MSG.grantee);
}
for (const ttl of [0, -1, -0, 1.5, MAX_TTL + 1, 2 ** 53, 1e21]) {
  post(`ttlSeconds ${ttl}`, json({ grantee: VALID_GRANTEE, ttlSeconds: ttl }), 400, "invalid_input", MSG.ttl);
}
post("ttlSeconds 1e999 (Infinity)", `{"grantee":"${VALID_GRANTEE}","ttlSeconds":1e999}`, 400, "invalid_input", MSG.ttl);
for (const ttl of ["60", null, true, [], {}, "7d"]) {
  post(`ttlSeconds ${JSON.stringify(ttl)}`, json({ grantee: VALID_GRANTEE, ttlSeconds: ttl }), 400, "invalid_input", MSG.ttlType);
}
for (const agent of ["", "Gemini", "a/b", "..", "a".repeat(101), "\u00e1gent", "agent\n", "-x", "a b"]) {
  post(`agent ${JSON.stringify(agent.length > 30 ? `${agent.slice(0, 10)}...` : agent)}`, json({ grantee: VALID_GRANTEE, agent }), 400, "invalid_input", MSG.agent);
}
post("agent 5", json({ grantee: VALID_GRANTEE, agent: 5 }), 400, "invalid_input", "agent must be a string");
for (const id of ["../x", "%2e%2e", "A", "a".repeat(129), "", "op/1", "op\u0000", "\uff0e\uff0e"]) {
  post(`operationId ${JSON.stringify(id.length > 30 ? `${id.slice(0, 10)}...` : id)}`, json({ grantee: VALID_GRANTEE, operationId: id }), 400, "invalid_input", MSG.id);
}
post("operationId 5", json({ grantee: VALID_GRANTEE, operationId: 5 }), 400, "invalid_input", "operationId must be a string");
post("operationId that exists", json({ grantee: VALID_GRANTEE, operationId: OP }), 409, "conflict", `operation ${OP} already exists`);
post("unknown field", json({ grantee: VALID_GRANTEE, admin: true }), 400, "invalid_input", "unknown field(s): admin");
post("__proto__ field", `{"grantee":"${VALID_GRANTEE}","__proto__":{"admin":true}}`, 400, "invalid_input", "unknown field(s): __proto__");
post("constructor field", json({ grantee: VALID_GRANTEE, constructor: "x" }), 400, "invalid_input", "unknown field(s): constructor");
post("duplicate key, last one bad", `{"grantee":"${VALID_GRANTEE}","grantee":"nobody"}`, 400, "invalid_input", MSG.grantee);

// ---- JSON bodies and their content type ----------------------------------------------------------------
for (const [name, body] of [
  ["empty body", ""],
  ["truncated object", "{"],
  ["trailing garbage", `{"grantee":"${VALID_GRANTEE}"} x`],
  ["single quotes", `{'grantee':'${VALID_GRANTEE}'}`],
  ["comment", `{"grantee":"${VALID_GRANTEE}"/* hi */}`],
  ["NaN", `{"grantee":"${VALID_GRANTEE}","ttlSeconds":NaN}`],
] as const) {
  post(name, body, 400, "invalid_input", MSG.json);
}
post("invalid UTF-8", Buffer.concat([Buffer.from(`{"grantee":"${VALID_GRANTEE}","agent":"`), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]), 400, "invalid_input", MSG.json);
post("UTF-16 body", Buffer.from(`{"grantee":"${VALID_GRANTEE}"}`, "utf16le"), 400, "invalid_input", MSG.json);
post("8000-deep nested array", "[".repeat(8000) + "]".repeat(8000), 400, "invalid_input", MSG.jsonShape);
for (const body of ["null", "[]", '"x"', "42", "true", `[{"grantee":"${VALID_GRANTEE}"}]`]) {
  post(`body ${body.slice(0, 20)}`, body, 400, "invalid_input", MSG.jsonShape);
}
post("16 KiB + 1 with Content-Length", json({ grantee: VALID_GRANTEE, agent: "a".repeat(16_384) }), 413, "too_large", MSG.jsonLarge);
post("1 MiB declared", "x".repeat(1024 * 1024), 413, "too_large", MSG.jsonLarge);
add({
  name: "POST 100 KiB chunked",
  method: "",
  target: "",
  auth: "none",
  raw: () => {
    const piece = "x".repeat(10_000);
    const chunks = Array.from({ length: 10 }, () => `${piece.length.toString(16)}\r\n${piece}\r\n`).join("");
    return Buffer.from(
      `POST ${API} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${WRITER_TOKEN}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunks}0\r\n\r\n`,
      "latin1",
    );
  },
  status: 413,
  code: "too_large",
  message: MSG.jsonLarge,
});
for (const ct of [undefined, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonx", "application/json-seq", "json", "application/ld+json", "text/json"]) {
  post(`content type ${ct ?? "missing"}`, json({ grantee: VALID_GRANTEE }), 400, "invalid_input", MSG.jsonType, ct === undefined ? {} : { "content-type": ct });
}

// ---- authentication headers --------------------------------------------------------------------------
const writerRoutes: [string, string, string | undefined][] = [
  ["POST", API, json({ grantee: VALID_GRANTEE })],
  ["PUT", `${API}/${OP}/artifacts/new.txt`, "x"],
  ["DELETE", `${API}/${OP}`, undefined],
];
for (const [method, target, body] of writerRoutes) {
  const h = { "content-type": "application/json" };
  add({ name: `${method} without Authorization`, method, target, auth: "none", headers: h, body, status: 401, code: "unauthenticated", message: MSG.noBearer });
  add({ name: `${method} wrong token`, method, target, auth: { header: "Bearer not-the-writer-token-but-long-enough-000" }, headers: h, body, status: 401, code: "unauthenticated", message: MSG.wrongBearer });
  add({ name: `${method} token with a suffix`, method, target, auth: { header: `Bearer ${WRITER_TOKEN}x` }, headers: h, body, status: 401, code: "unauthenticated", message: MSG.wrongBearer });
  add({ name: `${method} token prefix`, method, target, auth: { header: `Bearer ${WRITER_TOKEN.slice(0, -1)}` }, headers: h, body, status: 401, code: "unauthenticated", message: MSG.wrongBearer });
  add({ name: `${method} token in another case`, method, target, auth: { header: `Bearer ${WRITER_TOKEN.toUpperCase()}` }, headers: h, body, status: 401, code: "unauthenticated", message: MSG.wrongBearer });
  add({ name: `${method} Basic scheme`, method, target, auth: { header: `Basic ${Buffer.from(`writer:${WRITER_TOKEN}`).toString("base64")}` }, headers: h, body, status: 401, code: "unauthenticated", message: MSG.noBearer });
  add({ name: `${method} two spaces`, method, target, auth: { header: `Bearer  ${WRITER_TOKEN}` }, headers: h, body, status: 401, code: "unauthenticated", message: MSG.noBearer });
  add({ name: `${method} 8 KiB token`, method, target, auth: { header: `Bearer ${"t".repeat(8192)}` }, headers: h, body, status: 401, code: "unauthenticated", message: MSG.wrongBearer });
  add({ name: `${method} a grantee signature instead`, method, target, auth: "grantee", headers: h, body, status: 401, code: "unauthenticated", message: MSG.noBearer });
}

const LIST = `${API}/${OP}/artifacts`;
const FILE = `${API}/${OP}/artifacts/ok.txt`;
type Payload = Record<string, unknown>;
/** Signs a payload built from a valid one with `edit` applied. */
const signedWith = (edit: (p: Payload, server: InProcessServer) => void, signer = grantee) =>
  async (server: InProcessServer, target: string, method: string) => {
    const now = Math.floor(Date.now() / 1000);
    const payload: Payload = { aud: server.url, method, uri: target, bodyHash: bodyHash(""), iat: now, exp: now + 60, nonce: newNonce() };
    edit(payload, server);
    const header = await web3SignedAuthorization(signer, payload);
    watch.web3Signature(header);
    return header;
  };
const web3: [string, Auth, string | RegExp, number?][] = [
  ["no Authorization", "none", MSG.noWeb3],
  ["the writer token", { header: `Bearer ${WRITER_TOKEN}` }, MSG.web3Shape],
  ["garbage", { header: "Web3Signed garbage" }, MSG.web3Shape],
  ["payload only", { header: `Web3Signed ${Buffer.from("{}").toString("base64url")}` }, MSG.web3Shape],
  ["short signature", { header: `Web3Signed ${Buffer.from("{}").toString("base64url")}.0x1234` }, MSG.web3Shape],
  ["padded base64", signedWith(() => {}), MSG.web3Shape],
  ["other audience (port)", signedWith((p) => (p.aud = "http://127.0.0.1:1")), "Web3Signed aud is not this server's audience"],
  ["audience with a trailing slash", signedWith((p, s) => (p.aud = `${s.url}/`)), "Web3Signed aud is not this server's audience"],
  ["https audience", signedWith((p, s) => (p.aud = s.url.replace("http:", "https:"))), "Web3Signed aud is not this server's audience"],
  ["other method", signedWith((p) => (p.method = "DELETE")), "Web3Signed method does not match the request method"],
  ["lower-case method", signedWith((p) => (p.method = "get")), "Web3Signed method does not match the request method"],
  ["other uri", signedWith((p) => (p.uri = `${API}/${OP}/artifacts/other.txt`)), "Web3Signed uri does not match the request target"],
  ["uri percent-encoded differently", signedWith((p) => (p.uri = String(p.uri).replace("/artifacts", "/%61rtifacts"))), "Web3Signed uri does not match the request target"],
  ["uri with a query added", signedWith((p) => (p.uri = `${String(p.uri)}?x=1`)), "Web3Signed uri does not match the request target"],
  ["bodyHash of another body", signedWith((p) => (p.bodyHash = bodyHash("x"))), "Web3Signed bodyHash does not match the request body"],
  ["bodyHash upper case", signedWith((p) => (p.bodyHash = String(p.bodyHash).toUpperCase())), "Web3Signed bodyHash must be sha256:<64 lower-case hex>"],
  ["expired", signedWith((p) => ((p.iat = Number(p.iat) - 400), (p.exp = Number(p.iat) + 100))), "Web3Signed payload has expired"],
  ["iat in the future", signedWith((p) => ((p.iat = Number(p.iat) + 3600), (p.exp = Number(p.iat) + 60))), "Web3Signed iat is in the future"],
  ["lifetime over 300 s", signedWith((p) => (p.exp = Number(p.iat) + 301)), "Web3Signed exp - iat must be between 1 and 300 seconds"],
  ["exp before iat", signedWith((p) => (p.exp = Number(p.iat) - 1)), "Web3Signed exp - iat must be between 1 and 300 seconds"],
  ["iat as a string", signedWith((p) => (p.iat = String(p.iat))), "Web3Signed iat and exp must be integers (unix seconds)"],
  ["short nonce", signedWith((p) => (p.nonce = "abc")), "Web3Signed nonce must be at least 16 random bytes, base64url"],
  ["extra field", signedWith((p) => (p.grantee = VALID_GRANTEE)), "Web3Signed payload must have exactly the fields aud, bodyHash, exp, iat, method, nonce, uri"],
  ["missing field", signedWith((p) => delete p.nonce), "Web3Signed payload must have exactly the fields aud, bodyHash, exp, iat, method, nonce, uri"],
  ["signed by a stranger", "stranger", MSG.forbidden, 403],
];
for (const [name, auth, message, status] of web3) {
  for (const [method, target] of [["GET", LIST], ["GET", FILE], ["HEAD", FILE]] as const) {
    if (method === "HEAD" && !["signed by a stranger", "no Authorization", "other method"].includes(name)) continue;
    const code = status === 403 ? "forbidden" : "unauthenticated";
    // HEAD answers carry no body: only the status can be checked.
    add({
      name: `${method} ${target === LIST ? "list" : "file"}: Web3Signed ${name}`,
      method,
      target,
      auth: name === "padded base64" ? paddedAuth : auth,
      status: status ?? 401,
      ...(method === "HEAD" ? {} : { code, message }),
    });
  }
}
/** A valid signature whose payload is standard base64 with padding instead of base64url. */
async function paddedAuth(server: InProcessServer, target: string, method: string): Promise<string> {
  const header = await signRequest(grantee, { audience: server.url, method, uri: target });
  const [payload, sig] = header.slice("Web3Signed ".length).split(".");
  return `Web3Signed ${Buffer.from(payload!, "base64url").toString("base64")}.${sig}`;
}
add({
  name: "GET file: a replayed signature",
  method: "GET",
  target: FILE,
  auth: async (server, target, method) => {
    const header = await signRequest(grantee, { audience: server.url, method, uri: target });
    watch.web3Signature(header);
    const first = await rawExchange(server.url, rawRequestBytes(method, target, { authorization: header }));
    expect(first.status).toBe(200);
    return header;
  },
  status: 401,
  code: "unauthenticated",
  message: "Web3Signed nonce was already used",
});

// ---- upload headers ------------------------------------------------------------------------------------
for (const ct of ["text", "text/", "/plain", "text/plain; charset=\"x", "text/plain;", `${"a".repeat(200)}/${"b".repeat(100)}`, "text/plain; charset=utf-8; x", "t\u00e9xt/plain", "text /plain", "text/plain, text/html"]) {
  add({ name: `PUT content type ${JSON.stringify(ct.length > 30 ? `${ct.slice(0, 20)}...` : ct)}`, method: "PUT", target: `${API}/${OP}/artifacts/typed.txt`, auth: "writer", headers: { "content-type": ct }, body: "x", status: 400, code: "invalid_input", message: MSG.contentType });
}
add({ name: "PUT Content-Length over ARTIFACTS_MAX_BYTES", method: "PUT", target: `${API}/${OP}/artifacts/huge.bin`, auth: "writer", headers: { "content-length": String(6 * 1024 ** 3) }, status: 413, code: "too_large", message: "artifact is larger than ARTIFACTS_MAX_BYTES (5368709120 bytes)" });
add({ name: "PUT to a path that exists", method: "PUT", target: `${API}/${OP}/artifacts/ok.txt`, auth: "writer", body: "again", status: 409, code: "conflict", message: `artifact ok.txt already exists in operation ${OP}; artifacts are immutable` });
add({ name: "PUT to an operation that does not exist", method: "PUT", target: `${API}/nope/artifacts/x.txt`, auth: "writer", body: "x", status: 404, code: "not_found", message: "operation nope not found" });
add({ name: "DELETE an operation that does not exist", method: "DELETE", target: `${API}/nope`, auth: "writer", status: 404, code: "not_found", message: "operation nope not found" });
add({ name: "GET a path that does not exist", method: "GET", target: `${API}/${OP}/artifacts/missing.txt`, auth: "grantee", status: 404, code: "not_found", message: `artifact missing.txt not found in operation ${OP}` });
add({ name: "GET metadata.json as an artifact", method: "GET", target: `${API}/${OP}/artifacts/metadata.json`, auth: "grantee", status: 404, code: "not_found", message: `artifact metadata.json not found in operation ${OP}` });
add({ name: "GET the .master-key by traversal", method: "GET", target: `${API}/${OP}/artifacts/../../../.master-key`, auth: "grantee", status: 400, code: "invalid_input", message: MSG.pathSegments });

// ---- Range --------------------------------------------------------------------------------------------
const rangeCase = (name: string, target: string, range: string, size: number) =>
  add({
    name: `Range ${name}`,
    method: "GET",
    target,
    auth: "grantee",
    headers: { range },
    status: 416,
    code: "range_not_satisfiable",
    message: /^(requested range is not satisfiable|range starts beyond the end)/,
    check: (a) => expect(a.headers["content-range"]).toBe(`bytes */${size}`),
  });
rangeCase("start at the size", FILE, "bytes=5-", 5);
rangeCase("start past the end", FILE, "bytes=10-20", 5);
rangeCase("zero-length suffix", FILE, "bytes=-0", 5);
rangeCase("on an empty artifact", `${API}/${OP}/artifacts/empty.bin`, "bytes=0-", 0);
rangeCase("suffix on an empty artifact", `${API}/${OP}/artifacts/empty.bin`, "bytes=-1", 0);
/** Ranges docs/http-api.md says to ignore: the whole artifact, 200. */
for (const range of ["bytes=3-1", "bytes=abc", "bytes=0-1,2-3", "items=0-1", "bytes=99999999999999999-", "bytes=--1", "bytes=1-2-3", "bytes=0x1-2", "bytes=\u0661-2"]) {
  add({
    name: `Range ignored: ${JSON.stringify(range)}`,
    method: "GET",
    target: FILE,
    auth: "grantee",
    headers: { range },
    status: 200,
    check: (a) => {
      expect(a.body.toString()).toBe("hello");
      expect(a.headers["content-range"]).toBeUndefined();
    },
  });
}

// ---- methods and routes --------------------------------------------------------------------------------
for (const [method, target, allow] of [
  ["PATCH", FILE, "GET, HEAD, PUT"],
  ["POST", FILE, "GET, HEAD, PUT"],
  ["DELETE", FILE, "GET, HEAD, PUT"],
  ["TRACE", FILE, "GET, HEAD, PUT"],
  ["GET", API, "POST"],
  ["PUT", API, "POST"],
  ["DELETE", LIST, "GET"],
  ["GET", `${API}/${OP}`, "DELETE"],
  ["PUT", "/health", "GET, HEAD"],
] as const) {
  add({
    name: `${method} ${target.replace(API, "API")}`,
    method,
    target,
    auth: "writer",
    body: method === "PUT" || method === "POST" ? "x" : undefined,
    status: 405,
    code: "method_not_allowed",
    message: `${method} is not allowed here; allowed: ${allow}`,
    check: (a) => expect(a.headers.allow).toBe(allow),
  });
}
for (const target of ["/api/v1/operation", "/api/v2/operations", `${API}/${OP}/artifact/x`, "/API/V1/OPERATIONS", "/health/", `${API}/${OP}/artifacts-x`, "/", "/.env", "/../.master-key"]) {
  add({ name: `GET ${target}`, method: "GET", target, auth: "writer", status: 404, code: "not_found", message: `no route for GET ${target}` });
}

// ---- the runner -------------------------------------------------------------------------------------------

async function authHeader(server: InProcessServer, c: Case): Promise<string | undefined> {
  if (c.auth === "none") return undefined;
  if (c.auth === "writer") return `Bearer ${WRITER_TOKEN}`;
  if (c.auth === "grantee" || c.auth === "stranger") {
    const header = await signRequest(c.auth === "grantee" ? grantee : stranger, { audience: server.url, method: c.method, uri: c.target });
    watch.web3Signature(header);
    return header;
  }
  if (typeof c.auth === "function") return c.auth(server, c.target, c.method);
  return c.auth.header;
}

async function runTable(server: InProcessServer, snapshot: () => Promise<Map<string, string>>): Promise<string[]> {
  const problems: string[] = [];
  let before = await snapshot();
  for (const c of cases) {
    let answer: RawAnswer;
    try {
      answer = await send(server, c);
    } catch (error) {
      problems.push(`${c.name}: no answer (${(error as Error).message})`);
      continue;
    }
    const err = (answer.json as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
    const fail = (what: string) => problems.push(`${c.name}: ${what} (got ${answer.status} ${answer.body.toString("utf8").slice(0, 200)})`);
    if (answer.status !== c.status) fail(`expected HTTP ${c.status}`);
    else if (c.code !== undefined) {
      const keys = Object.keys((answer.json as object | undefined) ?? {});
      if (err === undefined || keys.join() !== "error" || Object.keys(err).sort().join() !== "code,message") fail("the body is not {error: {code, message}}");
      else if (err.code !== c.code) fail(`expected code ${c.code}`);
      else if (ERROR_STATUS[c.code as keyof typeof ERROR_STATUS] !== answer.status) fail(`status does not match the code`);
      else if (typeof c.message === "string" ? err.message !== c.message : !c.message!.test(String(err.message))) fail(`expected message ${String(c.message)}`);
      else if (!/^application\/json/.test(answer.headers["content-type"] ?? "")) fail("error without a JSON content type");
      else if (String(err.message).length > 300) fail("message longer than 300 characters (echoes input?)");
    }
    try {
      c.check?.(answer);
    } catch (error) {
      fail((error as Error).message);
    }
    const after = await snapshot();
    const diff = diffSnapshots(before, after);
    if (diff !== "") problems.push(`${c.name}: storage changed:\n${diff}`);
    before = after;
  }
  return problems;
}

/** Sends one case and returns the answer (for the parser-format test). */
async function send(server: InProcessServer, c: Case): Promise<RawAnswer> {
  const auth = await authHeader(server, c);
  const bytes = c.raw
    ? c.raw(server)
    : rawRequestBytes(c.method, c.target, { ...(auth === undefined ? {} : { authorization: auth }), ...c.headers }, c.body);
  const answer = await rawExchange(server.url, bytes);
  watch.see(`answer to ${c.name}`, Buffer.concat([Buffer.from(answer.head, "latin1"), answer.body]));
  return answer;
}

async function seed(server: InProcessServer): Promise<void> {
  const post = await rawExchange(
    server.url,
    rawRequestBytes("POST", API, { authorization: `Bearer ${WRITER_TOKEN}`, "content-type": "application/json" }, json({ grantee: VALID_GRANTEE, operationId: OP })),
  );
  expect(post.status).toBe(201);
  for (const [path, body] of [["ok.txt", "hello"], ["empty.bin", ""]] as const) {
    const put = await rawExchange(server.url, rawRequestBytes("PUT", `${API}/${OP}/artifacts/${path}`, { authorization: `Bearer ${WRITER_TOKEN}` }, body));
    expect(put.status).toBe(201);
  }
}

let local: InProcessServer;
let s3: InProcessServer;
let s3Bucket: string;
let dir: string;

beforeAll(async () => {
  dir = tempDir("bad-input");
  local = await startInProcess({ ARTIFACTS_LOCAL_DIR: dir }, watch);
  const bucket = await freshBucket(motoEndpoint(), "rel-bad-input");
  s3Bucket = bucket.bucket;
  watch.secret("S3 secret access key", bucket.env.S3_SECRET_ACCESS_KEY);
  s3 = await startInProcess({ ...bucket.env, ARTIFACTS_S3_TIMEOUT_MS: "10000" }, watch);
  await Promise.all([seed(local), seed(s3)]);
});

afterAll(async () => {
  await Promise.all([local?.close(), s3?.close()]);
  console.log(`[bad-input] secret watch: ${watch.textCount} texts checked for ${watch.secretCount} secrets`);
  expect(watch.leaks()).toEqual([]);
});

describe("bad input through the HTTP API", () => {
  it(`local storage: ${cases.length} bad inputs, each the right 4xx with a clear message, the directory unchanged`, async () => {
    const problems = await runTable(local, async () => snapshotDir(dir));
    console.log(`[bad-input] local: ${cases.length} bad inputs tried, ${problems.length} problems`);
    expect(problems).toEqual([]);
  });

  it("requests Node's HTTP parser refuses still get the API's JSON error with a clear message", async () => {
    // docs/http-api.md: errors are {"error": {"code", "message"}}. Fastify's default client-error answer
    // is {"error":"Bad Request","message":"Client Error","statusCode":400}: right status, wrong shape,
    // no hint of what was wrong. (Storage stays untouched either way: see the tests above.)
    const parserCases = cases.filter((c) => c.parser);
    const problems: string[] = [];
    for (const c of parserCases) {
      const answer = await send(local, c);
      const err = (answer.json as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
      const ok =
        typeof err === "object" &&
        typeof err.code === "string" &&
        typeof err.message === "string" &&
        err.message.length > 0 &&
        err.message !== "Client Error" &&
        (answer.status !== 400 || err.code === "invalid_input");
      if (!ok) problems.push(`${c.name}: HTTP ${answer.status} ${answer.body.toString("utf8").slice(0, 120)}`);
    }
    console.log(`[bad-input] ${parserCases.length} requests refused by the HTTP parser, ${problems.length} without the API's error body`);
    expect(problems).toEqual([]);
  });

  it(`S3 storage: the same ${cases.length} bad inputs, the bucket unchanged`, async () => {
    const problems = await runTable(s3, async () => {
      const objects = await snapshotBackend(s3.raw);
      for (const id of await listMultipartUploads(motoEndpoint(), s3Bucket)) objects.set(`multipart:${id}`, "open");
      return objects;
    });
    console.log(`[bad-input] s3: ${cases.length} bad inputs tried, ${problems.length} problems`);
    expect(problems).toEqual([]);
  });
});
