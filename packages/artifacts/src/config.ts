import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, statSync } from "node:fs";
import { isIP } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { readMonitoring } from "./config-monitoring.js";
import { readNonceStore } from "./config-nonce-store.js";
import type { ArtifactsConfig, MasterKeys, R2Jurisdiction, StorageConfig } from "./config-types.js";
import { DEFAULT_RETENTION_DAYS } from "./constants.js";
import { readEnvironment } from "./env-file.js";
import { ConfigError } from "./errors.js";
import { readOrCreateSecretFile, readSecretFile } from "./secret-file.js";
import { parseDuration } from "./validate.js";

export type { ArtifactsConfig, MasterKeys, MetricsListen, NonceStoreConfig, R2Config, R2Jurisdiction, StorageConfig } from "./config-types.js";

/** One variable that is missing or malformed. `ConfigError.details.problems` lists them all. */
export interface ConfigProblem {
  variable: string;
  message: string;
}

type Env = Record<string, string | undefined>;


const R2_VARS = ["R2_ACCOUNT_ID", "R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY", "R2_BUCKET_NAME"] as const;
const S3_VARS = ["S3_ENDPOINT", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "S3_BUCKET"] as const;
const JURISDICTIONS: readonly R2Jurisdiction[] = ["default", "eu", "fedramp"];
const KID = /^[A-Za-z0-9_-]{1,64}$/;
const GIB = 1024 ** 3;

/** Name of the generated dev master key file inside the local directory. */
export const MASTER_KEY_FILE = ".master-key";
/** Name of the generated dev writer token file inside the local directory (the server creates it). */
export const WRITER_TOKEN_FILE = ".writer-token";

/** Options of {@link loadConfig}. */
export interface LoadConfigOptions {
  /**
   * Create what local storage needs: the `ARTIFACTS_LOCAL_DIR` directory (0700) and, without master
   * key variables, the development key `<ARTIFACTS_LOCAL_DIR>/.master-key` (0600). Default `false`:
   * nothing is written, a missing key file gives `masterKeySource: { kind: "missing" }` and no keys,
   * and a store refuses such a configuration. Servers and writing commands turn it on; diagnostics
   * (`doctor`, `usage`, `cost`, `cleanup --dry-run`, `smoke`) leave it off.
   */
  create?: boolean;
}

/**
 * Reads and validates the configuration. With no `env`: the process environment, then `.env`
 * in the working directory, then `.env` at the repository root, for variables still unset
 * (`readEnvironment`).
 * Empty values count as unset. Throws one `ConfigError` naming every missing or malformed variable.
 *
 * With `{ create: true }` and local storage without master keys, generates
 * `<ARTIFACTS_LOCAL_DIR>/.master-key` (0600) once; without it, only reads what exists.
 */
