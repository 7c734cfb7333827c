// The configuration checks: every variable, read as the server reads them, each problem with its fix.
import { randomBytes } from "node:crypto";
import { type ArtifactsConfig, ConfigError, loadConfig } from "@personal-server/artifacts";
import type { ConfigProblem } from "@personal-server/artifacts/internal";
import { formatDuration } from "../format.js";
import type { Add } from "./check.js";

export const VARIABLE_FIX: Record<string, string> = {
  R2_ACCOUNT_ID: "copy the Account ID from the Cloudflare dashboard (right sidebar): 32 hex characters",
  R2_ACCESS_KEY_ID: "copy the Access Key ID shown when the R2 API token was created (R2 → Manage R2 API tokens), or `pulumi stack output` in infra/",
  R2_SECRET_ACCESS_KEY: "copy the Secret Access Key shown when the R2 API token was created (64 hex), or `pulumi stack output --show-secrets` in infra/",
  R2_BUCKET_NAME: "set it to the bucket's exact name (e.g. personal-server-artifacts)",
  ARTIFACTS_MASTER_KEY: "generate one with `pnpm artifacts keygen` and set ARTIFACTS_MASTER_KEYS=<kid:base64> (or `pnpm artifacts keygen --env`)",
  ARTIFACTS_MASTER_KEYS: "each entry is kid:base64 of 32 bytes, comma-separated, current key first (`pnpm artifacts keygen`)",
  ARTIFACTS_TTL: "a whole number with a unit: 7d, 36h, 90m, 3600s",
  ARTIFACTS_WRITER_TOKEN: "use at least 32 random characters: openssl rand -base64 32",
};

/**
 * Variables the storage checks can go on without when they are malformed: none of them says
 * where or what the storage is, and loadConfig has a default for each (the fallback check is
 * then not run). A problem with any other variable (R2_*, S3_*, ARTIFACTS_LOCAL_DIR, ...)
 * stops doctor before the storage checks.
 */
export const NON_STORAGE_VARIABLES = new Set([
  "ARTIFACTS_TTL",
  "ARTIFACTS_SWEEP_INTERVAL",
  "ARTIFACTS_MAX_BYTES",
  "ARTIFACTS_S3_TIMEOUT_MS",
  "ARTIFACTS_WRITER_TOKEN",
  "ARTIFACTS_AUDIENCE",
  "ARTIFACTS_CORS_ORIGINS",
  "ARTIFACTS_METRICS_TOKEN",
  "ARTIFACTS_METRICS_LISTEN",
  "ARTIFACTS_MONTHLY_BUDGET_USD",
  "ARTIFACTS_SHUTDOWN_GRACE",
  "ARTIFACTS_SERVER_URL",
  "ARTIFACTS_FALLBACK_LOCAL_DIR",
  "ARTIFACTS_NONCE_STORE",
  "ARTIFACTS_TRUSTED_PROXIES",
  "ARTIFACTS_AUTH_FAILURE_LIMIT",
  "HOST",
  "PORT",
]);
/**
 * Master key variables: malformed or missing, the storage checks still run, with a throwaway key
 * standing in (loadConfig needs one for r2/s3, and with none on local storage it would write a
 * development key file); only the master key check is skipped.
 */
export const MASTER_KEY_VARIABLES = new Set(["ARTIFACTS_MASTER_KEY", "ARTIFACTS_MASTER_KEYS"]);

/** The configuration the storage checks use, and what was wrong with it. */
export interface Loaded {
  config: ArtifactsConfig;
  /** Variables reported above, left out of the configuration the storage checks use (undefined: none). */
  skipped: Set<string> | undefined;
}

/**
 * Reports each configuration problem, then loads the configuration the storage checks can use:
 * undefined when a problem leaves nothing to check (storage variables among them).
 */
export function configurationChecks(env: Record<string, string | undefined>, add: Add): Loaded | undefined {
  let config: ArtifactsConfig;
  let skipped: Set<string> | undefined;
  try {
    config = loadConfig(env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    const problems = (error.details?.problems as ConfigProblem[] | undefined) ?? [];
    if (problems.length === 0) add({ name: "configuration", status: "fail", message: error.message, fix: error.hint });
    for (const p of problems) {
      add({
        name: p.variable,
        status: "fail",
        message: p.message,
        fix: VARIABLE_FIX[p.variable] ?? error.hint ?? "see docs/configuration.md",
      });
    }
    const variables = new Set(problems.map((p) => p.variable));
    const blocking = [...variables].filter((v) => !NON_STORAGE_VARIABLES.has(v) && !MASTER_KEY_VARIABLES.has(v));
    if (problems.length === 0 || blocking.length > 0) {
      add({ name: "storage", status: "skip", message: `not checked: ${blocking.length > 0 ? blocking.join(", ") : "the configuration"} above must be fixed first` });
      return undefined;
    }
    // Only variables the storage checks can do without: check storage without them.
    const retry: Record<string, string | undefined> = { ...env };
    for (const v of variables) if (NON_STORAGE_VARIABLES.has(v)) retry[v] = undefined;
    if ([...variables].some((v) => MASTER_KEY_VARIABLES.has(v))) {
      retry.ARTIFACTS_MASTER_KEY = undefined;
      retry.ARTIFACTS_MASTER_KEYS = `doctor-placeholder:${randomBytes(32).toString("base64")}`;
    }
    try {
      config = loadConfig(retry);
    } catch (again) {
      if (!(again instanceof ConfigError)) throw again;
      add({ name: "storage", status: "skip", message: `not checked: ${again.message}` });
      return undefined;
    }
    skipped = variables;
  }

  const s = config.storage;
  const where =
    s.kind === "local" ? `local directory ${s.dir}` : `${s.kind} bucket "${s.bucket}" at ${s.endpoint}`;
  if (skipped === undefined) {
    add({
      name: "configuration",
      status: "pass",
      message: `every variable present and well-formed: ${where}, ${config.masterKeySource.kind === "missing" ? "no master key" : `${config.masterKeys.keys.size} master key(s) (current kid "${config.masterKeys.currentKid}")`}, ARTIFACTS_TTL ${formatDuration(config.ttlSeconds)}`,
    });
  } else {
    add({
      name: "storage",
      status: "pass",
      message: `storage variables well-formed: ${where}; checking it without ${[...skipped].join(", ")} (reported above)`,
    });
  }
  return { config, skipped };
}
