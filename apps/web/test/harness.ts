/**
 * The test wallet (and the stubs that make a save path reject), put into the page the same way in
 * every engine: classic WebDriver cannot add a script before a page loads, so the page's own server
 * adds one script tag. A page opened as `<page>?harness=<token>` gets `<script src="./test-harness.js?...">`
 * first in its head, from its own origin, with the page's answer headers (its CSP) kept. That script
 * defines `window.ethereum` for the token's account, whose key stays in this process: the page asks
 * `POST ./test-harness/sign` for each signature.
 */
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import type { IncomingMessage, RequestListener, Server, ServerResponse } from "node:http";
import type { PrivateKeyAccount } from "viem/accounts";

/**
 * A save path made to reject where its feature test passes: `opfs-directory` (getDirectory() fails,
 * as in WebKit's private sessions), `opfs-writable` (createWritable() fails), `worker-uncontrolled`
 * (the download's navigation goes past the service worker to the network).
 */
export type Stub = "opfs-directory" | "opfs-writable" | "worker-uncontrolled";

interface Session {
  account: PrivateKeyAccount;
  stubs: Stub[];
  client: boolean;
  signatures: number;
}

export interface HarnessSession {
  /** The query to open the page with (`?harness=...`). */
  query: string;
  /** Signatures the wallet gave so far. */
  signatures(): number;
}

// Runs in the page, as written (a classic script: no imports, no TypeScript).
const PAGE_SCRIPT = `(() => {
  const { token, address, stubs } = JSON.parse(document.currentScript.dataset.session);
  const signUrl = new URL("test-harness/sign", document.currentScript.src);
  window.ethereum = {
    async request({ method, params }) {
      if (method === "eth_requestAccounts" || method === "eth_accounts") return [address];
      if (method !== "personal_sign") throw Object.assign(new Error("unsupported method " + method), { code: 4200 });
      const answer = await fetch(signUrl, { method: "POST", body: JSON.stringify({ token, message: params[0], address: params[1] }) });
      if (!answer.ok) throw Object.assign(new Error(await answer.text()), { code: 4100 });
      return answer.text();
    },
  };
  if (stubs.includes("opfs-directory") && self.StorageManager) {
    StorageManager.prototype.getDirectory = () => Promise.reject(new DOMException("The operation failed for an unknown transient reason (test stub)", "UnknownError"));
  }
  if (stubs.includes("opfs-writable") && self.FileSystemFileHandle) {
    FileSystemFileHandle.prototype.createWritable = () => Promise.reject(new DOMException("createWritable refused (test stub)", "NoModificationAllowedError"));
  }
  if (stubs.includes("worker-uncontrolled")) {
    const src = Object.getOwnPropertyDescriptor(HTMLIFrameElement.prototype, "src");
    Object.defineProperty(HTMLIFrameElement.prototype, "src", {
      ...src,
      set(value) { src.set.call(this, String(value).replace("/psa-download/", "/psa-download-uncontrolled/")); },
    });
  }
})();
`;

export class Harness {
  private readonly sessions = new Map<string, Session>();

  /** @param clientScript the browser client as one classic script (`window.PSA`), for tests that call it. */
  constructor(private readonly clientScript: string) {}

  /** A wallet for `account`; `stubs` make save paths reject; `client` adds the browser client script. */
  session(account: PrivateKeyAccount, options: { stubs?: Stub[]; client?: boolean } = {}): HarnessSession {
    const token = randomUUID();
    const session: Session = { account, stubs: options.stubs ?? [], client: options.client === true, signatures: 0 };
    this.sessions.set(token, session);
    return { query: `?harness=${token}`, signatures: () => session.signatures };
  }

  /**
   * Puts the harness in front of `server`'s own request handling: its two paths, and the page's
   * HTML (fetched from the server itself, headers kept) with the script tags added.
   */
  front(server: Server): void {
    const own = server.listeners("request") as RequestListener[];
    server.removeAllListeners("request");
    server.on("request", (req: IncomingMessage, res: ServerResponse) => {
      const url = new URL(req.url!, "http://page");
      const answer = this.answer(req, url, res);
      if (answer === undefined) for (const listener of own) listener.call(server, req, res);
      else answer.catch((error: unknown) => res.writeHead(500).end(String(error)));
    });
  }

  private answer(req: IncomingMessage, url: URL, res: ServerResponse): Promise<void> | undefined {
    if (url.pathname.endsWith("/test-harness.js")) {
      res.writeHead(200, { "content-type": "text/javascript", "cache-control": "no-store" }).end(PAGE_SCRIPT);
      return Promise.resolve();
    }
    if (url.pathname.endsWith("/test-harness/psa.js")) {
      res.writeHead(200, { "content-type": "text/javascript", "cache-control": "no-store" }).end(readFileSync(this.clientScript));
      return Promise.resolve();
    }
    if (url.pathname.endsWith("/test-harness/sign") && req.method === "POST") return this.sign(req, res);
    const token = url.searchParams.get("harness");
    if (req.method === "GET" && token !== null && /\/(index\.html)?$/.test(url.pathname)) return this.page(req, url, token, res);
    return undefined;
  }

  private async sign(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const { token, message, address } = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { token: string; message: `0x${string}`; address: string };
    const session = this.sessions.get(token);
    if (session === undefined || address.toLowerCase() !== session.account.address.toLowerCase()) {
      res.writeHead(403).end("personal_sign for another address");
      return;
    }
    session.signatures++;
    res.writeHead(200, { "content-type": "text/plain" }).end(await session.account.signMessage({ message: { raw: message } }));
  }

  private async page(req: IncomingMessage, url: URL, token: string, res: ServerResponse): Promise<void> {
    const session = this.sessions.get(token);
    if (session === undefined) throw new Error(`no harness session ${token}`);
    url.searchParams.delete("harness");
    const served = await fetch(`http://${req.headers.host}${url.pathname}${url.search}`);
    const data = JSON.stringify({ token, address: session.account.address, stubs: session.stubs }).replaceAll('"', "&quot;");
    const tags =
      `<script src="./test-harness.js" data-session="${data}"></script>` + (session.client ? `<script src="./test-harness/psa.js"></script>` : "");
    const html = Buffer.from((await served.text()).replace("<head>", `<head>${tags}`));
    const headers = Object.fromEntries([...served.headers].filter(([name]) => !["content-length", "content-encoding", "transfer-encoding", "connection", "keep-alive"].includes(name)));
    res.writeHead(served.status, { ...headers, "content-length": html.length }).end(html);
  }
}