export function loadConfig(env?: Env, options: LoadConfigOptions = {}): ArtifactsConfig {
  const create = options.create === true;
  const source = env ?? readEnvironment();
  const get = (name: string): string | undefined => {
    const value = source[name]?.trim();
    return value === undefined || value === "" ? undefined : value;
  };
  const problems: ConfigProblem[] = [];
  const problem = (variable: string, message: string) => problems.push({ variable, message });

  const localDir = resolve(get("ARTIFACTS_LOCAL_DIR") ?? join(tmpdir(), "artifacts"));
  const storage = readStorage(get, problem, localDir);
  const ttlSeconds = readDuration(get, problem, "ARTIFACTS_TTL", DEFAULT_RETENTION_DAYS * 86_400);
  const sweepIntervalSeconds =
    get("ARTIFACTS_SWEEP_INTERVAL") === "0" ? 0 : readDuration(get, problem, "ARTIFACTS_SWEEP_INTERVAL", 3600);
  const maxBytes = readInteger(get, problem, "ARTIFACTS_MAX_BYTES", 5 * GIB, 1);
  const s3TimeoutMs = readInteger(get, problem, "ARTIFACTS_S3_TIMEOUT_MS", 30_000, 100);
  const port = readInteger(get, problem, "PORT", 8080, 0, 65_535);
  const shutdownGraceSeconds = readDuration(get, problem, "ARTIFACTS_SHUTDOWN_GRACE", 25);

  const writerToken = get("ARTIFACTS_WRITER_TOKEN");
  if (writerToken !== undefined && writerToken.length < 32) {
    problem("ARTIFACTS_WRITER_TOKEN", "must be at least 32 characters (e.g. `openssl rand -base64 32`)");
  }
  const audience = readAudience(get, problem);
  const serverUrl = get("ARTIFACTS_SERVER_URL");
  if (serverUrl !== undefined && !isHttpUrl(serverUrl)) {
    problem("ARTIFACTS_SERVER_URL", "must be the server's http(s) URL, e.g. http://127.0.0.1:8080");
  }
  const corsOrigins = readOrigins(get, problem);
  const nonceStore = readNonceStore(get, problem);
  const monitoring = readMonitoring(get, problem);
  const trustedProxies = readTrustedProxies(get, problem);
  const authFailureLimit = readInteger(get, problem, "ARTIFACTS_AUTH_FAILURE_LIMIT", 60, 1);
  const webUi = get("ARTIFACTS_WEB_UI");
  if (webUi !== undefined && webUi !== "0" && webUi !== "1") problem("ARTIFACTS_WEB_UI", `must be 0 or 1, got "${webUi}"`);

  const envKeys = readMasterKeys(get, problem);
  const fallback = get("ARTIFACTS_FALLBACK_LOCAL_DIR");
  if (fallback !== undefined && storage?.kind === "local") {
    problem("ARTIFACTS_FALLBACK_LOCAL_DIR", "is a read fallback for r2/s3 storage during migration; storage is local");
  }

  const remote = R2_VARS.some((name) => get(name) !== undefined) ? "r2" : S3_VARS.some((name) => get(name) !== undefined) ? "s3" : null;
  if (remote !== null && envKeys === null) {
    problem(
      "ARTIFACTS_MASTER_KEY",
      `${remote} storage needs ARTIFACTS_MASTER_KEY or ARTIFACTS_MASTER_KEYS (generate one: pnpm artifacts keygen)`,
    );
  }
  if (problems.length > 0 || storage === undefined || envKeys === undefined) {
    throw configError(problems);
  }

  let masterKeys: MasterKeys;
  let masterKeySource: ArtifactsConfig["masterKeySource"];
  if (envKeys !== null) {
    masterKeys = envKeys;
    masterKeySource = { kind: "env" };
  } else {
    // Local storage only (checked above): a dev key next to the data, generated once.
    const path = join(localDir, MASTER_KEY_FILE);
    if (create) ensurePrivateDir(localDir);
    else checkPrivateDir(localDir);
    if (!create && !existsSync(path)) {
      masterKeys = { currentKid: "default", keys: new Map() };
      masterKeySource = { kind: "missing", path };
    } else {
      const { value, created } = create
        ? readOrCreateSecretFile(path, () => randomBytes(32).toString("base64"))
        : { value: readSecretFile(path), created: false };
      const key = decodeKey(value);
      if (key === undefined) throw new ConfigError(`${path} does not hold a base64 32-byte key`);
      masterKeys = { currentKid: "default", keys: new Map([["default", key]]) };
      masterKeySource = { kind: "file", path, generated: created };
      if (created) {
        process.emitWarning(
          `generated a development master key at ${path}; set ARTIFACTS_MASTER_KEY(S) for anything that matters`,
          { code: "ARTIFACTS_DEV_MASTER_KEY" },
        );
      }
    }
  }
  if (storage.kind === "local") {
    if (create) ensurePrivateDir(localDir);
    else checkPrivateDir(localDir);
  }

  return {
    storage,
    masterKeys,
    masterKeySource,
    ttlSeconds,
    maxBytes,
    localDir,
    fallbackLocalDir: fallback === undefined ? undefined : resolve(fallback),
    s3TimeoutMs,
    s3ConnectTimeoutMs: Math.min(5000, s3TimeoutMs),
    writerToken,
    audience,
    sweepIntervalSeconds,
    shutdownGraceSeconds,
    serverUrl,
    ...monitoring,
    corsOrigins,
    nonceStore,
    trustedProxies,
    authFailureLimit,
    webUi: webUi === "1",
    host: get("HOST") ?? "127.0.0.1",
    port,
  };
}

