/**
 * What only the stricter S3 peer can check: Cloudflare's local R2 simulator verifies SigV4
 * signatures and presigned URLs (moto accepts anything). The S3 backend's answers to a wrong
 * secret and a missing bucket, and presigned GETs that have expired or were tampered with.
 * The backend has no presign function yet, so the presigned URLs are made here with the SDK's
 * presigner directly.
 */
import { GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { S3Backend } from "../src/backends/s3.js";
import { ACCESS_DENIED_HINT } from "../src/backends/s3-errors.js";
import { freshBucketOn, type FreshBucket } from "../../../test-support/s3.js";

let bucket: FreshBucket;
let backend: S3Backend;
const opened: S3Backend[] = [];

function open(storage: Partial<FreshBucket["storage"]> = {}): S3Backend {
  const b = new S3Backend({ ...bucket.storage, ...storage }, { timeoutMs: 10_000, connectTimeoutMs: 2000, maxAttempts: 1 });
  opened.push(b);
  return b;
}

/** An SDK client with the simulator's credentials, configured like the backend's. */
function client(): S3Client {
  const { endpoint, region, accessKeyId, secretAccessKey } = bucket.storage;
  return new S3Client({
    endpoint,
    region,
    forcePathStyle: true,
    credentials: { accessKeyId, secretAccessKey },
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
}

beforeAll(async () => {
  bucket = await freshBucketOn("r2sim", "r2sim-backend");
  backend = open();
});
afterAll(async () => {
  await Promise.all(opened.map((b) => b.close()));
});

describe("S3Backend on the R2 simulator: signatures", () => {
  it("a wrong secret is access denied (SignatureDoesNotMatch) on every call, with the token hint and no secret echoed", async () => {
    await backend.put("operations/sig/metadata.json", Buffer.from("{}"));
    const wrongSecret = "wrong-secret-access-key-for-the-r2-simulator";
    const wrong = open({ secretAccessKey: wrongSecret });
    const where = (what: string) => `storage denied access (SignatureDoesNotMatch) to bucket "${bucket.bucket}" (${what})`;
    for (const [call, what] of [
      [() => wrong.getBytes("operations/sig/metadata.json"), "GetObject operations/sig/metadata.json"],
      [() => wrong.put("operations/sig/other.bin", Buffer.from("x")), "PutObject operations/sig/other.bin"],
      [() => wrong.putConditional("operations/sig/metadata.json", Buffer.from("{}"), { ifNoneMatch: "*" }), "PutObject operations/sig/metadata.json"],
    ] as const) {
      const err = await call().catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "config", message: where(what), hint: ACCESS_DENIED_HINT, details: { s3Code: "SignatureDoesNotMatch", status: 403 } });
      expect(JSON.stringify({ m: (err as Error).message, h: (err as { hint?: string }).hint })).not.toContain(wrongSecret);
    }
    // HEAD answers carry no body, hence no S3 error code: the status decides.
    await expect(wrong.head("operations/sig/metadata.json")).rejects.toMatchObject({
      code: "config",
      message: `storage denied access (HTTP 403) to bucket "${bucket.bucket}" (HeadObject operations/sig/metadata.json)`,
    });
    await expect(wrong.checkBucket()).rejects.toMatchObject({ code: "config", hint: ACCESS_DENIED_HINT });
    // Nothing was written by the refused calls.
    expect(await backend.head("operations/sig/other.bin")).toBeNull();
    expect((await backend.getBytes("operations/sig/metadata.json"))!.body.toString()).toBe("{}");
  });

  it("a bucket the endpoint does not have is a ConfigError naming S3_BUCKET, for HeadBucket and writes", async () => {
    const absent = open({ bucket: "sim-absent" });
    await expect(absent.checkBucket()).rejects.toMatchObject({ code: "config", message: `bucket "sim-absent" does not exist at ${bucket.storage.endpoint}` });
    await expect(absent.put("operations/x/metadata.json", Buffer.from("{}"))).rejects.toMatchObject({
      code: "config",
      details: { s3Code: "NoSuchBucket", status: 404 },
    });
  });

  it("answers If-Match on a missing key with 412, as R2 documents (moto answers 404)", async () => {
    // Through the backend this is PreconditionFailedError either way; here is the raw answer.
    const c = client();
    try {
      const err = await c
        .send(new PutObjectCommand({ Bucket: bucket.bucket, Key: "operations/none/metadata.json", Body: "{}", IfMatch: '"0123456789abcdef0123456789abcdef"' }))
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ name: "PreconditionFailed", $metadata: { httpStatusCode: 412 } });
    } finally {
      c.destroy();
    }
  });
});

describe("presigned GETs on the R2 simulator (moto accepts expired and tampered ones)", () => {
  const key = "operations/presign/artifacts/report.bin";
  const body = Buffer.from("presigned bytes");
  let c: S3Client;
  beforeAll(async () => {
    await backend.put(key, body);
    c = client();
  });
  afterAll(() => c?.destroy());

  const presign = (options: { expiresIn: number; signingDate?: Date }, k = key) =>
    getSignedUrl(c, new GetObjectCommand({ Bucket: bucket.bucket, Key: k }), options);

  it("a fresh one reads the object", async () => {
    const res = await fetch(await presign({ expiresIn: 60 }));
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer())).toEqual(body);
  });

  it("an expired one is 403", async () => {
    // Signed an hour ago, valid for a minute.
    const url = await presign({ expiresIn: 60, signingDate: new Date(Date.now() - 3600_000) });
    const res = await fetch(url);
    expect(res.status).toBe(403);
    const text = await res.text();
    expect(text).toContain("<Code>ExpiredRequest</Code>");
    expect(text).not.toContain("presigned bytes");
  });

  it("a tampered one is 403: another key, a longer expiry, or a changed signature", async () => {
    await backend.put("operations/presign/artifacts/other.bin", Buffer.from("not yours"));
    const url = new URL(await presign({ expiresIn: 60 }));
    const otherKey = new URL(url);
    otherKey.pathname = otherKey.pathname.replace("report.bin", "other.bin");
    const longer = new URL(url);
    longer.searchParams.set("X-Amz-Expires", "604800");
    const signature = new URL(url);
    const sig = signature.searchParams.get("X-Amz-Signature")!;
    signature.searchParams.set("X-Amz-Signature", `${sig.slice(0, -1)}${sig.endsWith("0") ? "1" : "0"}`);
    for (const tampered of [otherKey, longer, signature]) {
      const res = await fetch(tampered);
      expect({ url: tampered.search.slice(0, 40), status: res.status }).toEqual({ url: tampered.search.slice(0, 40), status: 403 });
      expect(await res.text()).not.toContain("not yours");
    }
  });
});
