import { DEFAULT_CHUNK_SIZE, encryptedSize } from "../crypto.js";
import { serializeMetadata, type OperationMetadata } from "../metadata.js";
import { PRICES, type R2StorageClass } from "./pricing.js";

/** What `cost` is asked about. */
export interface CostInput {
  /** Operations created per month. */
  opsPerMonth: number;
  /** Artifacts uploaded per operation. */
  artifactsPerOp: number;
  /** Plaintext bytes per artifact. */
  artifactSize: number;
  /** How long each operation lives (ARTIFACTS_TTL / ttlSeconds), seconds. */
  retentionSeconds: number;
  /** R2 storage class of the bucket. */
  storageClass: R2StorageClass;
  /** Times the grantee downloads each artifact (each time after listing the operation). */
  downloads: number;
  /** Sweep interval (ARTIFACTS_SWEEP_INTERVAL), seconds; 0 = no sweep, the lifecycle rule deletes. */
  sweepIntervalSeconds: number;
  /** Multipart part size of the S3 backend: bigger objects are uploaded in parts. */
  partSize: number;
}

/** One line of a bill. */
export interface BillLine {
  item: string;
  /** Metered usage in the line's unit (GB-month, requests, GB). */
  usage: number;
  unit: string;
  /** Included free each month. */
  free: number;
  /** What is charged after the free allowance (and, on R2, rounding up to whole units). */
  billable: number;
  /** Price per `priceUnit`. */
  price: number;
  priceUnit: string;
  cost: number;
}

/** Request counts per month, by where they come from. */
export interface RequestCounts {
  /** Writes: PutObject, multipart create/part/complete, ListObjects (R2 Class A; S3 PUT/LIST). */
  classA: { uploads: number; sweeps: number; total: number };
  /** Reads: GetObject, HeadObject (R2 Class B; S3 GET). */
  classB: { uploads: number; downloads: number; sweeps: number; total: number };
}

export interface CostEstimate {
  input: CostInput;
  /** Derived figures the lines are computed from. */
  derived: {
    /** Stored bytes per artifact: 41 + L + 16 * ceil(L / chunk). */
    encryptedArtifactBytes: number;
    chunkSize: number;
    /** metadata.json of one finished operation. */
    metadataBytes: number;
    /** Every byte one operation keeps stored. */
    bytesPerOperation: number;
    /** Requests to store one artifact (1 PutObject, or create + parts + complete). */
    uploadRequestsPerArtifact: number;
    /** How long each operation's bytes stay stored, days (retention; +1 day when only the lifecycle rule deletes). */
    storedDays: number;
    /** Operations stored at any moment (steady state). */
    liveOperations: number;
    sweepsPerMonth: { r2: number; s3: number };
    /** What one sweep finds and sends (R2's 30-day month; 0 without a sweep). */
    perSweep: SweepCounts & {
      /** Operations whose metadata.json it reads: the live ones and those expired since the previous sweep. */
      operations: number;
      /** Objects its listing of operations/ returns (every object of those operations). */
      objects: number;
    };
    /** Bytes downloaded from storage per month. */
    downloadedBytes: number;
  };
  requests: { r2: RequestCounts; s3: RequestCounts };
  r2: { storageClass: R2StorageClass; lines: BillLine[]; total: number };
  s3: { lines: BillLine[]; total: number };
  /** How the figures were counted, in plain sentences (printed under "How this is counted"). */
  notes: string[];
  prices: { checked: string; r2: string; s3: string };
}

const DAY = 86_400;
/** Keys per ListObjectsV2 page: the S3 maximum, which the S3 backend asks for. */
export const LIST_PAGE_KEYS = 1000;

/** Requests of one `store.sweepExpired()` run, by R2 class. */
export interface SweepCounts {
  /** ListObjectsV2 pages of the flat listing of operations/ (1 per 1000 objects, at least 1). */
  listPages: number;
  /** Class A: the listing pages and 1 ListMultipartUploads. */
  classA: number;
  /** Class B: 1 GetObject of metadata.json per operation that has one. Deletes and aborts are free. */
  classB: number;
}

/**
 * One sweep over `objects` objects under operations/, of which `operationsWithMetadata`
 * operations have a metadata.json (store.ts sweepExpired): one flat listing without a delimiter,
 * one metadata read per such operation (expired ones are then deleted: metadata.json first, then
 * the objects the listing returned, with no further listing), then one ListMultipartUploads.
 * Incomplete uploads past 1000 would add pages; the model assumes fewer.
 */
