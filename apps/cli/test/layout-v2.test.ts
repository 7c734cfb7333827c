// Every command on layout 2 operations (entry objects, index.json, incarnations), beside a layout 1
// operation written by the kept v1 writer, and on a layout newer than this release.
import { utimesSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "@personal-server/artifacts";
import { metadataKey, openBackend } from "@personal-server/artifacts/internal";
import type { MigrateReport } from "../src/commands/migrate.js";
import type { RotateReport } from "../src/commands/rotate-key.js";
import type { UsageReport } from "../src/commands/usage.js";
import { GRANTEE, KEY_A, KEY_B, type Env, cliJson, listKeys, localEnv, readAll, s3Env, storeFor } from "./helpers.js";

const v2 = (env: Env, now?: Date) => storeFor(env, { createLayout: 2, ...(now ? { now: () => now } : {}) });

/** One layout 2 operation of two artifacts, one layout 1 operation, one expired layout 2 operation. */
async function seed(env: Env) {
  const store = v2(env);
  const past = v2(env, new Date(Date.now() - 10 * 86_400_000));
  const legacy = storeFor(env);
  const live = await store.createOperation({ grantee: GRANTEE, operationId: "live-2" });
  await store.putArtifact(live.operationId, "a.txt", "alpha");
  await store.putArtifact(live.operationId, "d/b.bin", Buffer.alloc(3000, 7));
  const old = await past.createOperation({ grantee: GRANTEE, operationId: "gone-2" });
  await past.putArtifact(old.operationId, "x", "expired");
  const one = await legacy.createOperation({ grantee: GRANTEE, operationId: "live-1" });
  await legacy.putArtifact(one.operationId, "c.txt", "layout one");
  await Promise.all([store.close(), past.close(), legacy.close()]);
}

describe("commands on layout 2 operations (local)", () => {
  it("usage counts entries as artifacts; cleanup deletes the expired one and an earlier incarnation's leftovers, keeps the live ones", async () => {
    const env = localEnv();
    await seed(env);
    const usage = await cliJson<UsageReport & { ok: boolean }>(["usage"], env);
    expect(usage.code).toBe(0);
    expect(usage.json).toMatchObject({ operations: 3, artifacts: 4, expired: { operations: 1 }, orphans: { objects: 0 }, malformed: [] });
    expect(usage.json.plaintextBytes).toBe(5 + 3000 + "expired".length + "layout one".length);

    // An entry and object left by an earlier operation of the same id (another incarnation), two days old.
    const backend = await openBackend(loadConfig(env).storage, { timeoutMs: 10_000, connectTimeoutMs: 5000 });
    const stale = ["operations/live-2/entries/00000000000000000000000000000000/0000000000001-0123456789abcdef0123456789abcdef.json", "operations/live-2/artifacts/stale.bin"];
    const twoDaysAgo = new Date(Date.now() - 2 * 86_400_000);
    for (const key of stale) {
      await backend.put(key, Buffer.from("{}"));
      utimesSync(join(env.ARTIFACTS_LOCAL_DIR!, key), twoDaysAgo, twoDaysAgo);
    }
    await backend.close();
    const dry = await cliJson<Record<string, unknown>>(["cleanup", "--dry-run"], env);
    expect(dry.json).toMatchObject({ expiredOperations: ["gone-2"], expiredObjects: 3, orphanObjects: 2 });
    const swept = await cliJson<Record<string, unknown>>(["cleanup"], env);
    expect(swept.json).toMatchObject({ deletedOperations: 1, deletedObjects: 3 + 2 });
    const keys = await listKeys(env);
    expect(keys.filter((k) => k.startsWith("operations/gone-2/"))).toEqual([]);
    expect(keys.some((k) => stale.includes(k))).toBe(false);
    // The sweep compacted live-2's entries into its index; every artifact still reads back.
    expect(keys).toContain("operations/live-2/index.json");
    const store = v2(env);
    try {
      const listing = await store.listArtifacts("live-2", { requester: GRANTEE });
      expect(listing.artifacts.map((a) => a.path)).toEqual(["a.txt", "d/b.bin"]);
      expect((await readAll((await store.getArtifact("live-1", "c.txt", { requester: GRANTEE })).body)).toString()).toBe("layout one");
    } finally {
      await store.close();
    }
  });

  it("rotate-key re-wraps layout 1 and layout 2 operations alike, touching only metadata.json", async () => {
    const env = localEnv({ ARTIFACTS_MASTER_KEYS: KEY_A });
    await seed(env);
    const before = new Map((await listKeys(env)).map((k) => [k, k]));
    const both = { ...env, ARTIFACTS_MASTER_KEYS: `${KEY_B},${KEY_A}` };
    const { code, json } = await cliJson<RotateReport & { ok: boolean }>(["rotate-key"], both);
    expect(code).toBe(0);
    expect(json).toMatchObject({ rewrapped: 3, remainingOtherKids: {} });
    expect(new Set(await listKeys(env))).toEqual(new Set(before.keys()));
    const onlyNew = v2({ ...env, ARTIFACTS_MASTER_KEYS: KEY_B });
    try {
      expect((await readAll((await onlyNew.getArtifact("live-2", "d/b.bin", { requester: GRANTEE })).body)).equals(Buffer.alloc(3000, 7))).toBe(true);
    } finally {
      await onlyNew.close();
    }
  });

  it("migrate copies entry objects before metadata.json; the operation reads back on the target", async () => {
    const src = localEnv();
    await seed(src);
    const target = await s3Env("layout-v2-migrate");
    const { code, json } = await cliJson<MigrateReport & { ok: boolean }>(["migrate", "--from", `local:${src.ARTIFACTS_LOCAL_DIR}`, "--to", "current"], target);
    expect(code).toBe(0);
    expect(json.operations).toMatchObject({ total: 3, migrated: 2, expired: 1 });
    const keys = await listKeys(target);
    expect(keys.filter((k) => k.includes("/entries/"))).toHaveLength(2);
    const store = v2(target);
    try {
      const listing = await store.listArtifacts("live-2", { requester: GRANTEE });
      expect(listing.artifacts.map((a) => a.path)).toEqual(["a.txt", "d/b.bin"]);
      expect((await readAll((await store.getArtifact("live-2", "a.txt", { requester: GRANTEE })).body)).toString()).toBe("alpha");
    } finally {
      await store.close();
    }
  });

  it("a layout newer than this release: usage reports it, cleanup leaves it, migrate refuses with unsupported_layout", async () => {
    const env = localEnv();
    await seed(env);
    const backend = await openBackend(loadConfig(env).storage, { timeoutMs: 10_000, connectTimeoutMs: 5000 });
    const meta = JSON.parse((await backend.getBytes(metadataKey("live-2")))!.body.toString());
    await backend.put(metadataKey("live-2"), Buffer.from(JSON.stringify({ ...meta, version: 3 })));
    await backend.close();
    const usage = await cliJson<UsageReport & { ok: boolean }>(["usage"], env);
    expect(usage.json.malformed).toEqual(["live-2"]);
    const swept = await cliJson<Record<string, unknown>>(["cleanup"], env);
    expect(swept.code).toBe(0);
    expect((await listKeys(env)).filter((k) => k.startsWith("operations/live-2/")).length).toBeGreaterThan(1);
    const target = await s3Env("layout-v3-migrate");
    const migrated = await cliJson<{ ok: boolean; error?: { code: string; message: string } }>(["migrate", "--from", `local:${env.ARTIFACTS_LOCAL_DIR}`, "--to", "current"], target);
    expect(migrated.code).not.toBe(0);
    expect(migrated.json.error?.code).toBe("unsupported_layout");
    expect(migrated.json.error?.message).toContain("upgrade");
  });
});
