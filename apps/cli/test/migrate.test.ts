import { randomBytes } from "node:crypto";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "@personal-server/artifacts";
import { metadataKey, openBackend } from "@personal-server/artifacts/internal";
import type { MigrateReport } from "../src/commands/migrate.js";
import { GRANTEE, KEY_A, type Env, cli, cliJson, listKeys, localEnv, readAll, s3Env, spawnCli, storeFor, tempDir } from "./helpers.js";

/** A local store with `count` operations of two artifacts each; returns its env and every artifact's bytes. */
async function sourceStore(count: number, size: number): Promise<{ env: Env; dir: string; content: Map<string, Buffer>; ids: string[] }> {
  const env = localEnv({ ARTIFACTS_MASTER_KEYS: KEY_A });
  const store = storeFor(env);
  const content = new Map<string, Buffer>();
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const op = await store.createOperation({ grantee: GRANTEE, operationId: `op-${String(i).padStart(2, "0")}` });
    ids.push(op.operationId);
    for (const path of ["report.md", "data/blob.bin"]) {
      const bytes = randomBytes(size);
      await store.putArtifact(op.operationId, path, bytes);
      content.set(`${op.operationId}/${path}`, bytes);
    }
  }
  await store.close();
  return { env, dir: env.ARTIFACTS_LOCAL_DIR!, content, ids };
}

/** Reads every artifact through the SDK store configured by `env`, and compares it. */
async function expectReadable(env: Env, content: Map<string, Buffer>): Promise<void> {
  const store = storeFor(env);
  try {
    for (const [where, bytes] of content) {
      const [id, ...path] = where.split("/");
      const { body } = await store.getArtifact(id!, path.join("/"), { requester: GRANTEE });
      expect((await readAll(body)).equals(bytes), where).toBe(true);
    }
  } finally {
    await store.close();
  }
}

async function metadataOnTarget(env: Env, ids: string[]): Promise<number> {
  const backend = await openBackend(loadConfig(env).storage, { timeoutMs: 10_000, connectTimeoutMs: 5000 });
  let n = 0;
  for (const id of ids) if ((await backend.head(metadataKey(id))) !== null) n++;
  await backend.close();
  return n;
}

