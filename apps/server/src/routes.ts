import { DELIVERY_ROUTE } from "@personal-server/artifacts";
/** The API's routes, matched on the raw (undecoded) request path. */
export type RouteName = "health" | "operations" | "operation" | "artifacts" | "artifact" | "delivery";

/** A matched route with its raw, still unvalidated `id` and `path` segments. */
export interface RouteMatch {
  name: RouteName;
  /** Label used in metrics and logs (the route pattern, never the raw path). */
  label: string;
  /** Methods this route answers (the `Allow` header of a 405). */
  methods: readonly string[];
  /** Raw operation id segment (may contain `%` and anything else: validated later, after auth). */
  id?: string;
  /** Raw artifact path (may span several segments). */
  path?: string;
}

const API = "/api/v1/operations";
export const ROUTES: Record<RouteName, { label: string; methods: readonly string[] }> = {
  health: { label: "/health", methods: ["GET", "HEAD"] },
  operations: { label: API, methods: ["POST"] },
  operation: { label: `${API}/:id`, methods: ["DELETE"] },
  artifacts: { label: `${API}/:id/artifacts`, methods: ["GET"] },
  artifact: { label: `${API}/:id/artifacts/:path*`, methods: ["GET", "HEAD", "PUT"] },
  delivery: { label: `${DELIVERY_ROUTE}/:id/:path*`, methods: ["GET", "HEAD"] },
};

function route(name: RouteName, id?: string, path?: string): RouteMatch {
  return { name, ...ROUTES[name], ...(id === undefined ? {} : { id }), ...(path === undefined ? {} : { path }) };
}

/**
 * Matches a raw request path (no query). Nothing is decoded or normalised: `%2F`, `..` and empty
 * segments stay as sent, land in `id`/`path`, and fail validation there (400) after authentication,
 * so the check order of docs/http-api.md holds even for hostile paths.
 */
export function matchRoute(rawPath: string): RouteMatch | null {
  if (rawPath === "/health") return route("health");
  if (rawPath === API) return route("operations");
  if (rawPath.startsWith(`${DELIVERY_ROUTE}/`)) {
    // Unvalidated here; the delivery check refuses anything malformed with its one 403.
    const rest = rawPath.slice(DELIVERY_ROUTE.length + 1);
    const slash = rest.indexOf("/");
    return slash === -1 ? route("delivery", rest, "") : route("delivery", rest.slice(0, slash), rest.slice(slash + 1));
  }
  if (!rawPath.startsWith(`${API}/`)) return null;
  const rest = rawPath.slice(API.length + 1);
  const slash = rest.indexOf("/");
  if (slash === -1) return route("operation", rest);
  const id = rest.slice(0, slash);
  const tail = rest.slice(slash);
  if (tail === "/artifacts") return route("artifacts", id);
  if (tail.startsWith("/artifacts/")) return route("artifact", id, tail.slice("/artifacts/".length));
  return null;
}
