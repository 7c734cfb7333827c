// `pnpm artifacts doctor`: the checks in order, each module one group of them.
import type { StorageConfig } from "@personal-server/artifacts";
import { type Backend, openBackend, readEnvironment } from "@personal-server/artifacts/internal";
import { adviceFor, classify } from "../advice.js";
import type { Io } from "../io.js";
import { probeEndpoint } from "../net-probe.js";
import { type Add, type Check, messageOf } from "./check.js";
import { VARIABLE_FIX, configurationChecks } from "./configuration.js";
import { fallbackCheck } from "./fallback.js";
import { localDirectoryCheck } from "./local-directory.js";
import { serverCheck } from "./server.js";
import { storageChecks } from "./storage.js";

const PROBE_TIMEOUT_MS = 5000;

/** Options of {@link runDoctor}. */
export interface DoctorOptions {
  /** A running server to check too (`--server`; default `ARTIFACTS_SERVER_URL`). */
  server?: string;
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

/**
 * The configuration and storage checks. Returns the configured storage kind once the
 * configuration loaded (for the server check), undefined before.
 */
async function configuredChecks(env: Record<string, string | undefined>, add: Add): Promise<StorageConfig["kind"] | undefined> {
  const loaded = configurationChecks(env, add);
  if (loaded === undefined) return undefined;
  const { config, skipped } = loaded;
  const s = config.storage;
  const bad = (variable: string) => skipped?.has(variable) === true;
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
