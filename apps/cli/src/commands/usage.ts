import { Command } from "commander";
import { OPERATIONS_PREFIX } from "@personal-server/artifacts";
import { PRICES, storageCost } from "@personal-server/artifacts/internal";
import { config, describeStorage, withBackend } from "../context.js";
import { formatBytes, formatUsd, table } from "../format.js";
import { type Io, printJson, println } from "../io.js";
import { createProgress } from "../progress.js";
import { scanOperations, sweepableOrphans } from "../scan.js";

/** `usage --json`. `operations` and `artifacts` are counts. */
export interface UsageReport {
  storage: string;
  /** Operations with a readable metadata.json. */
  operations: number;
  /** Artifacts those operations list. */
  artifacts: number;
  /** Every stored byte under operations/ (encrypted objects and metadata). */
  storedBytes: number;
  /** Plaintext bytes of the listed artifacts. */
  plaintextBytes: number;
  expired: { operations: number; bytes: number };
  /** Objects no metadata.json references: crash leftovers; the sweep deletes them after 24 h. */
  orphans: { objects: number; bytes: number; sweepable: number; operationsWithoutMetadata: number };
  /** Operations whose metadata.json does not parse (left alone by the sweep). */
  malformed: string[];
  largest: { operationId: string; artifacts: number; storedBytes: number; expiresAt: string; expired: boolean }[];
  freeTier: { bytes: number; usedPercent: number };
  /** This month's R2 Standard storage cost if the stored bytes stayed as they are all month. */
  estimatedMonthlyStorageCost: { r2Standard: number; s3Standard: number };
}

export function usageCommand(io: Io, setExit: (code: number) => void): Command {
  return new Command("usage")
    .description("operations, artifacts, stored bytes, expired-but-not-swept, orphans, largest operations, free tier and cost")
    .option("--top <n>", "how many of the largest operations to list", "5")
    .option("--json", "machine-readable output")
    .addHelpText("after", "\nReads every object listing and metadata.json once (Class A per 1000 objects, Class B per operation).")
    .action(async (opts: { top: string; json?: boolean }) => {
      const cfg = config(io, { create: false });
      const now = new Date();
      const top = Math.max(0, Number.parseInt(opts.top, 10) || 0);
      const report: UsageReport = {
        storage: describeStorage(cfg.storage),
        operations: 0,
        artifacts: 0,
        storedBytes: 0,
        plaintextBytes: 0,
        expired: { operations: 0, bytes: 0 },
        orphans: { objects: 0, bytes: 0, sweepable: 0, operationsWithoutMetadata: 0 },
        malformed: [],
        largest: [],
        freeTier: { bytes: PRICES.r2.standard.free.storageGBMonth * PRICES.r2.bytesPerGB, usedPercent: 0 },
        estimatedMonthlyStorageCost: { r2Standard: 0, s3Standard: 0 },
      };
      const progress = createProgress(io, "usage", "operations");
      await withBackend(cfg.storage, cfg, async (backend) => {
        for await (const op of scanOperations(backend, now)) {
          report.storedBytes += op.storedBytes;
          report.orphans.objects += op.unreferenced.length;
          report.orphans.bytes += op.unreferenced.reduce((s, o) => s + o.size, 0);
          report.orphans.sweepable += sweepableOrphans(op, now).length;
          if (op.malformed !== undefined) report.malformed.push(op.operationId);
          if (op.metadata === undefined) {
            if (op.malformed === undefined) report.orphans.operationsWithoutMetadata++;
            progress.tick();
            continue;
          }
          report.operations++;
          report.artifacts += op.entries.length;
          report.plaintextBytes += op.entries.reduce((s, a) => s + a.size, 0);
          if (op.expired) {
            report.expired.operations++;
            report.expired.bytes += op.storedBytes;
          }
          report.largest.push({
            operationId: op.operationId,
            artifacts: op.entries.length,
            storedBytes: op.storedBytes,
            expiresAt: op.metadata.expiresAt,
            expired: op.expired,
          });
          report.largest.sort((a, b) => b.storedBytes - a.storedBytes || (a.operationId < b.operationId ? -1 : 1));
          report.largest.length = Math.min(report.largest.length, top);
          progress.tick();
        }
      });
      progress.stop();
      const cost = storageCost(report.storedBytes);
      report.freeTier.usedPercent = Math.round(cost.freeTierShare * 10_000) / 100;
      report.estimatedMonthlyStorageCost = { r2Standard: cost.r2Standard, s3Standard: cost.s3Standard };

      if (opts.json === true) {
        printJson(io, { ok: true, ...report });
      } else {
        println(
          io,
          `Storage: ${report.storage}`,
          `Operations: ${report.operations} (${report.expired.operations} expired, not yet swept: ${formatBytes(report.expired.bytes)})`,
          `Artifacts: ${report.artifacts} (${formatBytes(report.plaintextBytes)} plaintext)`,
          `Stored: ${formatBytes(report.storedBytes)} under ${OPERATIONS_PREFIX} (${report.storedBytes} bytes)`,
          `Orphans: ${report.orphans.objects} object(s), ${formatBytes(report.orphans.bytes)}; ${report.orphans.sweepable} older than 24 h (the next sweep deletes them); ${report.orphans.operationsWithoutMetadata} prefix(es) without metadata.json`,
        );
        if (report.malformed.length > 0) println(io, `Malformed metadata.json (left alone by the sweep): ${report.malformed.join(", ")}`);
        println(
          io,
          `Free tier: ${report.freeTier.usedPercent}% of R2's 10 GB-month`,
          `This month's storage cost if it stays this size: R2 Standard ${formatUsd(report.estimatedMonthlyStorageCost.r2Standard)}, S3 Standard ${formatUsd(report.estimatedMonthlyStorageCost.s3Standard)} (requests not included: see \`artifacts cost\`)`,
        );
        if (report.largest.length > 0) {
          println(io, "", `Largest operations:`);
          const rows = [["operation", "artifacts", "stored", "expires"]];
          for (const l of report.largest) rows.push([l.operationId, String(l.artifacts), formatBytes(l.storedBytes), `${l.expiresAt}${l.expired ? " (expired)" : ""}`]);
          println(io, ...table(rows).map((r) => `  ${r}`));
        }
      }
      setExit(0);
    });
}
