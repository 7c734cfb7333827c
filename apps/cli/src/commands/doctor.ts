import { randomBytes } from "node:crypto";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { Command } from "commander";
import {
  ArtifactError,
  type ArtifactsConfig,
  ConfigError,
  OPERATIONS_PREFIX,
  loadConfig,
  type StorageConfig,
} from "@personal-server/artifacts";
import {
  type Backend,
  type ConfigProblem,
  openBackend,
  readEnvironment,
  readMetadata,
  unwrapDataKey,
} from "@personal-server/artifacts/internal";
import { adviceFor, classify } from "../advice.js";
import { formatDuration } from "../format.js";
import { type Io, printJson, println } from "../io.js";
import { probeEndpoint } from "../net-probe.js";
import { DOCTOR_PREFIX } from "../scan.js";

/** One check's outcome. Only `fail` makes doctor exit non-zero. */
export interface Check {
  name: string;
  status: "pass" | "warn" | "fail" | "skip";
  message: string;
  /** What to do about it (fail and warn). */
  fix?: string;
}

/** S3 signatures are refused past 15 minutes of skew (RequestTimeTooSkewed). */
const SIGNING_SKEW_MS = 15 * 60 * 1000;
/** Grantee signatures allow 30 s of clock drift (`iat <= now + 30`, docs/http-api.md). */
const AUTH_SKEW_MS = 30 * 1000;
const PROBE_TIMEOUT_MS = 5000;

const VARIABLE_FIX: Record<string, string> = {
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
const NON_STORAGE_VARIABLES = new Set([
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
const MASTER_KEY_VARIABLES = new Set(["ARTIFACTS_MASTER_KEY", "ARTIFACTS_MASTER_KEYS"]);

/** What was wrong with the configuration when doctor went on to check storage anyway. */
interface Skipped {
  /** Variables reported above, left out of the configuration the storage checks use. */
  variables: Set<string>;
}

/**
 * Runs every check; never throws for a failed check (it becomes a `fail`). Reads the variables
 * the way the server does (`readEnvironment()`: the environment, then `.env`), or `io.env` in tests.
 */
export async function runDoctor(io: Io, options: DoctorOptions = {}): Promise<Check[]> {
  const checks: Check[] = [];
  const add = (check: Check) => checks.push(check);
  const env = io.env ?? readEnvironment();
  const kind = await configuredChecks(env, add);
  const server = options.server ?? (env.ARTIFACTS_SERVER_URL?.trim() || undefined);
  if (server !== undefined) add(await serverCheck(server, kind));
  return checks;
}

/** Options of {@link runDoctor}. */
export interface DoctorOptions {
  /** A running server to check too (`--server`; default `ARTIFACTS_SERVER_URL`). */
  server?: string;
}

/**
 * The configuration and storage checks. Returns the configured storage kind once the
 * configuration loaded (for the server check), undefined before.
 */
async function configuredChecks(env: Record<string, string | undefined>, add: (c: Check) => void): Promise<StorageConfig["kind"] | undefined> {

  let config: ArtifactsConfig;
  let skipped: Skipped | undefined;
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
    skipped = { variables };
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
      message: `storage variables well-formed: ${where}; checking it without ${[...skipped.variables].join(", ")} (reported above)`,
    });
  }
  const bad = (variable: string) => skipped?.variables.has(variable) === true;
  if (s.kind === "local" && !localDirectoryCheck(config, add)) return s.kind;
  if (config.masterKeySource.kind === "file") {
    add({
      name: "master key",
      status: "warn",
      message: `using the generated development key ${config.masterKeySource.path}`,
      fix: "fine for development; for anything that matters set ARTIFACTS_MASTER_KEYS (pnpm artifacts keygen) and keep a copy in a secret manager",
    });
  }
  if (bad("ARTIFACTS_WRITER_TOKEN")) {
    // Already reported above.
  } else if (config.writerToken !== undefined) {
    add({ name: "writer token", status: "pass", message: `ARTIFACTS_WRITER_TOKEN set (${config.writerToken.length} characters)` });
  } else if (s.kind === "local") {
    add({ name: "writer token", status: "pass", message: `unset: the server generates ${config.localDir}/.writer-token on local storage` });
  } else {
    add({
      name: "writer token",
      status: "warn",
      message: `ARTIFACTS_WRITER_TOKEN is unset: the server refuses to start with ${s.kind} storage (the CLI does not need it)`,
      fix: VARIABLE_FIX.ARTIFACTS_WRITER_TOKEN,
    });
  }

  if (s.kind !== "local") {
    const probe = await probeEndpoint(s.endpoint, Math.min(config.s3ConnectTimeoutMs, PROBE_TIMEOUT_MS));
    if (!probe.ok) {
      add({
        name: "endpoint",
        status: "fail",
        message: `${s.endpoint}: ${probe.stage === "dns" ? `cannot resolve ${probe.host}` : probe.stage === "url" ? "not a URL" : `${probe.stage.toUpperCase()} to ${probe.host}:${probe.port} failed`} (${probe.error})`,
        fix: adviceFor("connection", config),
      });
      add({ name: "bucket", status: "skip", message: "not checked: the endpoint is unreachable" });
      return s.kind;
    }
    add({
      name: "endpoint",
      status: "pass",
      message: `${probe.host} resolves to ${probe.address} and accepts ${probe.tls ? "TCP and TLS" : "TCP"} on port ${probe.port} (${probe.ms} ms)`,
    });
  }

  let backend: Backend;
  try {
    backend = await openBackend(s, { timeoutMs: config.s3TimeoutMs, connectTimeoutMs: config.s3ConnectTimeoutMs });
  } catch (error) {
    add({ name: "bucket", status: "fail", message: messageOf(error), fix: adviceFor(classify(error), config) });
    return s.kind;
  }
  try {
    await storageChecks(backend, config, add, {
      masterKeys: !bad("ARTIFACTS_MASTER_KEY") && !bad("ARTIFACTS_MASTER_KEYS") && config.masterKeySource.kind !== "missing",
      ttl: !bad("ARTIFACTS_TTL"),
    });
  } finally {
    await backend.close();
  }
  if (config.fallbackLocalDir !== undefined) await fallbackCheck(config, add);
  return s.kind;
}

