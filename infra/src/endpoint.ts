import type { R2Jurisdiction } from "./config";

/**
 * The S3 API endpoint of an account's R2 buckets in a jurisdiction:
 * `https://<account>.r2.cloudflarestorage.com`, with `.eu` or `.fedramp` before `.r2`.
 */
export function s3Endpoint(accountId: string, jurisdiction: R2Jurisdiction): string {
  const infix = jurisdiction === "default" ? "" : `.${jurisdiction}`;
  return `https://${accountId}${infix}.r2.cloudflarestorage.com`;
}
