import { type ArtifactsConfig, loadConfig, type StorageConfig } from "@personal-server/artifacts";
import { type Backend, openBackend } from "@personal-server/artifacts/internal";
import type { Io } from "./io.js";

/**
 * The SDK's configuration: `loadConfig(io.env)`, which with no env reads the process environment and
 * `.env`. Only commands that write pass `{ create: true }` (local storage: the directory and a
 * development master key); the read-only ones create nothing.
 */
export function config(io: Io, options: { create: boolean }): ArtifactsConfig {
  return loadConfig(io.env, options);
}

/** Opens a backend with the configured timeouts. */
export function backendFor(storage: StorageConfig, cfg: ArtifactsConfig): Promise<Backend> {
  return openBackend(storage, { timeoutMs: cfg.s3TimeoutMs, connectTimeoutMs: cfg.s3ConnectTimeoutMs });
}

/** Runs `fn` with a backend and always closes it (sockets would keep the process alive). */
export async function withBackend<T>(storage: StorageConfig, cfg: ArtifactsConfig, fn: (b: Backend) => Promise<T>): Promise<T> {
  const backend = await backendFor(storage, cfg);
  try {
    return await fn(backend);
  } finally {
    await backend.close();
  }
}

/** "r2 bucket x", "s3 bucket x at http://…", "local directory /…" */
export function describeStorage(storage: StorageConfig): string {
  return storage.kind === "local" ? `local directory ${storage.dir}` : `${storage.kind} bucket "${storage.bucket}" at ${storage.endpoint}`;
}
