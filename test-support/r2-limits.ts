/**
 * R2's documented rules that no local S3 peer enforces, as a recording proxy in front of moto:
 *
 * - at most one write per second to the same key: PutObject, CopyObject,
 *   CompleteMultipartUpload and DeleteObject within a second of the last accepted write to
 *   that key answer 429 TooManyRequests (R2 error 10058);
 * - If-Match on a key that does not exist answers 412 PreconditionFailed (moto answers 404).
 *
 *   const proxy = await startR2LimitsProxy(motoEndpoint());
 *   // point the store at proxy.url ...
 *   proxy.limits   // { throttled, retried, missingIfMatch, writes }
 */
import { FAKE_AUTHORIZATION } from "./s3.js";
import { startRecordingProxy, type Answer, type RecordedRequest, type RecordingProxy } from "./proxy.js";

/** What the rules did so far. */
export interface R2LimitCounts {
  /** Writes accepted (forwarded, or answered 412 by the If-Match rule). */
  writes: number;
  /** Writes answered 429. */
  throttled: number;
  /** 429s after which the client wrote the same key again (retried). */
  retried: number;
  /** If-Match writes to a missing key answered 412. */
  missingIfMatch: number;
}

export interface R2LimitsProxy extends RecordingProxy {
  limits: R2LimitCounts;
}

/** R2's per-key write limit. */
const WRITE_INTERVAL_MS = 1000;

const TOO_MANY =
  '<?xml version="1.0" encoding="UTF-8"?><Error><Code>TooManyRequests</Code>' +
  "<Message>Reduce your concurrent request rate for the same object.</Message></Error>";
const PRECONDITION =
  '<?xml version="1.0" encoding="UTF-8"?><Error><Code>PreconditionFailed</Code>' +
  "<Message>At least one of the pre-conditions you specified did not hold.</Message></Error>";

/**
 * The object a request writes, as its path-style `/<bucket>/<key>` (still percent-encoded), or
 * undefined when it is not a write to one key.
 */
function writtenKey(r: RecordedRequest): string | undefined {
  const url = new URL(r.path, "http://peer");
  const [, bucket, ...rest] = url.pathname.split("/");
  if (!bucket || rest.join("") === "") return undefined;
  const key = url.pathname;
  const q = url.searchParams;
  if (r.method === "PUT" && !q.has("uploadId") && !q.has("partNumber")) return key; // PutObject, CopyObject
  if (r.method === "POST" && q.has("uploadId")) return key; // CompleteMultipartUpload
  if (r.method === "DELETE" && !q.has("uploadId")) return key; // DeleteObject (not AbortMultipartUpload)
  return undefined;
}

/** Starts a recording proxy to `targetEndpoint` (moto) that enforces the rules above. */
export async function startR2LimitsProxy(targetEndpoint: string): Promise<R2LimitsProxy> {
  const proxy = (await startRecordingProxy(targetEndpoint)) as R2LimitsProxy;
  const limits: R2LimitCounts = { writes: 0, throttled: 0, retried: 0, missingIfMatch: 0 };
  const lastWrite = new Map<string, number>();
  const awaitingRetry = new Map<string, number>();

  const exists = async (key: string): Promise<boolean> => {
    const res = await fetch(`${targetEndpoint}${key}`, { method: "HEAD", headers: { authorization: FAKE_AUTHORIZATION } });
    return res.status !== 404;
  };

  proxy.limits = limits;
  proxy.intercept = async (r): Promise<Answer | undefined> => {
    const key = writtenKey(r);
    if (key === undefined) return undefined;
    limits.retried += awaitingRetry.get(key) ?? 0;
    awaitingRetry.delete(key);
    const now = Date.now();
    if (now - (lastWrite.get(key) ?? -Infinity) < WRITE_INTERVAL_MS) {
      limits.throttled++;
      awaitingRetry.set(key, 1);
      return { status: 429, body: TOO_MANY };
    }
    lastWrite.set(key, now);
    limits.writes++;
    if (r.headers["if-match"] !== undefined && !(await exists(key))) {
      limits.missingIfMatch++;
      return { status: 412, body: PRECONDITION };
    }
    return undefined;
  };
  return proxy;
}
