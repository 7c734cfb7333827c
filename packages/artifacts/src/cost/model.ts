import { DEFAULT_CHUNK_SIZE, encryptedSize } from "../crypto.js";
import { COMPACT_AFTER, entryName, type EntryIndex, serializeEntry } from "../layout-v2.js";
import { serializeMetadata, type MetadataV2 } from "../metadata.js";
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
  classA: { uploads: number; downloads: number; sweeps: number; total: number };
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
    /** What layout 2 stores beside the artifacts of one finished operation. */
    layoutBytes: LayoutBytes;
    /** Every byte one operation keeps stored. */
    bytesPerOperation: number;
    /** Requests to store one artifact's object (1 PutObject, or create + parts + complete); its entry is 1 more. */
    uploadRequestsPerArtifact: number;
    /** Requests of one operation's life by what makes them (R2 classes; S3 counts the same requests). */
    perOperation: {
      /** createOperation (1 PUT), then per artifact the object, the entry (1 PUT) and metadata.json (1 GET) after the commit. */
      uploads: { classA: number; classB: number };
      /** The writer's index.json upkeep on S3/R2: every 32 commits 1 GET, the LIST of the entries so far, 1 PUT. */
      writerIndex: { classA: number; classB: number };
      /** Once, by the first sweep or listing past the 16-minute margin: a GET of each entry the writer's index lacks (fewer than 32), 1 index PUT. */
      indexCompletion: { classA: number; classB: number };
      /** One listing by the grantee: metadata.json, index.json, 1 LIST after the index. */
      listing: { classA: number; classB: number };
      /** One artifact read: metadata.json, index.json (its entry), the object (GET, or HEAD + GET past one chunk). */
      read: { classA: number; classB: number };
    };
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
  /** Class B: 1 GetObject of metadata.json per operation that has one, and of index.json per live one. Deletes and aborts are free. */
  classB: number;
}

/**
 * One sweep over `objects` objects under operations/, of which `operationsWithMetadata`
 * operations have a metadata.json and `liveOperations` of those have not expired (store/sweep.ts):
 * one flat listing without a delimiter, one metadata read per such operation (expired ones are
 * then deleted: metadata.json first, then the objects the listing returned, with no further
 * listing), for each live (layout 2) operation its index.json (its entries' names came with the
 * flat listing: no LIST of its own), then one ListMultipartUploads. Incomplete uploads past 1000 would add pages; the
 * model assumes fewer.
 */
export function sweepRequests(p: { objects: number; operationsWithMetadata: number; liveOperations: number }): SweepCounts {
  const listPages = Math.max(1, Math.ceil(p.objects / LIST_PAGE_KEYS - 1e-9));
  return { listPages, classA: listPages + 1, classB: p.operationsWithMetadata + p.liveOperations };
}

/** Bytes of one finished layout 2 operation besides its artifacts' objects. */
export interface LayoutBytes {
  metadataJson: number;
  /** All its entry objects. */
  entries: number;
  /** index.json listing every entry. */
  index: number;
  total: number;
}

/** What an operation with `artifacts` artifacts of `size` bytes stores besides the objects, as the SDK serializes it (layout 2). */
export function layoutBytes(artifacts: number, size: number, chunkSize: number): LayoutBytes {
  const at = "2026-01-01T00:00:00.000Z";
  const metadata: MetadataV2 = {
    version: 2,
    incarnation: "0".repeat(32),
    operationId: "agent_1755985390841",
    agent: "agent",
    grantee: `0x${"ab".repeat(20)}`,
    createdAt: at,
    expiresAt: at,
    // 12-byte IV and 32-byte key + 16-byte tag, base64.
    wrappedKey: { kid: "default", iv: "A".repeat(16), ciphertext: "A".repeat(64) },
  };
  const entries = Array.from({ length: artifacts }, (_, i) => {
    const path = `artifact-${String(i + 1).padStart(3, "0")}.bin`;
    return {
      name: entryName(Date.parse(at), path),
      path,
      size,
      encryptedSize: encryptedSize(size, chunkSize),
      contentType: "application/octet-stream",
      chunkSize,
      createdAt: at,
      // An S3 multipart ETag is the longest kind: 32 hex, '-', part count.
      etag: `${"0".repeat(32)}-1`,
    };
  });
  const index: EntryIndex = { layout: 2, incarnation: metadata.incarnation, covers: entries.at(-1)?.name ?? "", entries };
  const sizes = {
    metadataJson: serializeMetadata(metadata).length,
    entries: entries.reduce((sum, e) => sum + serializeEntry(e).length, 0),
    index: Buffer.byteLength(`${JSON.stringify(index)}\n`),
  };
  return { ...sizes, total: sizes.metadataJson + sizes.entries + sizes.index };
}


