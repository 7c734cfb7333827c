import { randomBytes } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  decrypt,
  decryptRange,
  DEFAULT_CHUNK_SIZE,
  deriveArtifactKey,
  encrypt,
  encryptedSize,
  HEADER_BYTES,
  MIN_CHUNK_SIZE,
  parseHeader,
  planRange,
  TAG_BYTES,
} from "../src/crypto.js";
import { IntegrityError, InvalidInputError, RangeNotSatisfiableError } from "../src/errors.js";
import { fragment, open, pattern, run, seal } from "./vectors/harness.js";

const C = MIN_CHUNK_SIZE;
const dataKey = Buffer.alloc(32, 0x5a);
const salt = Buffer.alloc(32, 0x33);
const ids = { dataKey, operationId: "op_streams", path: "out/data.bin" };

const FRAGMENTATIONS: Array<[string, number | number[]]> = [
  ["one write", Number.MAX_SAFE_INTEGER],
  ["1-byte writes", 1],
  ["writes spanning chunk edges", [C - 3, 7, C + 5, 2 * C + 1]],
  ["odd small writes", [13, 4099, 1, 777]],
];

describe("round trips", async () => {
  for (const size of [0, 1, C - 1, C, C + 1, 3 * C]) {
    const plain = pattern(size, 17);
    const oneShot = await seal(plain, { ...ids, chunkSize: C, salt });

    it(`${size} bytes: one-shot`, async () => {
      expect(oneShot.length).toBe(encryptedSize(size, C));
      expect((await open(oneShot, ids)).equals(plain)).toBe(true);
    });

    for (const [name, sizes] of FRAGMENTATIONS) {
      it(`${size} bytes, ${name}: streaming encrypt equals one-shot, streaming decrypt restores`, async () => {
        const enc = encrypt(fragment(plain, sizes), { ...ids, chunkSize: C, salt });
        const encrypted = await run(() => enc, []);
        expect(encrypted.error).toBeUndefined();
        expect(encrypted.out.equals(oneShot)).toBe(true);
        expect(enc.plaintextBytes).toBe(size);
        const decrypted = await run((s) => decrypt(s, ids), fragment(oneShot, sizes));
        expect(decrypted.error).toBeUndefined();
        expect(decrypted.out.equals(plain)).toBe(true);
      });
    }
  }

  it("default chunk size, random salt: 2.5 chunks of random data", async () => {
    const plain = randomBytes(Math.floor(2.5 * DEFAULT_CHUNK_SIZE));
    const encrypted = await run((s) => encrypt(s, ids), fragment(plain, 65536));
    expect(encrypted.error).toBeUndefined();
    expect(encrypted.out.length).toBe(encryptedSize(plain.length, DEFAULT_CHUNK_SIZE));
    expect(parseHeader(encrypted.out).chunkSize).toBe(DEFAULT_CHUNK_SIZE);
    expect((await open(encrypted.out, ids)).equals(plain)).toBe(true);
    const decrypted = await run((s) => decrypt(s, { ...ids, expectedChunkSize: DEFAULT_CHUNK_SIZE }), fragment(encrypted.out, 65536));
    expect(decrypted.error).toBeUndefined();
    expect(decrypted.out.equals(plain)).toBe(true);
  });

  it("random salts differ per artifact, so equal plaintexts give unrelated objects", async () => {
    const a = await seal(pattern(100), ids);
    const b = await seal(pattern(100), ids);
    expect(a.subarray(9, HEADER_BYTES).equals(b.subarray(9, HEADER_BYTES))).toBe(false);
    expect(a.subarray(HEADER_BYTES).equals(b.subarray(HEADER_BYTES))).toBe(false);
  });

  it("accepts plain Uint8Array as well as Buffer, in memory and streamed", async () => {
    const u8 = new Uint8Array([1, 2, 3]);
    expect(await open(await seal(Buffer.from(u8), ids), ids)).toEqual(Buffer.from([1, 2, 3]));
    expect(await open(await seal(u8, ids), ids)).toEqual(Buffer.from([1, 2, 3]));
    const { out } = await run((s) => encrypt(s, ids), [new TextEncoder().encode("héllo")]);
    expect((await open(out, ids)).toString("utf8")).toBe("héllo");
  });

  it("refuses bad options up front", async () => {
    expect(() => encrypt([], { ...ids, chunkSize: 1024 })).toThrow(InvalidInputError);
    expect(() => encrypt([], { ...ids, dataKey: Buffer.alloc(8) })).toThrow("data key must be a 32-byte Uint8Array");
    await expect(seal(pattern(1), { ...ids, chunkSize: 5 * 1024 * 1024 })).rejects.toThrow(
      "chunk size must be an integer from 16384 to 4194304, got 5242880",
    );
    expect(() => decrypt([], { ...ids, dataKey: Buffer.alloc(8) })).toThrow(InvalidInputError);
  });
});

