/**
 * The tamper fuzzer's shared machinery (store-tamper.fuzz.test.ts): the pool of operations and
 * artifacts, the storage state it edits (one view over any backend: local, moto, the R2
 * simulator), reads through the store, and the judge of each read.
 */
import { ArtifactError, type ArtifactStore } from "@personal-server/artifacts";
import { DEFAULT_CHUNK_SIZE, isArtifactPath, LAYOUT_VERSION } from "@personal-server/artifacts/internal";
import { MIN_CHUNK_SIZE } from "../../src/crypto.js";
import { drain, type Harness } from "../helpers.js";

export const G1 = "0x00000000000000000000000000000000000000a1";
export const G2 = "0x00000000000000000000000000000000000000b2";
export const SMALL_C = MIN_CHUNK_SIZE; // 16 KiB: chunk boundaries at sizes a fuzzer can afford
export const BIG_C = DEFAULT_CHUNK_SIZE;

export type Code = ArtifactError["code"];

export interface Op {
  id: string;
  grantee: string;
  dataKey: Buffer;
  metaKey: string;
  /** Layout 2: the incarnation the pool was written under, and the one before it (its entries are left in storage). */
  incarnation?: string;
  oldIncarnation?: string;
}

export type EncryptAs = "otherPath" | "otherOp" | "randomKey" | "otherChunkSize";

export interface Art {
  op: Op;
  path: string;
  plain: Buffer;
  chunkSize: number;
  /** Key of the object. */
  file: string;
  /** Layout 2: key of its entry object. */
  entryKey?: string;
  /** Its plaintext encrypted under other keys, paths or chunk sizes (made once, in the setup). */
  encryptedAs?: Record<EncryptAs, Buffer>;
}

/** What a read must do after a mutation. */
export type Expectation = { kind: "exact" } | { kind: "fail"; codes: Code[] } | { kind: "either"; codes: Code[] };

export interface Read {
  art: Art;
  requester: string;
  range?: { start: number; end?: number };
}

/** A key's new bytes, or null to delete it. */
export type Change = [key: string, bytes: Buffer | null];

export interface Applied {
  /** Label for the summary. */
  label: string;
  changes: Change[];
  /** What a read should do (called for every read of the case, after the changes are stored). */
  expect(read: Read): Expectation;
  /** Requester for reads of the target's operation, if the mutation changes who may read. */
  requester?: string;
  /**
   * Layout 2: the listing of the target's operation the grantee must get (path -> size), or the
   * codes it may fail with; absent when the mutation makes no claim about listings.
   */
  listing?: () => Map<string, number> | { codes: Code[] };
}

export const EXACT: Expectation = { kind: "exact" };
export const EXACT_ALL = (): Expectation => EXACT;
export const BROAD: Code[] = ["integrity", "expired", "not_found", "config", "range_not_satisfiable"];

/**
 * Paths a tamperer may write into an entry (with a name that carries its hash): one a writer
 * could have made, and ones no writer can (validateArtifactPath: the one definition of a path).
 */
export const FORGED_PATHS = ["forged/extra.bin", "../escape.bin", "a//b", "/absolute", "dir/./x", "with space", "p%2Fq", `${"x".repeat(300)}/y`];

/** Whether a writer could have made `path` (validateArtifactPath, the one definition of a path). */
export const isValidPath = isArtifactPath;

export function pick<T>(list: readonly T[], n: number): T {
  return list[n % list.length]!;
}

export function namesNewerLayout(bytes: Buffer): boolean {
  try {
    const version = (JSON.parse(bytes.toString()) as { version?: unknown } | null)?.version;
    return typeof version === "number" && Number.isSafeInteger(version) && version > LAYOUT_VERSION;
  } catch {
    return false;
  }
}

/** The fields of an entry a read goes by. */
export interface EntryFields {
  size: number;
  encryptedSize: number;
  chunkSize: number;
}

/**
 * What a read of `read.art` must do when the entry its path resolves to is `entry` (undefined:
 * none) and the true one is `truth`. Same size, encryptedSize and chunkSize (and the object in
 * place): the plaintext. Missing: not_found. Otherwise integrity (or 416 for a range past the
 * recorded size): a success must still be the exact plaintext with the real size (judge checks
 * both), so a recorded size that differs can only fail; a wrong recorded chunk size with the right
 * size and object is harmless if the reader goes by the object's header.
 */
export function entryExpectation(read: Read, entry: EntryFields | undefined, truth: EntryFields, objectMoved: boolean): Expectation {
  if (entry === undefined) return { kind: "fail", codes: ["not_found"] };
  const same = entry.size === truth.size && entry.encryptedSize === truth.encryptedSize && entry.chunkSize === truth.chunkSize;
  if (same && !objectMoved) return EXACT;
  const codes: Code[] = read.range ? ["integrity", "range_not_satisfiable"] : ["integrity"];
  return entry.size !== truth.size || objectMoved ? { kind: "fail", codes } : { kind: "either", codes };
}

/** Every read of the operation fails with one of `codes`. */
export function wholeOperation(op: Op, codes: Code[]): (read: Read) => Expectation {
  return (read) => (read.art.op === op ? { kind: "fail", codes } : EXACT);
}

/**
 * The stored keys of one lane: a pristine snapshot taken after the setup, the current state
 * (pristine plus the case's changes), written through the raw backend and restored after each case.
 */
export class Pool {
  readonly pristine = new Map<string, Buffer>();
  /** S3 peers: each pristine key's ETag (the MD5 of its bytes: a restored key has it again). */
  private readonly etags = new Map<string, string>();
  private readonly current = new Map<string, Buffer>();
  private readonly touched = new Set<string>();
  ops: Op[] = [];
  arts: Art[] = [];

