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
