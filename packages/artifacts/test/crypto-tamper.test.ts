// Format-level tampering: every case must end in IntegrityError and must never release a byte
// that differs from the original plaintext (whatever was released is a prefix of it, and
// comes in whole verified chunks).
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  decrypt,
  decryptRange,
  deriveArtifactKey,
  HEADER_BYTES,
  MIN_CHUNK_SIZE,
  planRange,
  TAG_BYTES,
} from "../src/crypto.js";
import { IntegrityError } from "../src/errors.js";
import { fragment, open, pattern, run, seal } from "./vectors/harness.js";

const C = MIN_CHUNK_SIZE;
const S = C + TAG_BYTES; // stored bytes of a full chunk
const H = HEADER_BYTES;
const L = 3 * C + 100; // four chunks, the last one short
const dataKey = Buffer.alloc(32, 0x6b);
const ids = { dataKey, operationId: "op_tamper", path: "logs/run.txt" };
const plain = pattern(L, 3);
const object = await seal(plain, { ...ids, chunkSize: C, salt: Buffer.alloc(32, 0x77) });
const chunk = (i: number): Buffer => object.subarray(H + i * S, Math.min(H + (i + 1) * S, object.length));

const authFailed = (i: number): string => `chunk ${i} of the encrypted object failed authentication`;
const badSize = (n: number): string => `encrypted size ${n} is not a valid object size for chunk size ${C}`;

function flip(buf: Buffer, offset: number, bit = 0x01): Buffer {
  const out = Buffer.from(buf);
  out[offset] = (out[offset] as number) ^ bit;
  return out;
}

/** Asserts the tampered object fails both ways, releasing exactly `released` verified bytes when streamed. */
async function expectRejected(
  tampered: Buffer,
  expected: { stream: string; released: number; oneShot: string },
  opts: typeof ids = ids,
): Promise<void> {
  await expect(open(tampered, opts)).rejects.toThrow(IntegrityError);
  await expect(open(tampered, opts)).rejects.toThrow(expected.oneShot);
  for (const pieces of [Number.MAX_SAFE_INTEGER, 1000, [1, 4099, S + 1, 16]]) {
    const { out, error } = await run((s) => decrypt(s, opts), fragment(tampered, pieces));
    expect(error).toBeInstanceOf(IntegrityError);
    expect((error as InstanceType<typeof IntegrityError>).code).toBe("integrity");
    expect((error as Error).message).toBe(expected.stream);
    expect(out.length % C).toBe(0);
    expect(out.equals(plain.subarray(0, out.length))).toBe(true);
    expect(out.length).toBe(expected.released);
  }
}

describe("the untampered object decrypts (control)", () => {
  it("round trips", async () => {
    expect((await open(object, ids)).equals(plain)).toBe(true);
    const { out, error } = await run((s) => decrypt(s, ids), fragment(object, 1000));
    expect(error).toBeUndefined();
    expect(out.equals(plain)).toBe(true);
  });
});

describe("bit flips", () => {
  it("in every header byte", async () => {
    for (let offset = 0; offset < H; offset += 1) {
      const bit = 1 << offset % 8;
      const tampered = flip(object, offset, bit);
      let message: string;
      if (offset < 4) message = "encrypted object does not start with the PSAE magic";
      else if (offset === 4) message = `encrypted object has unsupported format version ${1 ^ bit}`;
      else {
        const size = tampered.readUInt32BE(5);
        message =
          size < MIN_CHUNK_SIZE || size > 4 * 1024 * 1024
            ? `encrypted object header has chunk size ${size}, outside 16384..4194304`
            : authFailed(0); // another valid chunk size, or another salt: chunk 0 no longer verifies
      }
      await expectRejected(tampered, { stream: message, released: 0, oneShot: message });
    }
  });

  it("in the middle of a chunk's ciphertext", async () => {
    await expectRejected(flip(object, H + S + 500, 0x10), { stream: authFailed(1), released: C, oneShot: authFailed(1) });
  });

  it("in the first chunk's tag", async () => {
    await expectRejected(flip(object, H + S - 1), { stream: authFailed(0), released: 0, oneShot: authFailed(0) });
  });

  it("in the last tag", async () => {
    await expectRejected(flip(object, object.length - 1, 0x80), {
      stream: authFailed(3),
      released: 3 * C,
      oneShot: authFailed(3),
    });
  });
});