/** Which configured values the checks may rely on (false: malformed, reported above, defaulted). */
interface Usable {
  masterKeys: boolean;
  ttl: boolean;
}

async function storageChecks(backend: Backend, config: ArtifactsConfig, add: (c: Check) => void, usable: Usable): Promise<void> {
  const s = config.storage;
  const before = Date.now();
  let serverDate: Date | undefined;
  try {
    serverDate = (await backend.checkBucket()).serverDate;
    const after = Date.now();
    add({
      name: "bucket",
      status: "pass",
      message: s.kind === "local" ? `${s.dir} exists and is private and writable` : `bucket "${s.bucket}" exists and answers (HeadBucket)`,
    });
    if (serverDate === undefined) {
      add({ name: "clock", status: "skip", message: s.kind === "local" ? "local storage: no remote clock" : "storage sent no Date header" });
    } else {
      // Date has 1 s resolution: compare with the middle of the round trip and allow that second.
      const local = (before + after) / 2;
      const skew = serverDate.getTime() - local;
      const abs = Math.max(0, Math.abs(skew) - 1000);
      const text = `${Math.round(Math.abs(skew) / 1000)} s ${skew >= 0 ? "behind" : "ahead of"} the storage clock`;
      if (abs > SIGNING_SKEW_MS) {
        add({ name: "clock", status: "fail", message: `this machine is ${text}: storage rejects signed requests past 15 min (RequestTimeTooSkewed)`, fix: "sync the clock with NTP (timedatectl set-ntp true)" });
      } else if (abs > AUTH_SKEW_MS) {
        add({ name: "clock", status: "warn", message: `this machine is ${text}: grantee signatures tolerate 30 s`, fix: "sync the clock with NTP (timedatectl set-ntp true)" });
      } else {
        add({ name: "clock", status: "pass", message: `within ${Math.round(Math.abs(skew) / 1000)} s of the storage clock` });
      }
    }
  } catch (error) {
    add({ name: "bucket", status: "fail", message: messageOf(error), fix: adviceFor(classify(error), config) });
    return;
  }

  await probeObject(backend, config, add);
  if (usable.masterKeys) await masterKeyCheck(backend, config, add);
  else if (config.masterKeySource.kind !== "missing") {
    add({ name: "master keys", status: "skip", message: "not checked: the master key variables above must be fixed first" });
  }
  await lifecycleCheck(backend, config, add, usable.ttl);
}

