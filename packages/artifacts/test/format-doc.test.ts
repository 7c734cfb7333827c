// docs/format.md is the specification a third party implements a reader from: every constant,
// worked number and example in it must be what the code does and what the vectors hold.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import {
  DEFAULT_CHUNK_SIZE,
  FORMAT_VERSION,
  HEADER_BYTES,
  MAGIC,
  MAX_CHUNK_SIZE,
  MIN_CHUNK_SIZE,
  TAG_BYTES,
  chunkCount,
  encryptedSize,
  plaintextSize,
  wrapAad,
} from "../src/crypto.js";
import { NONCE_BYTES, SALT_BYTES, buildHeader, chunkNonce, deriveArtifactKeyBytes } from "../src/crypto.js";
import { buf, loadVectors } from "./vectors/harness.js";

const root = resolve(import.meta.dirname, "../../..");
const spec = readFileSync(join(root, "docs/format.md"), "utf8");
const vectors = loadVectors();

/** The text of one `## title` section (up to the next heading of the same level). */
function section(title: string): string {
  const start = spec.indexOf(`\n## ${title}\n`);
  if (start < 0) throw new Error(`docs/format.md has no section "## ${title}"`);
  const end = spec.indexOf("\n## ", start + 4);
  return spec.slice(start, end < 0 ? undefined : end);
}

/** The fenced blocks of a section, in order. */
const blocks = (text: string): string[] => [...text.matchAll(/```[a-z]*\n([\s\S]*?)\n```/g)].map((m) => m[1]!);

