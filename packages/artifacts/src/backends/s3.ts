/**
 * The S3 backend (AWS S3, MinIO, moto, Cloudflare R2). With `s3-client.ts` and `s3-errors.ts`,
 * the only code that imports `@aws-sdk/*`; `openBackend` loads it on demand.
 */
import { PassThrough, Readable, Transform } from "node:stream";
import {
  AbortMultipartUploadCommand,
  DeleteObjectsCommand,
  GetBucketCorsCommand,
  GetBucketLifecycleConfigurationCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
  type GetBucketCorsCommandOutput,
  type GetBucketLifecycleConfigurationCommandOutput,
  type GetObjectCommandOutput,
  type ListMultipartUploadsCommandOutput,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { ArtifactError, StorageUnavailableError } from "../errors.js";
import { createS3Client, type RemoteStorageConfig } from "./s3-client.js";
import { describe, notImplemented, S3ErrorMapper, type Described } from "./s3-errors.js";
import {
  PreconditionFailedError,
  type Backend,
  type BackendTimeouts,
  type BucketCheck,
  type ByteRange,
  type LifecycleRule,
  type NotSupported,
  type ListOptions,
  type ObjectInfo,
  type WriteCondition,
  type PutOptions,
} from "./types.js";

/** Options of `S3Backend`: the timeouts from config, plus knobs tests and benchmarks turn. */
export interface S3BackendOptions extends BackendTimeouts {
  /** Multipart part size in bytes (at least 5 MiB). Default 8 MiB. */
  partSize?: number;
  /** Parts uploaded in parallel per upload; memory per upload is about (queueSize + 1) * partSize. Default 2. */
  queueSize?: number;
  /** MaxKeys of each ListObjectsV2 page. Default 1000 (the S3 maximum). */
  listPageSize?: number;
  /** Keys per DeleteObjects request (at most 1000, the S3 limit). Default 1000. */
  deleteBatchSize?: number;
  /** Attempts per request, first one included (SDK standard retry, all within `timeoutMs`). Default 3. */
  maxAttempts?: number;
}

const DEFAULT_PART_SIZE = 8 * 1024 * 1024;
const MIN_PART_SIZE = 5 * 1024 * 1024; // S3's minimum for every part but the last

function unquote(etag: string | undefined): string {
  return (etag ?? "").replace(/^W\//, "").replace(/^"|"$/g, "");
}

/**
 * Storage on an S3-compatible bucket. Each call runs under a deadline over all SDK retries: a
 * hung store fails it with `StorageUnavailableError` after about `timeoutMs`, instead of
 * `maxAttempts` times that (the client's own settings are in `s3-client.ts`).
 */
export class S3Backend implements Backend {
  readonly kind: "s3" | "r2";
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly timeoutMs: number;
  private readonly partSize: number;
  private readonly queueSize: number;
  private readonly listPageSize: number;
  private readonly deleteBatchSize: number;
  private readonly errors: S3ErrorMapper;

  constructor(storage: RemoteStorageConfig, opts: S3BackendOptions) {
    this.kind = storage.kind;
    this.bucket = storage.bucket;
    this.errors = new S3ErrorMapper(storage, opts.timeoutMs);
    this.timeoutMs = opts.timeoutMs;
    this.partSize = Math.max(opts.partSize ?? DEFAULT_PART_SIZE, MIN_PART_SIZE);
    this.queueSize = opts.queueSize ?? 2;
    this.listPageSize = opts.listPageSize ?? 1000;
    this.deleteBatchSize = Math.min(opts.deleteBatchSize ?? 1000, 1000);
    this.client = createS3Client(storage, opts);
  }

  // ---- plumbing ---------------------------------------------------------------------------

  /**
   * Runs one storage call under a deadline of `timeoutMs` covering all its SDK retries, and maps
   * failures to SDK errors. `expected` turns known answers (NoSuchKey, 412, ...) into results or
   * other errors first; it is not consulted once the deadline has passed.
   */
  private async call<T>(
    op: string,
    key: string | undefined,
    run: (signal: AbortSignal) => Promise<T>,
    expected?: (d: Described) => { value: T } | undefined,
  ): Promise<T> {
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), this.timeoutMs);
    try {
      return await run(deadline.signal);
    } catch (e) {
      if (e instanceof ArtifactError || e instanceof PreconditionFailedError) throw e;
      if (!deadline.signal.aborted && expected) {
        const handled = expected(describe(e));
        if (handled) return handled.value;
      }
      throw this.errors.map(e, op, key, deadline.signal.aborted);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Body of a GetObject answer, with transport failures mid-stream mapped like the rest, and
   * the socket released if the reader stops early.
   */
  private wrapBody(body: Readable, key: string): Readable {
    const out = new PassThrough({ highWaterMark: 1 << 20 });
    body.on("error", (e) => out.destroy(e instanceof ArtifactError ? e : (this.errors.map(e, "GetObject", key, false) as Error)));
    out.on("close", () => {
      if (!body.destroyed) body.destroy();
    });
    body.pipe(out);
    return out;
  }

  // ---- reads ------------------------------------------------------------------------------

  private rangeHeader(range: ByteRange | undefined): string | undefined {
    return range === undefined ? undefined : `bytes=${range.start}-${range.end}`;
  }

  async getStream(key: string, range?: ByteRange): Promise<Readable | null> {
    const res = await this.call<GetObjectCommandOutput | null | "empty">(
      "GetObject",
      key,
      (abortSignal) => this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: this.rangeHeader(range) }), { abortSignal }),
      (d) => (d.code === "NoSuchKey" ? { value: null } : d.code === "InvalidRange" ? { value: "empty" as const } : undefined),
    );
    if (res === null) return null;
    // 416: the range starts at or past the end of an existing object (see ByteRange).
    if (res === "empty") return Readable.from([]);
    return this.wrapBody(res.Body as Readable, key);
  }

  async getBytes(key: string, range?: ByteRange): Promise<{ body: Buffer; etag: string; size: number } | null> {
    const res = await this.call<{ body: Buffer; etag: string; size: number } | null | "past-end">(
      "GetObject",
      key,
      async (abortSignal) => {
        const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: this.rangeHeader(range) }), {
          abortSignal,
        });
        // Read under the same deadline: these are small objects (metadata, headers).
        const body = Buffer.from(await out.Body!.transformToByteArray());
        // A ranged answer names the whole object's length in Content-Range (bytes a-b/size).
        const total = /\/(\d+)$/.exec(out.ContentRange ?? "")?.[1];
        return { body, etag: unquote(out.ETag), size: total === undefined ? body.length : Number(total) };
      },
      (d) => (d.code === "NoSuchKey" ? { value: null } : d.code === "InvalidRange" ? { value: "past-end" } : undefined),
    );
    if (res !== "past-end") return res;
    // 416: the object exists but the range starts at or past its end (see ByteRange).
    const info = await this.head(key);
    return info === null ? null : { body: Buffer.alloc(0), etag: info.etag, size: info.size };
  }

  async head(key: string): Promise<ObjectInfo | null> {
    // HeadObject answers a bare 404 for a missing bucket too: that reads as "absent" here, and
    // checkBucket (doctor) or any other call reports the bucket.
    return this.call(
      "HeadObject",
      key,
      async (abortSignal) => {
        const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }), { abortSignal });
        return { key, size: res.ContentLength ?? 0, etag: unquote(res.ETag), lastModified: res.LastModified ?? new Date(0) };
      },
      (d) => (d.code === "NotFound" || d.code === "NoSuchKey" || d.status === 404 ? { value: null } : undefined),
    );
  }

  async presignGet(key: string, options: { expiresInSeconds: number; signedAt: Date }): Promise<string> {
    return getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key: key }), {
      expiresIn: options.expiresInSeconds,
      signingDate: options.signedAt,
    });
  }

  // ---- writes -----------------------------------------------------------------------------

  async put(key: string, body: Buffer | Readable, options: PutOptions = {}): Promise<{ etag: string; size: number }> {
    // lib-storage spreads its params into PutObject and CompleteMultipartUpload, so If-None-Match
    // guards both the single-request and the multipart path.
    const condition = options.ifAbsent ? { IfNoneMatch: "*" } : {};
    if (Buffer.isBuffer(body) && body.length <= this.partSize) {
      return { etag: await this.putObject(key, body, condition), size: body.length };
    }

    let size = 0;
    let bodyError: unknown;
    let source: Buffer | Readable = body;
    if (!Buffer.isBuffer(body)) {
      const counter = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          size += chunk.length;
          callback(null, chunk);
        },
      });
      // pipe() does not forward errors: without this, lib-storage would wait forever.
      body.on("error", (e) => {
        bodyError ??= e;
        counter.destroy(e);
      });
      body.pipe(counter);
      source = counter;
    } else {
      size = body.length;
    }

    const state = { unavailable: false };
    const upload = new Upload({
      client: this.uploadClient(key, state),
      params: { Bucket: this.bucket, Key: key, Body: source, ContentType: "application/octet-stream", ...condition },
      partSize: this.partSize,
      queueSize: this.queueSize,
      // On failure lib-storage aborts the multipart upload, so no parts are left billed.
      leavePartsOnError: false,
    });
    try {
      const res = await upload.done();
      return { etag: unquote(res.ETag), size };
    } catch (e) {
      if (!Buffer.isBuffer(body) && !body.destroyed) body.destroy();
      if (bodyError !== undefined) throw bodyError;
      const mapped = e instanceof ArtifactError ? e : this.errors.map(e, "Upload", key, false);
      if (mapped instanceof ArtifactError && options.ifAbsent) {
        // CompleteMultipartUpload answered 412: someone else's object is at this key.
        const d = mapped.details ?? {};
        if (d.status === 412 || d.s3Code === "PreconditionFailed" || d.s3Code === "ConditionalRequestConflict") {
          throw new PreconditionFailedError(key, typeof d.status === "number" ? d.status : undefined);
        }
      }
      throw mapped;
    }
  }

  /**
   * The client as lib-storage sees it: every request it makes goes through `call` (deadline,
   * error mapping). Once storage has stopped answering, the closing AbortMultipartUpload is
   * sent without waiting for it: the caller gets its error after about one timeout, and
   * `sweepTemporary` removes the upload if the abort never arrives.
   */
  private uploadClient(key: string, state: { unavailable: boolean }): S3Client {
    const send = (command: { constructor: { name: string } }): Promise<unknown> => {
      const op = command.constructor.name.replace(/Command$/, "");
      const attempt = this.call(op, key, (abortSignal) =>
        (this.client.send as (c: unknown, o: { abortSignal: AbortSignal }) => Promise<unknown>)(command, { abortSignal }),
      ).catch((e: unknown) => {
        if (e instanceof StorageUnavailableError) state.unavailable = true;
        throw e;
      });
      if (command instanceof AbortMultipartUploadCommand && state.unavailable) {
        attempt.catch(() => {});
        return Promise.resolve({});
      }
      return attempt;
    };
    return Object.create(this.client, { send: { value: send } }) as S3Client;
  }

  async putConditional(key: string, body: Buffer, condition: WriteCondition): Promise<{ etag: string }> {
    const headers = "ifNoneMatch" in condition ? { IfNoneMatch: "*" } : { IfMatch: `"${unquote(condition.ifMatch)}"` };
    return { etag: await this.putObject(key, body, headers) };
  }

  /** One PutObject; with a condition, a refusal is `PreconditionFailedError`. Returns the ETag. */
  private async putObject(key: string, body: Buffer, condition: { IfNoneMatch?: string; IfMatch?: string }): Promise<string> {
    const conditional = condition.IfNoneMatch !== undefined || condition.IfMatch !== undefined;
    const res = await this.call(
      "PutObject",
      key,
      (abortSignal) =>
        this.client.send(
          new PutObjectCommand({
            Bucket: this.bucket,
            Key: key,
            Body: body,
            ContentLength: body.length,
            ContentType: "application/octet-stream",
            ...condition,
          }),
          { abortSignal },
        ),
      (d) => {
        // 412: the condition does not hold. 404 NoSuchKey: If-Match on an object that is gone.
        // 409 ConditionalRequestConflict: S3 saw a concurrent conditional write; re-read and retry.
        const refused = d.status === 412 || d.code === "PreconditionFailed" || d.code === "NoSuchKey" || d.code === "ConditionalRequestConflict";
        if (conditional && refused) throw new PreconditionFailedError(key, d.status);
        return undefined;
      },
    );
    return unquote(res.ETag);
  }

  async delete(keys: readonly string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += this.deleteBatchSize) {
      const batch = keys.slice(i, i + this.deleteBatchSize);
      const res = await this.call("DeleteObjects", batch[0], (abortSignal) =>
        this.client.send(
          new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }),
          { abortSignal },
        ),
      );
      const failed = (res.Errors ?? []).filter((x) => x.Code !== "NoSuchKey");
      if (failed.length > 0) {
        const first = failed[0]!;
        const err = Object.assign(new Error(first.Message ?? first.Code ?? "delete failed"), {
          name: first.Code ?? "DeleteError",
          Code: first.Code,
          $metadata: { httpStatusCode: first.Code === "AccessDenied" ? 403 : 500 },
        });
        throw this.errors.map(err, "DeleteObjects", first.Key, false);
      }
    }
  }

  // ---- listings ---------------------------------------------------------------------------

  async *list(prefix: string, options: ListOptions = {}): AsyncIterable<ObjectInfo> {
    let token: string | undefined;
    do {
      const res = await this.call("ListObjectsV2", prefix, (abortSignal) =>
        this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: prefix,
            StartAfter: options.startAfter,
            ContinuationToken: token,
            MaxKeys: this.listPageSize,
          }),
          { abortSignal },
        ),
      );
      for (const o of res.Contents ?? []) {
        if (o.Key === undefined) continue;
        yield { key: o.Key, size: o.Size ?? 0, etag: unquote(o.ETag), lastModified: o.LastModified ?? new Date(0) };
      }
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  async *listPrefixes(prefix: string): AsyncIterable<string> {
    let token: string | undefined;
    do {
      const res = await this.call("ListObjectsV2", prefix, (abortSignal) =>
        this.client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, Delimiter: "/", ContinuationToken: token, MaxKeys: this.listPageSize }),
          { abortSignal },
        ),
      );
      for (const p of res.CommonPrefixes ?? []) if (p.Prefix !== undefined) yield p.Prefix;
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  // ---- maintenance ------------------------------------------------------------------------

  /**
   * Aborts multipart uploads under `prefix` initiated before `olderThan` (crashed or cut-off
   * uploads); `"not_supported"` when the endpoint does not implement ListMultipartUploads.
   */
  async sweepTemporary(prefix: string, olderThan: Date): Promise<number | NotSupported> {
    let removed = 0;
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      const res = await this.call<ListMultipartUploadsCommandOutput | NotSupported>(
        "ListMultipartUploads",
        prefix,
        (abortSignal) =>
          this.client.send(
            new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: prefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }),
            { abortSignal },
          ),
        notImplemented,
      );
      if (res === "not_supported") return res;
      for (const u of res.Uploads ?? []) {
        if (u.Key === undefined || u.UploadId === undefined || u.Initiated === undefined) continue;
        if (u.Initiated.getTime() >= olderThan.getTime()) continue;
        const aborted = await this.call(
          "AbortMultipartUpload",
          u.Key,
          async (abortSignal) => {
            await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: u.Key, UploadId: u.UploadId }), { abortSignal });
            return true;
          },
          (d) => (d.code === "NoSuchUpload" ? { value: false } : undefined),
        );
        if (aborted) removed++;
      }
      if (!res.IsTruncated) break;
      keyMarker = res.NextKeyMarker;
      uploadIdMarker = res.NextUploadIdMarker;
    }
    return removed;
  }

  async checkBucket(): Promise<BucketCheck> {
    let date: string | undefined;
    const command = new HeadBucketCommand({ Bucket: this.bucket });
    // The SDK drops response headers it does not model; the Date header is read off the raw response.
    command.middlewareStack.add(
      (next) => async (args) => {
        const out = await next(args);
        date = (out.response as { headers?: Record<string, string> } | undefined)?.headers?.date;
        return out;
      },
      { step: "deserialize", name: "psaCaptureDate" },
    );
    await this.call("HeadBucket", undefined, (abortSignal) => this.client.send(command, { abortSignal }));
    const serverDate = date === undefined ? undefined : new Date(date);
    return { serverDate: serverDate === undefined || Number.isNaN(serverDate.getTime()) ? undefined : serverDate };
  }

  /** Enabled expiration rules only: a disabled rule expires nothing. */
  async getLifecycleRules(): Promise<LifecycleRule[] | "not_visible" | NotSupported> {
    const res = await this.call<GetBucketLifecycleConfigurationCommandOutput | null | "not_visible" | NotSupported>(
      "GetBucketLifecycleConfiguration",
      undefined,
      (abortSignal) => this.client.send(new GetBucketLifecycleConfigurationCommand({ Bucket: this.bucket }), { abortSignal }),
      (d) => {
        if (d.code === "NoSuchLifecycleConfiguration") return { value: null };
        if (d.code === "AccessDenied" || d.status === 403) return { value: "not_visible" as const };
        return notImplemented(d);
      },
    );
    if (res === null) return [];
    if (res === "not_visible" || res === "not_supported") return res;
    return (res.Rules ?? [])
      .filter((r) => r.Status === "Enabled")
      .map((r) => {
        const legacy = (r as { Prefix?: string }).Prefix;
        return {
          id: r.ID ?? "",
          prefix: r.Filter?.Prefix ?? r.Filter?.And?.Prefix ?? legacy ?? "",
          expirationDays: r.Expiration?.Days,
        };
      });
  }

  async getCorsOrigins(): Promise<string[] | "not_visible" | NotSupported> {
    const res = await this.call<GetBucketCorsCommandOutput | null | "not_visible" | NotSupported>(
      "GetBucketCors",
      undefined,
      (abortSignal) => this.client.send(new GetBucketCorsCommand({ Bucket: this.bucket }), { abortSignal }),
      (d) => {
        if (d.code === "NoSuchCORSConfiguration") return { value: null };
        if (d.code === "AccessDenied" || d.status === 403) return { value: "not_visible" as const };
        return notImplemented(d);
      },
    );
    if (res === null) return [];
    if (res === "not_visible" || res === "not_supported") return res;
    return [...new Set((res.CORSRules ?? []).flatMap((r) => r.AllowedOrigins ?? []))];
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}
