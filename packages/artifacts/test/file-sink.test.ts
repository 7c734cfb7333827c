// Streaming into a file (the local backend's writes) and freeing pieces nobody else holds.
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, describe, expect, it } from "vitest";
import { streamToFile } from "../src/backends/file-sink.js";
import { freeBytes } from "../src/free-bytes.js";

const dir = mkdtempSync(join(tmpdir(), "psa-file-sink-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const fail = (e: unknown) => new Error(`file: ${(e as Error).message}`);

describe("freeBytes", () => {
  it("frees a piece that is the whole of its own buffer, and nothing else", () => {
    const own = new Uint8Array(64 * 1024);
    freeBytes(own);
    expect(own.buffer.byteLength).toBe(0); // detached

    const big = new Uint8Array(64 * 1024);
    const view = big.subarray(16);
    freeBytes(view);
    freeBytes(big.subarray(0, 1024));
    expect(big.buffer.byteLength).toBe(64 * 1024);

    const small = new Uint8Array(8192);
    freeBytes(small);
    expect(small.byteLength).toBe(8192);

    const pooled = Buffer.from("pooled bytes"); // a view into Node's shared 8 KiB pool
    freeBytes(pooled);
    expect(pooled.toString()).toBe("pooled bytes");

    const shared = new Uint8Array(new SharedArrayBuffer(64 * 1024));
    freeBytes(shared);
    expect(shared.byteLength).toBe(64 * 1024);
  });
});

describe("streamToFile", () => {
  it("writes every byte across the write-behind flush points (40 MiB in odd pieces)", async () => {
    const data = randomBytes(40 * 1024 * 1024 + 13);
    const pieces: Buffer[] = [];
    for (let at = 0, i = 0; at < data.length; i += 1) {
      const n = Math.min([65536, 1 << 20, 777, 3 << 20][i % 4]!, data.length - at);
      pieces.push(data.subarray(at, at + n));
      at += n;
    }
    const path = join(dir, "forty.bin");
    const fh = await open(path, "wx");
    const n = await streamToFile(fh, Readable.from(pieces), fail);
    await fh.close();
    expect(n).toBe(data.length);
    expect(sha(readFileSync(path))).toBe(sha(data));
    // Without `release`, pieces are left alone (views here, but whole buffers too).
    expect(pieces.every((p) => p.buffer.byteLength > 0)).toBe(true);
  });

  it("with release, frees each whole piece once written, and the file still has every byte", async () => {
    const originals = Array.from({ length: 40 }, () => randomBytes(64 * 1024));
    const expected = sha(Buffer.concat(originals));
    const owned = originals.map((b) => new Uint8Array(b)); // copies that own their buffers
    const path = join(dir, "released.bin");
    const fh = await open(path, "wx");
    await streamToFile(fh, Readable.from(owned), fail, true);
    await fh.close();
    expect(sha(readFileSync(path))).toBe(expected);
    expect(owned.every((p) => p.byteLength === 0)).toBe(true);
  });

  it("a body error propagates as it is; a file error comes out through fileError", async () => {
    const broken = Readable.from(
      (async function* () {
        yield randomBytes(1024);
        throw new Error("upload went away");
      })(),
    );
    const fh = await open(join(dir, "broken.bin"), "wx");
    await expect(streamToFile(fh, broken, fail)).rejects.toThrow(/^upload went away$/);
    await fh.close();

    const readOnly = await open(join(dir, "broken.bin"), "r");
    await expect(streamToFile(readOnly, Readable.from([randomBytes(1024)]), fail)).rejects.toThrow(/^file: EBADF/);
    await readOnly.close();
  });
});
