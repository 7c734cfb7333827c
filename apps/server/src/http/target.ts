import { InvalidInputError, validateArtifactPath, validateOperationId } from "@personal-server/artifacts";
import type { RouteMatch } from "../routes.js";

/**
 * The operation id (and artifact path) of a matched route, validated with no I/O. They come from
 * the raw request path, never decoded: a `%` anywhere is refused outright, so percent-encoding
 * can never smuggle a `/`, `..` or NUL past the checks.
 */
export function validatedTarget(match: RouteMatch): { id: string; path: string } {
  const id = match.id ?? "";
  if (id.includes("%")) throw new InvalidInputError("operation id must not contain '%' (percent-encoding is not accepted)");
  validateOperationId(id);
  if (match.path === undefined) return { id, path: "" };
  if (match.path.includes("%")) throw new InvalidInputError("artifact path must not contain '%' (percent-encoding is not accepted)");
  validateArtifactPath(match.path);
  return { id, path: match.path };
}
