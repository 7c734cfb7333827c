import { resolve } from "node:path";
import { Command } from "commander";
import {
  ConflictError,
  InvalidInputError,
  IntegrityError,
  OPERATIONS_PREFIX,
  validateOperationId,
} from "@personal-server/artifacts";
import {
  type Backend,
  PreconditionFailedError,
  artifactObjectKey,
  entriesPrefix,
  metadataKey,
  operationPrefix,
  operationReferences,
  parseMetadata,
} from "@personal-server/artifacts/internal";
import { backendFor, config, describeStorage } from "../context.js";
import { formatBytes } from "../format.js";
import { type Io, printJson, println } from "../io.js";
import { createProgress } from "../progress.js";

/** Totals of a migration run. */
export interface MigrateReport {
  from: string;
  to: string;
  dryRun: boolean;
  operations: {
    /** Operations found in the source with a readable metadata.json. */
    total: number;
    /** Metadata written to the target this run. */
    migrated: number;
    /** Already on the target with identical metadata (an earlier run). */
    alreadyThere: number;
    /** Expired: not copied (the sweep would delete them right away). */
    expired: number;
    /** An operation with the same id and different metadata exists on the target: left alone. */
    conflicts: string[];
    /** Source deleted after verification (--delete-source). */
    deletedFromSource: number;
  };
  objects: { copied: number; alreadyThere: number; bytesCopied: number };
  /** Prefixes in the source without a readable metadata.json: not migrated (nothing references them). */
  skippedWithoutMetadata: string[];
}

interface Plan {
  operationId: string;
  metadataBytes: Buffer;
  objects: { key: string; size: number }[];
  expired: boolean;
}

/** Parses `--from local[:DIR]`; DIR defaults to ARTIFACTS_LOCAL_DIR (the configured local root). */
function sourceDir(from: string, localDir: string): string {
  if (from === "local") return localDir;
  if (from.startsWith("local:") && from.length > "local:".length) return resolve(from.slice("local:".length));
  throw new InvalidInputError(`--from must be local or local:DIR, got "${from}"`);
}

/**
 * Copies operations from a local directory to the configured storage as they are: ciphertext
 * objects and metadata.json bytes, never decrypted or re-encrypted (the same master keys read
 * them). Per operation: every object first, each verified by size on the target (HEAD), then
 * metadata.json last with a create-only write, so an operation appears on the target complete
 * or not at all; until then the server reads it through ARTIFACTS_FALLBACK_LOCAL_DIR.
 * Objects already on the target with the right size, and metadata already there byte for
 * byte, are skipped: a killed run resumes where it stopped.
 */
