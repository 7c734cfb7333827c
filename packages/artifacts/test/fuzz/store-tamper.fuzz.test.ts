/**
 * Property-based tamper fuzzing of the store on the local backend (issue 7).
 *
 * A pool of operations and artifacts is written once; every case applies one random mutation to
 * the stored files (object bytes, headers, chunks, metadata.json, swaps between paths and
 * operations), reads through the store, and restores the pristine bytes. Property: each read
 * returns exactly the original plaintext (and the right size), or fails with an ArtifactError of
 * the code the edit implies, having released only bytes that match the plaintext.
 *
 * Reproduce a failure with `FUZZ_SEED=<printed seed>`; `FUZZ_RUNS` changes the number of cases.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { Readable } from "node:stream";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ArtifactError,
  createArtifactStore,
  loadConfig,
  type ArtifactStore,
  type ArtifactsConfig,
} from "@personal-server/artifacts";
import {
  artifactObjectKey,
  DEFAULT_CHUNK_SIZE,
  encryptedSize,
  LAYOUT_VERSION,
  metadataKey,
  unwrapDataKey,
  type OperationMetadata,
} from "@personal-server/artifacts/internal";
import { HEADER_BYTES, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE, TAG_BYTES } from "../../src/crypto.js";
import { seal } from "../vectors/harness.js";

/** Obviously fake key (never a real secret). */
const MASTER_KEY = Buffer.alloc(32, 0x5a).toString("base64");
const G1 = "0x00000000000000000000000000000000000000a1";
const G2 = "0x00000000000000000000000000000000000000b2";
const SMALL_C = MIN_CHUNK_SIZE; // 16 KiB: chunk boundaries at sizes a fuzzer can afford
const BIG_C = DEFAULT_CHUNK_SIZE;

const SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : Date.now() % 2 ** 31;
const RUNS = process.env.FUZZ_RUNS !== undefined ? Number(process.env.FUZZ_RUNS) : 2000;

type Code = ArtifactError["code"];

interface Op {
  id: string;
  grantee: string;
  dataKey: Buffer;
  /** Relative file of metadata.json under the local root. */
  metaFile: string;
}

interface Art {
  op: Op;
  path: string;
  plain: Buffer;
  chunkSize: number;
  /** Relative file of the object under the local root. */
  file: string;
  /** Its plaintext encrypted under other keys, paths or chunk sizes (made once, in beforeAll). */
  encryptedAs?: Record<EncryptAs, Buffer>;
}

type EncryptAs = "otherPath" | "otherOp" | "randomKey" | "otherChunkSize";

/** What a read must do after a mutation. */
type Expectation =
  | { kind: "exact" }
  | { kind: "fail"; codes: Code[] }
  | { kind: "either"; codes: Code[] };

interface Read {
  art: Art;
  requester: string;
  range?: { start: number; end?: number };
}

interface Applied {
  /** Label for the summary. */
  label: string;
  /** What a read should do (called for every read of the case). */
  expect(read: Read): Expectation;
  /** Requester for reads of the target's operation, if the mutation changes who may read. */
  requester?: string;
}

const EXACT: Expectation = { kind: "exact" };
const BROAD: Code[] = ["integrity", "expired", "not_found", "config", "range_not_satisfiable"];

function namesNewerLayout(bytes: Buffer): boolean {
  try {
    const version = (JSON.parse(bytes.toString()) as { version?: unknown } | null)?.version;
    return typeof version === "number" && Number.isSafeInteger(version) && version > LAYOUT_VERSION;
  } catch {
    return false;
  }
}

let dir: string;
let config: ArtifactsConfig;
let store: ArtifactStore;
let ops: Op[] = [];
let arts: Art[] = [];
/** `arts` with each small-chunk artifact 4 times: multi-MiB reads are costly, chunk edges are cheap with 16 KiB. */
let targets: Art[] = [];
/** Every file under the root after setup, byte for byte. */
const pristine = new Map<string, Buffer>();
/** Files written by the current case (restored, or removed if new, after it). */
const touched = new Set<string>();
const tally = new Map<string, { cases: number; failedReads: number; okReads: number }>();
let released = 0;

function abs(rel: string): string {
  return join(dir, rel);
}
function writeRel(rel: string, bytes: Buffer | string): void {
  touched.add(rel);
  mkdirSync(dirname(abs(rel)), { recursive: true });
  writeFileSync(abs(rel), bytes);
}
function removeRel(rel: string): void {
  touched.add(rel);
  rmSync(abs(rel), { force: true });
}
function restore(): void {
  for (const rel of touched) {
    const original = pristine.get(rel);
    if (original === undefined) rmSync(abs(rel), { force: true });
    else {
      mkdirSync(dirname(abs(rel)), { recursive: true });
      writeFileSync(abs(rel), original);
    }
  }
  touched.clear();
}
function walk(rel: string, out: string[]): string[] {
  for (const name of readdirSync(abs(rel))) {
    const child = rel === "" ? name : `${rel}/${name}`;
    if (statSync(abs(child)).isDirectory()) walk(child, out);
    else out.push(child);
  }
  return out;
}

