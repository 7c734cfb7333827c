import { ArtifactError } from "@personal-server/artifacts";

/** A stream the CLI writes to: `process.stdout`/`process.stderr`, or a capture in tests. */
export interface OutStream {
  write(chunk: string): unknown;
  /** True on a terminal: progress is drawn as a bar there, as plain lines elsewhere. */
  isTTY?: boolean;
}

/** Everything `run()` touches outside itself, so tests can run the CLI in-process. */
export interface Io {
  stdout: OutStream;
  stderr: OutStream;
  /**
   * Variables handed to the SDK's `loadConfig(env)`. Undefined (the real binary): `loadConfig()`
   * reads the process environment and `.env` itself (doctor, checking them one by one, gets the
   * same variables from the SDK's `readEnvironment()`); nothing in the CLI reads either directly.
   */
  env?: Record<string, string | undefined>;
  /** Directory whose repository root `keygen --env` writes `.env` into; default `process.cwd()`. */
  cwd?: string;
}

/** A failure the command already explained; `run()` exits with `exitCode` without printing more. */
export class ExitError extends Error {
  constructor(readonly exitCode: number) {
    super(`exit ${exitCode}`);
    this.name = "ExitError";
  }
}

/** Exit codes: 0 success, 1 a check or operation failed, 2 the command line was wrong. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** Writes `value` as one JSON document (2-space indent) to stdout. */
export function printJson(io: Io, value: unknown): void {
  io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Writes lines to stdout. */
export function println(io: Io, ...lines: string[]): void {
  for (const line of lines) io.stdout.write(`${line}\n`);
}

/** JSON shape of an error: stable code, message, and the operator hint when there is one. */
export function errorJson(error: unknown): { code: string; message: string; hint?: string } {
  if (error instanceof ArtifactError) {
    return error.hint === undefined
      ? { code: error.code, message: error.message }
      : { code: error.code, message: error.message, hint: error.hint };
  }
  return { code: "internal", message: error instanceof Error ? error.message : String(error) };
}

/** Reports an error: `{"ok": false, "error": …}` on stdout with --json, else a message (and hint) on stderr. */
export function reportError(io: Io, error: unknown, json: boolean): void {
  const e = errorJson(error);
  if (json) {
    printJson(io, { ok: false, error: e });
    return;
  }
  io.stderr.write(`error (${e.code}): ${e.message}\n`);
  if (e.hint !== undefined) io.stderr.write(`hint: ${e.hint}\n`);
}
