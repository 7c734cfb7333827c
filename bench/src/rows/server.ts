// Rows 5, 6, 9 and 10: the built HTTP server (`node apps/server/dist/main.js`, what `pnpm start` runs).
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createReadStream, existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { request, type IncomingMessage } from "node:http";
import { createServer } from "node:net";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import { signRequest } from "@personal-server/artifacts/client";
import { generatePrivateKey, privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";
import { benchScript, childEnv, peakRss, startNode, type Child } from "../child.js";
import {
  alternate,
  drain,
  expectBytes,
  formatSize,
  GiB,
  judge,
  median,
  MiB,
  throughputRow,
  writeRandomFile,
  type BenchContext,
  type MeasuredRow,
  type RowResult,
  type Target,
} from "../harness.js";
import { benchMasterKey } from "../sdk.js";
import { bigInput, bigSize } from "./local.js";

const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const SERVER_DIR = join(REPO_ROOT, "apps/server");
const SERVER_MAIN = join(SERVER_DIR, "dist/main.js");

/**
 * The node flags of the server's `start` script (`node [flags] dist/main.js`), so the bench runs
 * the server exactly as `pnpm start` does (the 128 MiB target is about that process).
 */
function startFlags(): string[] {
  const pkg = JSON.parse(readFileSync(join(SERVER_DIR, "package.json"), "utf8")) as { scripts?: { start?: string } };
  const words = (pkg.scripts?.start ?? "").trim().split(/\s+/);
  if (words[0] !== "node" || words.at(-1) !== "dist/main.js" || words.slice(1, -1).some((w) => !w.startsWith("-"))) {
    throw new Error(`apps/server's start script is not "node [flags] dist/main.js" (${JSON.stringify(pkg.scripts?.start)}); update bench/src/rows/server.ts`);
  }
  return words.slice(1, -1);
}

/** Newest mtime of the files under `dir` (recursively), 0 when it does not exist. */
function newest(dir: string): number {
  if (!existsSync(dir)) return 0;
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) latest = Math.max(latest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return latest;
}

/**
 * Builds the server and the SDK when their dist/ is missing or older than their sources (a fresh
 * clone, or sources edited since), the way `pnpm start` does: turbo, cached.
 */
export function ensureServerBuilt(log: (m: string) => void): void {
  const built = existsSync(SERVER_MAIN)
    ? Math.min(newest(join(REPO_ROOT, "apps/server/dist")), newest(join(REPO_ROOT, "packages/artifacts/dist")))
    : 0;
  const sources = Math.max(newest(join(REPO_ROOT, "apps/server/src")), newest(join(REPO_ROOT, "packages/artifacts/src")));
  if (built > 0 && built >= sources) return;
  log("building the server (turbo run build --filter=@personal-server/server...)");
  const result = spawnSync("pnpm", ["exec", "turbo", "run", "build", "--filter=@personal-server/server...", "--output-logs=errors-only"], {
    cwd: REPO_ROOT,
    // stderr only: stdout carries the table.
    stdio: ["ignore", 2, 2],
  });
  if (result.status !== 0 || !existsSync(SERVER_MAIN)) throw new Error(`building the server failed (exit ${result.status})`);
}

/** The server command line as the notes show it. */
export function serverCommand(): string {
  return ["node", ...startFlags(), "apps/server/dist/main.js"].join(" ");
}

/** A port that was free a moment ago (the server takes its port from PORT, and so does its audience). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      probe.close(() => (typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

/** The real server in a fresh directory (local storage there, unless its env names another). */
export interface RunningServer {
  child: Child;
  base: string;
  writerToken: string;
  dir: string;
  stop(): Promise<void>;
}

/** Starts the built server as `pnpm start` does; `env` adds or overrides variables (storage among them). */
export async function startRealServer(ctx: BenchContext, env: Record<string, string> = {}): Promise<RunningServer> {
  const dir = await mkdtemp(join(ctx.dir, "server-"));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const writerToken = randomBytes(32).toString("base64url");
  const child = await startNode([...startFlags(), SERVER_MAIN], {
    // Outside the repository, so no .env there is picked up.
    cwd: dir,
    env: childEnv({
      ARTIFACTS_LOCAL_DIR: join(dir, "data"),
      ARTIFACTS_MASTER_KEY: benchMasterKey(),
      ARTIFACTS_WRITER_TOKEN: writerToken,
      ARTIFACTS_SWEEP_INTERVAL: "0",
      ARTIFACTS_MAX_BYTES: String(8 * GiB),
      ARTIFACTS_AUDIENCE: base,
      HOST: "127.0.0.1",
      PORT: String(port),
      ARTIFACTS_METRICS_LISTEN: "127.0.0.1:0",
      NODE_ENV: "production",
      ...env,
    }),
    ready: /listening on (http:\/\/\S+)/,
  });
  return {
    child,
    base,
    writerToken,
    dir,
    stop: async () => {
      await child.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** One HTTP request with node:http; resolves with the response (body unread). */
export function send(
  url: string,
  options: { method: string; headers?: Record<string, string | number>; body?: string | NodeJS.ReadableStream },
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method, headers: options.headers, agent: false }, resolve);
    req.once("error", reject);
    if (options.body === undefined) req.end();
    else if (typeof options.body === "string") req.end(options.body);
    else pipeline(options.body, req).catch(reject);
  });
}

