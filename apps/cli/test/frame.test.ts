import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { run } from "../src/main.js";
import { KEY_A, KEY_B, cli, cliJson, localEnv, makeFixture, runChild, s3Env, tempDir } from "./helpers.js";

const COMMANDS = ["doctor", "usage", "cost", "cleanup", "migrate", "rotate-key", "keygen"];

describe("the command frame", () => {
  it.each(COMMANDS)("%s has --help (exit 0) with --json", async (command) => {
    const r = await cli([command, "--help"], {});
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Usage: artifacts ${command} [options]`);
    expect(r.stdout).toContain("--json");
    expect(r.stderr).toBe("");
  });

  it("lists every command in the top-level help; unknown commands and options exit 2", async () => {
    const help = await cli(["--help"], {});
    expect(help.code).toBe(0);
    for (const command of COMMANDS) expect(help.stdout).toContain(`  ${command} `);
    expect(help.stdout).toContain("Start troubleshooting with: artifacts doctor");
    const unknown = await cli(["frobnicate"], {});
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("error: unknown command 'frobnicate'");
    const option = await cli(["usage", "--colour"], {});
    expect(option.code).toBe(2);
    expect(option.stderr).toContain("error: unknown option '--colour'");
    expect((await cli([], {})).code).toBe(2);
  });

  it("a configuration error is exit 1, as text or as JSON", async () => {
    const env = { ARTIFACTS_LOCAL_DIR: tempDir("frame"), ARTIFACTS_TTL: "forever" };
    const text = await cli(["usage"], env);
    expect(text.code).toBe(1);
    expect(text.stderr).toContain("error (config): invalid configuration:\n  ARTIFACTS_TTL: invalid duration");
    expect(text.stderr).toContain("hint: every variable is described in docs/configuration.md (and listed in .env.example)");
    const json = await cliJson<{ ok: boolean; error: { code: string } }>(["usage"], env);
    expect(json.code).toBe(1);
    expect(json.json).toMatchObject({ ok: false, error: { code: "config" } });
  });

  it("draws a progress bar on a terminal when the total is known, a spinning counter when it is not", async () => {
    const f = await makeFixture("local", "tty");
    // rotate-key knows how many operations there are: a bar, ending full.
    const rotate = await cli(["rotate-key"], { ...f.env, ARTIFACTS_MASTER_KEYS: `${KEY_B},${KEY_A}` }, { tty: true });
    expect(rotate.code).toBe(0);
    expect(rotate.stderr).toContain("rotate-key [");
    expect(rotate.stderr).toMatch(/\] 100% \| (\d+)\/\1 operations/);
    expect(rotate.stderr).not.toContain("rotate-key: ");
    // The sweep learns its size as it lists: a spinner and a running count, ending without the spinner.
    const r = await cli(["cleanup"], f.env, { tty: true });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/cleanup [⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] \d operations/);
    expect(r.stderr).toContain(`cleanup: 6 operations (deleted 2 expired operation(s), ${4 + f.oldOrphans.length} object(s))`);
    expect(r.stderr).not.toContain("cleanup [");
    expect(r.stderr).not.toContain("%");
  });

  it("run() can be called with an io object and no env (then loadConfig reads the process environment)", async () => {
    let out = "";
    const code = await run(["keygen", "--kid", "io-test"], { stdout: { write: (s: string) => (out += s) }, stderr: { write: () => true } });
    expect(code).toBe(0);
    expect(out).toMatch(/^io-test:[A-Za-z0-9+/]{43}=\n$/);
  });

  it("as a real process, prints no Node version notice from the AWS SDK and keeps other warnings", async () => {
    const env = await s3Env("frame-warning");
    const quiet = await runChild(["usage", "--json"], env, tempDir("cwd"));
    expect(quiet.code).toBe(0);
    expect(quiet.stderr).not.toContain("NodeVersionSupportWarning");
    expect(quiet.stderr).not.toMatch(/deprecat/i);
    // Other warnings still print: local storage without a master key generates a development key.
    const dev = await runChild(["usage", "--json"], { ARTIFACTS_LOCAL_DIR: join(tempDir("frame-dev"), "store") }, tempDir("cwd"));
    expect(dev.code).toBe(0);
    expect(dev.stderr).toContain("[ARTIFACTS_DEV_MASTER_KEY] Warning: generated a development master key at ");
  });

  it("exits non-zero from a real process on failure and 0 on success", async () => {
    const env = localEnv();
    const ok = await runChild(["usage", "--json"], env, tempDir("cwd"));
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true, operations: 0, artifacts: 0 });
    const bad = await runChild(["usage"], { ...env, ARTIFACTS_TTL: "never" }, tempDir("cwd"));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("error (config): invalid configuration:");
  });
});
