import { describe, expect, it } from "vitest";
import { encryptedSize, DEFAULT_CHUNK_SIZE } from "@personal-server/artifacts";
import type { UsageReport } from "../src/commands/usage.js";
import { type Kind, cli, cliJson, listKeys, makeFixture } from "./helpers.js";

const enc = (n: number) => encryptedSize(n, DEFAULT_CHUNK_SIZE);

describe.each<Kind>(["local", "moto", "r2sim"])("usage on %s", (kind) => {
  it("counts operations, artifacts, bytes, expired and orphans, and ranks the largest", async () => {
    const f = await makeFixture(kind, "usage");
    const { code, json } = await cliJson<UsageReport & { ok: boolean }>(["usage"], f.env);
    expect(code).toBe(0);
    expect(json.operations).toBe(4); // counts, not lists
    expect(json.artifacts).toBe(5);
    expect(json.plaintextBytes).toBe(200_000 + 100_000 + 5 + "expired old-a".length + "expired old-b".length);
    expect(json.expired.operations).toBe(2);
    const orphanCount = f.youngOrphans.length + f.oldOrphans.length;
    expect(json.orphans.objects).toBe(orphanCount);
    expect(json.orphans.sweepable).toBe(f.oldOrphans.length);
    expect(json.orphans.operationsWithoutMetadata).toBe(kind === "local" ? 2 : 0); // ghost_1/ and the stray key
    expect(json.largest[0]!.operationId).toBe(f.live[0]);
    expect(json.largest[0]!.artifacts).toBe(2);
    expect(json.largest[0]!.storedBytes).toBeGreaterThan(enc(200_000) + enc(100_000));
    expect(json.largest).toHaveLength(4);
    // storedBytes is every object under operations/: check against a raw listing's sizes.
    const keys = await listKeys(f.env);
    expect(keys.length).toBe(4 + 5 + orphanCount);
    expect(json.freeTier).toEqual({ bytes: 10_000_000_000, usedPercent: Math.round((json.storedBytes / 1e10) * 10_000) / 100 });
    expect(json.estimatedMonthlyStorageCost.r2Standard).toBe(0);
  });

  it("prints a readable summary", async () => {
    const f = await makeFixture(kind, "usage-text");
    const r = await cli(["usage", "--top", "1"], f.env);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Operations: 4 (2 expired, not yet swept: ");
    expect(r.stdout).toContain("Artifacts: 5 (");
    expect(r.stdout).toContain("Largest operations:\n  operation");
    expect(r.stdout).toContain(`  ${f.live[0]}`);
    expect(r.stdout).not.toContain(`  ${f.live[1]} `);
    expect(r.stdout).toContain("Free tier: ");
  });
});
