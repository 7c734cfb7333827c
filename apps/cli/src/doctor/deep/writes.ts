// Conditional writes and the per-key write rate: what metadata.json's commits rely on.
import { randomBytes } from "node:crypto";
import { MetadataWriter, PreconditionFailedError, serializeMetadata, type OperationMetadata } from "@personal-server/artifacts/internal";
import { type DeepCheck, type DeepContext, KEY_WRITE_INTERVAL_MS, messageOf, pause } from "./context.js";

const refusedStatus = (error: PreconditionFailedError) => (error.status === undefined ? "refused" : `refused with ${error.status}`);

/** Two If-None-Match creates of one new key at once: exactly one wins, the other is refused with 412. */
export const racingCreates: DeepCheck = {
  name: "conditional create",
  async run(ctx) {
    const key = ctx.key("race");
    const bodies = [randomBytes(32), randomBytes(32)];
    const results = await Promise.allSettled(bodies.map((body) => ctx.write(() => ctx.backend.putConditional(key, body, { ifNoneMatch: "*" }))));
    const winners = results.flatMap((r, i) => (r.status === "fulfilled" ? [i] : []));
    const refused = results.filter((r) => r.status === "rejected" && r.reason instanceof PreconditionFailedError);
    const other = results.find((r) => r.status === "rejected" && !(r.reason instanceof PreconditionFailedError));
    if (other !== undefined) return { status: "fail", detail: `a racing If-None-Match create failed otherwise: ${messageOf((other as PromiseRejectedResult).reason)}` };
    if (winners.length !== 1 || refused.length !== 1) {
      return { status: "fail", detail: `${winners.length} of 2 racing If-None-Match creates succeeded: two writers could both commit one key` };
    }
    const stored = await ctx.backend.getBytes(key);
    if (stored === null || !stored.body.equals(bodies[winners[0]!]!)) return { status: "fail", detail: "the stored object is not the winning create's" };
    const reason = ((refused[0] as PromiseRejectedResult).reason as PreconditionFailedError);
    return { status: "pass", detail: `one of 2 racing If-None-Match creates won, the other was ${refusedStatus(reason)}` };
  },
};

/** If-Match on a key that does not exist is refused (R2: 412); the store never creates metadata by replacing. */
export const ifMatchMissing: DeepCheck = {
  name: "If-Match, missing key",
  async run(ctx) {
    const key = ctx.key("missing");
    try {
      await ctx.write(() => ctx.backend.putConditional(key, randomBytes(16), { ifMatch: "00000000000000000000000000000000" }));
      return { status: "fail", detail: "If-Match on a missing key created it: a deleted operation's metadata could come back" };
    } catch (error) {
      if (!(error instanceof PreconditionFailedError)) throw error;
      if (error.status !== undefined && error.status !== 412) {
        return { status: "pass", detail: `${refusedStatus(error)} (R2 answers 412; the code takes either as a refusal)` };
      }
      return { status: "pass", detail: `${refusedStatus(error)}, and nothing was created` };
    }
  },
};

/** If-Match with a stale ETag is refused with 412; with the current one it replaces. */
export const ifMatchReplace: DeepCheck = {
  name: "If-Match, replace",
  async run(ctx) {
    const key = ctx.key("replace");
    const first = await ctx.write(() => ctx.backend.putConditional(key, Buffer.from("first"), { ifNoneMatch: "*" }));
    await pause(KEY_WRITE_INTERVAL_MS);
    try {
      await ctx.write(() => ctx.backend.putConditional(key, Buffer.from("stale"), { ifMatch: first.etag.replace(/./, (c) => (c === "0" ? "1" : "0")) }));
      return { status: "fail", detail: "a write with a stale ETag replaced the object: concurrent metadata commits would lose updates" };
    } catch (error) {
      if (!(error instanceof PreconditionFailedError)) throw error;
    }
    await pause(KEY_WRITE_INTERVAL_MS);
    await ctx.write(() => ctx.backend.putConditional(key, Buffer.from("second"), { ifMatch: first.etag }));
    const got = await ctx.backend.getBytes(key);
    if (got?.body.toString() !== "second") return { status: "fail", detail: "a write with the current ETag did not replace the object" };
    return { status: "pass", detail: "a stale ETag was refused, the current one replaced the object" };
  },
};

const UPDATES = 4;

/**
 * The store's metadata writer updates one key several times in a row, as concurrent uploads to one
 * operation do: every update must land, through R2's 429s (one write per second per key) and retries.
 */
export const writeRate: DeepCheck = {
  name: "one write per second",
  async run(ctx) {
    const operationId = ctx.prefix.slice("operations/".length, -1);
    const key = ctx.key("metadata.json");
    if (`operations/${operationId}/metadata.json` !== key) throw new Error(`unexpected metadata key ${key}`);
    const now = new Date();
    const metadata: OperationMetadata = {
      version: 1,
      operationId,
      agent: "doctor --deep",
      grantee: "0x0000000000000000000000000000000000000000",
      createdAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + 3_600_000).toISOString(),
      wrappedKey: { kid: "none", iv: "", ciphertext: "" },
      artifacts: [],
    };
    await ctx.write(() => ctx.backend.putConditional(key, serializeMetadata(metadata), { ifNoneMatch: "*" }));
    const writer = new MetadataWriter(ctx.backend);
    const started = Date.now();
    for (let i = 0; i < UPDATES; i++) {
      await writer.update(operationId, (m) => {
        m.agent = `doctor --deep ${i + 1}`;
      });
    }
    const took = Date.now() - started;
    const stored = await ctx.backend.getBytes(key);
    const agent = stored === null ? undefined : (JSON.parse(stored.body.toString()) as OperationMetadata).agent;
    if (agent !== `doctor --deep ${UPDATES}`) return { status: "fail", detail: `after ${UPDATES} updates in a row the key holds ${JSON.stringify(agent)}` };
    return { status: "pass", detail: `${UPDATES} conditional updates of one key in a row all landed (${(took / 1000).toFixed(1)} s, retries included)` };
  },
};
