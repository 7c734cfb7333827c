import { DELIVERY_ROUTE } from "@personal-server/artifacts";

/** Keys whose values never reach the logs, wherever they appear (top level or nested two deep). */
const SECRET_KEYS = [
  "authorization",
  "cookie",
  "token",
  "writerToken",
  "metricsToken",
  "masterKey",
  "masterKeys",
  "key",
  "keys",
  "secret",
  "secretAccessKey",
  "password",
  "signature",
];

/** pino redaction paths: request auth and cookie headers, set-cookie, and every secret-looking key. */
export const REDACT_PATHS = [
  "req.headers.authorization",
  "req.headers.cookie",
  'req.headers["proxy-authorization"]',
  'res.headers["set-cookie"]',
  ...SECRET_KEYS.flatMap((key) => [key, `*.${key}`, `*.*.${key}`]),
];

/**
 * What a request log line shows of a request. A local delivery URL's query is its signature, a
 * bearer capability for the ciphertext until it expires: it never reaches the logs.
 */
export function serializeRequest(request: { method: string; url: string; hostname?: string; ip?: string; socket?: { remotePort?: number } }) {
  const at = request.url.indexOf("?");
  const path = at === -1 ? request.url : request.url.slice(0, at);
  const url = at !== -1 && path.startsWith(`${DELIVERY_ROUTE}/`) ? `${path}?[redacted]` : request.url;
  return { method: request.method, url, host: request.hostname, remoteAddress: request.ip, remotePort: request.socket?.remotePort };
}
