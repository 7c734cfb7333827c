/** Edits of stored artifact objects (both layouts): bytes, headers, chunks, swaps, other encryptions. */
import { randomBytes } from "node:crypto";
import fc from "fast-check";
import { HEADER_BYTES, MAX_CHUNK_SIZE, TAG_BYTES } from "../../src/crypto.js";
import { type Applied, type Art, BIG_C, EXACT, type EncryptAs, pick, type Pool, SMALL_C } from "./tamper-kit.js";

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

export type ObjectEdit =
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

export const objectEditArb: fc.Arbitrary<ObjectEdit> = fc.oneof(
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

/** The mutated bytes of `art`'s object, or null to delete it. */
function editObject(pool: Pool, art: Art, e: ObjectEdit): Buffer | null {
  const o = pool.original(art.file);
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
      const donor = pool.original(pick(pool.others(art), e.from).file);
      return Buffer.concat([donor.subarray(0, HEADER_BYTES), o.subarray(HEADER_BYTES)]);
    }
    case "replace":
      return Buffer.from(pool.original(pick(pool.others(art), e.from).file));
    case "encryptAs": {
      return art.encryptedAs![e.as];
    }
  }
}

export function applyObjectEdit(pool: Pool, art: Art, e: ObjectEdit): Applied {
  const before = pool.original(art.file);
  const after = editObject(pool, art, e);
  const changed = after === null || !after.equals(before);
  // A fresh encryption under the right key and path with another chunk size is a valid object
  // (only a key holder can make one): reading it may succeed, exactly, or refuse the chunk size.
  const legit = e.t === "encryptAs" && e.as === "otherChunkSize";
  return {
    label: e.t === "encryptAs" ? `object:encryptAs:${e.as}` : `object:${e.t}`,
    changes: [[art.file, after]],
    expect: (read) => {
      if (read.art !== art || !changed) return EXACT;
      if (legit) return { kind: "either", codes: ["integrity"] };
      // A ranged read that does not cover the damaged chunk may still succeed, exactly.
      return read.range ? { kind: "either", codes: ["integrity"] } : { kind: "fail", codes: ["integrity"] };
    },
  };
}

/** Two objects trade places (same operation or across operations). */
export function applySwap(pool: Pool, art: Art, otherIndex: number): Applied {
  const other = pick(pool.others(art), otherIndex);
  return {
    changes: [
      [art.file, pool.original(other.file)],
      [other.file, pool.original(art.file)],
    ],
    label: other.op === art.op ? "swap:objects-same-operation" : "swap:objects-across-operations",
    expect: (read) =>
      read.art === art || read.art === other
        ? read.range
          ? { kind: "either", codes: ["integrity"] }
          : { kind: "fail", codes: ["integrity"] }
        : EXACT,
  };
}