function configError(problems: ConfigProblem[]): ConfigError {
  const lines = problems.map((p) => `  ${p.variable}: ${p.message}`).join("\n");
  return new ConfigError(`invalid configuration:\n${lines}`, {
    details: { problems },
    hint: "every variable is described in docs/configuration.md (and listed in .env.example)",
  });
}

function readStorage(
  get: (name: string) => string | undefined,
  problem: (variable: string, message: string) => void,
  localDir: string,
): StorageConfig | undefined {
  const r2 = R2_VARS.some((name) => get(name) !== undefined);
  const s3 = S3_VARS.some((name) => get(name) !== undefined);
  if (r2 && s3) {
    problem("R2_*/S3_*", "both R2_* and S3_* variables are set; configure one storage");
    return undefined;
  }
  if (!r2 && !s3) return { kind: "local", dir: localDir };
  const vars = r2 ? R2_VARS : S3_VARS;
  let complete = true;
  for (const name of vars) {
    if (get(name) === undefined) {
      problem(name, `required when any ${r2 ? "R2_*" : "S3_*"} variable is set`);
      complete = false;
    }
  }
  if (r2) {
    const accountId = get("R2_ACCOUNT_ID")?.toLowerCase();
    if (accountId !== undefined && !/^[0-9a-f]{32}$/.test(accountId)) {
      problem("R2_ACCOUNT_ID", "must be 32 hex characters (Cloudflare dashboard, right sidebar: Account ID)");
      complete = false;
    }
    const accessKeyId = get("R2_ACCESS_KEY_ID");
    if (accessKeyId !== undefined && !/^[0-9a-fA-F]{32}$/.test(accessKeyId)) {
      problem("R2_ACCESS_KEY_ID", "must be 32 hex characters (the R2 token's Access Key ID)");
      complete = false;
    }
    const secret = get("R2_SECRET_ACCESS_KEY");
    if (secret !== undefined && !/^[0-9a-fA-F]{64}$/.test(secret)) {
      problem("R2_SECRET_ACCESS_KEY", "must be 64 hex characters (the R2 token's Secret Access Key)");
      complete = false;
    }
    const bucket = get("R2_BUCKET_NAME");
    if (bucket !== undefined && !/^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/.test(bucket)) {
      problem("R2_BUCKET_NAME", "must be 3-63 lower-case letters, digits or '-', starting and ending with a letter or digit");
      complete = false;
    }
    const jurisdiction = (get("R2_JURISDICTION") ?? "default") as R2Jurisdiction;
    if (!JURISDICTIONS.includes(jurisdiction)) {
      problem("R2_JURISDICTION", `must be one of ${JURISDICTIONS.join(", ")}`);
      complete = false;
    }
    if (!complete) return undefined;
    return {
      kind: "r2",
      endpoint: r2Endpoint(accountId!, jurisdiction),
      region: "auto",
      bucket: bucket!,
      accessKeyId: accessKeyId!,
      secretAccessKey: secret!,
      accountId: accountId!,
      jurisdiction,
    };
  }
  const endpoint = get("S3_ENDPOINT");
  if (endpoint !== undefined && !isHttpUrl(endpoint)) {
    problem("S3_ENDPOINT", "must be an http(s) URL, e.g. http://127.0.0.1:9000");
    complete = false;
  }
  const bucket = get("S3_BUCKET");
  if (bucket !== undefined && !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    problem("S3_BUCKET", "must be 3-63 lower-case letters, digits, '.' or '-'");
    complete = false;
  }
  if (!complete) return undefined;
  return {
    kind: "s3",
    endpoint: endpoint!.replace(/\/+$/, ""),
    region: get("S3_REGION") ?? "us-east-1",
    bucket: bucket!,
    accessKeyId: get("S3_ACCESS_KEY_ID")!,
    secretAccessKey: get("S3_SECRET_ACCESS_KEY")!,
  };
}

