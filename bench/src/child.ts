import { spawn, type ChildProcess } from "node:child_process";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

/** A child process the bench started, with the last of its output for error messages. */
export interface Child {
  process: ChildProcess;
  pid: number;
  /** The match of `ready` on its stdout. */
  ready: RegExpExecArray;
  /** Last lines of stdout + stderr. */
  output(): string;
  /** SIGTERM, then SIGKILL after 5 s; resolves once it has exited. */
  stop(): Promise<void>;
}

/** Path of a file in bench/src, for child scripts. */
export function benchScript(name: string): string {
  return fileURLToPath(new URL(`./${name}`, import.meta.url));
}

/**
 * Starts `node <args>` and resolves once a stdout line matches `ready`. Output is kept draining
 * (a child blocked on a full pipe would stall the benchmark) and the last 64 lines are kept.
 */
export function startNode(
  args: string[],
  options: { env: Record<string, string>; cwd: string; ready: RegExp; timeoutMs?: number },
): Promise<Child> {
  const child = spawn(process.execPath, args, { cwd: options.cwd, env: options.env, stdio: ["ignore", "pipe", "pipe"] });
  const lines: string[] = [];
  const keep = (chunk: string) => {
    for (const line of chunk.split("\n")) if (line !== "") lines.push(line);
    if (lines.length > 64) lines.splice(0, lines.length - 64);
  };
  child.stderr!.setEncoding("utf8").on("data", keep);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(timer);
  };
  return new Promise((resolve, reject) => {
    let buffered = "";
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`node ${args.join(" ")} did not become ready in time:\n${lines.join("\n")}`));
    }, options.timeoutMs ?? 30_000);
    const onExit = (code: number | null) => {
      clearTimeout(timer);
      reject(new Error(`node ${args.join(" ")} exited (${code}) before it was ready:\n${lines.join("\n")}`));
    };
    child.once("exit", onExit);
    child.once("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    let found = false;
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      keep(chunk);
      if (found) return;
      buffered += chunk;
      const match = options.ready.exec(buffered);
      if (match === null) return;
      found = true;
      buffered = "";
      clearTimeout(timer);
      child.off("exit", onExit);
      resolve({ process: child, pid: child.pid!, ready: match, output: () => lines.join("\n"), stop });
    });
  });
}

/**
 * A child's environment: exactly `vars`, nothing inherited, so a developer's storage settings
 * (R2_*, S3_*) can never point a benchmark at real storage.
 */
export function childEnv(vars: Record<string, string>): Record<string, string> {
  return { ...vars };
}

/** Peak resident set size (VmHWM) of a live process, in bytes, from /proc. */
export async function peakRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = /^VmHWM:\s+(\d+) kB$/m.exec(status)?.[1];
  if (kb === undefined) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Number(kb) * 1024;
}
