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
  return {
    kind: backend.kind,
    getStream: (key, range) => call("get", (): Promise<Readable | null> => backend.getStream(key, range)),
    getBytes: (key, range) => call("get", () => backend.getBytes(key, range)),
    head: (key) => call("head", () => backend.head(key)),
    presignGet: (key, options) => backend.presignGet(key, options),
    put: (key, body, options) => call("put", () => backend.put(key, body, options)),
    putConditional: (key, body, condition) => call("put", () => backend.putConditional(key, body, condition)),
    delete: (keys) => call("delete", () => backend.delete(keys)),
    list: (prefix) => listing(() => backend.list(prefix)),
    listPrefixes: (prefix) => listing(() => backend.listPrefixes(prefix)),
    sweepTemporary: (prefix, olderThan) => call("list_uploads", () => backend.sweepTemporary(prefix, olderThan)),
    checkBucket: () => call("bucket", () => backend.checkBucket()),
    getLifecycleRules: () => call("bucket", () => backend.getLifecycleRules()),
    close: () => backend.close(),
  };
}
