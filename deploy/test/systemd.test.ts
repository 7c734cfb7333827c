// The systemd unit (deploy/systemd), checked with Debian's systemd-analyze: it parses cleanly
// (verify prints every unknown or malformed setting, so its output must be empty), and the
// offline security review sees the hardening in force.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT, requireTools, run } from "./podman.js";

const UNIT = join(ROOT, "deploy/systemd/personal-server-artifacts.service");
const env = () => process.env as Record<string, string>;

describe("the systemd unit", () => {
  it("passes systemd-analyze verify with no complaint, and verify does complain about a broken copy", async () => {
    requireTools("systemd-analyze");
    const ok = await run("systemd-analyze", ["verify", UNIT], { env: env() });
    expect(ok.stdout + ok.stderr).toBe("");
    expect(ok.code).toBe(0);
    const broken = join(mkdtempSync(join(tmpdir(), "psa-unit-")), "personal-server-artifacts.service");
    writeFileSync(broken, readFileSync(UNIT, "utf8").replace("ProtectSystem=strict", "ProtectSystem=strcit"));
    const bad = await run("systemd-analyze", ["verify", broken], { env: env() });
    expect(bad.stderr).toContain("Failed to parse protect system value");
  });

  it("runs as a dedicated user with a private state directory and the hardening options", async () => {
    const unit = readFileSync(UNIT, "utf8");
    for (const line of [
      "User=artifacts",
      "StateDirectory=personal-server-artifacts",
      "StateDirectoryMode=0700",
      "Environment=ARTIFACTS_LOCAL_DIR=/var/lib/personal-server-artifacts",
      "NoNewPrivileges=yes",
      "ProtectSystem=strict",
      "ExecStart=/usr/bin/node /opt/personal-server-artifacts/dist/main.js",
      "TimeoutStopSec=30",
    ]) {
      expect(unit.split("\n")).toContain(line);
    }
    const review = await run("systemd-analyze", ["security", "--offline=yes", UNIT], { env: env() });
    expect(review.code, review.stderr).toBe(0);
    for (const setting of ["NoNewPrivileges=", "ProtectSystem=", "ProtectHome=", "PrivateTmp=", "CapabilityBoundingSet="]) {
      const line = review.stdout.split("\n").find((l) => l.includes(` ${setting}`));
      expect(line, setting).toMatch(/^✓/);
    }
    const level = /Overall exposure level for personal-server-artifacts\.service: ([0-9.]+) (\S+)/.exec(review.stdout);
    expect(level?.[2]).toBe("OK");
  });
});
