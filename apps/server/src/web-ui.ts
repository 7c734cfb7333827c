import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, extname, join, relative, sep } from "node:path";
import { ConfigError } from "@personal-server/artifacts";
import type { FastifyReply, FastifyRequest } from "fastify";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".json": "application/json; charset=utf-8",
  ".webmanifest": "application/manifest+json",
  ".ico": "image/x-icon",
  ".png": "image/png",
};

// The page fetches ciphertext from the bucket's origin (any https origin, or this server in local
// storage), so connect-src is the one open directive; nothing else loads from elsewhere.
const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy":
    "default-src 'self'; connect-src 'self' https: http:; img-src 'self' data:; frame-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  "referrer-policy": "no-referrer",
  "x-content-type-options": "nosniff",
};

interface StaticFile {
  body: Buffer;
  type: string;
  cacheControl: string;
}

/** The built grantee page (`apps/web/dist`), from the `@personal-server/web` package. */
export function defaultWebUiDir(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve("@personal-server/web/package.json")), "dist");
}

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? walk(join(dir, entry.name)) : entry.isFile() ? [join(dir, entry.name)] : [],
  );
}

/**
 * Loads the page's files into memory once (a few small files), so requests reach nothing but
 * them: no path from a request is ever joined onto the file system. Returns the request handler,
 * which answers true when it served the request.
 */
export function webUiServer(dir: string): (request: FastifyRequest, reply: FastifyReply, path: string) => boolean {
  const files = new Map<string, StaticFile>();
  let names: string[];
  try {
    names = walk(dir);
  } catch (error) {
    throw new ConfigError(`ARTIFACTS_WEB_UI=1 but the web page is not built at ${dir} (run pnpm build)`, { cause: error });
  }
  for (const file of names) {
    const type = TYPES[extname(file)];
    if (type === undefined) continue;
    const path = `/${relative(dir, file).split(sep).join("/")}`;
    // Vite names assets by content hash: they never change. The page and the worker must revalidate.
    const cacheControl = path.startsWith("/assets/") ? "public, max-age=31536000, immutable" : "no-cache";
    files.set(path, { body: readFileSync(file), type, cacheControl });
  }
  const index = files.get("/index.html");
  if (index === undefined) throw new ConfigError(`ARTIFACTS_WEB_UI=1 but ${dir} has no index.html (run pnpm build)`);
  files.set("/", index);

  return (request, reply, path) => {
    if (request.method !== "GET" && request.method !== "HEAD") return false;
    const file = files.get(path);
    if (file === undefined) return false;
    reply.headers(SECURITY_HEADERS).header("cache-control", file.cacheControl).type(file.type);
    reply.header("content-length", file.body.length).send(request.method === "HEAD" ? undefined : file.body);
    return true;
  };
}
