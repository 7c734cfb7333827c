/**
 * The crash harness's independent checker (issue 14). It reads storage on its own (files on disk,
 * or raw HTTP to moto, never through the store or a backend), lists layouts 1 and 2 and decrypts
 * with format v1 as docs/format.md specifies them (node:crypto's HKDF and AES-GCM, none of the SDK's crypto code),
 * so a bug in the store's read path cannot hide a bug in its write path.
 */
import { createDecipheriv, createHash, hkdfSync } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { FAKE_AUTHORIZATION, listMultipartUploads } from "../../../../../test-support/s3.js";

/** One stored object as the checker sees it. */
export interface StoredObject {
  key: string;
  size: number;
  /** Changes whenever the bytes may have: size + mtime + inode locally, the S3 ETag otherwise. */
  version: string;
  lastModified: number;
}

/** Storage read directly: a local root on disk or a bucket on moto. */
export interface StorageView {
  readonly label: string;
  list(): Promise<StoredObject[]>;
  read(key: string): Promise<Buffer | null>;
  /** Leftovers of interrupted writes: local temp files, S3 incomplete multipart uploads (with their age). */
  temporary(): Promise<{ name: string; lastModified: number }[]>;
}

export function localView(root: string): StorageView {
  return {
    label: `local ${root}`,
    async list() {
      const out: StoredObject[] = [];
      const walk = (rel: string): void => {
        const abs = join(root, rel);
        if (!existsSync(abs)) return;
        for (const name of readdirSync(abs)) {
          if (rel === "" && name.startsWith(".")) continue; // .tmp, .locks, key files: not objects
          const path = join(abs, name);
          const st = statSync(path, { bigint: true });
          if (st.isDirectory()) walk(rel === "" ? name : `${rel}/${name}`);
          else if (st.isFile()) {
            out.push({
              key: rel === "" ? name : `${rel}/${name}`,
              size: Number(st.size),
              version: `${st.size}-${st.mtimeNs}-${st.ino}`,
              lastModified: Number(st.mtimeMs),
            });
          }
        }
      };
      walk("");
      return out;
    },
    async read(key) {
      try {
        return readFileSync(join(root, key));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
        throw e;
      }
    },
    async temporary() {
      const tmp = join(root, ".tmp");
      if (!existsSync(tmp)) return [];
      return readdirSync(tmp).map((name) => ({ name: `.tmp/${name}`, lastModified: statSync(join(tmp, name)).mtimeMs }));
    },
  };
}

const xml = (text: string, tag: string): string[] =>
  [...text.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, "g"))].map((m) => m[1]!);
const unescapeXml = (s: string): string =>
  s.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, "&");

/** A bucket on moto, read with raw path-style requests straight to moto (never through a proxy). */
export function s3View(endpoint: string, bucket: string): StorageView {
  const get = async (path: string): Promise<Response> =>
    fetch(`${endpoint}/${bucket}${path}`, { headers: { authorization: FAKE_AUTHORIZATION }, signal: AbortSignal.timeout(30_000) });
  return {
    label: `s3 bucket ${bucket}`,
    async list() {
      const out: StoredObject[] = [];
      let token: string | undefined;
      do {
        const res = await get(`?list-type=2&max-keys=1000${token ? `&continuation-token=${encodeURIComponent(token)}` : ""}`);
        const text = await res.text();
        if (res.status !== 200) throw new Error(`ListObjectsV2 on ${bucket}: HTTP ${res.status} ${text.slice(0, 200)}`);
        for (const c of xml(text, "Contents")) {
          out.push({
            key: unescapeXml(xml(c, "Key")[0]!),
            size: Number(xml(c, "Size")[0]),
            version: xml(c, "ETag")[0]!,
            lastModified: Date.parse(xml(c, "LastModified")[0]!),
          });
        }
        token = xml(text, "IsTruncated")[0] === "true" ? unescapeXml(xml(text, "NextContinuationToken")[0]!) : undefined;
      } while (token !== undefined);
      return out;
    },
    async read(key) {
      const res = await get(`/${key.split("/").map(encodeURIComponent).join("/")}`);
      if (res.status === 404) {
        await res.arrayBuffer();
        return null;
      }
      if (res.status !== 200) throw new Error(`GET ${key} on ${bucket}: HTTP ${res.status}`);
      return Buffer.from(await res.arrayBuffer());
    },
    async temporary() {
      // moto reports every upload as initiated in 2010: always older than any grace period.
      return (await listMultipartUploads(endpoint, bucket)).map((u) => ({ name: `multipart ${u.key}`, lastModified: 0 }));
    },
  };
}