export function sweepRequests(p: { objects: number; operationsWithMetadata: number }): SweepCounts {
  const listPages = Math.max(1, Math.ceil(p.objects / LIST_PAGE_KEYS - 1e-9));
  return { listPages, classA: listPages + 1, classB: p.operationsWithMetadata };
}

/** metadata.json of an operation with `artifacts` entries, as the SDK serializes it. */
export function metadataBytes(artifacts: number, size: number, chunkSize: number): number {
  const at = "2026-01-01T00:00:00.000Z";
  const metadata: OperationMetadata = {
    version: 1,
    operationId: "agent_1755985390841",
    agent: "agent",
    grantee: `0x${"ab".repeat(20)}`,
    createdAt: at,
    expiresAt: at,
    // 12-byte IV and 32-byte key + 16-byte tag, base64.
    wrappedKey: { kid: "default", iv: "A".repeat(16), ciphertext: "A".repeat(64) },
    artifacts: Array.from({ length: artifacts }, (_, i) => ({
      path: `artifact-${String(i + 1).padStart(3, "0")}.bin`,
      size,
      encryptedSize: encryptedSize(size, chunkSize),
      contentType: "application/octet-stream",
      chunkSize,
      createdAt: at,
      // An S3 multipart ETag is the longest kind: 32 hex, '-', part count.
      etag: `${"0".repeat(32)}-1`,
    })),
  };
  return serializeMetadata(metadata).length;
}

/**
 * Monthly cost of running the store, from the requests the SDK really makes (store.ts, metadata.ts):
 * - createOperation: 1 conditional PutObject of metadata.json.
 * - putArtifact: no read (the writer checks existence/expiry/conflicts against the metadata it
 *   wrote itself, and the commit re-checks), the object
 *   upload (1 PutObject up to one part, else CreateMultipartUpload + N UploadPart +
 *   CompleteMultipartUpload), 1 conditional PutObject of metadata.json. Assumes one writer
 *   process (its metadata cache saves a re-read) and no coalescing: concurrent uploads to one
 *   operation share metadata writes, so this is the upper bound.
 * - download: listArtifacts (1 GetObject of metadata.json), then per artifact 1 GetObject of
 *   metadata.json and either 1 GetObject (one chunk) or HeadObject + GetObject.
 * - sweep, every interval (store.sweepExpired): one flat listing of operations/ (no delimiter:
 *   1 ListObjectsV2 per 1000 objects, at least 1), 1 GetObject of metadata.json per operation
 *   it finds (the live ones and those expired since the previous sweep, which it then deletes),
 *   and 1 ListMultipartUploads. Deletes are free.
 * Ignored: 412 retries (rare with one writer), HeadBucket/doctor/usage runs.
 */
