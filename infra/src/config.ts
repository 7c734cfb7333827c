import { isIP } from "node:net";
import * as pulumi from "@pulumi/pulumi";
import type { R2Config } from "@personal-server/artifacts";
import { DEFAULT_RETENTION_DAYS } from "@personal-server/artifacts/constants";

/** The Pulumi project name: the namespace of every key below (`personal-server-artifacts:<key>`). */
export const PROJECT = "personal-server-artifacts";

/** R2 location hints, lower case as the provider takes them. */
export const LOCATIONS = ["apac", "eeur", "enam", "weur", "wnam", "oc"] as const;
export type R2Location = (typeof LOCATIONS)[number];

/** Jurisdictions, the same union the SDK's `R2Config` uses, so both sides agree. */
export type R2Jurisdiction = R2Config["jurisdiction"];
export const JURISDICTIONS: readonly R2Jurisdiction[] = ["default", "eu", "fedramp"];

export const STORAGE_CLASSES = ["Standard", "InfrequentAccess"] as const;
export type R2StorageClass = (typeof STORAGE_CLASSES)[number];

/** Every key the program reads; `Pulumi.yaml` documents the same set. */
export const CONFIG_KEYS = [
  "accountId",
  "bucketName",
  "location",
  "jurisdiction",
  "storageClass",
  "retentionDays",
  "corsOrigins",
  "tokenGenerations",
  "tokenTtlDays",
  "tokenAllowedIps",
  "notifications",
] as const;
export type ConfigKey = (typeof CONFIG_KEYS)[number];

/** Raw stack config as Pulumi hands it over: strings (lists arrive as JSON text). Empty means unset. */
export type RawConfig = Partial<Record<ConfigKey, string | undefined>>;

/** Validated stack configuration. */
export interface InfraConfig {
  /** Cloudflare account id, 32 lower-case hex characters. */
  accountId: string;
  /** R2 bucket name (default `personal-server-artifacts-<stack>`). */
  bucketName: string;
  /** Location hint for the bucket; undefined lets Cloudflare choose ("Automatic"). */
  location: R2Location | undefined;
  /** Jurisdiction: selects where data lives and the S3 endpoint host. */
  jurisdiction: R2Jurisdiction;
  /** Default storage class of new objects. */
  storageClass: R2StorageClass;
  /** Retention of operations in days; the lifecycle rule deletes after `retentionDays + 1`. */
  retentionDays: number;
  /** https origins allowed to GET/HEAD objects from browsers; empty means no CORS rule. */
  corsOrigins: string[];
  /** Token generations (`YYYY-MM-DD`), sorted oldest first, no duplicates; the last is the newest. */
  tokenGenerations: string[];
  /** Days from a generation's date until its token expires; 0 means never. */
  tokenTtlDays: number;
  /** CIDRs the token may be used from; empty means anywhere. */
  tokenAllowedIps: string[];
  /** Create a queue and send object create/delete events under the operations prefix to it. */
  notifications: boolean;
}

/**
 * A configuration value the program refuses. `key` is the full config key, so the
 * message tells the operator exactly what to `pulumi config set`.
 * It is a RunError: Pulumi prints the message without a stack trace.
 */
export class InfraConfigError extends pulumi.RunError {
  /** Full config key, e.g. `personal-server-artifacts:accountId`. */
  readonly key: string;

  constructor(key: ConfigKey, problem: string) {
    super(`Invalid configuration ${PROJECT}:${key}: ${problem}`);
    this.name = "InfraConfigError";
    this.key = `${PROJECT}:${key}`;
  }
}

const BUCKET_NAME = /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const MAX_RETENTION_DAYS = 3650;
const MAX_TOKEN_TTL_DAYS = 3650;

function present(value: string | undefined): value is string {
  return value !== undefined && value !== "";
}

function parseInteger(key: ConfigKey, value: string, min: number, max: number): number {
  if (!/^-?\d+$/.test(value.trim())) throw new InfraConfigError(key, `must be an integer, got ${JSON.stringify(value)}`);
  const n = Number(value.trim());
  if (n < min || n > max) throw new InfraConfigError(key, `must be between ${min} and ${max}, got ${n}`);
  return n;
}

function parseList(key: ConfigKey, value: string | undefined): string[] {
  if (!present(value)) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    parsed = undefined;
  }
  if (!Array.isArray(parsed) || !parsed.every((item) => typeof item === "string")) {
    throw new InfraConfigError(
      key,
      `must be a list of strings (set items with: pulumi config set --path '${key}[0]' <value>), got ${JSON.stringify(value)}`,
    );
  }
  return parsed;
}

/** `YYYY-MM-DD` that names a real calendar day, as UTC midnight in ms. */
export function parseGenerationDate(value: string): number | undefined {
  const m = DATE.exec(value);
  if (!m) return undefined;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const ms = Date.UTC(year, month - 1, day);
  const d = new Date(ms);
  if (d.getUTCFullYear() !== year || d.getUTCMonth() !== month - 1 || d.getUTCDate() !== day) return undefined;
  return ms;
}

function isCidr(value: string): boolean {
  const slash = value.indexOf("/");
  const address = slash === -1 ? value : value.slice(0, slash);
  const family = isIP(address);
  if (family === 0) return false;
  if (slash === -1) return true;
  const prefix = value.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefix)) return false;
  return Number(prefix) <= (family === 4 ? 32 : 128);
}

/** The bucket name used when `bucketName` is unset: `personal-server-artifacts-<stack>`, made bucket-safe. */
export function defaultBucketName(stack: string): string {
  const safe = stack
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/^-+|-+$/g, "");
  return `${PROJECT}-${safe}`;
}

/**
 * Validates raw stack config. Pure: the same input always gives the same result, and
 * nothing here reads the clock (token expiry follows from the generation dates alone).
 */
