/** Direct delivery in the Node client (docs/format.md#reading-with-a-delivery-ticket). */

/**
 * What a grantee needs to fetch, verify and decrypt one artifact itself (docs/http-api.md#direct-delivery). A plaintext capability for that artifact while it exists: never log, cache or store it.
 */
export interface DeliveryTicket {
  /** Short-lived URL of the ciphertext (GET, HEAD, Range); no credentials needed. */
  url: string;
  /** ISO-8601 UTC; at most 300 s after the ticket was issued, never after the operation expires. */
  urlExpiresAt: string;
  /** The artifact's own AES-256-GCM key (format v1's HKDF output), base64url without padding (43 characters). */
  key: string;
  format: { version: 1; chunkSize: number };
  /** Plaintext bytes. */
  size: number;
  /** Stored (ciphertext) bytes: what the URL serves. */
  encryptedSize: number;
  /** ETag of the stored object, unquoted: the URL answers with it, and a renewed ticket must repeat it. */
  etag: string;
  contentType: string;
}
