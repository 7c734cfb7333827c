import { createHash, timingSafeEqual } from "node:crypto";
import { unauthenticated } from "./failure-reason.js";

const BEARER = /^Bearer ([\x21-\x7e]+)$/i;

/**
 * Returns a checker for `Authorization: Bearer <secret>`. Both sides are hashed first, so the
 * comparison is constant-time whatever the lengths, and the secret's length does not leak.
 */
export function bearerChecker(secret: string, realm: string): (header: string | undefined) => void {
  const expected = createHash("sha256").update(secret).digest();
  return (header) => {
    const match = header === undefined ? null : BEARER.exec(header);
    if (match === null) throw unauthenticated("missing", `missing Authorization: Bearer <${realm}>`);
    const given = createHash("sha256").update(match[1]!).digest();
    if (!timingSafeEqual(given, expected)) throw unauthenticated("bad_token", `the bearer token is not the ${realm}`);
  };
}
