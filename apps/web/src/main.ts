// The grantee page: connect a wallet, open an operation, download its artifacts (decrypted here).
import {
  availableSaveModes,
  createBrowserClient,
  describeError,
  providerSigner,
  readRange,
  registerDownloadWorker,
  requestAccount,
  saveTicket,
  type BrowserClient,
  type DeliveryTicket,
  type DownloadWorker,
  type Eip1193Provider,
  type SaveMode,
  type TicketListing,
} from "@personal-server/artifacts/browser";

type TicketedArtifact = TicketListing["artifacts"][number];

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const ui = {
  connect: $<HTMLButtonElement>("connect"),
  address: $("address"),
  server: $<HTMLInputElement>("server"),
  form: $<HTMLFormElement>("open-form"),
  operation: $<HTMLInputElement>("operation"),
  open: $<HTMLButtonElement>("open"),
  alert: $("alert"),
  artifacts: $("artifacts"),
  heading: $("artifacts-heading"),
  expiry: $("expiry"),
  list: $<HTMLUListElement>("list"),
  downloadAll: $<HTMLButtonElement>("download-all"),
  saveMode: $("save-mode"),
};

/** Text types get a "Preview" button: a ranged read of the first bytes, decrypted here. */
const PREVIEW_BYTES = 4096;
/** A ticket this close to its URL's expiry is renewed before a download starts. */
const TICKET_MARGIN_MS = 30_000;

const params = new URLSearchParams(location.hash.slice(1));
const provider = (window as unknown as { ethereum?: Eip1193Provider }).ethereum;
let client: BrowserClient | undefined;
let worker: DownloadWorker | null = null;
let listing: TicketListing | undefined;
const SAVE_MODES: readonly SaveMode[] = ["service-worker", "opfs", "blob"];
const forcedMode = SAVE_MODES.find((mode) => mode === params.get("save")) ?? null;
/** The save paths still to try, best first: a forced one alone; a path that could not start is dropped. */
let saveModes: SaveMode[] = [];

ui.server.value = params.get("server") ?? new URL(".", location.href).href.replace(/\/+$/, "");

function showError(error: unknown): void {
  const { title, detail } = describeError(error);
  ui.alert.replaceChildren(title);
  if (detail !== "") {
    const small = document.createElement("span");
    small.className = "detail";
    small.textContent = detail;
    ui.alert.append(small);
  }
  ui.alert.dataset.code = describeError(error).code;
  ui.alert.hidden = false;
}

function clearError(): void {
  ui.alert.hidden = true;
  ui.alert.replaceChildren();
  delete ui.alert.dataset.code;
}

function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

function formatExpiry(iso: string): string {
  const ms = Date.parse(iso) - Date.now();
  const when = new Date(iso).toLocaleString();
  if (ms <= 0) return `expired ${when}`;
  const hours = ms / 3_600_000;
  const left = hours >= 48 ? `${Math.round(hours / 24)} days` : hours >= 1 ? `${Math.round(hours)} h` : `${Math.max(1, Math.round(ms / 60_000))} min`;
  return `expires ${when} (in ${left})`;
}

