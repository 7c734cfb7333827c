import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ArtifactError, type ArtifactStore } from "@personal-server/artifacts";
import { DEFAULT_CHUNK_SIZE, HEADER_BYTES } from "@personal-server/artifacts/internal";
import { GRANTEE, LAYOUT_CASES, type Harness, OTHER_MASTER_KEY, drain, listKeys, openHarness, random } from "./helpers.js";

const C = DEFAULT_CHUNK_SIZE;
const T = 16;
const STORED_CHUNK = C + T;

type Mutation = (object: Buffer) => Buffer;

/** Mutations of stored object bytes; the artifact is 3 chunks: C, C, 500 bytes. */
const objectMutations: Record<string, Mutation> = {
  "flip magic": (o) => flip(o, 0),
  "flip version": (o) => flip(o, 4),
  "flip chunk size": (o) => flip(o, 7),
  "flip salt": (o) => flip(o, 20),
  "flip first ciphertext byte": (o) => flip(o, HEADER_BYTES),
  "flip middle byte": (o) => flip(o, HEADER_BYTES + STORED_CHUNK + 12345),
  "flip last tag byte": (o) => flip(o, o.length - 1),
  "truncate mid-chunk": (o) => o.subarray(0, HEADER_BYTES + STORED_CHUNK + 100),
  "truncate at a chunk boundary": (o) => o.subarray(0, HEADER_BYTES + 2 * STORED_CHUNK),
  "drop the final chunk, keep length": (o) =>
    Buffer.concat([o.subarray(0, HEADER_BYTES + 2 * STORED_CHUNK), Buffer.alloc(o.length - HEADER_BYTES - 2 * STORED_CHUNK)]),
  "append bytes": (o) => Buffer.concat([o, Buffer.from("extra")]),
  "swap two chunks": (o) =>
    Buffer.concat([
      o.subarray(0, HEADER_BYTES),
      o.subarray(HEADER_BYTES + STORED_CHUNK, HEADER_BYTES + 2 * STORED_CHUNK),
      o.subarray(HEADER_BYTES, HEADER_BYTES + STORED_CHUNK),
      o.subarray(HEADER_BYTES + 2 * STORED_CHUNK),
    ]),
  "duplicate a chunk over the next": (o) =>
    Buffer.concat([
      o.subarray(0, HEADER_BYTES + STORED_CHUNK),
      o.subarray(HEADER_BYTES, HEADER_BYTES + STORED_CHUNK),
      o.subarray(HEADER_BYTES + 2 * STORED_CHUNK),
    ]),
  "empty object": () => Buffer.alloc(0),
};

function flip(o: Buffer, at: number): Buffer {
  const copy = Buffer.from(o);
  copy[at] = copy[at]! ^ 0x01;
  return copy;
}

/**
 * A read must fail with `expected` (at call time or mid-stream) and never release a byte that
 * differs from the plaintext.
 */
async function expectRefused(
  store: ArtifactStore,
  operationId: string,
  path: string,
  plaintext: Buffer,
  expected: string,
  range?: { start: number; end?: number },
): Promise<void> {
  const outcome = await attempt(store, operationId, path, range);
  expect(outcome.error, "the read must fail").toBeInstanceOf(ArtifactError);
  expect((outcome.error as ArtifactError).code).toBe(expected);
  expectPrefix(outcome.released, plaintext, range?.start ?? 0);
}

/** A ranged read that does not cover the tampered bytes may succeed, but only with the exact plaintext. */
async function expectRefusedOrExact(
  store: ArtifactStore,
  operationId: string,
  path: string,
  plaintext: Buffer,
  range: { start: number; end?: number },
): Promise<void> {
  const outcome = await attempt(store, operationId, path, range);
  if (outcome.error === undefined) {
    expect(outcome.released.equals(plaintext.subarray(range.start, range.end === undefined ? undefined : range.end + 1))).toBe(true);
  } else {
    expect((outcome.error as ArtifactError).code).toBe("integrity");
    expectPrefix(outcome.released, plaintext, range.start);
  }
}

