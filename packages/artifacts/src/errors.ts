/** Stable error codes; each maps to the HTTP status the server answers with. */
export const ERROR_STATUS = {
  invalid_input: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  expired: 410,
  too_large: 413,
  range_not_satisfiable: 416,
  integrity: 500,
  config: 500,
  storage_unavailable: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface ArtifactErrorOptions {
  /** The underlying error, kept for logs and debugging (never shown to HTTP clients). */
  cause?: unknown;
  /** What the operator can do about it (for example the setup guide's troubleshooting advice). */
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

type Sub = new (message: string, options?: ArtifactErrorOptions) => ArtifactError;
function sub(code: ErrorCode, name: string): Sub {
  const cls = class extends ArtifactError {
    constructor(message: string, options?: ArtifactErrorOptions) {
      super(code, message, options);
    }
  };
  Object.defineProperty(cls, "name", { value: name });
  return cls;
}

export const InvalidInputError = sub("invalid_input", "InvalidInputError");
export const UnauthenticatedError = sub("unauthenticated", "UnauthenticatedError");
export const ForbiddenError = sub("forbidden", "ForbiddenError");
export const NotFoundError = sub("not_found", "NotFoundError");
export const MethodNotAllowedError = sub("method_not_allowed", "MethodNotAllowedError");
export const ConflictError = sub("conflict", "ConflictError");
export const ExpiredError = sub("expired", "ExpiredError");
export const TooLargeError = sub("too_large", "TooLargeError");
export const RangeNotSatisfiableError = sub("range_not_satisfiable", "RangeNotSatisfiableError");
export const IntegrityError = sub("integrity", "IntegrityError");
export const ConfigError = sub("config", "ConfigError");
export const StorageUnavailableError = sub("storage_unavailable", "StorageUnavailableError");

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
  integrity: IntegrityError,
  config: ConfigError,
  storage_unavailable: StorageUnavailableError,
};

/** Rebuilds the SDK error (same class and code) for a code received over HTTP; unknown codes become `storage_unavailable`. */
export function errorFromCode(code: string, message: string, options?: ArtifactErrorOptions): ArtifactError {
  const cls = Object.hasOwn(CLASSES, code) ? CLASSES[code as ErrorCode] : StorageUnavailableError;
  return new cls(message, options);
}