/** An operation id typed in, or the `op` of a link to this page. */
function operationFrom(input: string): string {
  const text = input.trim();
  if (!/^https?:\/\//i.test(text)) return text;
  const link = new URL(text);
  const linked = new URLSearchParams(link.hash.slice(1));
  const server = linked.get("server");
  if (server !== null) ui.server.value = server;
  return linked.get("op") ?? link.searchParams.get("op") ?? text;
}

async function connect(): Promise<BrowserClient> {
  if (provider === undefined) {
    throw Object.assign(new Error("No wallet found in this browser: install an Ethereum wallet extension, then reload."), { name: "NoWallet" });
  }
  const address = await requestAccount(provider);
  client = createBrowserClient({ baseUrl: ui.server.value.trim(), signer: providerSigner(provider, address) });
  ui.address.textContent = address;
  ui.connect.textContent = "Connected";
  return client;
}

async function freshTicket(artifact: TicketedArtifact): Promise<DeliveryTicket> {
  if (artifact.ticket !== undefined && Date.parse(artifact.ticket.urlExpiresAt) - Date.now() > TICKET_MARGIN_MS) return artifact.ticket;
  artifact.ticket = await client!.ticket(listing!.operationId, artifact.path);
  return artifact.ticket;
}

function basename(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

function renderItem(artifact: TicketedArtifact): HTMLLIElement {
  const item = document.createElement("li");
  item.className = "item";
  item.dataset.path = artifact.path;
  const name = document.createElement("div");
  name.className = "name mono";
  name.textContent = artifact.path;
  const meta = document.createElement("div");
  meta.className = "meta";
  meta.textContent = `${formatBytes(artifact.size)} · ${artifact.contentType} · ${formatExpiry(listing!.expiresAt)}`;
  const actions = document.createElement("div");
  actions.className = "actions";
  const download = document.createElement("button");
  download.type = "button";
  download.className = "download";
  download.textContent = "Download";
  download.setAttribute("aria-label", `Download ${artifact.path}`);
  actions.append(download);
  const progress = document.createElement("progress");
  progress.max = Math.max(1, artifact.size);
  progress.value = 0;
  progress.hidden = true;
  progress.setAttribute("aria-label", `Progress of ${artifact.path}`);
  const status = document.createElement("div");
  status.className = "status";
  status.setAttribute("aria-live", "polite");
  item.append(name, meta, actions, progress, status);
  if (artifact.error !== undefined) {
    // The server could not vouch for this one's stored bytes: say so, offer nothing to download.
    status.className = "status error";
    status.textContent = `Cannot be downloaded: ${artifact.error.message}`;
    item.dataset.state = "error";
    item.dataset.code = artifact.error.code;
    actions.remove();
    progress.remove();
    return item;
  }

  download.addEventListener("click", () => void downloadOne(artifact, item));
  if (/^text\/|^application\/(json|xml)/.test(artifact.contentType) && artifact.size > 0) {
    const preview = document.createElement("button");
    preview.type = "button";
    preview.className = "secondary preview";
    preview.textContent = "Preview";
    preview.setAttribute("aria-label", `Preview ${artifact.path}`);
    preview.addEventListener("click", () => void previewOne(artifact, item));
    actions.append(preview);
  }
  return item;
}

async function downloadOne(artifact: TicketedArtifact, item: HTMLLIElement): Promise<boolean> {
  const button = item.querySelector<HTMLButtonElement>("button.download")!;
  const progress = item.querySelector("progress")!;
  const status = item.querySelector<HTMLElement>(".status")!;
  button.disabled = true;
  progress.hidden = false;
  progress.value = 0;
  status.className = "status";
  status.textContent = "Starting…";
  item.dataset.state = "running";
  try {
    const ticket = await freshTicket(artifact);
    const result = await saveTicket(ticket, {
      filename: basename(artifact.path),
      worker,
      modes: saveModes,
      renew: async () => (artifact.ticket = await client!.ticket(listing!.operationId, artifact.path)),
      onProgress: (bytes, total) => {
        progress.max = Math.max(1, total);
        progress.value = bytes;
        status.textContent = `${formatBytes(bytes)} of ${formatBytes(total)}`;
      },
    });
    saveModes = saveModes.slice(saveModes.indexOf(result.mode));
    showSaveMode(result.mode);
    progress.value = progress.max;
    status.className = "status ok";
    status.textContent = `Saved ${formatBytes(result.bytes)} (verified)`;
    item.dataset.state = "done";
    return true;
  } catch (error) {
    status.className = "status error";
    status.textContent = describeError(error).title;
    item.dataset.state = "error";
    item.dataset.code = describeError(error).code;
    showError(error);
    return false;
  } finally {
    button.disabled = false;
  }
}

async function previewOne(artifact: TicketedArtifact, item: HTMLLIElement): Promise<void> {
  item.querySelector("pre")?.remove();
  try {
    const ticket = await freshTicket(artifact);
    const bytes = await readRange(ticket, { start: 0, end: Math.min(artifact.size, PREVIEW_BYTES) - 1 });
    const pre = document.createElement("pre");
    pre.textContent = new TextDecoder().decode(bytes) + (artifact.size > PREVIEW_BYTES ? "\n…" : "");
    item.append(pre);
  } catch (error) {
    showError(error);
  }
}

async function openOperation(): Promise<void> {
  clearError();
  ui.open.disabled = true;
  try {
    const id = operationFrom(ui.operation.value);
    const c = client ?? (await connect());
    listing = await c.tickets(id);
    history.replaceState(null, "", `#${new URLSearchParams({ op: listing.operationId, ...(params.has("server") ? { server: ui.server.value } : {}) })}`);
    ui.heading.textContent = `Artifacts of ${listing.operationId}`;
    ui.expiry.textContent = `${listing.artifacts.length} artifact${listing.artifacts.length === 1 ? "" : "s"}, ${formatExpiry(listing.expiresAt)}`;
    ui.list.replaceChildren(...listing.artifacts.map(renderItem));
    ui.downloadAll.disabled = listing.artifacts.length === 0;
    ui.artifacts.hidden = false;
    ui.heading.focus();
  } catch (error) {
    ui.artifacts.hidden = true;
    showError(error);
  } finally {
    ui.open.disabled = false;
  }
}

ui.connect.addEventListener("click", () => {
  clearError();
  connect().catch(showError);
});
function disconnect(): void {
  client = undefined;
  ui.address.textContent = "Not connected";
  ui.connect.textContent = "Connect wallet";
}
ui.server.addEventListener("change", disconnect);
// Another account in the wallet: its requests must be signed by it, so connect again.
(provider as { on?: (event: string, listener: () => void) => void } | undefined)?.on?.("accountsChanged", disconnect);
ui.form.addEventListener("submit", (event) => {
  event.preventDefault();
  void openOperation();
});
ui.downloadAll.addEventListener("click", async () => {
  ui.downloadAll.disabled = true;
  // One at a time: each download holds its own connection and decrypt pipeline.
  for (const item of ui.list.querySelectorAll<HTMLLIElement>("li.item")) {
    const artifact = listing!.artifacts.find((a) => a.path === item.dataset.path)!;
    if (artifact.error === undefined) await downloadOne(artifact, item);
  }
  ui.downloadAll.disabled = false;
});
ui.heading.tabIndex = -1;

/** The footer's "Saving through" line: the path the next download takes, or the last one took. */
function showSaveMode(mode: SaveMode): void {
  ui.saveMode.textContent = `Saving through: ${mode === "service-worker" ? "service worker (streamed to disk)" : mode === "opfs" ? "browser file system (OPFS)" : "memory (Blob)"}`;
  document.body.dataset.saveMode = mode;
}

worker = await registerDownloadWorker(new URL("./sw.js", location.href));
saveModes = forcedMode ? [forcedMode] : availableSaveModes(worker);
showSaveMode(saveModes[0]!);
document.body.dataset.ready = "1";
if (provider === undefined) showError(new Error("No wallet found in this browser: install an Ethereum wallet extension, then reload."));
const linked = params.get("op");
if (linked !== null) {
  // Opening signs a request: the person starts it (Enter or the Open button), not the page load.
  ui.operation.value = linked;
  ui.open.focus();
}