function metaOf(op: Op): OperationMetadata {
  return JSON.parse(pristine.get(op.metaFile)!.toString()) as OperationMetadata;
}
function writeMeta(op: Op, m: unknown): void {
  writeRel(op.metaFile, `${JSON.stringify(m, null, 2)}\n`);
}

async function drain(body: Readable): Promise<{ bytes: Buffer; error: unknown }> {
  const parts: Buffer[] = [];
  try {
    for await (const part of body) parts.push(part as Buffer);
    return { bytes: Buffer.concat(parts), error: undefined };
  } catch (error) {
    return { bytes: Buffer.concat(parts), error };
  }
}

interface Outcome {
  bytes: Buffer;
  error: unknown;
  size?: number;
  range?: { start: number; end: number };
}

async function attempt(read: Read): Promise<Outcome> {
  const run = async (): Promise<Outcome> => {
    try {
      const result = await store.getArtifact(read.art.op.id, read.art.path, {
        requester: read.requester,
        ...(read.range ? { range: read.range } : {}),
      });
      const drained = await drain(result.body);
      return { ...drained, size: result.info.size, ...(result.range ? { range: result.range } : {}) };
    } catch (error) {
      return { bytes: Buffer.alloc(0), error };
    }
  };
  // A read that never settles is a failure of its own (a hung download).
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<Outcome>((resolve) => {
    timer = setTimeout(() => resolve({ bytes: Buffer.alloc(0), error: new Error("read did not settle within 10 s") }), 10_000);
  });
  try {
    return await Promise.race([run(), hang]);
  } finally {
    clearTimeout(timer);
  }
}

function expectedSlice(read: Read): Buffer {
  const { plain } = read.art;
  if (!read.range) return plain;
  const end = Math.min(read.range.end ?? plain.length - 1, plain.length - 1);
  return plain.subarray(read.range.start, end + 1);
}

/** Checks one read against its expectation; returns a description of the violation, or null. */
function judge(read: Read, outcome: Outcome, expectation: Expectation): string | null {
  const wanted = expectedSlice(read);
  const what = `${read.art.op.id}/${read.art.path}${read.range ? ` range ${JSON.stringify(read.range)}` : ""}`;
  released += outcome.bytes.length;
  // Whatever happened, every released byte matches the plaintext at its position.
  if (!wanted.subarray(0, outcome.bytes.length).equals(outcome.bytes) || outcome.bytes.length > wanted.length) {
    return `${what}: released ${outcome.bytes.length} bytes that are not a prefix of the plaintext`;
  }
  if (outcome.error === undefined) {
    if (expectation.kind === "fail") return `${what}: read succeeded, expected ${expectation.codes.join("|")}`;
    if (!outcome.bytes.equals(wanted)) return `${what}: read ended cleanly with ${outcome.bytes.length} of ${wanted.length} bytes`;
    if (outcome.size !== read.art.plain.length) return `${what}: read succeeded but reported size ${outcome.size}, real ${read.art.plain.length}`;
    if (read.range) {
      const end = Math.min(read.range.end ?? read.art.plain.length - 1, read.art.plain.length - 1);
      if (outcome.range?.start !== read.range.start || outcome.range.end !== end) {
        return `${what}: reported range ${JSON.stringify(outcome.range)}, expected ${read.range.start}-${end}`;
      }
    }
    return null;
  }
  if (!(outcome.error instanceof ArtifactError)) {
    return `${what}: failed with a non-ArtifactError: ${String((outcome.error as Error)?.stack ?? outcome.error)}`;
  }
  const code = outcome.error.code;
  if (expectation.kind === "exact") return `${what}: expected the plaintext, got ${code}: ${outcome.error.message}`;
  if (!expectation.codes.includes(code)) {
    return `${what}: failed with ${code} (${outcome.error.message}), expected ${expectation.codes.join("|")}`;
  }
  return null;
}

// ---- object surgery -------------------------------------------------------------------------

/** Stored byte offsets of chunk boundaries (header end, then after each chunk). */
function boundaries(art: Art, length: number): number[] {
  const out = [0, 4, 5, 9, HEADER_BYTES];
  for (let at = HEADER_BYTES + art.chunkSize + TAG_BYTES; at < length; at += art.chunkSize + TAG_BYTES) out.push(at);
  out.push(Math.max(0, length - TAG_BYTES), length);
  return out;
}

/** A position: anywhere, or near an interesting offset (chunk boundaries, header fields, the last tag). */
type Pos = { any: number } | { near: number; delta: number };
const posArb: fc.Arbitrary<Pos> = fc.oneof(
  fc.record({ any: fc.nat() }),
  fc.record({ near: fc.nat(), delta: fc.integer({ min: -2, max: 2 }) }),
);
function resolvePos(p: Pos, art: Art, length: number): number {
  if ("any" in p) return length === 0 ? 0 : p.any % (length + 1);
  const marks = boundaries(art, length);
  return Math.min(length, Math.max(0, marks[p.near % marks.length]! + p.delta));
}

