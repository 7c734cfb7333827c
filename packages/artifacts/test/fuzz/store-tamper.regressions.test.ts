/**
 * Fixed cases the tamper fuzzer (store-tamper.fuzz.test.ts) found, kept as plain tests so a
 * regression names itself without a seed. Written with the store's own 1 MiB chunks.
 */
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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
/** The same storage through a writer of layout 2 (new operations). */
let store2: ArtifactStore;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "psa-fuzz-reg-"));
  const config = loadConfig({ ARTIFACTS_LOCAL_DIR: dir, ARTIFACTS_MASTER_KEY: MASTER_KEY });
  store = createArtifactStore(config, { createLayout: 1 });
  store2 = createArtifactStore(config);
});
afterEach(async () => {
  await Promise.all([store.close(), store2.close()]);
  rmSync(dir, { recursive: true, force: true });
});

async function listing(s: ArtifactStore, operationId: string): Promise<string[] | string> {
  try {
    return (await s.listArtifacts(operationId, { requester: GRANTEE })).artifacts.map((a) => a.path);
  } catch (error) {
    return (error as ArtifactError).code;
  }
}

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

  it("an entry naming a path no writer can make is malformed: never listed, never offered for download", async () => {
    // A tamperer writes an entry for `../escape.bin` under a name carrying that path's hash (the
    // hash is public). The listing showed it (seed-independent; the store fuzzer's entryForged and
    // indexPhantom:invalid-path found it): a path the server, the web page and `migrate` then
    // handle though validateArtifactPath would refuse it on upload. isArtifactEntry now requires one.
    const forged = "../escape.bin";
    const hash = createHash("sha256").update(forged).digest("hex").slice(0, 32);
    // Layout 2, an entry object.
    const op = await store2.createOperation({ grantee: GRANTEE, operationId: "forged-v2" });
    await store2.putArtifact(op.operationId, "note.txt", "a short artifact");
    const meta = JSON.parse(readFileSync(join(dir, metadataKey("forged-v2")), "utf8")) as { incarnation: string };
    const entries = join(dir, "operations/forged-v2/entries", meta.incarnation);
    const [name] = readdirSync(entries);
    const entry = JSON.parse(readFileSync(join(entries, name!), "utf8")) as Record<string, unknown>;
    const forgedName = `${String(Number(name!.slice(0, 13)) + 1).padStart(13, "0")}-${hash}.json`;
    writeFileSync(join(entries, forgedName), JSON.stringify({ ...entry, path: forged }));
    expect(await listing(store2, "forged-v2")).toBe("integrity");
    // In index.json (covering it), the line makes the index unusable: the listing goes by the entries.
    rmSync(join(entries, forgedName));
    const index = { layout: 2, incarnation: meta.incarnation, covers: forgedName, entries: [{ ...entry, name }, { ...entry, path: forged, name: forgedName }] };
    writeFileSync(join(dir, "operations/forged-v2/index.json"), JSON.stringify(index));
    expect(await listing(store2, "forged-v2")).toEqual(["note.txt"]);
    // Layout 1, a line of metadata.json's artifacts[]: malformed metadata, like any entry not of an entry's shape.
    await store.createOperation({ grantee: GRANTEE, operationId: "forged-v1" });
    await store.putArtifact("forged-v1", "note.txt", "a short artifact");
    const metaFile = join(dir, metadataKey("forged-v1"));
    const v1 = JSON.parse(readFileSync(metaFile, "utf8")) as MetadataV1;
    v1.artifacts.push({ ...v1.artifacts[0]!, path: forged });
    writeFileSync(metaFile, JSON.stringify(v1));
    expect(await listing(store, "forged-v1")).toBe("integrity");
  });
});
