/**
 * How the S3 backend reports storage failures: SDK and transport errors mapped to the SDK's
 * errors (`ConfigError`, `StorageUnavailableError`) with hints an operator can act on, never
 * with credentials.
 */
import { ConfigError, StorageUnavailableError } from "../errors.js";
import type { RemoteStorageConfig } from "./s3-client.js";
import type { NotSupported } from "./types.js";

/** The "Access Denied" advice. */
export const ACCESS_DENIED_HINT =
  "check the API token has Object Read & Write on this bucket, the account id, and that the bucket name matches exactly";

const ACCESS_CODES = new Set(["AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden", "InvalidToken", "AllAccessDisabled"]);
const THROTTLE_CODES = new Set(["SlowDown", "TooManyRequests", "TooManyRequestsException", "ServiceUnavailable", "RequestLimitExceeded", "Throttling", "ThrottlingException"]);
const REGION_CODES = new Set(["AuthorizationHeaderMalformed", "PermanentRedirect", "IllegalLocationConstraintException", "InvalidRegion"]);
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ECONNABORTED",
  "ERR_SOCKET_CONNECTION_TIMEOUT",
  "CERT_HAS_EXPIRED",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
]);

export interface Described {
  /** S3 error code (`NoSuchKey`, `AccessDenied`, ...) or the error's name. */
  code: string;
  /** HTTP status when the store answered. */
  status: number | undefined;
  /** Node errno-like code for transport failures. */
  errno: string | undefined;
}

export function describe(e: unknown): Described {
  const err = e as { name?: string; Code?: string; code?: string; $metadata?: { httpStatusCode?: number }; errors?: { code?: string }[] };
  return {
    code: err?.Code ?? err?.name ?? "Error",
    status: err?.$metadata?.httpStatusCode,
    // Happy-eyeballs connects fail with an AggregateError whose members carry the code.
    errno: err?.code ?? err?.errors?.find((x) => x?.code)?.code,
  };
}

/** 501 Not Implemented from an optional operation: the endpoint does not support it (not a failure). */
export function notImplemented(d: Described): { value: NotSupported } | undefined {
  return d.status === 501 || d.code === "NotImplemented" ? { value: "not_supported" } : undefined;
}

/** The endpoint without userinfo, safe for messages and hints. */
export function showEndpoint(endpoint: string): string {
  try {
    const u = new URL(endpoint);
    u.username = "";
    u.password = "";
    return u.toString().replace(/\/$/, "");
  } catch {
    return "(unparseable endpoint)";
  }
}

/** Maps failures of calls to one bucket; built once per backend. */
export class S3ErrorMapper {
  /** The endpoint without userinfo. */
  readonly endpoint: string;
  private readonly kind: "s3" | "r2";
  private readonly bucket: string;
  private readonly connectHint: string;
  private readonly bucketHint: string;
  private readonly timeoutMs: number;

  constructor(storage: RemoteStorageConfig, timeoutMs: number) {
    this.timeoutMs = timeoutMs;
    this.kind = storage.kind;
    this.bucket = storage.bucket;
    this.endpoint = showEndpoint(storage.endpoint);
    if (storage.kind === "r2") {
      const host = (() => {
        try {
          return new URL(storage.endpoint).host;
        } catch {
          return storage.endpoint;
        }
      })();
      this.connectHint = `check the account id format (R2_ACCOUNT_ID, 32 hex) and the endpoint URL (${this.endpoint}), and test connectivity to Cloudflare`;
      this.bucketHint =
        `check that R2_BUCKET_NAME ("${storage.bucket}") matches a bucket in account ${storage.accountId} exactly, ` +
        `and that R2_JURISDICTION (${storage.jurisdiction}, endpoint host ${host}) is the bucket's jurisdiction`;
    } else {
      this.connectHint = `check the endpoint URL (S3_ENDPOINT=${this.endpoint}) and that the store is running and reachable`;
      this.bucketHint = `check that S3_BUCKET ("${storage.bucket}") names an existing bucket at S3_ENDPOINT (${this.endpoint})`;
    }
  }