/** [start, end) of stored chunk i (clamped to the object). */
function chunkSpan(art: Art, object: Buffer, i: number): [number, number] {
  const stride = art.chunkSize + TAG_BYTES;
  const start = Math.min(object.length, HEADER_BYTES + i * stride);
  return [start, Math.min(object.length, start + stride)];
}
function chunkTotal(art: Art, object: Buffer): number {
  return Math.max(1, Math.ceil((object.length - HEADER_BYTES) / (art.chunkSize + TAG_BYTES)));
}

type ObjectEdit =
  | { t: "flip"; at: Pos[]; bit: number }
  | { t: "insert"; at: Pos; bytes: Uint8Array }
  | { t: "delete"; at: Pos; len: number }
  | { t: "truncate"; at: Pos }
  | { t: "append"; bytes: Uint8Array }
  | { t: "appendLastChunk" }
  | { t: "dupChunk"; i: number; j: number }
  | { t: "swapChunks"; i: number; j: number }
  | { t: "dropChunk"; i: number }
  | { t: "headerChunkSize"; value: number }
  | { t: "headerByte"; at: number; value: number }
  | { t: "salt" }
  | { t: "empty" }
  | { t: "delete-object" }
  | { t: "spliceHeader"; from: number }
  | { t: "replace"; from: number }
  | { t: "encryptAs"; as: EncryptAs };

const CHUNK_SIZE_VALUES = [0, 1, SMALL_C - 1, SMALL_C, SMALL_C + 1, 2 * SMALL_C, BIG_C, MAX_CHUNK_SIZE, MAX_CHUNK_SIZE + 1, 0xffffffff];

const objectEditArb: fc.Arbitrary<ObjectEdit> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ t: fc.constant("flip" as const), at: fc.array(posArb, { minLength: 1, maxLength: 3 }), bit: fc.integer({ min: 0, max: 7 }) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("insert" as const), at: posArb, bytes: fc.uint8Array({ minLength: 1, maxLength: 40 }) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("delete" as const), at: posArb, len: fc.oneof(fc.integer({ min: 1, max: 40 }), fc.constantFrom(TAG_BYTES, SMALL_C, SMALL_C + TAG_BYTES)) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant("truncate" as const), at: posArb }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("append" as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 40 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("appendLastChunk" as const) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("dupChunk" as const), i: fc.nat(4), j: fc.nat(4) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("swapChunks" as const), i: fc.nat(4), j: fc.nat(4) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("dropChunk" as const), i: fc.nat(4) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("headerChunkSize" as const), value: fc.oneof(fc.constantFrom(...CHUNK_SIZE_VALUES), fc.nat()) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("headerByte" as const), at: fc.nat(HEADER_BYTES - 1), value: fc.nat(255) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("salt" as const) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("empty" as const) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("delete-object" as const) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("spliceHeader" as const), from: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("replace" as const), from: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({ t: fc.constant("encryptAs" as const), as: fc.constantFrom("otherPath" as const, "otherOp" as const, "randomKey" as const, "otherChunkSize" as const) }),
  },
);

function pick<T>(list: readonly T[], n: number): T {
  return list[n % list.length]!;
}

function others(art: Art): Art[] {
  return arts.filter((a) => a !== art);
}

/** The mutated bytes of `art`'s object, or null to delete it. */
function editObject(art: Art, e: ObjectEdit): Buffer | null {
  const o = pristine.get(art.file)!;
  const n = chunkTotal(art, o);
  switch (e.t) {
    case "flip": {
      const copy = Buffer.from(o);
      if (copy.length === 0) return copy;
      for (const p of e.at) {
        const at = Math.min(copy.length - 1, resolvePos(p, art, copy.length));
        copy[at] = copy[at]! ^ (1 << e.bit);
      }
      return copy;
    }
    case "insert": {
      const at = resolvePos(e.at, art, o.length);
      return Buffer.concat([o.subarray(0, at), Buffer.from(e.bytes), o.subarray(at)]);
    }
    case "delete": {
      const at = resolvePos(e.at, art, o.length);
      return Buffer.concat([o.subarray(0, at), o.subarray(Math.min(o.length, at + e.len))]);
    }
    case "truncate":
      return Buffer.from(o.subarray(0, resolvePos(e.at, art, o.length)));
    case "append":
      return Buffer.concat([o, Buffer.from(e.bytes)]);
    case "appendLastChunk": {
      const [s, end] = chunkSpan(art, o, n - 1);
      return Buffer.concat([o, o.subarray(s, end)]);
    }
    case "dupChunk": {
      const [s, end] = chunkSpan(art, o, e.i % n);
      const [at] = chunkSpan(art, o, e.j % (n + 1));
      return Buffer.concat([o.subarray(0, at), o.subarray(s, end), o.subarray(at)]);
    }
    case "swapChunks": {
      const i = Math.min(e.i % n, e.j % n);
      const j = Math.max(e.i % n, e.j % n);
      const [is, ie] = chunkSpan(art, o, i);
      const [js, je] = chunkSpan(art, o, j);
      if (i === j) return Buffer.concat([o.subarray(0, is), o.subarray(is, ie), o.subarray(ie)]);
      return Buffer.concat([o.subarray(0, is), o.subarray(js, je), o.subarray(ie, js), o.subarray(is, ie), o.subarray(je)]);
    }
    case "dropChunk": {
      const [s, end] = chunkSpan(art, o, e.i % n);
      return Buffer.concat([o.subarray(0, s), o.subarray(end)]);
    }
    case "headerChunkSize": {
      const copy = Buffer.from(o);
      copy.writeUInt32BE(e.value >>> 0, 5);
      return copy;
    }
    case "headerByte": {
      const copy = Buffer.from(o);
      copy[e.at] = e.value;
      return copy;
    }
    case "salt": {
      const copy = Buffer.from(o);
      randomBytes(32).copy(copy, 9);
      return copy;
    }
    case "empty":
      return Buffer.alloc(0);
    case "delete-object":
      return null;
    case "spliceHeader": {
      const donor = pristine.get(pick(others(art), e.from).file)!;
      return Buffer.concat([donor.subarray(0, HEADER_BYTES), o.subarray(HEADER_BYTES)]);
    }
    case "replace":
      return Buffer.from(pristine.get(pick(others(art), e.from).file)!);
    case "encryptAs": {
      return art.encryptedAs![e.as];
    }
  }
}

