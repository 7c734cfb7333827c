import { LAYOUT_VERSION } from "@personal-server/artifacts/internal";
import type { Add } from "./check.js";
import type { StoredOperations } from "./operations.js";

const some = (ids: string[]) => `${ids.slice(0, 3).join(", ")}${ids.length > 3 ? `, and ${ids.length - 3} more` : ""}`;

/**
 * The storage layouts of the stored operations (docs/format.md#layouts): how many an earlier
 * release left in layout 1 and when the last expires; a layout newer than this release fails
 * (upgrade); a metadata.json that does not parse warns.
 */
export function layoutCheck(stored: StoredOperations, add: Add): void {
  const { readable, newer, malformed } = stored;
  const total = readable.length + newer.length + malformed.length;
  if (total === 0) {
    add({ name: "layouts", status: "pass", message: "no operations stored yet" });
    return;
  }
  const byLayout = new Map<number, number>();
  for (const m of readable) byLayout.set(m.version, (byLayout.get(m.version) ?? 0) + 1);
  for (const n of newer) byLayout.set(n.layout, (byLayout.get(n.layout) ?? 0) + 1);
  const parts = [...byLayout].sort(([a], [b]) => b - a).map(([layout, count]) => `${count} in layout ${layout}`);
  if (malformed.length > 0) parts.push(`${malformed.length} whose metadata.json does not parse`);
  const layout1 = readable.filter((m) => m.version === 1);
  const last = layout1.reduce((at, m) => (m.expiresAt > at ? m.expiresAt : at), "");
  const summary =
    parts.length === 1 && byLayout.get(LAYOUT_VERSION) === total
      ? `${total} operation(s), all in layout ${LAYOUT_VERSION}`
      : `${total} operation(s): ${parts.join(", ")}` +
        (layout1.length > 0 ? ` (layout 1: written by an earlier release, read as before; the last expires at ${last})` : "");
  if (newer.length > 0) {
    add({
      name: "layouts",
      status: "fail",
      message: `${summary}; this release reads layouts 1 to ${LAYOUT_VERSION}, so it refuses ${some(newer.map((n) => n.operationId))} (unsupported_layout)`,
      fix: "upgrade this CLI and every server to the release that wrote them (docs/operations.md: Upgrading replicas that share a bucket)",
    });
  } else if (malformed.length > 0) {
    add({
      name: "layouts",
      status: "warn",
      message: `${summary}: ${some(malformed)}`,
      fix: "restore operations/<id>/metadata.json from a backup, or delete the operation; the sweep leaves it alone",
    });
  } else {
    add({ name: "layouts", status: "pass", message: summary });
  }
}
