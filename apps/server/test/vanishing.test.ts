// An operation deleted or swept (by this replica or another) after a download was authorized but
// before its bytes were read answers what the operation now is (404), never a 500 "integrity"
// error that would read as tampering. The storage goes through a recording proxy that, right
// after the download's metadata.json read, answers every GET and HEAD NoSuchKey and every listing
// empty: as storage looks once the sweep on another replica went through.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRecordingProxy, type RecordingProxy } from "../../../test-support/proxy.js";
import { motoEndpoint } from "../../../test-support/s3.js";
import { patternBytes, rawRequest, signedFor, startTestServer, wallet, type TestServer } from "./helpers.js";

const NO_SUCH_KEY = "<?xml version='1.0' encoding='UTF-8'?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>";
const EMPTY_LIST =
  "<?xml version='1.0' encoding='UTF-8'?><ListBucketResult xmlns='http://s3.amazonaws.com/doc/2006-03-01/'><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>";

describe("an operation that vanishes while a download starts", () => {
  let proxy: RecordingProxy;
  let s: TestServer;
  beforeAll(async () => {
    proxy = await startRecordingProxy(motoEndpoint());
    s = await startTestServer("moto", { S3_ENDPOINT: proxy.url });
  });
  afterAll(async () => {
    await s?.close();
    await proxy?.close();
  });

  for (const [label, size] of [["one-chunk", 3000], ["streamed (two chunks)", 1024 * 1024 + 7], ["ranged", 1024 * 1024 + 7]] as const) {
    it(`${label}: 404 like any missing operation, not 500`, async () => {
      const grantee = wallet();
      const { operationId } = await s.writer.createOperation({ grantee: grantee.address });
      await s.writer.upload(operationId, "a.bin", patternBytes(size, 3));
      const target = `/api/v1/operations/${operationId}/artifacts/a.bin`;
      const authorization = await signedFor(s, grantee, "GET", target);
      // The download's metadata.json read is forwarded; everything after it finds nothing.
      let first = true;
      proxy.intercept = (request) => {
        if (first) {
          first = false;
          return undefined;
        }
        return request.path.includes("list-type=2")
          ? { status: 200, body: EMPTY_LIST, headers: { "content-type": "application/xml" } }
          : { status: 404, body: NO_SUCH_KEY, headers: { "content-type": "application/xml" } };
      };
      try {
        const res = await rawRequest(s.url, "GET", target, { authorization, ...(label === "ranged" ? { range: "bytes=10-20" } : {}) });
        expect({ status: res.status, body: res.json }).toEqual({
          status: 404,
          body: { error: { code: "not_found", message: `operation ${operationId} not found or not shared with this wallet` } },
        });
      } finally {
        proxy.intercept = undefined;
      }
      const after = proxy.requests.slice(-4).map((r) => `${r.method} ${r.outcome}`);
      expect(after).toContain("GET answered");
    });
  }
});