/** Writes, reads back and deletes `operations/.doctor-<random>/probe`: never a real operation's key. */
async function probeObject(backend: Backend, config: ArtifactsConfig, add: (c: Check) => void): Promise<void> {
  const key = `${DOCTOR_PREFIX}${randomBytes(8).toString("hex")}/probe`;
  const body = randomBytes(64);
  let stage = "write";
  try {
    await backend.put(key, body);
    stage = "read back";
    const got = await backend.getBytes(key);
    if (got === null || !got.body.equals(body)) throw new Error(got === null ? "the object was not found after writing it" : "the bytes read back differ from the bytes written");
    stage = "delete";
    await backend.delete([key]);
    if ((await backend.head(key)) !== null) throw new Error("the object is still there after deleting it");
    add({ name: "read/write", status: "pass", message: `wrote, read back and deleted ${key}` });
  } catch (error) {
    add({
      name: "read/write",
      status: "fail",
      message: `${stage} of ${key} failed: ${messageOf(error)}`,
      fix: adviceFor(classify(error), config),
    });
    await backend.delete([key]).catch(() => {});
  }
}

/** The newest operation (by metadata.json's last write) must unwrap with the loaded keys. */
async function masterKeyCheck(backend: Backend, config: ArtifactsConfig, add: (c: Check) => void): Promise<void> {
  try {
    let newest: { id: string; at: number } | undefined;
    for await (const object of backend.list(OPERATIONS_PREFIX)) {
      const match = /^operations\/([a-z0-9][a-z0-9_-]*)\/metadata\.json$/.exec(object.key);
      if (match && (newest === undefined || object.lastModified.getTime() > newest.at)) {
        newest = { id: match[1]!, at: object.lastModified.getTime() };
      }
    }
    if (newest === undefined) {
      add({ name: "master keys", status: "pass", message: "no operations stored yet: nothing to unwrap" });
      return;
    }
    const read = await readMetadata(backend, newest.id);
    if (read === null) {
      add({ name: "master keys", status: "pass", message: `newest operation ${newest.id} was just deleted: nothing to unwrap` });
      return;
    }
    const m = read.metadata;
    unwrapDataKey(m.wrappedKey, config.masterKeys, { operationId: m.operationId, grantee: m.grantee, expiresAt: m.expiresAt });
    if (m.wrappedKey.kid !== config.masterKeys.currentKid) {
      add({
        name: "master keys",
        status: "warn",
        message: `the newest operation ${m.operationId} unwraps, but with kid "${m.wrappedKey.kid}", not the current "${config.masterKeys.currentKid}"`,
        fix: "restart every server with the new ARTIFACTS_MASTER_KEYS, then run `pnpm artifacts rotate-key`",
      });
      return;
    }
    add({ name: "master keys", status: "pass", message: `unwrap the newest operation's data key (${m.operationId}, kid "${m.wrappedKey.kid}")` });
  } catch (error) {
    const missing = error instanceof ConfigError;
    add({
      name: "master keys",
      status: "fail",
      message: messageOf(error),
      fix: missing
        ? "add the master key with that kid to ARTIFACTS_MASTER_KEYS (after the current one); without it those artifacts cannot be read"
        : error instanceof ArtifactError && error.code === "integrity"
          ? "the key loaded under that kid is not the one that wrapped this operation (or metadata.json was edited): restore the original key value for that kid"
          : adviceFor(classify(error), config),
    });
  }
}

const NO_LIFECYCLE_API = "this storage endpoint does not implement lifecycle configuration (HTTP 501)";

/**
 * The bucket's lifecycle rule is the backstop: it must expire operations/ later than ARTIFACTS_TTL.
 * With a malformed ARTIFACTS_TTL (`ttlUsable` false) the rule is only described, not compared.
 */
