/**
 * Property-based tamper fuzzing of the store (issues 7 and 20), on local disk, moto and
 * Cloudflare's local R2 simulator: layout 2 on all three, layout 1 (written by the kept v1 writer)
 * on local and moto.
 *
 * A pool of operations and artifacts is written once per lane; every case applies one random
 * mutation to the stored keys (object bytes, headers, chunks, swaps between paths and operations,
 * metadata.json; layout 2: entry objects, index.json, the incarnation, entries of an earlier
 * incarnation of the same id), reads through the store, and restores the pristine bytes by direct
 * writes. Property: each read returns exactly the original plaintext (and the right size), or fails
 * with an ArtifactError of the code the edit implies, having released only bytes that match the
 * plaintext; on layout 2 the grantee's listing shows exactly the paths and sizes the format page
 * says a reader sees (never another incarnation's entries). Afterwards storage holds exactly the
 * pristine keys (reads wrote nothing).
 *
 * Reproduce a failure with `FUZZ_SEED=<printed seed>`; `FUZZ_RUNS` sets the number of cases per lane.
 */
import { createHash, randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { artifactObjectKey, encryptedSize, metadataKey, unwrapDataKey, type OperationMetadata } from "@personal-server/artifacts/internal";
import { type Harness, type Kind, openHarness } from "../helpers.js";
import { seal } from "../vectors/harness.js";
import { applyEntryEdit, entryEditArb, indexKeyOf, LayoutModel } from "./tamper-entry-edits.js";
import { applyMetaEdit, metaEditArb } from "./tamper-metadata-edits.js";
import { applyObjectEdit, applySwap, objectEditArb } from "./tamper-object-edits.js";
import { type Applied, type Art, attempt, BIG_C, EXACT, G1, G2, judge, judgeListing, type Op, pick, Pool, type Read, SMALL_C } from "./tamper-kit.js";

const SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : Date.now() % 2 ** 31;

/**
 * Lanes and their default case counts, chosen for CI time on 2 loaded cores (a case costs about
 * 6-13 ms locally on layout 1, 7-19 ms on layout 2, 35-80 ms on moto layout 1, 75-150 ms on
 * moto layout 2, 120-260 ms on the R2 simulator, more under heavy load); every run draws a new
 * seed, so CI keeps exploring.
 */
const LANES: [Kind, 1 | 2, number][] = [
  ["local", 1, 1500],
  ["local", 2, 600],
  ["moto", 1, 60],
  ["moto", 2, 100],
  ["r2sim", 2, 60],
];
const runsFor = (lane: number) => (process.env.FUZZ_RUNS !== undefined ? Number(process.env.FUZZ_RUNS) : lane);

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
/** Artifacts of a MiB and more: local lanes only (over S3 each case would read MiBs; their chunk edges are the same code). */
const onLane = (kind: Kind, [, size]: [string, number, number]) => kind === "local" || size < BIG_C;
const GRANTEES: Record<string, string> = { "fuzz-a": G1, "fuzz-b": G1, "fuzz-c": G2 };

async function entryKeys(h: Harness, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of h.raw.list(prefix)) keys.push(o.key);
  return keys;
}

/**
 * Writes the pool. Layout 2: each operation first lived once under another incarnation (other
 * plaintexts, every other one a byte longer), was deleted and created again; that incarnation's
 * entries are put back as leftovers. Operation A gets a complete index.json, B one whose `covers`
 * stops at its second entry (listing a third), C none.
 */
