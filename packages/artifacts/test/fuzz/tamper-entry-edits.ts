/**
 * Layout 2 edits (docs/format.md#layouts): entry objects, index.json and metadata.json's
 * incarnation. What a read or a listing must show after them is computed by `LayoutModel`, a
 * reader written from the format page against the stored keys: the index's entries up to
 * `covers`, then the incarnation's entry objects named after it, the first entry of each path
 * deciding. Reads of other artifacts and operations stay exact.
 */
import { createHash, randomBytes } from "node:crypto";
import fc from "fast-check";
import { encryptedSize, isArtifactEntry } from "@personal-server/artifacts/internal";
import { MAX_CHUNK_SIZE } from "../../src/crypto.js";
import {
  type Applied,
  type Art,
  BIG_C,
  type Change,
  type Code,
  entryExpectation,
  FORGED_PATHS,
  isValidPath,
  type EntryFields,
  EXACT,
  type Expectation,
  type Op,
  pick,
  type Pool,
  type Read,
  SMALL_C,
  wholeOperation,
} from "./tamper-kit.js";

const ENTRY_NAME = /^(\d{13})-([0-9a-f]{32})\.json$/;

type Entry = EntryFields & { path: string; contentType: string; createdAt: string; etag: string };
type Named = Entry & { name: string };
interface Index {
  layout: 2;
  incarnation: string;
  covers: string;
  entries: Named[];
}

/** First 32 hex digits of SHA-256 of the path (docs/format.md), computed here, not by the SDK. */
const hashOf = (path: string) => createHash("sha256").update(path, "utf8").digest("hex").slice(0, 32);
const nameOf = (ms: number, path: string) => `${String(ms).padStart(13, "0")}-${hashOf(path)}.json`;
const json = (value: unknown) => Buffer.from(`${JSON.stringify(value)}\n`);
const operationPrefix = (op: Op) => `operations/${op.id}/`;
const entriesPrefix = (op: Op, incarnation: string) => `${operationPrefix(op)}entries/${incarnation}/`;
export const indexKeyOf = (op: Op) => `${operationPrefix(op)}index.json`;

function parseJson(bytes: Buffer | undefined): unknown {
  if (bytes === undefined) return undefined;
  try {
    return JSON.parse(bytes.toString());
  } catch {
    return undefined;
  }
}

/** An entry (object or index line) a reader may use: the shape of one, a path a writer can make, its name carrying the path's hash. */
function wellFormed(entry: unknown, name: string): entry is Entry {
  return isArtifactEntry(entry) && isValidPath(entry.path) && ENTRY_NAME.exec(name)?.[2] === hashOf(entry.path);
}

/** What the format page says a reader sees of `op` in the current (edited) state. */
export class LayoutModel {
  private readonly incarnation: string;
  private readonly index: Index | undefined;

  constructor(
    private readonly pool: Pool,
    private readonly op: Op,
  ) {
    this.incarnation = (parseJson(pool.get(op.metaKey)) as { incarnation: string }).incarnation;
    const index = parseJson(pool.get(indexKeyOf(op))) as Partial<Index> | undefined;
    const usable =
      index !== null &&
      typeof index === "object" &&
      index.layout === 2 &&
      index.incarnation === this.incarnation &&
      typeof index.covers === "string" &&
      Array.isArray(index.entries) &&
      index.entries.every((e) => typeof e.name === "string" && wellFormed(e, e.name));
    this.index = usable ? (index as Index) : undefined;
  }

  /** The entry a read of `path` goes by: the index's when covered, else the listing's. */
  find(path: string): Named | "not_found" | "integrity" {
    const hit = this.index?.entries.find((e) => e.path === path);
    if (hit !== undefined && hit.name <= this.index!.covers) return hit;
    const listed = this.list();
    return listed === "integrity" ? listed : (listed.get(path) ?? "not_found");
  }

  /** The operation's artifacts by path, or `integrity` when a listed entry object is malformed. */
  list(): Map<string, Named> | "integrity" {
    const covers = this.index?.covers ?? "";
    const known = new Map((this.index?.entries ?? []).map((e) => [e.name, e]));
    const names = (this.index?.entries ?? []).filter((e) => e.name <= covers).map((e) => e.name);
    const prefix = entriesPrefix(this.op, this.incarnation);
    for (const key of this.pool.keysUnder(prefix)) {
      const name = key.slice(prefix.length);
      if (name <= covers || !ENTRY_NAME.test(name)) continue;
      names.push(name);
      if (known.has(name)) continue;
      const entry = parseJson(this.pool.get(key)) as Entry | undefined;
      if (!wellFormed(entry, name)) return "integrity";
      known.set(name, { ...entry, name });
    }
    const out = new Map<string, Named>();
    for (const name of names) {
      const entry = known.get(name);
      if (entry !== undefined && !out.has(entry.path)) out.set(entry.path, entry);
    }
    return out;
  }
}

