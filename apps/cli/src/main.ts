#!/usr/bin/env node
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Command, CommanderError } from "commander";
import { cleanupCommand } from "./commands/cleanup.js";
import { costCommand } from "./commands/cost.js";
import { doctorCommand } from "./commands/doctor.js";
import { keygenCommand } from "./commands/keygen.js";
import { migrateCommand } from "./commands/migrate.js";
import { rotateKeyCommand } from "./commands/rotate-key.js";
import { usageCommand } from "./commands/usage.js";
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, ExitError, type Io, reportError } from "./io.js";

export type { Io, OutStream } from "./io.js";

/**
 * Runs the CLI with `argv` (arguments after the program name) and returns the exit code:
 * 0 success, 1 failure (a failed check, an error from storage), 2 a wrong command line.
 * Never calls `process.exit`, so tests run it in-process with captured streams and an env object.
 */
export async function run(argv: readonly string[], io: Io): Promise<number> {
  let exitCode = EXIT_OK;
  const setExit = (code: number) => {
    exitCode = code;
  };
  const program = new Command("artifacts")
    .description("Operator CLI for personal-server artifact storage (local, s3, r2)")
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    })
    .showHelpAfterError("(run with --help for usage)")
    .helpCommand(true)
    .addHelpText("after", "\nConfiguration comes from the environment and .env, exactly as the server reads it.\nStart troubleshooting with: artifacts doctor");
  // Subcommands are built after configuring the program so they inherit exitOverride and output.
  for (const make of [doctorCommand, usageCommand, costCommand, cleanupCommand, migrateCommand, rotateKeyCommand, keygenCommand]) {
    const command = make(io, setExit);
    program.addCommand(command);
    command.exitOverride().configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    });
  }
  try {
    await program.parseAsync([...argv], { from: "user" });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end through here with exit code 0; parse errors were already printed.
      if (error.code === "commander.helpDisplayed" || error.code === "commander.version") return EXIT_OK;
      return error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    if (error instanceof ExitError) return error.exitCode;
    reportError(io, error, argv.includes("--json"));
    return EXIT_FAILURE;
  }
}

function isMain(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  // `artifacts usage | head`: a closed pipe ends the output, not the process with a stack trace.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "EPIPE") process.exit(process.exitCode ?? 0);
      throw error;
    });
  }
  const code = await run(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr });
  process.exitCode = code;
}
