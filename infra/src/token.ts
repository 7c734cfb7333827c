import { createHash } from "node:crypto";
import * as cloudflare from "@pulumi/cloudflare";
import * as pulumi from "@pulumi/pulumi";
import { parseGenerationDate, type InfraConfig, type R2Jurisdiction } from "./config";

/** The only permission groups a bucket token gets: object read and write, scoped to one bucket. */
export const ITEM_READ_GROUP = "Workers R2 Storage Bucket Item Read";
export const ITEM_WRITE_GROUP = "Workers R2 Storage Bucket Item Write";

const DAY_MS = 86_400_000;

/** One permission group as the Cloudflare list returns it (only the fields used here). */
export interface PermissionGroup {
  id: string;
  name: string;
}

/** One token per generation date. */
export interface BucketToken {
  generation: string;
  token: cloudflare.AccountToken;
  /** `YYYY-MM-DDT00:00:00Z`, or undefined when `tokenTtlDays` is 0. */
  expiresOn: string | undefined;
}

export interface TokenResources {
  /** All live generations, oldest first. */
  tokens: BucketToken[];
  /** The newest generation: the one whose credentials the outputs carry. */
  newest: BucketToken;
}

/** Resource key that scopes a token to exactly one bucket. */
export function bucketResourceKey(accountId: string, jurisdiction: R2Jurisdiction, bucketName: string): string {
  return `com.cloudflare.edge.r2.bucket.${accountId}_${jurisdiction}_${bucketName}`;
}

/**
 * Expiry of a generation's token: the generation date plus `ttlDays`, at midnight UTC.
 * Derived from config only (never the clock), so two runs with the same config agree and
 * Pulumi never sees a spurious diff.
 */
export function tokenExpiresOn(generation: string, ttlDays: number): string | undefined {
  if (ttlDays === 0) return undefined;
  const start = parseGenerationDate(generation);
  if (start === undefined) throw new Error(`not a generation date: ${JSON.stringify(generation)}`);
  return new Date(start + ttlDays * DAY_MS).toISOString().replace(".000Z", "Z");
}

/** R2's S3 secret access key for an API token: the SHA-256 hex digest of the token value. */
export function secretAccessKeyOf(tokenValue: string): string {
  return createHash("sha256").update(tokenValue).digest("hex");
}

/**
 * The account does not list a permission group the tokens need. A RunError, so Pulumi prints
 * the message alone (it is raised inside an Output, where a plain Error would be dumped whole).
 */
export class PermissionGroupError extends pulumi.RunError {
  constructor(message: string) {
    super(message);
    this.name = "PermissionGroupError";
    // Pulumi also renders the error into a trace event; a source-mapped stack through
    // ts-node is slow to render and says nothing the message does not.
    this.stack = `${this.name}: ${message}`;
  }
}

/**
 * Picks the bucket item read/write groups by exact name. Anything else, account-wide
 * "Workers R2 Storage Write" included, is never chosen; a missing or ambiguous name fails.
 */
export function pickItemGroups(groups: readonly PermissionGroup[]): { read: string; write: string } {
  const one = (name: string): string => {
    const matches = groups.filter((g) => g.name === name);
    if (matches.length !== 1) {
      throw new PermissionGroupError(
        `Cloudflare permission group "${name}" ${matches.length === 0 ? "was not found" : `is ambiguous (${matches.length} matches)`} ` +
          `among the ${groups.length} groups this account lists; the bootstrap token needs "Account API Tokens Read" or "Edit"`,
      );
    }
    return matches[0]!.id;
  };
  return { read: one(ITEM_READ_GROUP), write: one(ITEM_WRITE_GROUP) };
}

/** One account-owned token per generation, each allowed item read/write on this bucket only. */
export function createBucketTokens(cfg: InfraConfig, bucketName: pulumi.Output<string>): TokenResources {
  const groups = cloudflare
    .getAccountApiTokenPermissionGroupsListOutput({ accountId: cfg.accountId })
    .apply((list) => pickItemGroups(list.results));

  const policies = [
    {
      effect: "allow",
      permissionGroups: groups.apply((g) => [{ id: g.read }, { id: g.write }]),
      resources: bucketName.apply((name) => JSON.stringify({ [bucketResourceKey(cfg.accountId, cfg.jurisdiction, name)]: "*" })),
    },
  ];
  const condition = cfg.tokenAllowedIps.length > 0 ? { requestIp: { ins: cfg.tokenAllowedIps } } : undefined;

  if (cfg.tokenTtlDays === 0) {
    pulumi.log.warn("tokenTtlDays is 0: the bucket tokens never expire; rotate them by hand (see docs/provisioning.md#rotating-the-bucket-token)");
  }

  const tokens = cfg.tokenGenerations.map((generation): BucketToken => {
    const expiresOn = tokenExpiresOn(generation, cfg.tokenTtlDays);
    const token = new cloudflare.AccountToken(
      `bucket-token-${generation}`,
      {
        accountId: cfg.accountId,
        name: `${cfg.bucketName}-${generation}`,
        policies,
        expiresOn,
        condition,
      },
      { additionalSecretOutputs: ["value"] },
    );
    return { generation, token, expiresOn };
  });

  const newest = tokens[tokens.length - 1];
  // parseInfraConfig guarantees at least one generation.
  if (!newest) throw new Error("no token generations");
  // The clock only decides whether to warn; it never feeds a resource input.
  const warning = expiryWarning(newest.generation, newest.expiresOn, new Date());
  if (warning) pulumi.log.warn(warning);
  return { tokens, newest };
}

const WARN_BEFORE_DAYS = 14;

/** A rotation reminder when the newest token has expired or expires within two weeks. */
export function expiryWarning(generation: string, expiresOn: string | undefined, now: Date): string | undefined {
  if (expiresOn === undefined) return undefined;
  const left = Date.parse(expiresOn) - now.getTime();
  if (left > WARN_BEFORE_DAYS * DAY_MS) return undefined;
  const when = left <= 0 ? `expired on ${expiresOn}` : `expires on ${expiresOn}`;
  return `the newest bucket token (generation ${generation}) ${when}: add today's date to tokenGenerations and run pulumi up (see docs/provisioning.md#rotating-the-bucket-token)`;
}
