import { keccak_256 } from "@noble/hashes/sha3";
import { InvalidInputError } from "./errors.js";

// docs/http-api.md#ids-and-paths quotes these patterns; a test holds the two together.
/** Operation ids: lower-case letters, digits, `_` and `-`, 1 to 128 characters, not starting with `_` or `-`. */
export const OPERATION_ID = /^[a-z0-9][a-z0-9_-]{0,127}$/;
/** Agent names (they prefix generated operation ids `<agent>_<epoch ms>`): like an id, at most 100 characters. */
export const AGENT = /^[a-z0-9][a-z0-9_-]{0,99}$/;
/** One segment of an artifact path (and not `.` or `..`). */
export const PATH_SEGMENT = /^[A-Za-z0-9._-]{1,255}$/;
/** Longest artifact path segment, in bytes: what a file name may hold on common filesystems, so every backend agrees. */
export const MAX_SEGMENT_BYTES = 255;
/** Longest artifact path, in bytes (the charset is ASCII, so bytes = characters). */
export const MAX_PATH_BYTES = 512;
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;

/** Throws `invalid_input` unless `id` matches `^[a-z0-9][a-z0-9_-]{0,127}$`. No I/O. */
export function validateOperationId(id: unknown): string {
  if (typeof id !== "string" || !OPERATION_ID.test(id)) {
    throw new InvalidInputError(
      "operationId must match ^[a-z0-9][a-z0-9_-]{0,127}$ (lower-case letters, digits, '_' and '-', at most 128)",
    );
  }
  return id;
}

/** True when `id` is a valid operation id (for scanning storage, where other prefixes may exist). */
export function isOperationId(id: string): boolean {
  return OPERATION_ID.test(id);
}

/**
 * Throws `invalid_input` unless `path` is relative, `/`-separated, every segment `[A-Za-z0-9._-]`
 * of 1 to 255 bytes, no `.` or `..` segment, at most 512 bytes. So `%`, `\`, NUL and empty segments
 * never reach storage, and no backend meets a name its filesystem cannot hold.
 */
export function validateArtifactPath(path: unknown): string {
  if (typeof path !== "string" || path.length === 0) {
    throw new InvalidInputError("artifact path must be a non-empty string");
  }
  if (path.length > MAX_PATH_BYTES) {
    throw new InvalidInputError(`artifact path is longer than ${MAX_PATH_BYTES} bytes`);
  }
  for (const segment of path.split("/")) {
    if (segment === "" || segment === "." || segment === "..") {
      throw new InvalidInputError(
        "artifact path must be relative with no empty, '.' or '..' segments",
      );
    }
    if (segment.length > MAX_SEGMENT_BYTES) {
      throw new InvalidInputError(`artifact path segments may be at most ${MAX_SEGMENT_BYTES} bytes long`);
    }
    if (!PATH_SEGMENT.test(segment)) {
      throw new InvalidInputError(
        "artifact path segments may contain only letters, digits, '.', '_' and '-'",
      );
    }
  }
  return path;
}

/** Whether `path` passes `validateArtifactPath`: what a stored entry must name (anything else there is tampering). */
export function isArtifactPath(path: string): boolean {
  try {
    validateArtifactPath(path);
    return true;
  } catch {
    return false;
  }
}

/** The EIP-55 spelling of a lower-case `0x` + 40 hex address: a hex letter is upper case where keccak-256 of the hex has a nibble >= 8. */
function checksumAddress(address: string): string {
  const hex = address.slice(2).toLowerCase();
  const hash = keccak_256(new TextEncoder().encode(hex));
  let out = "0x";
  for (let i = 0; i < 40; i++) {
    const nibble = (hash[i >> 1]! >> (i % 2 === 0 ? 4 : 0)) & 0x0f;
    out += nibble >= 8 ? hex[i]!.toUpperCase() : hex[i]!;
  }
  return out;
}

/**
 * Validates an EVM address and returns it lower-cased: `0x` + 40 hex digits, all lower case, all
 * upper case, or mixed case with a valid EIP-55 checksum (so a typo in a checksummed address is
 * refused, not shared with an address nobody controls). `field` names it in the error. The one
 * check of addresses: the store, the server and the clients all call it.
 */
export function normalizeGrantee(address: unknown, field = "grantee"): string {
  if (typeof address !== "string" || !ADDRESS.test(address)) {
    throw new InvalidInputError(`${field} must be an EVM address: 0x followed by 40 hex digits`);
  }
  const hex = address.slice(2);
  if (hex !== hex.toLowerCase() && hex !== hex.toUpperCase() && checksumAddress(address) !== address) {
    throw new InvalidInputError(
      `${field} has mixed case but not a valid EIP-55 checksum: check the address for a typo, or give it all in lower case`,
    );
  }
  return `0x${hex.toLowerCase()}`;
}

/** Validates an agent name, which becomes the prefix of generated operation ids. */
export function validateAgent(agent: unknown): string {
  if (typeof agent !== "string" || !AGENT.test(agent)) {
    throw new InvalidInputError(
      "agent must match ^[a-z0-9][a-z0-9_-]{0,99}$ (it prefixes the operation id)",
    );
  }
  return agent;
}

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** Parses `7d`, `36h`, `90m`, `3600s` into seconds (a positive whole number of units). */
export function parseDuration(text: string): number {
  const match = /^([1-9][0-9]{0,8})([smhd])$/.exec(text.trim());
  if (!match) {
    throw new InvalidInputError(
      `invalid duration "${text}": use a whole number with a unit s, m, h or d (e.g. 7d, 36h, 90m, 3600s)`,
    );
  }
  return Number(match[1]) * UNIT_SECONDS[match[2]!]!;
}

const TOKEN = "[A-Za-z0-9!#$&^_.+-]";
/** type/subtype; parameters as token=token or token="printable ASCII without quote or backslash". */
const MEDIA_TYPE = new RegExp(
  `^${TOKEN}{1,127}/${TOKEN}{1,127}([ \\t]*;[ \\t]*${TOKEN}+=("[\\x20\\x21\\x23-\\x5b\\x5d-\\x7e]*"|${TOKEN}+))*$`,
);

/**
 * A media type that can be sent as a `Content-Type` header as it is (at most 255 characters, no
 * control characters): what uploads accept and what a metadata entry must hold.
 */
export function isContentType(value: string): boolean {
  return value.length <= 255 && MEDIA_TYPE.test(value);
}