function applyObjectEdit(art: Art, e: ObjectEdit): Applied {
  const before = pristine.get(art.file)!;
  const after = editObject(art, e);
  if (after === null) removeRel(art.file);
  else writeRel(art.file, after);
  const changed = after === null || !after.equals(before);
  // A fresh encryption under the right key and path with another chunk size is a valid object
  // (only a key holder can make one): reading it may succeed, exactly, or refuse the chunk size.
  const legit = e.t === "encryptAs" && e.as === "otherChunkSize";
  return {
    label: e.t === "encryptAs" ? `object:encryptAs:${e.as}` : `object:${e.t}`,
    expect: (read) => {
      if (read.art !== art || !changed) return EXACT;
      if (legit) return { kind: "either", codes: ["integrity"] };
      // A ranged read that does not cover the damaged chunk may still succeed, exactly.
      return read.range ? { kind: "either", codes: ["integrity"] } : { kind: "fail", codes: ["integrity"] };
    },
  };
}

/** Two objects trade places (same operation or across operations). */
function applySwap(art: Art, otherIndex: number): Applied {
  const other = pick(others(art), otherIndex);
  writeRel(art.file, pristine.get(other.file)!);
  writeRel(other.file, pristine.get(art.file)!);
  return {
    label: other.op === art.op ? "swap:objects-same-operation" : "swap:objects-across-operations",
    expect: (read) =>
      read.art === art || read.art === other
        ? read.range
          ? { kind: "either", codes: ["integrity"] }
          : { kind: "fail", codes: ["integrity"] }
        : EXACT,
  };
}

// ---- metadata surgery -----------------------------------------------------------------------

type MetaEdit =
  | { t: "entryField"; field: "size" | "encryptedSize" | "chunkSize"; value: number }
  | { t: "entryFieldJunk"; field: "size" | "encryptedSize" | "chunkSize" | "contentType" | "path" | "etag"; junk: 0 | 1 | 2 | 3 }
  | { t: "entryHarmless"; field: "contentType" | "createdAt" | "etag" }
  | { t: "entryResize"; size: number; chunkSize: number }
  | { t: "entryRechunk" }
  | { t: "entryRemove" }
  | { t: "entryRename"; to: number }
  | { t: "entryFromOther"; from: number }
  | { t: "entryDuplicateFirst"; delta: number }
  | { t: "transplant"; from: number }
  | { t: "grantee"; to: "other" | "upper"; readAs: "original" | "new" }
  | { t: "expiresAt"; to: "past" | "future" | "noMillis" | "garbage" }
  | { t: "operationId" }
  | { t: "version"; to: 0 | 2 | "1" }
  | { t: "wrappedKey"; field: "iv" | "ciphertext" | "kid" | "short" }
  | { t: "agent"; junk: boolean }
  | { t: "createdAt" }
  | { t: "artifactsNotArray" }
  | { t: "swapMetadata"; from: number; rewriteId: boolean }
  | { t: "rawFlip"; at: number; bit: number }
  | { t: "rawTruncate"; at: number }
  | { t: "rawJunk"; which: 0 | 1 | 2 | 3 | 4 }
  | { t: "deleteMetadata" };

