/**
 * Fixed cases the tamper fuzzer (store-tamper.fuzz.test.ts) found, kept as plain tests so a
 * regression names itself without a seed. Written with the store's own 1 MiB chunks.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  ArtifactError,
  createArtifactStore,
  loadConfig,
  type ArtifactStore,
} from "@personal-server/artifacts";
import {
  artifactObjectKey,
  DEFAULT_CHUNK_SIZE,
  encryptedSize,
  metadataKey,
  type MetadataV1,
} from "@personal-server/artifacts/internal";

const MASTER_KEY = Buffer.alloc(32, 0x5b).toString("base64"); // obviously fake
const GRANTEE = "0x00000000000000000000000000000000000000c3";

let dir: string;
let store: ArtifactStore;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "psa-fuzz-reg-"));
  store = createArtifactStore(loadConfig({ ARTIFACTS_LOCAL_DIR: dir, ARTIFACTS_MASTER_KEY: MASTER_KEY }), { createLayout: 1 });
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function read(operationId: string, path: string): Promise<{ bytes: Buffer; size?: number; error?: unknown }> {
  try {
    const { info, body } = await store.getArtifact(operationId, path, { requester: GRANTEE });
    const parts: Buffer[] = [];
    for await (const part of body) parts.push(part as Buffer);
    return { bytes: Buffer.concat(parts), size: info.size };
  } catch (error) {
    return { bytes: Buffer.alloc(0), error };
  }
}

describe("tamper fuzzer findings (store, local backend)", () => {
  it("a one-chunk object whose header chunk size was edited is refused as integrity", async () => {
    // docs/format.md: a reader checks the header's chunk size against metadata. The header's chunk size is not authenticated by the chunk
    // tags, and a one-chunk object decrypts the same under any C >= its length, so only a comparison
    // with the chunk size metadata records can notice the edit.
    await store.createOperation({ grantee: GRANTEE, operationId: "hdr-c" });
    await store.putArtifact("hdr-c", "note.txt", "a short artifact");
    const file = join(dir, artifactObjectKey("hdr-c", "note.txt"));
    const object = readFileSync(file);
    expect(object.readUInt32BE(5)).toBe(DEFAULT_CHUNK_SIZE);
    object.writeUInt32BE(2 * DEFAULT_CHUNK_SIZE, 5); // flips one bit of the header
    writeFileSync(file, object);

    const outcome = await read("hdr-c", "note.txt");
    expect(outcome.error, "a flipped header bit must not read back cleanly").toBeInstanceOf(ArtifactError);
    expect((outcome.error as ArtifactError).code).toBe("integrity");
    expect(outcome.bytes.length).toBe(0);
  });

  it("metadata recording another (size, chunk size) pair with the same stored length is refused, not served with a wrong size", async () => {
    // 1 MiB + 1 bytes in 1 MiB chunks is stored in exactly as many bytes as 1 MiB + 17 bytes in one
    // 2 MiB chunk. With metadata edited to the latter, the one-shot path decrypts the real object
    // (its header says 1 MiB) and returns 1 MiB + 1 bytes under info.size = 1 MiB + 17: the server
    // then announces a Content-Length the body never reaches.
    const size = DEFAULT_CHUNK_SIZE + 1;
    await store.createOperation({ grantee: GRANTEE, operationId: "rechunk" });
    await store.putArtifact("rechunk", "two-chunks.bin", Buffer.alloc(size, 7));
    const metaFile = join(dir, metadataKey("rechunk"));
    const meta = JSON.parse(readFileSync(metaFile, "utf8")) as MetadataV1;
    const entry = meta.artifacts[0]!;
    const fakeChunk = 2 * DEFAULT_CHUNK_SIZE;
    const fakeSize = entry.encryptedSize - 41 - 16;
    expect(encryptedSize(fakeSize, fakeChunk)).toBe(entry.encryptedSize);
    Object.assign(entry, { size: fakeSize, chunkSize: fakeChunk });
    writeFileSync(metaFile, JSON.stringify(meta));

    const outcome = await read("rechunk", "two-chunks.bin");
    expect(outcome.error === undefined ? `served ${outcome.bytes.length} bytes as size ${outcome.size}` : "refused").toBe("refused");
    expect((outcome.error as ArtifactError).code).toBe("integrity");
  });

  it("one flipped bit that turns metadata.json's version into a newer layout is unsupported_layout, not a read", async () => {
    // `"version":1` -> `"version":3` (0x31 ^ 0x02): no integrity check this release knows applies to
    // a layout it cannot read, so it reads nothing and says which layout (seed 1315364742 found it).
    await store.createOperation({ grantee: GRANTEE, operationId: "newer" });
    await store.putArtifact("newer", "note.txt", "a short artifact");
    const metaFile = join(dir, metadataKey("newer"));
    const bytes = readFileSync(metaFile);
    const at = bytes.indexOf('"version":1') + '"version":'.length;
    bytes[at] = bytes[at]! ^ 0x02;
    writeFileSync(metaFile, bytes);

    const outcome = await read("newer", "note.txt");
    expect(outcome.bytes.length).toBe(0);
    expect((outcome.error as ArtifactError).code).toBe("unsupported_layout");
    expect((outcome.error as Error).message).toContain("layout 3");
  });
});
