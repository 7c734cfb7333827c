import { InvalidInputError } from "./errors.js";

const OPERATION_ID = /^[a-z0-9][a-z0-9_-]{0,127}$/;
const PATH_SEGMENT = /^[A-Za-z0-9._-]+$/;
const GRANTEE = /^0x[0-9a-fA-F]{40}$/;
const AGENT = /^[a-z0-9][a-z0-9_-]{0,99}$/;
/** Longest artifact path, in bytes (the charset is ASCII, so bytes = characters). */
export const MAX_PATH_BYTES = 512;

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
 * Throws `invalid_input` unless `path` is relative, `/`-separated, every segment `[A-Za-z0-9._-]+`,
 * no `.` or `..` segment, at most 512 bytes. So `%`, `\`, NUL and empty segments never reach storage.
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
    if (!PATH_SEGMENT.test(segment)) {
      throw new InvalidInputError(
        "artifact path segments may contain only letters, digits, '.', '_' and '-'",
      );
    }
  }
  return path;
}

/** Validates an EVM address (`0x` + 40 hex) and returns it lower-cased. */
export function normalizeGrantee(grantee: unknown): string {
  if (typeof grantee !== "string" || !GRANTEE.test(grantee)) {
    throw new InvalidInputError("grantee must be an EVM address: 0x followed by 40 hex digits");
  }
  return grantee.toLowerCase();
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

