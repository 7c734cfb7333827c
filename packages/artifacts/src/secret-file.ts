import { randomBytes } from "node:crypto";
import { closeSync, fstatSync, linkSync, openSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { ConfigError } from "./errors.js";

/**
 * Reads a secret kept in a file of its own (mode 0600), creating it with `create()` when absent.
 * The value is written to a temp file and hard-linked into place, which fails if the file
 * appeared meanwhile: a server and a CLI starting together agree on one complete value.
 * A file that group or others may read, or that another user owns, is refused.
 */
export function readOrCreateSecretFile(path: string, create: () => string): { value: string; created: boolean } {
  let created = false;
  const temp = `${path}.${randomBytes(6).toString("hex")}.tmp`;
  try {
    writeFileSync(temp, `${create()}\n`, { mode: 0o600, flag: "wx" });
    linkSync(temp, path);
    created = true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") {
      throw new ConfigError(`cannot create ${path}: ${(error as Error).message}`, { cause: error });
    }
  } finally {
    try {
      unlinkSync(temp);
    } catch {
      // never created
    }
  }
  return { value: readSecretFile(path), created };
}

/** Reads a secret file that must exist, refusing one that group or others may read or another user owns. */
export function readSecretFile(path: string): string {
  const fd = openSync(path, "r");
  try {
    const stat = fstatSync(fd);
    if ((stat.mode & 0o077) !== 0) {
      throw new ConfigError(`${path} is readable by group or others; run: chmod 600 ${path}`);
    }
    if (typeof process.getuid === "function" && stat.uid !== process.getuid()) {
      throw new ConfigError(`${path} is owned by another user`);
    }
    const value = readFileSync(fd, "utf8").trim();
    if (value === "") throw new ConfigError(`${path} is empty; delete it to generate a new one`);
    return value;
  } finally {
    closeSync(fd);
  }
}
