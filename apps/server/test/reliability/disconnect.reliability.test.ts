/**
 * Disconnect harness (issue 19, item 1): nothing a client does with its connection may end the
 * server process. Uploads and downloads are cut at each stage (inside the headers, mid-body, after
 * the body before the answer, during the answer), with broken chunk framing and lying lengths,
 * against a missing, an expired, a live and a full operation (its path taken), on local storage
 * and on S3 (moto), with the server as a child process. After each case the server answers
 * /health; at the end nothing partial is stored or listed: every listed artifact reads back whole
 * and exact, and storage holds no object (or file) that no listing names.
 */
import { connect, type Socket } from "node:net";
import { readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { openBackend } from "@personal-server/artifacts/internal";
import { createGranteeClient, createWriterClient, signRequest } from "@personal-server/artifacts/client";
import { afterAll, describe, expect, it } from "vitest";
import { freshBucket } from "../../../../test-support/s3.js";
import { collect, localEnv, MASTER_KEY, patternBytes, SecretWatch, spawnServer, tempDir, wallet, watchedSigner, WRITER_TOKEN, type ChildServer } from "./harness.js";

const watch = new SecretWatch();
const MAX_BYTES = 2 * 1024 * 1024;
const servers: ChildServer[] = [];
const BACKEND_OPTIONS = { timeoutMs: 20_000, connectTimeoutMs: 5000 };

afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  expect(watch.leaks()).toEqual([]);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A raw connection whose bytes the case writes and cuts; resolves what arrived before the cut. */
interface Conn {
  write(bytes: string | Buffer): Promise<void>;
  /** Resolves once at least `n` bytes of answer arrived (or the server closed). */
  received(n: number): Promise<void>;
  cut(): void;
  /** Half-close: no more request bytes, keep reading. */
  end(): void;
  answer(): Buffer;
  closed: Promise<void>;
}

function open(port: number): Conn {
  const socket: Socket = connect(port, "127.0.0.1");
  socket.on("error", () => {});
  const chunks: Buffer[] = [];
  let size = 0;
  const waiters: { n: number; wake: () => void }[] = [];
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  const wakeAll = (all: boolean) => {
    for (const w of waiters.splice(0)) {
      if (all || size >= w.n) w.wake();
      else waiters.push(w);
    }
  };
  socket.on("data", (d: Buffer) => {
    chunks.push(d);
    size += d.length;
    wakeAll(false);
  });
  void closed.then(() => wakeAll(true));
  return {
    write: (bytes) => new Promise((resolve) => (socket.destroyed ? resolve() : socket.write(bytes, () => resolve()))),
    received: (n) =>
      size >= n || socket.destroyed ? Promise.resolve() : Promise.race([new Promise<void>((wake) => waiters.push({ n, wake })), sleep(10_000)]),
    cut: () => socket.destroy(),
    end: () => socket.end(),
    answer: () => Buffer.concat(chunks),
    closed,
  };
}

const head = (method: string, target: string, headers: Record<string, string>) =>
  `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join("")}\r\n`;
const writerHeaders = (extra: Record<string, string>) => ({ Authorization: `Bearer ${WRITER_TOKEN}`, "Content-Type": "application/octet-stream", ...extra });

/** An upload cut: given the connection, the target and the body it would carry. */
type UploadCut = (c: Conn, target: string, body: Buffer) => Promise<void>;

const UPLOAD_CUTS: Record<string, UploadCut> = {
  "inside the headers": async (c, target) => {
    await c.write(head("PUT", target, writerHeaders({ "Content-Length": "100" })).slice(0, -30));
    await sleep(50);
  },
  "mid-body (Content-Length)": async (c, target, body) => {
    await c.write(head("PUT", target, writerHeaders({ "Content-Length": String(body.length) })));
    await c.write(body.subarray(0, body.length >> 1));
    await sleep(100);
  },
  "mid-body (chunked)": async (c, target, body) => {
    await c.write(head("PUT", target, writerHeaders({ "Transfer-Encoding": "chunked" })));
    await c.write(`${(body.length >> 1).toString(16)}\r\n`);
    await c.write(body.subarray(0, body.length >> 1));
    await c.write("\r\n");
    await sleep(100);
  },
  "a bad Content-Type, mid-body": async (c, target, body) => {
    await c.write(head("PUT", target, writerHeaders({ "Content-Type": "not a media type", "Content-Length": String(body.length) })));
    await c.write(body.subarray(0, body.length >> 1));
    await sleep(100);
  },
  "after the body, before the answer": async (c, target, body) => {
    await c.write(head("PUT", target, writerHeaders({ "Content-Length": String(body.length) })));
    await c.write(body);
  },
  "during the answer": async (c, target, body) => {
    await c.write(head("PUT", target, writerHeaders({ "Content-Length": String(body.length) })));
    await c.write(body);
    await c.received(1);
  },
  "an invalid chunk size": async (c, target) => {
    await c.write(head("PUT", target, writerHeaders({ "Transfer-Encoding": "chunked" })));
    await c.write("5\r\nhello\r\nZZZ\r\n");
    await sleep(100);
  },
  "a chunk longer than its size": async (c, target) => {
    await c.write(head("PUT", target, writerHeaders({ "Transfer-Encoding": "chunked" })));
    await c.write("3\r\nhello\r\n0\r\n\r\n");
    await sleep(100);
  },
  "a Content-Length longer than the body, then a half-close": async (c, target, body) => {
    await c.write(head("PUT", target, writerHeaders({ "Content-Length": String(body.length + 1000) })));
    await c.write(body);
    c.end();
    await Promise.race([c.closed, sleep(300)]);
  },
  "a Content-Length shorter than the body": async (c, target, body) => {
    await c.write(head("PUT", target, writerHeaders({ "Content-Length": "5" })));
    await c.write(body);
    await c.received(1);
    await sleep(50);
  },
  "Content-Length and chunked together": async (c, target, body) => {
    await c.write(head("PUT", target, writerHeaders({ "Content-Length": "10", "Transfer-Encoding": "chunked" })));
    await c.write(body.subarray(0, 100));
    await sleep(50);
  },
  "over ARTIFACTS_MAX_BYTES chunked, cut": async (c, target) => {
    await c.write(head("PUT", target, writerHeaders({ "Transfer-Encoding": "chunked" })));
    const piece = patternBytes(64 * 1024, 9);
    for (let i = 0; i < 33; i++) await c.write(Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from("\r\n")]));
    await sleep(50);
  },
};

