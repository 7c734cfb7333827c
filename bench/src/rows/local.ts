// Rows 1, 2 and 7: the SDK's store on the local backend against plain Node file I/O.
import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, open, rename, unlink } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import type { ArtifactStore } from "@personal-server/artifacts";
import {
  alternate,
  drain,
  expectBytes,
  formatSize,
  GiB,
  KiB,
  MiB,
  throughputRow,
  writeRandomFile,
  type BenchContext,
  type RowResult,
  type Side,
} from "../harness.js";
import { BENCH_GRANTEE, localStore } from "../sdk.js";

/** Size of the big-file rows (1, 2, 4, 5, 8). */
export function bigSize(ctx: BenchContext): number {
  return ctx.quick ? 16 * MiB : GiB;
}

/** The shared plaintext input of the big-file rows, created once per bench run. */
export async function bigInput(ctx: BenchContext): Promise<string> {
  const path = join(ctx.dir, `input-${bigSize(ctx)}.bin`);
  await writeRandomFile(path, bigSize(ctx)).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== "EEXIST") throw e;
  });
  return path;
}

/**
 * A plain stream copy with the same durability as the local backend's writes: into a temp file,
 * fsync (`flush: true`) and rename into place.
 */
export async function plainCopy(input: string, dest: string): Promise<void> {
  const tmp = `${dest}.${randomBytes(6).toString("hex")}.tmp`;
  await pipeline(createReadStream(input), createWriteStream(tmp, { flags: "wx", mode: 0o600, flush: true }));
  await rename(tmp, dest);
}

/** A store with one operation per run, removed after the run (so disk use stays flat). */
export async function withOperation(store: ArtifactStore, grantee: string): Promise<string> {
  return (await store.createOperation({ grantee, agent: "bench" })).operationId;
}

/** Row 1: encrypt + store a file with the SDK vs copying it with plain streams. */
export async function row1(ctx: BenchContext): Promise<RowResult> {
  const size = bigSize(ctx);
  const input = await bigInput(ctx);
  const store = localStore(join(ctx.dir, "r1-store"));
  const plainDir = join(ctx.dir, "r1-plain");
  await mkdir(plainDir, { recursive: true });
  const grantee = BENCH_GRANTEE;
  try {
    const times = await alternate(
      ctx,
      "row 1",
      {
        prepare: () => withOperation(store, grantee),
        run: async (op) => {
          const info = await store.putArtifact(op, "data.bin", createReadStream(input));
          expectBytes("SDK put", info.size, size);
        },
        cleanup: (op) => store.deleteOperation(op),
      },
      {
        prepare: async (i) => join(plainDir, `copy-${i}.bin`),
        run: (dest) => plainCopy(input, dest),
        cleanup: (dest) => unlink(dest),
      },
    );
    return throughputRow(
      {
        id: "1",
        figure: `SDK encrypt + store, local backend (${formatSize(size)}) vs plain stream copy`,
        unit: "MiB/s",
        target: { kind: "min-ratio", ratio: 1 },
        note:
          "ours: store.putArtifact(createReadStream(file)) (encrypt, temp file, fsync, rename, metadata.json update); " +
          "baseline: pipeline(createReadStream(file), createWriteStream(temp, {flush: true})) then rename: the same durability without encryption",
      },
      size / MiB,
      times,
    );
  } finally {
    await store.close();
  }
}

/** Row 2: read + decrypt a stored artifact with the SDK vs reading the plaintext file. */
export async function row2(ctx: BenchContext): Promise<RowResult> {
  const size = bigSize(ctx);
  const input = await bigInput(ctx);
  const store = localStore(join(ctx.dir, "r2-store"));
  const grantee = BENCH_GRANTEE;
  try {
    const op = await withOperation(store, grantee);
    await store.putArtifact(op, "data.bin", createReadStream(input));
    const times = await alternate(
      ctx,
      "row 2",
      {
        run: async () => {
          const { body } = await store.getArtifact(op, "data.bin", { requester: grantee });
          expectBytes("SDK get", await drain(body), size);
        },
      },
      {
        run: async () => expectBytes("plain read", await drain(createReadStream(input)), size),
      },
    );
    return throughputRow(
      {
        id: "2",
        figure: `SDK read + decrypt, local backend (${formatSize(size)}) vs plain stream read`,
        unit: "MiB/s",
        target: { kind: "min-ratio", ratio: 1 },
        note:
          "ours: (await store.getArtifact(...)).body read to the end; baseline: createReadStream(plaintext file) read to the end; " +
          "both files in the page cache",
      },
      size / MiB,
      times,
    );
  } finally {
    await store.close();
  }
}

