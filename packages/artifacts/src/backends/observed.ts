import type { Readable } from "node:stream";
import { type Backend, KeyClashError, PreconditionFailedError } from "./types.js";

/** The kinds of storage call the metrics count: a call may be several HTTP requests (list pages, multipart parts). */
export const STORAGE_OPERATIONS = ["get", "head", "put", "delete", "list", "list_uploads", "bucket"] as const;
export type StorageOperation = (typeof STORAGE_OPERATIONS)[number];

/**
 * Told of every settled storage call: `error` when it threw (a timeout, a 5xx, a refused
 * connection, a disk error); a failed write condition (412) or a key that clashes with a folder
 * (local storage's `d` beside `d/c`) is the storage's answer about the key, so `ok`. A download
 * stream that breaks after it began is not seen here (the request serving it counts an error).
 */
export type StorageObserver = (operation: StorageOperation, outcome: "ok" | "error") => void;

/** `backend` with every call reported to `observe`; nothing else changes. */
export function observeBackend(backend: Backend, observe: StorageObserver): Backend {
  const call = async <T>(operation: StorageOperation, run: () => Promise<T>): Promise<T> => {
    try {
      const result = await run();
      observe(operation, "ok");
      return result;
    } catch (error) {
      observe(operation, error instanceof PreconditionFailedError || error instanceof KeyClashError ? "ok" : "error");
      throw error;
    }
  };
  async function* listing<T>(run: () => AsyncIterable<T>): AsyncIterable<T> {
    let outcome: "ok" | "error" = "ok";
    try {
      yield* run();
    } catch (error) {
      outcome = "error";
      throw error;
    } finally {
      observe("list", outcome);
    }
  }
  // Every argument passed on as it came (`...args`): a wrapper that names its parameters can drop
  // one silently, as `list` once dropped `startAfter` (each listing then read every entry name).
  return {
    kind: backend.kind,
    getStream: (...args) => call("get", (): Promise<Readable | null> => backend.getStream(...args)),
    getBytes: (...args) => call("get", () => backend.getBytes(...args)),
    head: (...args) => call("head", () => backend.head(...args)),
    presignGet: (...args) => backend.presignGet(...args),
    put: (...args) => call("put", () => backend.put(...args)),
    putConditional: (...args) => call("put", () => backend.putConditional(...args)),
    delete: (...args) => call("delete", () => backend.delete(...args)),
    list: (...args) => listing(() => backend.list(...args)),
    listPrefixes: (...args) => listing(() => backend.listPrefixes(...args)),
    sweepTemporary: (...args) => call("list_uploads", () => backend.sweepTemporary(...args)),
    checkBucket: () => call("bucket", () => backend.checkBucket()),
    getLifecycleRules: () => call("bucket", () => backend.getLifecycleRules()),
    close: () => backend.close(),
  };
}
