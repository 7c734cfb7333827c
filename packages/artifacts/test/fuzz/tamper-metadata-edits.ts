/**
 * Edits of metadata.json: the operation's fields (both layouts), and layout 1's `artifacts[]`
 * (its entries; layout 2 keeps them in objects of their own: tamper-entry-edits.ts).
 */
import { randomBytes } from "node:crypto";
import fc from "fast-check";
import { type ArtifactEntry, encryptedSize, type OperationMetadata } from "@personal-server/artifacts/internal";
import { HEADER_BYTES, MAX_CHUNK_SIZE, TAG_BYTES } from "../../src/crypto.js";
import {
  type Applied,
  type Art,
  BIG_C,
  BROAD,
  type Change,
  type Code,
  EXACT,
  EXACT_ALL,
  FORGED_PATHS,
  isValidPath,
  entryExpectation,
  type Expectation,
  G1,
  G2,
  namesNewerLayout,
  type Op,
  pick,
  type Pool,
  type Read,
  SMALL_C,
  wholeOperation,
} from "./tamper-kit.js";

export type MetaEdit =
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
  | { t: "entryForged"; path: number }
  | { t: "grantee"; to: "other" | "upper"; readAs: "original" | "new" }
  | { t: "expiresAt"; to: "past" | "future" | "noMillis" | "garbage" }
  | { t: "operationId" }
  | { t: "version"; to: number | string }
  | { t: "wrappedKey"; field: "iv" | "ciphertext" | "kid" | "short" }
  | { t: "agent"; junk: boolean }
  | { t: "createdAt" }
  | { t: "artifactsNotArray" }
  | { t: "swapMetadata"; from: number; rewriteId: boolean }
  | { t: "rawFlip"; at: number; bit: number }
  | { t: "rawTruncate"; at: number }
  | { t: "rawJunk"; which: 0 | 1 | 2 | 3 | 4 }
  | { t: "deleteMetadata" };

type Weighted = { weight: number; arbitrary: fc.Arbitrary<MetaEdit> };

/** Layout 1 only: edits of metadata.json's artifacts[]. */
const entryEdits: Weighted[] = [
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
  { weight: 1, arbitrary: fc.record({ t: fc.constant("artifactsNotArray" as const) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("entryForged" as const), path: fc.nat(FORGED_PATHS.length - 1) }) },
];

/** Both layouts: the operation's own fields, and the file as bytes. */
const operationEdits = (layout: 1 | 2): Weighted[] => [
  {
    weight: 2,
    arbitrary: fc.record({ t: fc.constant("grantee" as const), to: fc.constantFrom("other" as const, "upper" as const), readAs: fc.constantFrom("original" as const, "new" as const) }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("expiresAt" as const), to: fc.constantFrom("past" as const, "future" as const, "noMillis" as const, "garbage" as const) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("operationId" as const) }) },
  {
    weight: 1,
    arbitrary: fc.record({ t: fc.constant("version" as const), to: layout === 1 ? fc.constantFrom(0, 2, 3, "1") : fc.constantFrom(0, 1, 3, "2") }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("wrappedKey" as const), field: fc.constantFrom("iv" as const, "ciphertext" as const, "kid" as const, "short" as const) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("agent" as const), junk: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("createdAt" as const) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("swapMetadata" as const), from: fc.nat(), rewriteId: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant("rawFlip" as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 6 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("rawTruncate" as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("rawJunk" as const), which: fc.constantFrom(0 as const, 1 as const, 2 as const, 3 as const, 4 as const) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("deleteMetadata" as const) }) },
];

/** metadata.json edits that apply to `layout` (layout 2's entries and incarnation: tamper-entry-edits.ts). */
export function metaEditArb(layout: 1 | 2): fc.Arbitrary<MetaEdit> {
  return fc.oneof(...(layout === 1 ? [...entryEdits, ...operationEdits(1)] : operationEdits(2)));
}

/** The pristine metadata.json (`artifacts` only on layout 1). */
function metaOf(pool: Pool, op: Op): OperationMetadata & { artifacts: Entry[] } {
  return JSON.parse(pool.original(op.metaKey).toString()) as OperationMetadata & { artifacts: Entry[] };
}

type Entry = ArtifactEntry;

/**
 * Expectation for reads of `op` after its artifacts[] was edited to `entries`: the first entry
 * with the read's path decides. Same size/encryptedSize/chunkSize as the truth: the plaintext.
 * Missing: not_found. Anything else: integrity (or 416 for a range past the recorded size).
 */