const metaEditArb: fc.Arbitrary<MetaEdit> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant("entryField" as const),
      field: fc.constantFrom("size" as const, "encryptedSize" as const, "chunkSize" as const),
      value: fc.oneof(fc.nat(), fc.constantFrom(0, 1, SMALL_C, SMALL_C + 1, BIG_C, MAX_CHUNK_SIZE, MAX_CHUNK_SIZE + 1, 2 ** 32, Number.MAX_SAFE_INTEGER)),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant("entryFieldJunk" as const),
      field: fc.constantFrom("size" as const, "encryptedSize" as const, "chunkSize" as const, "contentType" as const, "path" as const, "etag" as const),
      junk: fc.constantFrom(0 as const, 1 as const, 2 as const, 3 as const),
    }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("entryHarmless" as const), field: fc.constantFrom("contentType" as const, "createdAt" as const, "etag" as const) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("entryResize" as const), size: fc.nat(3 * BIG_C), chunkSize: fc.constantFrom(SMALL_C, 2 * SMALL_C, BIG_C) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("entryRechunk" as const) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("entryRemove" as const) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("entryRename" as const), to: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("entryFromOther" as const), from: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("entryDuplicateFirst" as const), delta: fc.integer({ min: -20, max: 20 }) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("transplant" as const), from: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({ t: fc.constant("grantee" as const), to: fc.constantFrom("other" as const, "upper" as const), readAs: fc.constantFrom("original" as const, "new" as const) }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("expiresAt" as const), to: fc.constantFrom("past" as const, "future" as const, "noMillis" as const, "garbage" as const) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("operationId" as const) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("version" as const), to: fc.constantFrom(0 as const, 2 as const, "1" as const) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("wrappedKey" as const), field: fc.constantFrom("iv" as const, "ciphertext" as const, "kid" as const, "short" as const) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("agent" as const), junk: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("createdAt" as const) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("artifactsNotArray" as const) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("swapMetadata" as const), from: fc.nat(), rewriteId: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant("rawFlip" as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 6 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("rawTruncate" as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("rawJunk" as const), which: fc.constantFrom(0 as const, 1 as const, 2 as const, 3 as const, 4 as const) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("deleteMetadata" as const) }) },
);

type Entry = OperationMetadata["artifacts"][number];

/**
 * Expectation for reads of `op` after its artifacts[] was edited to `entries`: the first entry
 * with the read's path decides. Same size/encryptedSize/chunkSize as the truth: the plaintext.
 * Missing: not_found. Anything else: integrity (or 416 for a range past the recorded size).
 */
function byEntries(op: Op, entries: Entry[], objectsMoved: Set<Art> = new Set()): (read: Read) => Expectation {
  return (read) => {
    if (read.art.op !== op) return EXACT;
    const entry = entries.find((e) => e.path === read.art.path);
    if (entry === undefined) return { kind: "fail", codes: ["not_found"] };
    const truth = metaOf(op).artifacts.find((e) => e.path === read.art.path)!;
    const same = entry.size === truth.size && entry.encryptedSize === truth.encryptedSize && entry.chunkSize === truth.chunkSize;
    if (same && !objectsMoved.has(read.art)) return EXACT;
    // A success must still be the exact plaintext with the real size (judge checks both), so a
    // recorded size that differs from the truth can only fail; a wrong recorded chunk size with the
    // right size and object is harmless if the reader goes by the object's header.
    const codes: Code[] = read.range ? ["integrity", "range_not_satisfiable"] : ["integrity"];
    return entry.size !== truth.size || objectsMoved.has(read.art) ? { kind: "fail", codes } : { kind: "either", codes };
  };
}

/** Every read of the operation fails with one of `codes`. */
function wholeOperation(op: Op, codes: Code[]): (read: Read) => Expectation {
  return (read) => (read.art.op === op ? { kind: "fail", codes } : EXACT);
}