function expectPrefix(released: Buffer, plaintext: Buffer, start: number): void {
  expect(released.equals(plaintext.subarray(start, start + released.length)), "released bytes match the plaintext").toBe(true);
}

async function attempt(
  store: ArtifactStore,
  operationId: string,
  path: string,
  range: { start: number; end?: number } | undefined,
): Promise<{ released: Buffer; error: unknown }> {
  let error: unknown;
  let released = Buffer.alloc(0);
  try {
    const { body } = await store.getArtifact(operationId, path, { requester: GRANTEE, range });
    ({ bytes: released, error } = await drain(body));
  } catch (e) {
    error = e;
  }
  return { released, error };
}

describe.each(LAYOUT_CASES)("tampering on %s, layout %i", (kind, layout) => {
  let h: Harness;
  beforeAll(async () => {
    h = await openHarness(kind, {}, layout);
  });
  afterAll(async () => {
    await h.close();
  });

  async function seeded(size = 2 * C + 500) {
    const op = await h.store.createOperation({ grantee: GRANTEE });
    const plaintext = random(size);
    await h.store.putArtifact(op.operationId, "a.bin", plaintext);
    const key = `operations/${op.operationId}/artifacts/a.bin`;
    const object = (await h.raw.getBytes(key))!.body;
    return { operationId: op.operationId, plaintext, key, object };
  }

  it.each(Object.keys(objectMutations))("%s -> integrity (whole and ranged reads)", async (name) => {
    const { operationId, plaintext, key, object } = await seeded();
    await h.raw.put(key, objectMutations[name]!(object));
    await expectRefused(h.store, operationId, "a.bin", plaintext, "integrity");
    await expectRefusedOrExact(h.store, operationId, "a.bin", plaintext, { start: C + 10 });
    await expectRefusedOrExact(h.store, operationId, "a.bin", plaintext, { start: 0, end: 99 });
  });

  it.each(["flip", "truncate", "append"])("small (one-chunk) artifact: %s -> integrity", async (how) => {
    const { operationId, plaintext, key, object } = await seeded(100);
    const mutated = how === "flip" ? flip(object, object.length - 20) : how === "truncate" ? object.subarray(0, -1) : Buffer.concat([object, Buffer.alloc(1)]);
    await h.raw.put(key, mutated);
    await expectRefused(h.store, operationId, "a.bin", plaintext, "integrity");
  });

  it("an object copied to another path of the same size -> integrity", async () => {
    const { operationId, plaintext, object } = await seeded();
    await h.store.putArtifact(operationId, "b.bin", random(plaintext.length));
    await h.raw.put(`operations/${operationId}/artifacts/b.bin`, object);
    await expectRefused(h.store, operationId, "b.bin", plaintext, "integrity");
  });

  it("an object copied into another operation -> integrity", async () => {
    const first = await seeded();
    const second = await seeded();
    await h.raw.put(second.key, first.object);
    await expectRefused(h.store, second.operationId, "a.bin", second.plaintext, "integrity");
  });

  it("edited metadata: grantee, expiry, operation id, sizes", async () => {
    const { operationId, plaintext } = await seeded();
    const metaKey = `operations/${operationId}/metadata.json`;
    const original = (await h.raw.getBytes(metaKey))!.body;
    const edit = async (change: (m: Record<string, any>) => void) => {
      const m = JSON.parse(original.toString());
      change(m);
      await h.raw.put(metaKey, Buffer.from(JSON.stringify(m)));
    };
    const stranger = "0x00000000000000000000000000000000000000cc";
    // The attacker makes themselves grantee: the data key no longer unwraps.
    await edit((m) => (m.grantee = stranger));
    const asStranger = await h.store.getArtifact(operationId, "a.bin", { requester: stranger }).catch((e: ArtifactError) => e);
    expect((asStranger as ArtifactError).code).toBe("integrity");
    await expectRefused(h.store, operationId, "a.bin", plaintext, "not_found");
    // Extending the expiry breaks the key binding; moving it into the past just expires.
    await edit((m) => (m.expiresAt = new Date(Date.parse(m.expiresAt) + 86_400_000).toISOString()));
    await expectRefused(h.store, operationId, "a.bin", plaintext, "integrity");
    await edit((m) => (m.expiresAt = new Date(h.clock.now.getTime() - 1000).toISOString()));
    await expectRefused(h.store, operationId, "a.bin", plaintext, "expired");
    await edit((m) => (m.operationId = "another-op"));
    await expectRefused(h.store, operationId, "a.bin", plaintext, "integrity");
    await h.raw.put(metaKey, original);
    // The entry: metadata.json's `artifacts` (layout 1) or its own object (layout 2).
    const [entryKey] = (await listKeys(h.raw, `operations/${operationId}/entries/`)).filter((k) => k.endsWith(".json"));
    const originalEntry = layout === 2 ? (await h.raw.getBytes(entryKey!))!.body : undefined;
    const editEntry = async (change: (e: Record<string, any>) => void) => {
      if (layout === 1) return edit((m) => change(m.artifacts[0]));
      const e = JSON.parse(originalEntry!.toString());
      change(e);
      await h.raw.put(entryKey!, Buffer.from(JSON.stringify(e)));
    };
    await editEntry((e) => (e.size += 1));
    await expectRefused(h.store, operationId, "a.bin", plaintext, "integrity");
    await editEntry((e) => {
      e.size -= C;
      e.encryptedSize -= STORED_CHUNK;
    });
    await expectRefused(h.store, operationId, "a.bin", plaintext, "integrity");
    // Layout 2 names each entry by its path's hash: a renamed entry is malformed, not another artifact.
    await editEntry((e) => (e.path = "renamed.bin"));
    await expectRefused(h.store, operationId, "a.bin", plaintext, layout === 2 ? "integrity" : "not_found");
    if (layout === 2) {
      await h.raw.put(entryKey!, Buffer.from("{not json"));
      await expectRefused(h.store, operationId, "a.bin", plaintext, "integrity");
      await h.raw.put(entryKey!, originalEntry!);
      // Another incarnation: the entries are an earlier operation's, never this one's.
      await edit((m) => (m.incarnation = "0".repeat(32)));
      await expectRefused(h.store, operationId, "a.bin", plaintext, "not_found");
      // A layout this release does not know: upgrade (the grantee only; a stranger sees nothing).
      await edit((m) => (m.version = 3));
      await expectRefused(h.store, operationId, "a.bin", plaintext, "unsupported_layout");
      const stranger3 = await h.store.getArtifact(operationId, "a.bin", { requester: stranger }).catch((e: ArtifactError) => e);
      expect((stranger3 as ArtifactError).code).toBe("not_found");
    }
    await h.raw.put(metaKey, Buffer.from("{not json"));
    await expectRefused(h.store, operationId, "a.bin", plaintext, "integrity");
    await h.raw.put(metaKey, original);
    const { body } = await h.store.getArtifact(operationId, "a.bin", { requester: GRANTEE });
    expect((await drain(body)).bytes.equals(plaintext)).toBe(true);
  });

  it("the wrong master key -> integrity; an unknown kid -> config", async () => {
    const { operationId, plaintext } = await seeded();
    await expectRefused(h.reopen({ ARTIFACTS_MASTER_KEY: OTHER_MASTER_KEY }), operationId, "a.bin", plaintext, "integrity");
    await expectRefused(h.reopen({ ARTIFACTS_MASTER_KEYS: `other:${OTHER_MASTER_KEY}` }), operationId, "a.bin", plaintext, "config");
  });
});