export function parseInfraConfig(raw: RawConfig, stack: string): InfraConfig {
  const accountIdRaw = raw.accountId;
  if (!present(accountIdRaw)) {
    throw new InfraConfigError("accountId", "is required: pulumi config set accountId <32-hex Cloudflare account id>");
  }
  if (!/^[0-9a-fA-F]{32}$/.test(accountIdRaw)) {
    throw new InfraConfigError("accountId", `must be 32 hex characters (the Cloudflare account id), got ${JSON.stringify(accountIdRaw)}`);
  }
  const accountId = accountIdRaw.toLowerCase();

  const bucketName = present(raw.bucketName) ? raw.bucketName : defaultBucketName(stack);
  if (!BUCKET_NAME.test(bucketName)) {
    throw new InfraConfigError(
      "bucketName",
      `must be 3-63 characters of lower-case letters, digits and hyphens, starting and ending with a letter or digit, got ${JSON.stringify(bucketName)}`,
    );
  }

  let location: R2Location | undefined;
  if (present(raw.location)) {
    const found = LOCATIONS.find((l) => l === raw.location);
    if (!found) throw new InfraConfigError("location", `must be one of ${LOCATIONS.join(", ")} (lower case), got ${JSON.stringify(raw.location)}`);
    location = found;
  }

  let jurisdiction: R2Jurisdiction = "default";
  if (present(raw.jurisdiction)) {
    const found = JURISDICTIONS.find((j) => j === raw.jurisdiction);
    if (!found) throw new InfraConfigError("jurisdiction", `must be one of ${JURISDICTIONS.join(", ")}, got ${JSON.stringify(raw.jurisdiction)}`);
    jurisdiction = found;
  }

  let storageClass: R2StorageClass = "Standard";
  if (present(raw.storageClass)) {
    const found = STORAGE_CLASSES.find((s) => s === raw.storageClass);
    if (!found) throw new InfraConfigError("storageClass", `must be one of ${STORAGE_CLASSES.join(", ")}, got ${JSON.stringify(raw.storageClass)}`);
    storageClass = found;
  }

  const retentionDays = present(raw.retentionDays)
    ? parseInteger("retentionDays", raw.retentionDays, 1, MAX_RETENTION_DAYS)
    : DEFAULT_RETENTION_DAYS;

  const corsOrigins = parseList("corsOrigins", raw.corsOrigins);
  for (const origin of corsOrigins) {
    let url: URL | undefined;
    try {
      url = new URL(origin);
    } catch {
      url = undefined;
    }
    // An origin is scheme://host[:port] and nothing else; browsers compare it byte for byte.
    if (!url || url.protocol !== "https:" || url.origin !== origin) {
      throw new InfraConfigError("corsOrigins", `each entry must be an https origin like https://app.example.com (no path, no trailing slash), got ${JSON.stringify(origin)}`);
    }
  }
  if (new Set(corsOrigins).size !== corsOrigins.length) throw new InfraConfigError("corsOrigins", "has duplicate entries");

  const generationsRaw = raw.tokenGenerations;
  if (!present(generationsRaw)) {
    throw new InfraConfigError("tokenGenerations", "is required: pulumi config set --path 'tokenGenerations[0]' YYYY-MM-DD (today's date)");
  }
  const generations = parseList("tokenGenerations", generationsRaw);
  if (generations.length === 0) throw new InfraConfigError("tokenGenerations", "must list at least one date (YYYY-MM-DD)");
  for (const g of generations) {
    if (parseGenerationDate(g) === undefined) {
      throw new InfraConfigError("tokenGenerations", `each entry must be a calendar date YYYY-MM-DD, got ${JSON.stringify(g)}`);
    }
  }
  if (new Set(generations).size !== generations.length) throw new InfraConfigError("tokenGenerations", "has duplicate dates");
  // ISO dates sort lexically in time order.
  const tokenGenerations = [...generations].sort();

  const tokenTtlDays = present(raw.tokenTtlDays) ? parseInteger("tokenTtlDays", raw.tokenTtlDays, 0, MAX_TOKEN_TTL_DAYS) : 90;

  const tokenAllowedIps = parseList("tokenAllowedIps", raw.tokenAllowedIps);
  for (const cidr of tokenAllowedIps) {
    if (!isCidr(cidr)) throw new InfraConfigError("tokenAllowedIps", `each entry must be an IPv4 or IPv6 address or CIDR, got ${JSON.stringify(cidr)}`);
  }

  let notifications = false;
  if (present(raw.notifications)) {
    if (raw.notifications !== "true" && raw.notifications !== "false") {
      throw new InfraConfigError("notifications", `must be true or false, got ${JSON.stringify(raw.notifications)}`);
    }
    notifications = raw.notifications === "true";
  }
  if (notifications && queueName(bucketName).length > 63) {
    throw new InfraConfigError("bucketName", `is too long for notifications: the queue "${queueName(bucketName)}" would exceed 63 characters`);
  }

  return {
    accountId,
    bucketName,
    location,
    jurisdiction,
    storageClass,
    retentionDays,
    corsOrigins,
    tokenGenerations,
    tokenTtlDays,
    tokenAllowedIps,
    notifications,
  };
}

/** Name of the notification queue for a bucket. */
export function queueName(bucketName: string): string {
  return `${bucketName}-events`;
}

/** Reads this project's keys from the stack (`new pulumi.Config()`), then validates them. */
export function readInfraConfig(config: pulumi.Config = new pulumi.Config(), stack: string = pulumi.getStack()): InfraConfig {
  const raw: RawConfig = {};
  for (const key of CONFIG_KEYS) raw[key] = config.get(key);
  return parseInfraConfig(raw, stack);
}