function byEntries(pool: Pool, op: Op, entries: Entry[], objectsMoved: Set<Art> = new Set()): (read: Read) => Expectation {
  return (read) => {
    if (read.art.op !== op) return EXACT;
    const truth = metaOf(pool, op).artifacts.find((e) => e.path === read.art.path)!;
    return entryExpectation(read, entries.find((e) => e.path === read.art.path), truth, objectsMoved.has(read.art));
  };
}

/** Applies a metadata.json edit to the pristine metadata of `art`'s operation. */
export function applyMetaEdit(pool: Pool, art: Art, e: MetaEdit): Applied {
  const changes: Change[] = [];
  const writeMeta = (value: unknown) => changes.push([art.op.metaKey, Buffer.from(`${JSON.stringify(value, null, 2)}\n`)]);
  return { ...metaEdit(pool, art, e, writeMeta, changes), changes };
}

function metaEdit(pool: Pool, art: Art, e: MetaEdit, writeMeta: (value: unknown) => void, changes: Change[]): Omit<Applied, "changes"> {
  const op = art.op;
  const m = metaOf(pool, op);
  // Layout 1 only (layout 2 has no artifacts[]: its entry edits are not drawn there).
  const entry = m.artifacts?.find((a) => a.path === art.path) as Entry;
  const label = `metadata:${e.t}`;
  switch (e.t) {
    case "entryField": {
      entry[e.field] = e.value;
      writeMeta(m);
      return { label, expect: byEntries(pool, op, m.artifacts) };
    }
    case "entryFieldJunk": {
      const junk = [-1, 1.5, {}, null][e.junk];
      (entry as unknown as Record<string, unknown>)[e.field] = junk;
      writeMeta(m);
      // Not the shape of metadata.json at all: the whole operation is unreadable.
      return { label, expect: wholeOperation(op, ["integrity"]) };
    }
    case "entryHarmless": {
      if (e.field === "contentType") entry.contentType = "text/x-tampered";
      else if (e.field === "createdAt") entry.createdAt = "2001-01-01T00:00:00.000Z";
      else entry.etag = "tampered-etag";
      writeMeta(m);
      return { label, expect: EXACT_ALL };
    }
    case "entryResize": {
      entry.size = e.size;
      entry.chunkSize = e.chunkSize;
      entry.encryptedSize = encryptedSize(e.size, e.chunkSize);
      writeMeta(m);
      return { label, expect: byEntries(pool, op, m.artifacts) };
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
      writeMeta(m);
      return { label, expect: byEntries(pool, op, m.artifacts) };
    }
    case "entryRemove": {
      m.artifacts = m.artifacts.filter((a) => a !== entry);
      writeMeta(m);
      return { label, expect: byEntries(pool, op, m.artifacts) };
    }
    case "entryRename": {
      const siblings = pool.arts.filter((a) => a.op === op && a !== art);
      entry.path = siblings.length > 0 && e.to % 2 === 0 ? pick(siblings, e.to).path : `renamed/${art.path}`;
      writeMeta(m);
      // The renamed entry may now come first for a sibling's path: that sibling's read fails.
      return { label, expect: byEntries(pool, op, m.artifacts) };
    }
    case "entryFromOther": {
      const donor = pick(pool.others(art), e.from);
      const donorEntry = metaOf(pool, donor.op).artifacts.find((a) => a.path === donor.path)!;
      Object.assign(entry, { ...donorEntry, path: art.path });
      writeMeta(m);
      return { label, expect: byEntries(pool, op, m.artifacts) };
    }
    case "entryDuplicateFirst": {
      const fake = { ...entry, size: Math.max(0, entry.size + e.delta) };
      fake.encryptedSize = encryptedSize(fake.size, fake.chunkSize);
      m.artifacts.unshift(fake);
      writeMeta(m);
      return { label, expect: byEntries(pool, op, m.artifacts) };
    }
    case "transplant": {
      // Another operation's object and entry, moved in under this artifact's path.
      const foreign = pool.arts.filter((a) => a.op !== op);
      const donor = pick(foreign, e.from);
      const donorEntry = metaOf(pool, donor.op).artifacts.find((a) => a.path === donor.path)!;
      Object.assign(entry, { ...donorEntry, path: art.path });
      writeMeta(m);
      changes.push([art.file, pool.original(donor.file)]);
      return { label, expect: byEntries(pool, op, m.artifacts, new Set([art])) };
    }
    case "entryForged": {
      // An added entry: a valid path is one more artifact (this test reads none of it); a path no
      // writer can make is malformed metadata, like any entry not of an entry's shape.
      const path = FORGED_PATHS[e.path]!;
      m.artifacts.push({ ...entry, path });
      writeMeta(m);
      return isValidPath(path) ? { label: `${label}:valid`, expect: EXACT_ALL } : { label: `${label}:invalid`, expect: wholeOperation(op, ["integrity"]) };
    }
    case "grantee": {
      const stored = op.grantee.toLowerCase();
      const changed = e.to === "other" ? (stored === G1 ? G2 : G1) : `0x${stored.slice(2).toUpperCase()}`;
      m.grantee = changed;
      writeMeta(m);
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
      writeMeta(m);
      return { label: `${label}:${e.to}`, expect: wholeOperation(op, e.to === "past" ? ["expired"] : ["integrity"]) };
    }
    case "operationId": {
      m.operationId = pool.ops.find((o) => o !== op)!.id;
      writeMeta(m);
      return { label, expect: wholeOperation(op, ["integrity"]) };
    }
    case "version": {
      (m as unknown as Record<string, unknown>).version = e.to;
      writeMeta(m);
      // A newer layout is one this code cannot check: unsupported_layout, never a read of it.
      return { label: `${label}:${JSON.stringify(e.to)}`, expect: wholeOperation(op, typeof e.to === "number" && e.to > 2 ? ["unsupported_layout"] : ["integrity"]) };
    }
    case "wrappedKey": {
      const wk = m.wrappedKey;
      if (e.field === "kid") {
        wk.kid = "someone-else";
        writeMeta(m);
        // The key it names is not loaded: an operator problem, reported as such (never key bytes).
        return { label: `${label}:kid`, expect: wholeOperation(op, ["config"]) };
      }
      if (e.field === "short") wk.ciphertext = wk.ciphertext.slice(0, 20);
      else {
        const bytes = Buffer.from(wk[e.field], "base64");
        bytes[0] = bytes[0]! ^ 0x80;
        wk[e.field] = bytes.toString("base64");
      }
      writeMeta(m);
      return { label: `${label}:${e.field}`, expect: wholeOperation(op, ["integrity"]) };
    }
    case "agent": {
      (m as unknown as Record<string, unknown>).agent = e.junk ? 42 : "someone-else";
      writeMeta(m);
      // The agent name is informational (not bound to the key); a non-string is malformed metadata.
      return { label: `${label}:${e.junk ? "junk" : "renamed"}`, expect: e.junk ? wholeOperation(op, ["integrity"]) : EXACT_ALL };
    }
    case "createdAt": {
      m.createdAt = "1999-12-31T23:59:59.999Z";
      writeMeta(m);
      return { label, expect: EXACT_ALL };
    }
    case "artifactsNotArray": {
      (m as unknown as Record<string, unknown>).artifacts = { [art.path]: entry };
      writeMeta(m);
      return { label, expect: wholeOperation(op, ["integrity"]) };
    }
    case "swapMetadata": {
      const donorOp = pick(pool.ops.filter((o) => o !== op), e.from);
      const donor = metaOf(pool, donorOp);
      if (e.rewriteId) donor.operationId = op.id;
      writeMeta(donor);
      // Another operation's metadata: malformed for this id, or (id rewritten) a key bound elsewhere,
      // another grantee, or entries this operation does not have.
      return { label: `${label}:${e.rewriteId ? "id-rewritten" : "as-is"}`, expect: wholeOperation(op, e.rewriteId ? ["integrity", "not_found"] : ["integrity"]) };
    }
    case "rawFlip": {
      const bytes = Buffer.from(pool.original(op.metaKey));
      const at = e.at % bytes.length;
      bytes[at] = bytes[at]! ^ (1 << e.bit);
      changes.push([op.metaKey, bytes]);
      // A flip that leaves JSON naming a newer layout (`"version":1` -> 3) is a layout this code cannot
      // check: unsupported_layout, never a read of it (docs/format.md#layouts).
      const codes: Code[] = namesNewerLayout(bytes) ? ["unsupported_layout"] : BROAD;
      return { label, expect: (read) => (read.art.op === op ? { kind: "either", codes } : EXACT) };
    }
    case "rawTruncate": {
      const bytes = pool.original(op.metaKey);
      changes.push([op.metaKey, bytes.subarray(0, e.at % bytes.length)]);
      return { label, expect: (read) => (read.art.op === op ? { kind: "either", codes: ["integrity"] } : EXACT) };
    }
    case "rawJunk": {
      changes.push([op.metaKey, Buffer.from(["", "null", "[]", "{}", randomBytes(64).toString("latin1")][e.which]!, "latin1")]);
      return { label, expect: wholeOperation(op, ["integrity"]) };
    }
    case "deleteMetadata": {
      changes.push([op.metaKey, null]);
      return { label, expect: wholeOperation(op, ["not_found"]) };
    }
  }
}