export async function migrate(
  source: Backend,
  target: Backend,
  opts: { dryRun: boolean; deleteSource: boolean; now: Date },
  report: MigrateReport,
  progress: ReturnType<typeof createProgress>,
): Promise<void> {
  const plans: Plan[] = [];
  for await (const prefix of source.listPrefixes(OPERATIONS_PREFIX)) {
    const operationId = prefix.slice(OPERATIONS_PREFIX.length).replace(/\/$/, "");
    try {
      validateOperationId(operationId);
    } catch {
      continue; // doctor probes and strays: not operations
    }
    const got = await source.getBytes(metadataKey(operationId));
    let parsed;
    try {
      parsed = got === null ? null : parseMetadata(got.body, operationId);
    } catch (error) {
      if (!(error instanceof IntegrityError)) throw error;
      parsed = null;
    }
    if (got === null || parsed === null) {
      report.skippedWithoutMetadata.push(operationId);
      continue;
    }
    report.operations.total++;
    const { entries } = await operationReferences({ backend: source, now: opts.now }, parsed);
    const objects = entries.map((a) => ({ key: artifactObjectKey(operationId, a.path), size: a.encryptedSize }));
    // Layout 2: the entry objects too, after the artifacts they commit (index.json is a cache: readers rebuild it).
    if (parsed.version === 2) for await (const o of source.list(entriesPrefix(parsed))) objects.push({ key: o.key, size: o.size });
    plans.push({
      operationId,
      metadataBytes: got.body,
      objects,
      expired: opts.now.getTime() >= Date.parse(parsed.expiresAt),
    });
  }
  progress.setTotal(plans.reduce((n, p) => n + (p.expired ? 0 : p.objects.length + 1), 0));

  const verified: Plan[] = [];
  for (const plan of plans) {
    if (plan.expired) {
      report.operations.expired++;
      verified.push(plan); // nothing to keep: deletable from the source with --delete-source
      continue;
    }
    for (const object of plan.objects) {
      const there = await target.head(object.key);
      if (there !== null && there.size === object.size) {
        report.objects.alreadyThere++;
      } else if (!opts.dryRun) {
        await copyObject(source, target, object);
        report.objects.copied++;
        report.objects.bytesCopied += object.size;
      } else {
        report.objects.copied++;
        report.objects.bytesCopied += object.size;
      }
      progress.tick(1, object.key);
    }
    const key = metadataKey(plan.operationId);
    const existing = await target.getBytes(key);
    if (existing !== null) {
      if (existing.body.equals(plan.metadataBytes)) {
        report.operations.alreadyThere++;
        verified.push(plan);
      } else {
        // Same id, different operation (or updated since): never overwrite, the operator decides.
        report.operations.conflicts.push(plan.operationId);
      }
    } else if (!opts.dryRun) {
      try {
        await target.putConditional(key, plan.metadataBytes, { ifNoneMatch: "*" });
        report.operations.migrated++;
        verified.push(plan);
      } catch (error) {
        if (!(error instanceof PreconditionFailedError)) throw error;
        report.operations.conflicts.push(plan.operationId);
      }
    } else {
      report.operations.migrated++;
    }
    progress.tick(1, key);
  }
  progress.stop();

  if (opts.deleteSource && !opts.dryRun) {
    for (const plan of verified) {
      if (!plan.expired) await verifyOnTarget(target, plan);
      const keys: string[] = [];
      for await (const object of source.list(operationPrefix(plan.operationId))) keys.push(object.key);
      // metadata.json first: a half-deleted source operation is then an orphan, never a broken operation.
      await source.delete([metadataKey(plan.operationId)]);
      await source.delete(keys.filter((k) => k !== metadataKey(plan.operationId)));
      report.operations.deletedFromSource++;
    }
  }
}

async function copyObject(source: Backend, target: Backend, object: { key: string; size: number }): Promise<void> {
  const sourceInfo = await source.head(object.key);
  if (sourceInfo === null || sourceInfo.size !== object.size) {
    throw new IntegrityError(
      `${object.key} in the source has ${sourceInfo === null ? "no object" : `${sourceInfo.size} bytes`}, its metadata says ${object.size}: not migrating a damaged operation`,
    );
  }
  const stream = await source.getStream(object.key);
  if (stream === null) throw new IntegrityError(`${object.key} vanished from the source during the migration`);
  await target.put(object.key, stream);
  const copied = await target.head(object.key);
  if (copied === null || copied.size !== object.size) {
    throw new IntegrityError(`${object.key} on the target has ${copied?.size ?? "no"} bytes after copying, expected ${object.size}`);
  }
}

/** Before deleting a source operation: every object and metadata.json is on the target, sizes equal. */
async function verifyOnTarget(target: Backend, plan: Plan): Promise<void> {
  for (const object of plan.objects) {
    const there = await target.head(object.key);
    if (there === null || there.size !== object.size) {
      throw new IntegrityError(`not deleting ${plan.operationId} from the source: ${object.key} is missing or short on the target`);
    }
  }
  const meta = await target.getBytes(metadataKey(plan.operationId));
  if (meta === null || !meta.body.equals(plan.metadataBytes)) {
    throw new IntegrityError(`not deleting ${plan.operationId} from the source: its metadata.json on the target differs`);
  }
}