type Backend = "local" | "moto";

async function operationKeys(raw: { list(prefix: string): AsyncIterable<{ key: string }> }): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of raw.list("operations/")) keys.push(o.key);
  return keys;
}

async function startOn(kind: Backend): Promise<{ server: ChildServer; listObjects(): Promise<string[]>; strayFiles(): string[] }> {
  const dir = tempDir(`disconnect-${kind}`);
  if (kind === "local") {
    const server = await spawnServer(localEnv(dir, { ARTIFACTS_MAX_BYTES: String(MAX_BYTES) }), watch, `server ${kind}`);
    servers.push(server);
    const raw = await openBackend({ kind: "local", dir }, BACKEND_OPTIONS);
    return {
      server,
      listObjects: () => operationKeys(raw),
      // Anything in the data directory beside the operations' objects and the server's own files.
      strayFiles: () => {
        const out: string[] = [];
        const walk = (d: string): void => {
          for (const name of readdirSync(d)) {
            const p = join(d, name);
            if (statSync(p).isDirectory()) walk(p);
            else out.push(relative(dir, p));
          }
        };
        walk(dir);
        // Layout 2 keeps each committed artifact's entry beside them (and maybe an index.json).
        return out.filter(
          (p) => !/^(operations\/[^/]+\/(metadata\.json|index\.json|artifacts\/.+|entries\/[0-9a-f]{32}\/\d{13}-[0-9a-f]{32}\.json)|\.spent-nonces)$/.test(p),
        );
      },
    };
  }
  const bucket = await freshBucket(undefined, "disconnect");
  const env = { ...bucket.env, ARTIFACTS_MASTER_KEY: MASTER_KEY, ARTIFACTS_WRITER_TOKEN: WRITER_TOKEN, ARTIFACTS_LOCAL_DIR: dir, ARTIFACTS_MAX_BYTES: String(MAX_BYTES) };
  const server = await spawnServer(env, watch, `server ${kind}`);
  servers.push(server);
  const raw = await openBackend(bucket.storage, BACKEND_OPTIONS);
  return {
    server,
    listObjects: () => operationKeys(raw),
    strayFiles: () => [],
  };
}

