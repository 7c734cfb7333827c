// `@personal-server/artifacts/browser`: the grantee's client for web pages. No Node built-ins:
// WebCrypto, fetch and streams only. Signs with an EIP-1193 wallet, lists an operation's
// artifacts, and downloads them straight from storage through delivery tickets (docs/web.md).
export { createBrowserClient, type BrowserClient, type BrowserClientOptions } from "./client.js";
export { providerSigner, requestAccount, signRequest, type Eip1193Provider } from "./eip1193.js";
export { describeError, type ErrorMessage } from "./messages.js";
export { openTicket, readRange, type OpenedTicket, type OpenOptions } from "./open.js";
export type { PlainRange } from "./protocol.js";
export { availableSaveModes, registerDownloadWorker, saveTicket, SavePathError, type DownloadWorker, type SaveMode, type SaveOptions } from "./save.js";
export type { DeliveryTicket } from "../client/direct.js";
export { serveDownloads, type DownloadWorkerScope } from "./worker.js";
export type { ArtifactListing, RemoteArtifact, TicketedArtifact, TicketFailure, TicketListing } from "../client/listing.js";
export type { MessageSigner } from "../client/web3signed-payload.js";
export * from "../errors.js";
