// The program must load through the loader Pulumi really uses, not only through vitest's.
// Each test spawns Pulumi's own Node.js language-host entry point (`@pulumi/pulumi/cmd/run`,
// with the flags and environment the language host passes) on infra/. It registers ts-node
// itself (type-checking, with infra/tsconfig.json) and require()s index.ts. The engine's
// resource monitor is a real gRPC server on 127.0.0.1 in this process that answers like
// Pulumi's runtime mocks: the Cloudflare API is the only thing not exercised.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, realpathSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_RETENTION_DAYS, OPERATIONS_PREFIX } from "@personal-server/artifacts/constants";
import { ACCOUNT, FAKE_GROUPS, fakeTokenValue, READ_ID, WRITE_ID } from "./helpers";

const infraDir = path.resolve(__dirname, "..");
const repoRoot = path.resolve(infraDir, "..");
const infraRequire = createRequire(path.join(infraDir, "package.json"));
const pulumiDir = path.dirname(infraRequire.resolve("@pulumi/pulumi/package.json"));
// Pulumi's own copies of grpc-js and its generated protocol code, so the wire format is the SDK's.
const pulumiRequire = createRequire(path.join(pulumiDir, "runtime", "settings.js"));
/* eslint-disable @typescript-eslint/no-explicit-any -- generated protobuf modules are untyped here */
const grpc: any = pulumiRequire("@grpc/grpc-js");
const resrpc: any = pulumiRequire("../proto/resource_grpc_pb.js");
const resproto: any = pulumiRequire("../proto/resource_pb.js");
const emptyproto: any = pulumiRequire("google-protobuf/google/protobuf/empty_pb.js");
const structproto: any = pulumiRequire("google-protobuf/google/protobuf/struct_pb.js");
/* eslint-enable @typescript-eslint/no-explicit-any */

/** The marker Pulumi's wire format puts on a secret value. */
const SECRET_SIG = { "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270" };
/** Features this monitor claims; outputValues is off, as with runtime mocks, so inputs arrive as plain values. */
const FEATURES = new Set(["secrets", "resourceReferences", "deletedWith", "aliasSpecs"]);
const STACK_TYPE = "pulumi:pulumi:Stack";

interface Registration {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
}

interface Monitor {
  address: string;
  registrations: Registration[];
  invokes: string[];
  /** Stack outputs in wire form, once the program has finished. */
  stackOutputs: Record<string, unknown> | undefined;
  /** Drops every connection at once, as the engine does when a program fails. */
  stop(): void;
  close(): Promise<void>;
}

async function startMonitor(groups: readonly { id: string; name: string }[] = FAKE_GROUPS): Promise<Monitor> {
  const registrations: Registration[] = [];
  const invokes: string[] = [];
  const urnTypes = new Map<string, string>();
  let stackOutputs: Record<string, unknown> | undefined;
  const server = new grpc.Server();
  server.addService(resrpc.ResourceMonitorService, {
    supportsFeature(call: any, callback: any) {
      const response = new resproto.SupportsFeatureResponse();
      response.setHassupport(FEATURES.has(call.request.getId()));
      callback(null, response);
    },
    invoke(call: any, callback: any) {
      const token: string = call.request.getTok();
      invokes.push(token);
      // ResourceMonitor/Invoke answers with its own ResourceInvokeResponse; grpc-js refuses to
      // serialize any other message type (the provider protocol's InvokeResponse included).
      const response = new resproto.ResourceInvokeResponse();
      if (token.endsWith(":getAccountApiTokenPermissionGroupsList")) {
        response.setReturn(structproto.Struct.fromJavaScript({ results: groups }));
        callback(null, response);
      } else {
        callback({ code: grpc.status.UNIMPLEMENTED, details: `unexpected invoke ${token}` });
      }
    },
    registerResource(call: any, callback: any) {
      const type: string = call.request.getType();
      const name: string = call.request.getName();
      const inputs = (call.request.getObject()?.toJavaScript() ?? {}) as Record<string, unknown>;
      registrations.push({ type, name, inputs });
      const state: Record<string, unknown> = { ...inputs };
      let id = `${name}-id`;
      if (type === "cloudflare:index/accountToken:AccountToken") {
        const generation = name.replace("bucket-token-", "");
        id = `fake-token-id-${generation}`;
        state.value = fakeTokenValue(generation);
      }
      const urn = `urn:pulumi:dev::personal-server-artifacts::${type}::${name}`;
      urnTypes.set(urn, type);
      const response = new resproto.RegisterResourceResponse();
      response.setUrn(urn);
      response.setId(call.request.getCustom() ? id : "");
      response.setObject(structproto.Struct.fromJavaScript(state));
      callback(null, response);
    },
    registerResourceOutputs(call: any, callback: any) {
      if (urnTypes.get(call.request.getUrn()) === STACK_TYPE) {
        stackOutputs = (call.request.getOutputs()?.toJavaScript() ?? {}) as Record<string, unknown>;
      }
      callback(null, new emptyproto.Empty());
    },
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err: Error | null, bound: number) =>
      err ? reject(err) : resolve(bound),
    );
  });
  return {
    address: `127.0.0.1:${port}`,
    registrations,
    invokes,
    get stackOutputs() {
      return stackOutputs;
    },
    stop: () => server.forceShutdown(),
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}

