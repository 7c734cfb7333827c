import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConflictError, createArtifactStore, loadConfig, type ArtifactStore } from "@personal-server/artifacts";
import { freshBucket } from "../../../test-support/s3.js";
import { GRANTEE, TEST_MASTER_KEY, readAll } from "./helpers.js";

describe("read-only local fallback during migration", () => {
  const localDir = mkdtempSync(join(tmpdir(), "psa-fallback-"));
  let local: ArtifactStore;
  let remote: ArtifactStore;
  let operationId: string;

  beforeAll(async () => {
    local = createArtifactStore(loadConfig({ ARTIFACTS_LOCAL_DIR: localDir, ARTIFACTS_MASTER_KEY: TEST_MASTER_KEY }));
    operationId = (await local.createOperation({ grantee: GRANTEE, agent: "old" })).operationId;
    await local.putArtifact(operationId, "report.txt", "from the local days");
    const bucket = await freshBucket(undefined, "fallback");
    remote = createArtifactStore(
      loadConfig({ ...bucket.env, ARTIFACTS_MASTER_KEY: TEST_MASTER_KEY, ARTIFACTS_FALLBACK_LOCAL_DIR: localDir }),
    );
  });
  afterAll(async () => {
    await Promise.all([local.close(), remote.close()]);
  });

  it("serves operations that exist only in the fallback", async () => {
    const list = await remote.listArtifacts(operationId, { requester: GRANTEE });
    expect(list.artifacts.map((a) => a.path)).toEqual(["report.txt"]);
    const { body } = await remote.getArtifact(operationId, "report.txt", { requester: GRANTEE });
    expect((await readAll(body)).toString()).toBe("from the local days");
    const ids: string[] = [];
    for await (const op of remote.listOperations()) ids.push(op.operationId);
    expect(ids).toContain(operationId);
  });

  it("refuses writes to fallback operations: migrate first", async () => {
    const message = `operation ${operationId} is still in the local fallback directory; migrate first`;
    await expect(remote.putArtifact(operationId, "new.txt", "x")).rejects.toThrow(new ConflictError(message));
    await expect(remote.deleteOperation(operationId)).rejects.toThrow(new ConflictError(message));
    await expect(remote.createOperation({ grantee: GRANTEE, operationId })).rejects.toThrow(
      new ConflictError(`operation ${operationId} already exists`),
    );
    // The fallback is untouched.
    expect((await local.listArtifacts(operationId, { requester: GRANTEE })).artifacts).toHaveLength(1);
  });
});
