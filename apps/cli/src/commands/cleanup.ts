import { Command } from "commander";
import { createArtifactStore, OPERATIONS_PREFIX, type SweepResult } from "@personal-server/artifacts";
import { config, describeStorage, withBackend } from "../context.js";
import { formatBytes } from "../format.js";
import { type Io, printJson, println } from "../io.js";
import { createProgress } from "../progress.js";
import { DOCTOR_PREFIX, scanOperations, sweepableOrphans } from "../scan.js";

/** What a dry run finds: exactly what the sweep would delete now (temp files aside). */
interface DryRun {
  expiredOperations: string[];
  expiredObjects: number;
  orphanObjects: number;
  bytes: number;
}

/** sweepExpired's options, with the progress callback the CLI passes when the SDK offers one. */
type SweepOptions = { now?: Date; onProgress?: (done: number, total: number) => void };

export function cleanupCommand(io: Io, setExit: (code: number) => void): Command {
  return new Command("cleanup")
    .description("delete expired operations, orphaned objects (older than 24 h) and stale temp files: the server's sweep, on demand")
    .option("--dry-run", "list what would be deleted, delete nothing")
    .option("--json", "machine-readable output")
    .addHelpText(
      "after",
      "\nIdempotent and safe beside a running server: metadata.json goes first (the commit point),\n" +
        "updates are conditional, and objects younger than 24 h without metadata (uploads in flight) are kept.",
    )
    .action(async (opts: { dryRun?: boolean; json?: boolean }) => {
      const cfg = config(io);
      const storage = describeStorage(cfg.storage);
      const now = new Date();
      if (opts.dryRun === true) {
        const found: DryRun = { expiredOperations: [], expiredObjects: 0, orphanObjects: 0, bytes: 0 };
        const progress = createProgress(io, "cleanup --dry-run", "operations");
        await withBackend(cfg.storage, cfg, async (backend) => {
          for await (const op of scanOperations(backend, now)) {
            if (op.expired) {
              found.expiredOperations.push(op.operationId);
              // Counted like the sweep's deletedObjects: every object, metadata.json included.
              found.expiredObjects += op.objects.length;
              found.bytes += op.storedBytes;
            } else {
              const orphans = sweepableOrphans(op, now);
              found.orphanObjects += orphans.length;
              found.bytes += orphans.reduce((s, o) => s + o.size, 0);
            }
            progress.tick(1, op.operationId);
          }
        });
        progress.stop();
        if (opts.json === true) printJson(io, { ok: true, dryRun: true, storage, ...found });
        else {
          println(
            io,
            `Dry run on ${storage}: nothing deleted.`,
            `Would delete ${found.expiredOperations.length} expired operation(s) (${found.expiredObjects} objects) and ${found.orphanObjects} orphaned object(s): ${formatBytes(found.bytes)}.`,
          );
          if (found.expiredOperations.length > 0) println(io, `Expired: ${found.expiredOperations.join(", ")}`);
          println(io, "Stale temp files and incomplete multipart uploads are counted only by a real run.");
        }
        setExit(0);
        return;
      }

      const store = createArtifactStore(cfg);
      const progress = createProgress(io, "cleanup", "operations");
      let result: SweepResult;
      try {
        // The total first, so the bar has a size; `.doctor-` probes are not operations.
        let total = 0;
        await withBackend(cfg.storage, cfg, async (backend) => {
          for await (const prefix of backend.listPrefixes(OPERATIONS_PREFIX)) if (!prefix.startsWith(DOCTOR_PREFIX)) total++;
        });
        progress.setTotal(total);
        let reported = 0;
        const options: SweepOptions = {
          onProgress: (done) => {
            progress.tick(done - reported);
            reported = done;
          },
        };
        result = await store.sweepExpired(options);
        if (reported < total) progress.tick(total - reported);
      } finally {
        progress.stop();
        await store.close();
      }
      if (opts.json === true) printJson(io, { ok: true, dryRun: false, storage, ...result });
      else
        println(
          io,
          `Swept ${storage}: deleted ${result.deletedOperations} expired operation(s), ${result.deletedObjects} object(s) (theirs and orphans), ${result.deletedTemporary} temp file(s)/incomplete upload(s).`,
        );
      setExit(0);
    });
}
