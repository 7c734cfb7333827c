// Delivery tickets as the server answers them (docs/http-api.md, "Direct delivery").
import { IntegrityError } from "../errors.js";
import type { RemoteArtifact } from "../client/listing.js";

/** One artifact's delivery ticket: where its ciphertext is, and the key that opens only it. */
export interface DeliveryTicket {
  /** Short-lived URL of the ciphertext object (presigned GET, or this server's signed delivery route). */
  url: string;
  /** ISO-8601 UTC; after it `url` stops working (ask for a new ticket). */
  urlExpiresAt: string;
  /** The artifact key, base64url without padding (43 characters). A capability: never log or persist it. */
  key: string;
  format: { version: number; chunkSize: number };
  /** Plaintext size in bytes. */
  size: number;
  /** Stored (ciphertext) size in bytes. */
  encryptedSize: number;
  /** Strong entity tag of the artifact, unquoted. */
  etag: string;
  contentType: string;
}

/** An artifact of a listing together with its ticket. */
export interface TicketedArtifact extends RemoteArtifact {
  ticket: DeliveryTicket;
}

/** Checks a ticket's shape before anything uses it (a proxy's page or a wrong server must not get further). */
export function checkTicket(value: unknown, what: string): DeliveryTicket {
  const t = value as Partial<DeliveryTicket> | null;
  const ok =
    typeof t === "object" &&
    t !== null &&
    typeof t.url === "string" &&
    typeof t.urlExpiresAt === "string" &&
    typeof t.key === "string" &&
    /^[A-Za-z0-9_-]{43}$/.test(t.key) &&
    typeof t.format === "object" &&
    t.format !== null &&
    Number.isSafeInteger(t.format.chunkSize) &&
    Number.isSafeInteger(t.size) &&
    Number.isSafeInteger(t.encryptedSize) &&
    typeof t.etag === "string" &&
    typeof t.contentType === "string";
  if (!ok) throw new IntegrityError(`the server's delivery ticket for ${what} is malformed`);
  return t as DeliveryTicket;
}
