// Pure functions behind `export-env`: stack outputs -> the SDK's variables -> merged `.env` text.
import type { R2Config } from "@personal-server/artifacts";

/** The SDK variable each `artifactStore` field becomes; typed so a new R2Config field cannot be forgotten. */
export const R2_ENV: { readonly [K in keyof R2Config]-?: string } = {
  accountId: "R2_ACCOUNT_ID",
  accessKeyId: "R2_ACCESS_KEY_ID",
  secretAccessKey: "R2_SECRET_ACCESS_KEY",
  bucketName: "R2_BUCKET_NAME",
  jurisdiction: "R2_JURISDICTION",
};

/** Retention, as the SDK's duration syntax (`7d`). */
export const TTL_ENV = "ARTIFACTS_TTL";

/** The browser origins the bucket's CORS rule allows: the server allows the same ones. */
export const CORS_ENV = "ARTIFACTS_CORS_ORIGINS";

/** The only variables export-env ever writes. Master keys and everything else are never touched. */
export const MANAGED_KEYS: readonly string[] = [...Object.values(R2_ENV), TTL_ENV, CORS_ENV];

/** Ordered `[NAME, value]` pairs to write. */
export type EnvVars = readonly (readonly [string, string])[];

/** Stack outputs that cannot be turned into settings, or a merge that would be unsafe. */
export class ExportEnvError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ExportEnvError";
  }
}

const JURISDICTIONS: readonly string[] = ["default", "eu", "fedramp"] satisfies R2Config["jurisdiction"][];

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function field(store: Record<string, unknown>, key: keyof R2Config, pattern: RegExp, what: string): string {
  const value = store[key];
  if (typeof value !== "string" || !pattern.test(value)) {
    const shown = key === "secretAccessKey" ? (value === "[secret]" ? '"[secret]"' : "a value") : JSON.stringify(value);
    const hint = value === "[secret]" ? " (secrets were not shown: run pulumi stack output with --show-secrets)" : "";
    throw new ExportEnvError(`stack output artifactStore.${key} must be ${what}, got ${shown}${hint}`);
  }
  return value;
}

/**
 * Maps `pulumi stack output --json --show-secrets` to the SDK's variables: the R2_* settings
 * from `artifactStore`, `ARTIFACTS_TTL=<retentionDays>d` (below the lifecycle rule's
 * retentionDays + 1 days, as the SDK's doctor requires) and `ARTIFACTS_CORS_ORIGINS` (the origins
 * of the bucket's CORS rule, comma-separated; empty when there is none).
 */
export function envFromStackOutputs(outputs: unknown): EnvVars {
  if (!isRecord(outputs)) throw new ExportEnvError("stack outputs must be a JSON object");
  const store = outputs.artifactStore;
  if (!isRecord(store)) {
    throw new ExportEnvError("the stack has no artifactStore output: run pulumi up for this stack first");
  }
  const r2: R2Config = {
    accountId: field(store, "accountId", /^[0-9a-f]{32}$/, "32 lower-case hex characters"),
    accessKeyId: field(store, "accessKeyId", /^[A-Za-z0-9-]{1,128}$/, "a token id"),
    secretAccessKey: field(store, "secretAccessKey", /^[0-9a-f]{64}$/, "64 hex characters (SHA-256 of the token value)"),
    bucketName: field(store, "bucketName", /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/, "an R2 bucket name"),
    jurisdiction: field(store, "jurisdiction", /^/, "default, eu or fedramp") as R2Config["jurisdiction"],
  };
  if (!JURISDICTIONS.includes(r2.jurisdiction)) {
    throw new ExportEnvError(`stack output artifactStore.jurisdiction must be default, eu or fedramp, got ${JSON.stringify(r2.jurisdiction)}`);
  }
  const days = outputs.retentionDays;
  if (typeof days !== "number" || !Number.isInteger(days) || days < 1) {
    throw new ExportEnvError(`stack output retentionDays must be a positive integer, got ${JSON.stringify(days)}`);
  }
  const origins = outputs.corsOrigins;
  if (!Array.isArray(origins) || origins.some((o) => typeof o !== "string" || !/^https:\/\/[A-Za-z0-9.-]+(:\d{1,5})?$/.test(o))) {
    throw new ExportEnvError(`stack output corsOrigins must be a list of https origins (run pulumi up for this stack), got ${JSON.stringify(origins)}`);
  }
  const keys = Object.keys(R2_ENV) as (keyof R2Config)[];
  return [...keys.map((k) => [R2_ENV[k], r2[k]] as const), [TTL_ENV, `${days}d`] as const, [CORS_ENV, origins.join(",")] as const];
}