export function estimateCost(input: CostInput): CostEstimate {
  const chunkSize = DEFAULT_CHUNK_SIZE;
  const encryptedArtifactBytes = encryptedSize(input.artifactSize, chunkSize);
  const metaBytes = metadataBytes(input.artifactsPerOp, input.artifactSize, chunkSize);
  const bytesPerOperation = input.artifactsPerOp * encryptedArtifactBytes + metaBytes;
  const uploadRequestsPerArtifact =
    encryptedArtifactBytes <= input.partSize ? 1 : Math.ceil(encryptedArtifactBytes / input.partSize) + 2;
  const retentionDays = input.retentionSeconds / DAY;
  const sweeping = input.sweepIntervalSeconds > 0;
  // Without a sweep nothing deletes an expired operation but the lifecycle rule (retention + 1 day).
  const storedDays = sweeping ? retentionDays : retentionDays + 1;

  const writesClassA = input.opsPerMonth * (1 + input.artifactsPerOp * (uploadRequestsPerArtifact + 1));
  // Uploads check against the metadata the writer process itself wrote (it created the operation): no reads.
  const writesClassB = 0;
  const perDownload = 1 + (input.artifactSize <= chunkSize ? 1 : 2);
  const downloadsClassB = input.opsPerMonth * input.downloads * (1 + input.artifactsPerOp * perDownload);
  const downloadedBytes = input.opsPerMonth * input.downloads * input.artifactsPerOp * encryptedArtifactBytes;

  const requests = (monthDays: number) => {
    const live = (input.opsPerMonth * storedDays) / monthDays;
    const sweeps = sweeping ? (monthDays * DAY) / input.sweepIntervalSeconds : 0;
    // Each sweep also finds the operations that expired since the previous one (it reads their
    // metadata.json, then deletes them): over a month, every operation is read once more.
    const seen = sweeping ? live + input.opsPerMonth / sweeps : 0;
    const objects = seen * (input.artifactsPerOp + 1);
    const perSweep = sweepRequests({ objects, operationsWithMetadata: seen });
    const sweepA = Math.round(sweeps * perSweep.classA);
    const sweepB = Math.round(sweeps * perSweep.classB);
    return {
      live,
      sweeps,
      perSweep: sweeping ? { ...perSweep, operations: seen, objects } : { listPages: 0, classA: 0, classB: 0, operations: 0, objects: 0 },
      counts: {
        classA: { uploads: writesClassA, sweeps: sweepA, total: writesClassA + sweepA },
        classB: {
          uploads: writesClassB,
          downloads: downloadsClassB,
          sweeps: sweepB,
          total: writesClassB + downloadsClassB + sweepB,
        },
      } satisfies RequestCounts,
    };
  };

  // R2
  const r2 = PRICES.r2;
  const tier = r2[input.storageClass];
  const r2Req = requests(r2.monthDays);
  const billedDays = Math.max(storedDays, tier.minStorageDays);
  const r2GBMonth = (input.opsPerMonth * bytesPerOperation * billedDays) / r2.monthDays / r2.bytesPerGB;
  // Whole billing units; the epsilon keeps float noise (10.000000000001) from costing a unit.
  const up = (x: number) => (x <= 1e-9 ? 0 : Math.ceil(x - 1e-9));
  const storageBillable = up(Math.max(0, r2GBMonth - tier.free.storageGBMonth));
  const aBillable = up(Math.max(0, r2Req.counts.classA.total - tier.free.classA) / 1e6);
  const bBillable = up(Math.max(0, r2Req.counts.classB.total - tier.free.classB) / 1e6);
  const r2Lines: BillLine[] = [
    line("storage", r2GBMonth, "GB-month", tier.free.storageGBMonth, storageBillable, tier.storagePerGBMonth, "GB-month"),
    line("Class A requests", r2Req.counts.classA.total, "requests", tier.free.classA, aBillable, tier.classAPerMillion, "million"),
    line("Class B requests", r2Req.counts.classB.total, "requests", tier.free.classB, bBillable, tier.classBPerMillion, "million"),
  ];
  if (tier.retrievalPerGB > 0) {
    const gb = downloadedBytes / r2.bytesPerGB;
    r2Lines.push(line("data retrieval", gb, "GB", 0, up(gb), tier.retrievalPerGB, "GB"));
  }
  r2Lines.push(line("egress", downloadedBytes / r2.bytesPerGB, "GB", 0, 0, 0, "GB"));

  // S3 Standard
  const s3 = PRICES.s3;
  const s3Req = requests(s3.monthDays);
  const s3GBMonth = (input.opsPerMonth * bytesPerOperation * storedDays) / s3.monthDays / s3.bytesPerGB;
  const egressGB = downloadedBytes / s3.bytesPerGB;
  const egressBillable = Math.max(0, egressGB - s3.freeEgressGBPerMonth);
  const s3Lines: BillLine[] = [
    line("storage", s3GBMonth, "GB-month", 0, s3GBMonth, s3.storagePerGBMonth, "GB-month"),
    line("PUT/LIST requests", s3Req.counts.classA.total, "requests", 0, s3Req.counts.classA.total / 1000, s3.putPer1000, "1000"),
    line("GET/HEAD requests", s3Req.counts.classB.total, "requests", 0, s3Req.counts.classB.total / 1000, s3.getPer1000, "1000"),
    line("egress to the internet", egressGB, "GB", s3.freeEgressGBPerMonth, egressBillable, s3.egressPerGB, "GB"),
  ];

  const writtenGB = (input.opsPerMonth * input.artifactsPerOp * input.artifactSize) / r2.bytesPerGB;

  const sum = (lines: BillLine[]) => round6(lines.reduce((s, l) => s + l.cost, 0));
  const notes = [
    `Storage is billed per GB-month: ${round4(writtenGB)} GB written per month that lives ${round4(storedDays)} days ` +
      `averages ${round4((writtenGB * storedDays) / r2.monthDays)} GB stored (R2 averages daily peaks over 30 days), ` +
      `so a byte costs the monthly price only if it is kept all month.`,
    `Class A counts every request the SDK makes: ${fmt(writesClassA)} for uploads ` +
      `(${input.opsPerMonth} x (1 metadata create + ${input.artifactsPerOp} x (${uploadRequestsPerArtifact} object PUT${uploadRequestsPerArtifact > 1 ? "s" : ""} + 1 metadata update))) ` +
      (sweeping
        ? `and ${fmt(r2Req.counts.classA.sweeps)} for ${fmt(r2Req.sweeps)} sweeps a month (each lists operations/ once, one request per ${fmt(LIST_PAGE_KEYS)} objects: ` +
          `${r2Req.perSweep.listPages} for ${fmt(round4(r2Req.perSweep.objects))} objects, and lists incomplete multipart uploads once).`
        : "and none for sweeps (sweep disabled: the lifecycle rule deletes, a day after expiry)."),
    `Class B counts no reads for uploads (the writer checks against the metadata.json it wrote itself), ${fmt(downloadsClassB)} for downloads ` +
      `(${input.opsPerMonth} x ${input.downloads} x (1 listing + ${input.artifactsPerOp} x (metadata.json + ${perDownload === 2 ? "GET" : "HEAD + GET"}))) ` +
      (sweeping
        ? `and ${fmt(r2Req.counts.classB.sweeps)} for sweeps: each reads the metadata.json of every operation it finds ` +
          `(${fmt(round4(r2Req.live))} live, and ${fmt(round4(r2Req.perSweep.operations - r2Req.live))} expired since the previous sweep, which it deletes).`
        : "and none for sweeps."),
    `Metadata updates are counted once per artifact; concurrent uploads to one operation are coalesced into fewer writes.`,
    `R2 rounds usage up to whole billing units after the free tier (1 GB-month, 1 million requests).`,
    input.storageClass === "infrequent"
      ? `Infrequent Access has no free tier and bills at least 30 days per object: ${round4(storedDays)} days are billed as ${round4(billedDays)}.`
      : `The free tier (10 GB-month, 1M Class A, 10M Class B) applies to Standard storage only.`,
    `S3's largest line is ${largest(s3Lines)}. S3 egress is the encrypted bytes leaving S3 for the server (${fmt(round4(egressGB))} GiB); the first 100 GB a month are free. ` +
      `R2 has no egress fees. S3 ignores the 12-month AWS free tier for new accounts.`,
  ];

  return {
    input,
    derived: {
      encryptedArtifactBytes,
      chunkSize,
      metadataBytes: metaBytes,
      bytesPerOperation,
      uploadRequestsPerArtifact,
      storedDays,
      liveOperations: round4(r2Req.live),
      sweepsPerMonth: { r2: round4(r2Req.sweeps), s3: round4(s3Req.sweeps) },
      perSweep: {
        ...r2Req.perSweep,
        classB: round4(r2Req.perSweep.classB),
        operations: round4(r2Req.perSweep.operations),
        objects: round4(r2Req.perSweep.objects),
      },
      downloadedBytes,
    },
    requests: { r2: r2Req.counts, s3: s3Req.counts },
    r2: { storageClass: input.storageClass, lines: r2Lines, total: sum(r2Lines) },
    s3: { lines: s3Lines, total: sum(s3Lines) },
    notes,
    prices: { checked: PRICES.checked, r2: PRICES.r2.source, s3: PRICES.s3.source },
  };
}

