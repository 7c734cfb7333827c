/**
 * Tamper fuzzing through the HTTP server (issues 7 and 20), fewer cases than the store-level fuzzer
 * (packages/artifacts/test/fuzz): random edits of stored objects, metadata.json and (layout 2)
 * entry objects on local storage, on operations in layout 1 (the kept v1 writer) and layout 2,
 * then signed GETs (whole and ranged) over a raw socket. Property: an answer is either a
 * clean, complete 200/206 with exactly the plaintext (or the asked slice), or a failure: an error
 * status with the API's JSON body, or a connection cut before Content-Length bytes arrived, having
 * released only plaintext. A failed read never ends as a clean, complete 200.
 *
 * Reproduce with `FUZZ_SEED=<printed seed>`; `FUZZ_HTTP_RUNS` changes the number of cases.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  artifactObjectKey,
  encryptedSize,
  LAYOUT_VERSION,
  metadataKey,
  unwrapDataKey,
  type ArtifactEntry,
  type OperationMetadata,
} from "@personal-server/artifacts/internal";
import { signRequest } from "@personal-server/artifacts/client";
import { seal } from "../../../../packages/artifacts/test/vectors/harness.js";
import {
  rawExchange,
  rawRequestBytes,
  SecretWatch,
  startInProcess,
  tempDir,
  wallet,
  watchedSigner,
  WRITER_TOKEN,
  type InProcessServer,
  type RawAnswer,
} from "./harness.js";

const SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : Date.now() % 2 ** 31;
/** Cases per layout (about 7-15 ms a case here). */
const RUNS = process.env.FUZZ_HTTP_RUNS !== undefined ? Number(process.env.FUZZ_HTTP_RUNS) : 300;
const C = 16 * 1024; // small chunks: chunk boundaries at affordable sizes
const BIG_C = 1024 * 1024;
const TAG = 16;
const HEADER = 41;

const watch = new SecretWatch();
const owner = watchedSigner(wallet(), watch);
const other = watchedSigner(wallet(), watch);
let server: InProcessServer;
let dir: string;

interface Art {
  op: string;
  path: string;
  plain: Buffer;
  chunkSize: number;
  file: string;
  dataKey: Buffer;
  /** Layout 2: its entry object's key. */
  entryKey?: string;
}
const arts: Art[] = [];
const pristine = new Map<string, Buffer>();
const touched = new Set<string>();
const outcomes = new Map<string, number>();

function write(rel: string, bytes: Buffer | string): void {
  touched.add(rel);
  mkdirSync(dirname(join(dir, rel)), { recursive: true });
  writeFileSync(join(dir, rel), bytes);
}
function remove(rel: string): void {
  touched.add(rel);
  rmSync(join(dir, rel), { force: true });
}
function restore(): void {
  for (const rel of touched) {
    const original = pristine.get(rel);
    if (original === undefined) rmSync(join(dir, rel), { force: true });
    else writeFileSync(join(dir, rel), original);
  }
  touched.clear();
}

type Edit =
  | { t: "flip"; at: number; bit: number }
  | { t: "truncate"; at: number }
  | { t: "insert"; at: number; bytes: Uint8Array }
  | { t: "delete"; at: number; len: number }
  | { t: "swapChunks" }
  | { t: "dupChunk" }
  | { t: "headerChunkSize"; value: number }
  | { t: "replace"; from: number }
  | { t: "metaResize"; size: number }
  | { t: "metaRechunk" }
  | { t: "metaGrantee"; readAsNew: boolean }
  | { t: "metaExpired" }
  | { t: "metaRawFlip"; at: number; bit: number }
  | { t: "metaDropEntry" }
  | { t: "deleteObject" }
  | { t: "entryRawFlip"; at: number; bit: number }
  | { t: "entryFromOtherOperation" }
  | { t: "metaIncarnation" };

