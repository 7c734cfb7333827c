// Policy of the provisioned resources, under Pulumi's runtime mocks (the Cloudflare API is
// the only thing mocked). Each test builds the resources, awaits every URN, then reads the
// inputs the mocked engine received.
import { createHash } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import { afterEach, beforeEach, describe, expect, it, vi, type MockInstance } from "vitest";
import { DEFAULT_RETENTION_DAYS, OPERATIONS_PREFIX } from "@personal-server/artifacts/constants";
import { parseInfraConfig, type RawConfig } from "../src/config";
import { createProgram, type Program } from "../src/program";
import { expiryWarning, pickItemGroups } from "../src/token";
import { ACCOUNT, FAKE_GROUPS, fakeTokenValue, installMocks, READ_ID, valueOf, WRITE_ID, type MockEngine } from "./helpers";

const T = {
  bucket: "cloudflare:index/r2Bucket:R2Bucket",
  lifecycle: "cloudflare:index/r2BucketLifecycle:R2BucketLifecycle",
  cors: "cloudflare:index/r2BucketCors:R2BucketCors",
  token: "cloudflare:index/accountToken:AccountToken",
  queue: "cloudflare:index/queue:Queue",
  notification: "cloudflare:index/r2BucketEventNotification:R2BucketEventNotification",
};
const DAY = 86_400;
const BASE: RawConfig = { accountId: ACCOUNT, tokenGenerations: JSON.stringify(["2026-11-01"]) };

/** Builds the program for `raw` config on stack `dev` and waits until the engine saw every resource. */
async function build(raw: RawConfig = {}, groups = FAKE_GROUPS): Promise<{ engine: MockEngine; program: Program }> {
  const engine = await installMocks("dev", groups);
  const program = createProgram(parseInfraConfig({ ...BASE, ...raw }, "dev"));
  const resources: pulumi.Resource[] = [
    program.bucket.bucket,
    program.bucket.lifecycle,
    ...(program.bucket.cors ? [program.bucket.cors] : []),
    ...program.tokens.tokens.map((t) => t.token),
    ...(program.notifications ? [program.notifications.queue, program.notifications.notification] : []),
  ];
  await Promise.all(resources.map((r) => valueOf(r.urn)));
  return { engine, program };
}

function only<T>(items: T[]): T {
  expect(items).toHaveLength(1);
  return items[0]!;
}

type Rule = { id: string; conditions: { prefix: string }; deleteObjectsTransition?: { condition: { type: string; maxAge: number } }; abortMultipartUploadsTransition?: { condition: { type: string; maxAge: number } } };
type Policy = { effect: string; permissionGroups: { id: string }[]; resources: string };

let warn: MockInstance<typeof pulumi.log.warn>;
beforeEach(() => {
  // Warnings are asserted where they matter, and kept off the test output otherwise.
  warn = vi.spyOn(pulumi.log, "warn").mockImplementation(async () => {});
});
afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe("bucket and lifecycle", () => {
  it("creates one bucket named after the stack, in the configured jurisdiction, location and class", async () => {
    const { engine } = await build({ location: "weur", storageClass: "InfrequentAccess" });
    expect(only(engine.ofType(T.bucket)).inputs).toEqual({
      accountId: ACCOUNT,
      name: "personal-server-artifacts-dev",
      jurisdiction: "default",
      location: "weur",
      storageClass: "InfrequentAccess",
    });
  });

  it("deletes operations (retention + 1) days old, by default the SDK's retention", async () => {
    const { engine } = await build();
    const rules = only(engine.ofType(T.lifecycle)).inputs.rules as Rule[];
    const expire = only(rules.filter((r) => r.deleteObjectsTransition));
    expect(expire.conditions.prefix).toBe(OPERATIONS_PREFIX);
    expect(expire.deleteObjectsTransition!.condition).toEqual({ type: "Age", maxAge: (DEFAULT_RETENTION_DAYS + 1) * DAY });
  });

  it("follows retentionDays", async () => {
    const { engine } = await build({ retentionDays: "30" });
    const rules = only(engine.ofType(T.lifecycle)).inputs.rules as Rule[];
    expect(only(rules.filter((r) => r.deleteObjectsTransition)).deleteObjectsTransition!.condition.maxAge).toBe(31 * DAY);
  });

  it("aborts incomplete multipart uploads after one day, bucket-wide", async () => {
    const { engine } = await build();
    const rules = only(engine.ofType(T.lifecycle)).inputs.rules as Rule[];
    const abort = only(rules.filter((r) => r.abortMultipartUploadsTransition));
    expect(abort).toMatchObject({ id: "abort-multipart", conditions: { prefix: "" } });
    expect(abort.abortMultipartUploadsTransition!.condition).toEqual({ type: "Age", maxAge: DAY });
  });
});

