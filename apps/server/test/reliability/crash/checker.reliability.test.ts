/**
 * The crash checker can fail (issue 14): storage damaged in each way a crash could damage it is
 * reported, on local disk and on S3 (moto), and intact storage is not.
 */
import { randomBytes } from "node:crypto";
import { readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createArtifactStore, loadConfig } from "@personal-server/artifacts";
import { artifactObjectKey, metadataKey, openBackend, type Backend } from "@personal-server/artifacts/internal";
import { freshBucket, motoEndpoint } from "../../../../../test-support/s3.js";
import { MASTER_KEY, patternBytes, sha256, tempDir, wallet } from "../harness.js";
import { checkStorage, localView, lostWork, s3View, type Expected, type StorageView } from "./checker.js";

const KEYS = new Map([["default", Buffer.from(MASTER_KEY, "base64")]]);
const HOUR = 3600 * 1000;
const dirs: string[] = [];

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** One operation with a one-chunk and a streamed artifact, written by the SDK, and what the test knows of it. */
async function populated(env: Record<string, string>, createLayout: 1 | 2 = 1): Promise<{ expected: Expected; operationId: string; raw: Backend }> {
  const config = loadConfig({ ...env, ARTIFACTS_MASTER_KEY: MASTER_KEY });
  const store = createArtifactStore(config, { createLayout });
  const op = await store.createOperation({ grantee: wallet().address });
  const bodies = { "small.txt": Buffer.from("small\n"), "big.bin": patternBytes(1.5 * 1024 * 1024, 3) };
  const artifacts = new Map<string, { sha256: string; acknowledged: boolean }>();
  for (const [path, body] of Object.entries(bodies)) {
    await store.putArtifact(op.operationId, path, body);
    artifacts.set(path, { sha256: sha256(body), acknowledged: true });
  }
  await store.close();
  const expected: Expected = { operations: new Map([[op.operationId, { acknowledged: true, expiresAt: Date.parse(op.expiresAt), artifacts }]]) };
  return { expected, operationId: op.operationId, raw: await openBackend(config.storage, { timeoutMs: 20_000, connectTimeoutMs: 5000 }) };
}

async function problems(view: StorageView, expected: Expected, sweptAt = false): Promise<string[]> {
  const now = Date.now();
  const result = await checkStorage(view, expected, {
    masterKeys: KEYS,
    now,
    ...(sweptAt ? { sweptAt: { orphanGraceMs: 24 * HOUR, temporaryGraceMs: HOUR } } : {}),
  });
  return [...result.violations, ...lostWork(expected, [result], now).map((l) => `lost ${l}`)];
}