async function lifecycleCheck(backend: Backend, config: ArtifactsConfig, add: (c: Check) => void, ttlUsable: boolean): Promise<void> {
  const ttl = formatDuration(config.ttlSeconds);
  const wantDays = Math.ceil(config.ttlSeconds / 86_400) + 1;
  try {
    if (!ttlUsable) {
      const rules = await backend.getLifecycleRules();
      const found =
        rules === null
          ? "local storage has no lifecycle rule"
          : rules === "not_visible"
            ? "lifecycle rules are not visible to this token"
            : rules === "not_supported"
              ? NO_LIFECYCLE_API
              : rules
                .filter((r) => r.expirationDays !== undefined && (OPERATIONS_PREFIX.startsWith(r.prefix) || r.prefix.startsWith(OPERATIONS_PREFIX)))
                .map((r) => `${r.id === "" ? "a rule" : `rule "${r.id}"`} expires "${r.prefix}" after ${r.expirationDays} day(s)`)
                .join("; ") || `no lifecycle rule expires ${OPERATIONS_PREFIX}`;
      add({ name: "lifecycle", status: "skip", message: `not compared with ARTIFACTS_TTL (malformed above): ${found}` });
      return;
    }
    const rules = await backend.getLifecycleRules();
    if (rules === null) {
      add({ name: "lifecycle", status: "skip", message: "local storage: the sweep is the only cleanup" });
      return;
    }
    if (rules === "not_supported") {
      add({
        name: "lifecycle",
        status: "skip",
        message: `${NO_LIFECYCLE_API} (not a failure); expired artifacts are deleted by the sweep alone unless the store expires ${OPERATIONS_PREFIX} some other way`,
      });
      return;
    }
    if (rules === "not_visible") {
      add({
        name: "lifecycle",
        status: "skip",
        message: `lifecycle rules are not visible to this token (not a failure); make sure the bucket expires ${OPERATIONS_PREFIX} after ${wantDays} days or more (infra sets it)`,
      });
      return;
    }
    const applicable = rules.filter(
      (r) => r.expirationDays !== undefined && (OPERATIONS_PREFIX.startsWith(r.prefix) || r.prefix.startsWith(OPERATIONS_PREFIX)),
    );
    if (applicable.length === 0) {
      add({
        name: "lifecycle",
        status: "warn",
        message: `no lifecycle rule expires ${OPERATIONS_PREFIX}: expired artifacts are deleted by the sweep alone`,
        fix: `add a rule expiring ${OPERATIONS_PREFIX} after ${wantDays} days (ARTIFACTS_TTL + 1 day; \`pulumi up\` in infra/ does)`,
      });
      return;
    }
    const shortest = applicable.reduce((a, b) => (b.expirationDays! < a.expirationDays! ? b : a));
    const days = shortest.expirationDays!;
    const name = shortest.id === "" ? "a lifecycle rule" : `lifecycle rule "${shortest.id}"`;
    if (days * 86_400 <= config.ttlSeconds) {
      add({
        name: "lifecycle",
        status: "fail",
        message: `${name} expires "${shortest.prefix}" after ${days} day(s), not longer than ARTIFACTS_TTL (${ttl}): storage would delete live artifacts`,
        fix: `lengthen the rule to ${wantDays} days or more, or set ARTIFACTS_TTL below ${days}d`,
      });
      return;
    }
    add({ name: "lifecycle", status: "pass", message: `${name} expires "${shortest.prefix}" after ${days} days, longer than ARTIFACTS_TTL (${ttl})` });
  } catch (error) {
    add({ name: "lifecycle", status: "fail", message: messageOf(error), fix: adviceFor(classify(error), config) });
  }
}

async function fallbackCheck(config: ArtifactsConfig, add: (c: Check) => void): Promise<void> {
  const dir = config.fallbackLocalDir!;
  try {
    const fallback = await openBackend({ kind: "local", dir }, { timeoutMs: config.s3TimeoutMs, connectTimeoutMs: config.s3ConnectTimeoutMs });
    try {
      await fallback.checkBucket();
      let operations = 0;
      for await (const prefix of fallback.listPrefixes(OPERATIONS_PREFIX)) if (!prefix.startsWith(DOCTOR_PREFIX)) operations++;
      add({
        name: "fallback",
        status: operations > 0 ? "warn" : "pass",
        message: `ARTIFACTS_FALLBACK_LOCAL_DIR ${dir} is readable; ${operations} operation(s) there are served read-only`,
        ...(operations > 0 ? { fix: `finish the migration: pnpm artifacts migrate --from local:${dir} --to current` } : {}),
      });
    } finally {
      await fallback.close();
    }
  } catch (error) {
    add({ name: "fallback", status: "fail", message: messageOf(error), fix: "point ARTIFACTS_FALLBACK_LOCAL_DIR at the old ARTIFACTS_LOCAL_DIR, or unset it" });
  }
}

const LOCAL_DIR_FIX = "run the server once, or set ARTIFACTS_LOCAL_DIR to the directory it uses";

/**
 * Local storage: the directory must exist and hold something (a mistyped ARTIFACTS_LOCAL_DIR is
 * missing or empty), and operations need the master key that wrapped them. Creates nothing.
 * False: the storage checks cannot go on.
 */
