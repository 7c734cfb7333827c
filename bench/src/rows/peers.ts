// Rows 3 and 4: the SDK's encryption against other encryption tools on the same files.
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { open, readFile, rename, unlink } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import type { ArtifactStore } from "@personal-server/artifacts";
import {
  alternate,
  drain,
  expectBytes,
  formatSize,
  MiB,
  throughputRow,
  writeRandomFile,
  type BenchContext,
  type RowResult,
  type Target,
} from "../harness.js";
import { BENCH_GRANTEE, localStore } from "../sdk.js";
import { bigInput, bigSize, withOperation } from "./local.js";

const OURS_ENCRYPT =
  "ours: store.putArtifact(createReadStream(file)) on the local backend (AES-256-GCM, 1 MiB chunks; temp file, fsync, rename, metadata.json)";
const OURS_DECRYPT = "ours: (await store.getArtifact(...)).body read to the end";

/** The SDK's side of an encrypt comparison: one operation per run, removed after it. */
function sdkEncrypt(store: ArtifactStore, grantee: string, input: string, size: number, readChunk?: number) {
  return {
    prepare: () => withOperation(store, grantee),
    run: async (op: string) => {
      const info = await store.putArtifact(op, "data.bin", createReadStream(input, { highWaterMark: readChunk }));
      expectBytes("SDK put", info.size, size);
    },
    cleanup: (op: string) => store.deleteOperation(op),
  };
}

/** The SDK's side of a decrypt comparison: one stored artifact read again and again. */
async function sdkDecrypt(store: ArtifactStore, grantee: string, input: string, size: number) {
  const op = await withOperation(store, grantee);
  await store.putArtifact(op, "data.bin", createReadStream(input));
  return {
    run: async () => {
      const { body } = await store.getArtifact(op, "data.bin", { requester: grantee });
      expectBytes("SDK get", await drain(body), size);
    },
  };
}

/** fsync + rename, so a baseline that writes a file has the durability the SDK's writes have. */
async function durable(tmp: string, dest: string): Promise<void> {
  const fh = await open(tmp, "r+");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, dest);
}

/**
 * Row 3: AWS Encryption SDK for JavaScript (raw AES keyring, default algorithm suite and frame
 * size) encrypting and decrypting the same file. It runs at about 85 MB/s here, so this row uses
 * a smaller file than the 1 GiB rows.
 */
export async function row3(ctx: BenchContext): Promise<RowResult[]> {
  const size = ctx.quick ? 4 * MiB : 256 * MiB;
  const input = join(ctx.dir, `r3-input-${size}.bin`);
  await writeRandomFile(input, size);
  const store = localStore(join(ctx.dir, "r3-store"));
  const grantee = BENCH_GRANTEE;
  // Loaded here, not at the top: row 4 shares this module, and the AWS Encryption SDK (~7 MB of
  // heap) would change V8's collection pacing for the SDK's side of row 4 (see docs/performance.md, Findings).
  const { buildClient, CommitmentPolicy, RawAesKeyringNode, RawAesWrappingSuiteIdentifier } = await import("@aws-crypto/client-node");
  const { encryptStream, decryptStream } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
  const keyring = new RawAesKeyringNode({
    keyName: "bench-key",
    keyNamespace: "bench",
    unencryptedMasterKey: new Uint8Array(randomBytes(32)),
    wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
  });
  const esdkEncrypt = async (dest: string) => {
    const tmp = `${dest}.tmp`;
    await pipeline(createReadStream(input), encryptStream(keyring), createWriteStream(tmp, { flags: "wx", mode: 0o600 }));
    await durable(tmp, dest);
  };
  const target: Target = { kind: "min-ratio", ratio: 4 };
  const peer = "AWS Encryption SDK for JavaScript (@aws-crypto/client-node 5, raw AES keyring, default suite and frame size)";
  try {
    const enc = await alternate(ctx, "row 3 encrypt", sdkEncrypt(store, grantee, input, size), {
      prepare: async (i) => join(ctx.dir, `r3-esdk-${i}.bin`),
      run: esdkEncrypt,
      cleanup: (dest) => unlink(dest),
    });
    const ciphertext = join(ctx.dir, "r3-esdk.bin");
    await esdkEncrypt(ciphertext);
    const dec = await alternate(ctx, "row 3 decrypt", await sdkDecrypt(store, grantee, input, size), {
      run: async () => {
        const plain = createReadStream(ciphertext).pipe(decryptStream(keyring));
        expectBytes("AWS Encryption SDK decrypt", await drain(plain), size);
      },
    });
    const unit = "MiB/s";
    return [
      throughputRow(
        {
          id: "3a",
          figure: `SDK encrypt vs AWS Encryption SDK encrypt (${formatSize(size)}: the peer runs ~85 MB/s)`,
          unit,
          target,
          note: `${OURS_ENCRYPT}; baseline: ${peer}: pipeline(createReadStream, encryptStream(keyring), createWriteStream) then fsync + rename`,
        },
        size / MiB,
        enc,
      ),
      throughputRow(
        {
          id: "3b",
          figure: `SDK decrypt vs AWS Encryption SDK decrypt (${formatSize(size)})`,
          unit,
          target,
          note: `${OURS_DECRYPT}; baseline: ${peer}: createReadStream(ciphertext).pipe(decryptStream(keyring)) read to the end`,
        },
        size / MiB,
        dec,
      ),
    ];
  } finally {
    await store.close();
  }
}

