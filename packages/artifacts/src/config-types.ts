/** R2 jurisdiction: selects the endpoint host (`<account>.r2…`, `<account>.eu.r2…`, `<account>.fedramp.r2…`). */
export type R2Jurisdiction = "default" | "eu" | "fedramp";

/**
 * What the SDK needs to reach an R2 bucket: exactly the `R2_*` variables.
 * infra's `artifactStore` output is typed with this, so infra and SDK cannot disagree.
 */
export interface R2Config {
  /** Cloudflare account id, 32 hex characters (`R2_ACCOUNT_ID`). */
  accountId: string;
  /** S3 access key id of the bucket-scoped token (`R2_ACCESS_KEY_ID`). */
  accessKeyId: string;
  /** S3 secret access key: SHA-256 hex of the token value (`R2_SECRET_ACCESS_KEY`). */
  secretAccessKey: string;
  /** Bucket name (`R2_BUCKET_NAME`). */
  bucketName: string;
  /** Endpoint jurisdiction (`R2_JURISDICTION`, default `default`). */
  jurisdiction: R2Jurisdiction;
}

/** Where artifacts live; `kind` is what `/health` reports. */
export type StorageConfig =
  | {
      kind: "local";
      /** Root directory (`ARTIFACTS_LOCAL_DIR`), mode 0700. */
      dir: string;
    }
  | {
      kind: "s3";
      /** S3-compatible endpoint URL (path-style addressing). */
      endpoint: string;
      region: string;
      bucket: string;
      accessKeyId: string;
      secretAccessKey: string;
    }
  | {
      kind: "r2";
      /** `https://<account>[.eu|.fedramp].r2.cloudflarestorage.com` */
      endpoint: string;
      region: "auto";
      bucket: string;
      accessKeyId: string;
      secretAccessKey: string;
      accountId: string;
      jurisdiction: R2Jurisdiction;
    };

/** Master keys (KEKs): the current one wraps new data keys; all of them unwrap. */
export interface MasterKeys {
  /** kid of the key that wraps new data keys (the first of `ARTIFACTS_MASTER_KEYS`, or `default`). */
  currentKid: string;
  /** Every loaded key by kid, 32 bytes each. */
  keys: ReadonlyMap<string, Buffer>;
}

/**
 * Where the server remembers spent Web3Signed nonces (`ARTIFACTS_NONCE_STORE`): its own memory,
 * or a Redis server that every replica behind one audience shares.
 */
export type NonceStoreConfig =
  | { kind: "memory" }
  | {
      kind: "redis";
      /** `rediss:` (TLS) rather than `redis:`. */
      tls: boolean;
      host: string;
      port: number;
      db: number;
      username: string | undefined;
      /** Never logged, never in an error message. */
      password: string | undefined;
      /** The URL without its password, for startup lines and errors. */
      display: string;
    };

/** Everything the SDK, server and CLI read from the environment, validated. */
export interface ArtifactsConfig {
  storage: StorageConfig;
  masterKeys: MasterKeys;
  /**
   * Where the master keys came from: the environment, or the generated local dev key file.
   * `missing`: local storage, no key variables and no key file, loaded without `create`;
   * `masterKeys` is then empty and a store refuses the configuration.
   */
  masterKeySource: { kind: "env" } | { kind: "file"; path: string; generated: boolean } | { kind: "missing"; path: string };
  /** `ARTIFACTS_TTL` in seconds: default and maximum operation lifetime. */
  ttlSeconds: number;
  /** `ARTIFACTS_MAX_BYTES`: largest artifact accepted (plaintext bytes). */
  maxBytes: number;
  /** Resolved `ARTIFACTS_LOCAL_DIR` (local storage root and home of generated dev secrets). */
  localDir: string;
  /** `ARTIFACTS_FALLBACK_LOCAL_DIR`: read-only fallback during migration. */
  fallbackLocalDir: string | undefined;
  /** `ARTIFACTS_S3_TIMEOUT_MS`: per-request timeout to storage. */
  s3TimeoutMs: number;
  /** Connect timeout to storage (5000 ms). */
  s3ConnectTimeoutMs: number;
  /** `ARTIFACTS_WRITER_TOKEN` (at least 32 characters) if set. */
  writerToken: string | undefined;
  /** `ARTIFACTS_AUDIENCE`: the server's public origin (and path prefix). */
  audience: string | undefined;
  /** `ARTIFACTS_SWEEP_INTERVAL` in seconds; 0 disables. */
  sweepIntervalSeconds: number;
  /** `ARTIFACTS_SHUTDOWN_GRACE` in seconds (default 25): how long SIGTERM waits for in-flight requests. */
  shutdownGraceSeconds: number;
  /** `ARTIFACTS_SERVER_URL`: where the CLI's `doctor` and `pnpm smoke` find a running server. */
  serverUrl: string | undefined;
  /** `ARTIFACTS_METRICS_TOKEN` if set: scrapers of the metrics listener must send it as a bearer token. */
  metricsToken: string | undefined;
  /** `ARTIFACTS_METRICS_LISTEN` (default 127.0.0.1:9464): where `/metrics` is served; `undefined` when `off`. */
  metricsListen: MetricsListen | undefined;
  /** `ARTIFACTS_MONTHLY_BUDGET_USD` (default 0): the monthly storage bill the cost alert compares against. */
  monthlyBudgetUsd: number;
  /** `ARTIFACTS_CORS_ORIGINS`. */
  corsOrigins: string[];
  /** `ARTIFACTS_NONCE_STORE`: unset, in-process memory. */
  nonceStore: NonceStoreConfig;
  /** `ARTIFACTS_TRUSTED_PROXIES`: peers (addresses or CIDR ranges) whose `X-Forwarded-For` names the client. */
  trustedProxies: string[];
  /** `ARTIFACTS_AUTH_FAILURE_LIMIT`: failed authentications per client and minute before 429 (default 60). */
  authFailureLimit: number;
  /** `ARTIFACTS_WEB_UI=1`: the server serves the grantee web page (apps/web) at `/`. */
  webUi: boolean;
  /** `HOST` (default 127.0.0.1) and `PORT` (default 8080). */
  host: string;
  port: number;
}

/** The metrics listener's address: its own port, never the API's. */
export interface MetricsListen {
  /** IP address to bind (127.0.0.1 unless set). */
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
}

/** Reads one variable (trimmed; empty = unset). */
export type Get = (name: string) => string | undefined;
/** Records a problem with one variable (`ConfigError.details.problems`). */
export type Problem = (variable: string, message: string) => void;