/**
 * Monthly cost of running the store, from the requests the SDK really makes (store.ts,
 * store/upload.ts, layout-v2.ts) for operations in layout 2, the only layout this release
 * creates (layout 1 operations left from an earlier release cost only their remaining days and
 * expire within one retention period):
 * - createOperation: 1 conditional PutObject of metadata.json.
 * - putArtifact: the object (1 PutObject up to one part, else CreateMultipartUpload + N
 *   UploadPart + CompleteMultipartUpload), 1 create-only PutObject of its entry (the commit), then
 *   1 GetObject of metadata.json (the operation is still this incarnation: an upload racing a
 *   delete answers not_found). On S3/R2 the writer also keeps index.json: every 32 commits to an
 *   operation 1 GetObject of it, 1 ListObjects of the entries so far (every entry: within the
 *   16-minute margin `covers` does not move; 1 page per 1000), 1 PutObject. Pacing (one index
 *   write per 2 s per operation) can only skip some: an upper bound.
 * - once per operation, the first sweep (or listing) past the margin GETs each entry the writer's
 *   index lacks (the last n mod 32) and writes the index that covers them all: counted with the
 *   uploads. A sweep within the margin may write it once more.
 * - download: listArtifacts (metadata.json, index.json: Class B; 1 ListObjects after the index:
 *   Class A on R2), then per artifact metadata.json, index.json (its entry) and either 1
 *   GetObject (one chunk) or HeadObject + GetObject. Assumes the index covers the operation (the
 *   grantee downloads 16+ minutes after the uploads, after a sweep or listing wrote it); earlier,
 *   each read also lists the entries.
 * - sweep, every interval (store/sweep.ts): one flat listing of operations/ (no delimiter:
 *   1 ListObjectsV2 per 1000 objects; an operation is 2 n + 2 objects: objects, entries,
 *   metadata.json, index.json), 1 GetObject of metadata.json per operation it finds (the live
 *   ones and those expired since the previous sweep, which it deletes), per live one 1 GetObject
 *   of index.json (its entries' names come with the flat listing), and 1 ListMultipartUploads. Deletes are free.
 * Ignored: 412/429 retries (rare with one writer), HeadBucket/doctor/usage runs.
 */
