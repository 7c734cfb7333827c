import type { StorageConfig } from "../config-types.js";
import { LocalBackend } from "./local.js";
import type { Backend, BackendTimeouts } from "./types.js";

export { LocalBackend, type LocalBackendOptions } from "./local.js";
export * from "./types.js";

/**
 * Opens the backend `storage` selects. The S3 backend is imported on demand, so `@aws-sdk/*`
 * (tens of MB of heap) is loaded only when r2 or s3 storage is configured: the server's memory
 * budget on local storage depends on it.
 */
export async function openBackend(storage: StorageConfig, opts: BackendTimeouts): Promise<Backend> {
  if (storage.kind === "local") return new LocalBackend(storage.dir);
  const { S3Backend } = await import("./s3.js");
  return new S3Backend(storage, opts);
}