describe("migrate local -> S3 (moto)", () => {
  it("survives being killed halfway: the fallback serves everything meanwhile, a re-run completes, --delete-source empties the source", async () => {
    const src = await sourceStore(12, 150_000);
    const target = await s3Env("migrate");
    const cwd = tempDir("cwd");

    // 1. Start as a real process and SIGKILL it once 6 of 36 objects are reported copied.
    const child = spawnCli(["migrate", "--from", `local:${src.dir}`, "--to", "current"], target, cwd);
    let stderr = "";
    let killedAt = -1;
    child.stdout.resume();
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
      const done = [...stderr.matchAll(/^migrate: (\d+)\/36 objects/gm)].map((m) => Number(m[1]));
      const last = done.at(-1) ?? 0;
      if (killedAt < 0 && last >= 6) {
        killedAt = last;
        child.kill("SIGKILL");
      }
    });
    const signal = await new Promise<NodeJS.Signals | null>((r) => child.once("close", (_code, sig) => r(sig)));
    expect(signal, stderr).toBe("SIGKILL");
    const partial = await metadataOnTarget(target, src.ids);
    expect(partial).toBeGreaterThanOrEqual(1);
    expect(partial).toBeLessThan(12);

    // 2. Mid-migration, the server's configuration (bucket + read-only fallback) serves every artifact.
    await expectReadable({ ...target, ARTIFACTS_FALLBACK_LOCAL_DIR: src.dir }, src.content);

    // 3. Re-run: it skips what is there and finishes.
    const rerun = await cliJson<MigrateReport & { ok: boolean }>(["migrate", "--from", `local:${src.dir}`, "--to", "current"], target);
    expect(rerun.code).toBe(0);
    expect(rerun.json.operations.total).toBe(12);
    expect(rerun.json.operations.alreadyThere).toBe(partial);
    expect(rerun.json.operations.migrated).toBe(12 - partial);
    expect(rerun.json.objects.copied + rerun.json.objects.alreadyThere).toBe(24);
    expect(rerun.json.objects.alreadyThere).toBeGreaterThanOrEqual(2 * partial);
    expect(await metadataOnTarget(target, src.ids)).toBe(12);

    // 4. Readable from the bucket alone, with the same master keys (ciphertext was copied as is).
    await expectReadable(target, src.content);

    // 5. Idempotent; then --delete-source removes the source, and the bucket still serves everything.
    const again = await cliJson<MigrateReport>(["migrate", "--from", `local:${src.dir}`, "--to", "current"], target);
    expect(again.json.objects).toEqual({ copied: 0, alreadyThere: 24, bytesCopied: 0 });
    expect(again.json.operations.alreadyThere).toBe(12);
    const del = await cli(["migrate", "--from", `local:${src.dir}`, "--to", "current", "--delete-source"], target);
    expect(del.code).toBe(0);
    expect(del.stdout).toContain("Operations: 12 found, 0 copied, 12 already there, 0 expired (not copied), 12 deleted from the source\n");
    expect(await listKeys(src.env)).toEqual([]);
    await expectReadable(target, src.content);
  });

  it("--dry-run counts and writes nothing; expired operations are not copied", async () => {
    const src = await sourceStore(3, 1000);
    const past = storeFor(src.env, { now: () => new Date(Date.now() - 30 * 86_400_000) });
    const old = await past.createOperation({ grantee: GRANTEE, operationId: "ancient" });
    await past.putArtifact(old.operationId, "x.txt", "old");
    await past.close();
    const target = await s3Env("migrate-dry");
    const dry = await cliJson<MigrateReport>(["migrate", "--from", `local:${src.dir}`, "--to", "current", "--dry-run"], target);
    expect(dry.code).toBe(0);
    expect(dry.json.operations).toMatchObject({ total: 4, migrated: 3, expired: 1 });
    expect(dry.json.objects).toEqual({ copied: 6, alreadyThere: 0, bytesCopied: 6 * (41 + 1000 + 16) });
    expect(await listKeys(target)).toEqual([]);
    const real = await cliJson<MigrateReport>(["migrate", "--from", `local:${src.dir}`, "--to", "current"], target);
    expect(real.json.operations).toMatchObject({ total: 4, migrated: 3, expired: 1 });
    expect((await listKeys(target)).filter((k) => k.includes("ancient"))).toEqual([]);
  });

  it("never overwrites a different operation with the same id on the target", async () => {
    const src = await sourceStore(1, 100);
    const target = await s3Env("migrate-conflict");
    const other = storeFor(target);
    await other.createOperation({ grantee: GRANTEE, operationId: src.ids[0]! });
    await other.close();
    const before = await listKeys(target);
    const r = await cli(["migrate", "--from", `local:${src.dir}`, "--to", "current", "--delete-source"], target);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`Conflicts (an operation with the same id and different metadata is on the target; left alone): ${src.ids[0]}\n`);
    expect((await listKeys(target)).filter((k) => k.endsWith("metadata.json"))).toEqual(before);
    expect(await listKeys(src.env)).toHaveLength(3); // source kept
  });
});

describe("migrate local -> local", () => {
  it("copies into the configured directory and refuses the same directory", async () => {
    const src = await sourceStore(2, 5000);
    const target = localEnv({ ARTIFACTS_MASTER_KEYS: KEY_A });
    const r = await cliJson<MigrateReport>(["migrate", "--from", `local:${src.dir}`, "--to", "current"], target);
    expect(r.code).toBe(0);
    expect(r.json.operations.migrated).toBe(2);
    await expectReadable(target, src.content);
    expect(readdirSync(join(target.ARTIFACTS_LOCAL_DIR!, "operations")).sort()).toEqual(src.ids);

    const same = await cli(["migrate", "--from", "local", "--to", "current"], src.env);
    expect(same.code).toBe(1);
    expect(same.stderr).toBe(`error (conflict): source and target are the same directory (${src.dir}): configure R2_* or S3_* first\n`);
    const badTo = await cli(["migrate", "--from", "local", "--to", "r2"], target);
    expect(badTo.stderr).toBe('error (invalid_input): --to must be "current" (the configured storage), got "r2"\n');
    expect(existsSync(src.dir)).toBe(true);
  });
});
