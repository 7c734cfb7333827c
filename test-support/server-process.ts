// The real server as a child process (`node apps/server/dist/main.js`, built by `pnpm test`'s build
// step), for tests outside apps/server: the CLI's doctor --server, the nginx recipe, the packed SDK.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const MAIN = resolve(import.meta.dirname, "../apps/server/dist/main.js");

export interface ServerProcess {
  /** `http://127.0.0.1:<port>` as the server printed it. */
  url: string;
  /** `http://127.0.0.1:<port>/metrics`: the metrics listener it printed (undefined with ARTIFACTS_METRICS_LISTEN=off). */
  metricsUrl: string | undefined;
  stdout(): string;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<void>;
}

/**
 * Starts the server with exactly `env` (plus PATH and HOME; PORT 0, metrics on a free loopback
 * port and no sweep unless given) in a
 * scratch working directory, so no developer `.env` is read. Resolves once it listens.
 */
export async function startServer(env: Record<string, string>): Promise<ServerProcess> {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: build first (pnpm build, or pnpm test builds it)`);
  const child = spawn(process.execPath, [MAIN], {
    cwd: mkdtempSync(join(tmpdir(), "psa-server-cwd-")),
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? tmpdir(), PORT: "0", ARTIFACTS_METRICS_LISTEN: "127.0.0.1:0", ARTIFACTS_SWEEP_INTERVAL: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  let out = "";
  let err = "";
  child.stderr.setEncoding("utf8").on("data", (d: string) => (err += d));
  const url = await new Promise<string>((resolveUrl, reject) => {
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      out += d;
      // The startup lines arrive in one write; the metrics line is the last of the ones this reads.
      const match = /artifacts server listening on (\S+)[^]*\n {2}metrics: /.exec(out);
      if (match && out.slice(match.index + match[0].length).includes("\n")) resolveUrl(match[1]!);
    });
    void exited.then(() => reject(new Error(`the server exited before listening:\n${out}\n${err}`)));
  });
  return {
    url,
    metricsUrl: /\n {2}metrics: +(http:\/\/\S+\/metrics)/.exec(out)?.[1],
    stdout: () => out,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}
