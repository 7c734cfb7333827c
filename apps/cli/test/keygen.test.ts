import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "@personal-server/artifacts";
import { parseDotEnv } from "@personal-server/artifacts/internal";
import { cli, cliJson, runChild, tempDir } from "./helpers.js";

/** A fake repository root: keygen --env writes the .env next to pnpm-workspace.yaml. */
function fakeRepo(): { root: string; sub: string } {
  const root = tempDir("repo");
  writeFileSync(join(root, "pnpm-workspace.yaml"), "packages: []\n");
  return { root, sub: root };
}

describe("keygen", () => {
  it("prints kid:base64 of 32 random bytes that loadConfig accepts", async () => {
    const r = await cli(["keygen"], {});
    expect(r.code).toBe(0);
    const key = r.stdout.trim();
    expect(key).toMatch(/^key-\d{8}-[0-9a-f]{4}:[A-Za-z0-9+/]{43}=$/);
    expect(Buffer.from(key.split(":")[1]!, "base64")).toHaveLength(32);
    const config = loadConfig({ ARTIFACTS_LOCAL_DIR: join(tempDir("keygen"), "d"), ARTIFACTS_MASTER_KEYS: key });
    expect(config.masterKeys.currentKid).toBe(key.split(":")[0]);
    expect(config.masterKeys.keys.get(key.split(":")[0]!)).toEqual(Buffer.from(key.split(":")[1]!, "base64"));
    // Two runs never print the same key.
    expect((await cli(["keygen"], {})).stdout).not.toBe(r.stdout);
  });

  it("takes --kid and refuses a kid loadConfig would refuse", async () => {
    const { code, json } = await cliJson<{ ok: boolean; kid: string; key: string }>(["keygen", "--kid", "prod-2026"], {});
    expect(code).toBe(0);
    expect(json.kid).toBe("prod-2026");
    expect(json.key.startsWith("prod-2026:")).toBe(true);
    const bad = await cli(["keygen", "--kid", "has:colon"], {});
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe('error (invalid_input): --kid must match ^[A-Za-z0-9_-]{1,64}$, got "has:colon"\n');
  });

  it("--env writes ARTIFACTS_MASTER_KEYS into the repository root's .env with mode 0600, keeping what was there", async () => {
    const { root } = fakeRepo();
    writeFileSync(join(root, ".env"), "# mine\nHOST=0.0.0.0", { mode: 0o644 });
    const r = await cli(["keygen", "--env", "--kid", "first"], {}, { cwd: root });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`wrote ARTIFACTS_MASTER_KEYS (kid first) to ${join(root, ".env")} (mode 0600)\n`);
    const text = readFileSync(join(root, ".env"), "utf8");
    expect(text.startsWith("# mine\nHOST=0.0.0.0\n")).toBe(true);
    expect(text).toMatch(/\nARTIFACTS_MASTER_KEYS=first:[A-Za-z0-9+/]{43}=\n$/);
    expect(r.stdout).not.toContain(text.split("ARTIFACTS_MASTER_KEYS=")[1]!.trim()); // the key is not echoed
    expect(statSync(join(root, ".env")).mode & 0o777).toBe(0o600);
  });

  it("--env never replaces a key, in .env or in the environment", async () => {
    const { root } = fakeRepo();
    expect((await cli(["keygen", "--env"], {}, { cwd: root })).code).toBe(0);
    const before = readFileSync(join(root, ".env"), "utf8");
    const again = await cli(["keygen", "--env"], {}, { cwd: root });
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`error (conflict): ${join(root, ".env")} already sets ARTIFACTS_MASTER_KEYS; keygen --env never replaces a master key`);
    expect(again.stderr).toContain("hint: to rotate, run `pnpm artifacts keygen` and put the new kid:key FIRST");
    expect(readFileSync(join(root, ".env"), "utf8")).toBe(before);

    const other = fakeRepo();
    const inEnv = await cli(["keygen", "--env"], { ARTIFACTS_MASTER_KEY: Buffer.alloc(32, 1).toString("base64") }, { cwd: other.root });
    expect(inEnv.code).toBe(1);
    expect(inEnv.stderr).toContain("error (conflict): the environment already sets ARTIFACTS_MASTER_KEY;");
  });

  it("--env fills an empty ARTIFACTS_MASTER_KEYS= line (empty means unset)", async () => {
    const { root } = fakeRepo();
    writeFileSync(join(root, ".env"), "ARTIFACTS_MASTER_KEYS=\nPORT=9000\n", { mode: 0o600 });
    expect((await cli(["keygen", "--env", "--kid", "filled"], {}, { cwd: root })).code).toBe(0);
    expect(readFileSync(join(root, ".env"), "utf8")).toMatch(/^ARTIFACTS_MASTER_KEYS=filled:[A-Za-z0-9+/]{43}=\nPORT=9000\n$/);
  });

  it("works as a child process, and the written .env configures the SDK", async () => {
    const { root } = fakeRepo();
    const r = await runChild(["keygen", "--env", "--kid", "child"], {}, root);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`wrote ARTIFACTS_MASTER_KEYS (kid child) to ${join(root, ".env")} (mode 0600)\n`);
    const printed = await runChild(["keygen"], {}, root);
    expect(printed.code).toBe(0);
    expect(printed.stdout).toMatch(/^key-\d{8}-[0-9a-f]{4}:[A-Za-z0-9+/]{43}=\n$/);
    const dotenv = parseDotEnv(readFileSync(join(root, ".env"), "utf8"));
    const config = loadConfig({ ...dotenv, ARTIFACTS_LOCAL_DIR: join(root, "store") });
    expect(config.masterKeys.currentKid).toBe("child");
  });
});