/** Runs a command to completion; rejects with its stderr when it fails. */
function run(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`${command} ${args.join(" ")} exited ${code}: ${stderr.trim()}`))));
  });
}

/** age's version, or undefined when `age` / `age-keygen` are not on PATH. */
function ageVersion(): string | undefined {
  const age = spawnSync("age", ["--version"], { encoding: "utf8" });
  const keygen = spawnSync("age-keygen", ["--version"], { encoding: "utf8" });
  if (age.error || age.status !== 0 || keygen.error || keygen.status !== 0) return undefined;
  return age.stdout.trim();
}

/** Row 4: `age` (X25519 recipient, ChaCha20-Poly1305 in 64 KiB chunks) on the same file. */
export async function row4(ctx: BenchContext): Promise<RowResult[]> {
  const size = bigSize(ctx);
  const target: Target = { kind: "min-ratio", ratio: 1 };
  const figures = {
    a: `SDK encrypt (1 MiB reads) vs age encrypt (${formatSize(size)})`,
    b: `SDK decrypt vs age decrypt (${formatSize(size)})`,
  };
  const version = ageVersion();
  if (version === undefined) {
    const note = "install it to measure this row: apt-get install age (Debian/Ubuntu), brew install age (macOS)";
    return [
      { id: "4a", figure: figures.a, target, skipped: "age not installed", note },
      { id: "4b", figure: figures.b, target, skipped: "age not installed", note },
    ];
  }
  const input = await bigInput(ctx);
  const identity = join(ctx.dir, "r4-age-key.txt");
  await run("age-keygen", ["-o", identity]);
  const recipient = /^# public key: (age1\w+)$/m.exec(await readFile(identity, "utf8"))?.[1];
  if (recipient === undefined) throw new Error("age-keygen wrote no public key");
  const store = localStore(join(ctx.dir, "r4-store"));
  const grantee = BENCH_GRANTEE;
  const ageEncrypt = async (dest: string) => {
    const tmp = `${dest}.tmp`;
    await run("age", ["-e", "-r", recipient, "-o", tmp, input]);
    await durable(tmp, dest);
  };
  const peer = `age ${version} (X25519 recipient)`;
  try {
    // age reads its input in large buffers of its own; the SDK reads whatever stream it is given, so
    // it gets a file stream with 1 MiB reads (Node's default is 64 KiB; docs/performance.md, Findings).
    const enc = await alternate(ctx, "row 4 encrypt", sdkEncrypt(store, grantee, input, size, MiB), {
      prepare: async (i) => join(ctx.dir, `r4-age-${i}.age`),
      run: ageEncrypt,
      cleanup: (dest) => unlink(dest),
    });
    const ciphertext = join(ctx.dir, "r4.age");
    await ageEncrypt(ciphertext);
    const dec = await alternate(ctx, "row 4 decrypt", await sdkDecrypt(store, grantee, input, size), {
      run: () => run("age", ["-d", "-i", identity, "-o", "/dev/null", ciphertext]),
    });
    await unlink(ciphertext);
    return [
      throughputRow(
        {
          id: "4a",
          figure: figures.a,
          unit: "MiB/s",
          target,
          note:
            `${OURS_ENCRYPT.replace("createReadStream(file)", "createReadStream(file, {highWaterMark: 1 MiB})")}; ` +
            `baseline: ${peer}: age -e -r <recipient> -o temp file, then fsync + rename`,
        },
        size / MiB,
        enc,
      ),
      throughputRow(
        {
          id: "4b",
          figure: figures.b,
          unit: "MiB/s",
          target,
          note: `${OURS_DECRYPT}; baseline: ${peer}: age -d -i <identity> -o /dev/null`,
        },
        size / MiB,
        dec,
      ),
    ];
  } finally {
    await store.close();
  }
}
