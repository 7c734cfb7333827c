/** Every object the SDK writes lives under this prefix; the bucket's lifecycle rule targets it. */
export const OPERATIONS_PREFIX = "operations/";

/** Default (and maximum, unless ARTIFACTS_TTL says otherwise) retention of an operation's artifacts. */
export const DEFAULT_RETENTION_DAYS = 7;
