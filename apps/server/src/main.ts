// The server on the configured storage (local disk when nothing is configured). Production runs
// `node apps/server/dist/main.js` (as PID 1 in the container); `pnpm start` builds first, then runs it.
import { tmpdir } from "node:os";
import { isAbsolute, relative, resolve } from "node:path";
import { ArtifactError, loadConfig, type ArtifactsConfig } from "@personal-server/artifacts";
import { buildServer } from "./app.js";
import { nonceJournalPath } from "./auth/nonce-cache.js";
import { shutdownOnSignals, startServer } from "./start.js";
import { resolveWriterToken } from "./writer-token.js";

function fail(error: unknown): never {
  if (error instanceof ArtifactError) {
    // A configuration error's message already lists each problem, one line each.
    console.error(`artifacts server: ${error.message}`);
    if (error.hint !== undefined) console.error(`  hint: ${error.hint}`);
  } else if ((error as NodeJS.ErrnoException).code === "EADDRINUSE") {
    console.error(`artifacts server: ${(error as Error).message}; set PORT to a free port`);
  } else {
    console.error("artifacts server: failed to start:", error);
  }
  process.exit(1);
}

function describeStorage(config: ArtifactsConfig): string {
  const s = config.storage;
  if (s.kind === "local") return `local (${s.dir})`;
  if (s.kind === "s3") return `s3 (bucket ${s.bucket} at ${s.endpoint})`;
  return `r2 (bucket ${s.bucket}, jurisdiction ${s.jurisdiction})`;
}

/** True when `dir` is the OS temp directory or inside it, where tmp cleaners delete old files. */
function underTmpdir(dir: string): boolean {
  const rel = relative(resolve(tmpdir()), resolve(dir));
  return rel === "" || (!rel.startsWith("..") && !isAbsolute(rel));
}

async function main(): Promise<void> {
  // The server is the one place (with the CLI's writing commands) that creates the local directory and keys.
  const config = loadConfig(undefined, { create: true });
  const writer = resolveWriterToken(config);
  const app = await buildServer(config, { writerToken: writer.token });
  shutdownOnSignals(app, { graceMs: config.shutdownGraceSeconds * 1000 });
  const running = await startServer(app, config);

  const keySource = config.masterKeySource;
  const lines = [
    `artifacts server listening on ${running.url}`,
    `  storage:      ${describeStorage(config)}`,
    keySource.kind === "file"
      ? `  master key:   ${keySource.path} (mode 0600${keySource.generated ? ", generated now" : ""}; whoever holds it can read every artifact)`
      : "  master key:   from ARTIFACTS_MASTER_KEY(S)",
    writer.source.kind === "file"
      ? `  writer token: ${writer.source.path} (mode 0600${writer.source.created ? ", generated now" : ""})`
      : "  writer token: from ARTIFACTS_WRITER_TOKEN",
    `  audience:     ${config.audience ?? `http://localhost:${running.port} or http://127.0.0.1:${running.port}`}`,
    `  nonce store:  ${
      config.nonceStore.kind === "redis"
        ? config.nonceStore.display
        : `memory, journaled in ${nonceJournalPath(config.localDir)} (one process: replicas need ARTIFACTS_NONCE_STORE)`
    }`,
    `  metrics:      ${running.metricsUrl === undefined ? "off (ARTIFACTS_METRICS_LISTEN=off)" : `${running.metricsUrl}/metrics (${config.metricsToken === undefined ? "no token: anyone who reaches this address" : "bearer ARTIFACTS_METRICS_TOKEN"}); never on the API port`}`,
  ];
  // One human-readable block on stdout, before any JSON log line (the log is JSON lines from here on).
  process.stdout.write(`${lines.join("\n")}\n`);
  if (config.storage.kind === "local" && underTmpdir(config.storage.dir)) {
    process.stderr.write(
      `warning: local storage ${config.storage.dir} is under the OS temp directory (${tmpdir()}): tmp cleaners may delete it, keys included; set ARTIFACTS_LOCAL_DIR to a persistent directory for anything that matters\n`,
    );
  }
}

main().catch(fail);