export function estimateCost(input: CostInput): CostEstimate {
  const chunkSize = DEFAULT_CHUNK_SIZE;
  const n = input.artifactsPerOp;
  const encryptedArtifactBytes = encryptedSize(input.artifactSize, chunkSize);
  const layout = layoutBytes(n, input.artifactSize, chunkSize);
  const bytesPerOperation = n * encryptedArtifactBytes + layout.total;
  const uploadRequestsPerArtifact =
    encryptedArtifactBytes <= input.partSize ? 1 : Math.ceil(encryptedArtifactBytes / input.partSize) + 2;
  const retentionDays = input.retentionSeconds / DAY;
  const sweeping = input.sweepIntervalSeconds > 0;
  // Without a sweep nothing deletes an expired operation but the lifecycle rule (retention + 1 day).
  const storedDays = sweeping ? retentionDays : retentionDays + 1;

  // The writer's index writes: at commit 32 j it lists the 32 j entries so far.
  const writerIndexes = Math.floor(n / COMPACT_AFTER);
  let writerLists = 0;
  for (let j = 1; j <= writerIndexes; j++) writerLists += Math.ceil((COMPACT_AFTER * j) / LIST_PAGE_KEYS);
  const read = 2 + (input.artifactSize <= chunkSize ? 1 : 2);
  const completes = sweeping || input.downloads > 0;
  const perOperation = {
    uploads: { classA: 1 + n * (uploadRequestsPerArtifact + 1), classB: n },
    writerIndex: { classA: writerLists + writerIndexes, classB: writerIndexes },
    indexCompletion: completes && n > 0 ? { classA: 1, classB: n % COMPACT_AFTER } : { classA: 0, classB: 0 },
    listing: { classA: 1, classB: 2 },
    read: { classA: 0, classB: read },
  };
  const ops = input.opsPerMonth;
  const perOpUploadsA = perOperation.uploads.classA + perOperation.writerIndex.classA + perOperation.indexCompletion.classA;
  const perOpUploadsB = perOperation.uploads.classB + perOperation.writerIndex.classB + perOperation.indexCompletion.classB;
  const writesClassA = ops * perOpUploadsA;
  const writesClassB = ops * perOpUploadsB;
  const downloadsClassA = ops * input.downloads * perOperation.listing.classA;
  const downloadsClassB = ops * input.downloads * (perOperation.listing.classB + n * read);
  const downloadedBytes = ops * input.downloads * n * encryptedArtifactBytes;

  const requests = (monthDays: number) => {
    const live = (ops * storedDays) / monthDays;
    const sweeps = sweeping ? (monthDays * DAY) / input.sweepIntervalSeconds : 0;
    // Each sweep also finds the operations that expired since the previous one (it reads their
    // metadata.json, then deletes them): over a month, every operation is read once more.
    const seen = sweeping ? live + ops / sweeps : 0;
    const objects = seen * (2 * n + 2);
    const perSweep = sweepRequests({ objects, operationsWithMetadata: seen, liveOperations: live });
    const sweepA = Math.round(sweeps * perSweep.classA);
    const sweepB = Math.round(sweeps * perSweep.classB);
    return {
      live,
      sweeps,
      perSweep: sweeping ? { ...perSweep, operations: seen, objects } : { listPages: 0, classA: 0, classB: 0, operations: 0, objects: 0 },
      counts: {
        classA: { uploads: writesClassA, downloads: downloadsClassA, sweeps: sweepA, total: writesClassA + downloadsClassA + sweepA },
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
      `(${fmt(ops)} x (1 metadata.json create + ${n} x (${uploadRequestsPerArtifact} object PUT${uploadRequestsPerArtifact > 1 ? "s" : ""} + 1 entry PUT)` +
      `${writerIndexes > 0 ? ` + ${perOperation.writerIndex.classA} for the writer's ${writerIndexes} index.json write${writerIndexes > 1 ? "s" : ""} (one LIST and one PUT every 32 commits)` : ""}` +
      `${perOperation.indexCompletion.classA > 0 ? " + 1 index.json write once the index can cover every entry" : ""})), ` +
      `${fmt(downloadsClassA)} for downloads (${fmt(ops)} x ${input.downloads} listing${input.downloads === 1 ? "" : "s"}: one LIST of the entries after index.json each; LIST is Class A on R2) ` +
      (sweeping
        ? `and ${fmt(r2Req.counts.classA.sweeps)} for ${fmt(r2Req.sweeps)} sweeps a month (each lists operations/ once, one request per ${fmt(LIST_PAGE_KEYS)} objects: ` +
          `${r2Req.perSweep.listPages} for ${fmt(round4(r2Req.perSweep.objects))} objects, entries included, and lists incomplete multipart uploads once).`
        : "and none for sweeps (sweep disabled: the lifecycle rule deletes, a day after expiry)."),
    `Class B counts ${fmt(writesClassB)} reads for uploads (${fmt(ops)} x (${n} metadata.json read${n === 1 ? "" : "s"}, one after each commit` +
      `${writerIndexes > 0 ? ` + ${writerIndexes} index.json read${writerIndexes > 1 ? "s" : ""} by the writer` : ""}` +
      `${perOperation.indexCompletion.classB > 0 ? ` + ${perOperation.indexCompletion.classB} entr${perOperation.indexCompletion.classB > 1 ? "ies" : "y"} the writer's index lacks, read once` : ""})), ` +
      `${fmt(downloadsClassB)} for downloads (${fmt(ops)} x ${input.downloads} x (metadata.json + index.json + ${n} x (metadata.json + index.json + ${read === 3 ? "GET" : "HEAD + GET"}))) ` +
      (sweeping
        ? `and ${fmt(r2Req.counts.classB.sweeps)} for sweeps: each reads the metadata.json of every operation it finds ` +
          `(${fmt(round4(r2Req.live))} live, and ${fmt(round4(r2Req.perSweep.operations - r2Req.live))} expired since the previous sweep, which it deletes) and the index.json of each live one.`
        : "and none for sweeps."),
    `Downloads are counted once the index covers the operation (16 minutes after its uploads, after a sweep or listing wrote it); a read before that also lists the entries (1 Class A more per artifact).`,
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
      layoutBytes: layout,
      bytesPerOperation,
      uploadRequestsPerArtifact,
      perOperation,
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