// Both backends at once: each has its own server, and the cases mostly wait on sockets.
describe.concurrent.each<Backend>(["local", "moto"])("client disconnects on %s storage", (kind) => {
  it("no cut upload or download ends the server; nothing partial is stored or listed", { timeout: 120_000 }, async ({ expect }) => {
    const { server, listObjects, strayFiles } = await startOn(kind);
    let exited: string | undefined;
    void server.exited.then((e) => (exited = JSON.stringify(e)));
    const owner = watchedSigner(wallet(), watch);
    const writer = createWriterClient({ baseUrl: server.url, token: WRITER_TOKEN });
    const grantee = createGranteeClient({ baseUrl: server.url, account: owner });
    const live = (await writer.createOperation({ grantee: owner.address, agent: "cut" })).operationId;
    const full = (await writer.createOperation({ grantee: owner.address, agent: "full" })).operationId;
    const expired = (await writer.createOperation({ grantee: owner.address, agent: "gone", ttlSeconds: 1 })).operationId;
    const big = patternBytes(1.5 * 1024 * 1024 + 5, 3);
    await writer.upload(live, "download.bin", big);
    await writer.upload(full, "taken.bin", "already here");
    await sleep(1100);
    const operations = { missing: "nope_never_created", expired, live, full };
    const bodies = new Map<string, Buffer>();

    const health = async (label: string) => {
      const status = await fetch(`${server.url}/health`).then((r) => r.status, (e: Error) => e.message);
      expect(`${label}: ${status}`, `the server must still answer /health (its exit, if seen: ${exited ?? "none yet"})`).toBe(`${label}: 200`);
    };

    // Every upload cut against every operation, all at once (the server takes them concurrently).
    const uploads = Object.entries(operations).flatMap(([opKind, id]) =>
      Object.entries(UPLOAD_CUTS).map(async ([cutName, cut], i) => {
        const path = opKind === "full" ? "taken.bin" : `cut-${i}.bin`;
        const body = patternBytes(96 * 1024 + i, 100 + i);
        if (opKind === "live") bodies.set(path, body);
        const c = open(server.port);
        await cut(c, `/api/v1/operations/${id}/artifacts/${path}`, body);
        c.cut();
        await health(`PUT ${cutName} to a ${opKind} operation`);
      }),
    );

    // Downloads cut inside the headers, after the request, and during the answer.
    const download = async (opKind: string, id: string, stage: string) => {
      const target = `/api/v1/operations/${id}/artifacts/${opKind === "full" ? "taken.bin" : "download.bin"}`;
      const authorization = await signRequest(owner, { audience: server.url, method: "GET", uri: target });
      const request = head("GET", target, { Authorization: authorization });
      const c = open(server.port);
      if (stage === "inside the headers") await c.write(request.slice(0, request.length >> 1));
      else await c.write(request);
      // The live artifact's answer is 1.5 MiB: cut it a megabyte in; the others are small errors.
      if (stage === "during the answer") await c.received(opKind === "live" ? 1024 * 1024 : 1);
      c.cut();
      await health(`GET cut ${stage} on a ${opKind} operation`);
    };
    const downloads = Object.entries(operations).flatMap(([opKind, id]) =>
      ["inside the headers", "after the request", "during the answer"].map((stage) => download(opKind, id, stage)),
    );
    await Promise.all([...uploads, ...downloads]);
    await sleep(200);
    await health("after every case");
    expect(exited).toBeUndefined();

    // Nothing partial: each listed artifact is whole and exact; no object without a listing entry.
    const listed = (await grantee.list(live)).artifacts;
    for (const a of listed) {
      const want = a.path === "download.bin" ? big : bodies.get(a.path);
      expect(want, `listed ${a.path} was never sent`).toBeDefined();
      const got = await collect(await grantee.download(live, a.path));
      // "a Content-Length shorter than the body" stores exactly the 5 bytes it announced.
      expect(got.equals(want!) || got.equals(want!.subarray(0, 5)), `${a.path} reads back whole`).toBe(true);
      expect(a.size).toBe(got.length);
    }
    expect((await grantee.list(full)).artifacts.map((a) => [a.path, a.size])).toEqual([["taken.bin", 12]]);
    const objects = (await listObjects()).filter((k) => k.includes("/artifacts/")).sort();
    expect(objects).toEqual(
      [...listed.map((a) => `operations/${live}/artifacts/${a.path}`), `operations/${full}/artifacts/taken.bin`].sort(),
    );
    expect(strayFiles()).toEqual([]);
    console.log(`[disconnect] ${kind}: ${uploads.length} cut uploads, ${downloads.length} cut downloads; ${listed.length - 1} of the live cuts completed and read back whole`);
  });
});