// ---- format v1, from docs/format.md --------------------------------------------------------------

const HEADER = 41;
const TAG = 16;

/** Unwraps an operation's data key (AES-256-GCM, AAD = the sorted JSON of expiresAt, grantee, operationId, v). */
function unwrap(meta: Record<string, unknown>, masterKeys: ReadonlyMap<string, Buffer>): Buffer {
  const wk = meta.wrappedKey as { kid: string; iv: string; ciphertext: string };
  const key = masterKeys.get(wk.kid);
  if (key === undefined) throw new Error(`wrapped with unknown kid ${wk.kid}`);
  const sealed = Buffer.from(wk.ciphertext, "base64");
  const aad = `{"expiresAt":"${String(meta.expiresAt)}","grantee":"${String(meta.grantee).toLowerCase()}","operationId":"${String(meta.operationId)}","v":1}`;
  const d = createDecipheriv("aes-256-gcm", key, Buffer.from(wk.iv, "base64"), { authTagLength: TAG });
  d.setAAD(Buffer.from(aad));
  d.setAuthTag(sealed.subarray(32));
  return Buffer.concat([d.update(sealed.subarray(0, 32)), d.final()]);
}

/** Decrypts a whole object; throws unless the header, every chunk and the final flag verify. */
function decrypt(object: Buffer, dataKey: Buffer, operationId: string, path: string): Buffer {
  if (object.length < HEADER + TAG || object.toString("latin1", 0, 4) !== "PSAE" || object[4] !== 1) throw new Error("bad header");
  const chunk = object.readUInt32BE(5);
  const salt = object.subarray(9, HEADER);
  const info = Buffer.from(`psa/v1\0${operationId}\0${path}`);
  const key = Buffer.from(hkdfSync("sha256", dataKey, salt, info, 32));
  const plain: Buffer[] = [];
  let pos = HEADER;
  for (let index = 0; ; index++) {
    const length = Math.min(chunk + TAG, object.length - pos);
    if (length < TAG) throw new Error(`chunk ${index} is truncated`);
    const final = pos + length === object.length;
    const nonce = Buffer.alloc(12);
    nonce.writeUIntBE(index, 5, 6);
    nonce[11] = final ? 1 : 0;
    const d = createDecipheriv("aes-256-gcm", key, nonce, { authTagLength: TAG });
    d.setAuthTag(object.subarray(pos + length - TAG, pos + length));
    plain.push(d.update(object.subarray(pos, pos + length - TAG)), d.final());
    pos += length;
    if (final) return Buffer.concat(plain);
  }
}

// ---- what the test knows, and the invariants -------------------------------------------------------

/** What the harness sent: every operation it created and every body it tried to upload. */
export interface Expected {
  operations: Map<string, ExpectedOperation>;
}

export interface ExpectedOperation {
  /** The create answered 201: it must exist (unless it expired and may have been swept). */
  acknowledged: boolean;
  expiresAt: number;
  /** path -> SHA-256 of the body tried, and whether its upload answered 201. */
  artifacts: Map<string, { sha256: string; acknowledged: boolean }>;
}

export interface CheckOptions {
  masterKeys: ReadonlyMap<string, Buffer>;
  /** The clock the invariants use (a sweep's "now"). */
  now: number;
  /** A sweep ran to completion at `now`: nothing expired and nothing unreferenced past its grace may remain. */
  sweptAt?: { orphanGraceMs: number; temporaryGraceMs: number };
  /** Every operation must be wrapped with this kid (a finished rotate-key). */
  kid?: string;
}