describe("encrypt of empty input", () => {
  it("is one empty final chunk", async () => {
    const { out, error } = await run((s) => encrypt(s, { ...ids, chunkSize: C, salt }), []);
    expect(error).toBeUndefined();
    expect(out.length).toBe(HEADER_BYTES + TAG_BYTES);
    expect(out.equals(await seal(Buffer.alloc(0), { ...ids, chunkSize: C, salt }))).toBe(true);
  });
});

describe("decrypt stream metadata checks", async () => {
  const plain = pattern(C + 10);
  const object = await seal(plain, { ...ids, chunkSize: C, salt });

  it("expectedChunkSize must match the header", async () => {
    const { out, error } = await run((s) => decrypt(s, { ...ids, expectedChunkSize: 2 * C }), [object]);
    expect(out.length).toBe(0);
    expect(error).toBeInstanceOf(IntegrityError);
    expect((error as Error).message).toBe(`encrypted object header has chunk size ${C}, metadata records ${2 * C}`);
    // A nonsense size in metadata is the same kind of mismatch (integrity), not a caller error.
    const bogus = await run((s) => decrypt(s, { ...ids, expectedChunkSize: 5 }), [object]);
    expect(bogus.error).toBeInstanceOf(IntegrityError);
    expect((bogus.error as Error).message).toBe(`encrypted object header has chunk size ${C}, metadata records 5`);
  });

  it("expectedPlainSize must match what decrypts", async () => {
    const small = await run((s) => decrypt(s, { ...ids, expectedPlainSize: C + 11 }), [object]);
    expect(small.error).toBeInstanceOf(IntegrityError);
    expect((small.error as Error).message).toBe(`encrypted object decrypts to ${C + 10} bytes, metadata records ${C + 11}`);
    const big = await run((s) => decrypt(s, { ...ids, expectedPlainSize: 5 }), fragment(object, 1000));
    expect(big.error).toBeInstanceOf(IntegrityError);
    expect((big.error as Error).message).toBe("encrypted object decrypts to more than the 5 bytes recorded in metadata");
    const ok = await run((s) => decrypt(s, { ...ids, expectedPlainSize: C + 10, expectedChunkSize: C }), [object]);
    expect(ok.error).toBeUndefined();
    expect(ok.out.equals(plain)).toBe(true);
  });
});