describe("truncation and extension", () => {
  it("mid-chunk", async () => {
    await expectRejected(object.subarray(0, H + 2 * S + 100), { stream: authFailed(2), released: 2 * C, oneShot: authFailed(2) });
  });

  it("mid-chunk, leaving less than a tag", async () => {
    const cut = H + 2 * S + 10;
    await expectRejected(object.subarray(0, cut), {
      stream: "encrypted object ends inside chunk 2 (10 bytes, shorter than its tag)",
      released: 2 * C,
      oneShot: badSize(cut),
    });
  });

  it("inside the last tag", async () => {
    await expectRejected(object.subarray(0, object.length - 5), { stream: authFailed(3), released: 3 * C, oneShot: authFailed(3) });
  });

  it("exactly at a chunk boundary", async () => {
    await expectRejected(object.subarray(0, H + 2 * S), { stream: authFailed(1), released: C, oneShot: authFailed(1) });
  });

  it("dropping the final chunk", async () => {
    await expectRejected(object.subarray(0, H + 3 * S), { stream: authFailed(2), released: 2 * C, oneShot: authFailed(2) });
  });

  it("dropping a final chunk that was full-size", async () => {
    const full = pattern(2 * C);
    const obj = await seal(full, { ...ids, chunkSize: C });
    const cut = obj.subarray(0, H + S);
    await expect(open(cut, ids)).rejects.toThrow(authFailed(0));
    const { out, error } = await run((s) => decrypt(s, ids), fragment(cut, 333));
    expect((error as Error).message).toBe(authFailed(0));
    expect(out.length).toBe(0);
  });

  it("down to the header, into the header, to nothing", async () => {
    await expectRejected(object.subarray(0, H), {
      stream: "encrypted object ends without a final chunk",
      released: 0,
      oneShot: badSize(H),
    });
    await expectRejected(object.subarray(0, 20), {
      stream: "encrypted object ends inside its header (20 of 41 bytes)",
      released: 0,
      oneShot: "encrypted object header is truncated (20 of 41 bytes)",
    });
    await expectRejected(Buffer.alloc(0), {
      stream: "encrypted object ends inside its header (0 of 41 bytes)",
      released: 0,
      oneShot: "encrypted object header is truncated (0 of 41 bytes)",
    });
  });

  it.each([1, 16, 17, S])("appending %i bytes", async (n) => {
    const tampered = Buffer.concat([object, chunk(0).subarray(0, n)]);
    await expectRejected(tampered, { stream: authFailed(3), released: 3 * C, oneShot: authFailed(3) });
  });
});

describe("reordering", () => {
  it("swapping chunks 0 and 1", async () => {
    const tampered = Buffer.concat([object.subarray(0, H), chunk(1), chunk(0), chunk(2), chunk(3)]);
    await expectRejected(tampered, { stream: authFailed(0), released: 0, oneShot: authFailed(0) });
  });

  it("swapping chunks 1 and 2", async () => {
    const tampered = Buffer.concat([object.subarray(0, H), chunk(0), chunk(2), chunk(1), chunk(3)]);
    await expectRejected(tampered, { stream: authFailed(1), released: C, oneShot: authFailed(1) });
  });

  it("duplicating a chunk", async () => {
    const tampered = Buffer.concat([object.subarray(0, H), chunk(0), chunk(1), chunk(1), chunk(2), chunk(3)]);
    await expectRejected(tampered, { stream: authFailed(2), released: 2 * C, oneShot: authFailed(2) });
  });

  it("splicing in a chunk of another object with the same keys and path", async () => {
    const other = await seal(plain, { ...ids, chunkSize: C });
    const tampered = Buffer.concat([object.subarray(0, H + S), other.subarray(H + S, H + 2 * S), object.subarray(H + 2 * S)]);
    await expectRejected(tampered, { stream: authFailed(1), released: C, oneShot: authFailed(1) });
  });
});

describe("moving objects", () => {
  it.each([
    ["another path", { ...ids, path: "logs/run2.txt" }],
    ["another operation", { ...ids, operationId: "op_tamper2" }],
    ["another data key", { ...ids, dataKey: Buffer.alloc(32, 0x6c) }],
  ])("decrypting with %s", async (_name, opts) => {
    await expectRejected(object, { stream: authFailed(0), released: 0, oneShot: authFailed(0) }, opts);
  });
});

