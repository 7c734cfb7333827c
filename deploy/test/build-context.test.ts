// .dockerignore keeps every .env out of the build context, at any depth (a build stage's layers keep
// what it copied even when the final image does not), and keeps the .env.example files in.
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT, must, podman, requireTools, run } from "./podman.js";

describe("the image build context", () => {
  it("leaves out .env and .env.* at every depth, and keeps .env.example", async () => {
    requireTools("podman");
    const context = mkdtempSync(join(tmpdir(), "psa-context-"));
    const tag = `localhost/psa-context-test:${process.pid}`;
    const files = [".env", ".env.local", ".env.example", "apps/server/.env", "apps/server/.env.production", "apps/server/.env.example", "deep/a/b/.env", "apps/server/src/main.ts"];
    try {
      copyFileSync(join(ROOT, ".dockerignore"), join(context, ".dockerignore"));
      for (const file of files) {
        mkdirSync(dirname(join(context, file)), { recursive: true });
        writeFileSync(join(context, file), "X=1\n");
      }
      writeFileSync(join(context, "Containerfile"), "FROM scratch\nCOPY . /ctx/\n");
      await podman("build", "--format", "docker", "-q", "-f", join(context, "Containerfile"), "-t", tag, context);
      const mount = (await podman("image", "mount", tag)).trim();
      try {
        const found = (await must("find", [join(mount, "ctx"), "-type", "f"])).trim().split("\n").map((f) => f.slice(join(mount, "ctx").length + 1));
        expect(found.filter((f) => f !== "Containerfile" && f !== ".dockerignore").sort()).toEqual([".env.example", "apps/server/.env.example", "apps/server/src/main.ts"]);
      } finally {
        await run("podman", ["image", "unmount", tag]);
      }
    } finally {
      await run("podman", ["rmi", "-f", tag]);
      rmSync(context, { recursive: true, force: true });
    }
  });
});