async function writePool(pool: Pool, kind: Kind): Promise<void> {
  const { h } = pool;
  const tick = () => (h.clock.now = new Date(h.clock.now.getTime() + 1000));
  const layouts = Object.entries(LAYOUT).map(([id, all]) => [id, all.filter((a) => onLane(kind, a))] as const);
  // Mixed case on purpose: the store lower-cases, reads compare case-insensitively.
  const granteeOf = (id: string) => GRANTEES[id]!.replace(/a/g, "A");
  const leftovers = new Map<string, { incarnation: string; keys: [string, Buffer][] }>();
  if (pool.layout === 2) {
    for (const [id, layout] of layouts) {
      await h.store.createOperation({ grantee: granteeOf(id), operationId: id });
      tick();
      await Promise.all(layout.map(([path, size], i) => h.store.putArtifact(id, path, randomBytes(size + (i % 2)))));
      const { incarnation } = JSON.parse((await h.raw.getBytes(metadataKey(id)))!.body.toString()) as { incarnation: string };
      const keys = await entryKeys(h, `operations/${id}/entries/`);
      leftovers.set(id, { incarnation, keys: await Promise.all(keys.map(async (k): Promise<[string, Buffer]> => [k, (await h.raw.getBytes(k))!.body])) });
    }
    // All deleted before any is created again: one wait for a key written within the second, not three.
    for (const [id] of layouts) await h.store.deleteOperation(id);
  }
  for (const [id, layout] of layouts) {
    await h.store.createOperation({ grantee: granteeOf(id), operationId: id });
    const meta = JSON.parse((await h.raw.getBytes(metadataKey(id)))!.body.toString()) as OperationMetadata & { incarnation?: string };
    const op: Op = {
      id,
      grantee: meta.grantee,
      dataKey: unwrapDataKey(meta.wrappedKey, h.config.masterKeys, meta),
      metaKey: metadataKey(id),
      ...(meta.incarnation === undefined ? {} : { incarnation: meta.incarnation, oldIncarnation: leftovers.get(id)!.incarnation }),
    };
    pool.ops.push(op);
    tick();
    const write = async ([path, size, chunkSize]: [string, number, number]): Promise<Art> => {
      const plain = randomBytes(size);
      await h.store.putArtifact(id, path, plain, { contentType: "application/octet-stream" });
      const file = artifactObjectKey(id, path);
      // Layout 2: `entries/<incarnation>/<ms>-<first 32 hex of sha256(path)>.json` (docs/format.md#layouts).
      const hash = `-${createHash("sha256").update(path).digest("hex").slice(0, 32)}.json`;
      const entryKey = op.incarnation === undefined ? undefined : (await entryKeys(h, `operations/${id}/entries/${op.incarnation}/`)).find((k) => k.endsWith(hash));
      if (chunkSize !== BIG_C) {
        // The store writes 1 MiB chunks; the format allows 16 KiB..4 MiB, and readers must honour
        // what the header and the entry say. Small chunks put chunk boundaries within a fuzzer's reach.
        await h.raw.put(file, await seal(plain, { dataKey: op.dataKey, operationId: id, path, chunkSize }));
        const fix = (e: { chunkSize: number; encryptedSize: number }) => Object.assign(e, { chunkSize, encryptedSize: encryptedSize(size, chunkSize) });
        if (entryKey === undefined) {
          const m = JSON.parse((await h.raw.getBytes(op.metaKey))!.body.toString()) as OperationMetadata & { version: 1 };
          fix(m.artifacts.find((a) => a.path === path)!);
          await h.raw.put(op.metaKey, Buffer.from(`${JSON.stringify(m, null, 2)}\n`));
        } else {
          const e = JSON.parse((await h.raw.getBytes(entryKey))!.body.toString()) as { chunkSize: number; encryptedSize: number };
          await h.raw.put(entryKey, Buffer.from(`${JSON.stringify(fix(e))}\n`));
        }
      }
      return { op, path, plain, chunkSize, file, ...(entryKey === undefined ? {} : { entryKey }) };
    };
    // Layout 1's reseal rewrites metadata.json: one artifact at a time there.
    if (pool.layout === 1) for (const a of layout) pool.arts.push(await write(a));
    else pool.arts.push(...(await Promise.all(layout.map(write))));
    for (const [k, bytes] of leftovers.get(id)?.keys ?? []) await h.raw.put(k, bytes);
  }
  if (pool.layout === 2) await writeIndexes(pool);
  for (const art of pool.arts) {
    const base = { dataKey: art.op.dataKey, operationId: art.op.id, path: art.path, chunkSize: art.chunkSize };
    const other = pool.ops.find((op) => op !== art.op)!;
    art.encryptedAs = {
      otherPath: await seal(art.plain, { ...base, path: `${art.path}x` }),
      otherOp: await seal(art.plain, { ...base, dataKey: other.dataKey, operationId: other.id }),
      randomKey: await seal(art.plain, { ...base, dataKey: randomBytes(32) }),
      // A valid object for this key and path, but with a chunk size the entry does not record.
      otherChunkSize: await seal(art.plain, { ...base, chunkSize: art.chunkSize === SMALL_C ? 2 * SMALL_C : SMALL_C }),
    };
  }
  await pool.snapshot();
}

async function writeIndexes(pool: Pool): Promise<void> {
  const [a, b] = pool.ops;
  for (const [op, coversAt, listed] of [
    [a!, Infinity, Infinity],
    [b!, 1, 3],
  ] as const) {
    const prefix = `operations/${op.id}/entries/${op.incarnation}/`;
    const keys = (await entryKeys(pool.h, prefix)).sort();
    const entries = await Promise.all(
      keys.slice(0, listed).map(async (k) => ({ ...JSON.parse((await pool.h.raw.getBytes(k))!.body.toString()), name: k.slice(prefix.length) })),
    );
    const covers = entries[Math.min(coversAt, entries.length - 1)]!.name as string;
    const index = { layout: 2, incarnation: op.incarnation, covers, entries };
    await pool.h.raw.put(indexKeyOf(op), Buffer.from(`${JSON.stringify(index)}\n`));
  }
}

/** The listing the format page implies for `op` in the current state (layout 2). */
function modelListing(pool: Pool, op: Op) {
  const listed = new LayoutModel(pool, op).list();
  return listed === "integrity" ? { codes: ["integrity" as const] } : new Map([...listed].map(([p, e]) => [p, e.size]));
}

