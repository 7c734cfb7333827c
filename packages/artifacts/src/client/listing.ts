// What the list answer says, shared by the Node and browser clients (no Node built-ins here).
import { ERROR_STATUS, IntegrityError, type ErrorCode } from "../errors.js";
import { checkTicket, type DeliveryTicket } from "./direct.js";

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

/** Why an artifact of a ticket listing has no ticket: what its own ticket request would answer (today always `integrity`). */
export interface TicketFailure {
  code: ErrorCode;
  message: string;
}

/** An artifact of a ticket listing: its ticket, or the error that kept it from having one (the others are served). */
export type TicketedArtifact = RemoteArtifact & ({ ticket: DeliveryTicket; error?: undefined } | { ticket?: undefined; error: TicketFailure });

/** The answer of `tickets`: the listing, each artifact with its delivery ticket or its error. */
export interface TicketListing {
  operationId: string;
  expiresAt: string;
  artifacts: TicketedArtifact[];
}

/** A byte range: `{ start, end? }` (end inclusive, as in HTTP) or the last `suffix` bytes. */
export type ByteRangeRequest = { start: number; end?: number } | { suffix: number };

/** Checks a ticket listing as the server sent it: every artifact has a consistent ticket or a well-formed error. */
export function checkTicketListing(listing: unknown): TicketListing {
  const artifacts = (listing as TicketListing | null)?.artifacts;
  if (!Array.isArray(artifacts)) throw new IntegrityError("the server's ticket listing has no artifacts array");
  for (const artifact of artifacts) {
    const { error } = artifact as { error?: Partial<TicketFailure> };
    if (error === undefined) {
      artifact.ticket = checkTicket(artifact.ticket!, artifact.path);
    } else if (typeof error?.code !== "string" || !Object.hasOwn(ERROR_STATUS, error.code) || typeof error.message !== "string") {
      throw new IntegrityError(`the server's ticket listing has a malformed error for ${String(artifact.path)}`);
    }
  }
  return listing as TicketListing;
}
