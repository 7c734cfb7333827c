// `tsc` over infra (program, export-env, tests) against the real @pulumi/cloudflare types and
// the SDK's published declarations: an input the provider does not accept fails `pnpm test`.
import { spawn } from "node:child_process";
import path from "node:path";
import { expect, it } from "vitest";
import { infraRequire, INFRA_DIR } from "./helpers";

it("infra type-checks with tsc", async () => {
  const tsc = infraRequire.resolve("typescript/bin/tsc");
  const result = await new Promise<{ code: number | null; out: string }>((resolve) => {
    const child = spawn(process.execPath, [tsc, "-p", path.join(INFRA_DIR, "tsconfig.json")], { cwd: INFRA_DIR, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    child.on("close", (code) => resolve({ code, out }));
  });
  expect(result.out).toBe("");
  expect(result.code).toBe(0);
});