function largest(lines: BillLine[]): string {
  const top = lines.reduce((a, b) => (b.cost > a.cost ? b : a));
  return `${top.item} ($${round6(top.cost)})`;
}

function line(item: string, usage: number, unit: string, free: number, billable: number, price: number, priceUnit: string): BillLine {
  return {
    item,
    usage: round6(usage),
    unit,
    free,
    billable: round6(billable),
    price,
    priceUnit,
    cost: round6(billable * price),
  };
}

const round4 = (x: number) => Math.round(x * 1e4) / 1e4;
const round6 = (x: number) => Math.round(x * 1e6) / 1e6;
const fmt = (x: number) => x.toLocaleString("en-US", { maximumFractionDigits: 4 });

/** The storage figures `usage` prints and the server exports, for `storedBytes` kept all month. */
export interface StorageCost {
  /** Share of R2's free Standard storage (10 GB-month) the bytes use: 1 = all of it. */
  freeTierShare: number;
  /** This month's R2 Standard storage bill if the bytes stay as they are all month (whole GB-months past the free 10). */
  r2Standard: number;
  /** The same bytes on S3 Standard (us-east-1; no free storage, the 12-month trial aside). */
  s3Standard: number;
}

/** This month's storage cost of `storedBytes` (requests not included: see {@link estimateCost}). */
export function storageCost(storedBytes: number): StorageCost {
  const r2 = PRICES.r2.standard;
  const gb = storedBytes / PRICES.r2.bytesPerGB;
  return {
    freeTierShare: gb / r2.free.storageGBMonth,
    // R2 rounds up to whole GB-months after the free 10.
    r2Standard: round6(Math.ceil(Math.max(0, gb - r2.free.storageGBMonth) - 1e-9) * r2.storagePerGBMonth),
    s3Standard: round6((storedBytes / PRICES.s3.bytesPerGB) * PRICES.s3.storagePerGBMonth),
  };
}
