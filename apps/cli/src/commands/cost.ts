import { Command, InvalidArgumentError, Option } from "commander";
import { parseDuration } from "@personal-server/artifacts";
import { type BillLine, type CostEstimate, estimateCost } from "@personal-server/artifacts/internal";
import { formatBytes, formatDuration, formatPrice, formatUsd, parseCount, parseSize, table } from "../format.js";
import { type Io, printJson, println } from "../io.js";
import { S3_PART_SIZE } from "../sdk-facts.js";

interface CostOptions {
  opsPerMonth: number;
  artifactsPerOp: number;
  artifactSize: number;
  retention: number;
  storageClass: "standard" | "infrequent";
  downloads: number;
  sweepInterval: number;
  json?: boolean;
}

/** Wraps a value parser so a bad value is a command-line error (exit 2) with the parser's message. */
function arg<T>(parse: (value: string) => T): (value: string) => T {
  return (value) => {
    try {
      return parse(value);
    } catch (error) {
      throw new InvalidArgumentError((error as Error).message);
    }
  };
}
const count = arg((v) => parseCount(v, "value"));

export function costCommand(io: Io, setExit: (code: number) => void): Command {
  return new Command("cost")
    .description("estimate the monthly bill on R2 (free tier deducted) beside S3 Standard with egress")
    .requiredOption("--ops-per-month <n>", "operations created per month", count)
    .requiredOption("--artifacts-per-op <n>", "artifacts per operation", count)
    .requiredOption("--artifact-size <size>", "plaintext size of each artifact: 5MB, 512KiB, 1.5GB, or bytes", arg(parseSize))
    .requiredOption("--retention <duration>", "how long operations live (ARTIFACTS_TTL): 7d, 36h, 90m", arg(parseDuration))
    .addOption(new Option("--storage-class <class>", "R2 storage class").choices(["standard", "infrequent"]).default("standard"))
    .option("--downloads <n>", "downloads of each artifact by its grantee", count, 1)
    .option(
      "--sweep-interval <duration>",
      "ARTIFACTS_SWEEP_INTERVAL (0: no sweep, the lifecycle rule deletes)",
      arg((v) => (v.trim() === "0" ? 0 : parseDuration(v))),
      3600,
    )
    .option("--json", "machine-readable output")
    .addHelpText(
      "after",
      "\nExample: artifacts cost --ops-per-month 100 --artifacts-per-op 2 --artifact-size 5MB --retention 7d\n" +
        "Needs no configuration and makes no requests: prices live in one dated table (packages/artifacts/src/cost/pricing.ts).",
    )
    .action((opts: CostOptions) => {
      const estimate = estimateCost({
        opsPerMonth: opts.opsPerMonth,
        artifactsPerOp: opts.artifactsPerOp,
        artifactSize: opts.artifactSize,
        retentionSeconds: opts.retention,
        storageClass: opts.storageClass,
        downloads: opts.downloads,
        sweepIntervalSeconds: opts.sweepInterval,
        partSize: S3_PART_SIZE,
      });
      if (opts.json === true) printJson(io, { ok: true, ...estimate });
      else printCost(io, estimate);
      setExit(0);
    });
}

function printCost(io: Io, e: CostEstimate): void {
  const d = e.derived;
  const n = (x: number) => x.toLocaleString("en-US", { maximumFractionDigits: 4 });
  println(
    io,
    `Monthly estimate: ${n(e.input.opsPerMonth)} operations x ${e.input.artifactsPerOp} artifacts of ${formatBytes(e.input.artifactSize)} (${n(e.input.artifactSize)} bytes), kept ${formatDuration(e.input.retentionSeconds)}, ${e.input.downloads} download(s) each, ${e.input.sweepIntervalSeconds === 0 ? "no sweep" : `sweep every ${formatDuration(e.input.sweepIntervalSeconds)}`}`,
    "",
    `Stored per operation: ${e.input.artifactsPerOp} x ${n(d.encryptedArtifactBytes)} bytes encrypted (41-byte header + 16-byte tag per ${n(d.chunkSize)}-byte chunk) + ${n(d.layoutBytes.total)} bytes of layout 2 (metadata.json ${n(d.layoutBytes.metadataJson)}, entries ${n(d.layoutBytes.entries)}, index.json ${n(d.layoutBytes.index)}) = ${n(d.bytesPerOperation)} bytes`,
    `Live operations at any time: ${n(d.liveOperations)}; requests per artifact upload: ${d.uploadRequestsPerArtifact} for the object + 1 entry PUT (Class A) + 1 metadata.json HEAD or GET after the commit (Class B: an upload racing a delete then answers not_found)`,
    ...(e.input.sweepIntervalSeconds === 0
      ? []
      : [
          `Each sweep: ${d.perSweep.listPages} ListObjects page(s) for ${n(d.perSweep.objects)} objects + 1 ListMultipartUploads (Class A), ` +
            `${n(d.perSweep.operations)} metadata.json + ${n(d.liveOperations)} index.json reads (Class B; deletes are free)`,
        ]),
    "",
  );
  const render = (title: string, lines: BillLine[], total: number) => {
    const rows = [["", "usage", "free", "billable", "price", "cost"]];
    for (const l of lines) {
      rows.push([
        l.item,
        `${n(l.usage)} ${l.unit}`,
        l.free === 0 ? "-" : n(l.free),
        n(l.billable),
        l.price === 0 ? "free" : `${formatPrice(l.price)}/${l.priceUnit}`,
        formatUsd(l.cost),
      ]);
    }
    rows.push(["total", "", "", "", "", formatUsd(total)]);
    println(io, title, ...table(rows).map((r) => `  ${r}`), "");
  };
  render(`Cloudflare R2 (${e.r2.storageClass})`, e.r2.lines, e.r2.total);
  render("Amazon S3 Standard (us-east-1)", e.s3.lines, e.s3.total);
  println(
    io,
    "How this is counted:",
    ...e.notes.map((note) => `  - ${note}`),
    "",
    `Prices checked ${e.prices.checked}: ${e.prices.r2} and ${e.prices.s3}`,
  );
}