export function migrateCommand(io: Io, setExit: (code: number) => void): Command {
  return new Command("migrate")
    .description("copy operations from a local directory to the configured r2/s3 bucket, as ciphertext, resumably")
    .requiredOption("--from <source>", "local (ARTIFACTS_LOCAL_DIR) or local:DIR")
    .requiredOption("--to <target>", "current: the storage configured now (R2_* or S3_*)")
    .option("--dry-run", "count what would be copied, write nothing")
    .option("--delete-source", "after verifying every copied operation on the target, delete it from the source")
    .option("--json", "machine-readable output")
    .addHelpText(
      "after",
      "\nZero-downtime path (local -> hybrid -> R2 only; docs/operations.md#migration):\n" +
        "  1. configure R2_* (or S3_*) and set ARTIFACTS_FALLBACK_LOCAL_DIR to the old ARTIFACTS_LOCAL_DIR; restart the server\n" +
        "     (new operations go to the bucket, old ones are still read from the directory)\n" +
        "  2. pnpm artifacts migrate --from local:<old dir> --to current   (re-run it if it was interrupted)\n" +
        "  3. pnpm artifacts migrate --from local:<old dir> --to current --delete-source, unset ARTIFACTS_FALLBACK_LOCAL_DIR, restart",
    )
    .action(async (opts: { from: string; to: string; dryRun?: boolean; deleteSource?: boolean; json?: boolean }) => {
      const cfg = config(io, { create: opts.dryRun !== true });
      if (opts.to !== "current") throw new InvalidInputError(`--to must be "current" (the configured storage), got "${opts.to}"`);
      const dir = sourceDir(opts.from, cfg.localDir);
      if (cfg.storage.kind === "local" && resolve(cfg.storage.dir) === dir) {
        throw new ConflictError(`source and target are the same directory (${dir}): configure R2_* or S3_* first`);
      }
      const report: MigrateReport = {
        from: `local directory ${dir}`,
        to: describeStorage(cfg.storage),
        dryRun: opts.dryRun === true,
        operations: { total: 0, migrated: 0, alreadyThere: 0, expired: 0, conflicts: [], deletedFromSource: 0 },
        objects: { copied: 0, alreadyThere: 0, bytesCopied: 0 },
        skippedWithoutMetadata: [],
      };
      const source = await backendFor({ kind: "local", dir }, cfg);
      try {
        await source.checkBucket();
        const target = await backendFor(cfg.storage, cfg);
        try {
          const progress = createProgress(io, opts.dryRun === true ? "migrate --dry-run" : "migrate", "objects");
          await migrate(source, target, { dryRun: opts.dryRun === true, deleteSource: opts.deleteSource === true, now: new Date() }, report, progress);
        } finally {
          await target.close();
        }
      } finally {
        await source.close();
      }
      const ok = report.operations.conflicts.length === 0;
      if (opts.json === true) printJson(io, { ok, ...report });
      else {
        const o = report.operations;
        println(
          io,
          `${report.dryRun ? "Dry run: would migrate" : "Migrated"} ${report.from} -> ${report.to}`,
          `Operations: ${o.total} found, ${o.migrated} ${report.dryRun ? "to copy" : "copied"}, ${o.alreadyThere} already there, ${o.expired} expired (not copied)${o.deletedFromSource > 0 ? `, ${o.deletedFromSource} deleted from the source` : ""}`,
          `Objects: ${report.objects.copied} ${report.dryRun ? "to copy" : "copied"} (${formatBytes(report.objects.bytesCopied)}), ${report.objects.alreadyThere} already there`,
        );
        if (report.skippedWithoutMetadata.length > 0) println(io, `Skipped (no readable metadata.json): ${report.skippedWithoutMetadata.join(", ")}`);
        if (o.conflicts.length > 0)
          println(io, `Conflicts (an operation with the same id and different metadata is on the target; left alone): ${o.conflicts.join(", ")}`);
        else if (!report.dryRun && !opts.deleteSource) println(io, `Every operation is on the target. Next: re-run with --delete-source, then unset ARTIFACTS_FALLBACK_LOCAL_DIR.`);
      }
      setExit(ok ? 0 : 1);
    });
}