/** The R2 S3 endpoint for an account and jurisdiction. */
export function r2Endpoint(accountId: string, jurisdiction: R2Jurisdiction): string {
  const infix = jurisdiction === "default" ? "" : `.${jurisdiction}`;
  return `https://${accountId}${infix}.r2.cloudflarestorage.com`;
}

/**
 * `undefined`: malformed (a problem was recorded); `null`: none configured.
 */
function readMasterKeys(
  get: (name: string) => string | undefined,
  problem: (variable: string, message: string) => void,
): MasterKeys | null | undefined {
  const single = get("ARTIFACTS_MASTER_KEY");
  const list = get("ARTIFACTS_MASTER_KEYS");
  if (single !== undefined && list !== undefined) {
    problem("ARTIFACTS_MASTER_KEY", "set ARTIFACTS_MASTER_KEY or ARTIFACTS_MASTER_KEYS, not both");
    return undefined;
  }
  if (single !== undefined) {
    const key = decodeKey(single);
    if (key === undefined) {
      problem("ARTIFACTS_MASTER_KEY", "must be the base64 encoding of exactly 32 bytes (pnpm artifacts keygen)");
      return undefined;
    }
    return { currentKid: "default", keys: new Map([["default", key]]) };
  }
  if (list === undefined) return null;
  const keys = new Map<string, Buffer>();
  let currentKid: string | undefined;
  for (const [index, entry] of list.split(",").entries()) {
    const colon = entry.indexOf(":");
    const kid = entry.slice(0, colon).trim();
    const key = colon > 0 ? decodeKey(entry.slice(colon + 1).trim()) : undefined;
    // Never echo the entry: it is key material.
    if (!KID.test(kid) || key === undefined) {
      problem("ARTIFACTS_MASTER_KEYS", `entry ${index + 1} must be kid:base64 (kid [A-Za-z0-9_-]{1,64}, 32-byte key)`);
      return undefined;
    }
    if (keys.has(kid)) {
      problem("ARTIFACTS_MASTER_KEYS", `kid "${kid}" appears twice`);
      return undefined;
    }
    keys.set(kid, key);
    currentKid ??= kid;
  }
  return { currentKid: currentKid!, keys };
}

/** Decodes a base64 32-byte key; undefined unless it is exactly that. */
export function decodeKey(text: string): Buffer | undefined {
  if (!/^[A-Za-z0-9+/]{43}=$/.test(text)) return undefined;
  const key = Buffer.from(text, "base64");
  return key.length === 32 ? key : undefined;
}

function readDuration(
  get: (name: string) => string | undefined,
  problem: (variable: string, message: string) => void,
  name: string,
  fallback: number,
): number {
  const value = get(name);
  if (value === undefined) return fallback;
  try {
    return parseDuration(value);
  } catch (error) {
    problem(name, (error as Error).message);
    return fallback;
  }
}

function readInteger(
  get: (name: string) => string | undefined,
  problem: (variable: string, message: string) => void,
  name: string,
  fallback: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const value = get(name);
  if (value === undefined) return fallback;
  const parsed = /^[0-9]+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
    problem(name, `must be a whole number from ${min} to ${max}`);
    return fallback;
  }
  return parsed;
}