/** Reads and the listing of `art.op` as the model says; other operations exact. */
function byModel(pool: Pool, target: Op): Pick<Applied, "expect" | "listing"> {
  return {
    expect: (read: Read): Expectation => {
      if (read.art.op !== target) return EXACT;
      const found = new LayoutModel(pool, target).find(read.art.path);
      if (found === "integrity" || found === "not_found") return { kind: "fail", codes: [found] };
      return entryExpectation(read, found, truthOf(pool, read.art), false);
    },
    listing: () => {
      const listed = new LayoutModel(pool, target).list();
      return listed === "integrity" ? { codes: ["integrity"] } : new Map([...listed].map(([p, e]) => [p, e.size]));
    },
  };
}

function truthOf(pool: Pool, art: Art): Entry {
  return JSON.parse(pool.original(art.entryKey!).toString()) as Entry;
}

/** The operation's pristine index, or (none stored) a complete one made from its pristine entries. */
function baseIndex(pool: Pool, op: Op): Index {
  const stored = pool.pristine.get(indexKeyOf(op));
  if (stored !== undefined) return JSON.parse(stored.toString()) as Index;
  const prefix = entriesPrefix(op, op.incarnation!);
  const entries = [...pool.pristine.keys()]
    .filter((k) => k.startsWith(prefix))
    .sort()
    .map((k) => ({ ...(JSON.parse(pool.original(k).toString()) as Entry), name: k.slice(prefix.length) }));
  return { layout: 2, incarnation: op.incarnation!, covers: entries.at(-1)?.name ?? "", entries };
}

function oldEntryKeys(pool: Pool, op: Op): string[] {
  return [...pool.pristine.keys()].filter((k) => k.startsWith(entriesPrefix(op, op.oldIncarnation!))).sort();
}

const FIELD_VALUES = [0, 1, SMALL_C, SMALL_C + 1, BIG_C, MAX_CHUNK_SIZE, MAX_CHUNK_SIZE + 1, 2 ** 32, Number.MAX_SAFE_INTEGER];

export type EntryEdit =
  | { t: "entryFlip"; at: number; bit: number }
  | { t: "entryTruncate"; at: number }
  | { t: "entryJunk"; which: number }
  | { t: "entryDelete" }
  | { t: "entryField"; field: "size" | "encryptedSize" | "chunkSize"; value: number }
  | { t: "entryResize"; size: number; chunkSize: number }
  | { t: "entryText"; field: "etag" | "contentType" | "path" | "createdAt"; which: number }
  | { t: "entrySwap"; from: "sameOperation" | "otherOperation" | "otherIncarnation"; n: number }
  | { t: "entryDuplicate"; shiftMs: number; sizeDelta: number }
  | { t: "entryPlantOld"; n: number }
  | { t: "entryCopyToOld" }
  | { t: "entryForged"; path: number }
  | { t: "indexFlip"; at: number; bit: number }
  | { t: "indexTruncate"; at: number }
  | { t: "indexJunk"; which: number }
  | { t: "indexDelete" }
  | { t: "indexCovers"; to: "empty" | "zero" | "first" | "beforeTarget" | "future" }
  | { t: "indexDrop" }
  | { t: "indexPhantom"; shiftMs: number; sizeDelta: number; ghost: number }
  | { t: "indexOtherIncarnation" }
  | { t: "indexOldEntries" }
  | { t: "indexEntryField"; field: "size" | "encryptedSize" | "chunkSize"; value: number }
  | { t: "indexComplete" }
  | { t: "incarnation"; to: "random" | "old" | "upper" | "short" };

const sizeField = fc.constantFrom("size" as const, "encryptedSize" as const, "chunkSize" as const);
const fieldValue = fc.oneof(fc.nat(), fc.constantFrom(...FIELD_VALUES));
const shift = fc.oneof(fc.integer({ min: -5000, max: -1 }), fc.integer({ min: 1, max: 5000 }));
const junk = fc.nat(4);

