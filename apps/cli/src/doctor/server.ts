import type { StorageConfig } from "@personal-server/artifacts";
import { type Check, messageOf } from "./check.js";

const HEALTH_TIMEOUT_MS = 5000;

/** GET <url>/health answers 200 ok and reports the storage kind this configuration selects. */
export async function serverCheck(url: string, kind: StorageConfig["kind"] | undefined): Promise<Check> {
  let health: URL;
  try {
    health = new URL(`${url.replace(/\/+$/, "")}/health`);
    if (health.protocol !== "http:" && health.protocol !== "https:") throw new Error("not http(s)");
  } catch {
    return { name: "server", status: "fail", message: `"${url}" is not an http(s) URL`, fix: "pass --server http://host:port (or set ARTIFACTS_SERVER_URL)" };
  }
  let status: number;
  let body: { status?: unknown; storage?: unknown } | undefined;
  try {
    const answer = await fetch(health, { signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS) });
    status = answer.status;
    body = (await answer.json().catch(() => undefined)) as typeof body;
  } catch (error) {
    return {
      name: "server",
      status: "fail",
      message: `GET ${health.href} failed: ${messageOf(error)}${(error as Error).cause ? ` (${messageOf((error as Error).cause)})` : ""}`,
      fix: "start the server (make up, or node apps/server/dist/main.js), or check the URL and port",
    };
  }
  if (status !== 200 || body?.status !== "ok") {
    return { name: "server", status: "fail", message: `GET ${health.href} answered ${status} ${JSON.stringify(body ?? null)}`, fix: "read the server's log (make logs)" };
  }
  if (kind !== undefined && body.storage !== kind) {
    return {
      name: "server",
      status: "fail",
      message: `${health.origin} serves ${String(body.storage)} storage, but this configuration selects ${kind}`,
      fix: "give the CLI the server's own configuration (the same .env or environment)",
    };
  }
  return {
    name: "server",
    status: "pass",
    message: `${health.href} answers ok with ${String(body.storage)} storage${kind === undefined ? "" : ", as configured"}`,
  };
}