interface LoaderReport {
  sdkRequests: { request: string; resolved: string }[];
  tsNode: { package: { dir: string; version: string } | null; typescript: string; typeChecked: boolean; compiled: string[] } | null;
}

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  report: LoaderReport;
}

/** Runs `@pulumi/pulumi/cmd/run` on infra/ as the nodejs language host does for `pulumi preview`. */
async function runLikeLanguageHost(monitor: Monitor, config: Record<string, string>, workDir: string): Promise<RunResult> {
  const reportFile = path.join(workDir, `report-${Date.now()}.json`);
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    // The child gets what the language host gives: no inherited loaders or Pulumi overrides.
    if (v !== undefined && k !== "NODE_OPTIONS" && !k.startsWith("PULUMI_") && !k.startsWith("VITEST")) env[k] = v;
  }
  Object.assign(env, {
    PULUMI_CONFIG: JSON.stringify(config),
    PULUMI_CONFIG_SECRET_KEYS: "[]",
    PULUMI_NODEJS_TYPESCRIPT: "true",
    OBSERVE_LOADER_OUT: reportFile,
  });
  const args = [
    "-r",
    path.join(__dirname, "fixtures", "observe-loader.cjs"),
    path.join(pulumiDir, "cmd", "run"),
    `--monitor=${monitor.address}`,
    "--project=personal-server-artifacts",
    "--stack=dev",
    `--root-directory=${infraDir}`,
    `--pwd=${infraDir}`,
    "--dry-run",
    ".",
  ];
  const child = spawn(process.execPath, args, { cwd: infraDir, env, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
    // Once the program has reported an error the engine stops its monitor; without that the
    // child's idle gRPC connection would keep it alive until the channel times out.
    if (stderr.includes("error: ")) monitor.stop();
  });
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  const report = JSON.parse(readFileSync(reportFile, "utf8")) as LoaderReport;
  return { code, stdout, stderr, report };
}

const projectConfig = (entries: Record<string, string>): Record<string, string> =>
  Object.fromEntries(Object.entries(entries).map(([k, v]) => [`personal-server-artifacts:${k}`, v]));