describe("CORS", () => {
  it("allows GET and HEAD from exactly the configured origins", async () => {
    const origins = ["https://app.example.com", "https://admin.example.com:8443"];
    const { engine, program } = await build({ corsOrigins: JSON.stringify(origins) });
    // export-env writes the same list to ARTIFACTS_CORS_ORIGINS, so the server allows the same origins.
    expect(program.outputs.corsOrigins).toEqual(origins);
    expect(only(engine.ofType(T.cors)).inputs.rules).toEqual([
      {
        id: "browser-read",
        allowed: { origins, methods: ["GET", "HEAD"], headers: ["Range"] },
        exposeHeaders: ["ETag", "Content-Length", "Content-Range"],
        maxAgeSeconds: 3600,
      },
    ]);
  });

  it("creates no CORS resource when the list is empty", async () => {
    const { engine, program } = await build({ corsOrigins: "[]" });
    expect(program.bucket.cors).toBeUndefined();
    expect(engine.ofType(T.cors)).toEqual([]);
    expect(engine.ofType(T.lifecycle)).toHaveLength(1);
  });
});

describe("bucket tokens", () => {
  const bucketKey = `com.cloudflare.edge.r2.bucket.${ACCOUNT}_default_personal-server-artifacts-dev`;

  it("scopes every token to this bucket only, with only the item read/write groups", async () => {
    const { engine } = await build({ tokenGenerations: JSON.stringify(["2026-08-01", "2026-11-01"]) });
    const tokens = engine.ofType(T.token);
    expect(tokens).toHaveLength(2);
    const accountWide = FAKE_GROUPS.filter((g) => g.scopes.includes("com.cloudflare.api.account")).map((g) => g.id);
    expect(accountWide.length).toBeGreaterThan(0);
    for (const token of tokens) {
      const policies = token.inputs.policies as Policy[];
      const policy = only(policies);
      expect(policy.effect).toBe("allow");
      expect(JSON.parse(policy.resources)).toEqual({ [bucketKey]: "*" });
      expect(policy.permissionGroups).toEqual([{ id: READ_ID }, { id: WRITE_ID }]);
      expect(policy.permissionGroups.map((g) => g.id).filter((id) => accountWide.includes(id))).toEqual([]);
      expect(token.inputs.accountId).toBe(ACCOUNT);
    }
  });

  it("looks the groups up from the account, once", async () => {
    const { engine } = await build({ tokenGenerations: JSON.stringify(["2026-08-01", "2026-11-01"]) });
    expect(engine.calls.map((c) => [c.token, c.inputs])).toEqual([
      ["cloudflare:index/getAccountApiTokenPermissionGroupsList:getAccountApiTokenPermissionGroupsList", { accountId: ACCOUNT }],
    ]);
  });

  it("picks groups by exact name and never an account-wide one; absent or ambiguous names fail", () => {
    expect(pickItemGroups(FAKE_GROUPS)).toEqual({ read: READ_ID, write: WRITE_ID });
    // Shuffled order, similar names: still exactly the two item groups.
    expect(pickItemGroups([...FAKE_GROUPS].reverse())).toEqual({ read: READ_ID, write: WRITE_ID });
    const withoutWrite = FAKE_GROUPS.filter((g) => g.id !== WRITE_ID);
    expect(() => pickItemGroups(withoutWrite)).toThrow(
      'Cloudflare permission group "Workers R2 Storage Bucket Item Write" was not found among the 4 groups this account lists; the bootstrap token needs "Account API Tokens Read" or "Edit"',
    );
    const twice = [...FAKE_GROUPS, { id: "other", name: "Workers R2 Storage Bucket Item Read" }];
    expect(() => pickItemGroups(twice)).toThrow('Cloudflare permission group "Workers R2 Storage Bucket Item Read" is ambiguous (2 matches)');
  });

  it("names each token after its generation, with expiry = generation + tokenTtlDays", async () => {
    const { engine } = await build({ tokenGenerations: JSON.stringify(["2026-11-01"]), tokenTtlDays: "30" });
    const token = only(engine.ofType(T.token));
    expect(token.name).toBe("bucket-token-2026-11-01");
    expect(token.inputs.name).toBe("personal-server-artifacts-dev-2026-11-01");
    expect(token.inputs.expiresOn).toBe("2026-12-01T00:00:00Z");
  });

  it("sets no expiry when tokenTtlDays is 0, and warns", async () => {
    const { engine } = await build({ tokenTtlDays: "0" });
    expect(only(engine.ofType(T.token)).inputs.expiresOn).toBeUndefined();
    expect(warn).toHaveBeenCalledWith("tokenTtlDays is 0: the bucket tokens never expire; rotate them by hand (see docs/provisioning.md#rotating-the-bucket-token)");
  });

  it("gives identical token inputs for the same config at different clock times", async () => {
    const raw = { tokenGenerations: JSON.stringify(["2026-08-01", "2026-11-01"]) };
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(new Date("2026-11-02T03:04:05Z"));
    const first = (await build(raw)).engine.ofType(T.token);
    vi.setSystemTime(new Date("2027-01-20T22:10:00Z"));
    const second = (await build(raw)).engine.ofType(T.token);
    expect(second).toEqual(first);
    expect(first.map((t) => t.inputs.expiresOn)).toEqual(["2026-10-30T00:00:00Z", "2027-01-30T00:00:00Z"]);
  });

  it("reminds to rotate when the newest token expires within two weeks or has expired", async () => {
    const now = new Date("2026-11-27T12:00:00Z");
    expect(expiryWarning("2026-09-01", "2026-12-20T00:00:00Z", now)).toBeUndefined();
    expect(expiryWarning("2026-09-01", "2026-12-10T00:00:00Z", now)).toBe(
      "the newest bucket token (generation 2026-09-01) expires on 2026-12-10T00:00:00Z: add today's date to tokenGenerations and run pulumi up (see docs/provisioning.md#rotating-the-bucket-token)",
    );
    expect(expiryWarning("2026-08-01", "2026-10-30T00:00:00Z", now)).toBe(
      "the newest bucket token (generation 2026-08-01) expired on 2026-10-30T00:00:00Z: add today's date to tokenGenerations and run pulumi up (see docs/provisioning.md#rotating-the-bucket-token)",
    );
    expect(expiryWarning("2026-08-01", undefined, now)).toBeUndefined();
    // The program emits it (the clock decides only the warning, never an input).
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(now);
    await build({ tokenGenerations: JSON.stringify(["2026-08-01"]) });
    expect(warn).toHaveBeenCalledWith(expiryWarning("2026-08-01", "2026-10-30T00:00:00Z", now));
  });

  it("restricts tokens to tokenAllowedIps when set, and not otherwise", async () => {
    const ips = ["203.0.113.0/24", "2001:db8::/32"];
    const restricted = only((await build({ tokenAllowedIps: JSON.stringify(ips) })).engine.ofType(T.token));
    expect(restricted.inputs.condition).toEqual({ requestIp: { ins: ips } });
    const open = only((await build()).engine.ofType(T.token));
    expect(open.inputs.condition).toBeUndefined();
  });

  it("scopes tokens and the endpoint to the eu jurisdiction", async () => {
    const { engine, program } = await build({ jurisdiction: "eu" });
    const policy = only(only(engine.ofType(T.token)).inputs.policies as Policy[]);
    expect(JSON.parse(policy.resources)).toEqual({ [`com.cloudflare.edge.r2.bucket.${ACCOUNT}_eu_personal-server-artifacts-dev`]: "*" });
    expect(program.outputs.s3Endpoint).toBe(`https://${ACCOUNT}.eu.r2.cloudflarestorage.com`);
    expect(only(engine.ofType(T.bucket)).inputs.jurisdiction).toBe("eu");
    expect(only(engine.ofType(T.lifecycle)).inputs.jurisdiction).toBe("eu");
  });
});

