// The engine's piece-cipher path ({ pieceCipher }, node:crypto's in the SDK): encrypt gives the same
// bytes as the WebCrypto path for every size and fragmentation, held back and pulled like it;
// decrypt restores them and releases nothing of a chunk that fails.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  collect,
  decrypt,
  decryptObject,
  decryptRange,
  deriveArtifactKey,
  deriveArtifactKeyBytes,
  encrypt,
  encryptObject,
  HEADER_BYTES,
  MIN_CHUNK_SIZE,
  planRange,
  TAG_BYTES,
} from "../src/crypto/engine/index.js";
import type { PieceCipher } from "../src/crypto/engine/index.js";
import { nodePieceCipher } from "../src/crypto/node-cipher.js";
import { IntegrityError, InvalidInputError } from "../src/errors.js";
import { fragment, pattern } from "./vectors/harness.js";

const C = MIN_CHUNK_SIZE;
const salt = new Uint8Array(32).fill(0x33);
const ids = { dataKey: new Uint8Array(32).fill(0x5a), operationId: "op_pieces", path: "out/data.bin", chunkSize: C, salt };
const pieces = { ...ids, pieceCipher: nodePieceCipher };

const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

describe("encrypt with a piece cipher", () => {
  it("equals the WebCrypto object for sizes around chunk edges, in any fragmentation (fast-check)", async () => {
    const sizes = fc.oneof(
      fc.constantFrom(0, 1, C - 1, C, C + 1, 2 * C, 3 * C - 1, 3 * C, 3 * C + 1),
      fc.integer({ min: 0, max: 5 * C }),
    );
    await fc.assert(
      fc.asyncProperty(sizes, fc.array(fc.integer({ min: 1, max: 2 * C + 7 }), { minLength: 1, maxLength: 5 }), async (size, cuts) => {
        const plain = pattern(size, size % 7);
        const expected = await encryptObject(plain, ids);
        const enc = encrypt(fragment(plain, cuts), pieces);
        expect(same(await collect(enc), expected)).toBe(true);
        expect(enc.plaintextBytes).toBe(size);
      }),
      { numRuns: 60 },
    );
  });

  it("empty pieces and an empty source give the same objects as WebCrypto", async () => {
    const plain = pattern(2 * C + 5);
    const withEmpties = [new Uint8Array(0), plain.subarray(0, C), new Uint8Array(0), plain.subarray(C), new Uint8Array(0)];
    expect(same(await collect(encrypt(withEmpties, pieces)), await encryptObject(plain, ids))).toBe(true);
    expect(same(await collect(encrypt([], pieces)), await encryptObject(new Uint8Array(0), ids))).toBe(true);
  });

  it("holds a full chunk back until a byte past it arrives, then hands it on without waiting for more", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const plain = pattern(3 * C + 1);
    const source = (async function* () {
      yield plain.subarray(0, C);
      await gate;
      yield plain.subarray(C, 3 * C + 1); // two chunks and a byte: both known not to be final
      await new Promise(() => {}); // and then stalls for good
    })();
    const it = encrypt(source, pieces)[Symbol.asyncIterator]();
    expect((await it.next()).value).toHaveLength(HEADER_BYTES);
    const next = it.next();
    let settled = false;
    void next.then(() => (settled = true));
    await new Promise((r) => setTimeout(r, 30));
    expect(settled).toBe(false);
    release();
    // Chunks 0 and 1 come out (ciphertext pieces, then each tag) while the source stalls.
    const got: Uint8Array[] = [(await next).value as Uint8Array];
    let bytes = got[0]!.length;
    while (bytes < 2 * (C + TAG_BYTES)) {
      const r = await it.next();
      got.push(r.value as Uint8Array);
      bytes += r.value!.length;
    }
    expect(bytes).toBe(2 * (C + TAG_BYTES));
    const expected = await encryptObject(plain, ids);
    expect(same(Buffer.concat(got), expected.subarray(HEADER_BYTES, HEADER_BYTES + bytes))).toBe(true);
  });

  it("is pulled: with nobody reading, no piece past the next one is read", async () => {
    let pulled = 0;
    const source = (async function* () {
      for (let i = 0; i < 400; i += 1) {
        pulled += 1;
        yield pattern(C, i);
      }
    })();
    const it = encrypt(source, pieces)[Symbol.asyncIterator]();
    await it.next(); // header
    await it.next(); // chunk 0's ciphertext, once chunk 1's first byte is in
    await new Promise((r) => setTimeout(r, 30));
    expect(pulled).toBeLessThanOrEqual(2);
    await it.return?.(undefined);
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
    for await (const piece of encrypt(source, pieces)) if (piece.length > HEADER_BYTES) break;
    expect(closed).toBe(true);
  });

  it("output never aliases input the producer reuses, nor a piece the cipher returns", async () => {
    const scratch = new Uint8Array(C);
    const plain = pattern(5 * C + 3);
    const source = (async function* () {
      for (let off = 0; off < plain.length; off += 4000) {
        const n = Math.min(4000, plain.length - off);
        scratch.set(plain.subarray(off, off + n));
        yield scratch.subarray(0, n);
        scratch.fill(0xee);
      }
    })();
    const out: Uint8Array[] = [];
    for await (const p of encrypt(source, pieces)) out.push(p);
    expect(same(Buffer.concat(out), await encryptObject(plain, ids))).toBe(true);
  });

  it("a source error and a non-byte piece come out of the iteration; the cipher sees nothing after", async () => {
    const calls: string[] = [];
    const spy: PieceCipher = {
      sealer(key, nonce) {
        const s = nodePieceCipher.sealer(key, nonce);
        return { update: (p) => (calls.push("u"), s.update(p)), final: () => (calls.push("f"), s.final()) };
      },
    };
    const failing = (async function* () {
      yield pattern(C + 1);
      throw new Error("disk went away");
    })();
    await expect(collect(encrypt(failing, { ...ids, pieceCipher: spy }))).rejects.toThrow("disk went away");
    expect(calls.at(-1)).toBe("u");
    await expect(collect(encrypt([pattern(3), "text" as unknown as Uint8Array], pieces))).rejects.toBeInstanceOf(InvalidInputError);
  });
});