/** Result of a merge: the new text and which variables changed. */
export interface MergeResult {
  text: string;
  /** Managed variables whose existing line was rewritten (value differed). */
  updated: string[];
  /** Managed variables that were appended. */
  added: string[];
  /** Managed variables already present with the same value. */
  unchanged: string[];
}

// The same line grammar as the SDK's parseDotEnv: trimmed, optional `export `, NAME=.
const ASSIGNMENT = /^(\s*)(export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$/;
const SAFE_VALUE = /^[A-Za-z0-9._:/,-]*$/;

function unquote(raw: string): string {
  const value = raw.trim();
  const quote = value[0];
  if ((quote === '"' || quote === "'") && value.length >= 2 && value.endsWith(quote)) return value.slice(1, -1);
  return value.replace(/\s+#.*$/, "");
}

/**
 * Merges `vars` into existing `.env` text. The first line assigning a managed variable is
 * rewritten in place (keeping `export ` and indentation); later duplicates of it are dropped
 * (the SDK would otherwise let the last one win); variables not yet present are appended
 * under a comment. Every other line, comments and master keys included, is kept byte for byte.
 */
export function mergeDotenv(existing: string | undefined, vars: EnvVars, source = "pulumi stack outputs"): MergeResult {
  for (const [name, value] of vars) {
    if (!MANAGED_KEYS.includes(name)) throw new ExportEnvError(`refusing to write ${name}: export-env only writes ${MANAGED_KEYS.join(", ")}`);
    if (!SAFE_VALUE.test(value)) throw new ExportEnvError(`refusing to write ${name}: its value has characters .env would need quoting for`);
  }
  const wanted = new Map(vars);
  const text = existing ?? "";
  const eol = text.includes("\r\n") ? "\r\n" : "\n";
  const lines = text === "" ? [] : text.split("\n");
  // A trailing newline leaves one empty last element; it is restored when joining.
  const endsWithNewline = lines.length > 0 && lines[lines.length - 1] === "";
  if (endsWithNewline) lines.pop();

  const seen = new Set<string>();
  const updated: string[] = [];
  const unchanged: string[] = [];
  const out: string[] = [];
  for (const line of lines) {
    const bare = line.endsWith("\r") ? line.slice(0, -1) : line;
    const cr = line.endsWith("\r") ? "\r" : "";
    const m = ASSIGNMENT.exec(bare);
    const name = m?.[3];
    if (!m || name === undefined || !wanted.has(name)) {
      out.push(line);
      continue;
    }
    if (seen.has(name)) continue;
    seen.add(name);
    const value = wanted.get(name)!;
    if (unquote(m[4] ?? "") === value) {
      unchanged.push(name);
      out.push(line);
    } else {
      updated.push(name);
      out.push(`${m[1] ?? ""}${m[2] ?? ""}${name}=${value}${cr}`);
    }
  }

  const added = vars.map(([name]) => name).filter((name) => !seen.has(name));
  if (added.length > 0) {
    if (out.length > 0 && out[out.length - 1]!.trim() !== "") out.push("");
    out.push(`# Cloudflare R2, written by export-env from ${source}`);
    for (const name of added) out.push(`${name}=${wanted.get(name)!}`);
  }
  const body = out.map((l) => (eol === "\r\n" && !l.endsWith("\r") ? `${l}\r` : l)).join("\n");
  return { text: out.length === 0 ? "" : `${body}\n`, updated, added, unchanged };
}

/** True when the `.env` text sets a master key (the r2 storage needs one). */
export function hasMasterKey(text: string): boolean {
  return text.split(/\r?\n/).some((line) => {
    const m = ASSIGNMENT.exec(line);
    return (m?.[3] === "ARTIFACTS_MASTER_KEY" || m?.[3] === "ARTIFACTS_MASTER_KEYS") && unquote(m[4] ?? "") !== "";
  });
}