export interface CheckResult {
  violations: string[];
  /** Verified artifacts present, as `<operationId>/<path>`, and operations whose metadata verified. */
  present: Set<string>;
  operations: Set<string>;
  /** Objects decrypted this time (the rest were verified before with the same version). */
  decrypted: number;
}

interface Entry {
  path: string;
  size: number;
  encryptedSize: number;
  chunkSize: number;
}

/**
 * Layout 2 (docs/format.md): the entries are the objects `operations/<id>/entries/<incarnation>/
 * <13-digit ms>-<first 32 hex of SHA-256(path)>.json`, in name order, the first per path; an
 * index.json of this incarnation may list only entries that exist.
 */
async function layout2Entries(
  view: StorageView,
  objects: readonly StoredObject[],
  id: string,
  meta: Record<string, unknown>,
  referenced: Set<string>,
  v: (text: string) => void,
): Promise<Entry[] | undefined> {
  if (typeof meta.incarnation !== "string" || !/^[0-9a-f]{32}$/.test(meta.incarnation)) return undefined;
  const prefix = `operations/${id}/entries/${meta.incarnation}/`;
  const names = objects
    .filter((o) => o.key.startsWith(prefix))
    .map((o) => o.key.slice(prefix.length))
    .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const entries: Entry[] = [];
  const seen = new Set<string>();
  for (const name of names) {
    referenced.add(prefix + name);
    const bytes = await view.read(prefix + name);
    if (bytes === null) continue;
    let entry: Entry;
    try {
      entry = JSON.parse(bytes.toString("utf8")) as Entry;
    } catch {
      v(`entry ${prefix}${name} does not parse (half-written?)`);
      continue;
    }
    const hash = createHash("sha256").update(entry.path, "utf8").digest("hex").slice(0, 32);
    if (!new RegExp(`^\\d{13}-${hash}\\.json$`).test(name)) v(`entry ${prefix}${name} is not named after its path ${entry.path}`);
    if (seen.has(entry.path)) {
      v(`${id} has two entries for ${entry.path}`);
      continue;
    }
    seen.add(entry.path);
    entries.push(entry);
  }
  const indexKey = `operations/${id}/index.json`;
  referenced.add(indexKey);
  const index = await view.read(indexKey);
  if (index !== null) {
    let parsed: { incarnation?: string; entries?: { name: string }[] };
    try {
      parsed = JSON.parse(index.toString("utf8")) as typeof parsed;
    } catch {
      v(`index.json of ${id} does not parse (half-written?)`);
      return entries;
    }
    if (parsed.incarnation === meta.incarnation) {
      for (const e of parsed.entries ?? []) if (!names.includes(e.name)) v(`index.json of ${id} lists ${e.name}, which is no entry`);
    }
  }
  return entries;
}

/** Objects already verified, by key + version + expected hash: unchanged bytes need no second decrypt. */
const verified = new Set<string>();

