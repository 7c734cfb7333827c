/**
 * The one price table: the CLI's `cost` and `usage`, and the server's storage cost gauge. Prices change: when they do, edit this
 * table, its `checked` date and nothing else.
 *
 * Checked on 2026-11-27 against:
 * - Cloudflare R2: https://developers.cloudflare.com/r2/pricing/ (source
 *   cloudflare/cloudflare-docs src/content/docs/r2/pricing.mdx): storage is "averaging the peak
 *   storage per day over a billing period (30 days)"; usage is "rounded up to the next billing
 *   unit" (1.1 GB-month bills as 2, 1,000,001 operations as 2 million); the free tier applies to
 *   Standard storage only; Infrequent Access has a 30-day minimum storage duration; ListObjects,
 *   PutObject, CreateMultipartUpload, UploadPart and CompleteMultipartUpload are Class A;
 *   GetObject and HeadObject are Class B; DeleteObject and AbortMultipartUpload are free.
 *   GB is decimal (10^9 bytes; cloudflare-docs PR #12440 "clarify limits + units").
 * - Amazon S3 Standard, us-east-1: https://aws.amazon.com/s3/pricing/ (first 50 TB tier; PUT,
 *   COPY, POST, LIST per 1,000; GET, SELECT and all other requests per 1,000; DELETE free;
 *   data transfer out to the internet after the first 100 GB/month free, first 10 TB tier).
 *   AWS meters byte-hours over the month (730 h on average) and its GB is 2^30 bytes.
 */
export const PRICES = {
  checked: "2026-11-27",
  r2: {
    source: "https://developers.cloudflare.com/r2/pricing/",
    bytesPerGB: 1e9,
    /** Cloudflare's billing period for GB-month. */
    monthDays: 30,
    /** Usage is rounded up to whole billing units (1 GB-month, 1 million requests). */
    roundsUpToUnits: true,
    standard: {
      storagePerGBMonth: 0.015,
      classAPerMillion: 4.5,
      classBPerMillion: 0.36,
      retrievalPerGB: 0,
      minStorageDays: 0,
      free: { storageGBMonth: 10, classA: 1_000_000, classB: 10_000_000 },
    },
    infrequent: {
      storagePerGBMonth: 0.01,
      classAPerMillion: 9.0,
      classBPerMillion: 0.9,
      retrievalPerGB: 0.01,
      minStorageDays: 30,
      free: { storageGBMonth: 0, classA: 0, classB: 0 },
    },
  },
  s3: {
    source: "https://aws.amazon.com/s3/pricing/",
    region: "us-east-1",
    bytesPerGB: 2 ** 30,
    /** 730 hours: AWS's average month for byte-hour metering. */
    monthDays: 730 / 24,
    storagePerGBMonth: 0.023,
    /** PUT, COPY, POST, LIST. */
    putPer1000: 0.005,
    /** GET, SELECT, HEAD and all other requests (DELETE is free). */
    getPer1000: 0.0004,
    egressPerGB: 0.09,
    freeEgressGBPerMonth: 100,
  },
} as const;

export type R2StorageClass = "standard" | "infrequent";
