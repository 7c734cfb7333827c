/**
 * The page suite's driver adapter: one small interface over the three engines it runs in, all from
 * Debian and driven headlessly. Chromium and Firefox through puppeteer-core (CDP, WebDriver BiDi),
 * WebKit's MiniBrowser through WebKitWebDriver (classic WebDriver, selenium-webdriver) under
 * xvfb-run. Nothing here downloads a browser. Each engine saves downloads into a folder of its own.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { Builder, By, type WebDriver } from "selenium-webdriver";

export type EngineName = "chromium" | "firefox" | "webkit";
export const ENGINES: EngineName[] = ["chromium", "firefox", "webkit"];

export const BINARIES: Record<EngineName, { path: string; install: string }> = {
  chromium: { path: "/usr/bin/chromium", install: "chromium" },
  firefox: { path: "/usr/bin/firefox-esr", install: "firefox-esr" },
  webkit: { path: "/usr/bin/WebKitWebDriver", install: "webkit2gtk-driver xvfb xauth" },
};
const MINIBROWSER = "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser";
const CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"];

/** One open page (a tab; WebKit's one window). */
export interface EnginePage {
  /** Runs `fn(arg)` in the page and resolves to its awaited, JSON-serializable result. */
  evaluate<A, R>(fn: (arg: A) => R, arg: A): Promise<Awaited<R>>;
  /** A real click on the first element matching `selector`. */
  click(selector: string): Promise<void>;
  setViewport(width: number, height: number): Promise<void>;
  screenshot(path: string): Promise<void>;
  close(): Promise<void>;
}

/** A running browser of one engine. */
export interface Engine {
  name: EngineName;
  /** The browser's version, as it reports it (e.g. `153.8.0esr`). */
  version: string;
  /** Where its downloads land. */
  downloads: string;
  open(url: string): Promise<EnginePage>;
  close(): Promise<void>;
}

/** Starts `name`. `privateWindows`: every window private (Firefox; Chromium's contexts are off the record). */
export async function launch(name: EngineName, options: { privateWindows?: boolean } = {}): Promise<Engine> {
  if (!existsSync(BINARIES[name].path)) throw new Error(`the page suite drives Debian's ${name} at ${BINARIES[name].path}: apt-get install -y ${BINARIES[name].install}`);
  const downloads = mkdtempSync(join(tmpdir(), `psa-${name}-downloads-`));
  return name === "webkit" ? launchWebKit(downloads) : launchPuppeteer(name, downloads, options.privateWindows === true);
}

async function launchPuppeteer(name: "chromium" | "firefox", downloads: string, privateWindows: boolean): Promise<Engine> {
  const browser: Browser = await puppeteer.launch({
    browser: name === "chromium" ? "chrome" : "firefox",
    executablePath: BINARIES[name].path,
    headless: true,
    ...(name === "chromium" ? { args: CHROMIUM_ARGS } : { protocol: "webDriverBiDi" as const }),
    ...(privateWindows ? { extraPrefsFirefox: { "browser.privatebrowsing.autostart": true } } : {}),
    downloadBehavior: { policy: "allow", downloadPath: downloads },
  });
  // Firefox reports 153.8.0 over BiDi; its binary says which channel (153.8.0esr).
  const version = name === "firefox" ? execFileSync(BINARIES.firefox.path, ["--version"], { encoding: "utf8" }).trim().replace(/^.* /, "") : (await browser.version()).replace(/^[^/]*\//, "");
  // Chromium: an off-the-record context, like an incognito window.
  const context = name === "chromium" && privateWindows ? await browser.createBrowserContext({ downloadBehavior: { policy: "allow", downloadPath: downloads } }) : browser.defaultBrowserContext();
  return {
    name,
    version,
    downloads,
    async open(url) {
      const page: Page = await context.newPage();
      await page.setViewport({ width: 900, height: 900 });
      await page.goto(url);
      return {
        evaluate: (fn, arg) => page.evaluate(fn as never, arg as never) as never,
        click: (selector) => page.click(selector),
        setViewport: (width, height) => page.setViewport({ width, height }),
        screenshot: async (path) => void (await page.screenshot({ path: path as `${string}.png`, fullPage: true })),
        close: () => page.close(),
      };
    },
    async close() {
      await browser.close();
      rmSync(downloads, { recursive: true, force: true });
    },
  };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** WebKitWebDriver under xvfb-run (MiniBrowser has no headless switch), with a HOME of its own. */
async function launchWebKit(downloads: string): Promise<Engine> {
  const home = mkdtempSync(join(tmpdir(), "psa-webkit-home-"));
  rmSync(downloads, { recursive: true, force: true });
  downloads = join(home, "Downloads");
  mkdirSync(downloads);
  // Without XDG user dirs, WebKitGTK saves downloads to $HOME itself.
  mkdirSync(join(home, ".config"));
  writeFileSync(join(home, ".config", "user-dirs.dirs"), 'XDG_DOWNLOAD_DIR="$HOME/Downloads"\n');
  const port = await freePort();
  const driverProcess: ChildProcess = spawn("xvfb-run", ["-a", "-s", "-screen 0 1280x1024x24", BINARIES.webkit.path, `--port=${port}`], {
    // TMPDIR too: xvfb-run's own temp folder goes when the home does (it is killed, so it cannot clean up).
    env: { ...process.env, HOME: home, TMPDIR: home },
    stdio: "ignore",
    detached: true,
  });
  const stop = (): void => {
    try {
      process.kill(-driverProcess.pid!, "SIGTERM");
    } catch {
      // already gone
    }
  };
  let driver: WebDriver;
  try {
    driver = await connectWebKit(`http://127.0.0.1:${port}`);
  } catch (error) {
    stop();
    throw error;
  }
  const capabilities = await driver.getCapabilities();
  await driver.manage().window().setRect({ width: 900, height: 900 });
  return {
    name: "webkit",
    version: String(capabilities.get("browserVersion")),
    downloads,
    async open(url) {
      await driver.get(url);
      return {
        evaluate: (fn, arg) => driver.executeScript(`return (${String(fn)})(arguments[0]);`, arg) as never,
        click: async (selector) => (await driver.findElement(By.css(selector))).click(),
        setViewport: async (width, height) => void (await driver.manage().window().setRect({ width, height })),
        screenshot: async (path) => writeFileSync(path, Buffer.from(await driver.takeScreenshot(), "base64")),
        close: async () => {
          await driver.get("about:blank");
          await driver.manage().window().setRect({ width: 900, height: 900 });
        },
      };
    },
    async close() {
      await driver.quit().catch(() => {});
      stop();
      rmSync(home, { recursive: true, force: true });
    },
  };
}

/** The driver answers once Xvfb and it are up (about a second). */
async function connectWebKit(server: string): Promise<WebDriver> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const ready = await fetch(`${server}/status`);
      if (ready.ok) break;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`WebKitWebDriver did not start at ${server}`, { cause: error });
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return new Builder()
    .usingServer(server)
    .withCapabilities({ browserName: "MiniBrowser", "webkitgtk:browserOptions": { binary: MINIBROWSER, args: ["--automation"] } })
    .build();
}
