import * as pulumi from "@pulumi/pulumi";
import type { R2Config } from "@personal-server/artifacts";
import { createBucket, type BucketResources } from "./bucket";
import type { InfraConfig } from "./config";
import { s3Endpoint } from "./endpoint";
import { createNotifications, type NotificationResources } from "./notifications";
import { createBucketTokens, secretAccessKeyOf, type TokenResources } from "./token";

/** The stack outputs; `export-env` maps them onto the SDK's environment variables. */
export interface ProgramOutputs {
  /** Cloudflare account id (`R2_ACCOUNT_ID`). */
  accountId: string;
  /** Bucket name (`R2_BUCKET_NAME`). */
  bucketName: pulumi.Output<string>;
  /** Jurisdiction (`R2_JURISDICTION`). */
  jurisdiction: R2Config["jurisdiction"];
  /** S3 endpoint (the SDK derives the same from account id and jurisdiction). */
  s3Endpoint: string;
  /** Access key id of the newest token (`R2_ACCESS_KEY_ID`): the token's id. */
  accessKeyId: pulumi.Output<string>;
  /** Secret access key of the newest token (`R2_SECRET_ACCESS_KEY`): SHA-256 hex of its value; secret. */
  secretAccessKey: pulumi.Output<string>;
  /** Retention in days (`ARTIFACTS_TTL=<n>d`); the lifecycle rule deletes one day later. */
  retentionDays: number;
  /** Expiry of the newest token, or null when tokens never expire. */
  tokenExpiresOn: string | null;
  /** Browser origins the bucket's CORS rule allows (`ARTIFACTS_CORS_ORIGINS`, so the server allows the same). */
  corsOrigins: string[];
  /** Everything the SDK needs, typed with the SDK's own R2Config so the two cannot drift apart; secret. */
  artifactStore: pulumi.Output<R2Config>;
}

/** Every resource the program declares, plus its outputs (tests read both). */
export interface Program {
  bucket: BucketResources;
  tokens: TokenResources;
  /** Present only with `notifications: true`. */
  notifications: NotificationResources | undefined;
  outputs: ProgramOutputs;
}

export function createProgram(cfg: InfraConfig): Program {
  const bucket = createBucket(cfg);
  const tokens = createBucketTokens(cfg, bucket.bucket.name);
  const notifications = cfg.notifications ? createNotifications(cfg, bucket.bucket.name) : undefined;

  const { token, expiresOn } = tokens.newest;
  const accessKeyId = token.id;
  // Mocks do not mark additionalSecretOutputs secret, and a derived value must stay secret
  // whatever the engine does, so it is wrapped explicitly.
  const secretAccessKey = pulumi.secret(token.value.apply(secretAccessKeyOf));
  const artifactStore = pulumi
    .all([accessKeyId, secretAccessKey, bucket.bucket.name])
    .apply(([id, secret, name]): R2Config => ({
      accountId: cfg.accountId,
      accessKeyId: id,
      secretAccessKey: secret,
      bucketName: name,
      jurisdiction: cfg.jurisdiction,
    }));

  return {
    bucket,
    tokens,
    notifications,
    outputs: {
      accountId: cfg.accountId,
      bucketName: bucket.bucket.name,
      jurisdiction: cfg.jurisdiction,
      s3Endpoint: s3Endpoint(cfg.accountId, cfg.jurisdiction),
      accessKeyId,
      secretAccessKey,
      retentionDays: cfg.retentionDays,
      tokenExpiresOn: expiresOn ?? null,
      corsOrigins: cfg.corsOrigins,
      artifactStore,
    },
  };
}