describe("decrypt with a piece cipher", () => {
  it("restores every size around chunk edges from any fragmentation, like WebCrypto (fast-check)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.constantFrom(0, 1, C - 1, C, C + 1, 2 * C, 3 * C + 1), fc.integer({ min: 0, max: 4 * C })),
        fc.array(fc.integer({ min: 1, max: 2 * C + 40 }), { minLength: 1, maxLength: 4 }),
        async (size, cuts) => {
          const plain = pattern(size, 3);
          const object = Buffer.from(await encryptObject(plain, ids));
          const dec = decrypt(fragment(object, cuts), { ...pieces, expectedPlainSize: size });
          expect(Buffer.from(await collect(dec)).equals(plain)).toBe(true);
          expect(dec.plaintextBytes).toBe(size);
          expect(Buffer.from(await decryptObject(object, pieces)).equals(plain)).toBe(true);
        },
      ),
      { numRuns: 40 },
    );
  });

  it("releases nothing of a chunk whose tag fails, and names the chunk; truncation is integrity too", async () => {
    const plain = pattern(3 * C + 5);
    const object = Buffer.from(await encryptObject(plain, ids));
    const flipped = Buffer.from(object);
    flipped[HEADER_BYTES + (C + TAG_BYTES) + 10]! ^= 1; // inside chunk 1
    const out: Uint8Array[] = [];
    const error = await (async () => {
      for await (const p of decrypt(fragment(flipped, 5000), pieces)) out.push(p);
    })().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IntegrityError);
    expect(String((error as Error).message)).toMatch(/chunk 1\b/);
    expect(Buffer.concat(out).equals(plain.subarray(0, C))).toBe(true);
    const cut = object.subarray(0, HEADER_BYTES + 2 * (C + TAG_BYTES)); // ends on a chunk edge: no final chunk
    await expect(collect(decrypt([cut], pieces))).rejects.toBeInstanceOf(IntegrityError);
    await expect(decryptObject(flipped.subarray(0, HEADER_BYTES + 20), pieces)).rejects.toBeInstanceOf(IntegrityError);
  });

  it("node:crypto's open refuses a stored chunk shorter than its tag", () => {
    expect(() => nodePieceCipher.open(new Uint8Array(32), new Uint8Array(12), new Uint8Array(15))).toThrow(/shorter than its tag/);
  });
});

describe("decryptRange with a piece cipher", () => {
  it("gives every range WebCrypto gives, from the raw key; a CryptoKey or a short key is refused", async () => {
    const plain = pattern(4 * C + 77, 9);
    const object = Buffer.from(await encryptObject(plain, ids));
    const raw = await deriveArtifactKeyBytes(ids.dataKey, salt, ids.operationId, ids.path);
    const key = await deriveArtifactKey(ids.dataKey, salt, ids.operationId, ids.path);
    for (const [start, end] of [[0, 0], [5, C + 3], [C, 2 * C - 1], [3 * C + 1, 4 * C + 76], [0, 4 * C + 76]] as const) {
      const plan = planRange(plain.length, C, start, end);
      const stored = object.subarray(plan.objectStart, plan.objectEnd + 1);
      const common = { chunkSize: C, plainSize: plain.length, ...plan };
      const viaWeb = await collect(decryptRange(fragment(stored, 3000), { ...common, key }));
      const viaPieces = await collect(decryptRange(fragment(stored, 3000), { ...common, key: raw, pieceCipher: nodePieceCipher }));
      expect(Buffer.from(viaPieces).equals(plain.subarray(start, end + 1))).toBe(true);
      expect(Buffer.from(viaPieces).equals(Buffer.from(viaWeb))).toBe(true);
    }
    const plan = planRange(plain.length, C, 0, 10);
    const common = { chunkSize: C, plainSize: plain.length, ...plan };
    expect(() => decryptRange([], { ...common, key, pieceCipher: nodePieceCipher })).toThrow(InvalidInputError);
    expect(() => decryptRange([], { ...common, key: raw.subarray(1), pieceCipher: nodePieceCipher })).toThrow(InvalidInputError);
  });
});
