import * as cloudflare from "@pulumi/cloudflare";
import { OPERATIONS_PREFIX } from "@personal-server/artifacts/constants";
import type { InfraConfig } from "./config";

const DAY_SECONDS = 86_400;

/** Rule ids, stable so a `pulumi up` after a config change updates rules in place. */
export const LIFECYCLE_RULE_EXPIRE = "expire-operations";
export const LIFECYCLE_RULE_ABORT = "abort-multipart";
export const CORS_RULE_ID = "browser-read";

/** The bucket and the policies attached to it. */
export interface BucketResources {
  bucket: cloudflare.R2Bucket;
  lifecycle: cloudflare.R2BucketLifecycle;
  /** Absent when `corsOrigins` is empty: no browser origin may read the bucket. */
  cors: cloudflare.R2BucketCors | undefined;
}

/**
 * Seconds after which the lifecycle rule deletes an operation's objects: one day past the
 * retention, so the SDK's own sweep (which honours the exact expiry) always runs first and the
 * rule is only the backstop for crashes and lost metadata.
 */
export function operationsMaxAgeSeconds(retentionDays: number): number {
  return (retentionDays + 1) * DAY_SECONDS;
}

export function createBucket(cfg: InfraConfig): BucketResources {
  const bucket = new cloudflare.R2Bucket("bucket", {
    accountId: cfg.accountId,
    name: cfg.bucketName,
    jurisdiction: cfg.jurisdiction,
    location: cfg.location,
    storageClass: cfg.storageClass,
  });

  // Every child takes the bucket's own name output, so it depends on the bucket existing.
  const scope = { accountId: cfg.accountId, bucketName: bucket.name, jurisdiction: cfg.jurisdiction };

  const lifecycle = new cloudflare.R2BucketLifecycle("bucket-lifecycle", {
    ...scope,
    rules: [
      {
        id: LIFECYCLE_RULE_EXPIRE,
        enabled: true,
        conditions: { prefix: OPERATIONS_PREFIX },
        deleteObjectsTransition: { condition: { type: "Age", maxAge: operationsMaxAgeSeconds(cfg.retentionDays) } },
      },
      {
        // Uploads that crash mid-way leave parts that are billed but never listed; drop them bucket-wide.
        id: LIFECYCLE_RULE_ABORT,
        enabled: true,
        conditions: { prefix: "" },
        abortMultipartUploadsTransition: { condition: { type: "Age", maxAge: DAY_SECONDS } },
      },
    ],
  });

  const cors =
    cfg.corsOrigins.length === 0
      ? undefined
      : new cloudflare.R2BucketCors("bucket-cors", {
          ...scope,
          rules: [
            {
              id: CORS_RULE_ID,
              allowed: { origins: cfg.corsOrigins, methods: ["GET", "HEAD"], headers: ["Range"] },
              exposeHeaders: ["ETag", "Content-Length", "Content-Range"],
              maxAgeSeconds: 3600,
            },
          ],
        });

  return { bucket, lifecycle, cors };
}
