import { ArtifactError, type ArtifactsConfig, StorageUnavailableError } from "@personal-server/artifacts";

/** The kinds of storage failure doctor and the commands give advice for. */
export type Trouble = "access_denied" | "bucket_not_found" | "connection" | "other";

/** Sorts a storage error into one of those kinds. */
export function classify(error: unknown): Trouble {
  const text = `${error instanceof Error ? error.message : String(error)} ${error instanceof ArtifactError ? (error.hint ?? "") : ""} ${
    error instanceof ArtifactError ? JSON.stringify(error.details ?? {}) : ""
  }`;
  if (/NoSuchBucket|bucket not found|bucket .*does not exist|not_found_bucket/i.test(text)) return "bucket_not_found";
  if (/AccessDenied|access denied|Forbidden|\b403\b|InvalidAccessKeyId|SignatureDoesNotMatch/i.test(text)) return "access_denied";
  if (error instanceof StorageUnavailableError) return "connection";
  return "other";
}

/** The advice for a kind of failure, worded for the configured storage. */
export function adviceFor(trouble: Trouble, config: ArtifactsConfig): string {
  const s = config.storage;
  const r2 = s.kind === "r2";
  switch (trouble) {
    case "access_denied":
      return r2
        ? "Access Denied: check the API token has Object Read & Write (and Bucket Read) on this bucket, that R2_ACCOUNT_ID is the account the bucket is in, and that R2_BUCKET_NAME matches the bucket name exactly"
        : "Access Denied: check S3_ACCESS_KEY_ID/S3_SECRET_ACCESS_KEY may read and write the bucket, and that S3_BUCKET matches the bucket name exactly";
    case "bucket_not_found":
      return r2
        ? `Bucket Not Found: check R2_BUCKET_NAME ("${s.bucket}"), that the bucket exists in account ${s.accountId}, and its jurisdiction (R2_JURISDICTION=${s.jurisdiction}: a bucket created in eu or fedramp is only reachable at that endpoint)`
        : s.kind === "s3"
          ? `Bucket Not Found: check S3_BUCKET ("${s.bucket}") exists at ${s.endpoint} (and S3_REGION=${s.region})`
          : `create ${s.dir} or point ARTIFACTS_LOCAL_DIR at an existing directory`;
    case "connection":
      return r2
        ? `Connection error: check R2_ACCOUNT_ID is the 32-hex Account ID (dashboard sidebar), that the endpoint is https://<account>.r2.cloudflarestorage.com (${s.endpoint}), and that this machine can reach Cloudflare (DNS, firewall, proxy)`
        : s.kind === "s3"
          ? `Connection error: check S3_ENDPOINT (${s.endpoint}: scheme, host and port) and that the storage server is running and reachable from here`
          : "check the local directory is readable";
    case "other":
      return "see the error above; `artifacts doctor --json` shows every check";
  }
}