function applyMetaEdit(art: Art, e: MetaEdit): Applied {
  const op = art.op;
  const m = metaOf(op);
  const entry = m.artifacts.find((a) => a.path === art.path)!;
  const label = `metadata:${e.t}`;
  switch (e.t) {
    case "entryField": {
      entry[e.field] = e.value;
      writeMeta(op, m);
      return { label, expect: byEntries(op, m.artifacts) };
    }
    case "entryFieldJunk": {
      const junk = [-1, 1.5, {}, null][e.junk];
      (entry as unknown as Record<string, unknown>)[e.field] = junk;
      writeMeta(op, m);
      // Not the shape of metadata.json at all: the whole operation is unreadable.
      return { label, expect: wholeOperation(op, ["integrity"]) };
    }
    case "entryHarmless": {
      if (e.field === "contentType") entry.contentType = "text/x-tampered";
      else if (e.field === "createdAt") entry.createdAt = "2001-01-01T00:00:00.000Z";
      else entry.etag = "tampered-etag";
      writeMeta(op, m);
      return { label, expect: EXACT_ALL };
    }
    case "entryResize": {
      entry.size = e.size;
      entry.chunkSize = e.chunkSize;
      entry.encryptedSize = encryptedSize(e.size, e.chunkSize);
      writeMeta(op, m);
      return { label, expect: byEntries(op, m.artifacts) };
    }
    case "entryRechunk": {
      // Another (size, chunk size) pair with the same stored length: only the object's header can tell.
      const alt = art.chunkSize === SMALL_C ? 4 * SMALL_C : SMALL_C;
      const stored = entry.encryptedSize;
      const body = stored - HEADER_BYTES;
      const chunks = Math.max(1, Math.ceil(body / (alt + TAG_BYTES)));
      entry.chunkSize = alt;
      entry.size = Math.max(0, body - TAG_BYTES * chunks);
      entry.encryptedSize = encryptedSize(entry.size, alt);
      writeMeta(op, m);
      return { label, expect: byEntries(op, m.artifacts) };
    }
    case "entryRemove": {
      m.artifacts = m.artifacts.filter((a) => a !== entry);
      writeMeta(op, m);
      return { label, expect: byEntries(op, m.artifacts) };
    }
    case "entryRename": {
      const siblings = arts.filter((a) => a.op === op && a !== art);
      entry.path = siblings.length > 0 && e.to % 2 === 0 ? pick(siblings, e.to).path : `renamed/${art.path}`;
      writeMeta(op, m);
      // The renamed entry may now come first for a sibling's path: that sibling's read fails.
      return { label, expect: byEntries(op, m.artifacts) };
    }
    case "entryFromOther": {
      const donor = pick(others(art), e.from);
      const donorEntry = metaOf(donor.op).artifacts.find((a) => a.path === donor.path)!;
      Object.assign(entry, { ...donorEntry, path: art.path });
      writeMeta(op, m);
      return { label, expect: byEntries(op, m.artifacts) };
    }
    case "entryDuplicateFirst": {
      const fake = { ...entry, size: Math.max(0, entry.size + e.delta) };
      fake.encryptedSize = encryptedSize(fake.size, fake.chunkSize);
      m.artifacts.unshift(fake);
      writeMeta(op, m);
      return { label, expect: byEntries(op, m.artifacts) };
    }
    case "transplant": {
      // Another operation's object and entry, moved in under this artifact's path.
      const foreign = arts.filter((a) => a.op !== op);
      const donor = pick(foreign, e.from);
      const donorEntry = metaOf(donor.op).artifacts.find((a) => a.path === donor.path)!;
      Object.assign(entry, { ...donorEntry, path: art.path });
      writeMeta(op, m);
      writeRel(art.file, pristine.get(donor.file)!);
      return { label, expect: byEntries(op, m.artifacts, new Set([art])) };
    }
    case "grantee": {
      const stored = op.grantee.toLowerCase();
      const changed = e.to === "other" ? (stored === G1 ? G2 : G1) : `0x${stored.slice(2).toUpperCase()}`;
      m.grantee = changed;
      writeMeta(op, m);
      const requester = e.readAs === "original" ? op.grantee : changed;
      // Read as the old grantee: not_found (not theirs any more). As the new one: the key wrap is bound to the old grantee.
      return {
        label: `${label}:${e.to}:${e.readAs}`,
        requester,
        expect: wholeOperation(op, e.to === "upper" || e.readAs === "original" ? ["not_found"] : ["integrity"]),
      };
    }
    case "expiresAt": {
      const now = Date.now();
      if (e.to === "past") m.expiresAt = new Date(now - 60_000).toISOString();
      else if (e.to === "future") m.expiresAt = new Date(Date.parse(m.expiresAt) + 86_400_000).toISOString();
      else if (e.to === "noMillis") m.expiresAt = m.expiresAt.replace(/\.\d{3}Z$/, "Z");
      else m.expiresAt = "soon";
      writeMeta(op, m);
      return { label: `${label}:${e.to}`, expect: wholeOperation(op, e.to === "past" ? ["expired"] : ["integrity"]) };
    }
    case "operationId": {
      m.operationId = ops.find((o) => o !== op)!.id;
      writeMeta(op, m);
      return { label, expect: wholeOperation(op, ["integrity"]) };
    }
    case "version": {
      (m as unknown as Record<string, unknown>).version = e.to;
      writeMeta(op, m);
      return { label, expect: wholeOperation(op, ["integrity"]) };
    }
    case "wrappedKey": {
      const wk = m.wrappedKey;
      if (e.field === "kid") {
        wk.kid = "someone-else";
        writeMeta(op, m);
        // The key it names is not loaded: an operator problem, reported as such (never key bytes).
        return { label: `${label}:kid`, expect: wholeOperation(op, ["config"]) };
      }
      if (e.field === "short") wk.ciphertext = wk.ciphertext.slice(0, 20);
      else {
        const bytes = Buffer.from(wk[e.field], "base64");
        bytes[0] = bytes[0]! ^ 0x80;
        wk[e.field] = bytes.toString("base64");
      }
      writeMeta(op, m);
      return { label: `${label}:${e.field}`, expect: wholeOperation(op, ["integrity"]) };
    }
    case "agent": {
      (m as unknown as Record<string, unknown>).agent = e.junk ? 42 : "someone-else";
      writeMeta(op, m);
      // The agent name is informational (not bound to the key); a non-string is malformed metadata.
      return { label: `${label}:${e.junk ? "junk" : "renamed"}`, expect: e.junk ? wholeOperation(op, ["integrity"]) : EXACT_ALL };
    }
    case "createdAt": {
      m.createdAt = "1999-12-31T23:59:59.999Z";
      writeMeta(op, m);
      return { label, expect: EXACT_ALL };
    }
    case "artifactsNotArray": {
      (m as unknown as Record<string, unknown>).artifacts = { [art.path]: entry };
      writeMeta(op, m);
      return { label, expect: wholeOperation(op, ["integrity"]) };
    }
    case "swapMetadata": {
      const donorOp = pick(ops.filter((o) => o !== op), e.from);
      const donor = metaOf(donorOp);
      if (e.rewriteId) donor.operationId = op.id;
      writeMeta(op, donor);
      // Another operation's metadata: malformed for this id, or (id rewritten) a key bound elsewhere,
      // another grantee, or entries this operation does not have.
      return { label: `${label}:${e.rewriteId ? "id-rewritten" : "as-is"}`, expect: wholeOperation(op, e.rewriteId ? ["integrity", "not_found"] : ["integrity"]) };
    }
    case "rawFlip": {
      const bytes = Buffer.from(pristine.get(op.metaFile)!);
      const at = e.at % bytes.length;
      bytes[at] = bytes[at]! ^ (1 << e.bit);
      writeRel(op.metaFile, bytes);
      // A flip that leaves JSON naming a newer layout (`"version":1` -> 3) is a layout this code cannot
      // check: unsupported_layout, never a read of it (docs/format.md#layouts).
      const codes: Code[] = namesNewerLayout(bytes) ? ["unsupported_layout"] : BROAD;
      return { label, expect: (read) => (read.art.op === op ? { kind: "either", codes } : EXACT) };
    }
    case "rawTruncate": {
      const bytes = pristine.get(op.metaFile)!;
      writeRel(op.metaFile, bytes.subarray(0, e.at % bytes.length));
      return { label, expect: (read) => (read.art.op === op ? { kind: "either", codes: ["integrity"] } : EXACT) };
    }
    case "rawJunk": {
      writeRel(op.metaFile, ["", "null", "[]", "{}", randomBytes(64).toString("latin1")][e.which]!);
      return { label, expect: wholeOperation(op, ["integrity"]) };
    }
    case "deleteMetadata": {
      removeRel(op.metaFile);
      return { label, expect: wholeOperation(op, ["not_found"]) };
    }
  }
}

