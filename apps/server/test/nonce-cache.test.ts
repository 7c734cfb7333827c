// The in-memory replay guard's journal (<ARTIFACTS_LOCAL_DIR>/.spent-nonces): what a restart loads
// back, what it drops, and when the file is rewritten. The crash itself (SIGKILL, restart, the
// replay refused) is test/reliability/replay-after-crash.reliability.test.ts.
import { appendFileSync, chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { NonceCache } from "../src/auth/nonce-cache.js";

const NOW = 1_800_000_000;
const nonce = (i: number) => `nonce-${String(i).padStart(16, "0")}`;

describe("NonceCache journal", () => {
  it("a restart loads the unexpired spent nonces back and drops expired ones and a torn last line", async () => {
    const journal = join(mkdtempSync(join(tmpdir(), "psa-journal-")), "state", ".spent-nonces");
    const first = new NonceCache(100, journal, NOW);
    expect(await first.spend(nonce(1), NOW + 60, NOW)).toBe("ok");
    expect(await first.spend(nonce(2), NOW + 5, NOW)).toBe("ok");
    await first.close();
    appendFileSync(journal, `${NOW + 60} nonce-torn-by-a-cra`);
    const second = new NonceCache(100, journal, NOW + 10);
    expect(second.size).toBe(1);
    expect(await second.spend(nonce(1), NOW + 60, NOW + 10)).toBe("spent");
    expect(await second.spend(nonce(2), NOW + 70, NOW + 10)).toBe("ok");
    expect(readFileSync(journal, "utf8")).toBe(`${NOW + 60} ${nonce(1)}\n${NOW + 70} ${nonce(2)}\n`);
    await second.close();
  });

  it("is rewritten with only the live entries once it has grown past twice their number", async () => {
    const journal = join(mkdtempSync(join(tmpdir(), "psa-journal-")), ".spent-nonces");
    const cache = new NonceCache(10_000, journal, NOW);
    for (let i = 0; i < 1500; i++) await cache.spend(nonce(i), NOW + 1, NOW);
    expect(readFileSync(journal, "utf8").split("\n").length - 1).toBe(1500);
    await cache.spend(nonce(99_999), NOW + 300, NOW + 2);
    expect(readFileSync(journal, "utf8")).toBe(`${NOW + 300} ${nonce(99_999)}\n`);
    await cache.close();
  });

  it("a journal the server cannot write is a config error at start naming ARTIFACTS_LOCAL_DIR", () => {
    const dir = mkdtempSync(join(tmpdir(), "psa-journal-"));
    mkdirSync(join(dir, "ro"));
    writeFileSync(join(dir, "ro", ".spent-nonces"), "");
    chmodSync(join(dir, "ro"), 0o500);
    // root ignores directory modes: a journal path through a regular file fails for anyone.
    writeFileSync(join(dir, "file"), "");
    for (const journal of [join(dir, "file", ".spent-nonces"), ...(process.getuid?.() === 0 ? [] : [join(dir, "ro", ".spent-nonces")])]) {
      expect(() => new NonceCache(10, journal, NOW)).toThrow(
        expect.objectContaining({ code: "config", message: expect.stringMatching(/^cannot keep spent nonces in .*\.spent-nonces: /) }),
      );
    }
  });
});