describe.each(LANES)("tamper fuzzing on %s, layout %i (store level)", (kind, layout, laneRuns) => {
  const runs = runsFor(laneRuns);
  let pool: Pool;
  /** Each small-chunk artifact 4 times: multi-MiB reads are costly, chunk edges are cheap with 16 KiB. */
  let targets: Art[];
  const counter = { released: 0 };

  async function readsBack(): Promise<void> {
    const reads = pool.arts.map(async (art) => {
      const read = { art, requester: art.op.grantee };
      return judge(read, await attempt(pool.store, read), EXACT, counter);
    });
    const listings = layout === 2 ? pool.ops.map((op) => judgeListing(pool.store, op, modelListing(pool, op))) : [];
    expect((await Promise.all([...reads, ...listings])).filter((v) => v !== null)).toEqual([]);
  }

  beforeAll(async () => {
    const started = Date.now();
    pool = new Pool(await openHarness(kind, {}, layout), layout);
    await writePool(pool, kind);
    targets = pool.arts.flatMap((a) => (a.chunkSize === SMALL_C ? [a, a, a, a] : [a]));
    // The pool itself reads back exactly, and lists as written.
    await readsBack();
    console.log(`[fuzz] store tamper (${kind}, layout ${layout}): pool of ${pool.arts.length} artifacts written and read back in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }, 180_000);

  afterAll(async () => {
    await pool?.h.close();
    const storage = pool?.h.config.storage;
    if (storage?.kind === "local") rmSync(storage.dir, { recursive: true, force: true });
  });

  it(`reads return the plaintext or fail with the implied code, releasing only plaintext (${runs} cases)`, async () => {
    const lane = `${kind}, layout ${layout}`;
    console.log(`[fuzz] store tamper (${lane}): seed ${SEED}, ${runs} cases (reproduce with FUZZ_SEED=${SEED})`);
    const mutationArb = fc.oneof(
      { weight: 10, arbitrary: objectEditArb.map((e) => ({ kind: "object" as const, e })) },
      { weight: 2, arbitrary: fc.nat().map((n) => ({ kind: "swap" as const, n })) },
      { weight: layout === 1 ? 10 : 4, arbitrary: metaEditArb(layout).map((e) => ({ kind: "meta" as const, e })) },
      ...(layout === 2 ? [{ weight: 12, arbitrary: entryEditArb.map((e) => ({ kind: "entry" as const, e })) }] : []),
    );
    const caseArb = fc.record({
      target: fc.nat(),
      mutation: mutationArb,
      bystander: fc.nat(),
      range: fc.record({ start: fc.nat(), length: fc.option(fc.nat(), { nil: undefined }) }),
    });
    const tally = new Map<string, { cases: number; failedReads: number; okReads: number; ms: number }>();
    const started = Date.now();
    let cases = 0;
    let reads = 0;
    await fc.assert(
      fc.asyncProperty(caseArb, async (c) => {
        const art = pick(targets, c.target);
        const m = c.mutation;
        const applied: Applied =
          m.kind === "object"
            ? applyObjectEdit(pool, art, m.e)
            : m.kind === "swap"
              ? applySwap(pool, art, m.n)
              : m.kind === "meta"
                ? applyMetaEdit(pool, art, m.e)
                : applyEntryEdit(pool, art, m.e);
        const caseStarted = Date.now();
        const stats = tally.get(applied.label) ?? { cases: 0, failedReads: 0, okReads: 0, ms: 0 };
        tally.set(applied.label, stats);
        try {
          await pool.apply(applied.changes);
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
          stats.cases++;
          cases++;
          for (const read of plan) {
            const outcome = await attempt(pool.store, read);
            reads++;
            if (outcome.error === undefined) stats.okReads++;
            else stats.failedReads++;
            const violation = judge(read, outcome, applied.expect(read), counter);
            if (violation !== null) throw new Error(`${applied.label}: ${violation}`);
          }
          // Layout 2: the listing shows what the format page implies (object edits leave it as written).
          const listing = applied.listing?.() ?? (layout === 2 && m.kind !== "meta" ? modelListing(pool, art.op) : undefined);
          if (listing !== undefined) {
            const violation = await judgeListing(pool.store, art.op, listing);
            if (violation !== null) throw new Error(`${applied.label}: ${violation}`);
          }
        } finally {
          await pool.restore();
          stats.ms += Date.now() - caseStarted;
        }
      }),
      { seed: SEED, numRuns: runs },
    );
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    const kinds = [...tally.entries()].sort((a, b) => b[1].cases - a[1].cases);
    console.log(
      `[fuzz] store tamper (${lane}): ${cases} cases (${kinds.length} mutation kinds), ${reads} reads, ${counter.released} plaintext bytes released, ${seconds} s, seed ${SEED}`,
    );
    console.log(kinds.map(([k, s]) => `  ${k}: ${s.cases} cases, ${s.failedReads} failed / ${s.okReads} exact reads, ${Math.round(s.ms / s.cases)} ms a case`).join("\n"));
    expect(cases).toBeGreaterThanOrEqual(runs);
    // Reads wrote nothing (no index.json of their own over the edited state), and the pool still reads back exactly.
    expect(await pool.differences()).toEqual([]);
    await readsBack();
  }, 900_000);
});