async function text(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** Creates an operation for `grantee` through the server; returns its id. */
async function createOperation(server: RunningServer, grantee: string): Promise<string> {
  const created = await send(`${server.base}/api/v1/operations`, {
    method: "POST",
    headers: { authorization: `Bearer ${server.writerToken}`, "content-type": "application/json" },
    body: JSON.stringify({ grantee, agent: "bench" }),
  });
  const createdBody = await text(created);
  if (created.statusCode !== 201) throw new Error(`create operation: HTTP ${created.statusCode} ${createdBody}`);
  return (JSON.parse(createdBody) as { operationId: string }).operationId;
}

/** PUTs `file` as `name` into an operation through the server (the writer's upload); returns the artifact's path. */
async function putThroughServer(server: RunningServer, operationId: string, file: string, size: number, name = "data.bin"): Promise<string> {
  const path = `/api/v1/operations/${operationId}/artifacts/${name}`;
  const put = await send(`${server.base}${path}`, {
    method: "PUT",
    headers: { authorization: `Bearer ${server.writerToken}`, "content-type": "application/octet-stream", "content-length": size },
    body: createReadStream(file, { highWaterMark: 1 << 20 }),
  });
  const putBody = await text(put);
  if (put.statusCode !== 201) throw new Error(`upload: HTTP ${put.statusCode} ${putBody}`);
  return path;
}

/** Creates an operation and uploads `file` as `data.bin` through the server; returns the download path. */
export async function uploadThroughServer(server: RunningServer, grantee: string, file: string, size: number): Promise<string> {
  return putThroughServer(server, await createOperation(server, grantee), file, size);
}

/** The plain node:http server of bench/src/file-server.ts (GET /file, PUT /upload), in its own process. */
async function startPlainServer(ctx: BenchContext, file: string): Promise<{ child: Child; url: string; uploads: string }> {
  const uploads = await mkdtemp(join(ctx.dir, "plain-uploads-"));
  const child = await startNode(["--import", import.meta.resolve("tsx"), benchScript("file-server.ts"), file, uploads], {
    cwd: ctx.dir,
    env: childEnv({}),
    ready: /^listening (\d+)$/m,
  });
  return { child, url: `http://127.0.0.1:${child.ready[1]}`, uploads };
}

/** GET with the grantee's signature; reads the body to the end and returns its length. */
async function download(server: RunningServer, account: PrivateKeyAccount, path: string, authorization?: string): Promise<number> {
  const auth = authorization ?? (await signRequest(account, { audience: server.base, method: "GET", uri: path }));
  const res = await send(`${server.base}${path}`, { method: "GET", headers: { authorization: auth } });
  if (res.statusCode !== 200) throw new Error(`download: HTTP ${res.statusCode} ${await text(res)}`);
  return drain(res);
}

/** Row 5: downloading through the server vs a plain node:http file server, same client. */
export async function row5(ctx: BenchContext): Promise<RowResult> {
  ensureServerBuilt(ctx.log);
  const size = bigSize(ctx);
  const input = await bigInput(ctx);
  const account = privateKeyToAccount(generatePrivateKey());
  const server = await startRealServer(ctx);
  let plain: Child | undefined;
  try {
    const path = await uploadThroughServer(server, account.address, input, size);
    const started = await startPlainServer(ctx, input);
    plain = started.child;
    const plainUrl = `${started.url}/file`;
    const times = await alternate(
      ctx,
      "row 5",
      {
        // Each request is signed with a fresh nonce before the clock starts.
        prepare: () => signRequest(account, { audience: server.base, method: "GET", uri: path }),
        run: async (authorization) => expectBytes("server download", await download(server, account, path, authorization), size),
      },
      {
        run: async () => {
          const res = await send(plainUrl, { method: "GET" });
          if (res.statusCode !== 200) throw new Error(`plain download: HTTP ${res.statusCode}`);
          expectBytes("plain download", await drain(res), size);
        },
      },
    );
    return throughputRow(
      {
        id: "5",
        figure: `HTTP download through the server (${formatSize(size)}) vs plain node:http file server, 127.0.0.1`,
        unit: "MiB/s",
        target: { kind: "min-ratio", ratio: 0.9 },
        note:
          `ours: GET /api/v1/operations/:id/artifacts/:path with a Web3Signed grantee signature (signed before timing) against ${serverCommand()} on local storage; ` +
          "baseline: node:http server in its own process, pipeline(createReadStream(plaintext file), res); same node:http client, body read to the end",
      },
      size / MiB,
      times,
    );
  } finally {
    await plain?.stop();
    await server.stop();
  }
}

/** Row 6: the server's peak RSS through an upload and a download, small vs large artifact. */
export async function row6(ctx: BenchContext): Promise<RowResult> {
  ensureServerBuilt(ctx.log);
  const small = ctx.quick ? 16 * MiB : 256 * MiB;
  const large = ctx.quick ? 64 * MiB : 2 * GiB;
  const target: Target = { kind: "max-and-flat", max: 128, growth: 1.1 };
  const files = { small: join(ctx.dir, `r6-${small}.bin`), large: join(ctx.dir, `r6-${large}.bin`) };
  await writeRandomFile(files.small, small);
  await writeRandomFile(files.large, large);
  const account = privateKeyToAccount(generatePrivateKey());

  /** A fresh server per run (VmHWM only ever grows), one upload and one download, then its VmHWM in MiB. */
  const side = (file: string, size: number) => ({
    prepare: () => startRealServer(ctx),
    run: async (server: RunningServer) => {
      const path = await uploadThroughServer(server, account.address, file, size);
      expectBytes("server download", await download(server, account, path), size);
      return (await peakRss(server.child.pid)) / MiB;
    },
    cleanup: (server: RunningServer) => server.stop(),
  });
  try {
    const peaks = await alternate(ctx, "row 6", side(files.large, large), side(files.small, small));
    const ours = median(peaks.a);
    const baseline = median(peaks.b);
    const ratio = ours / baseline;
    const row: MeasuredRow = {
      id: "6",
      figure: `Server peak RSS (VmHWM) through upload + download: ${formatSize(large)} vs ${formatSize(small)}`,
      unit: "MiB",
      ours,
      baseline,
      ratio,
      target,
      met: judge(target, ours, ratio),
      note:
        `ours: VmHWM of a fresh ${serverCommand()} (pnpm start) after a ${formatSize(large)} PUT and GET; ` +
        `baseline: the same with ${formatSize(small)}; ratio > 1 would mean memory grows with size`,
      samples: { ours: peaks.a, baseline: peaks.b },
    };
    return row;
  } finally {
    await rm(files.small, { force: true });
    await rm(files.large, { force: true });
  }
}


/** Row 9: the writer's upload through the server vs a plain node:http server writing the body to disk. */
export async function row9(ctx: BenchContext): Promise<RowResult> {
  ensureServerBuilt(ctx.log);
  const size = bigSize(ctx);
  const input = await bigInput(ctx);
  const account = privateKeyToAccount(generatePrivateKey());
  const server = await startRealServer(ctx);
  let plain: { child: Child; url: string; uploads: string } | undefined;
  try {
    plain = await startPlainServer(ctx, input);
    const plainUrl = `${plain.url}/upload`;
    const uploads = plain.uploads;
    const times = await alternate(
      ctx,
      "row 9",
      {
        // A fresh operation per run (created before the clock starts), so each PUT is a new artifact.
        prepare: () => createOperation(server, account.address),
        run: async (operationId) => {
          await putThroughServer(server, operationId, input, size);
        },
        cleanup: async () => {
          await rm(join(server.dir, "data", "operations"), { recursive: true, force: true });
        },
      },
      {
        run: async () => {
          const res = await send(plainUrl, {
            method: "PUT",
            headers: { "content-type": "application/octet-stream", "content-length": size },
            body: createReadStream(input, { highWaterMark: 1 << 20 }),
          });
          await text(res);
          if (res.statusCode !== 201) throw new Error(`plain upload: HTTP ${res.statusCode}`);
        },
        cleanup: async () => {
          await rm(uploads, { recursive: true, force: true });
          await mkdir(uploads, { recursive: true });
        },
      },
    );
    return throughputRow(
      {
        id: "9",
        figure: `HTTP upload through the server (writer PUT, ${formatSize(size)}) vs plain node:http server writing the body to disk`,
        unit: "MiB/s",
        target: { kind: "min-ratio", ratio: 0.8 },
        note:
          `ours: PUT /api/v1/operations/:id/artifacts/data.bin with the writer token against ${serverCommand()} on local storage (encrypt, temp file, fsync, link); ` +
          "baseline: node:http server in its own process, pipeline(req, createWriteStream(file, { flush: true })); same node:http client sending the file in 1 MiB reads",
      },
      size / MiB,
      times,
    );
  } finally {
    await plain?.child.stop();
    await server.stop();
  }
}

/** Row 10: 8 concurrent downloads of a 256 MiB artifact through the server vs the plain file server, aggregate. */
export async function row10(ctx: BenchContext): Promise<RowResult> {
  ensureServerBuilt(ctx.log);
  const clients = 8;
  const size = ctx.quick ? 8 * MiB : 256 * MiB;
  const input = join(ctx.dir, `r10-${size}.bin`);
  await writeRandomFile(input, size);
  const account = privateKeyToAccount(generatePrivateKey());
  const server = await startRealServer(ctx);
  let plain: { child: Child; url: string } | undefined;
  try {
    const path = await uploadThroughServer(server, account.address, input, size);
    plain = await startPlainServer(ctx, input);
    const plainUrl = `${plain.url}/file`;
    const all = <T>(f: (i: number) => Promise<T>) => Promise.all(Array.from({ length: clients }, (_, i) => f(i)));
    const times = await alternate(
      ctx,
      "row 10",
      {
        // Each client signs its own request (fresh nonce) before the clock starts.
        prepare: () => all(() => signRequest(account, { audience: server.base, method: "GET", uri: path })),
        run: async (auths) => {
          await all(async (i) => expectBytes("server download", await download(server, account, path, auths[i]), size));
        },
      },
      {
        run: async () => {
          await all(async () => {
            const res = await send(plainUrl, { method: "GET" });
            if (res.statusCode !== 200) throw new Error(`plain download: HTTP ${res.statusCode}`);
            expectBytes("plain download", await drain(res), size);
          });
        },
      },
    );
    return throughputRow(
      {
        id: "10",
        figure: `${clients} concurrent downloads of one ${formatSize(size)} artifact through the server vs plain node:http file server, aggregate`,
        unit: "MiB/s",
        target: { kind: "min-ratio", ratio: 0.8 },
        note:
          `ours: ${clients} simultaneous signed GETs against ${serverCommand()} on local storage; ` +
          `baseline: ${clients} simultaneous GETs of the plaintext file from the plain node:http server; same node:http client, bodies read to the end`,
      },
      (clients * size) / MiB,
      times,
    );
  } finally {
    await plain?.child.stop();
    await server.stop();
    await rm(input, { force: true });
  }
}