export const entryEditArb: fc.Arbitrary<EntryEdit> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ t: fc.constant("entryFlip" as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 6 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("entryTruncate" as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("entryJunk" as const), which: junk }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("entryDelete" as const) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant("entryField" as const), field: sizeField, value: fieldValue }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("entryResize" as const), size: fc.nat(3 * BIG_C), chunkSize: fc.constantFrom(SMALL_C, 2 * SMALL_C, BIG_C) }) },
  {
    weight: 2,
    arbitrary: fc.record({ t: fc.constant("entryText" as const), field: fc.constantFrom("etag" as const, "contentType" as const, "path" as const, "createdAt" as const), which: fc.nat(3) }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ t: fc.constant("entrySwap" as const), from: fc.constantFrom("sameOperation" as const, "otherOperation" as const, "otherIncarnation" as const), n: fc.nat() }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("entryDuplicate" as const), shiftMs: shift, sizeDelta: fc.oneof(fc.constant(0), fc.integer({ min: -20, max: 20 })) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("entryPlantOld" as const), n: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("entryCopyToOld" as const) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("entryForged" as const), path: fc.nat(FORGED_PATHS.length - 1) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("indexFlip" as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 6 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("indexTruncate" as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("indexJunk" as const), which: junk }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("indexDelete" as const) }) },
  {
    weight: 2,
    arbitrary: fc.record({ t: fc.constant("indexCovers" as const), to: fc.constantFrom("empty" as const, "zero" as const, "first" as const, "beforeTarget" as const, "future" as const) }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("indexDrop" as const) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("indexPhantom" as const), shiftMs: shift, sizeDelta: fc.integer({ min: -20, max: 20 }), ghost: fc.nat(FORGED_PATHS.length) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("indexOtherIncarnation" as const) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("indexOldEntries" as const) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("indexEntryField" as const), field: sizeField, value: fieldValue }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("indexComplete" as const) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("incarnation" as const), to: fc.constantFrom("random" as const, "old" as const, "upper" as const, "short" as const) }) },
);

const JUNK = ["", "null", "[]", "{}"];
const junkBytes = (which: number) => (which < JUNK.length ? Buffer.from(JUNK[which]!) : randomBytes(64));

function flipped(bytes: Buffer, at: number, bit: number): Buffer {
  const copy = Buffer.from(bytes);
  if (copy.length > 0) copy[at % copy.length] = copy[at % copy.length]! ^ (1 << bit);
  return copy;
}