  constructor(
    readonly h: Harness,
    readonly layout: 1 | 2,
  ) {}

  get store(): ArtifactStore {
    return this.h.store;
  }

  async snapshot(): Promise<void> {
    this.pristine.clear();
    const keys: string[] = [];
    for await (const o of this.h.raw.list("operations/")) keys.push(o.key);
    for (let i = 0; i < keys.length; i += 16) {
      await Promise.all(
        keys.slice(i, i + 16).map(async (key) => {
          const got = (await this.h.raw.getBytes(key))!;
          this.pristine.set(key, got.body);
          this.etags.set(key, got.etag);
        }),
      );
    }
    this.current.clear();
    for (const [k, v] of this.pristine) this.current.set(k, v);
  }

  /** Current bytes of a key (undefined when absent). */
  get(key: string): Buffer | undefined {
    return this.current.get(key);
  }

  original(key: string): Buffer {
    const bytes = this.pristine.get(key);
    if (bytes === undefined) throw new Error(`${key} is not in the pool`);
    return bytes;
  }

  /** Current keys under `prefix`, in byte order (as LIST returns them). */
  keysUnder(prefix: string): string[] {
    return [...this.current.keys()].filter((k) => k.startsWith(prefix)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  async apply(changes: Change[]): Promise<void> {
    for (const [key, bytes] of changes) {
      this.touched.add(key);
      if (bytes === null) {
        this.current.delete(key);
        await this.h.raw.delete([key]);
      } else {
        this.current.set(key, bytes);
        await this.h.raw.put(key, bytes);
      }
    }
  }

  async restore(): Promise<void> {
    for (const key of this.touched) {
      const original = this.pristine.get(key);
      if (original === undefined) {
        this.current.delete(key);
        await this.h.raw.delete([key]);
      } else if (!this.current.get(key)?.equals(original)) {
        this.current.set(key, original);
        await this.h.raw.put(key, original);
      }
    }
    this.touched.clear();
  }

  /** Storage holds exactly the pristine keys and bytes (the store wrote nothing of its own meanwhile). */
  async differences(): Promise<string[]> {
    const out: string[] = [];
    const seen = new Set<string>();
    for await (const o of this.h.raw.list("operations/")) {
      seen.add(o.key);
      const original = this.pristine.get(o.key);
      // Locally the ETag comes from the file's stat, not its bytes: compare the bytes there.
      const same = this.h.raw.kind === "local" ? (await this.h.raw.getBytes(o.key))?.body.equals(original ?? Buffer.alloc(0)) : o.etag === this.etags.get(o.key);
      if (original === undefined) out.push(`new key ${o.key}`);
      else if (!same) out.push(`changed ${o.key}`);
    }
    for (const key of this.pristine.keys()) if (!seen.has(key)) out.push(`missing ${key}`);
    return out;
  }

  others(art: Art): Art[] {
    return this.arts.filter((a) => a !== art);
  }
}

export interface Outcome {
  bytes: Buffer;
  error: unknown;
  size?: number;
  range?: { start: number; end: number };
}

/** Runs `fn`; a call that never settles is a failure of its own (a hung download or listing). */
async function settled<T>(fn: () => Promise<T>, hung: () => T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(hung()), 15_000);
  });
  try {
    return await Promise.race([fn(), hang]);
  } finally {
    clearTimeout(timer);
  }
}

export async function attempt(store: ArtifactStore, read: Read): Promise<Outcome> {
  return settled(
    async (): Promise<Outcome> => {
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
    },
    () => ({ bytes: Buffer.alloc(0), error: new Error("read did not settle within 15 s") }),
  );
}

function expectedSlice(read: Read): Buffer {
  const { plain } = read.art;
  if (!read.range) return plain;
  const end = Math.min(read.range.end ?? plain.length - 1, plain.length - 1);
  return plain.subarray(read.range.start, end + 1);
}

/** Checks one read against its expectation; returns a description of the violation, or null. Counts released bytes. */
export function judge(read: Read, outcome: Outcome, expectation: Expectation, counter: { released: number }): string | null {
  const wanted = expectedSlice(read);
  const what = `${read.art.op.id}/${read.art.path}${read.range ? ` range ${JSON.stringify(read.range)}` : ""}`;
  counter.released += outcome.bytes.length;
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

/** Checks the grantee's listing of `op` against the expected paths and sizes (or failure codes); a violation or null. */
export async function judgeListing(store: ArtifactStore, op: Op, expected: Map<string, number> | { codes: Code[] }): Promise<string | null> {
  const got = await settled(
    async () => {
      try {
        return (await store.listArtifacts(op.id, { requester: op.grantee })).artifacts;
      } catch (error) {
        return error;
      }
    },
    () => new Error("listing did not settle within 15 s"),
  );
  if (!Array.isArray(got)) {
    if (expected instanceof Map) return `listing of ${op.id} failed (${String((got as Error).message)}), expected ${expected.size} artifacts`;
    if (!(got instanceof ArtifactError) || !expected.codes.includes(got.code)) {
      return `listing of ${op.id} failed with ${String((got as Error)?.stack ?? got)}, expected ${expected.codes.join("|")}`;
    }
    return null;
  }
  const shown = got.map((a) => `${a.path}:${a.size}`).sort();
  if (!(expected instanceof Map)) return `listing of ${op.id} succeeded (${shown.join(", ")}), expected ${expected.codes.join("|")}`;
  const wanted = [...expected].map(([p, s]) => `${p}:${s}`).sort();
  return shown.join("\n") === wanted.join("\n") ? null : `listing of ${op.id} shows [${shown.join(", ")}], expected [${wanted.join(", ")}]`;
}
