// `pnpm --filter @personal-server/infra export-env [--stack NAME] [--dotenv PATH]`:
// reads the stack outputs with the pulumi CLI and merges the SDK's settings into .env.
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, readFileSync, realpathSync, renameSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { envFromStackOutputs, ExportEnvError, hasMasterKey, mergeDotenv, type MergeResult } from "./env";

export const USAGE = "usage: pnpm --filter @personal-server/infra export-env [--stack NAME] [--dotenv PATH]";

export const PULUMI_MISSING =
  "export-env: the pulumi CLI was not found on PATH. Install it (https://www.pulumi.com/docs/iac/download-install/): " +
  "curl -fsSL https://get.pulumi.com | sh  (or: brew install pulumi/tap/pulumi), then `pulumi login` and run export-env again.";

/** Parsed command line. */
export interface ExportEnvArgs {
  /** Stack to read; undefined means pulumi's currently selected stack. */
  stack: string | undefined;
  /** Target file; undefined means `.env` at the repository root. */
  envFile: string | undefined;
  help: boolean;
}

export function parseArgs(argv: readonly string[]): ExportEnvArgs {
  const args: ExportEnvArgs = { stack: undefined, envFile: undefined, help: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.startsWith("--") && arg.includes("=") ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)] : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined || v === "") throw new ExportEnvError(`${flag} needs a value\n${USAGE}`);
      return v;
    };
    if (flag === "--stack" || flag === "-s") args.stack = value();
    else if (flag === "--dotenv") args.envFile = value();
    else if (flag === "--help" || flag === "-h") args.help = true;
    // pnpm forwards a literal `--` when users separate script arguments with it.
    else if (flag === "--") continue;
    else throw new ExportEnvError(`unknown argument ${JSON.stringify(arg)}\n${USAGE}`);
  }
  return args;
}

/** The repository root: the nearest directory up from `start` holding pnpm-workspace.yaml (as the SDK finds it). */
export function findRepoRoot(start: string): string {
  for (let dir = path.resolve(start); ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, "pnpm-workspace.yaml"))) return dir;
    if (path.dirname(dir) === dir) throw new ExportEnvError(`no pnpm-workspace.yaml above ${start}: pass --dotenv`);
  }
}

/** Runs `pulumi stack output --json --show-secrets` in the Pulumi project directory. */
export function readStackOutputs(infraDir: string, stack: string | undefined): unknown {
  const args = ["stack", "output", "--json", "--show-secrets", ...(stack ? ["--stack", stack] : [])];
  const result = spawnSync("pulumi", args, { cwd: infraDir, encoding: "utf8", maxBuffer: 16 * 1024 * 1024 });
  if (result.error) {
    if ((result.error as NodeJS.ErrnoException).code === "ENOENT") throw new ExportEnvError(PULUMI_MISSING);
    throw new ExportEnvError(`export-env: could not run pulumi: ${result.error.message}`);
  }
  if (result.status !== 0) {
    throw new ExportEnvError(`export-env: \`pulumi ${args.join(" ")}\` failed (exit ${result.status ?? result.signal}):\n${result.stderr.trim()}`);
  }
  try {
    return JSON.parse(result.stdout) as unknown;
  } catch {
    throw new ExportEnvError("export-env: pulumi stack output did not print JSON");
  }
}

/**
 * Replaces `file` with `text`, mode 0600 (it holds a secret), atomically: a crash leaves
 * either the old file or the new one. A symlinked .env is written through to its target.
 */
export function writeEnvFile(file: string, text: string): void {
  const target = existsSync(file) ? realpathSync(file) : file;
  const tmp = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.tmp`);
  try {
    writeFileSync(tmp, text, { mode: 0o600, flag: "wx" });
    // The umask could only clear bits, but a pre-existing mode must not leak through either.
    chmodSync(tmp, 0o600);
    renameSync(tmp, target);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** What one export did. */
export interface ExportEnvResult extends MergeResult {
  envFile: string;
  /** False when the .env sets neither ARTIFACTS_MASTER_KEY nor ARTIFACTS_MASTER_KEYS. */
  masterKeyPresent: boolean;
}

/** Reads the outputs, merges and writes. `outputs` replaces the pulumi call (for callers that already have them). */
export function exportEnv(options: { infraDir: string; args: ExportEnvArgs; outputs?: unknown }): ExportEnvResult {
  const { infraDir, args } = options;
  const envFile = path.resolve(args.envFile ?? path.join(findRepoRoot(infraDir), ".env"));
  const outputs = options.outputs === undefined ? readStackOutputs(infraDir, args.stack) : options.outputs;
  const vars = envFromStackOutputs(outputs);
  const existing = existsSync(envFile) ? readFileSync(envFile, "utf8") : undefined;
  const source = args.stack ? `pulumi stack ${args.stack}` : "the selected pulumi stack";
  const merged = mergeDotenv(existing, vars, source);
  writeEnvFile(envFile, merged.text);
  return { ...merged, envFile, masterKeyPresent: hasMasterKey(merged.text) };
}

/** The CLI: prints what changed (names only, never values) and returns the exit code. */
export function main(argv: readonly string[], infraDir: string, log = console): number {
  try {
    const args = parseArgs(argv);
    if (args.help) {
      log.log(USAGE);
      return 0;
    }
    const result = exportEnv({ infraDir, args });
    const parts = [
      result.updated.length ? `updated ${result.updated.join(", ")}` : "",
      result.added.length ? `added ${result.added.join(", ")}` : "",
      result.unchanged.length ? `unchanged ${result.unchanged.join(", ")}` : "",
    ].filter(Boolean);
    log.log(`export-env: ${result.envFile} (mode 0600): ${parts.join("; ")}`);
    if (!result.masterKeyPresent) {
      log.error("export-env: no ARTIFACTS_MASTER_KEY in that file; R2 storage needs one: pnpm artifacts keygen --env");
    }
    return 0;
  } catch (err) {
    if (err instanceof ExportEnvError) {
      log.error(err.message.startsWith("export-env:") ? err.message : `export-env: ${err.message}`);
      return 1;
    }
    throw err;
  }
}