/** Applies a layout 2 edit around `art` (its entry, its operation's index or metadata.json). */
export function applyEntryEdit(pool: Pool, art: Art, e: EntryEdit): Applied {
  const op = art.op;
  const key = art.entryKey!;
  const entry = truthOf(pool, art);
  const name = key.slice(entriesPrefix(op, op.incarnation!).length);
  const ms = Number(name.slice(0, 13));
  const label = `v2:${e.t}`;
  const model = byModel(pool, op);
  const edited = (change: (x: Entry) => void): Buffer => {
    const copy = { ...entry };
    change(copy);
    return json(copy);
  };
  const index = baseIndex(pool, op);
  const withIndex = (change: (x: Index) => void): Change => {
    const copy: Index = { ...index, entries: index.entries.map((x) => ({ ...x })) };
    change(copy);
    return [indexKeyOf(op), json(copy)];
  };
  const one = (changes: Change[], sub?: string): Applied => ({ label: sub === undefined ? label : `${label}:${sub}`, changes, ...model });
  switch (e.t) {
    case "entryFlip":
      return one([[key, flipped(pool.original(key), e.at, e.bit)]]);
    case "entryTruncate":
      return one([[key, pool.original(key).subarray(0, e.at % pool.original(key).length)]]);
    case "entryJunk":
      return one([[key, junkBytes(e.which)]]);
    case "entryDelete":
      return one([[key, null]]);
    case "entryField":
      return one([[key, edited((x) => (x[e.field] = e.value))]], e.field);
    case "entryResize":
      return one([[key, edited((x) => Object.assign(x, { size: e.size, chunkSize: e.chunkSize, encryptedSize: encryptedSize(e.size, e.chunkSize) }))]]);
    case "entryText": {
      const values: Record<typeof e.field, unknown[]> = {
        etag: ["tampered-etag", "", 7, null],
        contentType: ["text/x-tampered", "not a media type", 7, null],
        createdAt: ["2001-01-01T00:00:00.000Z", "yesterday", 7, null],
        path: [pick(pool.arts.filter((a) => a.op === op && a !== art), e.which).path, `renamed/${art.path}`, 7, null],
      };
      return one([[key, edited((x) => ((x as unknown as Record<string, unknown>)[e.field] = values[e.field][e.which % 4]))]], e.field);
    }
    case "entrySwap": {
      let donor: Buffer;
      if (e.from === "otherIncarnation") {
        const old = oldEntryKeys(pool, op);
        const same = old.find((k) => k.endsWith(`-${hashOf(art.path)}.json`));
        donor = pool.original(same ?? pick(old, e.n));
      } else {
        const candidates = pool.arts.filter((a) => a !== art && (e.from === "sameOperation" ? a.op === op : a.op !== op));
        const samePath = candidates.filter((a) => a.path === art.path);
        donor = pool.original(pick(samePath.length > 0 ? samePath : candidates, e.n).entryKey!);
      }
      return one([[key, donor]], e.from);
    }
    case "entryDuplicate": {
      const dup = entriesPrefix(op, op.incarnation!) + nameOf(Math.max(0, ms + e.shiftMs), art.path);
      const size = Math.max(0, entry.size + e.sizeDelta);
      return one([[dup, edited((x) => Object.assign(x, { size, encryptedSize: encryptedSize(size, x.chunkSize) }))]], e.shiftMs < 0 ? "earlier" : "later");
    }
    case "entryPlantOld": {
      const old = pick(oldEntryKeys(pool, op), e.n);
      const planted = entriesPrefix(op, op.incarnation!) + old.slice(entriesPrefix(op, op.oldIncarnation!).length);
      return one([[planted, pool.original(old)]]);
    }
    case "entryForged": {
      // Another artifact's entry, named right for its path: a valid path is listed (entries carry no
      // key); one no writer can make is a malformed entry.
      const path = FORGED_PATHS[e.path]!;
      return one([[entriesPrefix(op, op.incarnation!) + nameOf(ms + 1, path), edited((x) => (x.path = path))]], isValidPath(path) ? "valid" : "invalid");
    }
    case "entryCopyToOld":
      return one([[entriesPrefix(op, op.oldIncarnation!) + nameOf(ms + 1, art.path), pool.original(key)]]);
    case "indexFlip":
    case "indexTruncate": {
      const bytes = json(index);
      return one([[indexKeyOf(op), e.t === "indexFlip" ? flipped(bytes, e.at, e.bit) : bytes.subarray(0, e.at % bytes.length)]]);
    }
    case "indexJunk":
      return one([[indexKeyOf(op), junkBytes(e.which)]]);
    case "indexDelete":
      return one([[indexKeyOf(op), null]]);
    case "indexCovers": {
      const first = index.entries[0]?.name ?? "";
      const covers = { empty: "", zero: "0000000000000", first, beforeTarget: nameOf(ms - 1, art.path), future: "9999999999999-f" }[e.to];
      return one([withIndex((x) => (x.covers = covers))], e.to);
    }
    case "indexDrop":
      return one([withIndex((x) => (x.entries = x.entries.filter((y) => y.path !== art.path)))]);
    case "indexPhantom": {
      // An entry no object backs, named within `covers`: for another path (maybe one no writer can make), or this path under an earlier time.
      const path = e.ghost === 0 ? art.path : e.ghost === 1 ? `ghost/${art.path}` : FORGED_PATHS[e.ghost - 1]!;
      const size = Math.max(0, entry.size + e.sizeDelta);
      const phantom: Named = { ...entry, path, size, encryptedSize: encryptedSize(size, entry.chunkSize), name: nameOf(Math.max(0, ms - Math.abs(e.shiftMs)), path) };
      return one([withIndex((x) => x.entries.unshift(phantom))], e.ghost === 0 ? "earlier" : isValidPath(path) ? "ghost" : "invalid-path");
    }
    case "indexOtherIncarnation":
      return one([withIndex((x) => (x.incarnation = op.oldIncarnation!))]);
    case "indexOldEntries": {
      const prefix = entriesPrefix(op, op.oldIncarnation!);
      const entries = oldEntryKeys(pool, op).map((k) => ({ ...(JSON.parse(pool.original(k).toString()) as Entry), name: k.slice(prefix.length) }));
      return one([withIndex((x) => Object.assign(x, { entries, covers: entries.at(-1)!.name }))]);
    }
    case "indexEntryField":
      return one([withIndex((x) => x.entries.filter((y) => y.path === art.path).forEach((y) => (y[e.field] = e.value)))], e.field);
    case "indexComplete":
      return one([[indexKeyOf(op), json(index)]]);
    case "incarnation": {
      const m = JSON.parse(pool.original(op.metaKey).toString()) as { incarnation: string };
      const to = { random: randomBytes(16).toString("hex"), old: op.oldIncarnation!, upper: m.incarnation.toUpperCase(), short: m.incarnation.slice(1) }[e.to];
      const changes: Change[] = [[op.metaKey, json({ ...m, incarnation: to })]];
      // Not the shape of an incarnation: malformed metadata. Another one: that incarnation's entries (an earlier operation's), never these.
      const malformed = !/^[0-9a-f]{32}$/.test(to);
      const codes: Code[] = ["integrity"];
      return malformed
        ? { label: `${label}:${e.to}`, changes, expect: wholeOperation(op, codes), listing: () => ({ codes }) }
        : { label: `${label}:${e.to}`, changes, ...model };
    }
  }
}