describe("docs/format.md", () => {
  it("states the header layout and the constants the code uses", () => {
    const header = section("The header (41 bytes)");
    expect(HEADER_BYTES).toBe(41);
    const rows = [...header.matchAll(/^\| (\d+) \| (\d+) \| (.+) \|$/gm)].map((m) => ({ offset: Number(m[1]), size: Number(m[2]), field: m[3]! }));
    expect(rows.map((r) => [r.offset, r.size])).toEqual([[0, 4], [4, 1], [5, 4], [9, SALT_BYTES]]);
    expect(rows.at(-1)!.offset + rows.at(-1)!.size).toBe(HEADER_BYTES);
    expect(rows[0]!.field).toContain(`\`${MAGIC}\` (\`${Buffer.from(MAGIC).toString("hex").match(/../g)!.join(" ")}\`)`);
    expect(rows[1]!.field).toContain(`= ${FORMAT_VERSION}`);
    // The layout is the one buildHeader writes.
    const salt = Buffer.alloc(32, 0xab);
    const built = buf(buildHeader(DEFAULT_CHUNK_SIZE, salt));
    expect(built.subarray(0, 4).toString("latin1")).toBe(MAGIC);
    expect(built[4]).toBe(FORMAT_VERSION);
    expect(built.readUInt32BE(5)).toBe(DEFAULT_CHUNK_SIZE);
    expect(built.subarray(9)).toEqual(salt);
    expect(header).toContain(`between ${MIN_CHUNK_SIZE} (16 KiB) and ${MAX_CHUNK_SIZE} (4 MiB) inclusive`);
    expect(header).toContain(`C = ${DEFAULT_CHUNK_SIZE} (1 MiB)`);
    expect(spec).toContain(`${NONCE_BYTES}-byte nonce and a ${TAG_BYTES}-byte tag`);
  });

  it("gives the size formula and a table the code reproduces", () => {
    const sizes = section("Sizes");
    expect(blocks(sizes)[0]).toBe(`E = ${HEADER_BYTES} + L + ${TAG_BYTES} * max(1, ceil(L / C))`);
    const rows = [...sizes.matchAll(/^\| (\d+) \| (\d+) \| (\d+) \| (\d+) \|$/gm)].map((m) => m.slice(1).map(Number) as [number, number, number, number]);
    expect(rows.length).toBeGreaterThanOrEqual(5);
    for (const [plain, chunk, chunks, stored] of rows) {
      expect({ plain, chunk, chunks, stored }).toEqual({ plain, chunk, chunks: chunkCount(plain, chunk), stored: encryptedSize(plain, chunk) });
      expect(plaintextSize(stored, chunk)).toBe(plain);
    }
    // Every vector's size is in the table.
    for (const v of vectors.artifacts) expect(rows).toContainEqual([v.plainSize, vectors.chunkSize, v.tags.length, v.encryptedSize]);
    expect(sizes).toContain(`E < ${encryptedSize(0, MIN_CHUNK_SIZE)}`);
    expect(() => plaintextSize(encryptedSize(0, MIN_CHUNK_SIZE) - 1, MIN_CHUNK_SIZE)).toThrow();
  });

  it("shows the AAD the code builds, for the vectors' context", () => {
    const envelope = section("The wrapped data key");
    const [, template, example] = blocks(envelope);
    expect(template).toBe('{"expiresAt":"<expiresAt>","grantee":"<grantee, lower-case>","operationId":"<operationId>","v":1}');
    expect(example).toBe(wrapAad(vectors.wrap.context));
    expect(example).toBe(vectors.wrap.aad);
    const { operationId, grantee, expiresAt } = vectors.wrap.context;
    expect(envelope).toContain(`operation \`${operationId}\`, grantee \`${grantee}\`,\nexpiry \`${expiresAt}\``);
  });

  it("gives HKDF inputs whose info and key are the code's and the vectors'", async () => {
    const hkdf = section("The artifact key (HKDF)");
    const info = blocks(hkdf)[1]!;
    expect(info).toBe(Buffer.from(`psa/v1\0${vectors.operationId}\0${vectors.path}`, "utf8").toString("hex"));
    expect(info).toBe(vectors.hkdfInfo);
    expect(hkdf).toContain(`operation \`${vectors.operationId}\` and path \`${vectors.path}\``);
    // The RFC 5869 steps as the spec writes them give the vectors' key.
    const key = await deriveArtifactKeyBytes(Buffer.from(vectors.dataKey, "hex"), Buffer.from(vectors.salt, "hex"), vectors.operationId, vectors.path);
    expect(buf(key).toString("hex")).toBe(vectors.artifactKey);
  });

  it("gives nonce examples the code produces", () => {
    const nonces = section("Chunks");
    expect(blocks(nonces)).toContain("nonce(i, final) = i as an 11-byte big-endian integer || (0x01 if final else 0x00)");
    expect(nonces).toContain(`chunk 0 of a longer object has the nonce \`${buf(chunkNonce(0, false)).toString("hex")}\``);
    expect(nonces).toContain(`chunk 258\nas the last chunk has \`${buf(chunkNonce(258, true)).toString("hex")}\``);
  });

  it("names layout 2's keys, entry and index as the store writes them", async () => {
    const { entriesPrefix, entryName, INDEX_MARGIN_MS, pathHash, serializeEntry } = await import("../src/layout-v2.js");
    const { LAYOUT_VERSION } = await import("../src/metadata.js");
    const layouts = section("Layouts");
    expect(LAYOUT_VERSION).toBe(2);
    expect(layouts).toContain("operations/<operationId>/entries/<incarnation>/<ms>-<hash>.json");
    expect(entriesPrefix({ operationId: "op", incarnation: "ab".repeat(16) })).toBe(`operations/op/entries/${"ab".repeat(16)}/`);
    // 13 decimal digits of ms, then the first 32 hex digits of SHA-256 of the path's UTF-8 bytes.
    expect(entryName(1796600000000, "a/b.txt")).toBe(`1796600000000-${pathHash("a/b.txt")}.json`);
    expect(entryName(5, "x")).toMatch(/^0000000000005-[0-9a-f]{32}\.json$/);
    expect(pathHash("a/b.txt")).toBe(createHash("sha256").update("a/b.txt").digest("hex").slice(0, 32));
    expect(layouts).toContain("`^\\d{13}-[0-9a-f]{32}\\.json$`");
    // The margins the page states.
    expect(INDEX_MARGIN_MS).toEqual({ local: 60_000, remote: 16 * 60_000 });
    expect(layouts).toContain("(16 minutes on S3/R2");
    expect(layouts).toContain("1 minute on local disk");
    // The entry example's fields, in the order the store writes them.
    const example = blocks(layouts).find((b) => b.startsWith('{"path"'))!;
    const written = serializeEntry({ path: "p", size: 0, encryptedSize: 57, contentType: "t", chunkSize: 1, createdAt: "c", etag: "e" }).toString();
    expect(Object.keys(JSON.parse(written))).toEqual([...example.matchAll(/"(\w+)":/g)].map((m) => m[1]));
  });

  it("describes the committed vectors as they are", () => {
    const check = section("Checking an implementation against the vectors");
    const sizes = vectors.artifacts.map((v) => v.plainSize);
    expect(check).toContain(`for sizes ${sizes.slice(0, -1).join(", ")} (exactly one full chunk, final) and ${sizes.at(-1)}`);
    for (const v of vectors.artifacts.filter((a) => a.file !== undefined)) expect(check).toContain(`\`${v.file}\``);
    expect(check).toContain(`\`chunkSize\` (${vectors.chunkSize})`);
  });
});