function readAudience(
  get: (name: string) => string | undefined,
  problem: (variable: string, message: string) => void,
): string | undefined {
  const value = get("ARTIFACTS_AUDIENCE");
  if (value === undefined) return undefined;
  if (!isHttpUrl(value)) {
    problem("ARTIFACTS_AUDIENCE", "must be the server's public http(s) origin, optionally with a path prefix");
    return undefined;
  }
  const url = new URL(value);
  if (url.search !== "" || url.hash !== "" || url.username !== "" || url.password !== "") {
    problem("ARTIFACTS_AUDIENCE", "must have no query, fragment or credentials");
    return undefined;
  }
  // Clients sign `aud` as origin + path without a trailing slash.
  return `${url.origin}${url.pathname.replace(/\/+$/, "")}`;
}

function readOrigins(
  get: (name: string) => string | undefined,
  problem: (variable: string, message: string) => void,
): string[] {
  const value = get("ARTIFACTS_CORS_ORIGINS");
  if (value === undefined) return [];
  const origins = value.split(",").map((o) => o.trim()).filter((o) => o !== "");
  for (const origin of origins) {
    if (!isHttpUrl(origin) || new URL(origin).origin !== origin) {
      problem("ARTIFACTS_CORS_ORIGINS", `"${origin}" is not an origin like https://app.example.com (no path, no trailing slash)`);
    }
  }
  return origins;
}

function readTrustedProxies(
  get: (name: string) => string | undefined,
  problem: (variable: string, message: string) => void,
): string[] {
  const value = get("ARTIFACTS_TRUSTED_PROXIES");
  if (value === undefined) return [];
  const entries = value.split(",").map((e) => e.trim()).filter((e) => e !== "");
  for (const entry of entries) {
    const [address, bits, extra] = entry.split("/");
    const family = isIP(address ?? "");
    const maxBits = family === 6 ? 128 : 32;
    // A prefix of 1 to 32 (IPv4) or 128 (IPv6) bits: what the server's proxy matching takes.
    const bitsOk = bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) >= 1 && Number(bits) <= maxBits);
    if (bits !== undefined && /^0+$/.test(bits) && family !== 0 && extra === undefined) {
      problem(
        "ARTIFACTS_TRUSTED_PROXIES",
        `"${entry}" would trust every address, so any client could choose its own with X-Forwarded-For; list the proxy's address (e.g. 127.0.0.1)`,
      );
    } else if (family === 0 || !bitsOk || extra !== undefined) {
      problem("ARTIFACTS_TRUSTED_PROXIES", `"${entry}" is not an IP address or CIDR range like 10.0.0.0/8 or ::1`);
    }
  }
  return entries;
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === "http:" || url.protocol === "https:";
  } catch {
    return false;
  }
}

/** Creates the local root with mode 0700, or refuses one that others own or may write. */
function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  checkPrivateDir(dir);
}

/** Refuses a local root that others own or may write; a missing one is left for the caller to report. */
function checkPrivateDir(dir: string): void {
  if (!existsSync(dir)) return;
  const stat = statSync(dir);
  if (!stat.isDirectory()) throw new ConfigError(`ARTIFACTS_LOCAL_DIR ${dir} is not a directory`);
  if (typeof process.getuid === "function" && stat.uid !== process.getuid()) {
    throw new ConfigError(`ARTIFACTS_LOCAL_DIR ${dir} is owned by another user; choose a directory of your own`, {
      details: { problems: [{ variable: "ARTIFACTS_LOCAL_DIR", message: "owned by another user" }] },
    });
  }
  if ((stat.mode & 0o022) !== 0) {
    throw new ConfigError(`ARTIFACTS_LOCAL_DIR ${dir} is writable by group or others; run: chmod 700 ${dir}`, {
      details: { problems: [{ variable: "ARTIFACTS_LOCAL_DIR", message: "writable by group or others" }] },
    });
  }
}
