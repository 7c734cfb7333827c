// The SDK as a service outside this repository gets it: `pnpm pack`, then plain `npm install` of the
// tarball into a scratch project under the OS temp dir, where the README's SDK example runs, a
// grantee client downloads from a running server, TypeScript finds the types, and local storage
// never loads the AWS SDK. publint checks the packed package first.
import { createHash } from "node:crypto";
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { publint } from "publint";
import { formatMessage } from "publint/utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type ServerProcess } from "../../test-support/server-process.js";
import { ROOT, must, requireTools, run } from "./podman.js";

const SDK = join(ROOT, "packages/artifacts");
const sdkJson = JSON.parse(readFileSync(join(SDK, "package.json"), "utf8")) as { version: string; dependencies: Record<string, string> };
let project: string;
let tarball: string;
const shell = () => ({ PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? tmpdir() });

/** Runs node in the scratch project with only PATH/HOME and `env`. */
function node(args: string[], env: Record<string, string> = {}): Promise<string> {
  return must(process.execPath, args, { cwd: project, env: { ...shell(), ...env } });
}

beforeAll(async () => {
  requireTools("npm", "pnpm");
  project = mkdtempSync(join(tmpdir(), "psa-consumer-"));
  await must("pnpm", ["pack", "--pack-destination", project], { cwd: SDK, env: process.env as Record<string, string> });
  tarball = readdirSync(project).find((f) => f.endsWith(".tgz"))!;
  expect(tarball).toBe(`personal-server-artifacts-${sdkJson.version}.tgz`);
  writeFileSync(
    join(project, "package.json"),
    JSON.stringify({ name: "consumer", private: true, type: "module", dependencies: { "@personal-server/artifacts": `file:./${tarball}`, viem: sdkJson.dependencies.viem } }, null, 2),
  );
  await must("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: project, env: { ...(process.env as Record<string, string>) } });
}, 300_000);

afterAll(() => {
  if (project) rmSync(project, { recursive: true, force: true });
});

describe("the published SDK package", () => {
  it("is publint-clean as packed, with no workspace-only paths", async () => {
    const { messages, pkg } = await publint({ pkgDir: SDK, pack: "pnpm", strict: true });
    expect(messages.map((m) => formatMessage(m, pkg))).toEqual([]);
    const installed = readFileSync(join(project, "node_modules/@personal-server/artifacts/package.json"), "utf8");
    expect(installed).not.toContain('"source"');
    expect(installed).not.toContain("workspace:");
    expect(installed).not.toContain('"private"');
    expect(JSON.parse(installed)).toMatchObject({ sideEffects: false });
    const files = await must("tar", ["tzf", join(project, tarball)], { env: shell() });
    expect(files.split("\n").filter((f) => f !== "" && !/^package\/(dist\/.*\.(js|d\.ts)|package\.json|CHANGELOG\.md|README\.md)$/.test(f))).toEqual([]);
  });

  it("runs the README's SDK example from the scratch project, on local storage, without loading the AWS SDK", async () => {
    copyFileSync(join(SDK, "examples/quickstart.ts"), join(project, "quickstart.ts"));
    // Records every module the example loads (Node's synchronous module hooks).
    writeFileSync(
      join(project, "trace.mjs"),
      [
        'import { registerHooks } from "node:module";',
        'import { writeSync } from "node:fs";',
        "const seen = new Set();",
        "registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); seen.add(r.url); return r; } });",
        'process.on("exit", () => writeSync(2, `loaded ${[...seen].filter((u) => u.includes("/node_modules/")).length} modules from node_modules; aws-sdk: ${[...seen].filter((u) => u.includes("@aws-sdk")).length}\\n`));',
        "",
      ].join("\n"),
    );
    const r = await run(process.execPath, ["--import", "./trace.mjs", "quickstart.ts"], {
      cwd: project,
      env: { ...shell(), ARTIFACTS_LOCAL_DIR: join(project, "data") },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^gemini_\d{13} privacy_audit\.md \(29 B\)\n# Privacy audit\nNo findings\.\n$/);
    expect(r.stderr).toMatch(/loaded [1-9]\d* modules from node_modules; aws-sdk: 0\n/);
  });

  it("a grantee client from the scratch project downloads from a running server", async () => {
    const token = "consumer-test-writer-token-0123456789abcdef";
    const server: ServerProcess = await startServer({ ARTIFACTS_LOCAL_DIR: join(project, "server-data"), ARTIFACTS_WRITER_TOKEN: token });
    try {
      writeFileSync(
        join(project, "client.mjs"),
        [
          'import { createHash } from "node:crypto";',
          'import { createGranteeClient, createWriterClient } from "@personal-server/artifacts/client";',
          'import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";',
          "const baseUrl = process.env.SERVER_URL;",
          "const account = privateKeyToAccount(generatePrivateKey());",
          "const writer = createWriterClient({ baseUrl, token: process.env.WRITER_TOKEN });",
          'const { operationId } = await writer.createOperation({ grantee: account.address, agent: "consumer" });',
          "const body = Buffer.alloc(2 * 1024 * 1024 + 3, 7);",
          'await writer.upload(operationId, "data.bin", body);',
          "const grantee = createGranteeClient({ baseUrl, account });",
          'const hash = createHash("sha256");',
          "let size = 0;",
          'for await (const part of await grantee.download(operationId, "data.bin")) { hash.update(part); size += part.length; }',
          'console.log(size, hash.digest("hex"));',
          "await writer.deleteOperation(operationId);",
          "",
        ].join("\n"),
      );
      const out = await node(["client.mjs"], { SERVER_URL: server.url, WRITER_TOKEN: token });
      expect(out).toBe(`${2 * 1024 * 1024 + 3} ${createHash("sha256").update(Buffer.alloc(2 * 1024 * 1024 + 3, 7)).digest("hex")}\n`);
    } finally {
      await server.stop();
    }
  });

  it("gives TypeScript consumers types for every public entry, and keeps internal things off the main entry", async () => {
    writeFileSync(
      join(project, "uses.ts"),
      [
        'import { createArtifactStore, loadConfig, NotFoundError, type ArtifactStore } from "@personal-server/artifacts";',
        'import { createGranteeClient } from "@personal-server/artifacts/client";',
        'import { DEFAULT_RETENTION_DAYS } from "@personal-server/artifacts/constants";',
        "const store: ArtifactStore = createArtifactStore(loadConfig(undefined, { create: true }));",
        "export const used = [store, NotFoundError, createGranteeClient, DEFAULT_RETENTION_DAYS];",
        "",
      ].join("\n"),
    );
    writeFileSync(
      join(project, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: { module: "nodenext", moduleResolution: "nodenext", target: "es2022", strict: true, noEmit: true, skipLibCheck: true, types: ["node"], typeRoots: [join(ROOT, "node_modules/@types")] },
        files: ["uses.ts"],
      }),
    );
    await node([join(ROOT, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.json"]);
    const main = await node(["-e", 'import("@personal-server/artifacts").then((m) => console.log(Object.keys(m).sort().join(" ")))']);
    for (const internal of ["openBackend", "readEnvironment", "readOrCreateSecretFile", "wrapDataKey", "readMetadata"]) expect(main.split(" ")).not.toContain(internal);
    const internals = await node(["-e", 'import("@personal-server/artifacts/internal").then((m) => console.log(typeof m.openBackend))']);
    expect(internals).toBe("function\n");
  });
});
