// The crypto engine's own properties: portable (no Node API), chunks in flight in order,
// pulled (bounded memory), the final chunk held back, output never aliasing reused input.
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import {
  collect,
  decrypt,
  decryptRange,
  deriveArtifactKey,
  encrypt,
  encryptedSize,
  encryptObject,
  HEADER_BYTES,
  MIN_CHUNK_SIZE,
  planRange,
  TAG_BYTES,
} from "../src/crypto/engine/index.js";
import { IntegrityError, InvalidInputError } from "../src/errors.js";
import { fragment, pattern } from "./vectors/harness.js";

const C = MIN_CHUNK_SIZE;
const dataKey = new Uint8Array(32).fill(0x5a);
const salt = new Uint8Array(32).fill(0x33);
const ids = { dataKey, operationId: "op_engine", path: "out/data.bin" };
const engineDir = fileURLToPath(new URL("../src/crypto/engine/", import.meta.url));

/** A source that records how many pieces were pulled from it. */
function counted(pieces: Uint8Array[]): { source: AsyncIterable<Uint8Array>; pulled: () => number } {
  let pulled = 0;
  return {
    source: (async function* () {
      for (const p of pieces) {
        pulled += 1;
        yield p;
      }
    })(),
    pulled: () => pulled,
  };
}