  /** Maps an SDK/transport failure to the SDK's errors, with hints an operator can act on. Never includes credentials. */
  map(e: unknown, op: string, key: string | undefined, deadlineHit: boolean): unknown {
    const { code, status, errno } = describe(e);
    const where = key === undefined ? `${op} on bucket "${this.bucket}"` : `${op} ${key}`;
    const details = { s3Code: code, status, errno };
    // Bodiless answers (HEAD, some proxies) come back as "UnknownError": the status says more.
    const shown = /^Unknown/.test(code) && status !== undefined ? `HTTP ${status}` : code;
    if (deadlineHit) {
      return new StorageUnavailableError(`storage did not answer within ${this.timeoutMs} ms (${where})`, {
        cause: e,
        hint: this.connectHint,
        details: { ...details, timeout: true },
      });
    }
    // ExpiredRequest: R2's answer to a signature whose time is too old (the same clock problem).
    if (code === "RequestTimeTooSkewed" || code === "ExpiredRequest") {
      return new ConfigError(`storage refused the request: this machine's clock is off (${where})`, {
        cause: e,
        hint: "synchronise the system clock (NTP); S3 signatures are valid for 15 minutes",
        details,
      });
    }
    if (code === "NoSuchBucket" || (op === "HeadBucket" && status === 404)) {
      return new ConfigError(`bucket "${this.bucket}" does not exist at ${this.endpoint}`, { cause: e, hint: this.bucketHint, details });
    }
    if (REGION_CODES.has(code) || status === 301) {
      return new ConfigError(`storage refused the request: wrong region or endpoint for bucket "${this.bucket}" (${code}, ${where})`, {
        cause: e,
        hint:
          this.kind === "r2"
            ? `R2 takes region "auto"; check the endpoint URL (${this.endpoint}) and R2_JURISDICTION`
            : `check that S3_REGION matches the bucket's region and S3_ENDPOINT (${this.endpoint}) is the bucket's endpoint`,
        details,
      });
    }
    if (ACCESS_CODES.has(code) || status === 403) {
      return new ConfigError(`storage denied access (${shown}) to bucket "${this.bucket}" (${where})`, {
        cause: e,
        hint: ACCESS_DENIED_HINT,
        details,
      });
    }
    if (THROTTLE_CODES.has(code) || status === 429 || status === 503) {
      return new StorageUnavailableError(`storage is throttling or unavailable (${code}, HTTP ${status ?? "?"}; ${where})`, {
        cause: e,
        hint: "requests to one key are limited (R2: about one write per second); retry with backoff",
        details: { ...details, throttled: true },
      });
    }
    if (status !== undefined && status >= 500) {
      return new StorageUnavailableError(`storage failed (${code}, HTTP ${status}; ${where})`, { cause: e, details });
    }
    const message = e instanceof Error ? e.message : String(e);
    // The HTTP handler renames ECONNRESET/EPIPE failures "TimeoutError" too: the errno decides.
    const timedOut = errno === "ETIMEDOUT" || ((code === "TimeoutError" || code === "RequestTimeout") && !(errno && NETWORK_CODES.has(errno)));
    if (timedOut || (errno !== undefined && NETWORK_CODES.has(errno)) || /socket hang up/i.test(message)) {
      const what = timedOut ? `timed out after ${this.timeoutMs} ms` : `${errno ?? code}: ${message.slice(0, 200)}`;
      return new StorageUnavailableError(`cannot reach storage at ${this.endpoint} (${what}; ${where})`, {
        cause: e,
        hint: this.connectHint,
        details: { ...details, timeout: timedOut },
      });
    }
    if (status !== undefined) {
      // Some other answer from the store (400 InvalidArgument, EntityTooLarge, ...): storage
      // misbehaved or refused, and nothing the caller's input can fix.
      return new StorageUnavailableError(`storage answered ${shown} (HTTP ${status}; ${where})`, { cause: e, details });
    }
    return e; // not a storage failure (a bug): keep it as it is
  }
}