describe("the crash checker", () => {
  it("layout 2 on local storage: intact is clean; a lost, renamed or duplicated entry and an index naming no entry are reported", async () => {
    const root = join(tempDir("checker-v2"), "store");
    dirs.push(root);
    const { expected, operationId, raw } = await populated({ ARTIFACTS_LOCAL_DIR: root }, 2);
    const view = localView(root);
    expect(await problems(view, expected)).toEqual([]);
    const entries = (await view.list()).filter((o) => o.key.includes("/entries/")).map((o) => o.key);
    expect(entries).toHaveLength(2);
    const small = entries.find((k) => JSON.parse(readFileSync(join(root, k), "utf8")).path === "small.txt")!;
    const bytes = readFileSync(join(root, small));
    rmSync(join(root, small));
    expect(await problems(view, expected)).toEqual([`lost artifact ${operationId}/small.txt`]);
    const renamed = small.replace(/\/\d{13}-/, "/0000000000000-").replace(/-[0-9a-f]{32}\.json$/, `-${"0".repeat(32)}.json`);
    writeFileSync(join(root, renamed), bytes);
    expect(await problems(view, expected)).toEqual([expect.stringMatching(/is not named after its path small\.txt$/)]);
    rmSync(join(root, renamed));
    writeFileSync(join(root, small), bytes);
    writeFileSync(join(root, small.replace(/\/\d{13}-/, "/9999999999999-")), bytes);
    expect(await problems(view, expected)).toEqual([expect.stringMatching(/has two entries for small\.txt$/)]);
    rmSync(join(root, small.replace(/\/\d{13}-/, "/9999999999999-")));
    const incarnation = small.split("/")[3]!;
    writeFileSync(join(root, `operations/${operationId}/index.json`), JSON.stringify({ layout: 2, incarnation, covers: "", entries: [{ name: "0000000000001-x.json" }] }));
    expect(await problems(view, expected)).toEqual([expect.stringMatching(/index\.json of \S+ lists 0000000000001-x\.json, which is no entry$/)]);
    await raw.close();
  });

  it("local storage: intact is clean; each kind of damage is reported", async () => {
    const root = join(tempDir("checker"), "store");
    dirs.push(root);
    const { expected, operationId, raw } = await populated({ ARTIFACTS_LOCAL_DIR: root });
    const view = localView(root);
    const file = (key: string) => join(root, key);
    const big = file(artifactObjectKey(operationId, "big.bin"));
    const meta = file(metadataKey(operationId));
    expect(await problems(view, expected)).toEqual([]);

    // A half-written object listed as committed.
    const whole = readFileSync(big);
    writeFileSync(big, whole.subarray(0, whole.length - 100));
    expect(await problems(view, expected)).toEqual([expect.stringMatching(/lists big\.bin with \d+ stored bytes, the object has \d+ \(half-written\?\)$/), `lost artifact ${operationId}/big.bin`]);
    // One flipped byte, same size.
    const flipped = Buffer.from(whole);
    flipped[whole.length - 20]! ^= 1;
    writeFileSync(big, flipped);
    expect(await problems(view, expected)).toEqual([expect.stringMatching(/big\.bin does not decrypt: Unsupported state or unable to authenticate data$/), `lost artifact ${operationId}/big.bin`]);
    writeFileSync(big, whole);
    expect(await problems(view, expected)).toEqual([]);

    // Bytes other than the test sent (a valid object of another body at that path).
    const other = { ...expected, operations: new Map(expected.operations) };
    const op = expected.operations.get(operationId)!;
    other.operations.set(operationId, { ...op, artifacts: new Map([...op.artifacts, ["small.txt", { sha256: sha256(Buffer.from("other\n")), acknowledged: true }]]) });
    expect(await problems(view, other)).toEqual([expect.stringMatching(/small\.txt decrypts to bytes other than the test uploaded$/), `lost artifact ${operationId}/small.txt`]);

    // Metadata that does not parse, and metadata whose bound fields were edited (the key no longer unwraps).
    const metadata = readFileSync(meta, "utf8");
    writeFileSync(meta, metadata.slice(0, 50));
    expect(await problems(view, expected)).toEqual([
      expect.stringMatching(new RegExp(`metadata\\.json of ${operationId} does not parse`)),
      `lost operation ${operationId}`,
      `lost artifact ${operationId}/small.txt`,
      `lost artifact ${operationId}/big.bin`,
    ]);
    const later = new Date(op.expiresAt + 1000).toISOString();
    writeFileSync(meta, metadata.replace(/"expiresAt":"[^"]+"/, `"expiresAt":"${later}"`));
    expect((await problems(view, expected))[0]).toMatch(new RegExp(`the data key of ${operationId} does not unwrap`));

    // An acknowledged artifact missing from the metadata is lost.
    const parsed = JSON.parse(metadata) as { artifacts: { path: string }[] };
    writeFileSync(meta, JSON.stringify({ ...parsed, artifacts: parsed.artifacts.filter((a) => a.path !== "small.txt") }));
    expect(await problems(view, expected)).toEqual([`lost artifact ${operationId}/small.txt`]);
    writeFileSync(meta, metadata);

    // After a finished sweep: an old unreferenced object and an old temp file must not be there; young ones may.
    await raw.put(`operations/${operationId}/artifacts/orphan.bin`, randomBytes(100));
    await raw.put("operations/ghost/artifacts/x.bin", randomBytes(100));
    expect(await problems(view, expected, true)).toEqual([]);
    const old = (Date.now() - 25 * HOUR) / 1000;
    utimesSync(file("operations/ghost/artifacts/x.bin"), old, old);
    writeFileSync(join(root, ".tmp", "left.part"), "x");
    utimesSync(join(root, ".tmp", "left.part"), old, old);
    expect(await problems(view, expected, true)).toEqual([
      expect.stringMatching(/operations\/ghost\/artifacts\/x\.bin is unreferenced, past its grace period, and survived a finished sweep$/),
      expect.stringMatching(/\.tmp\/left\.part is a stale leftover that survived a finished sweep$/),
    ]);
    await raw.close();
  });

  it("S3 storage (moto): intact is clean; a listed object that is gone and an operation the test never made are reported", async () => {
    const bucket = await freshBucket(motoEndpoint(), "crash-checker");
    const { expected, operationId, raw } = await populated(bucket.env);
    const view = s3View(motoEndpoint(), bucket.bucket);
    expect(await problems(view, expected)).toEqual([]);
    await raw.delete([artifactObjectKey(operationId, "small.txt")]);
    const stranger = (await raw.getBytes(metadataKey(operationId)))!.body.toString().replaceAll(operationId, "stranger_1");
    await raw.put(metadataKey("stranger_1"), Buffer.from(stranger));
    expect(await problems(view, expected)).toEqual([
      expect.stringMatching(new RegExp(`${operationId} lists small\\.txt but its object is missing$`)),
      expect.stringMatching(/operation stranger_1 was never created by the test$/),
      `lost artifact ${operationId}/small.txt`,
    ]);
    await raw.close();
  });
});
