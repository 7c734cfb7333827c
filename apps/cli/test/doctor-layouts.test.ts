// doctor's view of the stored operations by storage layout (docs/format.md#layouts): how many an
// earlier release left in layout 1 and when the last expires; a layout newer than this release
// fails with "upgrade"; the master key check reads the newest operation in any layout it knows.
import { describe, expect, it } from "vitest";
import { loadConfig } from "@personal-server/artifacts";
import { metadataKey, openBackend } from "@personal-server/artifacts/internal";
import type { Check } from "../src/commands/doctor.js";
import { type Env, GRANTEE, cliJson, localEnv, s3Env, storeFor } from "./helpers.js";

type Report = { ok: boolean; checks: Check[] };
const byName = (r: Report, name: string) => r.checks.find((x) => x.name === name)!;

describe.each(["local", "moto"] as const)("doctor's layouts check on %s", (kind) => {
  const env = (): Promise<Env> => (kind === "local" ? Promise.resolve(localEnv()) : s3Env(`doctor-layouts`));

  it("counts operations by layout, says when the last layout 1 one expires, and unwraps the newest in either layout", async () => {
    const e = await env();
    const v1 = storeFor(e); // the layout an earlier release wrote
    const early = await v1.createOperation({ grantee: GRANTEE, agent: "old", ttlSeconds: 3600 });
    const late = await v1.createOperation({ grantee: GRANTEE, agent: "older", ttlSeconds: 7200 });
    await v1.close();
    const v2 = storeFor(e, { createLayout: 2 });
    await v2.createOperation({ grantee: GRANTEE, agent: "new" });
    await v2.close();
    const { code, json } = await cliJson<Report>(["doctor"], e);
    expect(code).toBe(0);
    expect(byName(json, "layouts")).toEqual({
      name: "layouts",
      status: "pass",
      message: `3 operation(s): 1 in layout 2, 2 in layout 1 (layout 1: written by an earlier release, read as before; the last expires at ${late.expiresAt})`,
    });
    expect(late.expiresAt > early.expiresAt).toBe(true);
    expect(byName(json, "master keys")).toMatchObject({ status: "pass", message: expect.stringContaining("unwrap the newest operation's data key") });

    // Only layout 2: nothing left of layout 1.
    const only2 = await env();
    const s = storeFor(only2, { createLayout: 2 });
    const op = await s.createOperation({ grantee: GRANTEE, agent: "new" });
    await s.close();
    const fresh = await cliJson<Report>(["doctor"], only2);
    expect(byName(fresh.json, "layouts")).toEqual({ name: "layouts", status: "pass", message: "1 operation(s), all in layout 2" });
    expect(byName(fresh.json, "master keys").message).toBe(`unwrap the newest operation's data key (${op.operationId}, kid "key-a")`);
  });

  it("fails on a layout newer than this release (upgrade), warns on a metadata.json that does not parse", async () => {
    const e = await env();
    const s = storeFor(e, { createLayout: 2 });
    const newer = await s.createOperation({ grantee: GRANTEE, agent: "future" });
    const broken = await s.createOperation({ grantee: GRANTEE, agent: "broken" });
    await s.close();
    const raw = await openBackend(loadConfig(e).storage, { timeoutMs: 10_000, connectTimeoutMs: 5000 });
    try {
      const meta = JSON.parse((await raw.getBytes(metadataKey(newer.operationId)))!.body.toString());
      await raw.put(metadataKey(newer.operationId), Buffer.from(JSON.stringify({ ...meta, version: 3 })));
      await raw.put(metadataKey(broken.operationId), Buffer.from("{not json"));

      const failed = await cliJson<Report>(["doctor"], e);
      expect(failed.code).toBe(1);
      expect(byName(failed.json, "layouts")).toEqual({
        name: "layouts",
        status: "fail",
        message: `2 operation(s): 1 in layout 3, 1 whose metadata.json does not parse; this release reads layouts 1 to 2, so it refuses ${newer.operationId} (unsupported_layout)`,
        fix: "upgrade this CLI and every server to the release that wrote them (docs/operations.md: Upgrading replicas that share a bucket)",
      });
      // Nothing it can read: the key check has nothing to unwrap (not a failure of the keys).
      expect(byName(failed.json, "master keys")).toEqual({
        name: "master keys",
        status: "skip",
        message: "no operation this release can read: nothing to unwrap (see layouts)",
      });

      await raw.delete([metadataKey(newer.operationId)]);
      const warned = await cliJson<Report>(["doctor"], e);
      expect(warned.code).toBe(0);
      expect(byName(warned.json, "layouts")).toEqual({
        name: "layouts",
        status: "warn",
        message: `1 operation(s): 1 whose metadata.json does not parse: ${broken.operationId}`,
        fix: "restore operations/<id>/metadata.json from a backup, or delete the operation; the sweep leaves it alone",
      });
    } finally {
      await raw.close();
    }
  });
});
