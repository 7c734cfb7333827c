/** True if `header` names `application/json` (parameters such as charset allowed). */
export function isJsonContentType(header: string | undefined): boolean {
  if (header === undefined) return false;
  const essence = header.split(";", 1)[0]!.trim().toLowerCase();
  return essence === "application/json";
}

/**
 * `Content-Disposition: attachment` with the path's last segment as the file name, in both the
 * quoted ASCII form and the RFC 6266 / RFC 8187 `filename*` form. Validated paths are ASCII
 * `[A-Za-z0-9._-]`, so the two agree; the escaping keeps the header safe regardless.
 */
export function contentDisposition(path: string): string {
  const name = path.slice(path.lastIndexOf("/") + 1);
  const ascii = name.replace(/[^A-Za-z0-9._-]/g, "_");
  const encoded = encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}

/** Strong ETag header value of an artifact (the SDK's etag is unquoted). */
export function quoteEtag(etag: string): string {
  return `"${etag}"`;
}

/** True if an `If-None-Match` / `If-Range` list names `etag` (weak comparison for If-None-Match). */
export function etagListMatches(header: string, etag: string, weak: boolean): boolean {
  const quoted = quoteEtag(etag);
  if (header.trim() === "*") return weak;
  return header.split(",").some((item) => {
    let tag = item.trim();
    if (weak && tag.startsWith("W/")) tag = tag.slice(2);
    return tag === quoted;
  });
}
