// Which `.env` files fill variables the environment leaves unset (docs/configuration.md): the
// working directory's and this repository's root, found from where this code lives, never by
// walking up from the working directory (whoever can write an ancestor, /tmp say, could plant one).
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigError } from "./errors.js";

type Env = Record<string, string | undefined>;

/** Where `.env` files are looked for: the working directory, and the repository root (if any). */
export interface EnvLocations {
  cwd: string;
  root: string | undefined;
}

/**
 * The root of the repository this code runs from (`packages/artifacts/{src,dist}` three levels up,
 * when it holds `pnpm-workspace.yaml` and this package), or `undefined` when the SDK is installed
 * as a dependency elsewhere.
 */
export function repositoryRoot(): string | undefined {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
  const ours = existsSync(join(root, "pnpm-workspace.yaml")) && existsSync(join(root, "packages/artifacts/package.json"));
  return ours ? root : undefined;
}

/**
 * The variables `loadConfig()` reads: the process environment, then `.env` in the working
 * directory, then `.env` at the repository root, for variables still unset (empty = unset).
 * A `.env` owned by another user (not this one, not root), or writable by group or others, is
 * refused (`config`): anyone who can write it could set the server's variables. The CLI's `doctor` uses it to check variables one by one.
 */
export function readEnvironment(at: EnvLocations = { cwd: process.cwd(), root: repositoryRoot() }): Env {
  const files = [join(at.cwd, ".env")];
  if (at.root !== undefined && resolve(at.root) !== resolve(at.cwd)) files.push(join(at.root, ".env"));
  const merged: Env = {};
  for (const file of files.reverse()) {
    if (existsSync(file)) Object.assign(merged, parseDotEnv(readOwnFile(file)));
  }
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && value.trim() !== "") merged[key] = value;
  }
  return merged;
}

function readOwnFile(file: string): string {
  const stat = statSync(file);
  // Root's files are as safe as our own (only root can change them): a unit's root-owned .env stays readable.
  const foreign = typeof process.getuid === "function" && stat.uid !== process.getuid() && stat.uid !== 0;
  if (foreign || (stat.mode & 0o022) !== 0) {
    throw new ConfigError(
      `${file} is ${foreign ? "owned by another user" : "writable by group or others"}; not reading it: ` +
        `remove it, or make it yours and private (chmod 600 ${file})`,
      { details: { problems: [{ variable: ".env", message: `${file} is not private to this user` }] } },
    );
  }
  return readFileSync(file, "utf8");
}

/** Parses `.env` text: `KEY=value`, optional `export `, quotes, `#` comments. */
export function parseDotEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const match = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!match) continue;
    let value = match[2]!;
    const quote = value[0];
    if ((quote === '"' || quote === "'") && value.endsWith(quote) && value.length >= 2) {
      value = value.slice(1, -1);
    } else {
      value = value.replace(/\s+#.*$/, "");
    }
    out[match[1]!] = value;
  }
  return out;
}
