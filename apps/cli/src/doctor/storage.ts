// The storage checks: the bucket (or directory) answers, the clock agrees with it, a probe object
// is written, read back and deleted; then the stored operations (master keys, layouts) and the lifecycle rule.
import { randomBytes } from "node:crypto";
import type { ArtifactsConfig } from "@personal-server/artifacts";
import type { Backend } from "@personal-server/artifacts/internal";
import { adviceFor, classify } from "../advice.js";
import { DOCTOR_PREFIX } from "../scan.js";
import { type Add, messageOf } from "./check.js";
import { lifecycleCheck } from "./lifecycle.js";
import { layoutCheck } from "./layouts.js";
import { masterKeyCheck } from "./master-keys.js";
import { readOperations, type StoredOperations } from "./operations.js";

/** S3 signatures are refused past 15 minutes of skew (RequestTimeTooSkewed). */
const SIGNING_SKEW_MS = 15 * 60 * 1000;
/** Grantee signatures allow 30 s of clock drift (`iat <= now + 30`, docs/http-api.md). */
const AUTH_SKEW_MS = 30 * 1000;

/** Which configured values the checks may rely on (false: malformed, reported above, defaulted). */
export interface Usable {
  masterKeys: boolean;
  ttl: boolean;
}

export async function storageChecks(backend: Backend, config: ArtifactsConfig, add: Add, usable: Usable): Promise<void> {
  const s = config.storage;
  const before = Date.now();
  let serverDate: Date | undefined;
  try {
    serverDate = (await backend.checkBucket()).serverDate;
    const after = Date.now();
    add({
      name: "bucket",
      status: "pass",
      message: s.kind === "local" ? `${s.dir} exists and is private and writable` : `bucket "${s.bucket}" exists and answers (HeadBucket)`,
    });
    if (serverDate === undefined) {
      add({ name: "clock", status: "skip", message: s.kind === "local" ? "local storage: no remote clock" : "storage sent no Date header" });
    } else {
      // Date has 1 s resolution: compare with the middle of the round trip and allow that second.
      const local = (before + after) / 2;
      const skew = serverDate.getTime() - local;
      const abs = Math.max(0, Math.abs(skew) - 1000);
      const text = `${Math.round(Math.abs(skew) / 1000)} s ${skew >= 0 ? "behind" : "ahead of"} the storage clock`;
      if (abs > SIGNING_SKEW_MS) {
        add({ name: "clock", status: "fail", message: `this machine is ${text}: storage rejects signed requests past 15 min (RequestTimeTooSkewed)`, fix: "sync the clock with NTP (timedatectl set-ntp true)" });
      } else if (abs > AUTH_SKEW_MS) {
        add({ name: "clock", status: "warn", message: `this machine is ${text}: grantee signatures tolerate 30 s`, fix: "sync the clock with NTP (timedatectl set-ntp true)" });
      } else {
        add({ name: "clock", status: "pass", message: `within ${Math.round(Math.abs(skew) / 1000)} s of the storage clock` });
      }
    }
  } catch (error) {
    add({ name: "bucket", status: "fail", message: messageOf(error), fix: adviceFor(classify(error), config) });
    return;
  }

  await probeObject(backend, config, add);
  let stored: StoredOperations | Error;
  try {
    stored = await readOperations(backend);
  } catch (error) {
    stored = error instanceof Error ? error : new Error(String(error));
  }
  if (!usable.masterKeys) {
    if (config.masterKeySource.kind !== "missing") {
      add({ name: "master keys", status: "skip", message: "not checked: the master key variables above must be fixed first" });
    }
  } else if (stored instanceof Error) add({ name: "master keys", status: "skip", message: "not checked: the operations could not be read (see layouts)" });
  else masterKeyCheck(stored, config, add);
  if (stored instanceof Error) {
    add({ name: "layouts", status: "fail", message: `listing operations/ or reading a metadata.json failed: ${messageOf(stored)}`, fix: adviceFor(classify(stored), config) });
  } else layoutCheck(stored, add);
  await lifecycleCheck(backend, config, add, usable.ttl);
}

/** Writes, reads back and deletes `operations/.doctor-<random>/probe`: never a real operation's key. */
async function probeObject(backend: Backend, config: ArtifactsConfig, add: Add): Promise<void> {
  const key = `${DOCTOR_PREFIX}${randomBytes(8).toString("hex")}/probe`;
  const body = randomBytes(64);
  let stage = "write";
  try {
    await backend.put(key, body);
    stage = "read back";
    const got = await backend.getBytes(key);
    if (got === null || !got.body.equals(body)) throw new Error(got === null ? "the object was not found after writing it" : "the bytes read back differ from the bytes written");
    stage = "delete";
    await backend.delete([key]);
    if ((await backend.head(key)) !== null) throw new Error("the object is still there after deleting it");
    add({ name: "read/write", status: "pass", message: `wrote, read back and deleted ${key}` });
  } catch (error) {
    add({
      name: "read/write",
      status: "fail",
      message: `${stage} of ${key} failed: ${messageOf(error)}`,
      fix: adviceFor(classify(error), config),
    });
    await backend.delete([key]).catch(() => {});
  }
}

