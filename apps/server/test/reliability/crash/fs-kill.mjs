// Crash point for local storage (issue 14): preloaded into a child server or CLI by the crash
// harness only (`NODE_OPTIONS=--import <this file>`), never by the product. It counts the
// process's own state-changing filesystem calls under CRASH_FS_ROOT (opens for writing, writes,
// fsyncs, closes of written files, renames, links, unlinks, mkdir/rmdir, utimes) and SIGKILLs the
// process just before (CRASH_FS_WHEN=before) or just after (=after) the CRASH_FS_KILL_AT-th one.
// The count depends on what the process does, not on how fast the machine is, so a seed names
// the same kill on a loaded box. It writes one `crash-point: ...` line to stderr (synchronously,
// a pipe) before dying, so the harness can report where the kill landed.
import { writeSync } from "node:fs";
import fsp from "node:fs/promises";
import { syncBuiltinESMExports } from "node:module";
import { resolve } from "node:path";

const root = resolve(process.env.CRASH_FS_ROOT ?? "/nonexistent");
const killAt = Number(process.env.CRASH_FS_KILL_AT ?? "0");
const when = process.env.CRASH_FS_WHEN === "after" ? "after" : "before";
const trace = process.env.CRASH_FS_TRACE === "1"; // every event on stderr, for choosing k ranges
let count = 0;
const written = new WeakSet();

const under = (path) => typeof path === "string" && (resolve(path) === root || resolve(path).startsWith(`${root}/`));
const die = (n, what) => {
  writeSync(2, `crash-point: #${n} ${when} ${what}\n`);
  process.kill(process.pid, "SIGKILL");
};

/** Wraps one call that changes state: counts it, and dies before or after the chosen one. */
async function point(what, call) {
  const n = ++count;
  if (trace) writeSync(2, `crash-event: #${n} ${what}\n`);
  const hit = killAt > 0 && n === killAt;
  if (hit && when === "before") die(n, what);
  try {
    return await call();
  } finally {
    if (hit) die(n, what); // after it, whether it succeeded or failed (EEXIST of a busy lock, ENOENT)
  }
}

for (const name of ["mkdir", "rename", "link", "unlink", "rmdir"]) {
  const original = fsp[name];
  fsp[name] = (path, ...rest) =>
    under(path) ? point(`${name} ${path.slice(root.length)}`, () => original(path, ...rest)) : original(path, ...rest);
}

const originalOpen = fsp.open;
fsp.open = async (path, flags = "r", ...rest) => {
  const writes = typeof flags === "string" && /[wax+]/.test(flags);
  if (!under(path) || !writes) return originalOpen(path, flags, ...rest);
  const handle = await point(`open ${path.slice(root.length)}`, () => originalOpen(path, flags, ...rest));
  written.add(handle);
  return handle;
};
syncBuiltinESMExports();

// FileHandle methods live on its prototype: take it from a handle, then wrap the writing ones.
const probe = await originalOpen("/dev/null", "r");
const proto = Object.getPrototypeOf(probe);
await probe.close();
for (const name of ["write", "writev", "writeFile", "sync", "utimes", "close"]) {
  const original = proto[name];
  proto[name] = function (...args) {
    return written.has(this) ? point(`filehandle.${name}`, () => original.apply(this, args)) : original.apply(this, args);
  };
}
