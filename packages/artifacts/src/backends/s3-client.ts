/**
 * The S3 client the backend talks through. Settings that matter:
 * - `requestChecksumCalculation`/`responseChecksumValidation` = `WHEN_REQUIRED`: since SDK
 *   3.729 the default adds CRC32 checksum headers/trailers (aws-chunked bodies) that R2
 *   rejected in 2025 and its local simulator answers with 500; WHEN_REQUIRED sends them only
 *   where the API demands one (DeleteObjects).
 * - path-style addressing for every endpoint: custom S3 endpoints (MinIO, moto) need it, R2
 *   accepts it, and it keeps bucket names out of TLS host names.
 * - explicit connect, request (until response headers) and socket-idle timeouts.
 */
import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import { S3Client } from "@aws-sdk/client-s3";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import type { StorageConfig } from "../config-types.js";
import type { BackendTimeouts } from "./types.js";

/** The r2/s3 members of `StorageConfig`. */
export type RemoteStorageConfig = Exclude<StorageConfig, { kind: "local" }>;

/** A client for `storage` with the given timeouts; `maxAttempts` per request, first one included (default 3). */
export function createS3Client(
  storage: RemoteStorageConfig,
  opts: BackendTimeouts & { maxAttempts?: number },
): S3Client {
  const agentOptions = { keepAlive: true, maxSockets: 50 };
  return new S3Client({
    endpoint: storage.endpoint,
    region: storage.kind === "r2" ? "auto" : storage.region,
    forcePathStyle: true,
    credentials: { accessKeyId: storage.accessKeyId, secretAccessKey: storage.secretAccessKey },
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    maxAttempts: opts.maxAttempts ?? 3,
    requestHandler: new NodeHttpHandler({
      connectionTimeout: opts.connectTimeoutMs,
      // Wall clock from sending until the response headers; without throwOnRequestTimeout the
      // SDK only logs a warning when it passes.
      requestTimeout: opts.timeoutMs,
      throwOnRequestTimeout: true,
      // Idle socket while a body streams (a download that stalls midway).
      socketTimeout: opts.timeoutMs,
      httpAgent: new HttpAgent(agentOptions),
      httpsAgent: new HttpsAgent(agentOptions),
    }),
  });
}
