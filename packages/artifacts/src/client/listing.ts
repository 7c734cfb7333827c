// What the list answer says, shared by the Node and browser clients (no Node built-ins here).
import type { DeliveryTicket } from "./direct.js";

/** An artifact as the list answer describes it. */
export interface RemoteArtifact {
  path: string;
  /** Plaintext size in bytes. */
  size: number;
  contentType: string;
  /** ISO-8601 UTC. */
  createdAt: string;
  /** Strong entity tag, unquoted. */
  etag: string;
}

/** The answer of `list`. */
export interface ArtifactListing {
  operationId: string;
  /** ISO-8601 UTC; after it the operation answers `expired`. */
  expiresAt: string;
  artifacts: RemoteArtifact[];
}

/** The answer of `tickets`: the listing, each artifact with its delivery ticket. */
export interface TicketListing {
  operationId: string;
  expiresAt: string;
  artifacts: (RemoteArtifact & { ticket: DeliveryTicket })[];
}

/** A byte range: `{ start, end? }` (end inclusive, as in HTTP) or the last `suffix` bytes. */
export type ByteRangeRequest = { start: number; end?: number } | { suffix: number };
