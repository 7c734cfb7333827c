/**
 * The plain node:http baseline of rows 5, 9 and 10, in its own process like the real server
 * (`node --import tsx src/file-server.ts <file> <upload dir>`); prints `listening <port>` when ready.
 * GET /file streams <file>; PUT /upload writes the body to a new file in <upload dir> with the
 * local backend's durability (fsync before close, `flush: true`), then answers 201.
 */
import { createReadStream, createWriteStream, statSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import { pipeline } from "node:stream";

const [file, uploads] = process.argv.slice(2);
if (file === undefined || uploads === undefined) throw new Error("usage: file-server.ts <file> <upload dir>");
const size = statSync(file).size;
let n = 0;

const server = createServer((req, res) => {
  if (req.method === "GET" && req.url === "/file") {
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": size });
    pipeline(createReadStream(file), res, () => {});
  } else if (req.method === "PUT" && req.url === "/upload") {
    pipeline(req, createWriteStream(join(uploads, `${n++}.bin`), { flush: true }), (error) => {
      res.writeHead(error ? 500 : 201).end();
    });
  } else {
    res.writeHead(405).end();
  }
});
server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  process.stdout.write(`listening ${address.port}\n`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