describe("forged chunk size in the header", () => {
  it.each([0, 2 ** 32 - 1])("%i is refused as soon as the header is read", async (size) => {
    const tampered = Buffer.from(object);
    tampered.writeUInt32BE(size, 5);
    const message = `encrypted object header has chunk size ${size}, outside 16384..4194304`;
    await expectRejected(tampered, { stream: message, released: 0, oneShot: message });
  });
});

describe("ranged reads", async () => {
  const artifactKey = await deriveArtifactKey(dataKey, object.subarray(9, H), ids.operationId, ids.path);

  async function rangeRun(start: number, end: number, edit: (stored: Buffer) => Buffer, plainSize = L) {
    const plan = planRange(L, C, start, end);
    const stored = edit(Buffer.from(object.subarray(plan.objectStart, plan.objectEnd + 1)));
    const res = await run((s) => decryptRange(s, { key: artifactKey, chunkSize: C, plainSize, ...plan }), fragment(stored, 1000));
    // Released bytes are the requested range's prefix, cut from verified chunks only.
    expect(res.out.equals(plain.subarray(start, start + res.out.length))).toBe(true);
    return res;
  }

  it("control: the untouched range decrypts", async () => {
    const { out, error } = await rangeRun(C + 7, 3 * C + 3, (s) => s);
    expect(error).toBeUndefined();
    expect(out.length).toBe(2 * C - 3);
  });

  it("a flipped bit in the second chunk releases only the first chunk's part", async () => {
    const { out, error } = await rangeRun(C + 7, 3 * C + 3, (s) => flip(s, S + 10));
    expect(error).toBeInstanceOf(IntegrityError);
    expect((error as Error).message).toBe(authFailed(2));
    expect(out.length).toBe(C - 7);
  });

  it("short input", async () => {
    const { out, error } = await rangeRun(C + 7, 3 * C + 3, (s) => s.subarray(0, s.length - 1));
    expect((error as Error).message).toBe(`ranged read ended inside chunk 3 (115 of 116 bytes)`);
    expect(out.length).toBe(2 * C - 7);
  });

  it("extra input", async () => {
    const { error } = await rangeRun(C + 7, 3 * C + 3, (s) => Buffer.concat([s, Buffer.of(0)]));
    expect(error).toBeInstanceOf(IntegrityError);
    expect((error as Error).message).toBe("ranged read returned more bytes than the requested chunks hold");
  });

  it("another chunk's bytes in place of the requested one", async () => {
    const { out, error } = await rangeRun(C, C + 5, () => Buffer.from(chunk(2)));
    expect((error as Error).message).toBe(authFailed(1));
    expect(out.length).toBe(0);
  });

  it("a plainSize that makes a middle chunk look final (metadata shortened)", async () => {
    const { out, error } = await rangeRun(2 * C, 2 * C + 5, (s) => s, 3 * C);
    expect((error as Error).message).toBe(authFailed(2));
    expect(out.length).toBe(0);
  });
});

describe("random tampering (fast-check)", () => {
  /** Streams `tampered` through the decryptor: must fail with IntegrityError after releasing only verified plaintext. */
  async function mustFail(tampered: Buffer, piece: number): Promise<void> {
    await expect(open(tampered, ids)).rejects.toThrow(IntegrityError);
    const { out, error } = await run((s) => decrypt(s, ids), fragment(tampered, piece));
    expect(error).toBeInstanceOf(IntegrityError);
    expect(out.length % C).toBe(0);
    expect(out.equals(plain.subarray(0, out.length))).toBe(true);
  }

  it("any single-bit flip anywhere", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: object.length - 1 }),
        fc.integer({ min: 0, max: 7 }),
        fc.integer({ min: 1, max: 3 * S }),
        async (offset, bit, piece) => mustFail(flip(object, offset, 1 << bit), piece),
      ),
      { numRuns: 150 },
    );
  });

  it("any truncation, and any appended bytes", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: object.length - 1 }), fc.integer({ min: 1, max: 3 * S }), async (cut, piece) =>
        mustFail(object.subarray(0, cut), piece),
      ),
      { numRuns: 100 },
    );
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 2 * S }), async (extra) =>
        mustFail(Buffer.concat([object, extra]), 4096),
      ),
      { numRuns: 50 },
    );
  });
});
