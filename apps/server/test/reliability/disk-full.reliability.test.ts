/**
 * Disk full (issue 14): local storage on a small tmpfs mounted by the test (CI runs as root; a
 * failed mount fails the test, it is never skipped). An upload that hits ENOSPC answers 507
 * `insufficient_storage` with the reason (not 503, which clients retry), leaves no partial object
 * or temp file, earlier artifacts stay readable and the server keeps serving.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, rmdirSync, statfsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InsufficientStorageError } from "@personal-server/artifacts";
import { artifactObjectKey, metadataKey } from "@personal-server/artifacts/internal";
import { createGranteeClient, createWriterClient, type GranteeClient, type WriterClient } from "@personal-server/artifacts/client";
import {
  collect,
  pacedUpload,
  patternBytes,
  SecretWatch,
  sha256,
  startInProcess,
  tempDir,
  watchedSigner,
  wallet,
  WRITER_TOKEN,
  type InProcessServer,
} from "./harness.js";

const watch = new SecretWatch();
const MIB = 1024 * 1024;
const dir = tempDir("disk-full");
let server: InProcessServer;
let writer: WriterClient;
let grantee: GranteeClient;
let operationId: string;
const earlier = { "small.txt": Buffer.from("an earlier result\n"), "streamed.bin": patternBytes(1.2 * MIB, 7) };

const freeBytes = (): number => {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
};
const partFiles = (): string[] => (existsSync(join(dir, ".tmp")) ? readdirSync(join(dir, ".tmp")) : []);

beforeAll(async () => {
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=3m,mode=0700", "tmpfs", dir], { stdio: "pipe" });
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`the disk-full test needs a small tmpfs: mount -t tmpfs failed (${stderr || (error as Error).message}); run it as root`);
  }
  server = await startInProcess({ ARTIFACTS_LOCAL_DIR: dir }, watch);
  writer = createWriterClient({ baseUrl: server.url, token: WRITER_TOKEN });
  grantee = createGranteeClient({ baseUrl: server.url, account: watchedSigner(wallet(), watch) });
  ({ operationId } = await writer.createOperation({ grantee: grantee.address, agent: "disk-full" }));
  for (const [path, body] of Object.entries(earlier)) await writer.upload(operationId, path, body);
});

afterAll(async () => {
  await server?.close();
  execFileSync("umount", [dir], { stdio: "pipe" });
  rmdirSync(dir);
  expect(watch.leaks()).toEqual([]);
});

async function expectEarlierReadable(): Promise<void> {
  const listing = await grantee.list(operationId);
  expect(listing.artifacts.map((a) => a.path)).toEqual(expect.arrayContaining(Object.keys(earlier)));
  for (const [path, body] of Object.entries(earlier)) {
    expect(sha256(await collect(await grantee.download(operationId, path))), path).toBe(sha256(body));
  }
}

describe("disk full on local storage", () => {
  it("a streamed upload larger than the free space: 507 insufficient_storage with the reason, nothing left behind", async () => {
    const metadataBefore = (await server.raw.getBytes(metadataKey(operationId)))!.body;
    const body = patternBytes(Math.ceil(freeBytes() + 2 * MIB), 8);
    const upload = pacedUpload(server.url, `/api/v1/operations/${operationId}/artifacts/too-big.bin`, {
      authorization: `Bearer ${WRITER_TOKEN}`,
      "content-type": "application/octet-stream",
    });
    // Piece by piece until the server answers (it refuses before the body is over).
    let answered = false;
    void upload.response.then(() => (answered = true), () => (answered = true));
    for (let off = 0; off < body.length && !answered; off += 256 * 1024) {
      await upload.write(body.subarray(off, off + 256 * 1024)).catch(() => {});
    }
    if (!answered) upload.end();
    const answer = await upload.response;
    watch.see("error body", JSON.stringify(answer.json));
    expect(answer.status).toBe(507);
    const error = (answer.json as { error: { code: string; message: string } }).error;
    expect(error.code).toBe("insufficient_storage");
    expect(error.message).toMatch(/^local storage: write operations\/.+\/artifacts\/too-big\.bin failed: no space left \(ENOSPC\)$/);
    expect(answer.headers["retry-after"]).toBeUndefined();

    expect(partFiles()).toEqual([]);
    expect(existsSync(join(dir, artifactObjectKey(operationId, "too-big.bin")))).toBe(false);
    expect((await server.raw.getBytes(metadataKey(operationId)))!.body.equals(metadataBefore)).toBe(true);
    await expectEarlierReadable();
  });

  it("through the writer client, a one-chunk upload that does not fit is InsufficientStorageError; smaller ones still succeed", async () => {
    // Leave less than one chunk free, then send one chunk more than that.
    const fill = patternBytes(Math.max(0, freeBytes() - 512 * 1024), 9);
    await writer.upload(operationId, "fill.bin", fill);
    const tooBig = patternBytes(Math.min(MIB, freeBytes() + 64 * 1024), 10);
    const refused = await writer.upload(operationId, "one-chunk.bin", tooBig).catch((e: unknown) => e);
    watch.see("client error", String(refused));
    expect(refused).toBeInstanceOf(InsufficientStorageError);
    expect(refused).toMatchObject({ code: "insufficient_storage", status: 507, details: { status: 507 } });
    expect(partFiles()).toEqual([]);
    expect(existsSync(join(dir, artifactObjectKey(operationId, "one-chunk.bin")))).toBe(false);

    // The server keeps serving: health, reads, and an upload that fits.
    const health = await fetch(`${server.url}/health`);
    expect(health.status).toBe(200);
    await expectEarlierReadable();
    expect(sha256(await collect(await grantee.download(operationId, "fill.bin")))).toBe(sha256(fill));
    const small = Buffer.from("still serving\n");
    await writer.upload(operationId, "after.txt", small, { contentType: "text/plain" });
    expect((await collect(await grantee.download(operationId, "after.txt"))).equals(small)).toBe(true);
    expect((await grantee.list(operationId)).artifacts.map((a) => a.path).sort()).toEqual(["after.txt", "fill.bin", "small.txt", "streamed.bin"]);
  });
});