describe("outputs", () => {
  const sha256 = (s: string): string => createHash("sha256").update(s).digest("hex");

  it("exports the newest token's credentials; the secret key is secret and is sha256 of the token value", async () => {
    // Listed newest first on purpose: "newest" is by date, not by position.
    const { program } = await build({ tokenGenerations: JSON.stringify(["2026-11-01", "2026-08-01"]) });
    const o = program.outputs;
    expect(await valueOf(o.accessKeyId)).toBe("fake-token-id-2026-11-01");
    expect(await pulumi.isSecret(o.secretAccessKey)).toBe(true);
    expect(await valueOf(o.secretAccessKey)).toBe(sha256(fakeTokenValue("2026-11-01")));
    expect(o.tokenExpiresOn).toBe("2027-01-30T00:00:00Z");
    expect(await pulumi.isSecret(o.artifactStore)).toBe(true);
    expect(await valueOf(o.artifactStore)).toEqual({
      accountId: ACCOUNT,
      accessKeyId: "fake-token-id-2026-11-01",
      secretAccessKey: sha256(fakeTokenValue("2026-11-01")),
      bucketName: "personal-server-artifacts-dev",
      jurisdiction: "default",
    });
    expect(await pulumi.isSecret(o.accessKeyId)).toBe(false);
    expect(o.s3Endpoint).toBe(`https://${ACCOUNT}.r2.cloudflarestorage.com`);
    expect(o.retentionDays).toBe(DEFAULT_RETENTION_DAYS);
  });

  it("exports a null expiry when tokens never expire", async () => {
    const { program } = await build({ tokenTtlDays: "0" });
    expect(program.outputs.tokenExpiresOn).toBeNull();
  });
});

describe("notifications", () => {
  it("creates no queue and no notification when off", async () => {
    const { engine, program } = await build({ notifications: "false" });
    expect(program.notifications).toBeUndefined();
    expect(engine.ofType(T.queue)).toEqual([]);
    expect(engine.ofType(T.notification)).toEqual([]);
  });

  it("sends object create and delete events under the operations prefix to a queue when on", async () => {
    const { engine } = await build({ notifications: "true", jurisdiction: "eu" });
    expect(only(engine.ofType(T.queue)).inputs).toEqual({ accountId: ACCOUNT, queueName: "personal-server-artifacts-dev-events", jurisdiction: "eu" });
    expect(only(engine.ofType(T.notification)).inputs).toEqual({
      accountId: ACCOUNT,
      bucketName: "personal-server-artifacts-dev",
      jurisdiction: "eu",
      queueId: "fake-queue-id",
      rules: [
        {
          actions: ["PutObject", "CopyObject", "CompleteMultipartUpload", "DeleteObject", "LifecycleDeletion"],
          prefix: OPERATIONS_PREFIX,
          description: "artifact objects created or deleted",
        },
      ],
    });
  });
});
