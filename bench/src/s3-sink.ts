/**
 * A loopback S3 endpoint that accepts uploads and throws the bytes away, for row 8: the client's
 * overhead is only visible when the server costs next to nothing (moto is far too slow).
 *
 * Run as its own process (`node --import tsx src/s3-sink.ts`), so it does not share a CPU with
 * the client it measures; prints `listening <port>` when ready.
 *
 * Path-style requests only. Multipart parts and large PutObject bodies are counted and
 * discarded; small PutObject bodies (metadata.json) are kept in memory, because the SDK reads
 * its metadata back. Conditional PutObject (If-None-Match: *, If-Match) is honoured, so the
 * SDK's metadata writes behave as on S3.
 */
import { createHash, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";

const KEEP_LIMIT = 1024 * 1024;
const objects = new Map<string, { body: Buffer; etag: string }>();
const uploads = new Map<string, { parts: number; bytes: number }>();

function xml(res: ServerResponse, status: number, body: string): void {
  const text = `<?xml version="1.0" encoding="UTF-8"?>\n${body}`;
  res.writeHead(status, { "content-type": "application/xml", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

function s3Error(res: ServerResponse, status: number, code: string, message: string): void {
  xml(res, status, `<Error><Code>${code}</Code><Message>${message}</Message></Error>`);
}

const escape = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** Reads the body; keeps it only when `keep` and it stays small. Returns the kept bytes (or null) and the count. */
function readBody(req: IncomingMessage, keep: boolean): Promise<{ body: Buffer | null; bytes: number }> {
  return new Promise((resolve, reject) => {
    const pieces: Buffer[] = [];
    let bytes = 0;
    let keeping = keep;
    req.on("data", (chunk: Buffer) => {
      bytes += chunk.length;
      if (keeping && bytes <= KEEP_LIMIT) pieces.push(chunk);
      else keeping = false;
    });
    req.on("end", () => resolve({ body: keeping ? Buffer.concat(pieces, bytes) : null, bytes }));
    req.on("error", reject);
  });
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? "/", "http://sink");
  const [, bucket = "", ...rest] = url.pathname.split("/");
  const key = decodeURIComponent(rest.join("/"));
  const q = url.searchParams;
  const method = req.method ?? "GET";
  if (bucket === "") return s3Error(res, 400, "InvalidRequest", "path-style requests only");

  if (key === "") {
    if (method === "POST" && q.has("delete")) {
      const { body } = await readBody(req, true);
      const keys = [...(body?.toString("utf8") ?? "").matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1]!);
      for (const k of keys) objects.delete(k);
      return xml(res, 200, "<DeleteResult></DeleteResult>");
    }
    if (method === "GET" && q.get("list-type") === "2") {
      const prefix = q.get("prefix") ?? "";
      const contents = [...objects.entries()]
        .filter(([k]) => k.startsWith(prefix))
        .map(([k, o]) => `<Contents><Key>${escape(k)}</Key><Size>${o.body.length}</Size><ETag>"${o.etag}"</ETag><LastModified>${new Date().toISOString()}</LastModified></Contents>`)
        .join("");
      return xml(res, 200, `<ListBucketResult><Name>${bucket}</Name><Prefix>${escape(prefix)}</Prefix><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated>${contents}</ListBucketResult>`);
    }
    if (method === "HEAD") {
      res.writeHead(200).end();
      return;
    }
    return s3Error(res, 501, "NotImplemented", `${method} on the bucket is not implemented by the bench sink`);
  }

  if (method === "POST" && q.has("uploads")) {
    await readBody(req, false);
    const uploadId = randomBytes(12).toString("hex");
    uploads.set(uploadId, { parts: 0, bytes: 0 });
    return xml(
      res,
      200,
      `<InitiateMultipartUploadResult><Bucket>${bucket}</Bucket><Key>${escape(key)}</Key><UploadId>${uploadId}</UploadId></InitiateMultipartUploadResult>`,
    );
  }
  const uploadId = q.get("uploadId");
  if (uploadId !== null) {
    const upload = uploads.get(uploadId);
    if (upload === undefined) {
      await readBody(req, false);
      return s3Error(res, 404, "NoSuchUpload", "no such upload");
    }
    if (method === "PUT") {
      const { bytes } = await readBody(req, false);
      upload.parts++;
      upload.bytes += bytes;
      const etag = createHash("md5").update(`${uploadId}/${q.get("partNumber")}`).digest("hex");
      res.writeHead(200, { etag: `"${etag}"`, "content-length": 0 }).end();
      return;
    }
    if (method === "POST") {
      await readBody(req, false);
      uploads.delete(uploadId);
      const etag = `${randomBytes(16).toString("hex")}-${upload.parts}`;
      return xml(
        res,
        200,
        `<CompleteMultipartUploadResult><Bucket>${bucket}</Bucket><Key>${escape(key)}</Key><ETag>"${etag}"</ETag></CompleteMultipartUploadResult>`,
      );
    }
    if (method === "DELETE") {
      uploads.delete(uploadId);
      res.writeHead(204).end();
      return;
    }
  }
  if (method === "PUT") {
    const current = objects.get(key);
    const ifNoneMatch = req.headers["if-none-match"];
    const ifMatch = req.headers["if-match"];
    const { body, bytes } = await readBody(req, true);
    if (ifNoneMatch === "*" && current !== undefined) return s3Error(res, 412, "PreconditionFailed", "object exists");
    if (ifMatch !== undefined && (current === undefined || ifMatch.replace(/"/g, "") !== current.etag)) {
      return s3Error(res, 412, "PreconditionFailed", "etag does not match");
    }
    const etag = createHash("md5").update(body ?? String(bytes)).digest("hex");
    if (body !== null) objects.set(key, { body, etag });
    else objects.delete(key); // discarded: reads of it answer NoSuchKey
    res.writeHead(200, { etag: `"${etag}"`, "content-length": 0 }).end();
    return;
  }
  if (method === "GET" || method === "HEAD") {
    const object = objects.get(key);
    if (object === undefined) {
      if (method === "HEAD") {
        res.writeHead(404).end();
        return;
      }
      return s3Error(res, 404, "NoSuchKey", "no such key");
    }
    res.writeHead(200, {
      etag: `"${object.etag}"`,
      "content-length": object.body.length,
      "content-type": "application/octet-stream",
      "last-modified": new Date().toUTCString(),
    });
    res.end(method === "GET" ? object.body : undefined);
    return;
  }
  if (method === "DELETE") {
    objects.delete(key);
    res.writeHead(204).end();
    return;
  }
  return s3Error(res, 501, "NotImplemented", `${method} is not implemented by the bench sink`);
}

const server = createServer((req, res) => {
  handle(req, res).catch((error: unknown) => {
    if (!res.headersSent) s3Error(res, 500, "InternalError", escape(String(error)));
    else res.destroy();
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  process.stdout.write(`listening ${address.port}\n`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
