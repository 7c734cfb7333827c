import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import type { MasterKeys } from "../config-types.js";
import { ConfigError, IntegrityError, InvalidInputError } from "../errors.js";
import { assertBytes, KEY_BYTES, NONCE_BYTES, TAG_BYTES } from "./engine/format.js";

/** A data key wrapped by a master key, as stored in metadata.json (`wrappedKey`). */
export interface WrappedKey {
  /** Id of the master key that wrapped it (`default` for ARTIFACTS_MASTER_KEY). */
  kid: string;
  /** Base64 of the random 12-byte GCM IV. */
  iv: string;
  /** Base64 of the 32-byte wrapped key followed by the 16-byte GCM tag. */
  ciphertext: string;
}

/** The metadata fields bound to the wrapped key: editing any of them makes unwrapping fail. */
export interface KeyContext {
  operationId: string;
  /** EVM address; compared case-insensitively (lower-cased into the AAD). */
  grantee: string;
  /** `Date.toISOString()` text of the expiry, exactly as stored in metadata.json. */
  expiresAt: string;
}

/**
 * AAD of the key wrap: the JSON text of {"expiresAt","grantee","operationId","v":1},
 * keys sorted, no whitespace, grantee lower-cased. JSON.stringify keeps insertion order,
 * which is the sorted order written here, and emits no whitespace.
 */
export function wrapAad(ctx: KeyContext): string {
  return JSON.stringify({
    expiresAt: String(ctx.expiresAt),
    grantee: String(ctx.grantee).toLowerCase(),
    operationId: String(ctx.operationId),
    v: 1,
  });
}

/** A fresh random 32-byte data key for one operation. */
export function newDataKey(): Buffer {
  return randomBytes(KEY_BYTES);
}

function masterKey(masterKeys: MasterKeys, kid: string): Buffer {
  const key = masterKeys.keys.get(kid);
  if (key === undefined) {
    throw new ConfigError(
      `master key "${kid}" is not loaded; add it to ARTIFACTS_MASTER_KEYS (kid:base64) to read operations wrapped with it`,
      { details: { kid } },
    );
  }
  if (!Buffer.isBuffer(key) || key.length !== KEY_BYTES) {
    throw new ConfigError(`master key "${kid}" is not ${KEY_BYTES} bytes`, { details: { kid } });
  }
  return key;
}

function isCanonicalIso(text: string): boolean {
  const date = new Date(text);
  return !Number.isNaN(date.getTime()) && date.toISOString() === text;
}

// Readers rebuild the AAD from metadata.json; a context that would not survive that
// round trip (non-canonical date, non-string field) would make the key unreadable later.
function assertContext(ctx: KeyContext): void {
  if (typeof ctx.operationId !== "string" || typeof ctx.grantee !== "string") {
    throw new InvalidInputError("key context operationId and grantee must be strings");
  }
  if (typeof ctx.expiresAt !== "string" || !isCanonicalIso(ctx.expiresAt)) {
    throw new InvalidInputError("key context expiresAt must be the Date.toISOString() text of the expiry");
  }
}

/** Test seam: wrap with a given IV (known-answer vectors). Production code calls wrapDataKey. */
export function wrapDataKeyWithIv(dataKey: Buffer, masterKeys: MasterKeys, ctx: KeyContext, iv: Buffer): WrappedKey {
  assertBytes(dataKey, KEY_BYTES, "data key");
  assertContext(ctx);
  if (iv.length !== NONCE_BYTES) throw new InvalidInputError(`IV must be ${NONCE_BYTES} bytes`);
  const kid = masterKeys.currentKid;
  const cipher = createCipheriv("aes-256-gcm", masterKey(masterKeys, kid), iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(wrapAad(ctx), "utf8"));
  const ciphertext = Buffer.concat([cipher.update(dataKey), cipher.final(), cipher.getAuthTag()]);
  return { kid, iv: iv.toString("base64"), ciphertext: ciphertext.toString("base64") };
}

/** Wraps the data key under the current master key (AES-256-GCM, random 12-byte IV, AAD = wrapAad(ctx)). */
export function wrapDataKey(dataKey: Buffer, masterKeys: MasterKeys, ctx: KeyContext): WrappedKey {
  return wrapDataKeyWithIv(dataKey, masterKeys, ctx, randomBytes(NONCE_BYTES));
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function decodeField(value: unknown, bytes: number): Buffer | undefined {
  if (typeof value !== "string" || !BASE64.test(value)) return undefined;
  const buf = Buffer.from(value, "base64");
  return buf.length === bytes ? buf : undefined;
}

/**
 * Unwraps a data key. `ConfigError` (naming the kid, never key bytes) if its master key is
 * not loaded; `IntegrityError` if the stored key is malformed or does not authenticate
 * (metadata edited, or a different key loaded under that kid).
 */
export function unwrapDataKey(wrapped: WrappedKey, masterKeys: MasterKeys, ctx: KeyContext): Buffer {
  if (typeof wrapped !== "object" || wrapped === null || typeof wrapped.kid !== "string") {
    throw new IntegrityError("wrapped data key in metadata is malformed");
  }
  const key = masterKey(masterKeys, wrapped.kid);
  const iv = decodeField(wrapped.iv, NONCE_BYTES);
  const sealed = decodeField(wrapped.ciphertext, KEY_BYTES + TAG_BYTES);
  if (iv === undefined || sealed === undefined) {
    throw new IntegrityError("wrapped data key in metadata is malformed");
  }
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(wrapAad(ctx), "utf8"));
    decipher.setAuthTag(sealed.subarray(KEY_BYTES));
    return Buffer.concat([decipher.update(sealed.subarray(0, KEY_BYTES)), decipher.final()]);
  } catch (cause) {
    throw new IntegrityError(
      `wrapped data key failed authentication with master key "${wrapped.kid}" (metadata edited or wrong master key)`,
      { cause },
    );
  }
}