function localDirectoryCheck(config: ArtifactsConfig, add: (c: Check) => void): boolean {
  const dir = config.localDir;
  if (!existsSync(dir)) {
    add({ name: "local directory", status: "fail", message: `${dir} does not exist`, fix: LOCAL_DIR_FIX });
    return false;
  }
  if (readdirSync(dir).length === 0) {
    add({ name: "local directory", status: "fail", message: `${dir} is empty: no master key, no operations`, fix: LOCAL_DIR_FIX });
    return false;
  }
  if (config.masterKeySource.kind !== "missing") return true;
  const operationsDir = join(dir, OPERATIONS_PREFIX);
  const operations = existsSync(operationsDir)
    ? readdirSync(operationsDir).filter((name) => !`${OPERATIONS_PREFIX}${name}`.startsWith(DOCTOR_PREFIX)).length
    : 0;
  const path = config.masterKeySource.path;
  if (operations > 0) {
    add({
      name: "master keys",
      status: "fail",
      message: `${operations} operation(s) in ${dir} but no master key: ${path} is missing and ARTIFACTS_MASTER_KEY(S) is unset`,
      fix: `restore ${path} from a backup, or set ARTIFACTS_MASTER_KEYS to the key(s) that wrote them; without it they cannot be read`,
    });
  } else {
    add({
      name: "master keys",
      status: "warn",
      message: `no master key yet: ${path} is missing and ARTIFACTS_MASTER_KEY(S) is unset`,
      fix: "the server generates it at its first start; for anything that matters set ARTIFACTS_MASTER_KEYS (pnpm artifacts keygen)",
    });
  }
  return true;
}

const HEALTH_TIMEOUT_MS = 5000;

/** GET <url>/health answers 200 ok and reports the storage kind this configuration selects. */
async function serverCheck(url: string, kind: StorageConfig["kind"] | undefined): Promise<Check> {
  let health: URL;
  try {
    health = new URL(`${url.replace(/\/+$/, "")}/health`);
    if (health.protocol !== "http:" && health.protocol !== "https:") throw new Error("not http(s)");
  } catch {
    return { name: "server", status: "fail", message: `"${url}" is not an http(s) URL`, fix: "pass --server http://host:port (or set ARTIFACTS_SERVER_URL)" };
  }
  let status: number;
  let body: { status?: unknown; storage?: unknown } | undefined;
  try {
    const answer = await fetch(health, { signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS) });
    status = answer.status;
    body = (await answer.json().catch(() => undefined)) as typeof body;
  } catch (error) {
    return {
      name: "server",
      status: "fail",
      message: `GET ${health.href} failed: ${messageOf(error)}${(error as Error).cause ? ` (${messageOf((error as Error).cause)})` : ""}`,
      fix: "start the server (make up, or node apps/server/dist/main.js), or check the URL and port",
    };
  }
  if (status !== 200 || body?.status !== "ok") {
    return { name: "server", status: "fail", message: `GET ${health.href} answered ${status} ${JSON.stringify(body ?? null)}`, fix: "read the server's log (make logs)" };
  }
  if (kind !== undefined && body.storage !== kind) {
    return {
      name: "server",
      status: "fail",
      message: `${health.origin} serves ${String(body.storage)} storage, but this configuration selects ${kind}`,
      fix: "give the CLI the server's own configuration (the same .env or environment)",
    };
  }
  return {
    name: "server",
    status: "pass",
    message: `${health.href} answers ok with ${String(body.storage)} storage${kind === undefined ? "" : ", as configured"}`,
  };
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export function doctorCommand(io: Io, setExit: (code: number) => void): Command {
  return new Command("doctor")
    .description("check configuration, connectivity, bucket, read/write, clock, master keys and lifecycle, each with its fix")
    .option("--server <url>", "also check a running server's /health and storage (default ARTIFACTS_SERVER_URL)")
    .option("--json", "machine-readable output")
    .addHelpText(
      "after",
      "\nExit code 0 when nothing failed (warnings allowed), 1 otherwise. Writes and deletes one probe object under operations/.doctor-<random>/;\ncreates no key, token or directory.",
    )
    .action(async (opts: { json?: boolean; server?: string }) => {
      const checks = await runDoctor(io, { server: opts.server });
      const ok = checks.every((c) => c.status !== "fail");
      if (opts.json === true) {
        printJson(io, { ok, checks });
      } else {
        const width = Math.max(...checks.map((c) => c.name.length));
        for (const c of checks) {
          println(io, `${c.status.padEnd(4)}  ${c.name.padEnd(width)}  ${c.message}`);
          if (c.fix !== undefined && (c.status === "fail" || c.status === "warn")) println(io, `${" ".repeat(width + 8)}fix: ${c.fix}`);
        }
        const failed = checks.filter((c) => c.status === "fail").length;
        const warned = checks.filter((c) => c.status === "warn").length;
        println(io, "", ok ? `doctor: all checks passed${warned > 0 ? ` (${warned} warning(s))` : ""}` : `doctor: ${failed} check(s) failed`);
      }
      setExit(ok ? 0 : 1);
    });
}
