import { Command } from "commander";
import { ArtifactError, createArtifactStore, isOperationId, NotFoundError, OPERATIONS_PREFIX } from "@personal-server/artifacts";
import { readMetadata } from "@personal-server/artifacts/internal";
import { config, describeStorage, withBackend } from "../context.js";
import { type Io, printJson, println } from "../io.js";
import { createProgress } from "../progress.js";

/** `rotate-key --json`. */
export interface RotateReport {
  storage: string;
  currentKid: string;
  operations: number;
  /** Re-wrapped under the current key this run. */
  rewrapped: number;
  /** Already wrapped under the current key (an earlier, interrupted run; or new operations). */
  alreadyCurrent: number;
  /** Deleted or swept while the run went on. */
  vanished: number;
  /** Operations still in the migration fallback (read-only): migrate them first. */
  inFallback: string[];
  failed: { operationId: string; code: string; message: string }[];
  /** Kids still found in metadata after the run, by count: empty means the old keys can go. */
  remainingOtherKids: Record<string, number>;
}

export function rotateKeyCommand(io: Io, setExit: (code: number) => void): Command {
  return new Command("rotate-key")
    .description("re-wrap every operation's data key under the current master key (the first of ARTIFACTS_MASTER_KEYS)")
    .option("--json", "machine-readable output")
    .addHelpText(
      "after",
      "\nNo key is taken on the command line: the keys come from ARTIFACTS_MASTER_KEYS, like the server's.\n" +
        "Procedure:\n" +
        "  1. pnpm artifacts keygen                      -> new kid:key\n" +
        "  2. ARTIFACTS_MASTER_KEYS=<new kid:key>,<old kid:key>   (new first), on every server; restart them\n" +
        "  3. pnpm artifacts rotate-key                   (resumable: re-run until it reports nothing left)\n" +
        "  4. remove the old key from ARTIFACTS_MASTER_KEYS; restart\n" +
        "Only metadata.json is rewritten (conditional writes); artifact bytes are never touched.",
    )
    .action(async (opts: { json?: boolean }) => {
      const cfg = config(io, { create: true });
      const report: RotateReport = {
        storage: describeStorage(cfg.storage),
        currentKid: cfg.masterKeys.currentKid,
        operations: 0,
        rewrapped: 0,
        alreadyCurrent: 0,
        vanished: 0,
        inFallback: [],
        failed: [],
        remainingOtherKids: {},
      };
      const store = createArtifactStore(cfg);
      try {
        // Primary storage only (listOperations also yields the read-only fallback's).
        const ids: string[] = [];
        await withBackend(cfg.storage, cfg, async (backend) => {
          for await (const prefix of backend.listPrefixes(OPERATIONS_PREFIX)) {
            const id = prefix.slice(OPERATIONS_PREFIX.length).replace(/\/$/, "");
            if (isOperationId(id)) ids.push(id);
          }
        });
        const progress = createProgress(io, "rotate-key", "operations");
        progress.setTotal(ids.length);
        for (const id of ids) {
          try {
            if (await store.rewrapOperation(id)) report.rewrapped++;
            else report.alreadyCurrent++;
            report.operations++;
          } catch (error) {
            if (error instanceof NotFoundError) report.vanished++;
            else if (error instanceof ArtifactError && error.code === "conflict") report.inFallback.push(id);
            else {
              report.operations++;
              report.failed.push({
                operationId: id,
                code: error instanceof ArtifactError ? error.code : "internal",
                message: error instanceof Error ? error.message : String(error),
              });
            }
          }
          progress.tick(1, id);
        }
        progress.stop();
        // Verify: what still needs an old key (operations created meanwhile by a server with the old config).
        await withBackend(cfg.storage, cfg, async (backend) => {
          for await (const prefix of backend.listPrefixes(OPERATIONS_PREFIX)) {
            const id = prefix.slice(OPERATIONS_PREFIX.length).replace(/\/$/, "");
            if (!isOperationId(id)) continue;
            const read = await readMetadata(backend, id).catch(() => null);
            const kid = read?.metadata.wrappedKey.kid;
            if (kid !== undefined && kid !== cfg.masterKeys.currentKid) report.remainingOtherKids[kid] = (report.remainingOtherKids[kid] ?? 0) + 1;
          }
        });
      } finally {
        await store.close();
      }
      const ok = report.failed.length === 0 && Object.keys(report.remainingOtherKids).length === 0;
      if (opts.json === true) printJson(io, { ok, ...report });
      else {
        println(
          io,
          `Storage: ${report.storage}; current kid "${report.currentKid}"`,
          `Operations: ${report.operations}: ${report.rewrapped} re-wrapped, ${report.alreadyCurrent} already current${report.vanished > 0 ? `, ${report.vanished} deleted meanwhile` : ""}`,
        );
        for (const f of report.failed) println(io, `  failed ${f.operationId}: ${f.code}: ${f.message}`);
        if (report.inFallback.length > 0) println(io, `In the migration fallback (migrate first, then re-run): ${report.inFallback.join(", ")}`);
        const others = Object.entries(report.remainingOtherKids);
        if (others.length > 0) println(io, `Still wrapped with other keys: ${others.map(([k, n]) => `${k} (${n})`).join(", ")}: restart servers with the new key first, then re-run`);
        else if (report.failed.length === 0)
          println(io, `Every operation uses kid "${report.currentKid}": the other keys can be removed from ARTIFACTS_MASTER_KEYS${report.inFallback.length > 0 ? " once the fallback is migrated and rotated" : ""}.`);
      }
      setExit(ok ? 0 : 1);
    });
}
