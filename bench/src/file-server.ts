/**
 * Row 5's baseline: the plainest node:http server that streams one file from disk.
 * Runs as its own process like the real server (`node --import tsx src/file-server.ts <file>`)
 * and prints `listening <port>` when ready.
 */
import { createReadStream, statSync } from "node:fs";
import { createServer } from "node:http";
import { pipeline } from "node:stream";

const file = process.argv[2];
if (file === undefined) throw new Error("usage: file-server.ts <file>");
const size = statSync(file).size;

const server = createServer((req, res) => {
  if (req.method !== "GET") {
    res.writeHead(405).end();
    return;
  }
  res.writeHead(200, { "content-type": "application/octet-stream", "content-length": size });
  pipeline(createReadStream(file), res, () => {});
});
server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  process.stdout.write(`listening ${address.port}\n`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
