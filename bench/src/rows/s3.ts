// Row 8: the SDK's upload path to S3 against a plain lib-storage Upload, both to a loopback sink.
import { createReadStream } from "node:fs";
import { Agent } from "node:http";
import { join } from "node:path";
import { S3Client } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { createArtifactStore, loadConfig } from "@personal-server/artifacts";
import { benchScript, childEnv, startNode } from "../child.js";
import { alternate, expectBytes, formatSize, MiB, throughputRow, type BenchContext, type RowResult } from "../harness.js";
import { BENCH_GRANTEE, benchMasterKey } from "../sdk.js";
import { bigInput, bigSize, withOperation } from "./local.js";

/** The S3 backend's defaults (packages/artifacts/src/backends/s3.ts): 8 MiB parts, 2 in flight. */
const PART_SIZE = 8 * MiB;
const QUEUE_SIZE = 2;
const BUCKET = "bench";
/** Made-up credentials: the sink checks no signatures. */
const ACCESS_KEY = "bench-access-key";
const SECRET_KEY = "bench-secret-key-not-a-real-one";

export async function row8(ctx: BenchContext): Promise<RowResult> {
  const size = bigSize(ctx);
  const input = await bigInput(ctx);
  const sink = await startNode(["--import", import.meta.resolve("tsx"), benchScript("s3-sink.ts")], {
    cwd: ctx.dir,
    env: childEnv({}),
    ready: /^listening (\d+)$/m,
  });
  const endpoint = `http://127.0.0.1:${sink.ready[1]}`;
  const store = createArtifactStore(
    loadConfig({
      S3_ENDPOINT: endpoint,
      S3_REGION: "us-east-1",
      S3_BUCKET: BUCKET,
      S3_ACCESS_KEY_ID: ACCESS_KEY,
      S3_SECRET_ACCESS_KEY: SECRET_KEY,
      ARTIFACTS_MASTER_KEY: benchMasterKey(),
      ARTIFACTS_LOCAL_DIR: join(ctx.dir, "r8-local"),
      ARTIFACTS_MAX_BYTES: String(8 * 1024 ** 3),
    }),
  );
  // Configured like the SDK's client (checksums only when required, path style, keep-alive),
  // so the comparison is about what the SDK adds, not about client settings.
  const client = new S3Client({
    endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY },
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    requestHandler: { httpAgent: new Agent({ keepAlive: true, maxSockets: 50 }) },
  });
  const grantee = BENCH_GRANTEE;
  try {
    const times = await alternate(
      ctx,
      "row 8",
      {
        prepare: () => withOperation(store, grantee),
        run: async (op) => {
          const info = await store.putArtifact(op, "data.bin", createReadStream(input));
          expectBytes("SDK put", info.size, size);
        },
      },
      {
        run: async (_p, i) => {
          const upload = new Upload({
            client,
            params: { Bucket: BUCKET, Key: `plain/${i}.bin`, Body: createReadStream(input) },
            partSize: PART_SIZE,
            queueSize: QUEUE_SIZE,
          });
          const out = await upload.done();
          if (!out.ETag) throw new Error("lib-storage Upload returned no ETag");
        },
      },
    );
    return throughputRow(
      {
        id: "8",
        figure: `S3 upload client overhead (${formatSize(size)}): SDK vs plain lib-storage Upload, loopback sink`,
        unit: "MiB/s",
        target: { kind: "min-ratio", ratio: 0.95 },
        note:
          "sink: a node:http S3 endpoint in its own process that discards part bodies; " +
          "ours: store.putArtifact(createReadStream(file)) on kind s3 (encrypt, multipart via the S3 backend, metadata.json read + conditional writes); " +
          `baseline: new Upload({client, params: {Body: createReadStream(file)}, partSize: ${PART_SIZE / MiB} MiB, queueSize: ${QUEUE_SIZE}}) ` +
          "(the S3 backend's part size and queue size; client with the same checksum, path-style and keep-alive settings)",
      },
      size / MiB,
      times,
    );
  } finally {
    client.destroy();
    await store.close();
    await sink.stop();
  }
}
