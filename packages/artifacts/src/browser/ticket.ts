// Delivery tickets as the server answers them (docs/http-api.md#direct-delivery).
import type { DeliveryTicket } from "../client/direct.js";
import type { RemoteArtifact } from "../client/listing.js";
import { IntegrityError } from "../errors.js";

export type { DeliveryTicket };

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
