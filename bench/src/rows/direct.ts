// Row 11: a direct download by the Node client (ticket, then the ciphertext straight from S3,
// verified and decrypted in the client) against the proxied download of the same artifact through
// the server, on S3 storage (moto); with the server's CPU seconds per GiB for each.
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createGranteeClient } from "@personal-server/artifacts/client";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { startMoto } from "../../../test-support/moto.js";
import { alternate, drain, expectBytes, formatSize, GiB, judge, median, MiB, throughputRow, type BenchContext, type MeasuredRow, type RowResult } from "../harness.js";
import { bigInput, bigSize } from "./local.js";
import { ensureServerBuilt, serverCommand, startRealServer, uploadThroughServer } from "./server.js";

/** CPU seconds (user + system) a live process has used so far, from /proc/<pid>/stat. */
async function cpuSeconds(pid: number, ticksPerSecond: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
}

function clockTicks(): number {
  const out = spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" });
  const ticks = Number(out.stdout.trim());
  if (out.status !== 0 || !Number.isInteger(ticks) || ticks <= 0) throw new Error("getconf CLK_TCK failed");
  return ticks;
}

export async function row12(ctx: BenchContext): Promise<RowResult[]> {
  ensureServerBuilt(ctx.log);
  const size = bigSize(ctx);
  const input = await bigInput(ctx);
  const ticks = clockTicks();
  const moto = await startMoto();
  const bucket = `bench-${randomBytes(4).toString("hex")}`;
  const created = await fetch(`${moto.endpoint}/${bucket}`, { method: "PUT" });
  if (created.status !== 200) throw new Error(`CreateBucket on moto: HTTP ${created.status}`);
  const server = await startRealServer(ctx, {
    S3_ENDPOINT: moto.endpoint,
    S3_REGION: "us-east-1",
    S3_BUCKET: bucket,
    // Made-up credentials: moto checks no signatures.
    S3_ACCESS_KEY_ID: "bench-access-key",
    S3_SECRET_ACCESS_KEY: "bench-secret-key-not-a-real-one",
    ARTIFACTS_S3_TIMEOUT_MS: "120000",
  });
  try {
    const account = privateKeyToAccount(generatePrivateKey());
    ctx.log(`  row 12: uploading ${formatSize(size)} to moto through the server`);
    const path = await uploadThroughServer(server, account.address, input, size);
    const operationId = path.split("/")[4]!;
    const client = createGranteeClient({ baseUrl: server.base, account });
    const cpu = { direct: [] as number[], proxied: [] as number[] };
    const side = (direct: boolean) => ({
      run: async () => {
        const before = await cpuSeconds(server.child.pid, ticks);
        const stream = await client.download(operationId, "data.bin", direct ? { direct: true } : {});
        expectBytes(direct ? "direct download" : "proxied download", await drain(stream), size);
        (direct ? cpu.direct : cpu.proxied).push(((await cpuSeconds(server.child.pid, ticks)) - before) / (size / GiB));
      },
    });
    const times = await alternate(ctx, "row 12", side(true), side(false));
    const recorded = (list: number[]) => list.slice(list.length - ctx.runs);
    const source = `${formatSize(size)} on S3 storage (moto 127.0.0.1), server ${serverCommand()}`;
    const speed = throughputRow(
      {
        id: "12a",
        figure: `Direct download by the Node client vs proxied through the server (${formatSize(size)}, S3 storage)`,
        unit: "MiB/s",
        target: { kind: "min-ratio", ratio: 1 },
        note:
          `ours: client.download(id, path, { direct: true }) (one signed ticket request, then ranged GETs of the presigned URL, ` +
          `every chunk verified and decrypted in the client with the WebCrypto engine); baseline: client.download(id, path) ` +
          `(the server reads S3, decrypts and streams); ${source}; body read to the end`,
      },
      size / MiB,
      times,
    );
    const direct = recorded(cpu.direct);
    const proxied = recorded(cpu.proxied);
    // /proc counts CPU in clock ticks: a download that cost less than one tick reads as 0. Such a
    // median is reported as one tick per download, an upper bound (and said so in the note).
    const floor = 1 / ticks / (size / GiB);
    const belowTick = median(direct) < floor;
    const ours = Math.max(median(direct), floor);
    const baseline = Math.max(median(proxied), floor);
    const target = { kind: "max-ratio" as const, ratio: 0.01 };
    const load: MeasuredRow = {
      id: "12b",
      figure: `Server CPU per GiB: direct download vs proxied (${formatSize(size)}, S3 storage)`,
      unit: "CPU-s/GiB",
      ours,
      baseline,
      ratio: ours / baseline,
      target,
      met: judge(target, ours, ours / baseline),
      note:
        `user + system CPU seconds of the server process (/proc/<pid>/stat, ${ticks} ticks/s) during each download of row 12a, per GiB; ${source}` +
        (belowTick ? "; ours is below one clock tick per download, reported as one tick (an upper bound)" : ""),
      samples: { ours: direct, baseline: proxied },
    };
    return [speed, load];
  } finally {
    await server.stop();
    await moto.stop();
  }
}