/** Runs `work(i)` for i in [0, count), `concurrency` at a time. */
export async function fanOut(count: number, concurrency: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) await work(next++);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/**
 * The SDK side of rows 7 and 13: `count` artifacts of `piece(i)`, `concurrency` at a time, into
 * one operation of a store in a fresh directory under `root` per run, as each baseline run writes
 * into a fresh directory. Nothing is deleted before the bench ends (its scratch directory goes
 * then; about 1.7 GB for rows 7 and 13): on ext4 without a journal (this machine's disk),
 * creating a file scans past every inode of its group freed in the last 60 s (the kernel's
 * `recently_deleted`), so a delete after each run or row put that cost on whichever side ran
 * next in the same group. When every run reused one store, whose previous run's 20,000 files had
 * just been deleted, it fell on ours every time: 1.6 instead of 0.7 ms of kernel CPU per artifact
 * (docs/performance.md, rows 7 and 13).
 */
export function smallArtifactsSide(
  root: string,
  count: number,
  concurrency: number,
  piece: (i: number) => Buffer,
): Side<{ store: ArtifactStore; op: string }> {
  return {
    prepare: async (run) => {
      const store = localStore(join(root, `run-${run}`));
      return { store, op: await withOperation(store, BENCH_GRANTEE) };
    },
    run: ({ store, op }) =>
      fanOut(count, concurrency, async (i) => {
        expectBytes("SDK put", (await store.putArtifact(op, `f/${i}.bin`, piece(i))).size, piece(i).length);
      }),
    cleanup: ({ store }) => store.close(),
  };
}

/** Row 7: many small artifacts, 32 at a time, vs plain atomic file writes of the same bytes. */
export async function row7(ctx: BenchContext): Promise<RowResult> {
  const count = ctx.quick ? 300 : 10_000;
  const size = 4 * KiB;
  const concurrency = 32;
  const pool = randomBytes(count * size);
  const piece = (i: number) => pool.subarray(i * size, (i + 1) * size);
  const [sdkRoot, plainRoot] = [join(ctx.dir, "r7-store"), join(ctx.dir, "r7-plain")];
  const times = await alternate(ctx, "row 7", smallArtifactsSide(sdkRoot, count, concurrency, piece), {
    prepare: async (run) => {
      const dir = join(plainRoot, `run-${run}`);
      await mkdir(join(dir, ".tmp"), { recursive: true });
      await mkdir(join(dir, "f"), { recursive: true });
      return dir;
    },
    run: (dir) =>
      fanOut(count, concurrency, async (i) => {
        // The textbook atomic write: temp file, write, fsync, close, rename into place.
        const tmp = join(dir, ".tmp", `${i}.${randomBytes(6).toString("hex")}.part`);
        const fh = await open(tmp, "wx", 0o600);
        try {
          await fh.write(piece(i));
          await fh.sync();
        } finally {
          await fh.close();
        }
        await rename(tmp, join(dir, "f", `${i}.bin`));
      }),
  });
  return throughputRow(
    {
      id: "7",
      figure: `${count.toLocaleString("en-US")} artifacts of 4 KiB, ${concurrency} concurrent, local backend, vs plain atomic file writes`,
      unit: "files/s",
      target: { kind: "min-ratio", ratio: 0.6 },
      note:
        "ours: store.putArtifact(op, path, 4 KiB Buffer) into one operation of a fresh store per run (encrypt, atomic write of the object, then of its entry object: layout 2; " +
        "each link made durable by a directory fsync shared by the uploads in flight); " +
        "baseline: open temp, write, fsync, close, rename into a fresh directory per run (no directory fsync)",
    },
    count,
    times,
  );
}