describe("ranges", async () => {
  const L = 3 * C + 100;
  const plain = pattern(L, 5);
  const object = await seal(plain, { ...ids, chunkSize: C, salt });
  const artifactKey = await deriveArtifactKey(dataKey, parseHeader(object).salt, ids.operationId, ids.path);

  async function readRange(size: number, obj: Buffer, start: number, end: number, pieces: number | number[]) {
    const plan = planRange(size, C, start, end);
    const stored = obj.subarray(plan.objectStart, plan.objectEnd + 1);
    expect(stored.length).toBe(plan.objectEnd - plan.objectStart + 1);
    return run((s) => decryptRange(s, { key: artifactKey, chunkSize: C, plainSize: size, ...plan }), fragment(stored, pieces));
  }

  it("plans the exact stored bytes", async () => {
    expect(planRange(L, C, 0, 0)).toEqual({ firstChunk: 0, lastChunk: 0, objectStart: 41, objectEnd: 41 + C + 15, skip: 0, take: 1 });
    expect(planRange(L, C, C - 1, C)).toEqual({
      firstChunk: 0,
      lastChunk: 1,
      objectStart: 41,
      objectEnd: 41 + 2 * (C + 16) - 1,
      skip: C - 1,
      take: 2,
    });
    expect(planRange(L, C, L - 1, L - 1)).toEqual({
      firstChunk: 3,
      lastChunk: 3,
      objectStart: 41 + 3 * (C + 16),
      objectEnd: object.length - 1,
      skip: 99,
      take: 1,
    });
    expect(planRange(2 * C, C, 2 * C - 1, 2 * C - 1).objectEnd).toBe(encryptedSize(2 * C, C) - 1);
  });

  const cases: Array<[string, number, number]> = [
    ["first byte", 0, 0],
    ["last byte", L - 1, L - 1],
    ["across a chunk edge", C - 10, C + 9],
    ["across two chunk edges", C - 1, 2 * C],
    ["exactly one middle chunk", C, 2 * C - 1],
    ["whole artifact", 0, L - 1],
    ["inside the last chunk", 3 * C + 5, 3 * C + 50],
    ["open-ended from a chunk edge", 2 * C, L - 1],
  ];
  for (const [name, start, end] of cases) {
    it(`${name} [${start}, ${end}]`, async () => {
      for (const pieces of [Number.MAX_SAFE_INTEGER, 1000, [1, C + 15, 3]]) {
        const { out, error } = await readRange(L, object, start, end, pieces);
        expect(error).toBeUndefined();
        expect(out.equals(plain.subarray(start, end + 1))).toBe(true);
      }
    });
  }

  it("last byte of an artifact that ends on a chunk edge (full final chunk)", async () => {
    const plain2 = pattern(2 * C);
    const obj2 = await seal(plain2, { ...ids, chunkSize: C, salt });
    const { out, error } = await readRange(2 * C, obj2, 2 * C - 1, 2 * C - 1, 777);
    expect(error).toBeUndefined();
    expect(out.equals(plain2.subarray(-1))).toBe(true);
  });

  it("unsatisfiable ranges, and any range of an empty artifact, are RangeNotSatisfiableError", async () => {
    for (const [size, start, end] of [
      [0, 0, 0],
      [10, 5, 4],
      [10, 0, 10],
      [10, -1, 3],
      [10, 1.5, 3],
    ] as const) {
      let caught: unknown;
      try {
        planRange(size, C, start, end);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(RangeNotSatisfiableError);
      const err = caught as InstanceType<typeof RangeNotSatisfiableError>;
      expect(err.code).toBe("range_not_satisfiable");
      expect(err.status).toBe(416);
      expect(err.message).toBe(`range ${start}-${end} is not satisfiable for an artifact of ${size} bytes`);
      expect(err.details).toEqual({ size });
    }
  });

  it("range stream refuses options planRange cannot produce", async () => {
    const base = { key: artifactKey, chunkSize: C, plainSize: L, firstChunk: 0, lastChunk: 0, skip: 0, take: 1 };
    for (const bad of [
      { lastChunk: 4 },
      { firstChunk: 1, lastChunk: 0 },
      { take: 0 },
      { skip: C },
      { take: C + 1 },
      { firstChunk: 3, lastChunk: 3, skip: 99, take: 2 },
    ]) {
      expect(() => decryptRange([], { ...base, ...bad })).toThrow(
        "range decrypt options do not describe a range planRange produces",
      );
    }
  });
});

describe("properties (fast-check)", () => {
  it("any size and any fragmentation: stream == one-shot, and both decrypt back", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 4 * C + 3 }),
        fc.array(fc.integer({ min: 1, max: 2 * C + 7 }), { minLength: 1, maxLength: 6 }),
        async (size, pieces) => {
          const plain = pattern(size, size);
          const oneShot = await seal(plain, { ...ids, chunkSize: C, salt });
          const enc = await run((s) => encrypt(s, { ...ids, chunkSize: C, salt }), fragment(plain, pieces));
          expect(enc.error).toBeUndefined();
          expect(enc.out.equals(oneShot)).toBe(true);
          const dec = await run((s) => decrypt(s, ids), fragment(oneShot, pieces));
          expect(dec.error).toBeUndefined();
          expect(dec.out.equals(plain)).toBe(true);
        },
      ),
      { numRuns: 40 },
    );
  });

  it("any satisfiable range decrypts to the same bytes as slicing the plaintext", async () => {
    const size = 4 * C + 21;
    const plain = pattern(size, 9);
    const object = await seal(plain, { ...ids, chunkSize: C, salt });
    const artifactKey = await deriveArtifactKey(dataKey, salt, ids.operationId, ids.path);
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: size - 1 }),
        fc.integer({ min: 0, max: size - 1 }),
        fc.integer({ min: 1, max: C + 40 }),
        async (a, b, piece) => {
          const [start, end] = a <= b ? [a, b] : [b, a];
          const plan = planRange(size, C, start, end);
          const stored = object.subarray(plan.objectStart, plan.objectEnd + 1);
          const { out, error } = await run((s) => decryptRange(s, { key: artifactKey, chunkSize: C, plainSize: size, ...plan }),
            fragment(stored, piece),
          );
          expect(error).toBeUndefined();
          expect(out.equals(plain.subarray(start, end + 1))).toBe(true);
        },
      ),
      { numRuns: 60 },
    );
  });
});