const editArb = (layout: 1 | 2): fc.Arbitrary<Edit> => fc.oneof(
  { weight: 4, arbitrary: fc.record({ t: fc.constant("flip" as const), at: fc.nat(), bit: fc.nat(7) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("truncate" as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("insert" as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 20 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("delete" as const), at: fc.nat(), len: fc.integer({ min: 1, max: 40 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("swapChunks" as const) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("dupChunk" as const) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("headerChunkSize" as const), value: fc.constantFrom(C / 2, C + 1, 2 * C, BIG_C, 0) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("replace" as const), from: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("metaResize" as const), size: fc.nat(4 * C) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("metaRechunk" as const) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("metaGrantee" as const), readAsNew: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("metaExpired" as const) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("metaRawFlip" as const), at: fc.nat(), bit: fc.nat(6) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("metaDropEntry" as const) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("deleteObject" as const) }) },
  // Layout 2 only: the metaResize/metaRechunk/metaDropEntry edits above edit the entry object there.
  ...(layout === 2
    ? [
        { weight: 2, arbitrary: fc.record({ t: fc.constant("entryRawFlip" as const), at: fc.nat(), bit: fc.nat(6) }) },
        { weight: 1, arbitrary: fc.record({ t: fc.constant("entryFromOtherOperation" as const) }) },
        { weight: 1, arbitrary: fc.record({ t: fc.constant("metaIncarnation" as const) }) },
      ]
    : []),
);

/** What one edit implies: who reads, whether a clean 200 is a violation, and an answer it alone allows. */
interface Applied {
  reader: typeof owner;
  mustFail: boolean;
  also?: { status: number; code: string };
}

function apply(art: Art, e: Edit): Applied {
  const o = pristine.get(art.file)!;
  const metaFile = metadataKey(art.op);
  const meta = () => JSON.parse(pristine.get(metaFile)!.toString()) as OperationMetadata & { artifacts: ArtifactEntry[]; incarnation?: string };
  // The artifact's entry: in metadata.json's artifacts[] (layout 1) or its own object (layout 2).
  const editEntry = (change: (entry: ArtifactEntry, m: { artifacts: ArtifactEntry[] }) => void): ArtifactEntry => {
    if (art.entryKey === undefined) {
      const m = meta();
      const entry = m.artifacts.find((a) => a.path === art.path)!;
      change(entry, m);
      write(metaFile, JSON.stringify(m));
      return entry;
    }
    const entry = JSON.parse(pristine.get(art.entryKey)!.toString()) as ArtifactEntry;
    const holder = { artifacts: [entry] };
    change(entry, holder);
    if (holder.artifacts.length === 0) remove(art.entryKey);
    else write(art.entryKey, JSON.stringify(entry));
    return entry;
  };
  const stride = art.chunkSize + TAG;
  const chunks = Math.max(1, Math.ceil((o.length - HEADER) / stride));
  const chunk = (i: number) => o.subarray(HEADER + i * stride, Math.min(o.length, HEADER + (i + 1) * stride));
  const object = (bytes: Buffer) => {
    write(art.file, bytes);
    return { reader: owner, mustFail: !bytes.equals(o) };
  };
  switch (e.t) {
    case "flip": {
      const copy = Buffer.from(o);
      const at = e.at % copy.length;
      copy[at] = copy[at]! ^ (1 << e.bit);
      return object(copy);
    }
    case "truncate":
      return object(Buffer.from(o.subarray(0, e.at % o.length)));
    case "insert": {
      const at = e.at % (o.length + 1);
      return object(Buffer.concat([o.subarray(0, at), Buffer.from(e.bytes), o.subarray(at)]));
    }
    case "delete": {
      const at = e.at % o.length;
      return object(Buffer.concat([o.subarray(0, at), o.subarray(at + e.len)]));
    }
    case "swapChunks":
      return chunks < 2 ? object(o) : object(Buffer.concat([o.subarray(0, HEADER), chunk(1), chunk(0), ...Array.from({ length: chunks - 2 }, (_, i) => chunk(i + 2))]));
    case "dupChunk":
      return object(Buffer.concat([o.subarray(0, HEADER), chunk(0), ...Array.from({ length: chunks }, (_, i) => chunk(i))]));
    case "headerChunkSize": {
      const copy = Buffer.from(o);
      copy.writeUInt32BE(e.value, 5);
      return object(copy);
    }
    case "replace": {
      const donor = arts.filter((a) => a !== art)[e.from % (arts.length - 1)]!;
      return object(Buffer.from(pristine.get(donor.file)!));
    }
    case "deleteObject":
      remove(art.file);
      return { reader: owner, mustFail: true };
    case "metaResize": {
      editEntry((entry) => Object.assign(entry, { size: e.size, encryptedSize: encryptedSize(e.size, entry.chunkSize) }));
      return { reader: owner, mustFail: e.size !== art.plain.length };
    }
    case "metaRechunk": {
      // Another (size, chunk size) pair with the same stored length.
      const entry = editEntry((entry) => {
        const alt = art.chunkSize === C ? 4 * C : C;
        const body = entry.encryptedSize - HEADER;
        entry.chunkSize = alt;
        entry.size = Math.max(0, body - TAG * Math.max(1, Math.ceil(body / (alt + TAG))));
        entry.encryptedSize = encryptedSize(entry.size, alt);
      });
      return { reader: owner, mustFail: entry.size !== art.plain.length };
    }
    case "metaGrantee": {
      const m = meta();
      m.grantee = other.address.toLowerCase();
      write(metaFile, JSON.stringify(m));
      return { reader: e.readAsNew ? other : owner, mustFail: true };
    }
    case "metaExpired": {
      const m = meta();
      m.expiresAt = new Date(Date.now() - 1000).toISOString();
      write(metaFile, JSON.stringify(m));
      return { reader: owner, mustFail: true };
    }
    case "metaRawFlip": {
      const bytes = Buffer.from(pristine.get(metaFile)!);
      const at = e.at % bytes.length;
      bytes[at] = bytes[at]! ^ (1 << e.bit);
      write(metaFile, bytes);
      // `"version":1` flipped to a newer layout: a layout this release cannot check, 501 (docs/format.md#layouts).
      if (namesNewerLayout(bytes)) return { reader: owner, mustFail: true, also: { status: 501, code: "unsupported_layout" } };
      return { reader: owner, mustFail: false };
    }
    case "metaDropEntry": {
      editEntry((_, m) => (m.artifacts = m.artifacts.filter((a) => a.path !== art.path)));
      return { reader: owner, mustFail: true };
    }
    case "entryRawFlip": {
      // Invalid JSON, another path (its name no longer its hash), or another field value: any may
      // read back only if the bytes say the same thing, and nothing but plaintext is released.
      const bytes = Buffer.from(pristine.get(art.entryKey!)!);
      const at = e.at % bytes.length;
      bytes[at] = bytes[at]! ^ (1 << e.bit);
      write(art.entryKey!, bytes);
      return { reader: owner, mustFail: false };
    }
    case "entryFromOtherOperation": {
      // The other operation's entry for the same path (same sizes, another ETag): entries carry no key binding,
      // and the object is still this operation's, so the read may succeed, exactly.
      const donor = arts.find((a) => a.op !== art.op && a.path === art.path)!;
      write(art.entryKey!, pristine.get(donor.entryKey!)!);
      return { reader: owner, mustFail: false };
    }
    case "metaIncarnation": {
      // Another incarnation: none of these entries are the operation's (404), never listed.
      write(metaFile, JSON.stringify({ ...meta(), incarnation: randomBytes(16).toString("hex") }));
      return { reader: owner, mustFail: true };
    }
  }
}

const ERROR_CODES: Record<number, string[]> = {
  404: ["not_found"],
  410: ["expired"],
  416: ["range_not_satisfiable"],
  500: ["integrity", "config"],
};

/** Judges one answer; returns a violation or null. */
function namesNewerLayout(bytes: Buffer): boolean {
  try {
    const version = (JSON.parse(bytes.toString()) as { version?: unknown } | null)?.version;
    return typeof version === "number" && Number.isSafeInteger(version) && version > LAYOUT_VERSION;
  } catch {
    return false;
  }
}

function judge(
  art: Art,
  range: { start: number; end: number } | undefined,
  answer: RawAnswer,
  mustFail: boolean,
  label: string,
  also?: Applied["also"],
): string | null {
  const wanted = range ? art.plain.subarray(range.start, range.end + 1) : art.plain;
  const what = `${label} ${art.op}/${art.path}${range ? ` bytes=${range.start}-${range.end}` : ""}`;
  const key = answer.status === 200 || answer.status === 206 ? (answer.cut ? `${answer.status} cut` : `${answer.status} clean`) : String(answer.status);
  outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
  if (also !== undefined && answer.status !== also.status) return `${what}: HTTP ${answer.status}, expected ${also.status} ${also.code}`;
  if (answer.status === 200 || answer.status === 206) {
    if (answer.status !== (range ? 206 : 200)) return `${what}: HTTP ${answer.status}`;
    // Whatever arrived must be plaintext, at the right place.
    if (!wanted.subarray(0, answer.body.length).equals(answer.body) || answer.body.length > wanted.length) {
      return `${what}: HTTP ${answer.status} released ${answer.body.length} bytes that are not the plaintext`;
    }
    if (answer.cut) return null; // a failed read: the connection was cut before Content-Length bytes
    if (mustFail) return `${what}: a clean, complete HTTP ${answer.status} after a tampering edit`;
    if (!answer.body.equals(wanted) || Number(answer.headers["content-length"]) !== wanted.length) {
      return `${what}: a clean, complete HTTP ${answer.status} with ${answer.body.length} bytes (Content-Length ${answer.headers["content-length"]}), expected ${wanted.length}`;
    }
    return null;
  }
  const allowed = also?.status === answer.status ? [also.code] : ERROR_CODES[answer.status];
  const code = (answer.json as { error?: { code?: string } } | undefined)?.error?.code;
  if (allowed === undefined || code === undefined || !allowed.includes(code)) {
    return `${what}: HTTP ${answer.status} ${answer.body.toString("utf8").slice(0, 200)}`;
  }
  if (answer.status === 416 && !range) return `${what}: 416 without a Range`;
  return null;
}

async function get(art: Art, reader: typeof owner, range?: { start: number; end: number }): Promise<RawAnswer> {
  const target = `/api/v1/operations/${art.op}/artifacts/${art.path}`;
  const auth = await signRequest(reader, { audience: server.url, method: "GET", uri: target });
  const answer = await rawExchange(server.url, rawRequestBytes("GET", target, { authorization: auth, ...(range ? { range: `bytes=${range.start}-${range.end}` } : {}) }));
  if (answer.status >= 400) watch.see("error body", answer.body);
  return answer;
}

async function writePool(layout: 1 | 2): Promise<void> {
  dir = tempDir(`http-tamper-v${layout}`);
  arts.length = 0;
  pristine.clear();
  outcomes.clear();
  // A tampered metadata.json can make the owner's signed reads end before the grantee check, and each
  // such recovered signature counts against this one client's failure budget: raise it (never disable it).
  server = await startInProcess({ ARTIFACTS_LOCAL_DIR: dir, ARTIFACTS_AUTH_FAILURE_LIMIT: "100000" }, watch, { createLayout: layout });
  const pool: [string, number, number][] = [
    ["empty.bin", 0, C],
    ["tiny.txt", 100, C],
    ["edge.bin", C, C],
    ["edge-plus.bin", C + 1, C],
    ["three.bin", 2 * C + 777, C],
    ["big/one.bin", 5000, BIG_C],
    ["big/two.bin", BIG_C + 3, BIG_C],
  ];
  for (const op of ["http-fuzz-a", "http-fuzz-b"]) {
    const created = await rawExchange(
      server.url,
      rawRequestBytes("POST", "/api/v1/operations", { authorization: `Bearer ${WRITER_TOKEN}`, "content-type": "application/json" }, JSON.stringify({ grantee: owner.address, operationId: op })),
    );
    expect(created.status).toBe(201);
    for (const [path, size, chunkSize] of pool) {
      const plain = randomBytes(size);
      const put = await rawExchange(server.url, rawRequestBytes("PUT", `/api/v1/operations/${op}/artifacts/${path}`, { authorization: `Bearer ${WRITER_TOKEN}` }, plain));
      expect(put.status).toBe(201);
      const metaFile = metadataKey(op);
      const meta = JSON.parse(readFileSync(join(dir, metaFile), "utf8")) as OperationMetadata & { artifacts: ArtifactEntry[]; incarnation?: string };
      const dataKey = unwrapDataKey(meta.wrappedKey, server.config.masterKeys, meta);
      const file = artifactObjectKey(op, path);
      // Layout 2: `entries/<incarnation>/<ms>-<first 32 hex of sha256(path)>.json` (docs/format.md#layouts).
      const entriesDir = `operations/${op}/entries/${meta.incarnation}`;
      const hash = createHash("sha256").update(path).digest("hex").slice(0, 32);
      const entryKey = layout === 2 ? `${entriesDir}/${readdirSync(join(dir, entriesDir)).find((n) => n.endsWith(`-${hash}.json`))!}` : undefined;
      if (chunkSize !== BIG_C) {
        // The format allows 16 KiB..4 MiB chunks; small ones put chunk edges within a fuzzer's reach.
        writeFileSync(join(dir, file), await seal(plain, { dataKey, operationId: op, path, chunkSize }));
        const fix = (entry: ArtifactEntry) => Object.assign(entry, { chunkSize, encryptedSize: encryptedSize(size, chunkSize) });
        if (entryKey === undefined) {
          fix(meta.artifacts.find((a) => a.path === path)!);
          writeFileSync(join(dir, metaFile), JSON.stringify(meta));
        } else writeFileSync(join(dir, entryKey), JSON.stringify(fix(JSON.parse(readFileSync(join(dir, entryKey), "utf8")) as ArtifactEntry)));
      }
      arts.push({ op, path, plain, chunkSize, file, dataKey, ...(entryKey === undefined ? {} : { entryKey }) });
    }
  }
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(dir, rel))) {
      const child = `${rel}/${name}`;
      if (statSync(join(dir, child)).isDirectory()) walk(child);
      else pristine.set(child, readFileSync(join(dir, child)));
    }
  };
  walk("operations");
  for (const art of arts) expect(judge(art, undefined, await get(art, owner), false, "pristine")).toBeNull();
}

afterAll(() => {
  expect(watch.leaks()).toEqual([]);
});

describe.each([1, 2] as const)("tamper fuzzing through the HTTP server (local storage, layout %i)", (layout) => {
  beforeAll(() => writePool(layout), 60_000);
  afterAll(async () => {
    await server?.close();
  });

  it(`a failed read never ends as a clean, complete 200 (${RUNS} cases)`, async () => {
    console.log(`[fuzz] http tamper (layout ${layout}): seed ${SEED}, ${RUNS} cases (reproduce with FUZZ_SEED=${SEED})`);
    let cases = 0;
    await fc.assert(
      fc.asyncProperty(fc.nat(), editArb(layout), fc.nat(), fc.nat(), async (target, edit, a, b) => {
        const art = arts[target % arts.length]!;
        try {
          const { reader, mustFail, also } = apply(art, edit);
          cases++;
          const whole = judge(art, undefined, await get(art, reader), mustFail, edit.t, also);
          if (whole !== null) throw new Error(whole);
          if (art.plain.length > 0) {
            const start = a % art.plain.length;
            const range = { start, end: Math.min(art.plain.length - 1, start + (b % (2 * C))) };
            // A range that misses the damaged chunk may still be served, exactly: mustFail=false.
            const ranged = judge(art, range, await get(art, reader, range), false, edit.t, also);
            if (ranged !== null) throw new Error(ranged);
          }
        } finally {
          restore();
        }
      }),
      { seed: SEED, numRuns: RUNS },
    );
    console.log(
      `[fuzz] http tamper (layout ${layout}): ${cases} cases, seed ${SEED}; answers: ${[...outcomes.entries()]
        .sort()
        .map(([k, n]) => `${k} x${n}`)
        .join(", ")}`,
    );
    expect(cases).toBeGreaterThanOrEqual(RUNS);
  }, 300_000);
});
