import { Command } from "commander";
import { createArtifactStore, type SweepOptions, type SweepResult } from "@personal-server/artifacts";
import { config, describeStorage, withBackend } from "../context.js";
import { formatBytes } from "../format.js";
import { type Io, printJson, println } from "../io.js";
import { createProgress } from "../progress.js";
import { scanOperations, sweepableOrphans } from "../scan.js";

/** What a dry run finds: exactly what the sweep would delete now (temp files aside). */
interface DryRun {
  expiredOperations: string[];
  expiredObjects: number;
  orphanObjects: number;
  bytes: number;
}

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
      const cfg = config(io, { create: opts.dryRun !== true });
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
            progress.tick(
              1,
              `would delete ${found.expiredOperations.length} expired operation(s), ${found.expiredObjects + found.orphanObjects} object(s)`,
            );
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
      // The sweep lists operations/ once and handles each operation as the listing reaches it, so
      // the total is only known at the end: a running count (every operations/<id>/ prefix, those
      // without metadata.json included) with what was deleted so far, not a bar.
      const progress = createProgress(io, "cleanup", "operations");
      let result: SweepResult;
      try {
        let reported = 0;
        const options: SweepOptions = {
          onProgress: (p) => {
            progress.tick(p.operations - reported, `deleted ${p.deletedOperations} expired operation(s), ${p.deletedObjects} object(s)`);
            reported = p.operations;
          },
        };
        result = await store.sweepExpired(options);
      } finally {
        progress.stop();
        await store.close();
      }
      const { usage: _, ...deleted } = result;
      if (opts.json === true) printJson(io, { ok: true, dryRun: false, storage, ...deleted });
      else
        println(
          io,
          `Swept ${storage}: deleted ${result.deletedOperations} expired operation(s), ${result.deletedObjects} object(s) (theirs and orphans), ${
            result.deletedTemporary === "not_supported"
              ? "incomplete uploads not swept (this storage endpoint does not implement ListMultipartUploads)"
              : `${result.deletedTemporary} temp file(s)/incomplete upload(s)`
          }.`,
        );
      setExit(0);
    });
}