describe("crypto engine", () => {
  it("imports no node:* module and uses no Buffer, process or Node stream (it runs in browsers)", () => {
    const files = readdirSync(engineDir).filter((f) => f.endsWith(".ts"));
    expect(files.sort()).toEqual(["format.ts", "index.ts", "keys.ts", "pieces.ts", "stream.ts"]);
    for (const file of files) {
      // Code only: the doc comments name what the engine does not use.
      const text = readFileSync(`${engineDir}${file}`, "utf8").replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, "");
      const imports = [...text.matchAll(/from\s+"([^"]+)"/g)].map((m) => m[1]);
      for (const spec of imports) expect(spec, `${file} imports ${spec}`).toMatch(/^\.\.?\//);
      expect(imports.filter((s) => s!.startsWith("../")), file).toEqual(imports.filter((s) => s === "../../errors.js"));
      expect(text, file).not.toMatch(/\bBuffer\b|\bprocess\.|\brequire\(|ReadableStream|node:/);
    }
    const errors = readFileSync(fileURLToPath(new URL("../src/errors.ts", import.meta.url)), "utf8");
    expect(errors).not.toMatch(/^import/m);
  });

  for (const concurrency of [1, 2, 3, 4, 8]) {
    it(`concurrency ${concurrency}: 37 chunks in odd pieces come out in order, equal to the one-shot object`, async () => {
      const plain = pattern(37 * C - 5, concurrency);
      const expected = await encryptObject(plain, { ...ids, chunkSize: C, salt });
      const enc = encrypt(fragment(plain, [C - 3, 7, 2 * C + 1, 1, 5000]), { ...ids, chunkSize: C, salt, concurrency });
      const object = await collect(enc);
      expect(Buffer.from(object).equals(Buffer.from(expected))).toBe(true);
      expect(enc.plaintextBytes).toBe(plain.length);
      const dec = decrypt(fragment(Buffer.from(object), [999, C + 16, 3]), { ...ids, concurrency, expectedPlainSize: plain.length });
      expect(Buffer.from(await collect(dec)).equals(plain)).toBe(true);
      expect(dec.plaintextBytes).toBe(plain.length);
    });
  }

  it("is pulled: with nobody reading, the source is read no further than the chunks in flight", async () => {
    const pieces = Array.from({ length: 400 }, (_, i) => pattern(C, i));
    for (const concurrency of [1, 4]) {
      const { source, pulled } = counted(pieces);
      const it = encrypt(source, { ...ids, chunkSize: C, concurrency })[Symbol.asyncIterator]();
      expect((await it.next()).value).toHaveLength(HEADER_BYTES);
      const first = await it.next();
      expect(first.value).toHaveLength(C + TAG_BYTES);
      await new Promise((r) => setTimeout(r, 50));
      // concurrency chunks sealed or sealing, one piece held back to decide finality.
      expect(pulled()).toBeLessThanOrEqual(concurrency + 2);
      await it.return?.(undefined);
    }
    const object = Buffer.from(await encryptObject(Buffer.concat(pieces), { ...ids, chunkSize: C }));
    const { source, pulled } = counted(fragment(object, C));
    const it = decrypt(source, { ...ids, concurrency: 4 })[Symbol.asyncIterator]();
    await it.next();
    await new Promise((r) => setTimeout(r, 50));
    expect(pulled()).toBeLessThanOrEqual(4 + 3);
    await it.return?.(undefined);
  });

  it("a stalled source still lets every completed chunk through (the output does not wait for input it does not need)", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const plain = pattern(6 * C + 1);
    const source = (async function* () {
      yield plain; // six full chunks and a byte: all six are known not to be final
      await gate;
    })();
    const it = encrypt(source, { ...ids, chunkSize: C, salt, concurrency: 4 })[Symbol.asyncIterator]();
    const got: Uint8Array[] = [];
    for (let i = 0; i < 7; i += 1) got.push((await it.next()).value as Uint8Array);
    expect(got.map((g) => g.length)).toEqual([HEADER_BYTES, ...Array(6).fill(C + TAG_BYTES)]);
    release();
    const rest = await collect({ [Symbol.asyncIterator]: () => it });
    const whole = Buffer.concat([...got, rest]);
    expect(whole.equals(Buffer.from(await encryptObject(plain, { ...ids, chunkSize: C, salt })))).toBe(true);
  });

  it("stopping early closes the source", async () => {
    let closed = false;
    const source = (async function* () {
      try {
        for (let i = 0; i < 100; i += 1) yield pattern(C);
      } finally {
        closed = true;
      }
    })();
    for await (const piece of encrypt(source, { ...ids, chunkSize: C })) {
      if (piece.length > HEADER_BYTES) break;
    }
    expect(closed).toBe(true);
  });

  it("holds back a full chunk until a byte past it or the end says whether it is final", async () => {
    const plain = pattern(2 * C);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const source = (async function* () {
      yield plain.subarray(0, C);
      await gate;
      yield plain.subarray(C);
    })();
    const it = encrypt(source, { ...ids, chunkSize: C, salt })[Symbol.asyncIterator]();
    await it.next(); // header
    const second = it.next();
    let settled = false;
    void second.then(() => (settled = true));
    await new Promise((r) => setTimeout(r, 30));
    expect(settled).toBe(false);
    release();
    expect((await second).value).toHaveLength(C + TAG_BYTES);
    const rest = await collect({ [Symbol.asyncIterator]: () => it });
    expect(rest).toHaveLength(C + TAG_BYTES);
    expect(HEADER_BYTES + 2 * (C + TAG_BYTES)).toBe(encryptedSize(2 * C, C));
  });

  it("output never aliases input the producer reuses", async () => {
    // A producer that overwrites one buffer for every piece: each sealed chunk must be unaffected.
    const scratch = new Uint8Array(C);
    const plain = pattern(6 * C + 3);
    const source = (async function* () {
      for (let off = 0; off < plain.length; off += C) {
        const n = Math.min(C, plain.length - off);
        scratch.set(plain.subarray(off, off + n));
        yield scratch.subarray(0, n);
      }
    })();
    const object = await collect(encrypt(source, { ...ids, chunkSize: C, salt }));
    expect(Buffer.from(object).equals(Buffer.from(await encryptObject(plain, { ...ids, chunkSize: C, salt })))).toBe(true);
    const out: Uint8Array[] = [];
    const reuse = new Uint8Array(C + TAG_BYTES + 7);
    const replay = (async function* () {
      for (let off = 0; off < object.length; off += reuse.length) {
        const n = Math.min(reuse.length, object.length - off);
        reuse.set(object.subarray(off, off + n));
        yield reuse.subarray(0, n);
      }
    })();
    for await (const p of decrypt(replay, ids)) out.push(p);
    expect(Buffer.concat(out).equals(plain)).toBe(true);
  });

  it("a failing chunk in flight stops the output at the chunk before it, with integrity", async () => {
    const plain = pattern(10 * C);
    const object = Buffer.from(await encryptObject(plain, { ...ids, chunkSize: C }));
    object[HEADER_BYTES + 6 * (C + TAG_BYTES) + 5]! ^= 1;
    const out: Uint8Array[] = [];
    let error: unknown;
    try {
      for await (const p of decrypt(fragment(object, 4096), { ...ids, concurrency: 8 })) out.push(p);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(IntegrityError);
    expect((error as Error).message).toBe("chunk 6 of the encrypted object failed authentication");
    expect(Buffer.concat(out).equals(plain.subarray(0, 6 * C))).toBe(true);
  });

  it("ranged decrypt runs chunks in flight too", async () => {
    const L = 20 * C + 9;
    const plain = pattern(L, 3);
    const object = Buffer.from(await encryptObject(plain, { ...ids, chunkSize: C, salt }));
    const key = await deriveArtifactKey(dataKey, salt, ids.operationId, ids.path);
    const plan = planRange(L, C, 3 * C - 2, L - 1);
    const stored = object.subarray(plan.objectStart, plan.objectEnd + 1);
    const out = await collect(decryptRange(fragment(stored, 7777), { key, chunkSize: C, plainSize: L, ...plan, concurrency: 3 }));
    expect(Buffer.from(out).equals(plain.subarray(3 * C - 2))).toBe(true);
  });

  it("refuses bad concurrency, non-byte pieces and a missing key", async () => {
    expect(() => encrypt([], { ...ids, concurrency: 0 })).toThrow(InvalidInputError);
    expect(() => decrypt([], { ...ids, concurrency: 65 })).toThrow("concurrency must be 1..64, got 65");
    await expect(collect(encrypt(["text" as unknown as Uint8Array], ids))).rejects.toThrow(
      "stream pieces must be Uint8Array",
    );
    expect(() =>
      decryptRange([], { key: {} as CryptoKey, chunkSize: C, plainSize: 1, firstChunk: 0, lastChunk: 0, skip: 0, take: 1 }),
    ).toThrow("range decrypt needs the artifact key from deriveArtifactKey");
  });
});
