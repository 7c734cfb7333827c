import { Command } from "commander";
import { readEnvironment } from "@personal-server/artifacts/internal";
import type { Check } from "../doctor/check.js";
import { configurationChecks } from "../doctor/configuration.js";
import { runDeep } from "../doctor/deep/run.js";
import { runDoctor } from "../doctor/run.js";
import { type Io, printJson, println } from "../io.js";

export type { Check } from "../doctor/check.js";
import type { DeepResult } from "../doctor/deep/context.js";
export type { DeepResult };
export { runDoctor, type DoctorOptions } from "../doctor/run.js";

function printChecks(io: Io, checks: Check[]): void {
  const width = Math.max(...checks.map((c) => c.name.length));
  for (const c of checks) {
    println(io, `${c.status.padEnd(4)}  ${c.name.padEnd(width)}  ${c.message}`);
    if (c.fix !== undefined && (c.status === "fail" || c.status === "warn")) println(io, `${" ".repeat(width + 8)}fix: ${c.fix}`);
  }
}

async function doctor(io: Io, opts: { json?: boolean; server?: string }): Promise<boolean> {
  const checks = await runDoctor(io, { server: opts.server });
  const ok = checks.every((c) => c.status !== "fail");
  if (opts.json === true) {
    printJson(io, { ok, checks });
  } else {
    printChecks(io, checks);
    const failed = checks.filter((c) => c.status === "fail").length;
    const warned = checks.filter((c) => c.status === "warn").length;
    println(io, "", ok ? `doctor: all checks passed${warned > 0 ? ` (${warned} warning(s))` : ""}` : `doctor: ${failed} check(s) failed`);
  }
  return ok;
}

/** `--deep`: the configuration first (every problem, as doctor reports it), then the acceptance table. */
async function deep(io: Io, opts: { json?: boolean }): Promise<boolean> {
  const configuration: Check[] = [];
  const loaded = configurationChecks(io.env ?? readEnvironment(), (c) => configuration.push(c));
  if (loaded === undefined || configuration.some((c) => c.status === "fail")) {
    if (opts.json === true) printJson(io, { ok: false, checks: configuration });
    else println(io, "doctor --deep: fix the configuration first:", ...configuration.filter((c) => c.status === "fail").map((c) => `  ${c.name}: ${c.message}${c.fix === undefined ? "" : ` (fix: ${c.fix})`}`));
    return false;
  }
  const s = loaded.config.storage;
  const { prefix, results } = await runDeep(loaded.config);
  const ok = results.every((r) => r.status !== "fail");
  if (opts.json === true) {
    printJson(io, { ok, prefix, results });
    return ok;
  }
  println(io, `doctor --deep: ${s.kind === "local" ? `local directory ${s.dir}` : `${s.kind} bucket "${s.bucket}" at ${s.endpoint}`}, keys under ${prefix}`, "");
  const width = Math.max(...results.map((r) => r.name.length));
  println(io, `${"check".padEnd(width)}  ${"result".padEnd(13)}  detail`);
  for (const r of results) println(io, `${r.name.padEnd(width)}  ${r.status.padEnd(13)}  ${r.detail}`);
  const count = (status: DeepResult["status"]) => results.filter((r) => r.status === status).length;
  println(io, "", `doctor --deep: ${count("pass")} passed, ${count("fail")} failed, ${count("not supported")} not supported, ${count("skip")} skipped`);
  return ok;
}

export function doctorCommand(io: Io, setExit: (code: number) => void): Command {
  return new Command("doctor")
    .description("check configuration, connectivity, bucket, read/write, clock, master keys, layouts and lifecycle, each with its fix")
    .option("--server <url>", "also check a running server's /health and storage (default ARTIFACTS_SERVER_URL)")
    .option("--deep", "the acceptance check for a bucket: conditional writes, the write rate, presigned URLs, CORS, lifecycle, listings, ranges")
    .option("--json", "machine-readable output")
    .addHelpText(
      "after",
      "\nExit code 0 when nothing failed (warnings allowed), 1 otherwise. Writes and deletes one probe object under operations/.doctor-<random>/;\n" +
        "--deep writes a few small objects under operations/.doctor-deep-<random>/ and deletes exactly those keys.\ncreates no key, token or directory.",
    )
    .action(async (opts: { json?: boolean; server?: string; deep?: boolean }) => {
      const ok = opts.deep === true ? await deep(io, opts) : await doctor(io, opts);
      setExit(ok ? 0 : 1);
    });
}
