// The store's Node fast path for one-chunk artifacts: the same bytes as the engine, both ways.
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { openOneChunk, sealOneChunk } from "../src/crypto/one-chunk.js";
import { IntegrityError, InvalidInputError } from "../src/errors.js";
import { loadVectors, open, pattern, seal, vectorObject } from "./vectors/harness.js";

const V = loadVectors();
const dataKey = Buffer.from(V.dataKey, "hex");
const salt = Buffer.from(V.salt, "hex");
const C = V.chunkSize;
const opts = { dataKey, operationId: V.operationId, path: V.path, chunkSize: C, salt };

describe("one-chunk fast path", () => {
  for (const vec of V.artifacts.filter((a) => a.plainSize <= C)) {
    it(`reproduces and opens the ${vec.plainSize}-byte vector`, () => {
      const stored = vectorObject(vec);
      expect(sealOneChunk(pattern(vec.plainSize), opts).equals(stored)).toBe(true);
      expect(openOneChunk(stored, opts).equals(pattern(vec.plainSize))).toBe(true);
    });
  }

  it("agrees with the engine on random sizes, keys and salts", async () => {
    for (const size of [0, 1, 100, 4096, C - 1, C]) {
      const o = { dataKey: randomBytes(32), operationId: "op_1", path: `p/${size}`, chunkSize: C, salt: randomBytes(32) };
      const plain = randomBytes(size);
      const mine = sealOneChunk(plain, o);
      expect(mine.equals(await seal(plain, o))).toBe(true);
      expect((await open(mine, o)).equals(plain)).toBe(true);
      expect(openOneChunk(await seal(plain, o), o).equals(plain)).toBe(true);
    }
  });

  it("refuses more than one chunk, and anything that does not verify", () => {
    expect(() => sealOneChunk(pattern(C + 1), opts)).toThrow(InvalidInputError);
    expect(() => openOneChunk(vectorObject(V.artifacts.find((a) => a.plainSize === C + 1)!), opts)).toThrow(
      `object of ${C + 1} bytes has more than one chunk`,
    );
    const stored = Buffer.from(vectorObject(V.artifacts.find((a) => a.plainSize === 1)!));
    for (const at of [9, 41, stored.length - 1]) {
      const bad = Buffer.from(stored);
      bad[at]! ^= 1;
      expect(() => openOneChunk(bad, opts)).toThrow(IntegrityError);
    }
    expect(() => openOneChunk(stored, { ...opts, path: `${V.path}x` })).toThrow("chunk 0 of the encrypted object failed authentication");
    expect(() => openOneChunk(stored.subarray(0, 56), opts)).toThrow(IntegrityError);
  });
});
