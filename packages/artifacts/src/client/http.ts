import { ArtifactError, ERROR_STATUS, errorFromCode, StorageUnavailableError, type ErrorCode } from "../errors.js";

/** A server location: where requests go and what grantees sign as `aud`. */
export interface ServerLocation {
  /** `https://host[:port]` */
  origin: string;
  /** Path prefix the API is mounted under ("" at the root), no trailing slash. */
  prefix: string;
  /** `origin + prefix`: the `aud` grantees sign. */
  audience: string;
}

/** Parses a client's `baseUrl` (`http(s)://host[:port][/prefix]`). */
export function serverLocation(baseUrl: string): ServerLocation {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw errorFromCode("invalid_input", `baseUrl ${JSON.stringify(baseUrl)} is not a URL`);
  }
  if ((url.protocol !== "http:" && url.protocol !== "https:") || url.search !== "" || url.hash !== "" || url.username !== "" || url.password !== "") {
    throw errorFromCode("invalid_input", "baseUrl must be an http(s) origin with an optional path prefix, no query or credentials");
  }
  const prefix = url.pathname.replace(/\/+$/, "");
  return { origin: url.origin, prefix, audience: `${url.origin}${prefix}` };
}

/** The fetch the clients use (global fetch by default). */
export type Fetch = typeof fetch;

/** Sends a request; network failures become `storage_unavailable` (the server could not be reached). */
export async function send(fetchImpl: Fetch, url: string, init: RequestInit): Promise<Response> {
  try {
    return await fetchImpl(url, init);
  } catch (error) {
    if (error instanceof ArtifactError) throw error;
    if ((error as Error).name === "AbortError") throw error;
    const cause = (error as { cause?: { message?: string } }).cause;
    throw new StorageUnavailableError(`cannot reach ${new URL(url).origin}: ${cause?.message ?? (error as Error).message}`, { cause: error });
  }
}

const CODE_BY_STATUS = new Map<number, ErrorCode>();
for (const [code, status] of Object.entries(ERROR_STATUS) as [ErrorCode, number][]) {
  if (!CODE_BY_STATUS.has(status)) CODE_BY_STATUS.set(status, code);
}
// 500 is shared by integrity and config: without the server's body we cannot tell which.
CODE_BY_STATUS.delete(500);

/**
 * The SDK error for a failed answer: the server's `{"error":{"code","message"}}` mapped back to the
 * same class and code (`details.status` is the HTTP status; `details.size` for 416;
 * `details.retryAfterSeconds` when the answer carries `Retry-After`, as 429 and 503 do).
 */
export async function responseError(response: Response): Promise<ArtifactError> {
  let code: unknown;
  let message: unknown;
  const text = await response.text().catch(() => "");
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    code = body.error?.code;
    message = body.error?.message;
  } catch {
    // not our JSON (a proxy's page, or a HEAD answer without a body)
  }
  const details: Record<string, unknown> = { status: response.status };
  const range = /^bytes \*\/(\d+)$/.exec(response.headers.get("content-range") ?? "");
  if (range !== null) details.size = Number(range[1]);
  const retryAfter = /^\d+$/.exec(response.headers.get("retry-after") ?? "");
  if (retryAfter !== null) details.retryAfterSeconds = Number(retryAfter[0]);
  const knownCode = typeof code === "string" ? code : CODE_BY_STATUS.get(response.status) ?? "storage_unavailable";
  const messageText = typeof message === "string" ? message : `HTTP ${response.status} ${response.statusText}`.trim();
  return errorFromCode(knownCode, messageText, { details });
}
