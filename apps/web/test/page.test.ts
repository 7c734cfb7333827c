// The grantee page end to end, in Chromium, Firefox and WebKit (engines.ts drives each): the server
// serves it (ARTIFACTS_WEB_UI=1), a test wallet signs with a key held here (harness.ts), and the bytes
// come straight from a moto bucket whose CORS rules allow only the page's origins. Files are checked
// where each browser saved them. Run one engine with `-t <engine>`.
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Socket } from "node:net";
import { fileURLToPath } from "node:url";
import type { PrivateKeyAccount } from "viem/accounts";
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import { signRequest } from "@personal-server/artifacts/client";
import type { SaveMode } from "@personal-server/artifacts/browser";
import { putBucketCors } from "../../../test-support/s3.js";
import { startTestServer, wallet, type TestServer } from "../../server/test/helpers.js";
import { ENGINES, launch, type Engine, type EngineName, type EnginePage } from "./engines.js";
import { Harness, type Stub } from "./harness.js";
import { breakingProxy, staticHost } from "./hosts.js";
import "./provided-context.js";

const MiB = 1024 * 1024;
const C = MiB; // the chunk size the server writes
const SCREENSHOTS = fileURLToPath(new URL("./screenshots/", import.meta.url));

const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** docs/web.md's "Tested engines" table: what each engine does, as the tests below observe it. */
interface EngineRow {
  version: string;
  chosen: SaveMode;
  leftOnDisk: string;
  privateWindows: SaveMode;
}
const LABELS: Record<string, SaveMode> = { "service worker": "service-worker", OPFS: "opfs", Blob: "blob" };
function docsRows(): Record<EngineName, EngineRow> {
  const doc = readFileSync(new URL("../../../docs/web.md", import.meta.url), "utf8");
  const section = doc.slice(doc.indexOf("## Tested engines"));
  const rows = [...section.matchAll(/^\| (chromium|firefox|webkit) \| ([^|]+) \| ([^|]+) \| ([^|]+) \| ([^|]+) \|$/gm)];
  const label = (cell: string): SaveMode => {
    const mode = LABELS[/\*\*([^*]+)\*\*/.exec(cell)?.[1] ?? ""];
    if (mode === undefined) throw new Error(`docs/web.md: no save path in bold in "${cell}"`);
    return mode;
  };
  return Object.fromEntries(
    rows.map(([, name, version, chosen, left, privateWindows]) => [
      name,
      { version: /`([^`]+)`/.exec(version!)?.[1] ?? version!.trim(), chosen: label(chosen!), leftOnDisk: left!.trim(), privateWindows: label(privateWindows!) },
    ]),
  ) as Record<EngineName, EngineRow>;
}

const ROWS = docsRows();

/** The save paths each engine can use at all when one is forced (the others fail with `save_path`). */
const FORCEABLE: Record<EngineName, SaveMode[]> = {
  chromium: ["service-worker", "opfs", "blob"],
  firefox: ["service-worker", "opfs", "blob"],
  webkit: ["service-worker", "blob"],
};
/** The stub that makes each path reject where its feature test passes. */
const REJECTS: Record<Exclude<SaveMode, "blob">, Stub[]> = { "service-worker": ["worker-uncontrolled"], opfs: ["opfs-directory", "opfs-writable"] };

let s: TestServer;
let proxy: Awaited<ReturnType<typeof breakingProxy>>;
let elsewhere: Awaited<ReturnType<typeof staticHost>>;
let harness: Harness;
let grantee: PrivateKeyAccount;
let operationId: string;
const files = {
  big: randomBytes(32 * MiB),
  mid: randomBytes(3 * C + 5),
  notes: Buffer.from(Array.from({ length: 400 }, (_, i) => `line ${i}: the quick brown fox\n`).join(""), "utf8"),
};
/** Bytes the server wrote in answers to /api/v1/operations/... (tickets and listings; never artifacts). */
let apiBytesOut = 0;
const sockets = new Set<Socket>();
const serverBytesOut = (): number => [...sockets].reduce((n, socket) => n + socket.bytesWritten, 0);

beforeAll(async () => {
  harness = new Harness(inject("browserClientScript"));
  proxy = await breakingProxy(inject("motoEndpoint"));
  elsewhere = await staticHost(inject("webDist"), harness);
  s = await startTestServer("moto", { ARTIFACTS_WEB_UI: "1", S3_ENDPOINT: proxy.url, ARTIFACTS_CORS_ORIGINS: elsewhere.url }, { webUiDir: inject("webDist") });
  harness.front(s.app.server);
  s.app.server.on("connection", (socket: Socket) => sockets.add(socket));
  s.app.server.prependListener("request", (req, res) => {
    if (!req.url?.startsWith("/api/v1/operations/")) return;
    const count = (chunk: unknown): void => {
      if (typeof chunk === "string") apiBytesOut += Buffer.byteLength(chunk);
      else if (chunk instanceof Uint8Array) apiBytesOut += chunk.length;
    };
    const write = res.write.bind(res) as (...args: unknown[]) => boolean;
    const end = res.end.bind(res) as (...args: unknown[]) => typeof res;
    res.write = ((chunk: unknown, ...rest: unknown[]) => (count(chunk), write(chunk, ...rest))) as typeof res.write;
    res.end = ((chunk?: unknown, ...rest: unknown[]) => (count(chunk), end(chunk, ...rest))) as typeof res.end;
  });
  const storage = s.config.storage;
  if (storage.kind !== "s3") throw new Error("the web test runs on S3 storage");
  await putBucketCors(storage.endpoint!, storage.bucket, [
    { origins: [s.url, elsewhere.url], methods: ["GET", "HEAD"], headers: ["Range"], expose: ["Content-Range", "ETag", "Content-Length"], maxAgeSeconds: 600 },
  ]);
  grantee = wallet();
  ({ operationId } = await s.writer.createOperation({ grantee: grantee.address }));
  await s.writer.upload(operationId, "data/big.bin", files.big);
  await s.writer.upload(operationId, "data/mid.bin", files.mid);
  await s.writer.upload(operationId, "notes.txt", files.notes, { contentType: "text/plain; charset=utf-8" });
  await s.writer.upload(operationId, "tampered.bin", files.mid);
  await s.writer.upload(operationId, "empty.txt", new Uint8Array(0), { contentType: "text/plain" });
  const key = `operations/${operationId}/artifacts/tampered.bin`;
  const stored = (await s.raw.getBytes(key))!.body;
  // One flipped bit in the third chunk: chunks 0 and 1 verify, chunk 2 does not.
  stored[41 + 2 * (C + 16) + 100]! ^= 0x01;
  await s.raw.put(key, stored);
  mkdirSync(SCREENSHOTS, { recursive: true });
}, 180_000);

afterAll(async () => {
  await s?.close();
  elsewhere?.server.closeAllConnections();
  elsewhere?.server.close();
  proxy?.server.closeAllConnections();
  await new Promise((resolve) => proxy?.server.close(resolve));
});

for (const name of ENGINES) {
  describe(name, () => {
    let engine: Engine;
    const row = ROWS[name];
    const counts = { passed: 0, failed: 0 };

    beforeAll(async () => {
      engine = await launch(name);
    }, 60_000);
    beforeEach((context) => {
      context.onTestFinished(({ task }) => void counts[task.result?.state === "pass" ? "passed" : "failed"]++);
    });
    afterAll(async () => {
      // One line per engine in the CI log.
      console.log(`page suite: ${name} ${engine?.version ?? "(did not start)"}: ${counts.passed} passed, ${counts.failed} failed`);
      await engine?.close();
    });

    type Opened = EnginePage & { signatures(): number };
    /** Opens the page (downloads folder emptied) with a wallet for `account`. */
    async function openPage(account: PrivateKeyAccount, hash = "", options: { origin?: string; stubs?: Stub[]; client?: boolean; on?: Engine } = {}): Promise<Opened> {
      const on = options.on ?? engine;
      for (const entry of readdirSync(on.downloads)) rmSync(join(on.downloads, entry), { recursive: true, force: true });
      const session = harness.session(account, options);
      const page = await on.open(`${options.origin ?? s.url}/${session.query}${hash}`);
      await waitFor(page, () => document.body.dataset.ready === "1", undefined);
      return Object.assign(page, { signatures: session.signatures });
    }

    async function waitFor<A>(page: EnginePage, predicate: (arg: A) => boolean, arg: A, timeoutMs = 30_000): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      while (!(await page.evaluate(predicate, arg))) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${String(predicate)}`);
        await sleep(100);
      }
    }

    const text = (page: EnginePage, selector: string) => page.evaluate((sel) => document.querySelector(sel)?.textContent ?? null, selector);
    const attribute = (page: EnginePage, selector: string, attr: string) =>
      page.evaluate(([sel, a]) => document.querySelector(sel!)?.getAttribute(a!) ?? null, [selector, attr]);
    const saveMode = (page: EnginePage) => page.evaluate(() => [document.body.dataset.saveMode, document.getElementById("save-mode")!.textContent], undefined);

    /** Types the operation id and clicks Open (clicks: headless Firefox moves focus away after a download). */
    async function openOperation(page: EnginePage, id = operationId): Promise<void> {
      await page.evaluate((value) => void ((document.getElementById("operation") as HTMLInputElement).value = value), id);
      await page.click("#open");
      await waitFor(page, () => !(document.getElementById("artifacts") as HTMLElement).hidden || !(document.getElementById("alert") as HTMLElement).hidden, undefined);
    }

    const download = (page: EnginePage, path: string) => page.click(`li[data-path="${path}"] button.download`);

    async function itemState(page: EnginePage, path: string): Promise<{ state: string | null; status: string | null }> {
      await waitFor(page, (p) => ["done", "error"].includes(document.querySelector<HTMLElement>(`li[data-path="${p}"]`)?.dataset.state ?? ""), path, 120_000);
      return { state: await attribute(page, `li[data-path="${path}"]`, "data-state"), status: await text(page, `li[data-path="${path}"] .status`) };
    }

    const listDownloads = (on = engine): string[] => readdirSync(on.downloads).sort();

    /** The file the browser saved as `name`, once it is complete (`size` bytes, no partial file beside it). */
    async function saved(name: string, size: number, on = engine): Promise<Buffer> {
      const deadline = Date.now() + 60_000;
      const path = join(on.downloads, name);
      for (;;) {
        if (existsSync(path) && statSync(path).size === size && listDownloads(on).every((entry) => !/\.(crdownload|part|download)$/.test(entry))) return readFileSync(path);
        if (Date.now() > deadline) throw new Error(`${name} (${size} bytes) never completed in ${on.downloads}: ${listDownloads(on).join(", ")}`);
        await sleep(100);
      }
    }

    /** What the browser keeps of a failed download once it has settled (it gets a few seconds to delete). */
    async function leftOnDisk(): Promise<string> {
      await sleep(1500);
      const deadline = Date.now() + 8000;
      while (listDownloads().length > 0 && Date.now() < deadline) await sleep(200);
      const left = listDownloads();
      return left.length === 0 ? "nothing" : left.map((entry) => `${entry} (${statSync(join(engine.downloads, entry)).size} B)`).join(", ");
    }

    it("runs the engine docs/web.md names, and lists the operation's artifacts (name, size, type, expiry) after one signature", async () => {
      expect(engine.version.startsWith(row.version), `docs/web.md says ${name} ${row.version}; driven: ${engine.version}`).toBe(true);
      const page = await openPage(grantee);
      await openOperation(page);
      expect(await attribute(page, "#alert", "hidden")).not.toBeNull();
      const rows = await page.evaluate(() => [...document.querySelectorAll<HTMLElement>("li.item")].map((li) => [li.dataset.path!, li.querySelector(".meta")!.textContent!]), undefined);
      expect(rows.map(([path]) => path).sort()).toEqual(["data/big.bin", "data/mid.bin", "empty.txt", "notes.txt", "tampered.bin"]);
      const meta = Object.fromEntries(rows);
      expect(meta["data/big.bin"]).toMatch(/^32\.0 MiB · application\/octet-stream · expires .+ \(in \d+ days\)$/);
      expect(meta["notes.txt"]).toContain("text/plain");
      expect(page.signatures()).toBe(1);
      await page.screenshot(`${SCREENSHOTS}${name}.png`);
      // Readable on a phone: nothing wider than the screen.
      await page.setViewport(390, 844);
      const width = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth], undefined);
      expect(width[0]).toBeLessThanOrEqual(width[1]!);
      await page.screenshot(`${SCREENSHOTS}${name}-phone.png`);
      await page.close();
    });

    it("downloads 32 MiB straight from the bucket through the path docs/web.md names: SHA-256 matches, the server sent no artifact bytes", async () => {
      const page = await openPage(grantee);
      expect((await saveMode(page))[0]).toBe(row.chosen);
      await openOperation(page);
      const apiBefore = apiBytesOut;
      const totalBefore = serverBytesOut();
      await download(page, "data/big.bin");
      expect(await itemState(page, "data/big.bin")).toEqual({ state: "done", status: "Saved 32.0 MiB (verified)" });
      expect(sha256(await saved("big.bin", files.big.length))).toBe(sha256(files.big));
      // The ticket was in hand already (the listing carried it): the download cost the server nothing.
      expect(apiBytesOut - apiBefore).toBeLessThan(16 * 1024);
      expect(serverBytesOut() - totalBefore).toBeLessThan(64 * 1024);
      await page.screenshot(`${SCREENSHOTS}${name}-downloaded.png`);
      await page.close();
    });

    it("a transfer cut mid-way, its URL then refused, continues with a fresh ticket for the same etag; the file still matches", async () => {
      const page = await openPage(grantee);
      await openOperation(page);
      const signed = page.signatures();
      proxy.breakNext("/data/mid.bin", C + 1000);
      await download(page, "data/mid.bin");
      expect((await itemState(page, "data/mid.bin")).state).toBe("done");
      expect(sha256(await saved("mid.bin", files.mid.length))).toBe(sha256(files.mid));
      // The wallet signed once more: the fresh ticket.
      expect(page.signatures()).toBe(signed + 1);
      await page.close();
    });

    it("an empty artifact saves as an empty file (its header and final tag verified)", async () => {
      const page = await openPage(grantee);
      await openOperation(page);
      await download(page, "empty.txt");
      expect(await itemState(page, "empty.txt")).toEqual({ state: "done", status: "Saved 0 B (verified)" });
      expect((await saved("empty.txt", 0)).length).toBe(0);
      await page.close();
    });

    it("an artifact whose stored object is missing is listed with its error and no Download button; the other still downloads", async () => {
      const { operationId: id } = await s.writer.createOperation({ grantee: grantee.address });
      const kept = randomBytes(1000);
      await s.writer.upload(id, "gone.bin", randomBytes(10));
      await s.writer.upload(id, "kept.bin", kept);
      await s.raw.delete([`operations/${id}/artifacts/gone.bin`]);
      const page = await openPage(grantee);
      await openOperation(page, id);
      expect(await attribute(page, "#alert", "hidden")).not.toBeNull();
      const gone = 'li[data-path="gone.bin"]';
      expect([await attribute(page, gone, "data-state"), await attribute(page, gone, "data-code"), await text(page, `${gone} .status`)]).toEqual([
        "error",
        "integrity",
        "Cannot be downloaded: object of gone.bin is missing",
      ]);
      expect(await page.evaluate((sel) => document.querySelectorAll(`${sel} button`).length, gone)).toBe(0);
      await download(page, "kept.bin");
      expect((await itemState(page, "kept.bin")).state).toBe("done");
      expect(sha256(await saved("kept.bin", kept.length))).toBe(sha256(kept));
      await page.close();
    });

    it("downloads all artifacts one after another, each with its own progress bar", async () => {
      const { operationId: id } = await s.writer.createOperation({ grantee: grantee.address });
      const parts = [randomBytes(C + 7), randomBytes(10), randomBytes(2 * C)];
      for (const [i, bytes] of parts.entries()) await s.writer.upload(id, `part-${i}.bin`, bytes);
      const page = await openPage(grantee);
      await openOperation(page, id);
      await page.click("#download-all");
      for (const i of parts.keys()) expect((await itemState(page, `part-${i}.bin`)).state).toBe("done");
      for (const [i, bytes] of parts.entries()) expect(sha256(await saved(`part-${i}.bin`, bytes.length))).toBe(sha256(bytes));
      expect(await page.evaluate(() => [...document.querySelectorAll("li.item progress")].map((b) => (b as HTMLProgressElement).position), undefined)).toEqual([1, 1, 1]);
      await page.close();
    });

    for (const mode of ["service-worker", "opfs", "blob"] as const) {
      const works = FORCEABLE[name].includes(mode);
      it(`#save=${mode} ${works ? "saves the same bytes through that path" : "shows that this window cannot save that way"}`, async () => {
        const page = await openPage(grantee, `#save=${mode}`);
        expect((await saveMode(page))[0]).toBe(mode);
        await openOperation(page);
        await download(page, "data/mid.bin");
        const { state } = await itemState(page, "data/mid.bin");
        if (works) {
          expect(state).toBe("done");
          expect(sha256(await saved("mid.bin", files.mid.length))).toBe(sha256(files.mid));
        } else {
          expect(state).toBe("error");
          expect(await attribute(page, "#alert", "data-code")).toBe("save_path");
          expect(await leftOnDisk()).toBe("nothing");
        }
        await page.close();
      });
    }

    // Each path the engine chooses by itself, made to reject: the page goes on to the next path; forced, it says so.
    const chain = fromChosen(row.chosen);
    for (const [i, mode] of chain.entries()) {
      if (mode === "blob") continue;
      for (const stub of REJECTS[mode]) {
        const before = chain.slice(0, i).flatMap((m) => (m === "blob" ? [] : REJECTS[m].slice(0, 1)));
        it(`${mode} made to reject (${stub}): the page saves through ${chain[i + 1]} and says so; forced, it shows its own error`, async () => {
          const page = await openPage(grantee, "", { stubs: [...before, stub] });
          await openOperation(page);
          await download(page, "data/mid.bin");
          expect(await itemState(page, "data/mid.bin")).toEqual({ state: "done", status: `Saved 3.0 MiB (verified)` });
          expect(sha256(await saved("mid.bin", files.mid.length))).toBe(sha256(files.mid));
          const [used, line] = await saveMode(page);
          expect(used).toBe(chain[i + 1]);
          expect(line).toBe(`Saving through: ${chain[i + 1] === "opfs" ? "browser file system (OPFS)" : "memory (Blob)"}`);
          await page.close();

          const forced = await openPage(grantee, `#save=${mode}`, { stubs: [stub] });
          await openOperation(forced);
          await download(forced, "data/mid.bin");
          expect(await itemState(forced, "data/mid.bin")).toEqual({ state: "error", status: "This browser window cannot save that way. Remove #save= from the link to let the page choose." });
          expect(await attribute(forced, "#alert", "data-code")).toBe("save_path");
          expect(await text(forced, "#alert .detail")).toMatch(stub === "worker-uncontrolled" ? /did not take the download's navigation/ : /test stub/);
          expect((await saveMode(forced))[0]).toBe(mode);
          expect(await leftOnDisk()).toBe("nothing");
          await forced.close();
        });
      }
    }

    it("reads ranges: the page's preview, and plaintext ranges across and inside chunks", async () => {
      const page = await openPage(grantee, "", { client: true });
      await openOperation(page);
      await page.click('li[data-path="notes.txt"] button.preview');
      await waitFor(page, () => document.querySelector('li[data-path="notes.txt"] pre') !== null, undefined);
      expect(await text(page, 'li[data-path="notes.txt"] pre')).toBe(`${files.notes.subarray(0, 4096).toString("utf8")}\n…`);

      const ranges: [number, number][] = [[C - 10, C + 10], [0, 0], [3 * C, 3 * C + 4], [5, 2 * C + 3]];
      const read = await page.evaluate(
        async ({ id, ranges }) => {
          const PSA = (window as unknown as { PSA: typeof import("@personal-server/artifacts/browser") }).PSA;
          const ethereum = (window as unknown as { ethereum: import("@personal-server/artifacts/browser").Eip1193Provider }).ethereum;
          const signer = PSA.providerSigner(ethereum, await PSA.requestAccount(ethereum));
          const client = PSA.createBrowserClient({ baseUrl: location.origin, signer });
          const ticket = await client.ticket(id, "data/mid.bin");
          const out: { length: number; sha256: string }[] = [];
          for (const [start, end] of ranges) {
            const bytes = await PSA.readRange(ticket, { start: start!, end: end! });
            const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
            out.push({ length: bytes.length, sha256: Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("") });
          }
          return out;
        },
        { id: operationId, ranges },
      );
      expect(read).toEqual(ranges.map(([start, end]) => ({ length: end - start + 1, sha256: sha256(files.mid.subarray(start, end + 1)) })));
      await page.close();
    });

    it("a tampered object ends in an integrity error; what is left on disk is what docs/web.md says", async () => {
      const page = await openPage(grantee);
      await openOperation(page);
      await download(page, "tampered.bin");
      expect(await itemState(page, "tampered.bin")).toEqual({
        state: "error",
        status: "The data failed verification (it was changed or damaged in storage). Nothing was saved.",
      });
      expect(await attribute(page, "#alert", "data-code")).toBe("integrity");
      expect(await leftOnDisk()).toBe(row.leftOnDisk);
      // Nothing left behind in the origin's file system either.
      const opfs = await page.evaluate(async () => {
        if (typeof navigator.storage?.getDirectory !== "function") return [];
        const names: string[] = [];
        const root = (await navigator.storage.getDirectory()) as unknown as { keys(): AsyncIterable<string> };
        for await (const entry of root.keys()) names.push(entry);
        return names;
      }, undefined);
      expect(opfs).toEqual([]);
      await page.close();
    });

    it("a download cut for good (every later read dropped) ends in a storage error; what is left on disk is what docs/web.md says", async () => {
      const page = await openPage(grantee);
      await openOperation(page);
      proxy.breakNext("/data/mid.bin", C + 1000, true);
      try {
        await download(page, "data/mid.bin");
        expect((await itemState(page, "data/mid.bin")).state).toBe("error");
        expect(await attribute(page, "#alert", "data-code")).toBe("storage_unavailable");
        expect(await leftOnDisk()).toBe(row.leftOnDisk);
      } finally {
        proxy.breakNext("/nothing/", 0);
      }
      await page.close();
    });

    it("in a private window the page saves through the path docs/web.md names (Firefox: OPFS refuses there, Blob takes over)", async () => {
      // WebKit's automation session keeps no storage, like Safari's Private Browsing: it is one already.
      const privately = name === "webkit" ? engine : await launch(name, { privateWindows: true });
      try {
        const page = await openPage(grantee, "", { on: privately });
        await openOperation(page);
        await download(page, "data/mid.bin");
        expect((await itemState(page, "data/mid.bin")).state).toBe("done");
        expect(sha256(await saved("mid.bin", files.mid.length, privately))).toBe(sha256(files.mid));
        expect((await saveMode(page))[0]).toBe(row.privateWindows);
        await page.close();
      } finally {
        if (privately !== engine) await privately.close();
      }
    });

    it("another wallet, and an operation that does not exist, are told: not found or not shared with this wallet", async () => {
      for (const [account, id] of [[wallet(), operationId], [grantee, "no-such-operation"]] as const) {
        const page = await openPage(account, `#op=${id}`);
        await page.click("#open");
        await waitFor(page, () => !(document.getElementById("alert") as HTMLElement).hidden, undefined);
        // 404 for both once the server stops telling them apart (issue "Reliability round 2"); 403 before.
        expect(["not_found", "forbidden"]).toContain(await attribute(page, "#alert", "data-code"));
        expect(await text(page, "#alert")).toContain("Not found or not shared with this wallet.");
        expect(await attribute(page, "#artifacts", "hidden")).not.toBeNull();
        await page.close();
      }
    });

    it("deployed on another origin and pointed at the server by its link, the page works the same", async () => {
      const page = await openPage(grantee, `#server=${encodeURIComponent(s.url)}&op=${operationId}`, { origin: elsewhere.url });
      expect(await page.evaluate(() => (document.getElementById("server") as HTMLInputElement).value, undefined)).toBe(s.url);
      await page.click("#open");
      await waitFor(page, () => !(document.getElementById("artifacts") as HTMLElement).hidden, undefined);
      await download(page, "data/mid.bin");
      expect((await itemState(page, "data/mid.bin")).state).toBe("done");
      expect(sha256(await saved("mid.bin", files.mid.length))).toBe(sha256(files.mid));
      await page.close();
    });

    it("a page on an origin the bucket's CORS rules do not list cannot read the ciphertext", async () => {
      const other = s.url.replace("127.0.0.1", "localhost");
      const page = await openPage(grantee, "", { origin: other });
      await openOperation(page);
      await download(page, "data/mid.bin");
      expect((await itemState(page, "data/mid.bin")).state).toBe("error");
      expect(await attribute(page, "#alert", "data-code")).toBe("storage_unavailable");
      expect(await text(page, "#alert")).toContain("The server or the storage cannot be reached.");
      expect(await leftOnDisk()).toBe("nothing");
      await page.close();

      // What the browser saw: the bucket answers the listed origin's read with CORS headers, and not this one's.
      const target = `/api/v1/operations/${operationId}/artifacts/data/mid.bin?delivery=direct`;
      const authorization = await signRequest(grantee, { audience: s.url, method: "GET", uri: target });
      const ticket = (await (await fetch(`${s.url}${target}`, { headers: { authorization } })).json()) as { url: string };
      const corsFor = async (origin: string) => (await fetch(ticket.url, { headers: { origin, range: "bytes=0-40" } })).headers.get("access-control-allow-origin");
      expect(await corsFor(s.url)).toBe(s.url);
      expect(await corsFor(other)).toBeNull();
    });

    it("an unreachable server and an expired operation get their own messages", async () => {
      const page = await openPage(grantee, `#server=${encodeURIComponent("http://127.0.0.1:9")}`);
      await openOperation(page);
      expect(await attribute(page, "#alert", "data-code")).toBe("storage_unavailable");
      expect(await text(page, "#alert")).toContain("cannot be reached");
      await page.close();

      const saved = s.clock.now;
      s.clock.now = new Date(Date.now() + 400 * 86_400_000);
      try {
        const late = await openPage(grantee);
        await openOperation(late);
        expect(await attribute(late, "#alert", "data-code")).toBe("expired");
        expect(await text(late, "#alert")).toContain("This operation has expired");
        await late.close();
      } finally {
        s.clock.now = saved;
      }
    });
  });
}

/** The paths the page tries, in order, starting at the one it chose. */
function fromChosen(chosen: SaveMode): SaveMode[] {
  const all: SaveMode[] = ["service-worker", "opfs", "blob"];
  return all.slice(all.indexOf(chosen));
}
