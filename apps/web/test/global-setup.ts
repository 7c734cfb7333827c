/**
 * vitest globalSetup of the web project: builds the page (as `pnpm build` does, into a temp dir, so
 * the test never runs a stale build) plus the browser client as one script for `page.addScriptTag`,
 * and starts a moto of its own with MOTO_DISABLE_GLOBAL_CORS=1, so the bucket's CORS rules decide
 * what a browser may read (the shared moto allows every origin). Fails the run, never skips, when
 * a browser or moto is missing.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build, defaultClientConditions } from "vite";
import type { TestProject } from "vitest/node";
import { startMoto } from "../../../test-support/moto.js";
import { BINARIES } from "./engines.js";
import "./provided-context.js";

const root = fileURLToPath(new URL("..", import.meta.url));

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  for (const [name, { path, install }] of Object.entries(BINARIES)) {
    if (!existsSync(path)) throw new Error(`the web tests drive Debian's ${name} at ${path}: apt-get install -y ${install}`);
  }
  const out = mkdtempSync(join(tmpdir(), "psa-web-"));
  const dist = join(out, "dist");
  const quiet = { logLevel: "warn" as const, root };
  await build({ ...quiet, configFile: join(root, "vite.config.ts"), build: { outDir: dist, emptyOutDir: true } });
  await build({ ...quiet, configFile: join(root, "vite.sw.config.ts"), build: { outDir: dist, emptyOutDir: false } });
  // The browser client alone, as a classic script defining `window.PSA`, to call it from tests.
  await build({
    ...quiet,
    configFile: false,
    resolve: { conditions: ["source", ...defaultClientConditions] },
    build: {
      outDir: join(out, "client"),
      emptyOutDir: true,
      target: "es2022",
      lib: { entry: join(root, "../../packages/artifacts/src/browser/index.ts"), formats: ["iife"], name: "PSA", fileName: () => "psa.js" },
    },
  });
  const moto = await startMoto("python3", { MOTO_DISABLE_GLOBAL_CORS: "1" });
  project.provide("motoEndpoint", moto.endpoint);
  project.provide("webDist", dist);
  project.provide("browserClientScript", join(out, "client", "psa.js"));
  return async () => {
    await moto.stop();
    rmSync(out, { recursive: true, force: true });
  };
}
