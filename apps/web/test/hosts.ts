// The two HTTP servers the page suite puts around the page and the bucket.
import { existsSync, readFileSync } from "node:fs";
import { createServer, request as httpRequest, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { extname, join, normalize } from "node:path";
import type { Harness } from "./harness.js";

/**
 * A pass-through HTTP proxy in front of moto (the server's S3 endpoint, so presigned URLs point at
 * it) that can break the next chunk-range GET of a key after some answer bytes (a lost connection)
 * and then refuse the one after it with 403, as storage refuses an expired URL; `cut` drops every
 * later GET of the key instead (the network is gone), so the download cannot resume.
 */
export async function breakingProxy(target: string): Promise<{ url: string; breakNext(pathPart: string, afterBytes: number, cut?: boolean): void; server: Server }> {
  const upstream = new URL(target);
  let armed: { pathPart: string; afterBytes: number; refused: boolean; cut: boolean } | undefined;
  const server = createServer((req, res) => {
    const hit = req.method === "GET" && armed !== undefined && req.url!.includes(armed.pathPart);
    let breakAfter: number | undefined;
    if (hit && armed!.refused && armed!.cut) return void req.socket.destroy();
    if (hit && armed!.refused) {
      armed = undefined;
      res.writeHead(403, { "content-type": "application/xml", "access-control-allow-origin": String(req.headers.origin ?? "*") });
      res.end("<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>");
      return;
    }
    if (hit) {
      breakAfter = armed!.afterBytes;
      armed!.refused = true;
    }
    const out = httpRequest({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode!, answer.headers);
      let sent = 0;
      answer.on("data", (chunk: Buffer) => {
        if (breakAfter !== undefined && sent + chunk.length >= breakAfter) {
          // Exactly breakAfter bytes get through, then the connection drops.
          res.write(chunk.subarray(0, breakAfter - sent), () => res.destroy());
          answer.destroy();
          breakAfter = -1;
          return;
        }
        if (breakAfter === -1) return;
        sent += chunk.length;
        res.write(chunk);
      });
      answer.on("end", () => res.end());
    });
    out.on("error", () => res.destroy());
    req.pipe(out);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    breakNext: (pathPart, afterBytes, cut = false) => (armed = { pathPart, afterBytes, refused: false, cut }),
    server,
  };
}

/** The built page on a plain static server of its own origin: the page "deployed anywhere". */
export async function staticHost(dir: string, harness: Harness): Promise<{ url: string; server: Server }> {
  const types: Record<string, string> = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css" };
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url!, "http://x").pathname)).replace(/^\/+/, "") || "index.html";
    const file = join(dir, path);
    if (!file.startsWith(dir) || !existsSync(file)) return void res.writeHead(404).end();
    res.writeHead(200, { "content-type": types[extname(file)] ?? "application/octet-stream" }).end(readFileSync(file));
  });
  harness.front(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}