describe("the program under Pulumi's own loader (cmd/run + ts-node)", () => {
  let workDir: string;
  beforeAll(() => {
    workDir = mkdtempSync(path.join(tmpdir(), "infra-loader-"));
    // At runtime the CommonJS program require()s the SDK's built constants (the `default`
    // export condition), exactly as under `pulumi up`; `pnpm test` builds them first.
    const built = path.join(repoRoot, "packages", "artifacts", "dist", "constants.js");
    try {
      readFileSync(built);
    } catch {
      throw new Error(`${built} is missing: run \`pnpm --filter @personal-server/artifacts build\` (pnpm test does)`);
    }
  });
  afterAll(() => rmSync(workDir, { recursive: true, force: true }));

  it("type-checks and runs index.ts, loading only the SDK's constants at runtime", async () => {
    const monitor = await startMonitor();
    try {
      const result = await runLikeLanguageHost(
        monitor,
        projectConfig({ accountId: ACCOUNT, tokenGenerations: JSON.stringify(["2099-01-01"]) }),
        workDir,
      );
      expect(result.stderr).toBe("");
      expect(result.code).toBe(0);

      // ts-node was registered by Pulumi (not by us), with type checking, from infra's own install.
      const tsNodePackage = infraRequire.resolve("ts-node/package.json");
      const tsVersion = (infraRequire("typescript/package.json") as { version: string }).version;
      expect(result.report.tsNode).toEqual({
        package: {
          dir: realpathSync(path.dirname(tsNodePackage)),
          version: (JSON.parse(readFileSync(tsNodePackage, "utf8")) as { version: string }).version,
        },
        typescript: tsVersion,
        typeChecked: true,
        compiled: ["index.ts", "src/bucket.ts", "src/config.ts", "src/endpoint.ts", "src/notifications.ts", "src/program.ts", "src/token.ts"],
      });

      // The only runtime request into the SDK is the dependency-free constants subpath (from
      // the three modules that use it); `import type` never reaches runtime.
      const requests = result.report.sdkRequests;
      expect([...new Set(requests.map((r) => r.request))]).toEqual(["@personal-server/artifacts/constants"]);
      expect([...new Set(requests.map((r) => path.relative(repoRoot, r.resolved)))]).toEqual([
        path.join("packages", "artifacts", "dist", "constants.js"),
      ]);

      // What it loaded drove the program: the lifecycle rule follows the SDK's constants.
      const lifecycle = monitor.registrations.find((r) => r.type === "cloudflare:index/r2BucketLifecycle:R2BucketLifecycle");
      expect(lifecycle?.inputs.rules).toEqual([
        {
          id: "expire-operations",
          enabled: true,
          conditions: { prefix: OPERATIONS_PREFIX },
          deleteObjectsTransition: { condition: { type: "Age", maxAge: (DEFAULT_RETENTION_DAYS + 1) * 86400 } },
        },
        {
          id: "abort-multipart",
          enabled: true,
          conditions: { prefix: "" },
          abortMultipartUploadsTransition: { condition: { type: "Age", maxAge: 86400 } },
        },
      ]);
      const token = monitor.registrations.find((r) => r.type === "cloudflare:index/accountToken:AccountToken");
      expect(token?.inputs.policies).toEqual([
        {
          effect: "allow",
          permissionGroups: [{ id: READ_ID }, { id: WRITE_ID }],
          resources: JSON.stringify({ [`com.cloudflare.edge.r2.bucket.${ACCOUNT}_default_personal-server-artifacts-dev`]: "*" }),
        },
      ]);
      expect(monitor.invokes).toEqual([
        "cloudflare:index/getAccountApiTokenPermissionGroupsList:getAccountApiTokenPermissionGroupsList",
      ]);

      // Stack outputs as they cross the wire to the engine: the derived key travels as a secret.
      const secret = createHash("sha256").update(fakeTokenValue("2099-01-01")).digest("hex");
      const store = { accountId: ACCOUNT, accessKeyId: "fake-token-id-2099-01-01", secretAccessKey: secret, bucketName: "personal-server-artifacts-dev", jurisdiction: "default" };
      expect(monitor.stackOutputs).toEqual({
        accountId: ACCOUNT,
        bucketName: "personal-server-artifacts-dev",
        jurisdiction: "default",
        s3Endpoint: `https://${ACCOUNT}.r2.cloudflarestorage.com`,
        accessKeyId: "fake-token-id-2099-01-01",
        secretAccessKey: { ...SECRET_SIG, value: secret },
        retentionDays: DEFAULT_RETENTION_DAYS,
        tokenExpiresOn: "2099-04-01T00:00:00Z",
        corsOrigins: [],
        artifactStore: { ...SECRET_SIG, value: store },
      });
    } finally {
      await monitor.close();
    }
  });

  it("reports invalid config under the loader naming the key, and registers nothing", async () => {
    const monitor = await startMonitor();
    try {
      const result = await runLikeLanguageHost(
        monitor,
        projectConfig({ accountId: "not-an-account", tokenGenerations: JSON.stringify(["2099-01-01"]) }),
        workDir,
      );
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain(
        'Invalid configuration personal-server-artifacts:accountId: must be 32 hex characters (the Cloudflare account id), got "not-an-account"',
      );
      expect(monitor.registrations.filter((r) => r.type !== STACK_TYPE)).toEqual([]);
    } finally {
      await monitor.close();
    }
  });

  it("fails clearly when the account lists no bucket item write group, creating no token", async () => {
    const monitor = await startMonitor(FAKE_GROUPS.filter((g) => g.id !== WRITE_ID));
    try {
      const result = await runLikeLanguageHost(
        monitor,
        projectConfig({ accountId: ACCOUNT, tokenGenerations: JSON.stringify(["2099-01-01"]) }),
        workDir,
      );
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain(
        'Cloudflare permission group "Workers R2 Storage Bucket Item Write" was not found among the 4 groups this account lists',
      );
      expect(monitor.registrations.filter((r) => r.type === "cloudflare:index/accountToken:AccountToken")).toEqual([]);
    } finally {
      await monitor.close();
    }
  });
});
