// The README's "terminal 1" and "terminal 2" blocks, pasted in order as a newcomer would: in a
// scratch copy of the checkout (its files only: no node_modules, no builds, no .env), terminal 1's
// blocks in one shell (the server stays up), then terminal 2's in another, one after the other in
// one shell (so $TOKEN and $OP carry over). Only the port differs: 8080 may be taken here, so the
// server gets a free one (PORT) and the blocks' http://127.0.0.1:8080 is replaced by it.
// Not replayed: the Prerequisites' one-time Node download (about 190 MB from the npm registry).
import { spawn, spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../..");
const readme = readFileSync(join(ROOT, "README.md"), "utf8");
const blocks = [...readme.matchAll(/^```bash\n(# terminal ([12])\b[^\n]*\n[\s\S]*?)^```$/gm)].map((m) => ({ terminal: m[2]!, text: m[1]! }));

async function freePort(): Promise<number> {
  return new Promise((done, reject) => {
    const srv = createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const address = srv.address();
      srv.close(() => done(typeof address === "object" && address !== null ? address.port : 0));
    });
  });
}

/** The checkout's files as git sees them (tracked, and new ones not ignored), copied to `dest`. */
function copyCheckout(dest: string): void {
  const listed = spawnSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: ROOT, encoding: "utf8" });
  if (listed.status !== 0) throw new Error(`git ls-files failed: ${listed.stderr}`);
  for (const file of new Set(listed.stdout.split("\0").filter(Boolean))) {
    const from = join(ROOT, file);
    try {
      if (!statSync(from).isFile()) continue;
    } catch {
      continue; // deleted in the working tree
    }
    mkdirSync(dirname(join(dest, file)), { recursive: true });
    cpSync(from, join(dest, file), { preserveTimestamps: true });
  }
}

const scratch: string[] = [];
let server: ReturnType<typeof spawn> | undefined;
afterAll(async () => {
  if (server?.pid !== undefined && server.exitCode === null) {
    const exited = new Promise((done) => server!.once("exit", done));
    process.kill(-server.pid, "SIGTERM");
    await exited;
  }
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

describe("the README, pasted in order into two terminals", () => {
  it("has terminal blocks: the server in terminal 1, then the checks, the SDK example, the upload and the download in terminal 2", () => {
    expect(blocks.map((b) => b.terminal)).toEqual(["1", "2", "2", "2", "2"]);
  });

  it("runs them in a scratch copy of the checkout: smoke passes, the upload answers as shown, the download is identical", async () => {
    const copy = mkdtempSync(join(tmpdir(), "psa-readme-copy-"));
    const tmp = mkdtempSync(join(tmpdir(), "psa-readme-tmp-"));
    scratch.push(copy, tmp);
    copyCheckout(copy);
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const onServer = (text: string) => text.replaceAll("http://127.0.0.1:8080", url);
    // What a fresh terminal has: PATH and HOME (pnpm's store), and TMPDIR, where the server keeps local storage.
    const shell = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", TMPDIR: tmp, TURBO_TELEMETRY_DISABLED: "1", DO_NOT_TRACK: "1" };

    let out1 = "";
    server = spawn("bash", ["-c", blocks.filter((b) => b.terminal === "1").map((b) => b.text).join("\n")], {
      cwd: copy,
      env: { ...shell, PORT: String(port) },
      detached: true, // its own process group: pnpm, turbo and the server stop together
    });
    server.stdout!.on("data", (d: Buffer) => (out1 += d.toString()));
    server.stderr!.on("data", (d: Buffer) => (out1 += d.toString()));
    await new Promise<void>((done, reject) => {
      const timer = setInterval(() => {
        if (out1.includes(`artifacts server listening on ${url}`)) {
          clearInterval(timer);
          done();
        }
      }, 200);
      server!.once("exit", (code) => {
        clearInterval(timer);
        reject(new Error(`terminal 1 exited (${code}) before the server listened:\n${out1}`));
      });
    });

    const terminal2 = blocks.filter((b) => b.terminal === "2").map((b) => onServer(b.text)).join("\n");
    // `pnpm smoke` defaults to :8080; BASE_URL points it at this server (the only change besides the port).
    const run2 = spawnSync("bash", ["-euo", "pipefail", "-c", terminal2], { cwd: copy, env: { ...shell, BASE_URL: url }, encoding: "utf8", timeout: 120_000 });
    const out2 = `${run2.stdout}\n${run2.stderr}`;
    expect(run2.status, `${out2}\n--- terminal 1:\n${out1}`).toBe(0);
    expect(run2.stdout).toContain("smoke run passed: 14 checks");
    expect(run2.stdout).toMatch(/^gemini_\d{13} privacy_audit\.md \(29 B\)\n# Privacy audit\nNo findings\.\n/m);
    const shown = /^# (\{"path":"privacy_audit\.md".*\})$/m.exec(readme)?.[1];
    expect(shown).toBeDefined();
    expect(run2.stdout).toContain(shown);
    expect(run2.stdout).toContain("privacy_audit.md (29 B)\n");
    expect(run2.stdout).toContain("downloaded and decrypted: identical\n");
    expect(readFileSync(join(copy, "privacy_audit.downloaded.md"), "utf8")).toBe("# Privacy audit\nNo findings.\n");
  }, 300_000);
});
