import { describe, expect, it } from "vitest";
import { loadConfig, metadataKey, openBackend, readMetadata } from "@personal-server/artifacts";
import type { RotateReport } from "../src/commands/rotate-key.js";
import { GRANTEE, KEY_A, KEY_B, type Kind, cli, cliJson, envFor, readAll, storeFor } from "./helpers.js";

async function objects(env: Record<string, string>): Promise<Map<string, string>> {
  const backend = await openBackend(loadConfig(env).storage, { timeoutMs: 10_000, connectTimeoutMs: 5000 });
  const out = new Map<string, string>();
  for await (const o of backend.list("operations/")) out.set(o.key, `${o.etag}/${o.lastModified.toISOString()}`);
  await backend.close();
  return out;
}

async function kids(env: Record<string, string>, ids: string[]): Promise<string[]> {
  const backend = await openBackend(loadConfig(env).storage, { timeoutMs: 10_000, connectTimeoutMs: 5000 });
  const out: string[] = [];
  for (const id of ids) out.push((await readMetadata(backend, id))!.metadata.wrappedKey.kid);
  await backend.close();
  return out;
}

describe.each<Kind>(["local", "moto", "r2sim"])("rotate-key on %s", (kind) => {
  it("re-wraps every operation under the new key; afterwards only the new key is needed; artifact bytes untouched", async () => {
    const env = await envFor(kind, "rotate", { ARTIFACTS_MASTER_KEYS: KEY_A });
    const store = storeFor(env);
    const content = new Map<string, string>();
    const ids: string[] = [];
    for (const agent of ["one", "two", "three"]) {
      const op = await store.createOperation({ grantee: GRANTEE, agent });
      ids.push(op.operationId);
      for (const path of ["a.txt", "dir/b.md"]) {
        const text = `${agent} ${path} ${"x".repeat(agent.length * 1000)}`;
        await store.putArtifact(op.operationId, path, text);
        content.set(`${op.operationId}/${path}`, text);
      }
    }
    await store.close();
    const before = await objects(env);
    const both = { ...env, ARTIFACTS_MASTER_KEYS: `${KEY_B},${KEY_A}` };

    // An earlier run that stopped after one operation.
    const partial = storeFor(both);
    expect(await partial.rewrapOperation(ids[0]!)).toBe(true);
    await partial.close();

    const r = await cli(["rotate-key"], both);
    expect(r.code).toBe(0);
    // In key order, like the listing.
    expect(r.stderr).toBe(`rotate-key: 0/3 operations\n${[...ids].sort().map((id, i) => `rotate-key: ${i + 1}/3 operations (${id})\n`).join("")}`);
    expect(r.stdout).toContain(`current kid "key-b"\nOperations: 3: 2 re-wrapped, 1 already current\n`);
    expect(r.stdout).toContain('Every operation uses kid "key-b": the other keys can be removed from ARTIFACTS_MASTER_KEYS.');
    expect(await kids(env, ids)).toEqual(["key-b", "key-b", "key-b"]);

    // Only metadata.json changed.
    const after = await objects(env);
    for (const [key, stamp] of before) {
      if (key.endsWith("/metadata.json")) expect(after.get(key)).not.toBe(stamp);
      else expect(after.get(key)).toBe(stamp);
    }

    // Readable with the new key alone; the old key alone no longer opens them.
    const onlyNew = storeFor({ ...env, ARTIFACTS_MASTER_KEYS: KEY_B });
    for (const [where, text] of content) {
      const [id, ...path] = where.split("/");
      const { body } = await onlyNew.getArtifact(id!, path.join("/"), { requester: GRANTEE });
      expect((await readAll(body)).toString()).toBe(text);
    }
    await onlyNew.close();
    const onlyOld = storeFor({ ...env, ARTIFACTS_MASTER_KEYS: KEY_A });
    await expect(onlyOld.getArtifact(ids[1]!, "a.txt", { requester: GRANTEE })).rejects.toMatchObject({ code: "config" });
    await onlyOld.close();

    // Resumable and idempotent: a second run has nothing left to do.
    const again = await cliJson<RotateReport & { ok: boolean }>(["rotate-key"], both);
    expect(again.code).toBe(0);
    expect(again.json).toMatchObject({ ok: true, currentKid: "key-b", operations: 3, rewrapped: 0, alreadyCurrent: 3, failed: [], remainingOtherKids: {} });
  });

  it("fails (exit 1), naming the operations, when the key that wrapped them is not loaded", async () => {
    const env = await envFor(kind, "rotate-missing", { ARTIFACTS_MASTER_KEYS: KEY_A });
    const store = storeFor(env);
    const op = await store.createOperation({ grantee: GRANTEE, agent: "lost" });
    await store.close();
    const { code, json } = await cliJson<RotateReport & { ok: boolean }>(["rotate-key"], { ...env, ARTIFACTS_MASTER_KEYS: KEY_B });
    expect(code).toBe(1);
    expect(json.ok).toBe(false);
    expect(json.failed).toHaveLength(1);
    expect(json.failed[0]).toMatchObject({ operationId: op.operationId, code: "config" });
    expect(json.failed[0]!.message).toContain('"key-a"');
    expect(json.remainingOtherKids).toEqual({ "key-a": 1 });
    expect(metadataKey(op.operationId)).toContain(op.operationId);
  });
});
