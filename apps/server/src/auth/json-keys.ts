// JSON.parse keeps the last of two equal keys; a signed payload must have one reading, so a text
// with a repeated key is refused. Runs on text JSON.parse already accepted.

/** Strings, and the structural characters; everything else (numbers, literals, spaces) is skipped. */
const TOKEN = /"(?:[^"\\]|\\.)*"|[{}[\],:]/g;

/** The first key that appears twice in one object of the valid JSON `text`, or `undefined`. */
export function repeatedKey(text: string): string | undefined {
  /** One entry per open object or array: an object's keys so far, `null` for an array. */
  const open: (Set<string> | null)[] = [];
  let expectKey = false;
  for (const [token] of text.matchAll(TOKEN)) {
    const top = open.at(-1);
    if (token === "{") {
      open.push(new Set());
      expectKey = true;
    } else if (token === "[") {
      open.push(null);
    } else if (token === "}" || token === "]") {
      open.pop();
      expectKey = false;
    } else if (token === ",") {
      expectKey = top instanceof Set;
    } else if (token.startsWith('"') && expectKey && top instanceof Set) {
      const key = JSON.parse(token) as string;
      if (top.has(key)) return key;
      top.add(key);
      expectKey = false;
    }
  }
  return undefined;
}
