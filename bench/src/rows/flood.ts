// Row 11: a grantee's download while another client floods the server with garbage signatures.
// The server is behind a (pretend) proxy: ARTIFACTS_TRUSTED_PROXIES=127.0.0.1 and each client
// names itself in X-Forwarded-For, so the flood and the grantee are two clients.
import { signRequest } from "@personal-server/artifacts/client";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { benchScript, childEnv, startNode, type Child } from "../child.js";
import { alternate, drain, expectBytes, formatSize, MiB, throughputRow, type BenchContext, type RowResult } from "../harness.js";
import { bigInput, bigSize } from "./local.js";
import { ensureServerBuilt, send, serverCommand, startRealServer, uploadThroughServer } from "./server.js";

const CONNECTIONS = 16;

/** A flood under way, with the grantee's signed header for the timed download. */
interface Flooding {
  flood: Child;
  authorization: string;
  started: bigint;
}

export async function row11(ctx: BenchContext): Promise<RowResult> {
  ensureServerBuilt(ctx.log);
  const size = bigSize(ctx);
  const input = await bigInput(ctx);
  const account = privateKeyToAccount(generatePrivateKey());
  const server = await startRealServer(ctx, { ARTIFACTS_TRUSTED_PROXIES: "127.0.0.1" });
  const floods: { requests: number; seconds: number; before: Record<string, number>; after: Record<string, number> }[] = [];
  try {
    const path = await uploadThroughServer(server, account.address, input, size);
    const download = async (authorization: string) => {
      const res = await send(`${server.base}${path}`, { method: "GET", headers: { authorization, "x-forwarded-for": "203.0.113.10" } });
      if (res.statusCode !== 200) throw new Error(`download: HTTP ${res.statusCode}`);
      expectBytes("grantee download", await drain(res), size);
    };
    const sign = () => signRequest(account, { audience: server.base, method: "GET", uri: path });
    const sum = (tally: Record<string, number>) => Object.values(tally).reduce((a, b) => a + b, 0);
    // Each flood is a fresh attacker address, so every run starts from an unlimited client.
    let attacker = 0;
    const times = await alternate(
      ctx,
      "row 11",
      {
        prepare: async (): Promise<Flooding> => {
          const flood = await startNode(
            ["--import", import.meta.resolve("tsx"), benchScript("flood-client.ts"), server.base, path, `198.51.100.${++attacker}`, String(CONNECTIONS)],
            // Ready once the server refuses it with 429: the flood's steady state.
            { cwd: ctx.dir, env: childEnv({}), ready: /^limited$/m },
          );
          return { flood, authorization: await sign(), started: process.hrtime.bigint() };
        },
        run: ({ authorization }: Flooding) => download(authorization),
        cleanup: async ({ flood, started }: Flooding) => {
          const seconds = Number(process.hrtime.bigint() - started) / 1e9;
          await flood.stop();
          const line = /^flood (\{.*\})$/m.exec(flood.output());
          if (line === null) throw new Error(`the flood client reported nothing:\n${flood.output()}`);
          const { before, after } = JSON.parse(line[1]!) as { before: Record<string, number>; after: Record<string, number> };
          floods.push({ requests: sum(after), seconds, before, after });
        },
      },
      { prepare: sign, run: (authorization: string) => download(authorization) },
    );
    const recorded = floods.slice(ctx.warmup);
    const rates = recorded.map((f) => f.requests / f.seconds).sort((a, b) => a - b);
    const rate = rates[rates.length >> 1]!;
    const tally = (pick: "before" | "after") => {
      const out: Record<string, number> = {};
      for (const f of recorded) for (const [status, n] of Object.entries(f[pick])) out[status] = (out[status] ?? 0) + n;
      return Object.entries(out).map(([status, n]) => `${n} x ${status}`).join(", ");
    };
    return throughputRow(
      {
        id: "11",
        figure: `Grantee download (${formatSize(size)}) under a garbage-signature flood (median ${Math.round(rate)} req/s absorbed) vs no flood`,
        unit: "MiB/s",
        target: { kind: "min-ratio", ratio: 0.7 },
        note:
          `${serverCommand()} on local storage with ARTIFACTS_TRUSTED_PROXIES=127.0.0.1 (clients named by X-Forwarded-For) and the default ARTIFACTS_AUTH_FAILURE_LIMIT (60/min); ` +
          `ours: the grantee's signed GET while another process (on the same cores) sends well-formed Web3Signed requests with random 65-byte signatures over ${CONNECTIONS} keep-alive connections, ` +
          `timed once the flood is limited; baseline: the same GET alone. Flood answers until limited: ${tally("before")} (a random signature recovers to some address about half the time: 404); ` +
          `while timed: ${tally("after")}`,
      },
      size / MiB,
      times,
    );
  } finally {
    await server.stop();
  }
}
