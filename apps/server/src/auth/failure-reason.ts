import { UnauthenticatedError } from "@personal-server/artifacts";

/**
 * Why an authentication failed, as `artifacts_auth_failures_total{reason}` counts it: a few fixed
 * words, never anything from the request.
 * - `missing`: no Authorization header of the scheme the route takes.
 * - `malformed`: not the scheme's syntax (encoding, JSON, fields).
 * - `wrong_request`: a signature aimed at another audience, method, URI or body.
 * - `time`: expired, issued in the future, or a lifetime past the limit.
 * - `replayed`: a nonce already spent.
 * - `bad_signature`: no signer recovers from the signature.
 * - `bad_token`: a bearer token that is not the writer (or metrics) token.
 */
export const AUTH_FAILURE_REASONS = ["missing", "malformed", "wrong_request", "time", "replayed", "bad_signature", "bad_token"] as const;
export type AuthFailureReason = (typeof AUTH_FAILURE_REASONS)[number];

/** A 401 carrying its reason (in `details`, which never reaches the client). */
export function unauthenticated(reason: AuthFailureReason, message: string): UnauthenticatedError {
  return new UnauthenticatedError(message, { details: { reason } });
}

/** The reason of a 401 made by {@link unauthenticated}. */
export function failureReason(error: UnauthenticatedError): AuthFailureReason {
  const reason = error.details?.reason;
  return AUTH_FAILURE_REASONS.find((r) => r === reason) ?? "malformed";
}
