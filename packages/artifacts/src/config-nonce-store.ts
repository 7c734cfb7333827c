import type { Get, NonceStoreConfig, Problem } from "./config-types.js";

/** `redis[s]://[[user]:password@]host[:port][/db]`; messages never echo the value (it may hold a password). */
export function readNonceStore(get: Get, problem: Problem): NonceStoreConfig {
  const value = get("ARTIFACTS_NONCE_STORE");
  if (value === undefined) return { kind: "memory" };
  const shape = "must be redis[s]://[[user]:password@]host[:port][/db]";
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    problem("ARTIFACTS_NONCE_STORE", shape);
    return { kind: "memory" };
  }
  const db = url.pathname === "" || url.pathname === "/" ? 0 : /^\/\d{1,5}$/.test(url.pathname) ? Number(url.pathname.slice(1)) : Number.NaN;
  if ((url.protocol !== "redis:" && url.protocol !== "rediss:") || url.hostname === "" || url.search !== "" || url.hash !== "" || Number.isNaN(db)) {
    problem("ARTIFACTS_NONCE_STORE", shape);
    return { kind: "memory" };
  }
  const tls = url.protocol === "rediss:";
  const port = url.port === "" ? 6379 : Number(url.port);
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const username = url.username === "" ? undefined : decodeURIComponent(url.username);
  const password = url.password === "" ? undefined : decodeURIComponent(url.password);
  const who = username === undefined ? (password === undefined ? "" : ":***@") : `${url.username}${password === undefined ? "" : ":***"}@`;
  return { kind: "redis", tls, host, port, db, username, password, display: `${url.protocol}//${who}${url.host}/${db}` };
}
