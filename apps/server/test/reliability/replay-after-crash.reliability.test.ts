/**
 * A single server without Redis keeps spent signatures spent across a crash (issue 19, item 1):
 * a grantee's header served once and refused as a replay is still refused after SIGKILL and a
 * restart on the same state directory (the journal `<ARTIFACTS_LOCAL_DIR>/.spent-nonces`), on
 * local storage and on S3 (moto), where that directory holds only the journal.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createWriterClient, signRequest } from "@personal-server/artifacts/client";
import { afterAll, describe, expect, it } from "vitest";
import { freshBucket } from "../../../../test-support/s3.js";
import { MASTER_KEY, SecretWatch, spawnServer, tempDir, wallet, watchedSigner, WRITER_TOKEN, type ChildServer } from "./harness.js";

const watch = new SecretWatch();
const servers: ChildServer[] = [];
// Fixed, so the restarted server (on another port) accepts the same signed audience.
const AUDIENCE = "http://artifacts.crash.test";

afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  expect(watch.leaks()).toEqual([]);
});

async function get(server: ChildServer, target: string, authorization: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`${server.url}${target}`, { headers: { authorization } });
  return { status: res.status, body: await res.text() };
}

async function crashAndReplay(kind: "local" | "moto"): Promise<void> {
  const dir = tempDir(`replay-${kind}`);
  const env: Record<string, string> = {
    ARTIFACTS_LOCAL_DIR: dir,
    ARTIFACTS_MASTER_KEY: MASTER_KEY,
    ARTIFACTS_WRITER_TOKEN: WRITER_TOKEN,
    ARTIFACTS_AUDIENCE: AUDIENCE,
    ...(kind === "moto" ? (await freshBucket(undefined, "replay")).env : {}),
  };
  const first = await spawnServer(env, watch, `server ${kind}`);
  servers.push(first);
  const grantee = watchedSigner(wallet(), watch);
  const writer = createWriterClient({ baseUrl: first.url, token: WRITER_TOKEN });
  const { operationId } = await writer.createOperation({ grantee: grantee.address, agent: "crash" });
  await writer.upload(operationId, "a.txt", "spent once");
  const target = `/api/v1/operations/${operationId}/artifacts/a.txt`;
  const sign = () => signRequest(grantee, { audience: AUDIENCE, method: "GET", uri: target });

  const header = await sign();
  expect(await get(first, target, header)).toEqual({ status: 200, body: "spent once" });
  const replayed = { status: 401, body: JSON.stringify({ error: { code: "unauthenticated", message: "Web3Signed nonce was already used" } }) };
  expect(await get(first, target, header)).toEqual(replayed);
  // A header signed but never sent before the crash is not in the journal, and is served after it.
  const unsent = await sign();

  first.kill("SIGKILL");
  expect(await first.exited).toEqual({ code: null, signal: "SIGKILL" });
  expect(readFileSync(join(dir, ".spent-nonces"), "utf8")).toMatch(/^\d+ [A-Za-z0-9_-]{22,}\n$/);

  const second = await spawnServer(env, watch, `server ${kind} restarted`);
  servers.push(second);
  expect(await get(second, target, header)).toEqual(replayed);
  expect(await get(second, target, unsent)).toEqual({ status: 200, body: "spent once" });
  expect(await get(second, target, unsent)).toEqual(replayed);
}

describe("spent signatures across a crash", () => {
  it("a header spent before SIGKILL is refused after the restart; a fresh one is served (local and moto side by side)", async () => {
    await Promise.all([crashAndReplay("local"), crashAndReplay("moto")]);
  });
});
