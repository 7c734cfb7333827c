import * as cloudflare from "@pulumi/cloudflare";
import * as pulumi from "@pulumi/pulumi";
import { OPERATIONS_PREFIX } from "@personal-server/artifacts/constants";
import { queueName, type InfraConfig } from "./config";

/** R2 actions that create an object, and those that remove one (including the lifecycle backstop). */
export const CREATE_ACTIONS = ["PutObject", "CopyObject", "CompleteMultipartUpload"] as const;
export const DELETE_ACTIONS = ["DeleteObject", "LifecycleDeletion"] as const;

export interface NotificationResources {
  queue: cloudflare.Queue;
  notification: cloudflare.R2BucketEventNotification;
}

/** Queues name jurisdictions as eu/fedramp too; the default jurisdiction is simply unset. */
function queueJurisdiction(cfg: InfraConfig): string | undefined {
  return cfg.jurisdiction === "default" ? undefined : cfg.jurisdiction;
}

/** A queue receiving object create/delete events under the operations prefix (for monitoring). */
export function createNotifications(cfg: InfraConfig, bucketName: pulumi.Input<string>): NotificationResources {
  const queue = new cloudflare.Queue("events-queue", {
    accountId: cfg.accountId,
    queueName: queueName(cfg.bucketName),
    jurisdiction: queueJurisdiction(cfg),
  });
  const notification = new cloudflare.R2BucketEventNotification("bucket-events", {
    accountId: cfg.accountId,
    bucketName,
    jurisdiction: cfg.jurisdiction,
    queueId: queue.queueId,
    rules: [
      {
        actions: [...CREATE_ACTIONS, ...DELETE_ACTIONS],
        prefix: OPERATIONS_PREFIX,
        description: "artifact objects created or deleted",
      },
    ],
  });
  return { queue, notification };
}
