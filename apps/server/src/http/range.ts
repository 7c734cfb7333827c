/** A parsed `Range` header: absent/ignored, `bytes=a-[b]`, or a suffix `bytes=-n`. */
export type RangeRequest =
  | { kind: "none" }
  | { kind: "range"; start: number; end: number | undefined }
  | { kind: "suffix"; length: number };

const SINGLE = /^bytes[ \t]*=[ \t]*(\d{1,15})-(\d{0,15})[ \t]*$/i;
const SUFFIX = /^bytes[ \t]*=[ \t]*-(\d{1,15})[ \t]*$/i;

/**
 * Parses `Range` per docs/http-api.md: one range or one suffix range is honoured; a multi-range or
 * malformed header (including last < first) is ignored, so the whole artifact is sent (200).
 */
export function parseRange(header: string | undefined): RangeRequest {
  if (header === undefined) return { kind: "none" };
  const single = SINGLE.exec(header);
  if (single !== null) {
    const start = Number(single[1]);
    const end = single[2] === "" ? undefined : Number(single[2]);
    if (end !== undefined && end < start) return { kind: "none" };
    return { kind: "range", start, end };
  }
  const suffix = SUFFIX.exec(header);
  if (suffix !== null) return { kind: "suffix", length: Number(suffix[1]) };
  return { kind: "none" };
}

/**
 * Resolves a suffix range against the artifact size: the last `length` bytes (all of them when
 * `length` exceeds the size). Null when unsatisfiable: a zero length, or an empty artifact.
 */
export function resolveSuffix(length: number, size: number): { start: number; end: number } | null {
  if (length === 0 || size === 0) return null;
  return { start: Math.max(0, size - length), end: size - 1 };
}
