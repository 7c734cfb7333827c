import { isIP } from "node:net";
import type { Get, MetricsListen, Problem } from "./config-types.js";

/** Where metrics are served unless `ARTIFACTS_METRICS_LISTEN` says otherwise: loopback only. */
export const DEFAULT_METRICS_LISTEN: MetricsListen = { host: "127.0.0.1", port: 9464 };

/** `ARTIFACTS_METRICS_TOKEN`, `ARTIFACTS_METRICS_LISTEN` and `ARTIFACTS_MONTHLY_BUDGET_USD`. */
export function readMonitoring(
  get: Get,
  problem: Problem,
): { metricsToken: string | undefined; metricsListen: MetricsListen | undefined; monthlyBudgetUsd: number } {
  return { metricsToken: get("ARTIFACTS_METRICS_TOKEN"), metricsListen: readListen(get, problem), monthlyBudgetUsd: readBudget(get, problem) };
}

/** `host:port` with an IP address (`[::1]:9464` for IPv6), or `off`. */
function readListen(get: Get, problem: Problem): MetricsListen | undefined {
  const value = get("ARTIFACTS_METRICS_LISTEN");
  if (value === undefined) return DEFAULT_METRICS_LISTEN;
  if (value === "off") return undefined;
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([0-9.]+)):(\d{1,5})$/.exec(value);
  const host = match?.[1] ?? match?.[2];
  const port = Number(match?.[3]);
  if (host === undefined || isIP(host) === 0 || (match?.[1] !== undefined && isIP(host) !== 6) || port > 65_535) {
    problem("ARTIFACTS_METRICS_LISTEN", `must be ADDRESS:PORT like 127.0.0.1:9464 or [::1]:9464, or off; got "${value}"`);
    return DEFAULT_METRICS_LISTEN;
  }
  return { host, port };
}

function readBudget(get: Get, problem: Problem): number {
  const value = get("ARTIFACTS_MONTHLY_BUDGET_USD");
  if (value === undefined) return 0;
  if (!/^\d{1,9}(\.\d{1,6})?$/.test(value)) {
    problem("ARTIFACTS_MONTHLY_BUDGET_USD", `must be US dollars a month like 0, 5 or 2.50; got "${value}"`);
    return 0;
  }
  return Number(value);
}
