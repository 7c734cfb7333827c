/**
 * What the crash harness's lanes share (issue 14). A lane owns one storage and runs trials one after another:
 * each trial starts a process (the server, or the CLI), gives it work, SIGKILLs it at a seeded
 * event point, restarts, and runs the independent checker (checker.ts). Event points:
 *
 * - `body:N`: the harness is the client and kills the server once it has sent N bytes of a body;
 * - `s3:k:before|after`: the k-th storage request through a loopback proxy in front of moto, killed
 *   when it arrives (never forwarded) or once moto answered it (the answer never delivered);
 * - `fs:k:before|after`: the k-th state-changing filesystem call of the process under the local
 *   root, counted by fs-kill.mjs preloaded into the child only.
 *
 * Every choice comes from a PRNG seeded by (seed, lane), so one seed replays the same trials and
 * kill points on any machine; only the interleaving of concurrent uploads is the machine's.
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { RecordingProxy } from "../../../../../test-support/proxy.js";
import { MASTER_KEY } from "../harness.js";
import type { CheckResult } from "./checker.js";

export const MIB = 1024 * 1024;
export const HOUR = 3600 * 1000;
const FS_KILL = pathToFileURL(resolve(import.meta.dirname, "fs-kill.mjs")).href;
/** Master keys of the rotate-key trials (obviously fake). */
export const OLD_KEY = `old:${Buffer.alloc(32, 0x4f).toString("base64")}`;
export const NEW_KEY = `new:${Buffer.alloc(32, 0x4e).toString("base64")}`;
export const keyMap = (...specs: string[]): Map<string, Buffer> =>
  new Map(specs.map((s) => [s.slice(0, s.indexOf(":")), Buffer.from(s.slice(s.indexOf(":") + 1), "base64")]));
export const DEFAULT_KEYS = keyMap(`default:${MASTER_KEY}`);

/** What a lane reports. */
export interface LaneReport {
  lane: string;
  trials: number;
  kills: number;
  /** Kills by kind of work and kind of event point. */
  byKind: Record<string, number>;
  violations: string[];
  lost: string[];
  /** Answers that are wrong even for a crash test (a 5xx or 409 from a server that was not being killed). */
  unexpected: string[];
  /** Every trial: kind, point and where the kill landed, for reproducing one. */
  log: string[];
  decrypted: number;
  /** Acknowledged artifacts read back byte for byte through a server restarted after the last kill. */
  servedAfterRestart: number;
}

// ---- seeded choices -----------------------------------------------------------------------------

export function rng(seed: string): () => number {
  let h = 1779033703 ^ seed.length;
  for (let i = 0; i < seed.length; i++) h = Math.imul(h ^ seed.charCodeAt(i), 3432918353);
  let a = (h << 13) | (h >>> 19);
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
export const int = (r: () => number, lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));
export const pick = <T>(r: () => number, items: readonly T[]): T => items[Math.floor(r() * items.length)]!;

export type Point = { kind: "body"; upload: number; bytes: number } | { kind: "s3" | "fs"; k: number; when: "before" | "after" };
export const describePoint = (p: Point): string => (p.kind === "body" ? `body:${p.bytes}@upload${p.upload}` : `${p.kind}:${p.k}:${p.when}`);

/** Draws a storage-event point: the k-th event, before or after it. */
export const eventPoint = (r: () => number, kind: "s3" | "fs", kmax: number): Point => ({ kind, k: int(r, 1, kmax), when: r() < 0.5 ? "before" : "after" });

export function fsKillEnv(point: Point | undefined, root: string): Record<string, string> {
  if (point?.kind !== "fs") return {};
  return { NODE_OPTIONS: `--import=${FS_KILL}`, CRASH_FS_ROOT: root, CRASH_FS_KILL_AT: String(point.k), CRASH_FS_WHEN: point.when, CRASH_FS_TRACE: "1" };
}

/** Counts storage requests through the proxy and runs `kill` at the chosen one. */
export function armProxy(proxy: RecordingProxy, point: Point | undefined, kill: () => void): { count(): number; fired(): string | undefined } {
  let n = 0;
  let target: object | undefined;
  let fired: string | undefined;
  proxy.tap = (at, request) => {
    if (fired !== undefined) return "hold";
    if (at === "request") n++;
    if (point?.kind !== "s3") return;
    if (at === "request" && n === point.k) {
      target = request;
      if (point.when === "before") {
        fired = `#${n} before ${request.method} ${request.path.split("?")[0]}`;
        kill();
        return "hold";
      }
    }
    if (at === "response" && request === target && point.when === "after") {
      fired = `#${point.k} after ${request.method} ${request.path.split("?")[0]}`;
      kill();
      return "hold";
    }
  };
  return { count: () => n, fired: () => fired };
}

// ---- lane bookkeeping -----------------------------------------------------------------------------

export function newReport(lane: string): LaneReport {
  return { lane, trials: 0, kills: 0, byKind: {}, violations: [], lost: [], unexpected: [], log: [], decrypted: 0, servedAfterRestart: 0 };
}

export function record(report: LaneReport, label: string, result: CheckResult | CheckResult[], lost: string[]): void {
  for (const r of Array.isArray(result) ? result : [result]) {
    report.violations.push(...r.violations.map((v) => `${label}: ${v}`));
    report.decrypted += r.decrypted;
  }
  report.lost.push(...lost.map((l) => `${label}: ${l}`));
}

export function countKill(report: LaneReport, work: string, point: Point["kind"] | "idle"): void {
  report.kills++;
  const key = `${work} ${point}`;
  report.byKind[key] = (report.byKind[key] ?? 0) + 1;
}