/** Runs every invariant over one storage view. */
export async function checkStorage(view: StorageView, expected: Expected, options: CheckOptions): Promise<CheckResult> {
  const violations: string[] = [];
  const present = new Set<string>();
  const operations = new Set<string>();
  let decrypted = 0;
  const objects = await view.list();
  const byKey = new Map(objects.map((o) => [o.key, o]));
  const referenced = new Set<string>();
  const v = (text: string): void => {
    violations.push(`${view.label}: ${text}`);
  };

  for (const o of objects) {
    const m = /^operations\/([^/]+)\/metadata\.json$/.exec(o.key);
    if (m === null) continue;
    const id = m[1]!;
    referenced.add(o.key);
    const exp = expected.operations.get(id);
    if (exp === undefined) {
      v(`operation ${id} was never created by the test`);
      continue;
    }
    let meta: Record<string, unknown>;
    try {
      meta = JSON.parse((await view.read(o.key))!.toString("utf8")) as Record<string, unknown>;
    } catch (error) {
      v(`metadata.json of ${id} does not parse: ${(error as Error).message}`);
      continue;
    }
    if ((meta.version !== 1 && meta.version !== 2) || meta.operationId !== id || typeof meta.expiresAt !== "string") {
      v(`metadata.json of ${id} has the wrong shape`);
      continue;
    }
    const artifacts = meta.version === 1 ? (meta.artifacts as Entry[] | undefined) : await layout2Entries(view, objects, id, meta, referenced, v);
    if (!Array.isArray(artifacts)) {
      v(`metadata.json of ${id} has no artifacts`);
      continue;
    }
    let dataKey: Buffer;
    try {
      dataKey = unwrap(meta, options.masterKeys);
    } catch (error) {
      v(`the data key of ${id} does not unwrap: ${(error as Error).message}`);
      continue;
    }
    operations.add(id);
    const kid = (meta.wrappedKey as { kid: string }).kid;
    if (options.kid !== undefined && kid !== options.kid) v(`${id} is still wrapped with kid ${kid} after rotate-key finished`);
    if (options.sweptAt !== undefined && Date.parse(meta.expiresAt) <= options.now) v(`${id} expired and is still there after a finished sweep`);
    const paths = new Set<string>();
    for (const a of artifacts) {
      const key = `operations/${id}/artifacts/${a.path}`;
      referenced.add(key);
      if (paths.has(a.path)) v(`${id} lists ${a.path} twice`);
      paths.add(a.path);
      const want = exp.artifacts.get(a.path);
      if (want === undefined) {
        v(`${id} lists ${a.path}, which the test never uploaded`);
        continue;
      }
      const stored = byKey.get(key);
      if (stored === undefined) {
        v(`${id} lists ${a.path} but its object is missing`);
        continue;
      }
      if (stored.size !== a.encryptedSize) {
        v(`${id} lists ${a.path} with ${a.encryptedSize} stored bytes, the object has ${stored.size} (half-written?)`);
        continue;
      }
      const cacheKey = `${view.label}\0${key}\0${stored.version}\0${want.sha256}`;
      if (!verified.has(cacheKey)) {
        const bytes = await view.read(key);
        let plain: Buffer;
        try {
          plain = decrypt(bytes!, dataKey, id, a.path);
        } catch (error) {
          v(`${id}/${a.path} does not decrypt: ${(error as Error).message}`);
          continue;
        }
        decrypted++;
        if (plain.length !== a.size) v(`${id}/${a.path} decrypts to ${plain.length} bytes, metadata says ${a.size}`);
        if (createHash("sha256").update(plain).digest("hex") !== want.sha256) {
          v(`${id}/${a.path} decrypts to bytes other than the test uploaded`);
          continue;
        }
        verified.add(cacheKey);
      }
      present.add(`${id}/${a.path}`);
    }
  }

  if (options.sweptAt !== undefined) {
    const cutoff = options.now - options.sweptAt.orphanGraceMs;
    for (const o of objects) {
      if (!referenced.has(o.key) && o.lastModified <= cutoff) v(`${o.key} is unreferenced, past its grace period, and survived a finished sweep`);
    }
    for (const t of await view.temporary()) {
      if (t.lastModified <= options.now - options.sweptAt.temporaryGraceMs) v(`${t.name} is a stale leftover that survived a finished sweep`);
    }
  }
  return { violations, present, operations, decrypted };
}

/**
 * Acknowledged work missing from every view: an operation whose create got 201, or an artifact
 * whose upload got 201, not present and verified in any of them. Operations that expired by
 * `now` may have been swept, so they are not counted.
 */
export function lostWork(expected: Expected, results: readonly CheckResult[], now: number): string[] {
  const lost: string[] = [];
  for (const [id, op] of expected.operations) {
    if (op.expiresAt <= now) continue;
    if (op.acknowledged && !results.some((r) => r.operations.has(id))) lost.push(`operation ${id}`);
    for (const [path, a] of op.artifacts) {
      if (a.acknowledged && !results.some((r) => r.present.has(`${id}/${path}`))) lost.push(`artifact ${id}/${path}`);
    }
  }
  return lost;
}
