import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { Command } from "commander";
import { ConflictError, InvalidInputError } from "@personal-server/artifacts";
import { repositoryRoot } from "@personal-server/artifacts/internal";
import { type Io, printJson, println } from "../io.js";

/** The same kid syntax `loadConfig` accepts in `ARTIFACTS_MASTER_KEYS`. */
const KID = /^[A-Za-z0-9_-]{1,64}$/;
const KEY_VARIABLES = ["ARTIFACTS_MASTER_KEY", "ARTIFACTS_MASTER_KEYS"];

/** A new master key as `ARTIFACTS_MASTER_KEYS` takes it: `kid:base64` of 32 random bytes. */
export function generateMasterKey(kid: string): string {
  if (!KID.test(kid)) throw new InvalidInputError(`--kid must match ${KID.source}, got "${kid}"`);
  return `${kid}:${randomBytes(32).toString("base64")}`;
}

/** Default kid: the date plus 4 random hex digits, so two rotations on one day still differ. */
export function defaultKid(now = new Date()): string {
  return `key-${now.toISOString().slice(0, 10).replaceAll("-", "")}-${randomBytes(2).toString("hex")}`;
}

/**
 * Where `keygen --env` writes: `cwd` when it is a repository root (holds pnpm-workspace.yaml), else
 * the root of the repository this CLI runs from, else `cwd`. Each is a `.env` the loader reads; no
 * ancestor of `cwd` is ever chosen (docs/configuration.md).
 */
export function dotEnvDir(cwd: string): string {
  return existsSync(join(cwd, "pnpm-workspace.yaml")) ? resolve(cwd) : (repositoryRoot() ?? resolve(cwd));
}

/** `KEY=value` assignments with a non-empty value, as the SDK's `.env` reader sees them. */
function assignedVariables(text: string): Set<string> {
  const names = new Set<string>();
  for (const raw of text.split(/\r?\n/)) {
    const match = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(raw);
    if (!match) continue;
    const value = match[2]!.replace(/^(["'])(.*)\1$/, "$2").replace(/\s+#.*$/, "").trim();
    if (value !== "") names.add(match[1]!);
  }
  return names;
}

/**
 * Writes `ARTIFACTS_MASTER_KEYS=<key>` into `<repo root>/.env` (mode 0600). Refuses (conflict) if a
 * master key is already configured there or in the given environment: replacing a key would make
 * every stored artifact unreadable. An existing empty `ARTIFACTS_MASTER_KEYS=` line is filled in.
 */
export function writeKeyToDotEnv(envFile: string, key: string, env: Record<string, string | undefined> | undefined): void {
  const exists = existsSync(envFile);
  const text = exists ? readFileSync(envFile, "utf8") : "";
  const present = [...assignedVariables(text)].filter((name) => KEY_VARIABLES.includes(name));
  const inEnv = KEY_VARIABLES.filter((name) => (env?.[name] ?? "").trim() !== "");
  if (present.length > 0 || inEnv.length > 0) {
    const where = present.length > 0 ? `${envFile} already sets ${present.join(", ")}` : `the environment already sets ${inEnv.join(", ")}`;
    throw new ConflictError(`${where}; keygen --env never replaces a master key`, {
      hint: "to rotate, run `pnpm artifacts keygen` and put the new kid:key FIRST in ARTIFACTS_MASTER_KEYS, the old one after it (docs/operations.md#key-rotation)",
    });
  }
  const line = `ARTIFACTS_MASTER_KEYS=${key}`;
  let next: string;
  if (/^\s*(?:export\s+)?ARTIFACTS_MASTER_KEYS\s*=.*$/m.test(text)) {
    next = text.replace(/^\s*(?:export\s+)?ARTIFACTS_MASTER_KEYS\s*=.*$/m, line);
  } else {
    const sep = text === "" || text.endsWith("\n") ? "" : "\n";
    next = `${text}${sep}# Master keys (kid:base64, first = current); whoever holds them can read every artifact.\n${line}\n`;
  }
  if (!exists) {
    // wx: fail rather than overwrite a .env that appeared meanwhile.
    writeFileSync(envFile, next, { mode: 0o600, flag: "wx" });
    return;
  }
  // Temp file + rename: a crash leaves the old .env or the new one, never half of one.
  const temp = `${envFile}.${randomBytes(4).toString("hex")}.tmp`;
  writeFileSync(temp, next, { mode: 0o600, flag: "wx" });
  renameSync(temp, envFile);
}

export function keygenCommand(io: Io, setExit: (code: number) => void): Command {
  return new Command("keygen")
    .description("print a new master key as kid:base64 (32 random bytes), or write it into .env with --env")
    .option("--kid <name>", "key id, [A-Za-z0-9_-]{1,64} (default: key-<yyyymmdd>-<4 hex>)")
    .option("--env", "write ARTIFACTS_MASTER_KEYS into the repository root's .env (mode 0600) if no master key is there yet")
    .option("--json", "machine-readable output")
    .addHelpText(
      "after",
      "\nThe key is printed once and stored nowhere else: keep it in a secret manager.\n" +
        "Rotation: see `artifacts rotate-key --help`.",
    )
    .action((opts: { kid?: string; env?: boolean; json?: boolean }) => {
      const kid = opts.kid ?? defaultKid();
      const key = generateMasterKey(kid);
      if (opts.env === true) {
        const envFile = join(dotEnvDir(io.cwd ?? process.cwd()), ".env");
        writeKeyToDotEnv(envFile, key, io.env);
        // The key itself is not echoed: it now lives in .env only.
        if (opts.json === true) printJson(io, { ok: true, kid, envFile, variable: "ARTIFACTS_MASTER_KEYS" });
        else println(io, `wrote ARTIFACTS_MASTER_KEYS (kid ${kid}) to ${envFile} (mode 0600)`);
      } else if (opts.json === true) {
        printJson(io, { ok: true, kid, key });
      } else {
        println(io, key);
      }
      setExit(0);
    });
}
