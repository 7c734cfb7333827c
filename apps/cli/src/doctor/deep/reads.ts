// Ranged reads and listings: what downloads and the expiry sweep rely on.
import { randomBytes } from "node:crypto";
import type { DeepCheck } from "./context.js";

/** getBytes/getStream of a range answer exactly those bytes and the whole size; a range past the end is empty. */
export const ranges: DeepCheck = {
  name: "ranges",
  async run(ctx) {
    const key = ctx.key("ranges");
    const body = randomBytes(10_000);
    await ctx.write(() => ctx.backend.put(key, body));
    const part = await ctx.backend.getBytes(key, { start: 1000, end: 1999 });
    if (part === null || !part.body.equals(body.subarray(1000, 2000)) || part.size !== body.length) {
      return { status: "fail", detail: `bytes 1000-1999 read back ${part?.body.length ?? "nothing"} bytes (whole size ${part?.size ?? "?"})` };
    }
    const chunks: Buffer[] = [];
    const stream = await ctx.backend.getStream(key, { start: 9990, end: 20_000 });
    for await (const chunk of stream ?? []) chunks.push(chunk as Buffer);
    if (!Buffer.concat(chunks).equals(body.subarray(9990))) return { status: "fail", detail: "a range running past the end did not answer the object's last bytes" };
    const past = await ctx.backend.getBytes(key, { start: 10_000, end: 10_100 });
    if (past === null || past.body.length !== 0 || past.size !== body.length) return { status: "fail", detail: "a range starting at the end was not answered empty" };
    return { status: "pass", detail: "a middle range, one past the end (clamped) and one at the end (empty) read back as expected" };
  },
};

/** Objects just written are listed at once with their sizes, and are gone from listings once deleted. */
export const listing: DeepCheck = {
  name: "listing",
  async run(ctx) {
    const dir = `${ctx.prefix}list/`;
    const names = ["a", "b", "c"];
    const keys = names.map((n) => ctx.key(`list/${n}`));
    await Promise.all(keys.map((key, i) => ctx.write(() => ctx.backend.put(key, randomBytes(100 + i)))));
    const listed: string[] = [];
    for await (const o of ctx.backend.list(dir)) listed.push(`${o.key.slice(dir.length)}:${o.size}`);
    if (listed.join(",") !== "a:100,b:101,c:102") return { status: "fail", detail: `right after writing a, b, c the listing showed [${listed.join(", ")}]` };
    await ctx.backend.delete(keys);
    const after: string[] = [];
    for await (const o of ctx.backend.list(dir)) after.push(o.key);
    if (after.length > 0) return { status: "fail", detail: `after deleting them the listing still showed ${after.length} object(s)` };
    return { status: "pass", detail: "3 objects listed in key order with their sizes right after writing, none after deleting" };
  },
};