const EXACT_ALL = (): Expectation => EXACT;

// ---- the pool -------------------------------------------------------------------------------

/** [path, size, chunk size] per operation; A and B share paths so same-path swaps across operations happen. */
const LAYOUT: Record<string, [string, number, number][]> = {
  "fuzz-a": [
    ["empty", 0, SMALL_C],
    ["one-byte", 1, SMALL_C],
    ["notes/short.txt", 777, SMALL_C],
    ["edge/below", SMALL_C - 1, SMALL_C],
    ["edge/exact", SMALL_C, SMALL_C],
    ["edge/above", SMALL_C + 1, SMALL_C],
    ["two-chunks.bin", 2 * SMALL_C, SMALL_C],
    ["three/partial.bin", 2 * SMALL_C + 5000, SMALL_C],
    ["three/full.bin", 3 * SMALL_C, SMALL_C],
    ["big/empty", 0, BIG_C],
    ["big/small.json", 3000, BIG_C],
    ["big/exact.bin", BIG_C, BIG_C],
    ["big/three.bin", 2 * BIG_C + 4321, BIG_C],
  ],
  "fuzz-b": [
    ["empty", 0, SMALL_C],
    ["notes/short.txt", 777, SMALL_C],
    ["edge/above", SMALL_C + 1, SMALL_C],
    ["three/partial.bin", 2 * SMALL_C + 5000, SMALL_C],
    ["big/above.bin", BIG_C + 1, BIG_C],
  ],
  "fuzz-c": [
    ["notes/short.txt", 777, SMALL_C],
    ["edge/exact", SMALL_C, SMALL_C],
    ["three/partial.bin", 2 * SMALL_C + 5000, SMALL_C],
  ],
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "psa-fuzz-"));
  config = loadConfig({ ARTIFACTS_LOCAL_DIR: dir, ARTIFACTS_MASTER_KEY: MASTER_KEY });
  // Layout 1: the metadata surgery below edits metadata.json's artifacts[] (layout 2 entry edits: store.tamper.test.ts).
  store = createArtifactStore(config, { createLayout: 1 });
  const grantees: Record<string, string> = { "fuzz-a": G1, "fuzz-b": G1, "fuzz-c": G2 };
  for (const [id, layout] of Object.entries(LAYOUT)) {
    // Mixed case on purpose: the store lower-cases, reads compare case-insensitively.
    await store.createOperation({ grantee: grantees[id]!.replace(/a/g, "A"), operationId: id });
    for (const [path, size, chunkSize] of layout) {
      const plain = randomBytes(size);
      await store.putArtifact(id, path, plain, { contentType: "application/octet-stream" });
      const metaFile = metadataKey(id);
      const meta = JSON.parse(readFileSync(abs(metaFile), "utf8")) as OperationMetadata;
      const dataKey = unwrapDataKey(meta.wrappedKey, config.masterKeys, meta);
      let op = ops.find((o) => o.id === id);
      if (op === undefined) {
        op = { id, grantee: meta.grantee, dataKey, metaFile };
        ops.push(op);
      }
      const file = artifactObjectKey(id, path);
      if (chunkSize !== BIG_C) {
        // The store writes 1 MiB chunks; the format allows 16 KiB..4 MiB, and readers must honour
        // what the header and metadata say. Small chunks put chunk boundaries within a fuzzer's reach.
        writeFileSync(abs(file), await seal(plain, { dataKey, operationId: id, path, chunkSize }));
        const entry = meta.artifacts.find((a) => a.path === path)!;
        entry.chunkSize = chunkSize;
        entry.encryptedSize = encryptedSize(size, chunkSize);
        writeFileSync(abs(metaFile), `${JSON.stringify(meta, null, 2)}\n`);
      }
      arts.push({ op, path, plain, chunkSize, file });
    }
  }
  for (const art of arts) {
    const base = { dataKey: art.op.dataKey, operationId: art.op.id, path: art.path, chunkSize: art.chunkSize };
    const other = ops.find((op) => op !== art.op)!;
    art.encryptedAs = {
      otherPath: await seal(art.plain, { ...base, path: `${art.path}x` }),
      otherOp: await seal(art.plain, { ...base, dataKey: other.dataKey, operationId: other.id }),
      randomKey: await seal(art.plain, { ...base, dataKey: randomBytes(32) }),
      // A valid object for this key and path, but with a chunk size metadata does not record.
      otherChunkSize: await seal(art.plain, { ...base, chunkSize: art.chunkSize === SMALL_C ? 2 * SMALL_C : SMALL_C }),
    };
  }
  targets = arts.flatMap((a) => (a.chunkSize === SMALL_C ? [a, a, a, a] : [a]));
  for (const rel of walk("operations", [])) pristine.set(rel, readFileSync(abs(rel)));
  // The pool itself reads back exactly, whole and ranged.
  for (const art of arts) {
    expect(judge({ art, requester: art.op.grantee }, await attempt({ art, requester: art.op.grantee }), EXACT)).toBeNull();
  }
}, 120_000);

