import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import {
  type ArtifactStore,
  type ArtifactsConfig,
  createArtifactStore,
  loadConfig,
} from "@personal-server/artifacts";
import { type Backend, openBackend } from "@personal-server/artifacts/internal";
import { freshBucketOn, S3_PEERS, type S3Peer } from "../../../test-support/s3.js";

/** Local storage, or S3 on one of the peers (moto, Cloudflare's local R2 simulator). */
export type Kind = "local" | S3Peer;
export const KINDS: Kind[] = ["local", ...S3_PEERS];
/** Layout 2 on every kind; layout 1 (operations an earlier release wrote, made by the kept v1 writer) on local and moto. */
export const LAYOUT_CASES: [Kind, 1 | 2][] = [...KINDS.map((k): [Kind, 2] => [k, 2]), ["local", 1], ["moto", 1]];

/** Obviously fake test keys (never real secrets). */
export const TEST_MASTER_KEY = Buffer.alloc(32, 0x11).toString("base64");
export const OTHER_MASTER_KEY = Buffer.alloc(32, 0x22).toString("base64");
export const GRANTEE = "0x00000000000000000000000000000000000000aa";
export const STRANGER = "0x00000000000000000000000000000000000000bb";

export interface Harness {
  store: ArtifactStore;
  config: ArtifactsConfig;
  /** Raw access to the same storage, for tampering and for checking nothing was written. */
  raw: Backend;
  clock: { now: Date };
  /** A second store over the same storage with other env (e.g. other master keys). */
  reopen(env?: Record<string, string>): ArtifactStore;
  close(): Promise<void>;
}

export async function openHarness(kind: Kind, env: Record<string, string> = {}, createLayout: 1 | 2 = 2): Promise<Harness> {
  const base: Record<string, string> =
    kind === "local"
      ? { ARTIFACTS_LOCAL_DIR: mkdtempSync(join(tmpdir(), "psa-store-")), ARTIFACTS_MASTER_KEY: TEST_MASTER_KEY }
      : { ...(await freshBucketOn(kind, "store")).env, ARTIFACTS_MASTER_KEY: TEST_MASTER_KEY, ARTIFACTS_S3_TIMEOUT_MS: "10000" };
  const fullEnv = { ...base, ...env };
  if (fullEnv.ARTIFACTS_MASTER_KEYS) delete fullEnv.ARTIFACTS_MASTER_KEY;
  const config = loadConfig(fullEnv);
  const clock = { now: new Date() };
  const store = createArtifactStore(config, { now: () => clock.now, createLayout });
  const raw = await openBackend(config.storage, { timeoutMs: 10_000, connectTimeoutMs: 5000 });
  const extra: ArtifactStore[] = [];
  return {
    store,
    config,
    raw,
    clock,
    reopen(more = {}) {
      const merged = { ...base, ...more };
      if (merged.ARTIFACTS_MASTER_KEYS) delete merged.ARTIFACTS_MASTER_KEY;
      const s = createArtifactStore(loadConfig(merged), { now: () => clock.now, createLayout });
      extra.push(s);
      return s;
    },
    async close() {
      await Promise.all([store.close(), raw.close(), ...extra.map((s) => s.close())]);
    },
  };
}

export async function readAll(body: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of body) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

/** Reads a body and returns what arrived before it failed (or all of it) and the error, if any. */
export async function drain(body: Readable): Promise<{ bytes: Buffer; error: unknown }> {
  const parts: Buffer[] = [];
  try {
    for await (const part of body) parts.push(part as Buffer);
    return { bytes: Buffer.concat(parts), error: undefined };
  } catch (error) {
    return { bytes: Buffer.concat(parts), error };
  }
}

export async function listKeys(raw: Backend, prefix = "operations/"): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of raw.list(prefix)) keys.push(o.key);
  return keys;
}

export const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");
export const random = (n: number) => randomBytes(n);
