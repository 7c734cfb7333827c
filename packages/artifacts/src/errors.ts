/** Stable error codes; each maps to the HTTP status the server answers with. */
export const ERROR_STATUS = {
  invalid_input: 400,
  unauthenticated: 401,
  /** Refused whoever asks (e.g. a delivery URL that is invalid or has expired); never a grantee read, which is not_found for anyone but the grantee. */
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  expired: 410,
  too_large: 413,
  range_not_satisfiable: 416,
  /** Too many failed authentications from this client in the last minute; `details.retryAfterSeconds` says when to retry. */
  rate_limited: 429,
  integrity: 500,
  config: 500,
  /** An unexpected failure (a bug): the server answers it without details, which go to its log. */
  internal: 500,
  /**
   * The operation is stored in a layout newer than this release reads (docs/format.md#layouts):
   * upgrade. Answered only to the grantee and the writer; anyone else gets `not_found`.
   */
  unsupported_layout: 501,
  storage_unavailable: 503,
  /** Local storage is out of space (ENOSPC/EDQUOT): not retried like 503, an operator must free space. */
  insufficient_storage: 507,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface ArtifactErrorOptions {
  /** The underlying error, kept for logs and debugging (never shown to HTTP clients). */
  cause?: unknown;
  /** What the operator can do about it (for example which variable to check). */
  hint?: string;
  /** Extra machine-readable data, e.g. `{ size }` for range errors or `{ variables }` for config errors. */
  details?: Record<string, unknown>;
}

/** Base class of every error the SDK throws on purpose. `code` is stable; `status` is the HTTP status. */
export class ArtifactError extends Error {
  /** Stable, machine-readable code. */
  readonly code: ErrorCode;
  /** HTTP status the server answers with for this code. */
  readonly status: number;
  /** Operator advice, when there is some. */
  readonly hint: string | undefined;
  /** Extra machine-readable data. */
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: ArtifactErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.status = ERROR_STATUS[code];
    this.hint = options.hint;
    this.details = options.details;
  }
}

export class InvalidInputError extends ArtifactError {
  constructor(message: string, options?: ArtifactErrorOptions) {
    super("invalid_input", message, options);
  }
}
export class UnauthenticatedError extends ArtifactError {
  constructor(message: string, options?: ArtifactErrorOptions) {
    super("unauthenticated", message, options);
  }
}
export class ForbiddenError extends ArtifactError {
  constructor(message: string, options?: ArtifactErrorOptions) {
    super("forbidden", message, options);
  }
}
export class NotFoundError extends ArtifactError {
  constructor(message: string, options?: ArtifactErrorOptions) {
    super("not_found", message, options);
  }
}
export class MethodNotAllowedError extends ArtifactError {
  constructor(message: string, options?: ArtifactErrorOptions) {
    super("method_not_allowed", message, options);
  }
}
export class ConflictError extends ArtifactError {
  constructor(message: string, options?: ArtifactErrorOptions) {
    super("conflict", message, options);
  }
}
export class ExpiredError extends ArtifactError {
  constructor(message: string, options?: ArtifactErrorOptions) {
    super("expired", message, options);
  }
}
export class TooLargeError extends ArtifactError {
  constructor(message: string, options?: ArtifactErrorOptions) {
    super("too_large", message, options);
  }
}
export class RangeNotSatisfiableError extends ArtifactError {
  constructor(message: string, options?: ArtifactErrorOptions) {
    super("range_not_satisfiable", message, options);
  }
}
export class RateLimitedError extends ArtifactError {
  constructor(message: string, options?: ArtifactErrorOptions) {
    super("rate_limited", message, options);
  }
}
export class IntegrityError extends ArtifactError {
  constructor(message: string, options?: ArtifactErrorOptions) {
    super("integrity", message, options);
  }
}
export class ConfigError extends ArtifactError {
  constructor(message: string, options?: ArtifactErrorOptions) {
    super("config", message, options);
  }
}
export class InternalError extends ArtifactError {
  constructor(message: string, options?: ArtifactErrorOptions) {
    super("internal", message, options);
  }
}
export class StorageUnavailableError extends ArtifactError {
  constructor(message: string, options?: ArtifactErrorOptions) {
    super("storage_unavailable", message, options);
  }
}

/**
 * R2's answer to a write of a key written within the last second (HTTP 429). For a create-only
 * write that means another writer has just taken the key. A general overload (503 SlowDown, a
 * local lock that stays busy) is not that: it stays `storage_unavailable`.
 */
export function isKeyWriteThrottled(error: unknown): boolean {
  return error instanceof StorageUnavailableError && error.details?.throttled === true && error.details.status === 429;
}

export class InsufficientStorageError extends ArtifactError {
  constructor(message: string, options?: ArtifactErrorOptions) {
    super("insufficient_storage", message, options);
  }
}

export class UnsupportedLayoutError extends ArtifactError {
  /** The grantee named in the newer metadata.json, if readable (the store's check that a reader may learn of the operation). */
  readonly grantee: string | undefined;
  constructor(message: string, options?: ArtifactErrorOptions & { grantee?: string }) {
    super("unsupported_layout", message, { ...options, hint: "upgrade the server, SDK and CLI to a release that reads this layout" });
    this.grantee = options?.grantee;
  }
}

type Sub = new (message: string, options?: ArtifactErrorOptions) => ArtifactError;

const CLASSES: Record<ErrorCode, Sub> = {
  invalid_input: InvalidInputError,
  unauthenticated: UnauthenticatedError,
  forbidden: ForbiddenError,
  not_found: NotFoundError,
  method_not_allowed: MethodNotAllowedError,
  conflict: ConflictError,
  expired: ExpiredError,
  too_large: TooLargeError,
  range_not_satisfiable: RangeNotSatisfiableError,
  rate_limited: RateLimitedError,
  integrity: IntegrityError,
  config: ConfigError,
  internal: InternalError,
  storage_unavailable: StorageUnavailableError,
  insufficient_storage: InsufficientStorageError,
  unsupported_layout: UnsupportedLayoutError,
};

/** Rebuilds the SDK error (same class and code) for a code received over HTTP; unknown codes become `storage_unavailable`. */
export function errorFromCode(code: string, message: string, options?: ArtifactErrorOptions): ArtifactError {
  const cls = Object.hasOwn(CLASSES, code) ? CLASSES[code as ErrorCode] : StorageUnavailableError;
  return new cls(message, options);
}