afterAll(async () => {
  await store?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("tamper fuzzing on the local backend (store level)", () => {
  it(`reads return the plaintext or fail with the implied code, releasing only plaintext (${RUNS} cases)`, async () => {
    console.log(`[fuzz] store tamper: seed ${SEED}, ${RUNS} cases (reproduce with FUZZ_SEED=${SEED})`);
    const mutationArb = fc.oneof(
      { weight: 10, arbitrary: objectEditArb.map((e) => ({ kind: "object" as const, e })) },
      { weight: 2, arbitrary: fc.nat().map((n) => ({ kind: "swap" as const, n })) },
      { weight: 10, arbitrary: metaEditArb.map((e) => ({ kind: "meta" as const, e })) },
    );
    const caseArb = fc.record({
      target: fc.nat(),
      mutation: mutationArb,
      bystander: fc.nat(),
      range: fc.record({ start: fc.nat(), length: fc.option(fc.nat(), { nil: undefined }) }),
    });
    const started = Date.now();
    let cases = 0;
    let reads = 0;
    await fc.assert(
      fc.asyncProperty(caseArb, async (c) => {
        const art = pick(targets, c.target);
        try {
          const applied =
            c.mutation.kind === "object"
              ? applyObjectEdit(art, c.mutation.e)
              : c.mutation.kind === "swap"
                ? applySwap(art, c.mutation.n)
                : applyMetaEdit(art, c.mutation.e);
          const requesterFor = (a: Art) => (a.op === art.op && applied.requester ? applied.requester : a.op.grantee);
          const size = art.plain.length;
          const start = size === 0 ? 0 : c.range.start % size;
          const range = { start, ...(c.range.length === undefined ? {} : { end: start + (c.range.length % Math.max(1, size)) }) };
          const bystander = pick(targets, c.bystander);
          const plan: Read[] = [
            { art, requester: requesterFor(art) },
            ...(size > 0 ? [{ art, requester: requesterFor(art), range }] : []),
            { art: bystander, requester: requesterFor(bystander) },
          ];
          const stats = tally.get(applied.label) ?? { cases: 0, failedReads: 0, okReads: 0 };
          tally.set(applied.label, stats);
          stats.cases++;
          cases++;
          for (const read of plan) {
            const outcome = await attempt(read);
            reads++;
            if (outcome.error === undefined) stats.okReads++;
            else stats.failedReads++;
            const violation = judge(read, outcome, applied.expect(read));
            if (violation !== null) throw new Error(`${applied.label}: ${violation}`);
          }
        } finally {
          restore();
        }
      }),
      { seed: SEED, numRuns: RUNS },
    );
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    const kinds = [...tally.entries()].sort((a, b) => b[1].cases - a[1].cases);
    console.log(
      `[fuzz] store tamper: ${cases} cases (${kinds.length} mutation kinds), ${reads} reads, ${released} plaintext bytes released, ${seconds} s, seed ${SEED}`,
    );
    console.log(kinds.map(([k, s]) => `  ${k}: ${s.cases} cases, ${s.failedReads} failed / ${s.okReads} exact reads`).join("\n"));
    expect(cases).toBeGreaterThanOrEqual(RUNS);
    // After all that, the pristine pool still reads back exactly.
    for (const art of arts) {
      expect(judge({ art, requester: art.op.grantee }, await attempt({ art, requester: art.op.grantee }), EXACT)).toBeNull();
    }
  }, 600_000);
});
