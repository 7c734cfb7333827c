import { existsSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { type ArtifactsConfig, OPERATIONS_PREFIX } from "@personal-server/artifacts";
import { MASTER_KEY_FILE } from "@personal-server/artifacts/internal";
import { DOCTOR_PREFIX } from "../scan.js";
import type { Add } from "./check.js";

/**
 * Directories that look like the server's (they hold `.master-key` or `operations/`) beside the
 * configured one, else the default, for a mistyped ARTIFACTS_LOCAL_DIR. Reads only.
 */
function lookalikes(dir: string): string[] {
  const looksLikeStore = (c: string) => c !== resolve(dir) && (existsSync(join(c, MASTER_KEY_FILE)) || existsSync(join(c, OPERATIONS_PREFIX)));
  let siblings: string[] = [];
  try {
    const parent = dirname(resolve(dir));
    siblings = readdirSync(parent, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => join(parent, e.name));
  } catch {
    // No parent directory either.
  }
  const found = siblings.filter(looksLikeStore).sort().slice(0, 3);
  return found.length > 0 ? found : [join(tmpdir(), "artifacts")].filter(looksLikeStore);
}

/**
 * The fix for a missing or empty directory. Never "start the server": on a mistyped path that
 * creates the wrong directory with a new master key, and what was stored stays unreadable under it.
 */
function localDirFix(dir: string): string {
  const found = lookalikes(dir);
  const check = `check ARTIFACTS_LOCAL_DIR for a typo: it must name the directory that holds ${MASTER_KEY_FILE} and ${OPERATIONS_PREFIX}`;
  if (found.length > 0) {
    return `${check}; ${found.length === 1 ? "this one does" : "these do"}: ${found.map((f) => `ARTIFACTS_LOCAL_DIR=${f}`).join(", ")}`;
  }
  return `${check} (none beside ${basename(dir)} or at the default ${join(tmpdir(), "artifacts")}); only for a new setup, start the server with it: it creates the directory and a new master key there`;
}

/**
 * Local storage: the directory must exist and hold something (a mistyped ARTIFACTS_LOCAL_DIR is
 * missing or empty), and operations need the master key that wrapped them. Creates nothing.
 * False: the storage checks cannot go on.
 */
export function localDirectoryCheck(config: ArtifactsConfig, add: Add): boolean {
  const dir = config.localDir;
  if (!existsSync(dir)) {
    add({ name: "local directory", status: "fail", message: `${dir} does not exist`, fix: localDirFix(dir) });
    return false;
  }
  if (readdirSync(dir).length === 0) {
    add({ name: "local directory", status: "fail", message: `${dir} is empty: no master key, no operations`, fix: localDirFix(dir) });
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
