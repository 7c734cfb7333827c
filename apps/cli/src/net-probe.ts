import { lookup } from "node:dns/promises";
import { connect as netConnect } from "node:net";
import { connect as tlsConnect } from "node:tls";

/** Outcome of probing an endpoint: which stage failed and why. */
export type ProbeResult =
  | { ok: true; host: string; port: number; address: string; tls: boolean; ms: number }
  | { ok: false; stage: "url" | "dns" | "tcp" | "tls"; host: string; port: number; error: string };

/**
 * Resolves the endpoint's host and opens a TCP connection (then a TLS handshake, for https),
 * each within `timeoutMs`. Separate stages so the failure says what to fix: a DNS failure is
 * a wrong host (account id), a refused TCP connection a wrong port or a server that is down,
 * a TLS failure a proxy or a wrong scheme.
 */
export async function probeEndpoint(endpoint: string, timeoutMs: number): Promise<ProbeResult> {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return { ok: false, stage: "url", host: endpoint, port: 0, error: "not a URL" };
  }
  const tls = url.protocol === "https:";
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const port = url.port === "" ? (tls ? 443 : 80) : Number(url.port);
  const started = Date.now();
  let address: string;
  try {
    address = (await withTimeout(lookup(host), timeoutMs, "DNS lookup timed out")).address;
  } catch (error) {
    return { ok: false, stage: "dns", host, port, error: describe(error) };
  }
  try {
    await new Promise<void>((resolve, reject) => {
      const socket = netConnect({ host: address, port, timeout: timeoutMs });
      socket.once("connect", () => {
        socket.destroy();
        resolve();
      });
      socket.once("timeout", () => {
        socket.destroy();
        reject(new Error(`no answer within ${timeoutMs} ms`));
      });
      socket.once("error", reject);
    });
  } catch (error) {
    return { ok: false, stage: "tcp", host, port, error: describe(error) };
  }
  if (tls) {
    try {
      await new Promise<void>((resolve, reject) => {
        const socket = tlsConnect({ host: address, port, servername: host, timeout: timeoutMs });
        socket.once("secureConnect", () => {
          socket.destroy();
          resolve();
        });
        socket.once("timeout", () => {
          socket.destroy();
          reject(new Error(`TLS handshake took longer than ${timeoutMs} ms`));
        });
        socket.once("error", reject);
      });
    } catch (error) {
      return { ok: false, stage: "tls", host, port, error: describe(error) };
    }
  }
  return { ok: true, host, port, address, tls, ms: Date.now() - started };
}

function describe(error: unknown): string {
  const e = error as NodeJS.ErrnoException;
  return e.code !== undefined && !e.message.includes(e.code) ? `${e.code}: ${e.message}` : e.message;
}

async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(message)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
